package chart

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func metric(t testing.TB, name string) results.Metric {
	t.Helper()
	m, err := results.MetricByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// texts are what a reader must find in a chart: the title lines, axis labels, legends.
func texts(c *Chart) []string {
	main, note := c.head.lines(c.Width)
	out := append(main, note...)
	for _, p := range c.panels() {
		out = append(out, strings.Split(p.Title.Text, "\n")...)
		out = append(out, p.X.Label.Text, p.Y.Label.Text)
	}
	var nonEmpty []string
	for _, s := range out {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	return nonEmpty
}

// checkRendered renders c in every format and checks each output.
func checkRendered(t *testing.T, c *Chart, legend []string) {
	t.Helper()
	for _, format := range renderFormats {
		var buf bytes.Buffer
		if err := c.Render(&buf, format); err != nil {
			t.Fatalf("%s: render %s: %v", c.Name, format, err)
		}
		out := buf.Bytes()
		switch format {
		case "svg":
			svg := string(out)
			if !strings.HasPrefix(svg, "<?xml") || !strings.Contains(svg, "<svg") {
				t.Fatalf("%s: not an SVG document: %.80q", c.Name, svg)
			}
			for _, s := range append(texts(c), legend...) {
				if !strings.Contains(svg, html.EscapeString(s)) {
					t.Errorf("%s: SVG lacks %q", c.Name, s)
				}
			}
		case "png":
			img, err := png.Decode(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("%s: PNG: %v", c.Name, err)
			}
			b := img.Bounds()
			if want := int(math.Round(float64(c.Width/vg.Inch) * pngDPI)); b.Dx() < want-1 || b.Dx() > want+1 {
				t.Errorf("%s: PNG is %d px wide, want %d", c.Name, b.Dx(), want)
			}
			colours := map[[4]uint32]bool{}
			for y := b.Min.Y; y < b.Max.Y; y += 3 {
				for x := b.Min.X; x < b.Max.X; x += 3 {
					r, g, bl, a := img.At(x, y).RGBA()
					colours[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
				}
			}
			if len(colours) < 8 {
				t.Errorf("%s: PNG has %d distinct colours: blank?", c.Name, len(colours))
			}
		case "pdf":
			if !bytes.HasPrefix(out, []byte("%PDF")) {
				t.Errorf("%s: PDF starts with %.10q", c.Name, out)
			}
		}
	}
}

func TestChartsRenderInEveryFormat(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	demo := results.Group(demoRuns(t, []*results.Run{rw}, 3))
	tests := []struct {
		name   string
		make   func() (*Chart, error)
		legend []string
	}{
		{"bars iops read", func() (*Chart, error) { return Bars(demo, "read", metric(t, "iops")) }, demoTargets},
		{"bars p99 write", func() (*Chart, error) { return Bars(demo, "write", metric(t, "p99")) }, demoTargets},
		{"bars bw read", func() (*Chart, error) { return Bars(demo, "read", metric(t, "bw")) }, demoTargets},
		{"cdf read", func() (*Chart, error) { return LatencyCDF(demo, "read") }, demoTargets},
		{"timeline plain", func() (*Chart, error) { return Timeline(rw) }, []string{"read IOPS", "write IOPS", "read p99", "write p50"}},
		{"timeline precopy", func() (*Chart, error) { return Timeline(migrationRun(t, "precopy")) },
			[]string{"inside the VM", "outside (host, same backend)", "inside p99", "outside p50", "migration setup",
				"QEMU downtime 40 ms", "longest stall 120 ms", "downtime 52 ms (STOP → RESUME)", "longest I/O stall 120 ms"}},
		{"timeline postcopy", func() (*Chart, error) { return Timeline(migrationRun(t, "postcopy")) },
			[]string{"post-copy (VM on destination)", "QEMU downtime 1 ms", "longest stall 160 ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.make()
			if err != nil {
				t.Fatal(err)
			}
			if c.Name == "" || c.Name != safeName(c.Name) {
				t.Errorf("name %q is not file-safe", c.Name)
			}
			if c.Title == "" || strings.Contains(c.Title, "\n") {
				t.Errorf("title %q: want one line", c.Title)
			}
			checkRendered(t, c, tt.legend)
		})
	}
}

func TestBarsTitlesAndUnits(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	null := loadFixture(t, "null-randread.json")
	demo := results.Group(demoRuns(t, []*results.Run{rw, null}, 2))
	oltp := demo[:len(demoTargets)] // the cases of one workload
	tests := []struct {
		name                  string
		cases                 []*results.Case
		dir, metric           string
		wantTitle, wantXLabel string
		panels                int
	}{
		{"one workload", oltp, "read", "iops", "Read IOPS — oltp-4k-70-30 (4k randrw 70/30 QD4). Median of 2 runs, whiskers min–max; higher is better.", "IOPS", 1},
		{"one workload, latency", oltp, "write", "p99", "Write p99 latency — oltp-4k-70-30 (4k randrw 70/30 QD4). Median of 2 runs, whiskers min–max; lower is better.", "p99 latency (µs)", 1},
		{"a panel per workload", demo, "read", "bw", "Read throughput by workload. Median of 2 runs", "MB/s (10^6 B/s)", 2},
		{"workloads without the direction get no panel", demo, "write", "iops", "Write IOPS — oltp-4k-70-30", "IOPS", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Bars(tt.cases, tt.dir, metric(t, tt.metric))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.Title, tt.wantTitle) {
				t.Errorf("title %q, want prefix %q", c.Title, tt.wantTitle)
			}
			if n := len(c.panels()); n != tt.panels {
				t.Errorf("%d panels, want %d", n, tt.panels)
			}
			for _, p := range c.panels() {
				if got := p.X.Label.Text; got != tt.wantXLabel {
					t.Errorf("value axis label %q, want %q", got, tt.wantXLabel)
				}
				// A row per target, named on the y axis.
				var names []string
				for _, tk := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
					names = append(names, tk.Label)
				}
				if !slices.Equal(names, demoTargets) {
					t.Errorf("rows %q, want %q", names, demoTargets)
				}
			}
		})
	}
}

