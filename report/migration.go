package report

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"

	"github.com/vmstorbench/vmstorbench/results"
)

// This file is the migration summary every report gets when it holds migration runs: one
// row per target × workload × mode × security × link × storage method with the migration
// metrics (results.MigrationMetrics), and the VEE '07 layout (Bradford et al., Table 2)
// when several storage methods were measured. Each table is built once as a grid and
// rendered in every format: terminal, Markdown, CSV and HTML.

// grid is a table of text built once for every format.
type grid struct {
	ID      string // HTML id
	Title   string
	Note    string // under the table
	Header  []string
	Right   []bool // right-aligned (figure) columns
	Rows    [][]gridCell
	Dropped []string // columns left out to fit the terminal
}

// gridCell is one cell: its text, the range and run count on hover (HTML), and whether it
// reports a problem.
type gridCell struct {
	Text  string
	Title string
	Bad   bool
}

func (g *grid) texts() [][]string {
	out := make([][]string, len(g.Rows))
	for i, r := range g.Rows {
		out[i] = make([]string, len(r))
		for j, c := range r {
			out[i][j] = c.Text
		}
	}
	return out
}

// write renders the grid as a terminal (box-drawn) or Markdown table with its title and
// note. A terminal table wider than width (0: no limit) loses its optional columns, the
// last first.
func (g *grid) write(w io.Writer, markdown bool, width int, optional []int) error {
	p := &printer{w: w}
	if markdown {
		p.printf("\n**%s**\n\n", g.Title)
	} else {
		p.printf("\n%s\n", g.Title)
	}
	if p.err != nil {
		return p.err
	}
	header, right, cells := g.Header, g.Right, g.texts()
	if markdown {
		for _, c := range cells {
			for i := range c {
				c[i] = strings.ReplaceAll(c[i], "|", `\|`)
			}
		}
	}
	var dropped []string
	for {
		align := make([]tw.Align, len(header))
		for i := range header {
			align[i] = tw.AlignLeft
			if right[i] {
				align[i] = tw.AlignRight
			}
		}
		var out strings.Builder
		if err := writeTable(&out, header, align, cells, markdown); err != nil {
			return err
		}
		if markdown || width <= 0 || maxLineWidth(out.String()) <= width || len(optional) == 0 {
			p.printf("%s", out.String())
			break
		}
		col := optional[len(optional)-1]
		optional = optional[:len(optional)-1]
		dropped = append(dropped, header[col])
		header, right = dropColumn(header, col), dropColumn(right, col)
		for i := range cells {
			cells[i] = dropColumn(cells[i], col)
		}
	}
	if len(dropped) > 0 {
		p.printf("(left out to fit the terminal: %s)\n", strings.Join(dropped, ", "))
	}
	if g.Note != "" {
		p.printf("%s\n", g.Note)
	}
	return p.err
}

// countedRuns are the runs whose figures a case shows: the complete ones, or when none
// completed, all of them (marked in the Runs or Status column).
func countedRuns(c *results.Case) []*results.Run {
	if ok := c.Complete(); len(ok) > 0 {
		return ok
	}
	return c.Runs
}

// migrationCases are the cases whose runs ran in a VM.
func migrationCases(cases []*results.Case) []*results.Case {
	var out []*results.Case
	for _, c := range cases {
		if c.Runs[0].Migration != nil {
			out = append(out, c)
		}
	}
	return out
}

func migMetric(name string) results.Metric {
	m := metric(name)
	if !m.Migration {
		panic("report: " + name + " is not a migration metric") // a programming error
	}
	return m
}

// migColumn is one figure column of the migration table.
type migColumn struct {
	m     results.Metric
	label string
	units []unit // nil: sig3 of the metric in its own Unit
	// limit is the largest figure a unit may show (default 999.5, as pickUnit): the
	// migration table keeps durations in ms up to 100 s, so 3 ms and 28 s share a column
	// without rounding the short one to 0.00 s.
	limit float64
}

