// Package chart draws the figures of a report from result documents: bars comparing the
// targets on each workload, latency CDFs on a tail-stretched percentile axis and timelines
// (with the phases of a live migration), as SVG, PNG or PDF. Every chart is meant to be read
// without a caption: its title names the metric, workload and direction (and, smaller, how
// the figures were made), its axes carry units in plain numbers and its legend or rows name
// the targets, each in the same colour in every chart of a set.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Chart is one named chart of a report.
type Chart struct {
	// Name is file-safe and unique within All's charts, e.g. "bars-iops-read-rand-read-4k".
	Name string
	// Title is the chart's title on one line, for captions. The drawn title is two parts,
	// each wrapped to the width: what is plotted, and below it, smaller, how.
	Title  string
	Plot   *plot.Plot
	Width  vg.Length
	Height vg.Length

	// below are more panels drawn under Plot, sharing its width (the timeline's latency
	// panel, the bars of further workloads).
	below []*plot.Plot
	// weights are the panels' shares of the height (bars: their rows); without them the
	// panels' data areas get the same height.
	weights []float64
	// head is the drawn title; without it the plot's own title is drawn.
	head heading
}

// ErrNoData is wrapped by the errors of charts that have nothing to draw (no complete run,
// no values of the metric, no time series). All skips such charts.
var ErrNoData = errors.New("nothing to plot")

// renderFormats are the formats Render knows (an array: nobody can change it).
var renderFormats = [...]string{"svg", "png", "pdf"}

// pngDPI makes PNGs sharp on high-density screens and in slides.
const pngDPI = 150

// Render writes the chart in format "svg", "png" or "pdf".
func (c *Chart) Render(w io.Writer, format string) (err error) {
	if c == nil || c.Plot == nil {
		return errors.New("chart: render: empty chart")
	}
	if c.Width <= 0 || c.Height <= 0 {
		return fmt.Errorf("chart %s: render: size %v×%v is not positive", c.Name, c.Width, c.Height)
	}
	var canvas vg.CanvasWriterTo
	switch strings.ToLower(format) {
	case "svg":
		canvas = vgsvg.New(c.Width, c.Height)
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(c.Width, c.Height), vgimg.UseDPI(pngDPI))}
	case "pdf":
		canvas = vgpdf.New(c.Width, c.Height)
	default:
		return fmt.Errorf("chart %s: render: unknown format %q (formats: %s)", c.Name, format, strings.Join(renderFormats[:], ", "))
	}
	// gonum panics on some data and font problems; a chart must fail as an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("chart %s: render %s: %v", c.Name, format, p)
		}
	}()
	c.draw(draw.New(canvas))
	if _, ok := canvas.(*vgsvg.Canvas); ok {
		var buf bytes.Buffer
		if _, err := canvas.WriteTo(&buf); err != nil {
			return fmt.Errorf("chart %s: write %s: %w", c.Name, format, err)
		}
		// The SVG names the font gonum measured the text with; Arial has the same metrics,
		// so viewers without Liberation Sans keep the layout.
		svg := bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"), []byte(svgFontFamily))
		if _, err := w.Write(svg); err != nil {
			return fmt.Errorf("chart %s: write %s: %w", c.Name, format, err)
		}
		return nil
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("chart %s: write %s: %w", c.Name, format, err)
	}
	return nil
}

const svgFontFamily = "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"