func TestBarsLeaveOutIncompleteRuns(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	runs := demoRuns(t, []*results.Run{rw}, 1)
	// smb-signed's only run failed; nfs-go has a failed repeat with absurd figures.
	for i, r := range runs {
		if results.TargetName(r) == "smb-signed" {
			runs[i] = incomplete(t, r, "smb-signed")
		}
	}
	bad := asTarget(t, rw, "nfs-go", 1000, 1, 2)
	bad.Complete = false
	runs = append(runs, bad)
	cases := results.Group(runs)
	c, err := Bars(cases, "read", metric(t, "iops"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Render(&buf, "svg"); err != nil {
		t.Fatal(err)
	}
	// smb-signed keeps its row, which says why it has no bar.
	for _, s := range []string{">smb-signed<", ">incomplete runs only<"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("SVG lacks %q: the chart does not say smb-signed has only incomplete runs", s)
		}
	}
	for _, p := range c.Plot.X.Tick.Marker.Ticks(c.Plot.X.Min, c.Plot.X.Max) {
		if p.Value > 1e9 {
			t.Fatalf("value axis reaches %g: the incomplete run counted", p.Value)
		}
	}
}

func TestLatencyCDF(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	t.Run("repeats merge through histograms", func(t *testing.T) {
		a, b := asTarget(t, rw, "nfs-go", 1, 0, 2), asTarget(t, rw, "nfs-go", 0.5, 1, 2)
		cv, err := caseCurve([]results.Latency{a.Read.Lat, b.Read.Lat})
		if err != nil {
			t.Fatal(err)
		}
		if cv.percentiles || cv.runs != 2 {
			t.Errorf("curve %+v: want merged histograms of 2 runs", cv)
		}
		checkCDF(t, cv)
		// The slower repeat doubles the latencies: the merged median lies between both.
		merged := cv.p99
		if merged < float64(a.Read.Lat.Percentiles["99.000000"]) || merged > float64(b.Read.Lat.Percentiles["99.000000"])*1.01 {
			t.Errorf("merged p99 %g not within the repeats' (%d, %d)", merged, a.Read.Lat.Percentiles["99.000000"], b.Read.Lat.Percentiles["99.000000"])
		}
	})
	t.Run("percentiles without histogram", func(t *testing.T) {
		r := clone(t, rw)
		r.Read.Lat.Histogram = ""
		r.Labels = map[string]string{results.TargetLabel: "old-document"}
		cv, err := caseCurve([]results.Latency{r.Read.Lat})
		if err != nil {
			t.Fatal(err)
		}
		if !cv.percentiles {
			t.Error("want a curve from percentiles")
		}
		checkCDF(t, cv)
		c, err := LatencyCDF(results.Group([]*results.Run{r, rw}), "read")
		if err != nil {
			t.Fatal(err)
		}
		checkRendered(t, c, []string{"old-document", "percentiles)", "mem://"})
	})
	t.Run("several workloads name them in the legend", func(t *testing.T) {
		null := loadFixture(t, "null-randread.json")
		c, err := LatencyCDF(results.Group([]*results.Run{rw, null}), "read")
		if err != nil {
			t.Fatal(err)
		}
		checkRendered(t, c, []string{"mem:// · oltp-4k-70-30", "null:// · rand-read-4k"})
	})
}

// checkCDF checks a curve rises from 0 to 100 % with growing latency.
func checkCDF(t *testing.T, cv curve) {
	t.Helper()
	if n := len(cv.pts); n < 3 || cv.pts[0].Y != 0 || cv.pts[n-1].Y != 100 {
		t.Fatalf("curve from %v to %v: want 0 to 100 %%", cv.pts[0], cv.pts[len(cv.pts)-1])
	}
	for i := 1; i < len(cv.pts); i++ {
		if cv.pts[i].X < cv.pts[i-1].X || cv.pts[i].Y < cv.pts[i-1].Y {
			t.Fatalf("curve not monotonic at %d: %v then %v", i, cv.pts[i-1], cv.pts[i])
		}
	}
}

func TestMigrationPhases(t *testing.T) {
	r := migrationRun(t, "precopy")
	sh, mk := migrationPhases(r.Migration)
	var labels []string
	for _, s := range sh.items {
		labels = append(labels, s.label)
	}
	want := []string{"migration setup", "pre-copy (VM runs on source)", "downtime 52 ms (STOP → RESUME)", "longest I/O stall 120 ms"}
	if !slices.Equal(labels, want) {
		t.Errorf("phases %q, want %q", labels, want)
	}
	if sh.items[1].x1 != 4.95 || sh.items[2].x0 != 4.95 || sh.items[2].x1 != 5.002 {
		t.Errorf("pre-copy ends at %g, downtime %g–%g: want 4.95, 4.95–5.002", sh.items[1].x1, sh.items[2].x0, sh.items[2].x1)
	}
	if len(mk.items) != 2 || mk.items[0].label != "longest stall 120 ms" || mk.items[1].label != "QEMU downtime 40 ms" {
		t.Errorf("marks %+v", mk.items)
	}
	if got := passStarts(r.Migration); !slices.Equal(got, []float64{3, 3.9, 4.5, 4.85}) {
		t.Errorf("pass starts %v", got)
	}
	iops, _, _ := outsideWindows(r.Migration)
	if iops[0].t0 != 0.2 || iops[0].t1 != 0.3 {
		t.Errorf("outside starts at %g–%g s, want 0.2–0.3 (its start on the migration's axis)", iops[0].t0, iops[0].t1)
	}
}

func TestPauseWindow(t *testing.T) {
	const ms = int64(1e6)
	base := results.Migration{Mode: "precopy", Outcome: "completed", StartNS: 3000 * ms, EndNS: 5000 * ms, QEMUDowntimeMS: 40}
	tests := []struct {
		name       string
		edit       func(m *results.Migration)
		start, end int64
		events, ok bool
	}{
		{"events", func(m *results.Migration) {
			m.Events = []results.MigrationEvent{{TNS: 4950 * ms, Side: "source", Name: "STOP"}, {TNS: 5002 * ms, Side: "destination", Name: "RESUME"}}
		}, 4950 * ms, 5002 * ms, true, true},
		{"precopy without events: at the end", func(m *results.Migration) {}, 4960 * ms, 5000 * ms, false, true},
		{"postcopy without events: at the switchover", func(m *results.Migration) {
			m.Mode, m.SwitchoverNS = "postcopy", 4000*ms
		}, 4000 * ms, 4040 * ms, false, true},
		{"stopcopy without events: the whole migration", func(m *results.Migration) { m.Mode = "stopcopy" }, 3000 * ms, 5000 * ms, false, true},
		{"cancelled: no pause", func(m *results.Migration) { m.Outcome = "cancelled" }, 0, 0, false, false},
		{"no figure", func(m *results.Migration) { m.QEMUDowntimeMS = 0 }, 0, 0, false, false},
		{"unknown downtime: the host-seen pause", func(m *results.Migration) {
			m.QEMUDowntimeMS, m.QEMUDowntimeUnknown, m.PauseMS = 0, "no completed job", 25
		}, 4975 * ms, 5000 * ms, false, true},
		{"unknown downtime, no pause either", func(m *results.Migration) { m.QEMUDowntimeUnknown = "no completed job" }, 0, 0, false, false},
	}
	for _, tt := range tests {
		m := base
		tt.edit(&m)
		s, e, ev, ok := pauseWindow(&m)
		if s != tt.start || e != tt.end || ev != tt.events || ok != tt.ok {
			t.Errorf("%s: got %d–%d events=%v ok=%v, want %d–%d %v %v", tt.name, s, e, ev, ok, tt.start, tt.end, tt.events, tt.ok)
		}
	}
}

func TestAll(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	null := loadFixture(t, "null-randread.json")
	fsync := loadFixture(t, "mem-randwrite-fsync.json")
	names := func(cs []*Chart) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	t.Run("demo comparison", func(t *testing.T) {
		runs := demoRuns(t, []*results.Run{rw, null}, 2)
		runs = append(runs, incomplete(t, rw, "smb-signed"), migrationRun(t, "precopy"))
		charts, err := All(runs)
		if err != nil {
			t.Fatal(err)
		}
		got := names(charts)
		// Per workload and direction: bars of IOPS, throughput, p99, then the CDF. The
		// migration's workload ran on one target: a CDF, no bars; then its downtime and
		// stall, and its timeline.
		want := []string{
			"bars-iops-read-oltp-4k-70-30", "bars-bw-read-oltp-4k-70-30", "bars-p99-read-oltp-4k-70-30", "cdf-read-oltp-4k-70-30",
			"bars-iops-write-oltp-4k-70-30", "bars-bw-write-oltp-4k-70-30", "bars-p99-write-oltp-4k-70-30", "cdf-write-oltp-4k-70-30",
			"bars-iops-read-rand-read-4k", "bars-bw-read-rand-read-4k", "bars-p99-read-rand-read-4k", "cdf-read-rand-read-4k",
			"cdf-read-oltp-4k-70-30-precopy-tls-lan", "cdf-write-oltp-4k-70-30-precopy-tls-lan",
			"migration-downtime-stall", "timeline-nfs-ganesha-oltp-4k-70-30-precopy-tls-lan",
		}
		if !slices.Equal(got, want) {
			t.Errorf("charts\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("few cases get a timeline each, sync has no throughput", func(t *testing.T) {
		other := asTarget(t, fsync, "nfs-go", 0.5, 0, 1)
		charts, err := All([]*results.Run{null, fsync, other})
		if err != nil {
			t.Fatal(err)
		}
		got := names(charts)
		for _, w := range []string{"bars-iops-sync-log-write-fsync", "bars-p99-sync-log-write-fsync", "cdf-sync-log-write-fsync",
			"cdf-read-rand-read-4k", "timeline-null-rand-read-4k", "timeline-mem-log-write-fsync", "timeline-nfs-go-log-write-fsync"} {
			if !slices.Contains(got, w) {
				t.Errorf("no %s in %q", w, got)
			}
		}
		for _, n := range got {
			if strings.HasPrefix(n, "bars-bw-sync") || strings.HasPrefix(n, "bars-") && strings.HasSuffix(n, "rand-read-4k") {
				t.Errorf("%s drawn (sync throughput, or bars of a workload with one target): %q", n, got)
			}
		}
	})
}

func TestErrors(t *testing.T) {
	rw := loadFixture(t, "mem-randrw.json")
	null := loadFixture(t, "null-randread.json")
	bad := incomplete(t, rw, "smb-signed")
	noSeries := clone(t, rw)
	noSeries.Series = results.Series{}
	good := results.Group([]*results.Run{rw})
	failed := results.Group([]*results.Run{bad})
	iops := metric(t, "iops")
	tests := []struct {
		name   string
		call   func() error
		want   string
		noData bool
	}{
		{"all: no runs", func() error { _, err := All(nil); return err }, "no runs", false},
		{"all: nil run", func() error { _, err := All([]*results.Run{rw, nil}); return err }, "run 1 is nil", false},
		{"all: only incomplete", func() error { _, err := All([]*results.Run{bad}); return err }, "all 1 runs are incomplete", true},
		{"bars: no cases", func() error { _, err := Bars(nil, "read", iops); return err }, "no cases", false},
		{"bars: unknown direction", func() error { _, err := Bars(good, "sideways", iops); return err }, "unknown direction", false},
		{"bars: zero metric", func() error { _, err := Bars(good, "read", results.Metric{}); return err }, "unknown metric", false},
		{"bars: direction without values", func() error {
			_, err := Bars(results.Group([]*results.Run{null}), "write", iops)
			return err
		}, "no write IOPS in 1 complete runs", true},
		{"bars: only incomplete", func() error { _, err := Bars(failed, "read", iops); return err }, "connection reset by peer", true},
		{"cdf: no cases", func() error { _, err := LatencyCDF(nil, "read"); return err }, "no cases", false},
		{"cdf: unknown direction", func() error { _, err := LatencyCDF(good, "up"); return err }, "unknown direction", false},
		{"cdf: only incomplete", func() error { _, err := LatencyCDF(failed, "read"); return err }, "incomplete", true},
		{"cdf: no latencies", func() error { _, err := LatencyCDF(good, "sync"); return err }, "no sync latencies", true},
		{"cdf: broken histogram", func() error {
			r := clone(t, rw)
			r.Read.Lat.Histogram = "not a histogram"
			_, err := LatencyCDF(results.Group([]*results.Run{r}), "read")
			return err
		}, "decode histogram", false},
		{"timeline: no run", func() error { _, err := Timeline(nil); return err }, "no run", false},
		{"timeline: incomplete", func() error { _, err := Timeline(bad); return err }, "incomplete", true},
		{"timeline: no series", func() error { _, err := Timeline(noSeries); return err }, "no time series", true},
		{"render: unknown format", func() error {
			c, err := Timeline(rw)
			if err != nil {
				return err
			}
			return c.Render(io.Discard, "gif")
		}, `unknown format "gif"`, false},
		{"render: nil chart", func() error { var c *Chart; return c.Render(io.Discard, "svg") }, "empty chart", false},
		{"render: no plot", func() error { return (&Chart{Name: "x"}).Render(io.Discard, "svg") }, "empty chart", false},
		{"write all: unknown format", func() error {
			dir := t.TempDir()
			_, err := WriteAll(dir, []*results.Run{rw}, []string{"svg", "jpeg"})
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("files written before the format was checked: %v", entries)
			}
			return err
		}, `unknown format "jpeg"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if got := errors.Is(err, ErrNoData); got != tt.noData {
				t.Errorf("errors.Is(err, ErrNoData) = %v, want %v", got, tt.noData)
			}
		})
	}
}

func TestWriteAll(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts")
	runs := []*results.Run{loadFixture(t, "null-randread.json")}
	paths, err := WriteAll(dir, runs, []string{"SVG", "pdf", "svg"})
	if err != nil {
		t.Fatal(err)
	}
	charts, err := All(runs)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2*len(charts) {
		t.Fatalf("%d files for %d charts in 2 formats: %q", len(paths), len(charts), paths)
	}
	for i, c := range charts {
		for j, f := range []string{"svg", "pdf"} {
			want := filepath.Join(dir, c.Name+"."+f)
			if paths[2*i+j] != want {
				t.Errorf("path %q, want %q", paths[2*i+j], want)
			}
			if st, err := os.Stat(want); err != nil || st.Size() == 0 {
				t.Errorf("%s: %v", want, err)
			}
		}
	}
}

func TestNormFormats(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		err  bool
	}{
		{nil, []string{"svg", "png", "pdf"}, false},
		{[]string{" PNG", "svg", "png"}, []string{"png", "svg"}, false},
		{[]string{"svg", ""}, nil, true},
		{[]string{"eps"}, nil, true},
	}
	for _, tt := range tests {
		got, err := normFormats(tt.in)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("normFormats(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestSafeName(t *testing.T) {
	tests := map[string]string{
		"bars-p99.9-read":                       "bars-p99.9-read",
		"Timeline nfs://h/e/vm.img  precopy":    "timeline-nfs-h-e-vm.img-precopy",
		"../../etc/passwd":                      "etc-passwd",
		"randread bs=4KiB iodepth=32 numjobs=1": "randread-bs-4kib-iodepth-32-numjobs-1",
	}
	for in, want := range tests {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkAllRenderSVG draws the standard set for the demo's comparison (8 targets ×
// 3 workloads) as SVG.
func BenchmarkAllRenderSVG(b *testing.B) {
	bases := []*results.Run{loadFixture(b, "mem-randrw.json"), loadFixture(b, "null-randread.json"), loadFixture(b, "mem-randwrite-fsync.json")}
	runs := demoRuns(b, bases, 1)
	b.ResetTimer()
	for b.Loop() {
		charts, err := All(runs)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range charts {
			if err := c.Render(io.Discard, "svg"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// svgText matches the text elements of gonum's SVGs: x, style and content.
var svgText = regexp.MustCompile(`<text x="([-0-9.e]+)" y="[-0-9.e]+" transform="scale\(1, -1\)"\s*style="([^"]*)"[^>]*>([^<]*)</text>`)

// TestChartSet checks the standard set for the demo's comparison (8 targets × a 4k random
// read, a 1 MiB sequential read and write, figures of real endpoints' order, one target
// missing a workload) and migration timelines: a bar chart per workload, metric and
// direction, each target in its colour everywhere, titles within the canvas, tick labels
// as plain numbers.
func TestChartSet(t *testing.T) {
	runs := realisticDemo(t, 2)
	// nfs-go did not run the sequential read.
	kept := runs[:0]
	for _, r := range runs {
		if !(results.TargetName(r) == "nfs-go" && r.Workload.Name == "seq-read") {
			kept = append(kept, r)
		}
	}
	runs = append(kept, migrationRun(t, "precopy"))
	charts, err := All(runs)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Chart{}
	for _, c := range charts {
		byName[c.Name] = c
	}
	titles := map[string]string{
		"bars-iops-read-rand-read-4k": "Read IOPS — rand-read-4k (4k randread QD1)",
		"bars-bw-read-seq-read":       "Read throughput — seq-read (1M read QD1)",
		"bars-p99-write-seq-write":    "Write p99 latency — seq-write (1M write QD1)",
		"cdf-read-rand-read-4k":       "Read latency CDF — rand-read-4k (4k randread QD1)",
	}
	for name, want := range titles {
		c := byName[name]
		if c == nil {
			t.Errorf("no chart %s in the set", name)
			continue
		}
		if !strings.HasPrefix(c.Title, want+". ") {
			t.Errorf("%s: title %q, want %q first", name, c.Title, want)
		}
	}
	nBars := 0
	for _, c := range charts {
		if !strings.HasPrefix(c.Name, "bars-") {
			continue
		}
		nBars++
		if n := len(c.panels()); n != 1 {
			t.Errorf("%s: %d panels, want one workload per chart", c.Name, n)
		}
	}
	if want := 3 * 3; nBars != want { // 3 workloads × IOPS, throughput, p99
		t.Errorf("%d bar charts, want %d", nBars, want)
	}
	// The seq-read chart lacks nfs-go: its orange is nowhere, smb-plain keeps its green.
	svg := renderSVG(t, byName["bars-iops-read-seq-read"])
	if fill := svgColor(seriesColor(1)); strings.Contains(svg, fill) {
		t.Errorf("seq-read bars use nfs-go's colour %s, though nfs-go has no seq-read", fill)
	}
	for i, target := range demoTargets {
		if target == "nfs-go" || seriesColor(i) == (color.NRGBA{A: 0xff}) {
			continue // gonum's SVG does not write black, its default fill
		}
		if fill := svgColor(seriesColor(i)); !strings.Contains(svg, fill) {
			t.Errorf("seq-read bars lack %s's colour %s", target, fill)
		}
	}

	for _, c := range charts {
		svg := renderSVG(t, c)
		main, note := c.head.lines(c.Width)
		if len(main) == 0 || len(note) == 0 {
			t.Errorf("%s: title %q/%q", c.Name, main, note)
		}
		ms, ns := headingStyles()
		for _, l := range main {
			checkFits(t, c, ms, l, svg)
		}
		for _, l := range note {
			checkFits(t, c, ns, l, svg)
		}
		for _, m := range svgText.FindAllStringSubmatch(svg, -1) {
			if exponent.MatchString(m[3]) {
				t.Errorf("%s: text %q in exponent notation", c.Name, m[3])
			}
		}
	}
}

var exponent = regexp.MustCompile(`\de[+-]?\d`)

// checkFits checks a title line is narrower than the canvas and drawn inside it.
func checkFits(t *testing.T, c *Chart, sty text.Style, line, svg string) {
	t.Helper()
	w := sty.Width(line)
	if w > c.Width-2*headingPad {
		t.Errorf("%s: title line %q is %v wide, canvas %v", c.Name, line, w, c.Width)
	}
	found := false
	for _, m := range svgText.FindAllStringSubmatch(svg, -1) {
		if m[3] != html.EscapeString(line) {
			continue
		}
		found = true
		x, err := strconv.ParseFloat(m[1], 64)
		if err != nil || x < 0 || vg.Length(x)+w > c.Width {
			t.Errorf("%s: title line %q drawn from x=%s, %v wide: outside the canvas (%v)", c.Name, line, m[1], w, c.Width)
		}
	}
	if !found {
		t.Errorf("%s: SVG lacks the title line %q", c.Name, line)
	}
}

func renderSVG(t *testing.T, c *Chart) string {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(&buf, "svg"); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func svgColor(c color.NRGBA) string { return fmt.Sprintf("fill:#%02X%02X%02X", c.R, c.G, c.B) }

func TestHeadingWraps(t *testing.T) {
	long := strings.Repeat("Read p99 latency by workload and target ", 4)
	url := "nfs://" + strings.Repeat("very-long-host-name.", 12) + "/export"
	for _, h := range []heading{
		{main: long, note: long},
		{main: "Read IOPS — " + url, note: "one run each"},
	} {
		c := &Chart{Name: "long", Plot: newPlot("", "x", "y"), head: h, Width: 4 * vg.Inch, Height: 3 * vg.Inch}
		main, note := h.lines(c.Width)
		if len(main) < 2 {
			t.Errorf("%q in %d lines on a 4-inch canvas", h.main, len(main))
		}
		if got := strings.Join(main, " "); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(h.main, " ", "") {
			t.Errorf("wrapping lost text: %q", got)
		}
		svg := renderSVG(t, c)
		ms, ns := headingStyles()
		for _, l := range main {
			checkFits(t, c, ms, l, svg)
		}
		for _, l := range note {
			checkFits(t, c, ns, l, svg)
		}
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		v              float64
		human, compact string
	}{
		{0, "0", "0"},
		{0.001, "0.001", "0.001"},
		{0.0123456, "0.0123", "0.0123"},
		{0.1, "0.1", "0.1"},
		{1, "1", "1"},
		{59.24, "59.2", "59.2"},
		{999.9, "1000", "1k"},
		{1000, "1000", "1k"},
		{6217.4, "6217", "6.22k"},
		{10000, "10k", "10k"},
		{999_600, "1M", "1M"},
		{1_360_000, "1.36M", "1.36M"},
		{3e9, "3G", "3G"},
		{-2500, "-2500", "-2.5k"},
	}
	for _, tt := range tests {
		if got := humanNumber(tt.v); got != tt.human {
			t.Errorf("humanNumber(%g) = %q, want %q", tt.v, got, tt.human)
		}
		if got := compactNumber(tt.v); got != tt.compact {
			t.Errorf("compactNumber(%g) = %q, want %q", tt.v, got, tt.compact)
		}
	}
}

func TestLogAxis(t *testing.T) {
	labels := func(lo, hi float64) []string {
		var a plot.Axis
		setLogAxis(&a, lo, hi)
		var out []string
		for _, tk := range a.Tick.Marker.Ticks(a.Min, a.Max) {
			if tk.Label != "" {
				out = append(out, tk.Label)
			}
		}
		return out
	}
	tests := []struct {
		lo, hi float64
		want   []string
	}{
		{0.05, 20000, []string{"0.1", "1", "10", "100", "1000", "10k"}},
		{30, 700, []string{"50", "100", "200", "500"}},  // narrow: the 2s and 5s too
		{0.03, 0.045, []string{"0.03", "0.04", "0.05"}}, // narrower: every mark
	}
	for _, tt := range tests {
		if got := labels(tt.lo, tt.hi); !slices.Equal(got, tt.want) {
			t.Errorf("log axis %g–%g labelled %q, want %q", tt.lo, tt.hi, got, tt.want)
		}
	}
	units := []struct {
		lo, hi float64 // ns
		want   string
	}{
		{30e3, 900e3, "µs"},
		{200e3, 120e6, "ms"}, // mostly above 1 ms
		{30e3, 20e6, "µs"},
		{2e6, 40e6, "ms"},
	}
	for _, u := range units {
		if got, _ := logUnit(u.lo, u.hi); got != u.want {
			t.Errorf("logUnit(%g, %g) = %s, want %s", u.lo, u.hi, got, u.want)
		}
	}
}

func TestTailAxis(t *testing.T) {
	var labels []string
	for _, tk := range tailTicks(4.15) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if want := []string{"0", "50", "90", "99", "99.9", "99.99"}; !slices.Equal(labels, want) {
		t.Errorf("tail axis labels %q, want %q", labels, want)
	}
	for _, tt := range []struct {
		p    float64
		n    int64
		want float64
	}{{0, 1000, 0}, {90, 1000, 1}, {99, 1000, 2}, {99.99, 1000, 3}, {100, 1000, 3}, {100, 1e6, 6}} {
		if got := tailY(tt.p, tt.n); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("tailY(%g, %d) = %g, want %g", tt.p, tt.n, got, tt.want)
		}
	}
	// The CDF uses it, with the p50 and p99 lines.
	c, err := LatencyCDF(results.Group([]*results.Run{loadFixture(t, "mem-randrw.json")}), "read")
	if err != nil {
		t.Fatal(err)
	}
	svg := renderSVG(t, c)
	for _, s := range []string{">99.9<", ">p50<", ">p99<", "Percentile axis stretched towards the tail"} {
		if !strings.Contains(svg, s) {
			t.Errorf("CDF lacks %q", s)
		}
	}
}

// TestSparseTimeline checks a run with one interval shows one point, not a line across
// the axis.
func TestSparseTimeline(t *testing.T) {
	c, err := Timeline(singlePoint(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Title, "One interval of 1 s, one point") {
		t.Errorf("title %q does not say it is one point", c.Title)
	}
	var buf bytes.Buffer
	if err := c.Render(&buf, "png"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// Columns of the plot area (left of the legend) with the read series' blue in them.
	b := img.Bounds()
	blue := okabeIto[0]
	cols := 0
	for x := b.Min.X; x < b.Min.X+b.Dx()*3/4; x++ {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 == uint32(blue.R) && g>>8 == uint32(blue.G) && bl>>8 == uint32(blue.B) {
				cols++
				break
			}
		}
	}
	if cols == 0 || cols > b.Dx()/20 {
		t.Errorf("the series' colour is in %d of %d columns: want a point, not a line", cols, b.Dx()*3/4)
	}
}

func TestShortWorkload(t *testing.T) {
	tests := []struct {
		fio, want string
	}{
		{"rw=randread bs=4k iodepth=1", "4k randread QD1"},
		{"rw=read bs=1m iodepth=8 numjobs=4", "1M read QD8 ×4 jobs"},
		{"rw=randrw rwmixread=70 bs=4k iodepth=4", "4k randrw 70/30 QD4"},
		{"rw=randwrite bs=4k fsync=8", "4k randwrite QD1, fsync every 8"},
		{"rw=randrw bs=4k,64k", "4k/64k randrw 50/50 QD1"},
		{"rw=randread bsrange=4k-64k", "4k-64k randread QD1"},
		{"rw=write bs=512", "512 write QD1"},
	}
	for _, tt := range tests {
		w, err := workloads.ParseOptions(strings.Fields(tt.fio + " size=16m"))
		if err != nil {
			t.Fatalf("%s: %v", tt.fio, err)
		}
		if got := shortWorkload(w); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.fio, got, tt.want)
		}
	}
}