var (
	byteUnits = []unit{{"kB", 1e3}, {"MB", 1e6}, {"GB", 1e9}}
	msUnits   = []unit{{"ms", 1e6}, {"s", 1e9}}
	// migrationColumns are the migration table's figure columns, in order.
	migrationColumns = []migColumn{
		{migMetric("downtime"), "QEMU downtime", msUnits, 99999.5},
		{migMetric("pause"), "Pause", msUnits, 99999.5},
		{migMetric("stall"), "Longest stall", msUnits, 99999.5},
		{migMetric("total"), "Total", msUnits, 99999.5},
		{migMetric("setup"), "Setup", msUnits, 99999.5},
		{migMetric("disruption"), "Disruption", msUnits, 99999.5},
		{migMetric("migration_time"), "Migration time", msUnits, 99999.5},
		{migMetric("ram_bytes"), "RAM link", byteUnits, 0},
		{migMetric("disk_bytes"), "Disk link", byteUnits, 0},
		{migMetric("storage_bytes"), "Storage link", byteUnits, 0},
		{migMetric("replication_bytes"), "Replication", byteUnits, 0},
		{migMetric("cpu_s"), "CPU", nil, 0},
		{migMetric("joules"), "Energy", nil, 0},
	}
)

// summaryOf is metric m over the case's counted runs.
func summaryOf(c *results.Case, m results.Metric) (results.Summary, bool) {
	return results.Summarize(results.MetricValues(countedRuns(c), "", m))
}

// figureCell is a median in unit u ("±n%" for repeats, the range on hover).
func figureCell(s results.Summary, ok bool, format func(float64) string, spread bool) gridCell {
	if !ok {
		return gridCell{Text: "-"}
	}
	c := gridCell{Text: format(s.Median)}
	if s.N > 1 {
		if spread {
			c.Text += fmt.Sprintf(" ±%.0f%%", 100*s.HalfRange())
		}
		c.Title = fmt.Sprintf("median of %d runs; min %s, max %s", s.N, format(s.Min), format(s.Max))
	}
	return c
}

// columnFormat picks the unit of a column (or row) from the medians it shows and returns
// its name ("" for a metric shown in its own unit) and formatter.
func columnFormat(col migColumn, medians []float64) (string, func(float64) string) {
	if col.units == nil {
		return col.m.Unit, func(v float64) string { return sig3(v * col.m.Scale) }
	}
	limit := col.limit
	if limit == 0 {
		limit = 999.5
	}
	u := pickUnitBelow(col.units, medians, limit)
	return u.name, func(v float64) string { return sig3(v / u.size) }
}

// integrityCell sums the migration's data checks over all runs of a case (a failed run's
// mismatches count most): "ok", or "N mismatches, N differing pages, N differing blocks";
// "-" when nothing was checked.
func integrityCell(c *results.Case) gridCell {
	var mismatches, pages, blocks int64
	checked := false
	for _, r := range c.Runs {
		m := r.Migration
		if in := m.Integrity; in != nil {
			for _, v := range []*results.Verify{in.ReadBack, in.Workload} {
				if v != nil {
					mismatches += v.Mismatches
					checked = true
				}
			}
		}
		if m.Memory != nil {
			pages += m.Memory.DifferingPages
			checked = true
		}
		if m.ImageCheck != nil && m.ImageCheck.Error == "" {
			blocks += m.ImageCheck.DifferingBlocks
			checked = true
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int64
		noun string
	}{{mismatches, "mismatches"}, {pages, "differing pages"}, {blocks, "differing blocks"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.noun))
		}
	}
	switch {
	case len(parts) > 0:
		return gridCell{Text: strings.Join(parts, ", "), Bad: true}
	case checked:
		return gridCell{Text: "ok"}
	}
	return gridCell{Text: "-"}
}

// runsCell is "3", "2 of 3" (runs left out), or "0 of 2" (figures from failed runs).
func runsCell(c *results.Case) gridCell {
	good := len(c.Complete())
	switch {
	case good == len(c.Runs):
		return gridCell{Text: strconv.Itoa(good)}
	case good == 0:
		return gridCell{Text: fmt.Sprintf("0 of %d", len(c.Runs)), Bad: true,
			Title: "no good run (incomplete or verify failed): figures from the failed runs"}
	}
	return gridCell{Text: fmt.Sprintf("%d of %d", good, len(c.Runs)), Bad: true,
		Title: fmt.Sprintf("%d of %d runs failed (incomplete or verify failed): figures from the good ones", len(c.Runs)-good, len(c.Runs))}
}

