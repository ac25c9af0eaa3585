package report

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func lat(mean float64, p50, p99, p999, max int64) results.Latency {
	return results.Latency{N: 1000, Min: p50 / 2, Max: max, Mean: mean, Percentiles: map[string]int64{
		"50.000000": p50, "99.000000": p99, "99.900000": p999}}
}

// sampleRuns: a complete NFS read run, an incomplete SMB mixed run with a secret in its URL
// and a '|' in its error, and an iSCSI run that failed before any I/O.
func sampleRuns() []*results.Run {
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	return []*results.Run{
		{
			ID: "aaaa1111", Start: start, Complete: true,
			Target:   results.Target{URL: "nfs://127.0.0.1:2049/export/disk.img", Backend: "nfs", Info: map[string]string{"security": "sys"}},
			Workload: workloads.Workload{RW: "randread", IODepth: 32, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}},
			Read:     &results.DirStats{IOs: 123450, Bytes: 123450 * 4096, IOPS: 12345, BWBps: 50.6e6, Lat: lat(80_000, 75_000, 210_000, 480_000, 1_200_000)},
		},
		{
			ID: "bbbb2222", Start: start.Add(time.Minute), Complete: false, Error: "smb: write: read |tcp| connection reset by peer",
			Repeat: 1, Repeats: 3,
			Target:   results.Target{URL: "smb://bench:hunter2@127.0.0.1:4450/share/disk.img?password=hunter2", Backend: "smb", Info: map[string]string{"security": "encrypted"}},
			Workload: workloads.Workload{RW: "randrw", RWMixRead: 70, IODepth: 8, NumJobs: 2, BS: [2]workloads.BlockSize{workloads.Fixed(65536), workloads.Fixed(65536)}, Verify: "crc32c"},
			Read:     &results.DirStats{IOs: 700, Bytes: 700 * 65536, IOPS: 950.4, BWBps: 62.3e6, Lat: lat(2_500_000, 2_000_000, 9_000_000, 15_000_000, 20_000_000)},
			Write:    &results.DirStats{IOs: 300, Bytes: 300 * 65536, Errors: 2, IOPS: 407.2, BWBps: 26.7e6, Lat: lat(3_100_000, 2_900_000, 11_000_000, 16_000_000, 31_000_000)},
			Verify:   &results.Verify{Algorithm: "crc32c", Checked: 700, Mismatches: 3},
		},
		{
			ID: "cccc3333", Start: start.Add(2 * time.Minute), Error: "iscsi: login: timeout",
			Labels:   map[string]string{results.TargetLabel: "tgt-lun1"},
			Target:   results.Target{URL: "iscsi://127.0.0.1:3260/iqn.2026-03.bench:t/1", Backend: "iscsi"},
			Workload: workloads.Workload{RW: "write", IODepth: 1, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(1 << 20), workloads.Fixed(1 << 20)}},
		},
	}
}

// dataLines returns the lines that hold a row of the three runs (by their backend).
func dataLines(t *testing.T, out string) []string {
	t.Helper()
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if regexp.MustCompile(`\b(nfs|smb|iscsi)\b`).MatchString(l) && !strings.Contains(l, "Backend") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 4 {
		t.Fatalf("%d data rows, want 4 (nfs read, smb read, smb write, iscsi -):\n%s", len(rows), out)
	}
	return rows
}

func assertNoSecret(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "hunter2") {
		t.Errorf("secret leaked into the report:\n%s", out)
	}
}

func TestRenderTable(t *testing.T) {
	for _, format := range []string{"table", "md"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, sampleRuns(), format); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			t.Logf("\n%s", out)
			assertNoSecret(t, out)
			// Each latency column has its own unit, from its values.
			for _, h := range []string{"Target", "Security", "Workload", "IOPS", "MB/s", "Mean (ms)", "p50 (ms)",
				"p99 (ms)", "p99.9 (ms)", "Max (ms)", "Errors", "Verify mismatches", "Status", "MB/s = 10^6 bytes a second."} {
				if !strings.Contains(out, h) {
					t.Errorf("header %q missing", h)
				}
			}
			rows := dataLines(t, out)
			want := [][]string{
				{"nfs://127.0.0.1:2049/export/disk.img", "sys", "randread bs=4KiB iodepth=32 numjobs=1", "read",
					"12.3k", "50.6", "0.08", "0.07", "0.21", "0.48", "1.20", "ok"},
				// Incomplete and with verify mismatches: the mismatches are what the row says.
				{"smb://bench@127.0.0.1:4450/share/disk.img", "encrypted", "rwmixread=70", "read", "950", "62.3",
					"2.50", "15.0", "VERIFY FAILED: 3 of 700 blocks mismatched"},
				{"write", "407", "26.7", "31.0", " 2 ", " 3 "},
				{"tgt-lun1", "iscsi", "write bs=1MiB", " - ", "INCOMPLETE: iscsi: login: timeout"},
			}
			for i, cells := range want {
				for _, c := range cells {
					if !strings.Contains(rows[i], c) {
						t.Errorf("row %d lacks %q: %s", i, c, rows[i])
					}
				}
			}
			if format == "md" {
				if !regexp.MustCompile(`(?m)^\|[-:| ]+\|$`).MatchString(out) {
					t.Error("no Markdown header separator line")
				}
				for _, l := range rows {
					if !strings.HasPrefix(l, "|") || !strings.HasSuffix(strings.TrimSpace(l), "|") {
						t.Errorf("not a Markdown row: %s", l)
					}
				}
				runs := sampleRuns()
				runs[1].Verify = nil // the row then shows the error, with its '|'
				var b bytes.Buffer
				if err := Render(&b, runs, "md"); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(b.String(), `INCOMPLETE: smb: write: read \|tcp\| connection`) {
					t.Errorf("'|' in a cell is not escaped:\n%s", b.String())
				}
			}
		})
	}
}

