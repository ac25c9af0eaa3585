package report

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/mem"
	_ "github.com/vmstorbench/vmstorbench/backends/null"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/report/chart"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// secret is planted in URLs, argv, errors and notes of the test runs; it must never reach
// the page.
const secret = "hunter2"

var (
	engineRunsOnce sync.Once
	engineRunsVal  []*results.Run
	engineRunsErr  error
)

// engineRuns measures real runs with the engine on null:// and mem:// (short, time-based,
// 50 ms intervals so the time series have points), once for all tests of the package:
// two repeats of a random read, a mixed run with syncs, a run interrupted by its context
// whose error holds a URL with a password, one with a secret-bearing command line and
// target URL (a hand-edited document), and a live-migration run (the engine's document
// with a migration part written by hand, since the VM mode needs QEMU).
func engineRuns(t *testing.T) []*results.Run {
	t.Helper()
	engineRunsOnce.Do(func() { engineRunsVal, engineRunsErr = makeEngineRuns() })
	if engineRunsErr != nil {
		t.Fatal(engineRunsErr)
	}
	// Each test gets its own (shallow) copies, so that one may replace a run's fields.
	out := make([]*results.Run, len(engineRunsVal))
	for i, r := range engineRunsVal {
		c := *r
		out[i] = &c
	}
	return out
}