// linkName is a migration's link preset, "-" without an emulated link.
func linkName(m *results.Migration) string {
	if m.Link == nil || m.Link.Preset == "" {
		return "-"
	}
	return m.Link.Preset
}

// storageName is a migration's storage method with a mirror's non-default copy mode.
func storageName(m *results.Migration) string {
	s := results.StorageOf(m)
	if s == "mirror" && m.MirrorCopyMode != "" && m.MirrorCopyMode != "background" {
		s += " " + m.MirrorCopyMode
	}
	return s
}

// migrationGrid is the "Migrations" table; nil without migration runs. Its second result
// lists the columns a narrow terminal may drop, least important last.
func migrationGrid(cases []*results.Case, redact func(*results.Run) string) (*grid, []int) {
	mc := migrationCases(cases)
	if len(mc) == 0 {
		return nil, nil
	}
	oneWorkload := true
	for _, c := range mc[1:] {
		oneWorkload = oneWorkload && c.Key.Workload == mc[0].Key.Workload && c.Key.Job == mc[0].Key.Job
	}
	g := &grid{ID: "migrations", Title: "Migrations"}
	text := func(h string) { g.Header, g.Right = append(g.Header, h), append(g.Right, false) }
	num := func(h string) { g.Header, g.Right = append(g.Header, h), append(g.Right, true) }
	text("Target")
	if !oneWorkload {
		text("Workload")
	}
	for _, h := range []string{"Mode", "Security", "Link", "Storage"} {
		text(h)
	}
	num("Runs")
	columns := shownMigrationColumns(mc)
	formats := make([]func(float64) string, len(columns))
	for i, col := range columns {
		var medians []float64
		for _, c := range mc {
			if s, ok := summaryOf(c, col.m); ok {
				medians = append(medians, s.Median)
			}
		}
		name, f := columnFormat(col, medians)
		formats[i] = f
		num(col.label + " (" + name + ")")
	}
	text("Integrity")
	repeated := false
	for _, c := range mc {
		m := c.Runs[0].Migration
		row := []gridCell{{Text: redact(c.Runs[0])}}
		if !oneWorkload {
			row = append(row, gridCell{Text: c.WorkloadName()})
		}
		row = append(row, gridCell{Text: dash(m.Mode)}, gridCell{Text: dash(m.Security)}, gridCell{Text: linkName(m)},
			gridCell{Text: storageName(m)}, runsCell(c))
		for i, col := range columns {
			s, ok := summaryOf(c, col.m)
			repeated = repeated || s.N > 1
			row = append(row, figureCell(s, ok, formats[i], true))
		}
		row = append(row, integrityCell(c))
		g.Rows = append(g.Rows, row)
	}
	g.Note = "Downtime is QEMU's figure, pause the host's (source STOP to destination RESUME), stall the longest gap between the guest's I/O completions; " +
		"disruption is how long the VM ran nowhere, migration time until the destination no longer needs the source; link bytes both ways over the run; " +
		"replication is what a replicated disk (DRBD) sent between its nodes during the migration; " +
		"CPU-seconds of both QEMUs and vmstorbench, energy an estimate from them."
	if repeated {
		g.Note += " Medians over the complete runs, ± half the min–max range."
	}
	// Optional columns, dropped from the last: Energy, Setup, Total, Pause, Workload.
	first := 5 // Target, Mode, Security, Link, Storage
	if !oneWorkload {
		first = 6
	}
	col := func(label string) int { // after Runs
		for i, c := range columns {
			if c.label == label {
				return first + 1 + i
			}
		}
		panic("report: no migration column " + label) // a programming error
	}
	optional := []int{col("Pause"), col("Total"), col("Setup"), col("Energy")}
	if !oneWorkload {
		optional = append([]int{1}, optional...)
	}
	return g, optional
}

