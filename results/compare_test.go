package results

import (
	"bytes"
	"encoding/xml"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestParseThresholds(t *testing.T) {
	cases := []struct {
		in   string
		want []string // Threshold.String of each
		err  string   // substring of the error; "" for success
	}{
		{in: "", want: nil},
		{in: "iops<-10%", want: []string{"iops<-10%"}},
		{in: "iops<-10%,p99>+20%", want: []string{"iops<-10%", "p99>+20%"}},
		{in: " read.iops < -5% , write.p99.9>20% ,", want: []string{"read.iops<-5%", "write.p99.9>+20%"}},
		{in: "p99.9>+1.5%", want: []string{"p99.9>+1.5%"}},
		{in: "lat>+10%", want: []string{"mean>+10%"}},
		{in: "Sync.MAX>0%", want: []string{"sync.max>0%"}},
		{in: "iops-10%", err: `threshold "iops-10%": want METRIC<PERCENT%`},
		{in: "iops<-10", err: `threshold "iops<-10": the limit "-10" needs a % sign`},
		{in: "iops<=-10%", err: `threshold "iops<=-10%": use <, not <=`},
		{in: "p99>+20%,bogus<-10%", err: `threshold "bogus<-10%": unknown metric "bogus"`},
		{in: "read.<5%", err: `threshold "read.<5%": no metric`},
		{in: "<5%", err: `threshold "<5%": no metric`},
		{in: "iops<abc%", err: `threshold "iops<abc%": the limit "abc%" is not a number`},
		{in: "iops<NaN%", err: `is not a number`},
		{in: "iops<inf%", err: `is not a number`},
		{in: "disk.iops<-10%", err: `unknown metric "disk.iops"`},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseThresholds(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, th := range got {
				names = append(names, th.String())
			}
			if strings.Join(names, ",") != strings.Join(c.want, ",") {
				t.Errorf("got %v, want %v", names, c.want)
			}
		})
	}
}

func TestThresholdCrossed(t *testing.T) {
	down, _ := ParseThresholds("iops<-10%")
	up, _ := ParseThresholds("p99>+20%")
	for _, c := range []struct {
		th   Threshold
		pct  float64
		want bool
	}{
		{down[0], -10.1, true}, {down[0], -10, false}, {down[0], 5, false}, {down[0], math.Inf(-1), true},
		{up[0], 20.1, true}, {up[0], 20, false}, {up[0], -50, false}, {up[0], math.Inf(1), true},
		{up[0], math.NaN(), false},
	} {
		if got := c.th.Crossed(c.pct); got != c.want {
			t.Errorf("%s crossed by %v = %v, want %v", c.th, c.pct, got, c.want)
		}
	}
}

func TestMannWhitneyKnownValues(t *testing.T) {
	cases := []struct {
		name string
		x, y []float64
		want float64
	}{
		// Fully separated samples: p = 2 / C(nx+ny, nx).
		{"3v3 apart", []float64{1, 2, 3}, []float64{4, 5, 6}, 2.0 / 20},
		{"4v4 apart", []float64{1, 2, 3, 4}, []float64{5, 6, 7, 8}, 2.0 / 70},
		{"5v5 apart", []float64{10, 9, 8, 7, 6}, []float64{1, 2, 3, 4, 5}, 2.0 / 252},
		// One swap at the boundary: U = 1, p = 2·P(U ≤ 1) = 2·2/252.
		{"5v5 U=1", []float64{1, 2, 3, 4, 6}, []float64{5, 7, 8, 9, 10}, 4.0 / 252},
		// scipy.stats.mannwhitneyu's documented example (exact method): p = 0.1111.
		{"scipy example", []float64{19, 22, 16, 29, 24}, []float64{20, 11, 17, 12}, 1.0 / 9},
		// Interleaved: rank sums equal their mean, nothing to tell apart.
		{"interleaved", []float64{1, 4, 5, 8}, []float64{2, 3, 6, 7}, 1},
		{"all equal", []float64{7, 7, 7}, []float64{7, 7, 7}, 1},
		{"empty side", nil, []float64{1, 2}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := MannWhitneyP(c.x, c.y); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("p = %.6f, want %.6f", got, c.want)
			}
			if got := MannWhitneyP(c.y, c.x); math.Abs(got-c.want) > 1e-9 {
				t.Errorf("swapped: p = %.6f, want %.6f (a two-sided test is symmetric)", got, c.want)
			}
		})
	}
}

