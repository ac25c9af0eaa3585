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

// Bars: one bar per target × workload (cases from results.Group), value = median over
// repeats, with the spread (min–max) shown as error bars; bars grouped by workload (and
// scenario), one colour per target, legend. Only complete runs count.
func Bars(cases []*results.Case, dir string, m results.Metric) (*Chart, error) {
	return bars(cases, dir, m, newPalette(cases))
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

	type group struct {
		key   [2]string
		label string
	}
	var groups []group
	groupOf := map[[2]string]int{}
	targets := map[string]bool{}
	summaries := map[[3]string]results.Summary{}
	hasValues := map[string]bool{}
	hasComplete := map[string]bool{}
	maxN, minN := 0, math.MaxInt
	for _, c := range cases {
		if c == nil || len(c.Runs) == 0 {
			return nil, errors.New("chart: bars: empty case")
		}
		k := [2]string{c.Key.Workload, c.Key.Scenario}
		if _, ok := groupOf[k]; !ok {
			groupOf[k] = len(groups)
			groups = append(groups, group{key: k, label: workloadLabel(c)})
		}
		t := c.Target()
		targets[t] = true
		hasComplete[t] = hasComplete[t] || len(c.Complete()) > 0
		if s, ok := c.Summary(dir, m); ok {
			summaries[[3]string{t, k[0], k[1]}] = s
			hasValues[t] = true
			maxN, minN = max(maxN, s.N), min(minN, s.N)
		}
	}
	if len(summaries) == 0 {
		return nil, noValues(cases, dir, m.Label)
	}
	// Workloads without this direction (a read-only one on a write chart) get no slot.
	withValues := groups[:0]
	for _, g := range groups {
		for t := range targets {
			if _, ok := summaries[[3]string{t, g.key[0], g.key[1]}]; ok {
				withValues = append(withValues, g)
				break
			}
		}
	}
	groups = withValues
	// Same label for different workloads (a profile name reused with other options): say
	// which is which.
	labels := map[string]int{}
	for _, g := range groups {
		labels[g.label]++
	}
	for i, g := range groups {
		if labels[g.label] > 1 {
			c := firstCase(cases, g.key)
			groups[i].label = c.Workload()
			if c.Scenario() != "host" {
				groups[i].label += " (" + c.Scenario() + ")"
			}
		}
	}

	order := sortedTargets(targets, pal)
	var drawn []string // targets with a bar somewhere, in palette order
	for _, t := range order {
		if hasValues[t] {
			drawn = append(drawn, t)
		}
	}

	// Display unit: latencies switch from µs to ms when they reach 10 ms.
	scale, yLabel := m.Scale, axisLabel(m, m.Unit)
	if m.Unit == "µs" {
		top := 0.0
		for _, s := range summaries {
			top = max(top, s.Max)
		}
		unit, perNS := latUnit(top)
		scale, yLabel = perNS, axisLabel(m, unit)
	}

	main := dirTitle(dir) + " " + metricTitle(m)
	if len(groups) == 1 {
		main += ": " + groups[0].label
	} else {
		main += " by workload and target"
	}
	details := "one run each"
	switch {
	case maxN > 1 && minN == maxN:
		details = fmt.Sprintf("median of %d runs, whiskers min–max", maxN)
	case maxN > 1:
		details = fmt.Sprintf("median of %d–%d runs, whiskers min–max", minN, maxN)
	}
	if m.HigherIsBetter {
		details += "; higher is better"
	} else {
		details += "; lower is better"
	}
	title, drawnTitle := plotTitle(main, details)

	p := newPlot(drawnTitle, "", yLabel)
	addGrid(p, false)
	width := 0.8 / float64(len(drawn))
	top := 0.0
	for ti, t := range drawn {
		b := &barSeries{width: width, color: seriesColor(pal[t])}
		off := (float64(ti) - float64(len(drawn)-1)/2) * width
		for gi, g := range groups {
			s, ok := summaries[[3]string{t, g.key[0], g.key[1]}]
			if !ok {
				continue
			}
			b.bars = append(b.bars, bar{x: float64(gi) + off, med: s.Median * scale, lo: s.Min * scale, hi: s.Max * scale})
			top = max(top, s.Max*scale)
		}
		p.Add(b)
		p.Legend.Add(wrap(targetName(t), legendWidth), b)
	}
	for _, t := range order {
		if hasValues[t] {
			continue
		}
		why := "no data"
		if !hasComplete[t] {
			why = "incomplete runs only"
		}
		p.Legend.Add(wrap(targetName(t)+" ("+why+")", legendWidth))
	}

	ticks := make(plot.ConstantTicks, len(groups))
	for i, g := range groups {
		ticks[i] = plot.Tick{Value: float64(i), Label: wrap(g.label, 26)}
	}
	p.X.Tick.Marker = ticks
	p.X.Tick.Length = 0
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.Y.Min, p.Y.Max = 0, top*1.08
	if top == 0 {
		p.Y.Max = 1
	}
	p.Y.Tick.Marker = countTicks{}

	nBars := len(groups) * len(drawn)
	w := min(max(8*vg.Inch, 2*vg.Inch+vg.Length(nBars)*0.22*vg.Inch), 16*vg.Inch)
	return &Chart{
		Name:  safeName("bars-" + m.Name + "-" + dir),
		Title: title, Plot: p, Width: w, Height: 4.5 * vg.Inch,
	}, nil
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
			if !r.Complete && incomplete == nil {
				incomplete = r
			}
		}
	}
	if complete == 0 && incomplete != nil {
		return fmt.Errorf("chart: %w: all %d runs are incomplete (first: %s)", ErrNoData, all, runError(incomplete))
	}
	return fmt.Errorf("chart: %w: no %s %s in %d complete runs", ErrNoData, dir, what, complete)
}

