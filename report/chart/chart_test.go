package chart

import (
	"bytes"
	"errors"
	"html"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/vmstorbench/vmstorbench/results"
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
	var out []string
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
	tests := []struct {
		dir, metric           string
		wantTitle, wantYLabel string
	}{
		{"read", "iops", "Read IOPS by workload and target — median of 2 runs, whiskers min–max; higher is better", "IOPS"},
		{"read", "bw", "Read throughput by workload and target", "MB/s (10^6 B/s)"},
		{"write", "p99", "Write p99 latency: oltp-4k-70-30 — median of 2 runs", "p99 latency (µs)"},
	}
	for _, tt := range tests {
		c, err := Bars(demo, tt.dir, metric(t, tt.metric))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(c.Title, tt.wantTitle) {
			t.Errorf("title %q, want prefix %q", c.Title, tt.wantTitle)
		}
		if got := c.Plot.Y.Label.Text; got != tt.wantYLabel {
			t.Errorf("y label %q, want %q", got, tt.wantYLabel)
		}
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
	if !strings.Contains(buf.String(), "smb-signed (incomplete runs only)") {
		t.Error("legend does not say smb-signed has only incomplete runs")
	}
	for _, p := range c.Plot.Y.Tick.Marker.Ticks(c.Plot.Y.Min, c.Plot.Y.Max) {
		if p.Value > 1e9 {
			t.Fatalf("y axis reaches %g: the incomplete run counted", p.Value)
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
		want := []string{
			"bars-iops-read", "bars-bw-read", "bars-p99-read", "bars-iops-write", "bars-bw-write", "bars-p99-write",
			"cdf-read-oltp-4k-70-30", "cdf-read-rand-read-4k", "cdf-read-oltp-4k-70-30-precopy-tls-lan",
			"cdf-write-oltp-4k-70-30", "cdf-write-oltp-4k-70-30-precopy-tls-lan",
			"timeline-nfs-ganesha-oltp-4k-70-30-precopy-tls-lan",
		}
		if !slices.Equal(got, want) {
			t.Errorf("charts\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("few cases get a timeline each, sync has no throughput", func(t *testing.T) {
		charts, err := All([]*results.Run{null, fsync})
		if err != nil {
			t.Fatal(err)
		}
		got := names(charts)
		for _, w := range []string{"bars-iops-sync", "bars-p99-sync", "cdf-sync-log-write-fsync", "timeline-null-rand-read-4k", "timeline-mem-log-write-fsync"} {
			if !slices.Contains(got, w) {
				t.Errorf("no %s in %q", w, got)
			}
		}
		if slices.Contains(got, "bars-bw-sync") {
			t.Errorf("sync throughput drawn: %q", got)
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