func makeEngineRuns() ([]*results.Run, error) {
	bs4k := [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}
	run := func(ctx context.Context, target string, w workloads.Workload, labels map[string]string) (*results.Run, error) {
		return bench.Run(ctx, bench.Config{Target: target, Workload: w, Interval: 50 * time.Millisecond, Labels: labels,
			Command: []string{"vmstorbench", "run", "--target", target, "--rw", w.RW}})
	}
	var runs []*results.Run
	randread := workloads.Workload{Name: "rand-read-4k", RW: "randread", BS: bs4k, Size: 4 << 20, IODepth: 4,
		Runtime: 250 * time.Millisecond, TimeBased: true, RateIOPS: [2]int64{20000, 0}}
	for rep := range 2 {
		r, err := run(context.Background(), "null://", randread, nil)
		if err != nil {
			return nil, err
		}
		r.Repeat, r.Repeats = rep, 2
		runs = append(runs, r)
	}
	mixed := workloads.Workload{Name: "oltp-ish", RW: "randrw", RWMixRead: 70, BS: bs4k, Size: 8 << 20, IODepth: 2,
		Runtime: 250 * time.Millisecond, TimeBased: true, Fsync: 16, Verify: "crc32c", RateIOPS: [2]int64{5000, 5000}}
	r, err := run(context.Background(), "mem://", mixed, map[string]string{results.TargetLabel: "memory"})
	if err != nil {
		return nil, err
	}
	runs = append(runs, r)

	// Interrupted: the context ends the run early; the engine returns the partial result.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	long := randread
	long.Name, long.Runtime = "long-read", 10*time.Second
	r, err = run(ctx, "mem://", long, nil)
	if r == nil || r.Complete || err == nil {
		return nil, errors.New("the interrupted run was not returned as incomplete")
	}
	r.Error += " (last target smb://bench:" + secret + "@127.0.0.1:4450/share/vm.img)"
	runs = append(runs, r)

	// A hand-edited document: secrets in the command line and the target URL.
	leaky := *runs[0]
	leaky.ID = "leakyleakyleaky1"
	leaky.Repeat, leaky.Repeats = 0, 0
	leaky.Target.URL = "smb://bench:" + secret + "@127.0.0.1:4450/share/vm.img?password=" + secret
	leaky.Target.Backend = "smb"
	leaky.Command = []string{"vmstorbench", "run", "--target", leaky.Target.URL,
		"--target=iscsi://127.0.0.1:3260/iqn.2026-01.lab:t/0?secret=" + secret, "--smb-password", secret,
		"--fio", "rw=randread bs=4k"}
	runs = append(runs, &leaky)

	// A migration run: the mixed run's document as if measured inside a migrating VM.
	mig := *runs[2]
	mig.ID = "migmigmigmigmig1"
	// The label is markup: text from documents must reach the page (tables and the charts'
	// SVG) as text.
	mig.Labels = map[string]string{results.TargetLabel: "nfs-ganesha <script>alert(1)</script>"}
	mig.Migration = &results.Migration{
		Mode: "precopy", Outcome: "completed", Accel: "tcg", AccelNote: "KVM tried: emulation failure",
		QEMU: "7.2.0", GuestKernel: "6.1.0-56-amd64", GuestMemoryB: 256 << 20, GuestCPUs: 1,
		Access: "nbd-export (nfs)", DiskURL: "nbd://127.0.0.1:10809/vm?token=" + secret, Security: "tls",
		Link:   &results.MigrationLink{Preset: "lan", LatencyNS: 500_000, BandwidthBps: 125e6},
		Params: results.MigrationParams{DowntimeLimitMS: 300, AtNS: 2e9, AfterNS: 2e9, DeadlineNS: 60e9},
		BootNS: 1.5e9, StartNS: 2e9, EndNS: 3.1e9, QEMUDowntimeMS: 12.5, PauseMS: 41.2, LongestStallMS: 187.3,
		LongestStall: &results.Stall{StartNS: 3.0e9, EndNS: 3.1873e9}, TotalTimeMS: 1100, SetupTimeMS: 3,
		TransferredB: 270 << 20, DirtySyncCount: 4,
		Before: &results.MigrationPhase{StartNS: 0, EndNS: 2e9, IOs: 9000, IOPS: 4500, BWBps: 18.4e6, LatMeanNS: 210e3, LatP99NS: 900e3, LatMaxNS: 3e6, LongestStallNS: 4e6},
		During: &results.MigrationPhase{StartNS: 2e9, EndNS: 3.1e9, IOs: 3000, IOPS: 2727, BWBps: 11.2e6, LatMeanNS: 400e3, LatP99NS: 2e6, LatMaxNS: 190e6, LongestStallNS: 187.3e6},
		After:  &results.MigrationPhase{StartNS: 3.1e9, EndNS: 5.1e9, IOs: 8800, IOPS: 4400, BWBps: 18e6, LatMeanNS: 215e3, LatP99NS: 950e3, LatMaxNS: 3e6, LongestStallNS: 5e6},
		Integrity: &results.MigrationIntegrity{Where: "destination",
			ReadBack: &results.Verify{Algorithm: "crc32c", Checked: 2048},
			Workload: &results.Verify{Algorithm: "crc32c", Checked: 1900}},
		Memory:      &results.MemoryCheck{PageSize: 4096, Pages: 65536, DifferingPages: 7, PauseNS: 80e6},
		Completions: 20800,
		Notes:       []string{"disk served from smb://bench:" + secret + "@127.0.0.1/share/vm.img by the NBD export"},
	}
	runs = append(runs, &mig)
	return runs, nil
}

// pageOf renders runs with the real charts.
func pageOf(t *testing.T, runs []*results.Run, opt HTMLOptions) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, runs, opt); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// externalRef finds anything in a page that would make a browser fetch something or run
// code: scripts, linked stylesheets, imports, url() other than fragments and data:, src or
// href other than fragments, and any http(s) URL at all.
var externalRef = regexp.MustCompile(`(?i)<script|<link\b|<iframe|<object|<embed|@import|url\(\s*['"]?[^'"#d\s)]|\b(src|href)\s*=\s*["']?[^"'#\s>]|https?://|//[a-z0-9.-]+\.[a-z]{2,}/`)

// figureTitles are the captions of a page's figures in order.
var figCaption = regexp.MustCompile(`<figcaption id="([^"]+)-caption"><b>Figure (\d+)\.</b> ([^<]*)</figcaption>`)

