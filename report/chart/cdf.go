package chart

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vmstorbench/vmstorbench/results"
)

// LatencyCDF draws the latency CDF of direction dir, one line per case, on a log latency
// axis against a tail-stretched percentile axis (-log10(1-p): 0, 50, 90, 99, 99.9, 99.99 %
// equally spaced from 90 % on), the way latency tails are read. Repeats are merged exactly
// through their HDR histograms; a case whose runs lack histograms falls back to its
// percentiles (the median of each over repeats), and its legend says so. Only complete runs
// count.
func LatencyCDF(cases []*results.Case, dir string) (*Chart, error) {
	return latencyCDF(cases, dir, newPalette(cases))
}

// curve is one case's CDF: latencies in ns, shares in percent.
type curve struct {
	c           *results.Case
	pts         plotter.XYs
	runs        int
	n           int64 // latencies counted
	percentiles bool  // drawn from the percentiles, not a histogram
	p50, p99    float64
}

// tailY is the height of percentile p (0..100) on the tail-stretched axis: -log10(1-p),
// so 90 % is at 1, 99 % at 2, 99.9 % at 3. Among n latencies the largest is at 1-1/n: the
// axis places 100 % there, since it has no end.
func tailY(p float64, n int64) float64 {
	top := math.Log10(float64(max(n, 2)))
	if p >= 100 {
		return top
	}
	return min(tail(p), top)
}

// tail is -log10(1-p) for p in percent below 100.
func tail(p float64) float64 { return -math.Log10(1 - p/100) }

// tailTicks label the tail-stretched axis up to max: 0, 50, 90, 99, 99.9, … %, with
// unlabelled marks at 25, 75 and between the nines.
func tailTicks(top float64) plot.ConstantTicks {
	ts := plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: tail(25)}, {Value: tail(50), Label: "50"}, {Value: tail(75)}}
	for k := 1; float64(k) <= top+1e-9; k++ {
		label := strconv.FormatFloat(100-100*math.Pow(10, -float64(k)), 'f', max(0, k-2), 64)
		ts = append(ts, plot.Tick{Value: float64(k), Label: label})
		// 95 %, 99.5 %, …: half a nine further
		if float64(k)+math.Log10(2) <= top {
			ts = append(ts, plot.Tick{Value: float64(k) + math.Log10(2)})
		}
	}
	return ts
}

func latencyCDF(cases []*results.Case, dir string, pal palette) (*Chart, error) {
	if len(cases) == 0 {
		return nil, errors.New("chart: latency CDF: no cases")
	}
	if err := validDir(dir); err != nil {
		return nil, fmt.Errorf("chart: latency CDF: %w", err)
	}
	for _, c := range cases {
		if c == nil || len(c.Runs) == 0 {
			return nil, errors.New("chart: latency CDF: empty case")
		}
	}
	groups := byWorkload(cases)
	groupIndex := map[[2]string]int{}
	for i, g := range groups {
		groupIndex[[2]string{g[0].Key.Workload, g[0].Key.Scenario}] = i
	}
	var curves []curve
	for _, c := range cases {
		var lats []results.Latency
		for _, r := range c.Complete() {
			if s := r.DirStats(dir); s != nil && s.Lat.N > 0 {
				lats = append(lats, s.Lat)
			}
		}
		if len(lats) == 0 {
			continue
		}
		cv, err := caseCurve(lats)
		if err != nil {
			return nil, fmt.Errorf("chart: latency CDF of %s, %s: %w", targetName(c.Target()), c.WorkloadName(), err)
		}
		cv.c = c
		curves = append(curves, cv)
	}
	if len(curves) == 0 {
		return nil, noValues(cases, dir, "latencies")
	}

	lo, hi := math.Inf(1), 0.0
	top := 0.0
	for _, cv := range curves {
		for _, pt := range cv.pts {
			if pt.X > 0 {
				lo = min(lo, pt.X)
			}
			hi = max(hi, pt.X)
		}
		top = max(top, tailY(100, cv.n))
	}
	unit, perNS := logUnit(lo, hi)

	h := heading{main: dirTitle(dir) + " latency CDF by target and workload"}
	if len(groups) == 1 {
		h.main = dirTitle(dir) + " latency CDF — " + workloadTitle(cases[0])
	}
	maxRuns := 0
	for _, cv := range curves {
		maxRuns = max(maxRuns, cv.runs)
	}
	h.note = "percentile axis stretched towards the tail; one run per line"
	if maxRuns > 1 {
		h.note = "percentile axis stretched towards the tail; the I/Os of all repeats merged per line"
	}
	h.note += "; further left is faster"
	what := "I/Os"
	if dir == "sync" {
		what = "syncs"
	}
	p := newPlot("", fmt.Sprintf("%s latency (%s, log scale)", dir, unit), "% of "+what+" completed within the latency")
	addGrid(p, true, true)
	setLogAxis(&p.X, lo*perNS, hi*perNS)
	// Up to the tail the data reach, at least 99 %, at most 99.999 % (beyond, a run of a
	// million I/Os has ten left: the lines leave the top).
	p.Y.Min, p.Y.Max = 0, min(max(top, 2), 5)+0.15
	p.Y.Tick.Marker = tailTicks(p.Y.Max)
	p.Add(&refLines{ys: []float64{tail(50), tail(99)}, labels: []string{"p50", "p99"}})

	slices.SortStableFunc(curves, func(a, b curve) int { return pal[a.c.Target()] - pal[b.c.Target()] })
	for _, cv := range curves {
		pts := make(plotter.XYs, len(cv.pts))
		for i, pt := range cv.pts {
			pts[i] = plotter.XY{X: math.Log10(max(pt.X, lo) * perNS), Y: tailY(pt.Y, cv.n)}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("chart: latency CDF of %s: %w", targetName(cv.c.Target()), err)
		}
		i := pal[cv.c.Target()]
		l.Color, l.Width = seriesColor(i), vg.Points(1.6)
		l.Dashes = seriesDashes(i)
		label := targetName(cv.c.Target())
		if len(groups) > 1 {
			// Colour tells the target, the pattern the workload.
			l.Dashes = seriesDashes(groupIndex[[2]string{cv.c.Key.Workload, cv.c.Key.Scenario}])
			label += " · " + workloadLabel(cv.c)
		}
		label += " (p99 " + formatNS(cv.p99)
		if cv.percentiles {
			label += ", from percentiles"
		}
		label += ")"
		p.Add(l)
		p.Legend.Add(wrap(label, legendWidth), l)
	}
	name := "cdf-" + dir
	if len(groups) == 1 {
		name += "-" + workloadLabel(cases[0])
	}
	return &Chart{Name: safeName(name), Title: h.oneLine(), Plot: p, head: h, Width: 8 * vg.Inch, Height: 5 * vg.Inch}, nil
}