// draw lays the chart out: the title across the top, the panels stacked on the left, their
// legends in a column on the right, so that no legend ever hides data (gonum draws legends
// inside the plot area).
func (c *Chart) draw(dc draw.Canvas) {
	fillRect(dc, color.White, dc.Rectangle)
	dc = c.head.draw(dc)
	// A margin for the y axis' label and tick labels, and below the x axis'.
	dc = draw.Crop(dc, vg.Points(4), 0, vg.Points(3), 0)
	panels := c.panels()
	var legendW vg.Length
	for _, p := range panels {
		r := p.Legend.Rectangle(dc)
		legendW = max(legendW, r.Max.X-r.Min.X)
	}
	plotArea := dc
	if legendW > 0 {
		legendW += vg.Points(10)
		plotArea = draw.Crop(dc, 0, -legendW, 0, 0)
	}
	// Draw copies without their legends; the legends go in the column. Panel titles wrap
	// to the panel's width.
	bare := make([]*plot.Plot, len(panels))
	for i, p := range panels {
		cp := *p
		cp.Legend = plot.NewLegend()
		if cp.Title.Text != "" {
			sty := cp.Title.TextStyle
			cp.Title.Text = strings.Join(wrapTo(sty, strings.ReplaceAll(cp.Title.Text, "\n", " "), plotArea.Max.X-plotArea.Min.X-2*headingPad), "\n")
		}
		bare[i] = &cp
	}
	var areas []draw.Canvas
	switch {
	case len(bare) == 1:
		areas = []draw.Canvas{plotArea}
	case len(c.weights) == len(bare):
		areas = stack(bare, c.weights, plotArea)
	default:
		rows := make([][]*plot.Plot, len(bare))
		for i, p := range bare {
			rows[i] = []*plot.Plot{p}
		}
		tiles := draw.Tiles{Rows: len(bare), Cols: 1, PadY: vg.Points(8), PadTop: vg.Points(2), PadBottom: vg.Points(2)}
		for _, row := range plot.Align(rows, tiles, plotArea) {
			areas = append(areas, row[0])
		}
	}
	for i, p := range bare {
		p.Draw(areas[i])
		if legendW == 0 {
			continue
		}
		// The legend starts at the top of the panel's data area.
		data := p.DataCanvas(areas[i])
		col := dc
		col.Min.X = plotArea.Max.X + vg.Points(8)
		col.Max.Y = data.Max.Y
		col.Min.Y = areas[i].Min.Y
		l := panels[i].Legend
		l.Draw(col)
	}
}

// stack divides c among plots from top to bottom in proportion to weights, and lines up
// their data areas' left edges.
func stack(plots []*plot.Plot, weights []float64, c draw.Canvas) []draw.Canvas {
	pad := vg.Points(10)
	total := 0.0
	for _, w := range weights {
		total += max(w, 0)
	}
	free := c.Max.Y - c.Min.Y - pad*vg.Length(len(plots)-1)
	areas := make([]draw.Canvas, len(plots))
	top := c.Max.Y
	var left vg.Length
	for i, p := range plots {
		h := free / vg.Length(len(plots))
		if total > 0 {
			h = free * vg.Length(max(weights[i], 0)/total)
		}
		a := c
		a.Max.Y, a.Min.Y = top, top-h
		top -= h + pad
		areas[i] = a
		left = max(left, p.DataCanvas(a).Min.X-a.Min.X)
	}
	for i, p := range plots {
		a := areas[i]
		areas[i] = draw.Crop(a, left-(p.DataCanvas(a).Min.X-a.Min.X), 0, 0, 0)
	}
	return areas
}

// panels are the chart's plots, top to bottom.
func (c *Chart) panels() []*plot.Plot {
	return append([]*plot.Plot{c.Plot}, c.below...)
}