func TestWriteHTML(t *testing.T) {
	runs := engineRuns(t)
	charts, chartErr := chart.All(runs)
	extra := HTMLSection{Title: "Comparison with last week", HTML: template.HTML(`<p id="cmp">no regression: 4 checks passed</p>`)}
	out := pageOf(t, runs, HTMLOptions{Title: "Lab <storage> report", Generated: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Extra: []HTMLSection{extra}})

	if strings.Contains(out, secret) {
		i := strings.Index(out, secret)
		t.Errorf("credential in the page: …%s…", out[max(0, i-200):i+20])
	}
	if m := externalRef.FindAllString(out, 5); m != nil {
		t.Errorf("page refers outside itself: %q", m)
	}
	must := []string{
		"<title>Lab &lt;storage&gt; report</title>", "nfs-ganesha &lt;script&gt;alert(1)&lt;/script&gt;", "Generated 2026-11-22 10:00:00 UTC",
		`id="incomplete"`, "1 incomplete run", "run interrupted", "smb://bench@127.0.0.1:4450/share/vm.img",
		`data-dir="read"`, `data-dir="write"`, `data-dir="sync"`, "Syncs/s",
		"±", "median of 2 runs", // the repeated case: median, spread and range
		`id="migration-1"`, "QEMU downtime", "12.5 ms", "41.2 ms", "187 ms", "Longest workload stall",
		"2048 blocks checked (crc32c), 0 mismatches", "7 of 65536 pages", "nbd://127.0.0.1:10809/vm?token=REDACTED",
		// The migration summary table and the downtime chart.
		`<a href="#migrations-summary">Migration summary</a>`, `<h3 id="migrations-summary">Migrations</h3>`, `data-table="migrations-summary"`,
		`<th class="num">QEMU downtime (ms)</th>`, `<td class="num">12.5</td>`, `<td class="num">187</td>`, `<td class=" bad">7 differing pages</td>`,
		"Migration downtime: QEMU&#39;s figure and the longest stall the workload saw, by scenario",
		"<h2>Comparison with last week</h2>", `<p id="cmp">no regression: 4 checks passed</p>`,
		"<h3 id=\"wl-1\">rand-read-4k</h3>", "rw=randread\nbs=4k\nsize=4m\niodepth=4\n",
		"--target=iscsi://127.0.0.1:3260/iqn.2026-01.lab:t/0?secret=REDACTED", "--smb-password REDACTED", "&#39;rw=randread bs=4k&#39;",
		`id="hosts"`, runs[0].Host.Hostname, runs[0].Host.GoVersion, runs[0].ID, "vmstorbench " + runs[0].Tool.Version,
	}
	for _, s := range must {
		if !strings.Contains(out, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	// One figure per chart, in order, with its title, as an inline <svg> without prologue.
	if strings.Contains(out, "<?xml") || strings.Contains(out, "<!-- Generated by") {
		t.Errorf("SVG prologue left in the page")
	}
	caps := figCaption.FindAllStringSubmatch(out, -1)
	if chartErr != nil {
		t.Logf("chart.All: %v", chartErr)
	}
	if len(caps) != len(charts) || len(charts) == 0 {
		t.Fatalf("%d figures, want one per chart (%d)", len(caps), len(charts))
	}
	if n := strings.Count(out, "<svg "); n != len(charts) {
		t.Errorf("%d inline <svg>, want %d", n, len(charts))
	}
	for i, c := range charts {
		if caps[i][3] != template.HTMLEscapeString(c.Title) {
			t.Errorf("figure %d titled %q, want %q", i+1, caps[i][3], c.Title)
		}
		if !strings.Contains(out, `aria-labelledby="`+caps[i][1]+`-caption"`) {
			t.Errorf("figure %s: svg not labelled by its caption", caps[i][1])
		}
	}
}

// TestWriteHTMLChartsFail: a chart set that cannot be drawn, or one chart that panics,
// leaves a visible note and the rest of the report.
func TestWriteHTMLChartsFail(t *testing.T) {
	runs := engineRuns(t)
	cases := []struct {
		name   string
		source chartSource
		want   string
	}{
		{"error", func([]*results.Run) ([]*chart.Chart, error) {
			return nil, errors.New("no font for smb://u:" + secret + "@h/s")
		}, "Charts could not be drawn: no font for smb://u@h/s"},
		{"panic", func([]*results.Run) ([]*chart.Chart, error) { panic("boom") }, "Charts could not be drawn: chart: boom"},
		{"one chart broken", func([]*results.Run) ([]*chart.Chart, error) {
			return []*chart.Chart{{Name: "broken", Title: "A broken chart"}}, nil
		}, "This chart could not be drawn"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeHTML(&buf, runs, HTMLOptions{}, c.source); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, s := range []string{c.want, `id="summary"`, `data-dir="read"`, `id="workloads"`, `id="runs"`} {
				if !strings.Contains(out, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			if strings.Contains(out, secret) {
				t.Errorf("credential in the page")
			}
		})
	}
	// Only an incomplete run: the real charts have nothing to draw, and say so.
	var incomplete []*results.Run
	for _, r := range runs {
		if !r.Complete {
			incomplete = append(incomplete, r)
		}
	}
	out := pageOf(t, incomplete, HTMLOptions{})
	for _, s := range []string{"No charts: ", `id="incomplete"`, "run interrupted", `data-dir="read"`} {
		if !strings.Contains(out, s) {
			t.Errorf("page of an incomplete run lacks %q", s)
		}
	}
	if err := WriteHTML(&bytes.Buffer{}, nil, HTMLOptions{}); err == nil {
		t.Errorf("no runs: no error")
	}
}

// TestFioJobRoundTrip: every workload definition in the report reads back as the same
// workload.
func TestFioJobRoundTrip(t *testing.T) {
	bs := func(r, w workloads.BlockSize) [2]workloads.BlockSize { return [2]workloads.BlockSize{r, w} }
	k4, k64 := workloads.Fixed(4096), workloads.Fixed(65536)
	cases := []workloads.Workload{
		{Name: "rand-read-4k", RW: "randread", BS: bs(k4, k4), Size: 1 << 30, IODepth: 32},
		{Name: "mix", RW: "randrw", RWMixRead: 70, BS: bs(k4, k64), Size: 1<<20 + 4097, IODepth: 2, NumJobs: 3},
		{Name: "ranges", RW: "rw", BS: bs(workloads.BlockSize{Min: 4096, Max: 65536}, workloads.BlockSize{Min: 512, Max: 1 << 20}), Size: 3 << 40},
		{Name: "same range", RW: "randwrite", BS: bs(workloads.BlockSize{Min: 4096, Max: 131072}, workloads.BlockSize{Min: 4096, Max: 131072}), Size: 1 << 20},
		{Name: "timed", RW: "write", BS: bs(k64, k64), Size: 64 << 20, Offset: 1 << 20, IOSize: 128 << 20,
			Runtime: 1500 * time.Millisecond, TimeBased: true, RampTime: 2 * time.Second, Rate: [2]int64{0, 10 << 20},
			RateIOPS: [2]int64{1000, 1000}, RandSeed: 42, Direct: true, Fsync: 8, Verify: "crc32c"},
		{Name: "µs", RW: "read", BS: bs(k4, k4), Size: 1 << 20, Runtime: 1500 * time.Microsecond, RateIOPS: [2]int64{1500, 0}},
	}
	for _, w := range cases {
		t.Run(w.Name, func(t *testing.T) {
			w = w.Defaults()
			job := FioJob(w)
			jobs, err := workloads.ParseJobString("report.fio", job)
			if err != nil {
				t.Fatalf("%v\n%s", err, job)
			}
			if len(jobs) != 1 || !reflect.DeepEqual(jobs[0].Workload, w) {
				t.Errorf("read back\n%+v\nwant\n%+v\nfrom\n%s", jobs[0].Workload, w, job)
			}
		})
	}
}

func TestRedactArgs(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"vmstorbench", "run", "--rw", "randread", "/tmp/x:y"}, []string{"vmstorbench", "run", "--rw", "randread", "/tmp/x:y"}},
		{[]string{"--target", "smb://u:pw@h/s/f?password=pw&dialect=3.0"}, []string{"--target", "smb://u@h/s/f?dialect=3.0&password=REDACTED"}},
		{[]string{"--target=iscsi://h/iqn.x:t/0?chap_user=u&secret=pw"}, []string{"--target=iscsi://h/iqn.x:t/0?chap_user=u&secret=REDACTED"}},
		{[]string{"--password", "pw", "--token=pw", "--secret_file=/etc/s"}, []string{"--password", "REDACTED", "--token=REDACTED", "--secret_file=/etc/s"}},
		{[]string{"smb://u:p w@h/s"}, []string{"(unparsable URL)"}}, // a password with a space is dropped whole
	}
	for _, c := range cases {
		got := RedactArgs(c.in)
		if strings.Join(got, "\x00") != strings.Join(c.want, "\x00") {
			t.Errorf("RedactArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := redactText("open smb://u:pw@h/s: refused (see nfs://h/e?token=pw)."); got != "open smb://u@h/s: refused (see nfs://h/e?token=REDACTED)." {
		t.Errorf("redactText: %q", got)
	}
	if got := shellLine([]string{"vmstorbench", "run", "--fio", "rw=randread bs=4k", "it's"}); got != `vmstorbench run --fio 'rw=randread bs=4k' 'it'\''s'` {
		t.Errorf("shellLine: %s", got)
	}
}

func TestHTMLMarksVerifyFailed(t *testing.T) {
	runs := sampleRuns()[:1]
	bad := *runs[0]
	bad.ID = "dddd4444"
	bad.Target.URL = "nfs://127.0.0.1:2049/export/other.img"
	bad.Verify = &results.Verify{Algorithm: "crc32c", Checked: 2048, Mismatches: 2048, First: []results.Mismatch{{Offset: 0}, {Offset: 4096}}}
	out := pageOf(t, append(runs, &bad), HTMLOptions{})
	for _, want := range []string{`id="incomplete"`, "1 run failed verify: data did not read back as written",
		"<b class=\"bad\">VERIFY FAILED</b>", "verify: 2048 of 2048 blocks mismatched (first at offsets 0, 4096, …)",
		`<span class="bad">VERIFY FAILED</span>`, ">Failed runs (1)<"} {
		if !strings.Contains(out, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestHTMLMigrationSummary: the migration table and the VEE '07 layout on the page, as the
// text formats have them (one definition of each table), and the downtime chart.
func TestHTMLMigrationSummary(t *testing.T) {
	runs := veeRuns()
	out := pageOf(t, runs, HTMLOptions{Title: "wide-area"})
	cases := results.Group(runs)
	g, _ := migrationGrid(cases, redactedTargetName)
	vee := veeGrids(cases, redactedTargetName)
	if g == nil || len(vee) != 1 {
		t.Fatalf("grids: %v, %d VEE", g, len(vee))
	}
	for _, grid := range append([]*grid{g}, vee...) {
		for _, h := range grid.Header {
			if !strings.Contains(out, ">"+template.HTMLEscapeString(h)+"</th>") {
				t.Errorf("page lacks header %q of %s", h, grid.Title)
			}
		}
		for _, row := range grid.Rows {
			for _, c := range row {
				if !strings.Contains(out, ">"+template.HTMLEscapeString(c.Text)+"</td>") {
					t.Errorf("page lacks cell %q of %s", c.Text, grid.Title)
				}
			}
		}
	}
	for _, s := range []string{`data-table="migrations-summary"`, `data-table="vee-1"`, "VEE &#39;07 layout (Bradford et al., Table 2)",
		`title="median of 3 runs; min 4.00, max 4.08">4.04</td>`, "Migration downtime: QEMU&#39;s figure"} {
		if !strings.Contains(out, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	if m := externalRef.FindAllString(out, 5); m != nil {
		t.Errorf("page refers outside itself: %q", m)
	}
}