func TestPickUnit(t *testing.T) {
	tests := []struct {
		units  []unit
		values []float64
		want   string
	}{
		{latencyUnits, []float64{30, 780}, "ns"},
		{latencyUnits, []float64{80_000, 999_000}, "µs"},
		{latencyUnits, []float64{80_000, 34_047_000}, "ms"}, // the Max of 34047 µs reads 34.0 ms
		{latencyUnits, []float64{2.5e9}, "s"},
		{latencyUnits, []float64{5e12}, "s"},
		{latencyUnits, nil, "ns"},
		{bwUnits, []float64{500}, "kB/s"},
		{bwUnits, []float64{50.6e6, 62.3e6}, "MB/s"},
		{bwUnits, []float64{6.0e9}, "GB/s"},
	}
	for _, tc := range tests {
		if got := pickUnit(tc.units, tc.values); got.name != tc.want {
			t.Errorf("pickUnit(%v) = %s, want %s", tc.values, got.name, tc.want)
		}
	}
}

func TestRenderTableUnitsPerColumn(t *testing.T) {
	runs := sampleRuns()[:1]
	runs[0].Read.Lat = lat(80_000, 75_000, 210_000, 480_000, 34_047_000)
	runs[0].Read.BWBps = 6.04e9
	var buf bytes.Buffer
	if err := Render(&buf, runs, "table"); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Mean (µs)", "p99.9 (µs)", "Max (ms)", "34.0", "80.0", "GB/s", "6.04", "GB/s = 10^9 bytes a second."} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
}

func TestRenderTableFitsWidth(t *testing.T) {
	for _, width := range []int{0, 200, 120, 100, 80} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderTable(&buf, sampleRuns(), "table", TableOptions{Width: width}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			t.Logf("\n%s", out)
			if got := maxLineWidth(out); width > 0 && got > width {
				t.Errorf("%d columns wide, want at most %d", got, width)
			}
			// Whatever the width, failures show and the figures that matter stay.
			for _, want := range []string{"VERIFY FAILED", "INCOMPLETE", "IOPS", "p99 (ms)", "Max (ms)", "12.3k", "tgt-lun1"} {
				if !strings.Contains(out, want) {
					t.Errorf("lacks %q", want)
				}
			}
			// Both ends of a long URL survive the cut.
			if !strings.Contains(out, "nfs://") || !strings.Contains(out, "disk.img") {
				t.Errorf("the target is cut beyond recognition")
			}
			if width > 0 && width < 120 && strings.Contains(out, "Verify mismatches") {
				t.Errorf("below 120 columns the table keeps the wide layout")
			}
		})
	}
}

func TestStatusCell(t *testing.T) {
	ok := &results.Run{Complete: true}
	inc := &results.Run{Error: "nfs: server went away"}
	bad := &results.Run{Complete: true, Verify: &results.Verify{Checked: 2048, Mismatches: 2048, First: []results.Mismatch{{Offset: 0}, {Offset: 4096}}}}
	tests := []struct {
		runs []*results.Run
		want string
	}{
		{[]*results.Run{ok}, "ok"},
		{[]*results.Run{ok, ok, ok}, "ok (3 runs)"},
		{[]*results.Run{inc}, "INCOMPLETE: nfs: server went away"},
		{[]*results.Run{ok, inc}, "INCOMPLETE 1 of 2: nfs: server went away"},
		{[]*results.Run{bad}, "VERIFY FAILED: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)"},
		{[]*results.Run{inc, bad, ok}, "VERIFY FAILED 1 of 3: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)"},
	}
	for _, tc := range tests {
		if got := statusCell(&results.Case{Runs: tc.runs}, 80); got != tc.want {
			t.Errorf("statusCell = %q, want %q", got, tc.want)
		}
	}
}

func TestRenderCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, sampleRuns(), "csv"); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, buf.String())
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("records: %q", recs)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for _, c := range []struct {
		row         int
		column, val string
	}{
		{1, "run_id", "aaaa1111"},
		{1, "start", "2026-03-04T05:06:07.000Z"},
		{1, "iops", "12345"},
		{1, "bw_bytes_per_s", "50600000"},
		{1, "lat_mean_ns", "80000"},
		{1, "lat_p99.9_ns", "480000"},
		{1, "lat_max_ns", "1200000"},
		{1, "verify_mismatches", ""},
		{1, "complete", "true"},
		{2, "target", "smb://bench@127.0.0.1:4450/share/disk.img?password=REDACTED"},
		{2, "security", "encrypted"},
		{2, "repeat", "1"},
		{2, "iops", "950.4"},
		{3, "direction", "write"},
		{3, "errors", "2"},
		{3, "verify_mismatches", "3"},
		{3, "complete", "false"},
		{3, "error", "smb: write: read |tcp| connection reset by peer"},
		{4, "target", "tgt-lun1"},
		{4, "direction", "-"},
		{4, "iops", ""},
	} {
		if got := recs[c.row][col[c.column]]; got != c.val {
			t.Errorf("row %d %s = %q, want %q", c.row, c.column, got, c.val)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := Render(&bytes.Buffer{}, sampleRuns(), "html")
	if err == nil || !strings.Contains(err.Error(), "table, md, csv") {
		t.Errorf("Render(html) = %v, want an error listing the formats", err)
	}
}

func TestHumanNumbers(t *testing.T) {
	for v, want := range map[float64]string{0: "0.00", 1.234: "1.23", 12.34: "12.3", 999.4: "999", 999.6: "1.00k",
		12345: "12.3k", 1.5e6: "1.50M", 2.25e9: "2.25G"} {
		if got := humanCount(v); got != want {
			t.Errorf("humanCount(%v) = %s, want %s", v, got, want)
		}
	}
}

func TestSharedWorkloadSaidOnce(t *testing.T) {
	a := &results.Run{Target: results.Target{URL: "null://", Backend: "null"}, Workload: workloads.Workload{RW: "randread", BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}, IODepth: 1, NumJobs: 1}, Complete: true, Read: &results.DirStats{IOs: 1}}
	b := *a
	b.Target.URL = "mem://"
	var out strings.Builder
	if err := Render(&out, []*results.Run{a, &b}, "table"); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "Workload: randread bs=4KiB") || strings.Count(got, "randread") != 1 {
		t.Errorf("want the shared workload once, above the table:\n%s", got)
	}
}

// TestRenderRepeats: repeats of one case become one row of medians with the spread, an
// incomplete repeat is left out of the figures and named, and the footnote says so.
func TestRenderRepeats(t *testing.T) {
	w := workloads.Workload{RW: "randread", IODepth: 1, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}
	mk := func(iops float64, complete bool) *results.Run {
		r := &results.Run{Target: results.Target{URL: "nfs://h/e/f", Backend: "nfs"}, Workload: w, Complete: complete,
			Read: &results.DirStats{IOs: 100, IOPS: iops, BWBps: iops * 4096, Lat: lat(1e9/iops, 90_000, 200_000, 300_000, 400_000)}}
		if !complete {
			r.Error = "nfs: server went away"
		}
		return r
	}
	runs := []*results.Run{mk(1000, true), mk(1100, true), mk(1200, true), mk(5, false)}
	var out strings.Builder
	if err := Render(&out, runs, "table"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Logf("\n%s", got)
	for _, want := range []string{"1.10k ±9%", "INCOMPLETE 1 of 4: nfs: server went away", "medians over the complete runs"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if n := strings.Count(got, "nfs://h/e/f"); n != 1 {
		t.Errorf("%d rows for one case, want 1", n)
	}
}

func TestSecurityLabel(t *testing.T) {
	for _, c := range []struct {
		info map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"security": "none"}, "none"},
		{map[string]string{"security": "signed", "signing": "AES-128-GMAC"}, "signed (GMAC)"},
		{map[string]string{"security": "signed", "signing": "HMAC-SHA256"}, "signed (HMAC-SHA256)"},
		{map[string]string{"signing": "AES-128-CMAC"}, ""},
	} {
		r := &results.Run{Target: results.Target{Info: c.info}}
		if got := securityLabel(r); got != c.want {
			t.Errorf("securityLabel(%v) = %q, want %q", c.info, got, c.want)
		}
	}
}