// All returns the standard set for a report. For each workload (and scenario), and each
// direction it has: bars of IOPS, throughput and p99 latency per target, and the latency
// CDF of all targets. Then, when there are migrations, QEMU's downtime and the longest
// workload stall per scenario (MigrationBars); a timeline per migration run, and per case (its first complete
// run) when there are at most 4 cases. A target has the same colour in every chart of the
// set. Incomplete runs are left out; only incomplete runs is an error.
func All(runs []*results.Run) ([]*Chart, error) {
	if len(runs) == 0 {
		return nil, errors.New("chart: no runs")
	}
	for i, r := range runs {
		if r == nil {
			return nil, fmt.Errorf("chart: run %d is nil", i)
		}
	}
	cases := results.Group(runs)
	var complete []*results.Case
	for _, c := range cases {
		if len(c.Complete()) > 0 {
			complete = append(complete, c)
		}
	}
	if len(complete) == 0 {
		return nil, fmt.Errorf("chart: %w: all %d runs are incomplete (first: %s)", ErrNoData, len(runs), runError(runs[0]))
	}
	pal := newPalette(cases)
	used := map[string]bool{}
	var out []*Chart
	add := func(c *Chart, err error) error {
		if errors.Is(err, ErrNoData) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Name = uniqueName(c.Name, used)
		out = append(out, c)
		return nil
	}

	// Every case of a workload, incomplete ones too: their bars say why they are missing.
	// Bars compare targets: a workload measured on one target gets its CDF only (the
	// tables have its figures).
	for _, g := range byWorkload(cases) {
		compare := len(g) > 1
		for _, dir := range presentDirs(g) {
			for _, name := range []string{"iops", "bw", "p99"} {
				if !compare {
					break
				}
				if dir == "sync" && name == "bw" {
					continue // a sync moves no bytes
				}
				m, err := results.MetricByName(name)
				if err != nil {
					return nil, fmt.Errorf("chart: %w", err)
				}
				if err := add(bars(g, dir, m, pal)); err != nil {
					return nil, err
				}
			}
			if err := add(latencyCDF(g, dir, pal)); err != nil {
				return nil, err
			}
		}
	}
	if err := add(MigrationBars(cases)); err != nil {
		return nil, err
	}
	for _, c := range complete {
		for _, r := range c.Complete() {
			if r.Migration == nil && len(cases) > 4 {
				break
			}
			if err := add(Timeline(r)); err != nil {
				return nil, err
			}
			if r.Migration == nil {
				break // one timeline per plain case: repeats look alike
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chart: %w: the %d complete runs have no figures to draw", ErrNoData, countComplete(complete))
	}
	return out, nil
}

// WriteAll writes every chart of All(runs) into dir as <Name>.<format> for each format
// (no formats: svg, png and pdf) and returns the paths written.
func WriteAll(dir string, runs []*results.Run, formats []string) ([]string, error) {
	fs, err := normFormats(formats)
	if err != nil {
		return nil, err
	}
	charts, err := All(runs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chart: %w", err)
	}
	var paths []string
	for _, c := range charts {
		for _, f := range fs {
			p := filepath.Join(dir, c.Name+"."+f)
			if err := writeFile(p, c, f); err != nil {
				return paths, err
			}
			paths = append(paths, p)
		}
	}
	return paths, nil
}

func writeFile(path string, c *Chart, format string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	err = c.Render(f, format)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("chart: %w", cerr)
	}
	if err != nil {
		os.Remove(path) // no half-written figure left behind
	}
	return err
}

// normFormats lower-cases, checks and de-duplicates formats.
func normFormats(formats []string) ([]string, error) {
	if len(formats) == 0 {
		return append([]string(nil), renderFormats[:]...), nil
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range formats {
		f = strings.ToLower(strings.TrimSpace(f))
		ok := false
		for _, k := range renderFormats {
			ok = ok || f == k
		}
		if !ok {
			return nil, fmt.Errorf("chart: unknown format %q (formats: %s)", f, strings.Join(renderFormats[:], ", "))
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// palette gives each target the same colour in every chart of a set.
type palette map[string]int

func newPalette(cases []*results.Case) palette {
	p := palette{}
	for _, c := range cases {
		if _, ok := p[c.Target()]; !ok {
			p[c.Target()] = len(p)
		}
	}
	return p
}

// presentDirs lists the directions the cases' complete runs recorded (read, write, sync).
func presentDirs(cases []*results.Case) []string {
	var out []string
	for _, d := range []string{"read", "write", "sync"} {
	find:
		for _, c := range cases {
			for _, r := range c.Complete() {
				if s := r.DirStats(d); s != nil && (s.IOs > 0 || s.Lat.N > 0) {
					out = append(out, d)
					break find
				}
			}
		}
	}
	return out
}

// byWorkload splits cases by workload and scenario, in order of first appearance.
func byWorkload(cases []*results.Case) [][]*results.Case {
	var out [][]*results.Case
	index := map[[2]string]int{}
	for _, c := range cases {
		k := [2]string{c.Key.Workload, c.Key.Scenario}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], c)
	}
	return out
}

func countComplete(cases []*results.Case) int {
	n := 0
	for _, c := range cases {
		n += len(c.Complete())
	}
	return n
}

// runError describes why a run is incomplete.
func runError(r *results.Run) string {
	if p := r.Problem(); p != "" {
		return fmt.Sprintf("%s: %s", r.ID, p)
	}
	return r.ID + ": no error recorded"
}

// targetName is how charts name a run's target: its label, or its URL (stored redacted,
// redacted again here because charts leave the machine).
func targetName(name string) string {
	if strings.Contains(name, "://") {
		return backends.RedactString(name)
	}
	return name
}

// uniqueName makes name distinct from the ones in used.
func uniqueName(name string, used map[string]bool) string {
	if name == "" {
		name = "chart"
	}
	out := name
	for n := 2; used[out]; n++ {
		out = fmt.Sprintf("%s-%d", name, n)
	}
	used[out] = true
	return out
}

// workloadLabel names a case's workload, with its scenario unless it ran on the host.
func workloadLabel(c *results.Case) string {
	s := c.WorkloadName()
	if c.Scenario() != "host" {
		s += " (" + c.Scenario() + ")"
	}
	return s
}

// workloadTitle names a case's workload in a title: its name and what it does, and the
// scenario unless it ran on the host: "rand-read-4k (4k randread QD1)".
func workloadTitle(c *results.Case) string {
	s := runWorkload(c.Runs[0])
	if c.Scenario() != "host" {
		s += ", " + c.Scenario()
	}
	return s
}

// runWorkload names a run's workload and what it does: "rand-read-4k (4k randread QD1)".
func runWorkload(r *results.Run) string {
	s := shortWorkload(r.Workload)
	if r.Workload.Name != "" {
		s = r.Workload.Name + " (" + s + ")"
	}
	return s
}

// shortWorkload says what a workload does the way storage engineers say it: block size,
// pattern, queue depth ("4k randread QD1", "1M write QD8 ×4 jobs", "4k randrw 70/30 QD4").
func shortWorkload(w workloads.Workload) string {
	bs := fioSize(w.BS[workloads.Read])
	switch {
	case !w.Does(workloads.Read):
		bs = fioSize(w.BS[workloads.Write])
	case w.Does(workloads.Write) && w.BS[workloads.Read] != w.BS[workloads.Write]:
		bs += "/" + fioSize(w.BS[workloads.Write])
	}
	s := bs + " " + w.RW
	if w.IsMixed() {
		s += fmt.Sprintf(" %d/%d", w.RWMixRead, 100-w.RWMixRead)
	}
	s += fmt.Sprintf(" QD%d", max(1, w.IODepth))
	if w.NumJobs > 1 {
		s += fmt.Sprintf(" ×%d jobs", w.NumJobs)
	}
	if w.Fsync > 0 {
		s += fmt.Sprintf(", fsync every %d", w.Fsync)
	}
	return s
}

// fioSize writes a block size as fio's options do: 512, 4k, 1M, 4k-64k.
func fioSize(b workloads.BlockSize) string {
	one := func(n int64) string {
		switch {
		case n > 0 && n%(1<<30) == 0:
			return fmt.Sprintf("%dG", n>>30)
		case n > 0 && n%(1<<20) == 0:
			return fmt.Sprintf("%dM", n>>20)
		case n > 0 && n%(1<<10) == 0:
			return fmt.Sprintf("%dk", n>>10)
		}
		return fmt.Sprint(n)
	}
	if b.Max > b.Min {
		return one(b.Min) + "-" + one(b.Max)
	}
	return one(b.Min)
}
