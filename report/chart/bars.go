package chart

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vmstorbench/vmstorbench/results"
)

// Bars draws metric m of direction dir per target: the median over repeats as a
// horizontal bar with its value written at its end, the spread (min–max) as whiskers, one
// colour per target. Each workload (and scenario) gets its own panel with its own value
// axis, since a 4k random read's IOPS and a 1 MiB sequential read's differ a hundredfold;
// All calls it once per workload. Only complete runs count.
func Bars(cases []*results.Case, dir string, m results.Metric) (*Chart, error) {
	return bars(cases, dir, m, newPalette(cases))
}

// barRow is one target's row in a panel: its summary, or why it has none.
type barRow struct {
	target string
	s      results.Summary
	ok     bool
	why    string // no value: "no data" or "incomplete runs only"
}

func bars(cases []*results.Case, dir string, m results.Metric, pal palette) (*Chart, error) {
	if len(cases) == 0 {
		return nil, errors.New("chart: bars: no cases")
	}
	if err := validDir(dir); err != nil {
		return nil, fmt.Errorf("chart: bars: %w", err)
	}
	// A Metric's value function is unexported: only the package's own metrics work.
	m, err := results.MetricByName(m.Name)
	if err != nil {
		return nil, fmt.Errorf("chart: bars: %w", err)
	}
	for _, c := range cases {
		if c == nil || len(c.Runs) == 0 {
			return nil, errors.New("chart: bars: empty case")
		}
	}

	// One panel per workload that has values of the metric (a read-only workload gets no
	// panel on a write chart).
	type panel struct {
		first *results.Case
		label string
		rows  []barRow
	}
	var panels []panel
	top := 0.0 // ns for latencies: the unit is chosen over all panels
	maxN, minN := 0, math.MaxInt
	for _, g := range byWorkload(cases) {
		rows, any := barRows(g, dir, m, pal)
		if !any {
			continue
		}
		for _, r := range rows {
			if r.ok {
				top = max(top, r.s.Max)
				maxN, minN = max(maxN, r.s.N), min(minN, r.s.N)
			}
		}
		panels = append(panels, panel{first: g[0], label: workloadTitle(g[0]), rows: rows})
	}
	if len(panels) == 0 {
		return nil, noValues(cases, dir, m.Label)
	}

	scale, unit := m.Scale, m.Unit
	if m.Unit == "µs" {
		unit, scale = latUnit(top)
	}
	what := dirTitle(dir) + " " + metricTitle(m)
	h := heading{main: what + " by workload"}
	if len(panels) == 1 {
		h.main = what + " — " + panels[0].label
	}
	h.note = "one run each"
	switch {
	case maxN > 1 && minN == maxN:
		h.note = fmt.Sprintf("median of %d runs, whiskers min–max", maxN)
	case maxN > 1:
		h.note = fmt.Sprintf("median of %d–%d runs, whiskers min–max", minN, maxN)
	}
	if m.HigherIsBetter {
		h.note += "; higher is better"
	} else {
		h.note += "; lower is better"
	}

	var plots []*plot.Plot
	var weights []float64
	height := 0.5 * vg.Inch // heading
	for _, pn := range panels {
		p := newPlot("", axisLabel(m, unit), "")
		if len(panels) > 1 {
			p.Title.Text = pn.label
			p.Title.TextStyle.Font = sans(10.5)
			p.Title.Padding = vg.Points(4)
		}
		barPanel(p, pn.rows, scale, pal)
		plots = append(plots, p)
		// A panel is its rows and about 2.5 rows of axis and title.
		weights = append(weights, float64(len(pn.rows))+2.5)
		height += 0.75*vg.Inch + vg.Length(len(pn.rows))*0.3*vg.Inch
	}
	name := "bars-" + m.Name + "-" + dir
	if len(panels) == 1 {
		name += "-" + workloadLabel(panels[0].first)
	}
	return &Chart{
		Name: safeName(name), Title: h.oneLine(), Plot: plots[0], below: plots[1:], weights: weights, head: h,
		Width: 8 * vg.Inch, Height: max(3*vg.Inch, height),
	}, nil
}

// barRows are the rows of one workload's cases in palette order, and whether any has a
// value.
func barRows(cases []*results.Case, dir string, m results.Metric, pal palette) ([]barRow, bool) {
	byTarget := map[string]*barRow{}
	set := map[string]bool{}
	any := false
	for _, c := range cases {
		t := c.Target()
		set[t] = true
		r := byTarget[t]
		if r == nil {
			r = &barRow{target: t, why: "incomplete runs only"}
			byTarget[t] = r
		}
		if len(c.Complete()) > 0 && !r.ok {
			r.why = "no data"
		}
		if s, ok := c.Summary(dir, m); ok && !r.ok {
			r.s, r.ok = s, true
			any = true
		}
	}
	var rows []barRow
	for _, t := range sortedTargets(set, pal) {
		rows = append(rows, *byTarget[t])
	}
	return rows, any
}

