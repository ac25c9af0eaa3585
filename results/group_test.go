package results

import (
	"testing"

	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestGroupAndSummary(t *testing.T) {
	w := workloads.Workload{Name: "a", RW: "randread", IODepth: 1, NumJobs: 1}
	w2 := w
	w2.IODepth = 16
	mk := func(target string, w workloads.Workload, iops float64, complete bool) *Run {
		return &Run{Target: Target{URL: target}, Workload: w, Complete: complete,
			Read: &DirStats{IOs: 10, IOPS: iops, Lat: Latency{N: 10, Mean: 1000, Percentiles: map[string]int64{PercentileKey(99): 5000}}}}
	}
	runs := []*Run{
		mk("nfs://a/x", w, 100, true), mk("smb://b/y", w, 50, true), mk("nfs://a/x", w, 120, true),
		mk("nfs://a/x", w2, 300, true), mk("nfs://a/x", w, 1, false), mk("nfs://a/x", w, 110, true),
	}
	runs[5].Workload.Name = "renamed" // the name is not part of what was measured
	cases := Group(runs)
	if len(cases) != 3 {
		t.Fatalf("got %d cases, want 3", len(cases))
	}
	iops, _ := MetricByName("iops")
	s, ok := cases[0].Summary("read", iops)
	if !ok || s.N != 3 || s.Median != 110 || s.Min != 100 || s.Max != 120 {
		t.Fatalf("summary = %+v (incomplete runs must not count)", s)
	}
	if got := s.Spread(); got < 0.18 || got > 0.19 {
		t.Errorf("spread = %v, want 20/110", got)
	}
	p99, _ := MetricByName("p99")
	if v, ok := p99.Of(runs[0].Read); !ok || v != 5000 || p99.HigherIsBetter {
		t.Errorf("p99 = %v %v", v, ok)
	}
	if _, err := MetricByName("bogus"); err == nil {
		t.Error("unknown metric accepted")
	}
	if got := cases[0].Dirs(); len(got) != 1 || got[0] != "read" {
		t.Errorf("dirs = %v", got)
	}
	even, _ := Summarize([]float64{4, 1, 3, 2})
	if even.Median != 2.5 {
		t.Errorf("median of 1..4 = %v", even.Median)
	}
}

func TestScenario(t *testing.T) {
	r := &Run{}
	if Scenario(r) != "host" {
		t.Errorf("plain run scenario = %q", Scenario(r))
	}
	r.Migration = &Migration{Mode: "precopy", Security: "tls", Link: &MigrationLink{Preset: "wan"}}
	if got := Scenario(r); got != "precopy tls wan" {
		t.Errorf("scenario = %q", got)
	}
	r.Migration.Libvirt = &MigrationLibvirt{Measured: MeasuredAgent}
	if got := Scenario(r); got != "precopy tls wan libvirt" {
		t.Errorf("scenario under libvirt = %q", got)
	}
}
