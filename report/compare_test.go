package report

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// cmpRuns are complete randread runs on target, one per IOPS figure.
func cmpRuns(target string, iops ...float64) []*results.Run {
	var out []*results.Run
	for _, v := range iops {
		l := 1e9 / v
		out = append(out, &results.Run{ID: results.NewID(), Complete: true, Target: results.Target{URL: target, Backend: "nfs"},
			Workload: workloads.Workload{RW: "randread", IODepth: 1, NumJobs: 1, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}},
			Read:     &results.DirStats{IOs: 100, IOPS: v, BWBps: v * 4096, Lat: lat(l, int64(l), int64(2*l), int64(3*l), int64(4*l))}})
	}
	return out
}

func compare(t *testing.T, base, cand []*results.Run, failOn string) *results.Comparison {
	t.Helper()
	th, err := results.ParseThresholds(failOn)
	if err != nil {
		t.Fatal(err)
	}
	c, err := results.Compare(base, cand, results.CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tableRow matches a data row of the terminal or Markdown table.
var tableRow = regexp.MustCompile(`[|│] nfs://\S+ +[|│] read +[|│]`)

func TestRenderComparison(t *testing.T) {
	const a, b = "nfs://10.0.0.1/e/a.img", "nfs://10.0.0.1/e/b.img"
	base := append(cmpRuns(a, 1000, 990, 1010), cmpRuns(b, 500)...)
	cand := append(cmpRuns(a, 700, 710, 690), cmpRuns(b, 510)...)
	failed := cmpRuns(a, 1)[0]
	failed.Complete, failed.Error = false, "nfs: READ: connection reset | by peer"
	cand = append(cand, failed)
	c := compare(t, base, cand, "iops<-10%,p99>+20%,write.max>+1%")

	cases := []struct {
		format string
		want   []string
	}{
		{"table", []string{
			"Result: REGRESSION: 2 of 4 checks failed",
			"Base: 4 runs, candidate: 5 runs, 2 cases.",
			"Workload: randread bs=4KiB iodepth=1 numjobs=1",
			"1.00k IOPS ±1% (n=3)", "700 IOPS ±1% (n=3)", "-30.0%", "worse (ranges apart)", "FAIL iops<-10%",
			"1.00 ms ±1% (n=3)", // base p50
			"single run, no noise estimate",
			"Failed checks:", "  nfs://10.0.0.1/e/a.img: randread bs=4KiB iodepth=1 numjobs=1: read iops changed -30.0%, beyond iops<-10%",
			"Incomplete runs, excluded from the figures:", "candidate run " + failed.ID,
			"connection reset | by peer",
			"Unused thresholds: write.max>+1% matched no metric",
			"Mann–Whitney U test gives p < 0.05",
		}},
		{"md", []string{
			"**Result:** REGRESSION: 2 of 4 checks failed",
			"**Workload:** randread bs=4KiB iodepth=1 numjobs=1",
			"Target", "| nfs://10.0.0.1/e/a.img |", "FAIL iops<-10%",
			"**Failed checks:**", "- nfs://10.0.0.1/e/a.img: randread",
			"- candidate run " + failed.ID,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.format, func(t *testing.T) {
			var out bytes.Buffer
			if err := RenderComparison(&out, c, tc.format); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			// One row per case × direction × metric: 2 cases × read × 7 metrics.
			rows := 0
			for _, l := range strings.Split(out.String(), "\n") {
				if tableRow.MatchString(l) {
					rows++
				}
			}
			if rows != 14 {
				t.Errorf("%d rows, want 14:\n%s", rows, out.String())
			}
		})
	}
}

func TestRenderComparisonNoise(t *testing.T) {
	// Overlapping repeats: the change is reported as within noise and the threshold it
	// crosses does not fail.
	c := compare(t, cmpRuns("mem://", 1000, 700, 1300), cmpRuns("mem://", 800, 600, 1100), "iops<-10%")
	var out bytes.Buffer
	if err := RenderComparison(&out, c, "table"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Result: no regression: 1 check passed", "Target: mem://", "within noise (ranges overlap)",
		"ok (crosses iops<-10% within noise)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "Failed checks") || strings.Contains(out.String(), "Incomplete runs") {
		t.Errorf("sections without content:\n%s", out.String())
	}

	// No thresholds: said so.
	c = compare(t, cmpRuns("mem://", 1000), cmpRuns("mem://", 900), "")
	out.Reset()
	if err := RenderComparison(&out, c, "md"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no thresholds given") || !strings.Contains(out.String(), "| -10.0% |") {
		t.Errorf("no-threshold output:\n%s", out.String())
	}
}

func TestRenderComparisonRedactsAndRefusesFormats(t *testing.T) {
	// A hand-edited document with a password in its URL: reports never show it.
	c := compare(t, cmpRuns("smb://u:hunter2@h/s/f", 10), cmpRuns("smb://u:hunter2@h/s/f", 10), "")
	var out bytes.Buffer
	if err := RenderComparison(&out, c, "table"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") {
		t.Errorf("password in output:\n%s", out.String())
	}
	if err := RenderComparison(&out, c, "csv"); err == nil || !strings.Contains(err.Error(), `"csv"`) {
		t.Errorf("csv: %v, want an error naming the format", err)
	}
}

func TestHumanNS(t *testing.T) {
	for in, want := range map[float64]string{42: "42 ns", 999: "999 ns", 1234: "1.23 µs", 45_600: "45.6 µs",
		1.5e6: "1.50 ms", 2.25e9: "2.25 s"} {
		if got := humanNS(in); got != want {
			t.Errorf("humanNS(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestRenderComparisonVerifyFailed(t *testing.T) {
	const a = "nfs://10.0.0.1/e/a.img"
	cand := cmpRuns(a, 9000)
	cand[0].Verify = &results.Verify{Algorithm: "crc32c", Checked: 2048, Mismatches: 2048, First: []results.Mismatch{{Offset: 0}, {Offset: 4096}}}
	for _, failOn := range []string{"", "iops<-10%"} {
		c := compare(t, cmpRuns(a, 1000), cand, failOn)
		var buf bytes.Buffer
		if err := RenderComparison(&buf, c, "table"); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"Failed checks:", "failed verify, whatever its speed: verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)",
			"verify found mismatches), excluded from the figures"} {
			if !strings.Contains(out, want) {
				t.Errorf("fail-on %q: lacks %q:\n%s", failOn, want, out)
			}
		}
		if failOn == "" && !strings.Contains(out, "Result: FAILED: 1 candidate run failed verify") {
			t.Errorf("verdict line:\n%s", out)
		}
		if failOn != "" && !strings.Contains(out, "Result: REGRESSION: 2 of 2 checks failed") {
			t.Errorf("verdict line:\n%s", out)
		}
	}
}
