package chart

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vmstorbench/vmstorbench/results"
)

// Timeline draws IOPS (top panel) and p50/p99 latency (bottom panel) over time, per
// interval of one run (Run.Series). For a migration run it uses the host-timestamped
// 100 ms windows (Migration.Windows), shades the migration's phases (setup, pre-copy,
// downtime, post-copy), marks QEMU's downtime and the longest stall the workload saw, and
// draws the workload the host ran outside the VM (Migration.Outside) on the same time axis.
func Timeline(r *results.Run) (*Chart, error) {
	if r == nil {
		return nil, errors.New("chart: timeline: no run")
	}
	if !r.OK() {
		return nil, fmt.Errorf("chart: timeline: %w: run %s is incomplete or failed verify", ErrNoData, runError(r))
	}
	if m := r.Migration; m != nil && len(m.Windows) > 0 {
		return migrationTimeline(r)
	}
	return seriesTimeline(r)
}

// window is one interval's value, in seconds since the start.
type window struct {
	t0, t1 float64
	v      float64
	ok     bool // the interval has a value (latency: it had completions)
}

// timelinePanels is a timeline's two panels and the ranges they share.
type timelinePanels struct {
	iops, lat    *plot.Plot
	tEnd         float64
	iopsMax      float64
	latLo, latHi float64 // ns, over every latency drawn
	unit         string
	perNS        float64
}

func newTimelinePanels(yIOPS string) *timelinePanels {
	tp := &timelinePanels{latLo: math.Inf(1)}
	tp.iops = newPlot("", "", yIOPS)
	tp.lat = newPlot("", "time since start (s)", "")
	addGrid(tp.iops, true, true)
	addGrid(tp.lat, true, true)
	return tp
}

// scanLatency records the range of latencies (ns) before the unit is chosen.
func (tp *timelinePanels) scanLatency(ws []window) {
	for _, w := range ws {
		if w.ok && w.v > 0 {
			tp.latLo, tp.latHi = min(tp.latLo, w.v), max(tp.latHi, w.v)
		}
		tp.tEnd = max(tp.tEnd, w.t1)
	}
}

// chooseUnit picks the latency unit from the scanned range.
func (tp *timelinePanels) chooseUnit() {
	tp.unit, tp.perNS = logUnit(tp.latLo, tp.latHi)
}

// addIOPS draws an IOPS step line on the top panel.
func (tp *timelinePanels) addIOPS(ws []window, label string, sty draw.LineStyle) error {
	for _, w := range ws {
		if w.ok {
			tp.iopsMax = max(tp.iopsMax, w.v)
		}
		tp.tEnd = max(tp.tEnd, w.t1)
	}
	return addSteps(tp.iops, ws, func(v float64) float64 { return v }, label, sty)
}

// addLatency draws a latency step line (values in ns) on the bottom panel.
func (tp *timelinePanels) addLatency(ws []window, label string, sty draw.LineStyle) error {
	return addSteps(tp.lat, ws, func(v float64) float64 { return math.Log10(v * tp.perNS) }, label, sty)
}

// finish sets the shared axes and returns the chart.
func (tp *timelinePanels) finish(name string, h heading) (*Chart, error) {
	if tp.tEnd <= 0 {
		return nil, fmt.Errorf("chart: timeline: %w: the series is empty", ErrNoData)
	}
	for _, p := range []*plot.Plot{tp.iops, tp.lat} {
		p.X.Min, p.X.Max = 0, tp.tEnd
		p.X.Tick.Marker = timeTicks{}
	}
	tp.iops.Y.Min, tp.iops.Y.Max = 0, math.Max(tp.iopsMax*1.3, 1)
	tp.iops.Y.Tick.Marker = countTicks{}
	if tp.latHi > 0 {
		setLogAxis(&tp.lat.Y, tp.latLo*tp.perNS, tp.latHi*tp.perNS)
		tp.lat.Y.Label.Text = fmt.Sprintf("latency (%s, log scale)", tp.unit)
	} else {
		tp.lat.Y.Label.Text = "latency (no completions)"
		tp.lat.Y.Min, tp.lat.Y.Max = 0, 1
	}
	return &Chart{
		Name: safeName(name), Title: h.oneLine(), Plot: tp.iops, below: []*plot.Plot{tp.lat}, head: h,
		Width: 9 * vg.Inch, Height: 6.5 * vg.Inch,
	}, nil
}