// bruteMWU enumerates every split of the pooled sample: the definition the dynamic
// programme must match, ties included.
func bruteMWU(x, y []float64) float64 {
	pool := append(append([]float64(nil), x...), y...)
	ranks, _ := doubledRanks(x, y)
	n, nx := len(pool), len(x)
	obs := 0
	for _, r := range ranks[:nx] {
		obs += r
	}
	mean := nx * (n + 1)
	var hit, all int
	for mask := 0; mask < 1<<n; mask++ {
		if bitsSet(mask) != nx {
			continue
		}
		s := 0
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				s += ranks[i]
			}
		}
		all++
		if abs(s-mean) >= abs(obs-mean) {
			hit++
		}
	}
	return float64(hit) / float64(all)
}

func bitsSet(v int) int {
	n := 0
	for ; v != 0; v &= v - 1 {
		n++
	}
	return n
}

func TestMannWhitneyExactWithTies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		nx, ny := 1+rng.IntN(7), 1+rng.IntN(7)
		draw := func(n int) []float64 {
			v := make([]float64, n)
			for j := range v {
				v[j] = float64(rng.IntN(5)) // few distinct values: many ties
			}
			return v
		}
		x, y := draw(nx), draw(ny)
		if got, want := MannWhitneyP(x, y), bruteMWU(x, y); math.Abs(got-want) > 1e-12 {
			t.Fatalf("x=%v y=%v: p = %v, enumeration says %v", x, y, got, want)
		}
	}
}

func TestMannWhitneyNormalApproximation(t *testing.T) {
	// Above the exact limit the normal approximation takes over; it must agree with the
	// exact distribution closely where both apply.
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20; i++ {
		n := 30 + i%2 // 60 values in all are still exact, 62 are not
		x, y := make([]float64, n), make([]float64, n)
		for j := range x {
			x[j] = rng.NormFloat64()
			y[j] = rng.NormFloat64() + 0.3
		}
		ranks, ties := doubledRanks(x, y)
		obs := 0
		for _, r := range ranks[:len(x)] {
			obs += r
		}
		mean := len(x) * (len(x) + len(y) + 1)
		exact := mwuExactP(ranks, len(x), abs(obs-mean), mean)
		normal := mwuNormalP(len(x), len(y), obs, ties)
		if math.Abs(exact-normal) > 0.005 {
			t.Errorf("exact p %.4f, normal approximation %.4f", exact, normal)
		}
		want := exact
		if 2*n > exactMWULimit {
			want = normal
		}
		if got := MannWhitneyP(x, y); got != want {
			t.Errorf("%d values: MannWhitneyP = %v, want %v (exact up to %d values)", 2*n, got, want, exactMWULimit)
		}
	}
}

// testRun is a complete randread run on target with the given IOPS (latency follows it).
func testRun(target string, iops float64) *Run {
	w := workloads.Workload{RW: "randread", IODepth: 4, NumJobs: 1, Size: 1 << 20,
		BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}
	lat := 1e9 / iops * 4 // Little's law at iodepth 4
	return &Run{ID: NewID(), Complete: true, Target: Target{URL: target, Backend: "mem"}, Workload: w,
		Read: &DirStats{IOs: int64(iops), IOPS: iops, BWBps: iops * 4096, Lat: Latency{N: int64(iops), Mean: lat, Max: int64(3 * lat),
			Percentiles: map[string]int64{PercentileKey(50): int64(lat), PercentileKey(99): int64(2 * lat), PercentileKey(99.9): int64(2.5 * lat)}}}}
}

func testRuns(target string, iops ...float64) []*Run {
	var out []*Run
	for _, v := range iops {
		out = append(out, testRun(target, v))
	}
	return out
}

func findChange(t *testing.T, c *Comparison, dir, metric string) *Change {
	t.Helper()
	for _, ch := range c.Cases[0].Changes {
		if ch.Dir == dir && ch.Metric.Name == metric {
			return ch
		}
	}
	t.Fatalf("no change for %s %s", dir, metric)
	return nil
}

