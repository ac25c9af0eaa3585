package chart

import (
	"errors"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/vmstorbench/vmstorbench/results"
)

// migrationBarMetrics are the two figures MigrationBars draws side by side per scenario:
// what QEMU reports and what the guest's workload lived through.
var migrationBarMetrics = []string{"downtime", "stall"}

// migrationPanel is one target's scenarios; migrationRow one scenario's figures
// (migrationBarMetrics), each a summary over the complete runs or none.
type migrationPanel struct {
	target string
	rows   []migrationRow
}

type migrationRow struct {
	label string
	sums  []results.Summary
	oks   []bool
}

// migrationPanels groups the migration cases by target: ErrNoData without any, or without
// a completed migration.
func migrationPanels(cases []*results.Case) ([]results.Metric, []*migrationPanel, error) {
	var metrics []results.Metric
	for _, name := range migrationBarMetrics {
		m, err := results.MetricByName(name)
		if err != nil {
			return nil, nil, fmt.Errorf("chart: migration bars: %w", err)
		}
		metrics = append(metrics, m)
	}
	workloads := map[string]bool{}
	for _, c := range cases {
		if c != nil && len(c.Runs) > 0 && c.Runs[0].Migration != nil {
			workloads[c.Key.Workload+"\x00"+c.Key.Job] = true
		}
	}
	var panels []*migrationPanel
	index := map[string]*migrationPanel{}
	any := false
	for _, c := range cases {
		if c == nil || len(c.Runs) == 0 {
			return nil, nil, errors.New("chart: migration bars: empty case")
		}
		if c.Runs[0].Migration == nil {
			continue
		}
		p := index[c.Target()]
		if p == nil {
			p = &migrationPanel{target: c.Target()}
			index[c.Target()] = p
			panels = append(panels, p)
		}
		row := migrationRow{label: c.Scenario()}
		if len(workloads) > 1 {
			row.label = c.WorkloadName() + ", " + row.label
		}
		for _, m := range metrics {
			s, ok := c.Summary("", m)
			row.sums, row.oks = append(row.sums, s), append(row.oks, ok)
			any = any || ok
		}
		p.rows = append(p.rows, row)
	}
	switch {
	case len(panels) == 0:
		return nil, nil, fmt.Errorf("chart: %w: no migration runs", ErrNoData)
	case !any:
		return nil, nil, fmt.Errorf("chart: %w: no completed migration among %d cases", ErrNoData, len(cases))
	}
	return metrics, panels, nil
}

// MigrationBars draws, for every migration scenario (mode, security, link, storage method),
// QEMU's downtime and the longest stall the guest's workload saw as a pair of horizontal
// bars: the median over the complete runs, whiskers min–max. One panel per target, all on
// one time axis, so the targets compare at a glance. Cases without a migration are left
// out; none is ErrNoData.
func MigrationBars(cases []*results.Case) (*Chart, error) {
	metrics, panels, err := migrationPanels(cases)
	if err != nil {
		return nil, err
	}
	top, maxN, minN := 0.0, 0, 0
	for _, p := range panels {
		for _, row := range p.rows {
			for k, s := range row.sums {
				if row.oks[k] {
					top = max(top, s.Max)
					if minN == 0 || s.N < minN {
						minN = s.N
					}
					maxN = max(maxN, s.N)
				}
			}
		}
	}
	unit, perNS := latUnit(top)
	if top >= 2e9 {
		unit, perNS = "s", 1e-9
	}
	h := heading{main: "Migration downtime: QEMU's figure and the longest stall the workload saw, by scenario"}
	h.note = "one run each"
	switch {
	case maxN > 1 && minN == maxN:
		h.note = fmt.Sprintf("median of %d runs, whiskers min–max", maxN)
	case maxN > 1:
		h.note = fmt.Sprintf("median of %d–%d runs, whiskers min–max", minN, maxN)
	}
	h.note += "; lower is better"

	colors := []int{0, 3}
	var plots []*plot.Plot
	var weights []float64
	height := 0.6 * vg.Inch
	xMax := top * perNS * 1.18
	if xMax == 0 {
		xMax = 1
	}
	for i, pn := range panels {
		p := newPlot("", "time ("+unit+")", "")
		if len(panels) > 1 || pn.target != "" {
			p.Title.Text = targetName(pn.target)
			p.Title.TextStyle.Font = sans(10.5)
			p.Title.Padding = vg.Points(4)
		}
		addGrid(p, false, true)
		n := len(pn.rows)
		ticks := make(plot.ConstantTicks, n)
		b := &barSeries{height: 0.36, format: compactNumber, style: p.X.Tick.Label}
		for r, row := range pn.rows {
			y := float64(n - 1 - r)
			ticks[r] = plot.Tick{Value: y, Label: wrap(row.label, 30)}
			for k := range metrics {
				yk := y + 0.2 - 0.4*float64(k)
				if !row.oks[k] {
					b.notes = append(b.notes, barNote{y: yk, text: "no completed migration"})
					continue
				}
				s := row.sums[k]
				b.bars = append(b.bars, bar{y: yk, med: s.Median * perNS, lo: s.Min * perNS, hi: s.Max * perNS, color: seriesColor(colors[k])})
			}
		}
		p.Add(b)
		p.Y.Tick.Marker = ticks
		p.Y.Tick.Length = 0
		p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
		p.X.Min, p.X.Max = 0, xMax
		p.X.Tick.Marker = countTicks{}
		if i == 0 {
			for k, m := range metrics {
				p.Legend.Add(m.Label, swatch(seriesColor(colors[k])))
			}
		}
		plots = append(plots, p)
		weights = append(weights, float64(n)+2.5)
		height += 0.75*vg.Inch + vg.Length(n)*0.45*vg.Inch
	}
	return &Chart{
		Name: "migration-downtime-stall", Title: h.oneLine(), Plot: plots[0], below: plots[1:], weights: weights, head: h,
		Width: 8 * vg.Inch, Height: max(3*vg.Inch, height),
	}, nil
}