// sparse is how many intervals a series may have at most to be drawn as points: a step
// line through one or two intervals looks like a measured flat line across the whole
// axis.
const sparse = 12

// addSteps draws windows as a step line (each value held over its interval), broken where
// intervals have no value, with one legend entry. A sparse series is drawn as points at
// the middle of their intervals instead, joined by thin lines.
func addSteps(p *plot.Plot, ws []window, y func(float64) float64, label string, sty draw.LineStyle) error {
	if len(ws) <= sparse {
		return addPoints(p, ws, y, label, sty)
	}
	var first *plotter.Line
	var seg plotter.XYs
	flush := func() error {
		if len(seg) == 0 {
			return nil
		}
		l, err := plotter.NewLine(seg)
		if err != nil {
			return fmt.Errorf("chart: timeline %s: %w", label, err)
		}
		l.LineStyle = sty
		p.Add(l)
		if first == nil {
			first = l
		}
		seg = nil
		return nil
	}
	for _, w := range ws {
		if !w.ok {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if n := len(seg); n > 0 && math.Abs(seg[n-1].X-w.t0) > 1e-9 {
			if err := flush(); err != nil {
				return err
			}
		}
		seg = append(seg, plotter.XY{X: w.t0, Y: y(w.v)}, plotter.XY{X: w.t1, Y: y(w.v)})
	}
	if err := flush(); err != nil {
		return err
	}
	if first != nil {
		p.Legend.Add(wrap(label, legendWidth), first)
	}
	return nil
}

// addPoints draws windows as markers at the middle of their intervals, joined by thin
// lines where intervals follow each other, with one legend entry.
func addPoints(p *plot.Plot, ws []window, y func(float64) float64, label string, sty draw.LineStyle) error {
	var pts plotter.XYs
	for _, w := range ws {
		if w.ok {
			pts = append(pts, plotter.XY{X: (w.t0 + w.t1) / 2, Y: y(w.v)})
		}
	}
	if len(pts) == 0 {
		return nil
	}
	thin := sty
	thin.Width = sty.Width * 0.6
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("chart: timeline %s: %w", label, err)
	}
	l.LineStyle = thin
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return fmt.Errorf("chart: timeline %s: %w", label, err)
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: sty.Color, Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
	if len(sty.Dashes) > 0 {
		// Dashed series (p99) get hollow markers: a second cue besides the dashes.
		sc.GlyphStyle.Shape = draw.RingGlyph{}
	}
	p.Add(l, sc)
	p.Legend.Add(wrap(label, legendWidth), l, sc)
	return nil
}

func lineStyle(c color.NRGBA, width float64, dashes ...float64) draw.LineStyle {
	s := draw.LineStyle{Color: c, Width: vg.Points(width)}
	for _, d := range dashes {
		s.Dashes = append(s.Dashes, vg.Points(d))
	}
	return s
}