func TestCompareNoiseAndThresholds(t *testing.T) {
	const tgt = "mem://"
	cases := []struct {
		name       string
		base, cand []float64
		failOn     string
		alpha      float64
		noise      Noise
		test       string
		verdict    string // substring of the IOPS change's verdict
		regressed  bool
	}{
		{"single run each, beyond threshold", []float64{1000}, []float64{800}, "iops<-10%", 0,
			NoEstimate, "", "single run, no noise estimate", true},
		{"single base run, within threshold", []float64{1000}, []float64{950, 960, 970}, "iops<-10%", 0,
			NoEstimate, "", "single run", false},
		{"3v3 ranges overlap", []float64{1000, 700, 1300}, []float64{800, 600, 1100}, "iops<-10%", 0,
			WithinNoise, "ranges", "within noise (ranges overlap)", false},
		{"3v3 ranges apart", []float64{1000, 990, 1010}, []float64{800, 810, 790}, "iops<-10%", 0,
			Significant, "ranges", "worse (ranges apart)", true},
		{"2v2 ranges apart, not past threshold", []float64{1000, 990}, []float64{950, 940}, "iops<-10%", 0,
			Significant, "ranges", "worse", false},
		{"2v3 better", []float64{1000, 990}, []float64{1200, 1210, 1190}, "iops<-10%", 0,
			Significant, "ranges", "better (ranges apart)", false},
		{"5v5 mann-whitney significant", []float64{1000, 1010, 990, 1020, 980}, []float64{800, 810, 790, 820, 780}, "iops<-10%", 0,
			Significant, "mann-whitney", "worse (p=0.0079)", true},
		{"5v5 mann-whitney within noise", []float64{1000, 500, 1500, 900, 1100}, []float64{800, 400, 1400, 700, 1200}, "iops<-10%", 0,
			WithinNoise, "mann-whitney", "within noise (p=", false},
		{"4v4 apart but alpha 0.01", []float64{1000, 1010, 990, 1020}, []float64{800, 810, 790, 820}, "iops<-10%", 0.01,
			WithinNoise, "mann-whitney", "within noise (p=0.029)", false},
		{"latency threshold: slower means higher p99", []float64{1000, 990, 1010}, []float64{800, 810, 790}, "read.p99>+20%", 0,
			Significant, "ranges", "worse", true},
		{"threshold on another direction checks nothing", []float64{1000}, []float64{500}, "write.iops<-10%", 0,
			NoEstimate, "", "single run", false},
		{"no thresholds: report only", []float64{1000}, []float64{500}, "", 0,
			NoEstimate, "", "single run", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			th, err := ParseThresholds(c.failOn)
			if err != nil {
				t.Fatal(err)
			}
			cmp, err := Compare(testRuns(tgt, c.base...), testRuns(tgt, c.cand...), CompareOptions{Thresholds: th, Alpha: c.alpha})
			if err != nil {
				t.Fatal(err)
			}
			ch := findChange(t, cmp, "read", "iops")
			if ch.Noise != c.noise || ch.Test != c.test {
				t.Errorf("noise %v by %q, want %v by %q", ch.Noise, ch.Test, c.noise, c.test)
			}
			if !strings.Contains(ch.Verdict(), c.verdict) {
				t.Errorf("verdict %q, want it to contain %q", ch.Verdict(), c.verdict)
			}
			if cmp.Regressed() != c.regressed {
				t.Errorf("regressed = %v, want %v; failures %+v", cmp.Regressed(), c.regressed, cmp.Failures())
			}
		})
	}
}

