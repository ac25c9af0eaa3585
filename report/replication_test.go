package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// A DRBD run sits next to an NFS run: the protocol in the security column, the replication
// traffic per GiB written in its own column, in the table and in the HTML page.
func TestDRBDRows(t *testing.T) {
	runs := sampleRuns()[:1]
	drbd := &results.Run{
		ID: "dddd4444", Start: time.Date(2026, 3, 4, 5, 9, 7, 0, time.UTC), Complete: true,
		Target:      results.Target{URL: "drbd:///dev/drbd0", Backend: "drbd", Info: map[string]string{"security": "protocol C"}},
		Workload:    workloads.Workload{RW: "randwrite", IODepth: 1, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}},
		Write:       &results.DirStats{IOs: 1000, Bytes: 1 << 30, IOPS: 264, BWBps: 1e6, Lat: lat(3_600_000, 3_590_000, 9_000_000, 12_000_000, 20_000_000)},
		Replication: &results.Replication{Kind: "drbd", Protocol: "C", SentBytes: 1100 << 20, SentPerGiBWritten: 1100 << 20},
	}
	runs = append(runs, drbd)
	var b bytes.Buffer
	if err := Render(&b, runs, "md"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "protocol C") || !strings.Contains(out, "Repl sent/GiB written") || !strings.Contains(out, "1.07 GiB") {
		t.Errorf("table:\n%s", out)
	}
	b.Reset()
	if err := WriteHTML(&b, runs, HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := b.String(); !strings.Contains(h, "Repl/GiB") || !strings.Contains(h, "1.07 GiB") || !strings.Contains(h, "protocol C") {
		t.Error("HTML lacks the DRBD row's protocol or replication figure")
	}
}

// A run on a degraded pair is its own case, named so in the Scenario column.
func TestDRBDDegradedApart(t *testing.T) {
	mk := func(degraded string) *results.Run {
		return &results.Run{
			ID: results.NewID(), Complete: true,
			Target:      results.Target{URL: "drbd:///dev/drbd0", Backend: "drbd", Info: map[string]string{"security": "protocol C"}},
			Workload:    workloads.Workload{RW: "randwrite", IODepth: 1, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}},
			Write:       &results.DirStats{IOs: 10, Bytes: 40960, IOPS: 10, Lat: lat(1e6, 1e6, 2e6, 2e6, 3e6)},
			Replication: &results.Replication{Kind: "drbd", Protocol: "C", Degraded: degraded},
		}
	}
	var b bytes.Buffer
	if err := Render(&b, []*results.Run{mk(""), mk("not connected (WFConnection)")}, "md"); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "host degraded") || strings.Count(out, "drbd:///dev/drbd0") != 2 {
		t.Errorf("table:\n%s", out)
	}
}