// seriesTimeline is the timeline of a plain run from its time series.
func seriesTimeline(r *results.Run) (*Chart, error) {
	pts := r.Series.Points
	if len(pts) == 0 {
		return nil, fmt.Errorf("chart: timeline: %w: run %s has no time series", ErrNoData, r.ID)
	}
	interval := r.Series.IntervalNS
	if interval <= 0 {
		interval = pts[0].TNS
	}
	type dirSeries struct {
		name       string
		color      color.NRGBA
		iops, p50s []window
		p99s       []window
	}
	dirs := []*dirSeries{{name: "read", color: okabeIto[0]}, {name: "write", color: okabeIto[3]}}
	prev := int64(0)
	for _, pt := range pts {
		t0 := float64(max(pt.TNS-interval, prev)) / 1e9
		t1 := float64(pt.TNS) / 1e9
		prev = pt.TNS
		for i, ps := range []*results.PointStats{pt.Read, pt.Write} {
			d := dirs[i]
			if ps == nil {
				continue
			}
			lat := ps.IOs > 0 && ps.LatP50 > 0
			d.iops = append(d.iops, window{t0, t1, ps.IOPS, true})
			d.p50s = append(d.p50s, window{t0, t1, float64(ps.LatP50), lat})
			d.p99s = append(d.p99s, window{t0, t1, float64(ps.LatP99), lat && ps.LatP99 > 0})
		}
	}

	step := formatDuration(interval)
	wl := runWorkload(r)
	if sc := results.Scenario(r); sc != "host" {
		wl += ", " + sc
	}
	h := heading{main: fmt.Sprintf("IOPS and latency over time — %s, %s", targetName(results.TargetName(r)), wl)}
	h.note = "per " + step + " interval"
	if len(pts) <= sparse {
		h.note = fmt.Sprintf("%d intervals of %s, each a point", len(pts), step)
		if len(pts) == 1 {
			h.note = "one interval of " + step + ", one point"
		}
	}
	if r.Repeats > 1 {
		h.note += fmt.Sprintf("; run %d of %d", r.Repeat+1, r.Repeats)
	}
	if sc := results.Scenario(r); sc != "host" {
		h.note += "; guest clock"
	}
	tp := newTimelinePanels("IOPS (per " + step + ")")
	for _, d := range dirs {
		tp.scanLatency(d.p50s)
		tp.scanLatency(d.p99s)
	}
	tp.chooseUnit()
	for _, d := range dirs {
		if len(d.iops) == 0 {
			continue
		}
		if err := tp.addIOPS(d.iops, d.name+" IOPS", lineStyle(d.color, 1.4)); err != nil {
			return nil, err
		}
		if err := tp.addLatency(d.p50s, d.name+" p50", lineStyle(d.color, 1.2)); err != nil {
			return nil, err
		}
		if err := tp.addLatency(d.p99s, d.name+" p99", lineStyle(d.color, 1.2, 5, 2.5)); err != nil {
			return nil, err
		}
	}
	return tp.finish(timelineName(r), h)
}

// timelineName is a timeline's file name: target, workload, scenario and repeat.
func timelineName(r *results.Run) string {
	w := r.Workload.Name
	if w == "" {
		w = r.Workload.RW
	}
	name := "timeline-" + safeName(results.TargetName(r)) + "-" + safeName(w)
	if sc := results.Scenario(r); sc != "host" {
		name += "-" + safeName(sc)
	}
	if r.Repeats > 1 {
		name += fmt.Sprintf("-r%d", r.Repeat+1)
	}
	return name
}

var modeNames = map[string]string{"precopy": "pre-copy", "postcopy": "post-copy", "stopcopy": "stop-and-copy"}

// Phase colours: light shades under the data; downtime stronger.
var (
	setupShade    = alpha(color.NRGBA{0x99, 0x99, 0x99, 0xff}, 0.25)
	precopyShade  = alpha(okabeIto[4], 0.22)
	downtimeShade = alpha(okabeIto[3], 0.40)
	postcopyShade = alpha(okabeIto[2], 0.22)
	stallShade    = alpha(okabeIto[5], 0.30)
	insideColor   = okabeIto[0]
	outsideColor  = okabeIto[1]
)