func TestCompareFigures(t *testing.T) {
	th, _ := ParseThresholds("iops<-10%,iops<-30%,write.iops<-1%")
	cmp, err := Compare(testRuns("mem://", 900, 1000, 1100), testRuns("mem://", 500, 400, 600), CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	ch := findChange(t, cmp, "read", "iops")
	if ch.Base.Median != 1000 || ch.Cand.Median != 500 || ch.Percent != -50 || !ch.Worse() || ch.Better() {
		t.Errorf("change %+v", ch)
	}
	if lat := findChange(t, cmp, "read", "p99"); lat.Percent != 100 || !lat.Worse() {
		t.Errorf("p99 change %v%%, worse=%v: latency doubling is +100%% and worse", lat.Percent, lat.Worse())
	}
	if len(ch.Checks) != 2 || !ch.Checks[0].Failed || !ch.Checks[1].Failed {
		t.Errorf("checks %+v: both iops thresholds apply and fail", ch.Checks)
	}
	if !strings.Contains(ch.Checks[0].Reason, "read iops changed -50.0%, beyond iops<-10%") {
		t.Errorf("reason %q", ch.Checks[0].Reason)
	}
	if len(cmp.Unused) != 1 || cmp.Unused[0].String() != "write.iops<-1%" {
		t.Errorf("unused %v: the write threshold matched nothing", cmp.Unused)
	}
	if cmp.CheckCount() != 2 || len(cmp.Failures()) != 2 {
		t.Errorf("%d checks, %d failures", cmp.CheckCount(), len(cmp.Failures()))
	}
	// Directions: a read-only case has only read metrics, all seven of them.
	if n := len(cmp.Cases[0].Changes); n != len(Metrics) {
		t.Errorf("%d changes, want %d", n, len(Metrics))
	}
}

func TestCompareExcludesIncompleteRuns(t *testing.T) {
	base := testRuns("mem://", 1000, 1010)
	cand := testRuns("mem://", 990, 1005, 10)
	cand[2].Complete, cand[2].Error = false, "mem: injected failure"
	th, _ := ParseThresholds("iops<-10%")
	cmp, err := Compare(base, cand, CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmp.Excluded) != 1 || cmp.Excluded[0].Side != "candidate" || cmp.Excluded[0].Error != "mem: injected failure" {
		t.Fatalf("excluded %+v", cmp.Excluded)
	}
	if ch := findChange(t, cmp, "read", "iops"); ch.Cand.N != 2 || cmp.Regressed() {
		t.Errorf("the incomplete run counted: n=%d regressed=%v", ch.Cand.N, cmp.Regressed())
	}

	// A candidate with no complete run cannot pass a check.
	for _, r := range cand {
		r.Complete = false
	}
	cmp, err = Compare(base, cand, CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Regressed() || len(cmp.Excluded) != 3 {
		t.Fatalf("regressed=%v excluded=%d: a candidate without complete runs must fail its checks", cmp.Regressed(), len(cmp.Excluded))
	}
	if r := cmp.Failures()[0].Check.Reason; !strings.Contains(r, "no complete runs in candidate") {
		t.Errorf("reason %q", r)
	}
}

func TestCompareRefusesDifferentCases(t *testing.T) {
	longer := func(runs []*Run) []*Run {
		for _, r := range runs {
			r.Workload.Runtime = 2 * time.Second
		}
		return runs
	}
	withName := func(runs []*Run, name string) []*Run {
		for _, r := range runs {
			r.Workload.Name = name
		}
		return runs
	}
	labelled := func(runs []*Run, label string) []*Run {
		for _, r := range runs {
			r.Labels = map[string]string{TargetLabel: label}
		}
		return runs
	}
	cases := []struct {
		name       string
		base, cand []*Run
		match      bool
		want       []string // substrings of the error; nil for success
	}{
		{"different targets", testRuns("nfs://10.0.0.1/e/x", 1), testRuns("nfs://10.0.0.2/e/x", 1), false,
			[]string{"did not measure the same cases", "only in base: nfs://10.0.0.1/e/x randread", "only in candidate: nfs://10.0.0.2/e/x", "--match-targets"}},
		{"different targets matched", testRuns("nfs://10.0.0.1/e/x", 1), testRuns("nfs://10.0.0.2/e/x", 1), true, nil},
		{"different runtime", testRuns("mem://", 1), longer(testRuns("mem://", 1)), false,
			[]string{"mem:// randread bs=4KiB iodepth=4 numjobs=1: workload differs in runtime_ns null vs 2000000000"}},
		{"extra case in candidate", testRuns("mem://", 1), append(testRuns("mem://", 1), testRuns("null://", 1)...), false,
			[]string{"only in candidate: null:// randread"}},
		{"renamed workload is the same case", testRuns("mem://", 1), withName(testRuns("mem://", 1), "other"), false, nil},
		{"several targets cannot be matched", append(testRuns("mem://", 1), testRuns("null://", 1)...), testRuns("mem://", 1), true,
			[]string{"--match-targets needs one target on each side; the base has 2: mem://, null://"}},
		{"password never shown", testRuns("smb://u:hunter2@h/s/f", 1), testRuns("smb://u@h/s/g", 1), false,
			[]string{"only in base: smb://u@h/s/f"}},
		{"labels name targets", labelled(testRuns("mem://", 1), "nas-a"), labelled(testRuns("mem://", 1), "nas-b"), false,
			[]string{"only in base: nas-a", "only in candidate: nas-b"}},
		{"empty side", testRuns("mem://", 1), nil, false, []string{"need runs on both sides"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmp, err := Compare(c.base, c.cand, CompareOptions{MatchTargets: c.match})
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(cmp.Cases) != 1 {
					t.Errorf("%d cases", len(cmp.Cases))
				}
				return
			}
			if err == nil {
				t.Fatal("compared; want a refusal")
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q: want one line without secrets", msg)
			}
		})
	}
	if _, err := Compare(testRuns("mem://", 1), testRuns("mem://", 1), CompareOptions{Alpha: 1.5}); err == nil {
		t.Error("alpha 1.5 accepted")
	}
}

// junit mirrors what CI servers read from a JUnit file.
type junit struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			ClassName string `xml:"classname,attr"`
			Name      string `xml:"name,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
	} `xml:"testsuite"`
}

func parseJUnit(t *testing.T, c *Comparison) junit {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJUnit(&b, c); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration:\n%s", b.String())
	}
	var j junit
	dec := xml.NewDecoder(&b)
	dec.Strict = true
	if err := dec.Decode(&j); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, b.String())
	}
	if len(j.Suites) != 1 {
		t.Fatalf("%d test suites, want 1", len(j.Suites))
	}
	return j
}

func TestWriteJUnit(t *testing.T) {
	th, _ := ParseThresholds("iops<-10%,p99>+20%,p50>+1000%")
	base := append(testRuns("nfs://10.0.0.1/e/x", 1000, 990, 1010), testRuns("smb://h/s/f", 100, 101, 99)...)
	cand := append(testRuns("nfs://10.0.0.1/e/x", 700, 710, 690), testRuns("smb://h/s/f", 100, 102, 98)...)
	cand[1].Complete, cand[1].Error = false, `bad <xml> & "quotes"`+"\x01"
	cmp, err := Compare(base, cand, CompareOptions{Thresholds: th})
	if err != nil {
		t.Fatal(err)
	}
	j := parseJUnit(t, cmp)
	s := j.Suites[0]
	// 2 cases × read × 3 checked metrics.
	if s.Tests != 6 || len(s.Cases) != 6 || j.Tests != 6 {
		t.Fatalf("tests %d/%d, want 6", s.Tests, len(s.Cases))
	}
	if s.Failures != 2 || j.Failures != 2 {
		t.Errorf("failures %d, want 2 (nfs iops and p99)", s.Failures)
	}
	var failed []string
	for _, c := range s.Cases {
		if c.Failure != nil {
			failed = append(failed, c.Name)
			if c.Failure.Type != "regression" || c.Failure.Message == "" || !strings.HasPrefix(c.ClassName, "vmstorbench.compare.nfs://10_0_0_1") {
				t.Errorf("failure %+v in class %q", c.Failure, c.ClassName)
			}
		}
	}
	if strings.Join(failed, ",") != "randread bs=4KiB iodepth=4 numjobs=1 read iops,randread bs=4KiB iodepth=4 numjobs=1 read p99" {
		t.Errorf("failed test cases %q", failed)
	}
	if len(s.Properties) != 4 || s.Properties[1].Value != "iops<-10%" {
		t.Errorf("properties %+v", s.Properties)
	}

	// Without thresholds every case is one passing test case: never an empty report.
	cmp, err = Compare(base, cand, CompareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j = parseJUnit(t, cmp)
	if j.Tests != 2 || j.Failures != 0 || j.Suites[0].Cases[0].Failure != nil {
		t.Errorf("no thresholds: %d tests, %d failures, want 2 and 0", j.Tests, j.Failures)
	}

	// A side without data fails as missing data.
	for _, r := range cand {
		r.Complete = false
	}
	cmp, _ = Compare(base, cand, CompareOptions{Thresholds: th})
	j = parseJUnit(t, cmp)
	if j.Failures != 6 || j.Suites[0].Cases[0].Failure.Type != "missing-data" {
		t.Errorf("all candidate runs incomplete: %d failures, want 6 of type missing-data", j.Failures)
	}
}

func TestFormatPercent(t *testing.T) {
	for in, want := range map[float64]string{12.345: "+12.3%", -0.04: "+0.0%", -3: "-3.0%", 250: "+250%",
		math.Inf(1): "+∞%", math.NaN(): "n/a", 0: "+0.0%"} {
		if got := FormatPercent(in); got != want {
			t.Errorf("FormatPercent(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestPlainNumber(t *testing.T) {
	for in, want := range map[float64]string{888_700.4: "888700", 1234.6: "1235", 12.345: "12.35", 0.5675: "0.5675", 0: "0", -3.5: "-3.500"} {
		if got := plainNumber(in); got != want {
			t.Errorf("plainNumber(%v) = %q, want %q", in, got, want)
		}
	}
}