// shownMigrationColumns are the migration table's columns, less the storage-link and
// replication columns when no case has that figure (most reports have neither).
func shownMigrationColumns(mc []*results.Case) []migColumn {
	var out []migColumn
	for _, col := range migrationColumns {
		if col.m.Name == "storage_bytes" || col.m.Name == "replication_bytes" {
			found := false
			for _, c := range mc {
				if _, ok := summaryOf(c, col.m); ok {
					found = true
					break
				}
			}
			if !found {
				continue
			}
		}
		out = append(out, col)
	}
	return out
}

// veeMethods are the storage methods in the paper's column order, with its names.
var veeMethods = []struct{ method, paper string }{
	{"copy", "scp"}, {"two-phase", "rsync"}, {"mirror", "live"}, {"pull", ""}, {"shared", ""},
}

// veeRows are the metrics of the VEE '07 layout's rows, per link: the paper's two, then
// the bytes on the wire and the energy estimate.
var veeRows = []struct {
	col  migColumn
	name string
}{
	{migColumn{m: migMetric("migration_time"), units: latencyUnits}, "migration time"},
	{migColumn{m: migMetric("disruption"), units: latencyUnits}, "disruption time"},
	{migColumn{m: migMetric("wire_bytes"), units: byteUnits}, "bytes on the wire"},
	{migColumn{m: migMetric("joules")}, "energy"},
}

// veeGrids are the VEE '07 Table 2 layouts (Bradford et al.): for each target × workload ×
// mode × security with at least two storage methods, rows LAN/WAN × migration/disruption
// time (then bytes on the wire and joules per link), a column per method, medians.
func veeGrids(cases []*results.Case, redact func(*results.Run) string) []*grid {
	type group struct {
		first   *results.Case
		links   []string
		methods []string
		cells   map[[2]string]*results.Case // link, method
	}
	var groups []*group
	index := map[string]*group{}
	for _, c := range migrationCases(cases) {
		m := c.Runs[0].Migration
		k := strings.Join([]string{c.Key.Target, c.Key.Workload, c.Key.Job, m.Mode, m.Security}, "\x00")
		g := index[k]
		if g == nil {
			g = &group{first: c, cells: map[[2]string]*results.Case{}}
			index[k] = g
			groups = append(groups, g)
		}
		link, method := linkName(m), storageName(m)
		if !slices.Contains(g.links, link) {
			g.links = append(g.links, link)
		}
		if !slices.Contains(g.methods, method) {
			g.methods = append(g.methods, method)
		}
		g.cells[[2]string{link, method}] = c
	}
	var out []*grid
	for n, g := range groups {
		if len(g.methods) < 2 {
			continue
		}
		rank := func(method string) int {
			for i, v := range veeMethods {
				if strings.HasPrefix(method+" ", v.method+" ") {
					return i
				}
			}
			return len(veeMethods)
		}
		slices.SortStableFunc(g.methods, func(a, b string) int { return rank(a) - rank(b) })
		linkRank := map[string]int{"lan": 0, "wan": 1}
		slices.SortStableFunc(g.links, func(a, b string) int {
			ra, oka := linkRank[a]
			rb, okb := linkRank[b]
			switch {
			case oka && okb:
				return ra - rb
			case oka:
				return -1
			case okb:
				return 1
			}
			return 0
		})
		m := g.first.Runs[0].Migration
		gr := &grid{ID: fmt.Sprintf("vee-%d", n+1),
			Title: fmt.Sprintf("Storage methods, VEE '07 layout (Bradford et al., Table 2): %s, %s, %s, security %s",
				redact(g.first.Runs[0]), g.first.WorkloadName(), m.Mode, m.Security)}
		gr.Header, gr.Right = []string{""}, []bool{false}
		for _, method := range g.methods {
			h := method
			if r := rank(method); r < len(veeMethods) && veeMethods[r].paper != "" {
				h += ` ("` + veeMethods[r].paper + `")`
			}
			gr.Header, gr.Right = append(gr.Header, h), append(gr.Right, true)
		}
		// The paper's rows first (each link's migration and disruption time), then the
		// bytes and the energy of each link.
		var order [][2]int // link index, row index
		for li := range g.links {
			order = append(order, [2]int{li, 0}, [2]int{li, 1})
		}
		for ri := 2; ri < len(veeRows); ri++ {
			for li := range g.links {
				order = append(order, [2]int{li, ri})
			}
		}
		maxN := 0
		for _, o := range order {
			link, vr := g.links[o[0]], veeRows[o[1]]
			sums := make([]results.Summary, len(g.methods))
			oks := make([]bool, len(g.methods))
			var medians []float64
			for i, method := range g.methods {
				if c := g.cells[[2]string{link, method}]; c != nil {
					sums[i], oks[i] = summaryOf(c, vr.col.m)
					if oks[i] {
						medians = append(medians, sums[i].Median)
						maxN = max(maxN, sums[i].N)
					}
				}
			}
			u, format := columnFormat(vr.col, medians)
			label := strings.ToUpper(link) + " " + vr.name
			if link == "-" {
				label = "no link: " + vr.name
			}
			if u != "" {
				label += " (" + u + ")"
			}
			row := []gridCell{{Text: label}}
			for i := range g.methods {
				row = append(row, figureCell(sums[i], oks[i], format, false))
			}
			gr.Rows = append(gr.Rows, row)
		}
		gr.Note = "Migration time: command to the destination no longer needing the source; disruption: the VM running nowhere; bytes on the wire: RAM and disk links, both ways; energy: an estimate from CPU-seconds."
		if maxN > 1 {
			gr.Note += " Medians over the complete runs."
		}
		out = append(out, gr)
	}
	return out
}