// migrationTimeline is the timeline of a run inside a migrating VM, from host time.
func migrationTimeline(r *results.Run) (*Chart, error) {
	m := r.Migration
	wNS := m.WindowNS
	if wNS <= 0 {
		wNS = int64(100 * time.Millisecond)
		if len(m.Windows) > 1 {
			wNS = m.Windows[1].TNS - m.Windows[0].TNS
		}
	}
	var iops, p50s, p99s []window
	for _, w := range m.Windows {
		t0, t1 := float64(max(w.TNS-wNS, 0))/1e9, float64(w.TNS)/1e9
		lat := w.IOs > 0 && w.LatP50NS > 0
		iops = append(iops, window{t0, t1, w.IOPS, true})
		p50s = append(p50s, window{t0, t1, float64(w.LatP50NS), lat})
		p99s = append(p99s, window{t0, t1, float64(w.LatP99NS), lat && w.LatP99NS > 0})
	}
	oIOPS, oP50, oP99 := outsideWindows(m)

	step := formatDuration(wNS)
	target := targetName(results.TargetName(r))
	wl := runWorkload(r)
	var h heading
	if mode, ok := modeNames[m.Mode]; ok {
		h.main = fmt.Sprintf("IOPS and latency during a %s live migration — %s, %s", mode, target, wl)
		h.note = "migration " + m.Outcome + "; "
	} else {
		h.main = fmt.Sprintf("IOPS and latency in a VM, not migrated (baseline) — %s, %s", target, wl)
	}
	h.note += step + " windows, host time"
	if m.Security != "" && m.Security != "none" {
		h.note += "; migration over " + m.Security
	}
	if m.Link != nil && m.Link.Preset != "" {
		h.note += "; " + m.Link.Preset + " link"
	}
	tp := newTimelinePanels("IOPS (per " + step + " window)")
	for _, ws := range [][]window{p50s, oP50, p99s, oP99} {
		tp.scanLatency(ws)
	}
	tp.chooseUnit()

	// Phases first, so that they lie under the lines.
	sh, marks := migrationPhases(m)
	for _, p := range []*plot.Plot{tp.iops, tp.lat} {
		p.Add(sh)
	}
	for _, s := range sh.items {
		if s.label != "" {
			tp.iops.Legend.Add(wrap(s.label, legendWidth), swatch(s.color))
		}
	}
	if passes := passStarts(m); len(passes) > 1 {
		vl := &vlines{xs: passes, style: lineStyle(alpha(textColor, 0.55), 0.6, 1, 2)}
		tp.iops.Add(vl)
		tp.lat.Add(vl)
		tp.iops.Legend.Add("RAM pass starts (dirty sync)", vl)
	}

	if err := tp.addIOPS(iops, "inside the VM", lineStyle(insideColor, 1.4)); err != nil {
		return nil, err
	}
	if len(oIOPS) > 0 {
		label := "outside (host, same backend)"
		if !m.Outside.Complete {
			label += " (ended early)"
		}
		if err := tp.addIOPS(oIOPS, label, lineStyle(outsideColor, 1.4, 5, 2.5)); err != nil {
			return nil, err
		}
	}
	for _, l := range []struct {
		ws    []window
		label string
		sty   draw.LineStyle
	}{
		{p50s, "inside p50", lineStyle(insideColor, 1.2)},
		{p99s, "inside p99", lineStyle(insideColor, 1.2, 5, 2.5)},
		{oP50, "outside p50", lineStyle(outsideColor, 1.2)},
		{oP99, "outside p99", lineStyle(outsideColor, 1.2, 5, 2.5)},
	} {
		if err := tp.addLatency(l.ws, l.label, l.sty); err != nil {
			return nil, err
		}
	}
	if len(marks.items) > 0 {
		tp.iops.Add(marks)
	}
	return tp.finish(timelineName(r), h)
}

// outsideWindows converts the host-side workload's series to the migration's time axis.
// For a mixed workload the IOPS are summed and the latencies are the worse direction's.
func outsideWindows(m *results.Migration) (iops, p50s, p99s []window) {
	o := m.Outside
	if o == nil || len(o.Series.Points) == 0 {
		return nil, nil, nil
	}
	interval := o.Series.IntervalNS
	if interval <= 0 && len(o.Series.Points) > 0 {
		interval = o.Series.Points[0].TNS
	}
	// Series times start after the ramp.
	offset := m.OutsideStartNS + int64(o.Workload.RampTime)
	prev := int64(0)
	for _, pt := range o.Series.Points {
		t0 := float64(offset+max(pt.TNS-interval, prev)) / 1e9
		t1 := float64(offset+pt.TNS) / 1e9
		prev = pt.TNS
		var sum, p50, p99 float64
		var ios int64
		for _, ps := range []*results.PointStats{pt.Read, pt.Write} {
			if ps == nil {
				continue
			}
			sum += ps.IOPS
			ios += ps.IOs
			p50, p99 = max(p50, float64(ps.LatP50)), max(p99, float64(ps.LatP99))
		}
		lat := ios > 0 && p50 > 0
		iops = append(iops, window{t0, t1, sum, true})
		p50s = append(p50s, window{t0, t1, p50, lat})
		p99s = append(p99s, window{t0, t1, p99, lat && p99 > 0})
	}
	return iops, p50s, p99s
}