func firstCase(cases []*results.Case, key [2]string) *results.Case {
	for _, c := range cases {
		if c.Key.Workload == key[0] && c.Key.Scenario == key[1] {
			return c
		}
	}
	return nil
}

// sortedTargets orders targets by their palette index.
func sortedTargets(set map[string]bool, pal palette) []string {
	var out []string
	for t := range set {
		if _, ok := pal[t]; !ok {
			pal[t] = len(pal)
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b string) int { return pal[a] - pal[b] })
	return out
}

// bar is one bar in data units: its centre, median and range.
type bar struct{ x, med, lo, hi float64 }

// barSeries draws one target's bars with whiskers from min to max. (gonum's BarChart offsets
// bars in points, not data units, so error bars cannot be placed on them.)
type barSeries struct {
	bars  []bar
	width float64
	color color.NRGBA
}

func (b *barSeries) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	edge := draw.LineStyle{Color: mix(b.color, color.NRGBA{A: 0xff}, 0.35), Width: vg.Points(0.5)}
	whisker := draw.LineStyle{Color: textColor, Width: vg.Points(1)}
	for _, br := range b.bars {
		x0, x1 := trX(br.x-b.width/2), trX(br.x+b.width/2)
		y0, y1 := trY(0), trY(br.med)
		rect := []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
		c.FillPolygon(b.color, rect)
		c.StrokeLines(edge, append(rect, rect[0]))
		if br.hi > br.lo {
			xm, capW := trX(br.x), (x1-x0)*0.25
			lo, hi := trY(br.lo), trY(br.hi)
			c.StrokeLine2(whisker, xm, lo, xm, hi)
			c.StrokeLine2(whisker, xm-capW, lo, xm+capW, lo)
			c.StrokeLine2(whisker, xm-capW, hi, xm+capW, hi)
		}
	}
}

// Thumbnail is the legend's swatch.
func (b *barSeries) Thumbnail(c *draw.Canvas) {
	fillRect(*c, b.color, c.Rectangle)
}