// caseCurve merges a case's latencies into one CDF: exactly through the histograms when
// every run has one, else from the percentiles.
func caseCurve(lats []results.Latency) (curve, error) {
	cv := curve{runs: len(lats)}
	lo, hi := lats[0].Min, lats[0].Max
	withHist := true
	for _, l := range lats {
		lo, hi = min(lo, l.Min), max(hi, l.Max)
		withHist = withHist && l.Histogram != ""
	}
	lo = max(lo, 1) // a log axis has no zero
	if withHist {
		acc := results.NewHistogram()
		for _, l := range lats {
			h, err := results.DecodeHistogram(l.Histogram)
			if err != nil {
				return cv, err
			}
			if dropped := acc.Merge(h); dropped > 0 {
				return cv, fmt.Errorf("%d latencies outside the histogram's range", dropped)
			}
		}
		total := acc.TotalCount()
		if total == 0 {
			return cv, errors.New("empty latency histogram")
		}
		cv.n = total
		clamp := func(v int64) float64 { return math.Min(math.Max(float64(v), float64(lo)), float64(hi)) }
		cv.p50, cv.p99 = clamp(acc.ValueAtQuantile(50)), clamp(acc.ValueAtQuantile(99))
		cv.pts = plotter.XYs{{X: float64(lo), Y: 0}}
		var cum int64
		for _, b := range acc.Distribution() {
			if b.Count == 0 {
				continue
			}
			cum += b.Count
			x := math.Min(math.Max(float64(b.To), float64(lo)), float64(hi))
			y := 100 * float64(cum) / float64(total)
			last := cv.pts[len(cv.pts)-1]
			// Thin to what a chart can show: 1% steps of latency, or steps of 1/200 of a
			// nine on the tail-stretched axis.
			if x >= last.X*1.01 || tailY(y, total)-tailY(last.Y, total) >= 0.005 || cum == total {
				cv.pts = append(cv.pts, plotter.XY{X: max(x, last.X), Y: y})
			}
		}
		return cv, nil
	}

	// Percentiles: the median of each over the repeats (percentiles cannot be merged).
	cv.percentiles = true
	values := map[float64][]float64{}
	for _, l := range lats {
		cv.n += l.N
		for k, v := range l.Percentiles {
			p, err := strconv.ParseFloat(k, 64)
			if err != nil || p <= 0 || p >= 100 {
				continue
			}
			values[p] = append(values[p], float64(v))
		}
	}
	if len(values) == 0 {
		return cv, errors.New("no histogram and no percentiles")
	}
	ps := make([]float64, 0, len(values))
	for p := range values {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	cv.pts = plotter.XYs{{X: float64(lo), Y: 0}}
	for _, p := range ps {
		s, _ := results.Summarize(values[p])
		x := math.Max(math.Max(s.Median, float64(lo)), cv.pts[len(cv.pts)-1].X)
		cv.pts = append(cv.pts, plotter.XY{X: x, Y: p})
		if p <= 50 {
			cv.p50 = x
		}
		if p <= 99 {
			cv.p99 = x
		}
	}
	cv.pts = append(cv.pts, plotter.XY{X: math.Max(float64(hi), cv.pts[len(cv.pts)-1].X), Y: 100})
	return cv, nil
}

// formatNS formats a latency in ns with 3 significant digits and a fitting unit.
func formatNS(ns float64) string {
	switch {
	case ns < 1e3:
		return strconv.FormatFloat(ns, 'f', 0, 64) + " ns"
	case ns < 1e6:
		return strconv.FormatFloat(ns/1e3, 'g', 3, 64) + " µs"
	case ns < 1e9:
		return strconv.FormatFloat(ns/1e6, 'g', 3, 64) + " ms"
	}
	return strconv.FormatFloat(ns/1e9, 'g', 3, 64) + " s"
}

// refLines draws labelled dotted horizontal lines (the p50 and p99 levels of a CDF).
type refLines struct {
	ys     []float64
	labels []string
}

func (r *refLines) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	sty := draw.LineStyle{Color: alpha(textColor, 0.6), Width: vg.Points(0.7), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}
	txt := p.Y.Tick.Label
	txt.XAlign, txt.YAlign = draw.XLeft, draw.YBottom
	for i, y := range r.ys {
		yy := trY(y)
		c.StrokeLine2(sty, c.Min.X, yy, c.Max.X, yy)
		c.FillText(txt, vg.Point{X: c.Min.X + vg.Points(3), Y: yy + vg.Points(1)}, r.labels[i])
	}
}