// pauseWindow is when the VM was paused: source STOP to the next RESUME (destination, or
// the source after a cancelled stop-and-copy), from the QMP events. Without the events it
// places QEMU's downtime where QEMU pauses: at the switchover for post-copy, over the whole
// migration for stop-and-copy, at the end for pre-copy.
func pauseWindow(m *results.Migration) (start, end int64, fromEvents, ok bool) {
	stop := int64(-1)
	for _, e := range m.Events {
		if e.Side == "source" && e.Name == "STOP" && e.TNS >= m.StartNS-int64(time.Second) && e.TNS <= m.EndNS {
			stop = e.TNS
		}
	}
	if stop >= 0 {
		for _, e := range m.Events {
			if e.Name == "RESUME" && e.TNS >= stop {
				return stop, e.TNS, true, true
			}
		}
	}
	if m.Outcome != "completed" {
		return 0, 0, false, false
	}
	dt := int64(0) // an unknown QEMU downtime: the host-seen pause
	if m.QEMUDowntimeKnown() {
		dt = int64(m.QEMUDowntimeMS * 1e6)
	}
	if dt <= 0 {
		dt = int64(m.PauseMS * 1e6)
	}
	switch {
	case m.Mode == "stopcopy":
		return m.StartNS, m.EndNS, false, true
	case dt <= 0:
		return 0, 0, false, false
	case m.Mode == "postcopy" && m.SwitchoverNS > 0:
		return m.SwitchoverNS, m.SwitchoverNS + dt, false, true
	}
	return m.EndNS - dt, m.EndNS, false, true
}

// migrationPhases returns the shaded phases and the downtime/stall marks of a migration.
func migrationPhases(m *results.Migration) (*spans, *marks) {
	sh, mk := &spans{}, &marks{}
	if _, ok := modeNames[m.Mode]; !ok || m.EndNS <= m.StartNS {
		return sh, mk
	}
	s := func(ns int64) float64 { return float64(ns) / 1e9 }
	ps, pe, fromEvents, paused := pauseWindow(m)
	cancelled := m.Outcome != "completed"

	if m.Mode != "stopcopy" {
		setupEnd := min(m.StartNS+int64(m.SetupTimeMS*1e6), m.EndNS)
		if setupEnd > m.StartNS {
			sh.add(s(m.StartNS), s(setupEnd), setupShade, "migration setup")
		}
		preEnd := m.EndNS
		if m.Mode == "postcopy" && m.SwitchoverNS > 0 {
			preEnd = min(preEnd, m.SwitchoverNS)
		}
		if paused && ps < preEnd {
			preEnd = max(ps, setupEnd)
		}
		label := "pre-copy (VM runs on source)"
		if cancelled {
			label = "pre-copy, " + m.Outcome
		}
		sh.add(s(setupEnd), s(preEnd), precopyShade, label)
		if m.Mode == "postcopy" && m.SwitchoverNS > 0 {
			from := m.SwitchoverNS
			if paused {
				from = max(from, pe)
			}
			sh.add(s(from), s(m.EndNS), postcopyShade, "post-copy (VM on destination)")
		}
	}
	if paused {
		label := fmt.Sprintf("downtime %s", formatMS(float64(pe-ps)/1e6))
		switch {
		case fromEvents:
			label += " (STOP → RESUME)"
		case m.Mode == "stopcopy":
			label += " (stop-and-copy)"
		default:
			label += " (QEMU's figure)"
		}
		sh.add(s(ps), s(pe), downtimeShade, label)
	}
	if st := m.LongestStall; st != nil && st.EndNS > st.StartNS {
		sh.add(s(st.StartNS), s(st.EndNS), stallShade, "longest I/O stall "+formatMS(m.LongestStallMS))
		mk.items = append(mk.items, mark{x0: s(st.StartNS), x1: s(st.EndNS), color: okabeIto[5], label: "longest stall " + formatMS(m.LongestStallMS)})
	}
	if m.QEMUDowntimeKnown() && m.QEMUDowntimeMS > 0 {
		at := ps
		if !paused {
			at = m.EndNS - int64(m.QEMUDowntimeMS*1e6)
		}
		mk.items = append(mk.items, mark{x0: s(at), x1: s(at + int64(m.QEMUDowntimeMS*1e6)), color: okabeIto[3], label: "QEMU downtime " + formatMS(m.QEMUDowntimeMS)})
	}
	return sh, mk
}