// barPanel fills p with horizontal bars, the first row at the top, targets named on the
// y axis.
func barPanel(p *plot.Plot, rows []barRow, scale float64, pal palette) {
	addGrid(p, false, true)
	n := len(rows)
	ticks := make(plot.ConstantTicks, n)
	b := &barSeries{height: 0.66, format: compactNumber, style: p.X.Tick.Label}
	top := 0.0
	for i, r := range rows {
		y := float64(n - 1 - i)
		ticks[i] = plot.Tick{Value: y, Label: wrap(targetName(r.target), 28)}
		if !r.ok {
			b.notes = append(b.notes, barNote{y: y, text: r.why})
			continue
		}
		br := bar{y: y, med: r.s.Median * scale, lo: r.s.Min * scale, hi: r.s.Max * scale, color: seriesColor(pal[r.target])}
		b.bars = append(b.bars, br)
		top = max(top, br.hi, br.med)
	}
	p.Add(b)
	p.Y.Tick.Marker = ticks
	p.Y.Tick.Length = 0
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	p.X.Min, p.X.Max = 0, top*1.15 // room for the values written after the bars
	if top == 0 {
		p.X.Max = 1
	}
	p.X.Tick.Marker = countTicks{}
}

// metricTitle names a metric in a title.
func metricTitle(m results.Metric) string {
	switch m.Name {
	case "iops":
		return "IOPS"
	case "bw":
		return "throughput"
	}
	return m.Label
}

// axisLabel is a metric's axis label with its unit.
func axisLabel(m results.Metric, unit string) string {
	switch m.Name {
	case "iops":
		return "IOPS"
	case "bw":
		return "MB/s (10^6 B/s)"
	}
	return fmt.Sprintf("%s (%s)", m.Label, unit)
}

// noValues is the error of a chart whose cases hold no value to draw.
func noValues(cases []*results.Case, dir, what string) error {
	complete, all := 0, 0
	var incomplete *results.Run
	for _, c := range cases {
		all += len(c.Runs)
		complete += len(c.Complete())
		for _, r := range c.Runs {
			if !r.OK() && incomplete == nil { // incomplete, or verify failed
				incomplete = r
			}
		}
	}
	if complete == 0 && incomplete != nil {
		return fmt.Errorf("chart: %w: all %d runs are incomplete (first: %s)", ErrNoData, all, runError(incomplete))
	}
	return fmt.Errorf("chart: %w: no %s %s in %d complete runs", ErrNoData, dir, what, complete)
}

// sortedTargets orders targets by their palette index.
func sortedTargets(set map[string]bool, pal palette) []string {
	var out []string
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out) // targets new to the palette join it in a fixed order
	for _, t := range out {
		if _, ok := pal[t]; !ok {
			pal[t] = len(pal)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return pal[a] - pal[b] })
	return out
}

// bar is one horizontal bar in data units: its row, median and range.
type bar struct {
	y, med, lo, hi float64
	color          color.NRGBA
}

// barNote is a row without a bar, and why.
type barNote struct {
	y    float64
	text string
}

// barSeries draws horizontal bars with whiskers from min to max and the median written
// after each. (gonum's BarChart offsets bars in points, not data units, so error bars
// cannot be placed on them.)
type barSeries struct {
	bars   []bar
	notes  []barNote
	height float64 // of a bar, in rows
	format func(float64) string
	style  draw.TextStyle
}

func (b *barSeries) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	// Whiskers have a white halo: they stay visible on the black and the dark bars.
	halo := draw.LineStyle{Color: color.NRGBA{0xff, 0xff, 0xff, 0xcc}, Width: vg.Points(2.6)}
	whisker := draw.LineStyle{Color: textColor, Width: vg.Points(1)}
	txt := b.style
	txt.XAlign, txt.YAlign = draw.XLeft, draw.YCenter
	for _, br := range b.bars {
		y0, y1 := trY(br.y-b.height/2), trY(br.y+b.height/2)
		x0, x1 := trX(0), trX(br.med)
		rect := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		c.FillPolygon(br.color, rect)
		edge := draw.LineStyle{Color: mix(br.color, color.NRGBA{A: 0xff}, 0.35), Width: vg.Points(0.5)}
		c.StrokeLines(edge, append(rect, rect[0]))
		end := x1
		if br.hi > br.lo {
			ym, capH := trY(br.y), (y1-y0)*0.25
			lo, hi := trX(br.lo), trX(br.hi)
			for _, sty := range []draw.LineStyle{halo, whisker} {
				c.StrokeLine2(sty, lo, ym, hi, ym)
				c.StrokeLine2(sty, lo, ym-capH, lo, ym+capH)
				c.StrokeLine2(sty, hi, ym-capH, hi, ym+capH)
			}
			end = max(end, hi)
		}
		c.FillText(txt, vg.Point{X: end + vg.Points(4), Y: trY(br.y)}, b.format(br.med))
	}
	note := txt
	note.Color = noteColor
	for _, n := range b.notes {
		c.FillText(note, vg.Point{X: trX(0) + vg.Points(4), Y: trY(n.y)}, n.text)
	}
}