// renderMigrationText writes the migration tables of a run set after the summary table:
// the "Migrations" table and the VEE '07 layouts; nothing without migration runs.
func renderMigrationText(w io.Writer, runs []*results.Run, markdown bool, width int) error {
	cases := results.Group(runs)
	g, optional := migrationGrid(cases, targetName)
	if g == nil {
		return nil
	}
	if err := g.write(w, markdown, width, optional); err != nil {
		return err
	}
	for _, v := range veeGrids(cases, targetName) {
		if err := v.write(w, markdown, width, nil); err != nil {
			return err
		}
	}
	return nil
}

// migrationCSVHeader names the migration columns of a CSV record: the run's migration
// settings, one column per migration metric in its base unit (durations in ns, bytes,
// CPU-seconds, joules), then the data checks.
func migrationCSVHeader() []string {
	h := []string{"mode", "migration_security", "link", "storage", "migration_outcome"}
	for _, m := range results.MigrationMetrics {
		name := m.Name
		if m.Unit == "ms" {
			name += "_ns"
		}
		h = append(h, name)
	}
	return append(h, "read_back_mismatches", "differing_pages", "differing_blocks")
}

// migrationCSV is a run's migration columns (empty for a run without one).
func migrationCSV(r *results.Run) []string {
	n := len(migrationCSVHeader())
	m := r.Migration
	if m == nil {
		return make([]string, n)
	}
	f64 := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	rec := []string{m.Mode, m.Security, strings.TrimPrefix(linkName(m), "-"), storageName(m), m.Outcome}
	for _, mm := range results.MigrationMetrics {
		if v, ok := mm.OfRun(r, ""); ok {
			rec = append(rec, f64(v))
		} else {
			rec = append(rec, "")
		}
	}
	opt := func(ok bool, v int64) string {
		if !ok {
			return ""
		}
		return strconv.FormatInt(v, 10)
	}
	rb := m.Integrity != nil && m.Integrity.ReadBack != nil
	var rbN int64
	if rb {
		rbN = m.Integrity.ReadBack.Mismatches
	}
	var pages, blocks int64
	if m.Memory != nil {
		pages = m.Memory.DifferingPages
	}
	if m.ImageCheck != nil {
		blocks = m.ImageCheck.DifferingBlocks
	}
	rec = append(rec, opt(rb, rbN), opt(m.Memory != nil, pages), opt(m.ImageCheck != nil && m.ImageCheck.Error == "", blocks))
	return rec
}