// passStarts are the times QEMU started a new pass over the guest's RAM (dirty-sync count
// went up), from the query-migrate samples.
func passStarts(m *results.Migration) []float64 {
	var out []float64
	last := int64(0)
	for _, s := range m.Samples {
		if s.DirtySyncCount > last {
			out = append(out, float64(s.TNS)/1e9)
			last = s.DirtySyncCount
		}
	}
	return out
}

// formatDuration formats an interval: "100 ms", "1 s".
func formatDuration(ns int64) string {
	if ns%1e9 == 0 {
		return fmt.Sprintf("%d s", ns/1e9)
	}
	return formatMS(float64(ns) / 1e6)
}

func formatMS(ms float64) string {
	switch {
	case ms >= 10000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", ms), ".0") + " ms"
}

// spans shades time ranges over the whole height of a panel.
type spans struct{ items []span }

type span struct {
	x0, x1 float64
	color  color.NRGBA
	label  string
}

func (s *spans) add(x0, x1 float64, c color.NRGBA, label string) {
	if x1 > x0 {
		s.items = append(s.items, span{x0, x1, c, label})
	}
}

// minSpan keeps a 40 ms downtime visible on a 12 s axis.
const minSpan = 1.5

func (s *spans) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, it := range s.items {
		x0, x1 := trX(it.x0), trX(it.x1)
		if x1-x0 < vg.Points(minSpan) {
			x1 = x0 + vg.Points(minSpan)
		}
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if x1 <= x0 {
			continue
		}
		fillRect(c, it.color, vg.Rectangle{Min: vg.Point{X: x0, Y: c.Min.Y}, Max: vg.Point{X: x1, Y: c.Max.Y}})
	}
}

// swatch is a legend thumbnail of one colour.
type swatch color.NRGBA

func (s swatch) Thumbnail(c *draw.Canvas) { fillRect(*c, color.NRGBA(s), c.Rectangle) }

// vlines draws vertical lines across a panel.
type vlines struct {
	xs    []float64
	style draw.LineStyle
}

func (v *vlines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		if px := trX(x); px >= c.Min.X && px <= c.Max.X {
			c.StrokeLine2(v.style, px, c.Min.Y, px, c.Max.Y)
		}
	}
}

func (v *vlines) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// marks are labelled bars in rows along the top of a panel: the downtime figures, which are
// too short to read off the time axis.
type marks struct{ items []mark }

type mark struct {
	x0, x1 float64
	color  color.NRGBA
	label  string
}

func (mk *marks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	txt := p.Y.Tick.Label
	txt.YAlign = draw.YCenter
	rowH := txt.Font.Size * 1.5
	for i, m := range mk.items {
		y := c.Max.Y - rowH*vg.Length(i+1) + rowH/2
		x0, x1 := trX(m.x0), trX(m.x1)
		if x1-x0 < vg.Points(2) {
			x1 = x0 + vg.Points(2)
		}
		fillRect(c, m.color, vg.Rectangle{Min: vg.Point{X: x0, Y: y - vg.Points(2.5)}, Max: vg.Point{X: x1, Y: y + vg.Points(2.5)}})
		at := vg.Point{X: x1 + vg.Points(3), Y: y}
		txt.XAlign = draw.XLeft
		if at.X+txt.Width(m.label) > c.Max.X {
			at.X, txt.XAlign = x0-vg.Points(3), draw.XRight
		}
		c.FillText(txt, at, m.label)
	}
}
