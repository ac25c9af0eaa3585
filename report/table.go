// Package report renders result documents for people: side-by-side tables in the terminal,
// Markdown and CSV, comparisons, and the self-contained HTML report (charts: report/chart).
package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
)

// Formats are the formats Render accepts.
var Formats = []string{"table", "md", "csv"}

// Render writes runs side by side, one row per case and direction, in format "table"
// (terminal), "md" (Markdown) or "csv" (raw numbers in base units, with a header row), with
// no width limit.
func Render(w io.Writer, runs []*results.Run, format string) error {
	return RenderTable(w, runs, format, TableOptions{})
}

// TableOptions configure RenderTable.
type TableOptions struct {
	// Width is the terminal's width in columns: a "table" wider than it is laid out
	// narrower (two lines per row, fewer latency columns). 0 means no limit (a file, a
	// pipe). Markdown and CSV ignore it.
	Width int
}

// RenderTable is Render with options. Every figure column picks its own unit from its
// values (ns, µs, ms or s; kB/s, MB/s or GB/s).
func RenderTable(w io.Writer, runs []*results.Run, format string, opt TableOptions) error {
	switch format {
	case "table", "md":
		if err := renderTable(w, rowsOf(runs), format == "md", opt.Width); err != nil {
			return err
		}
		return renderMigrationText(w, runs, format == "md", opt.Width)
	case "csv":
		return renderCSV(w, runs)
	}
	return fmt.Errorf("report: unknown format %q (formats: %s)", format, strings.Join(Formats, ", "))
}

// row is one direction of one case (a target × workload × scenario and its repeats); dir is
// "-" for a case that recorded no direction (it failed before any I/O), which still gets a
// row so the failure shows.
type row struct {
	c   *results.Case
	dir string
}

func rowsOf(runs []*results.Run) []row {
	var rows []row
	for _, c := range results.Group(runs) {
		dirs := c.Dirs()
		if len(dirs) == 0 {
			dirs = []string{"-"}
		}
		for _, d := range dirs {
			rows = append(rows, row{c, d})
		}
	}
	return rows
}

// counted are the runs whose figures a row shows: the complete ones, or when none completed,
// all of them (a single interrupted run still shows what it measured, marked INCOMPLETE).
func (rw row) counted() []*results.Run { return countedRuns(rw.c) }

// summary is metric m of the row's direction over its counted runs.
func (rw row) summary(m results.Metric) (results.Summary, bool) {
	var xs []float64
	for _, r := range rw.counted() {
		if s := r.DirStats(rw.dir); s != nil {
			if v, ok := m.Of(s); ok {
				xs = append(xs, v)
			}
		}
	}
	return results.Summarize(xs)
}

// errors sums the direction's I/O errors over all runs; ok is false when no run has it.
func (rw row) errors() (n int64, ok bool) {
	for _, r := range rw.c.Runs {
		if s := r.DirStats(rw.dir); s != nil {
			n, ok = n+s.Errors, true
		}
	}
	return n, ok
}

// verifyMismatches sums verify mismatches over the runs that verified.
func verifyMismatches(c *results.Case) (n int64, ok bool) {
	for _, r := range c.Runs {
		if r.Verify != nil {
			n, ok = n+r.Verify.Mismatches, true
		}
	}
	return n, ok
}

func metric(name string) results.Metric {
	m, err := results.MetricByName(name)
	if err != nil {
		panic(err) // a name in this file is wrong: a programming error
	}
	return m
}

var (
	mIOPS = metric("iops")
	mBW   = metric("bw")
	mMean = metric("mean")
	mMax  = metric("max")
)

func targetName(r *results.Run) string {
	if _, labelled := r.Labels[results.TargetLabel]; labelled {
		return results.TargetName(r)
	}
	// URLs in results are stored redacted; redact again so a hand-edited file cannot leak.
	return backends.RedactString(r.Target.URL)
}

func workloadName(c *results.Case) string {
	s := c.Workload()
	if sc := c.Scenario(); sc != "host" {
		s += " [" + sc + "]"
	}
	return s
}

// latency percentiles shown, in column order after the mean.
var shownPercentiles = []results.Metric{metric("p50"), metric("p99"), metric("p99.9")}

// tableLayouts are the terminal layouts, widest first: renderTable takes the first that
// fits the width. Level 0 has a column for everything; from level 1 a row takes two lines
// (target over backend, security and workload; status over its details), the detail
// columns merge into Status and text is cut to maxText runes (the status details to two
// thirds of that); level 2 drops p50 and p99.9,
// level 3 the mean and the bandwidth.
var tableLayouts = []struct{ level, maxText int }{
	{0, 0}, {1, 40}, {1, 30}, {2, 40}, {2, 30}, {2, 24}, {3, 30}, {3, 24}, {3, 18}, {3, 15}, {3, 12},
}

func renderTable(w io.Writer, rows []row, markdown bool, width int) error {
	repeated := false
	for _, rw := range rows {
		repeated = repeated || len(rw.c.Runs) > 1
	}
	// One workload for every row (the common case: one workload, several targets) is said
	// once above the table instead of in a wide column repeated on every row.
	shared := ""
	if len(rows) > 0 {
		shared = workloadName(rows[0].c)
		for _, rw := range rows[1:] {
			if workloadName(rw.c) != shared {
				shared = ""
				break
			}
		}
	}
	u := columnUnits(rows)
	var out bytes.Buffer
	level := 0
	for _, l := range tableLayouts {
		out.Reset()
		level = l.level
		header, align, cells := tableLayout(rows, u, l.level, l.maxText, shared != "")
		if markdown {
			for _, c := range cells {
				for i := range c {
					c[i] = strings.ReplaceAll(c[i], "|", `\|`)
				}
			}
		}
		if err := writeTable(&out, header, align, cells, markdown); err != nil {
			return err
		}
		if markdown || width <= 0 || maxLineWidth(out.String()) <= width {
			break
		}
	}
	p := &printer{w: w}
	if shared != "" {
		if markdown {
			p.printf("**Workload:** %s\n\n", strings.ReplaceAll(shared, "|", `\|`))
		} else {
			p.printf("Workload: %s\n\n", shared)
		}
	}
	p.printf("%s", out.String())
	if repeated {
		p.printf("\nRepeated runs: figures are medians over the complete runs (runs whose verify found mismatches count as failed); ± is half their min–max range, relative to the median.\n")
	}
	if level < 3 {
		p.printf("\n%s = 10^%d bytes a second.\n", u.bw.name, map[string]int{"kB/s": 3, "MB/s": 6, "GB/s": 9}[u.bw.name])
	}
	return p.err
}

// unit is a column's unit: its name and how many base units (ns, B/s) make one.
type unit struct {
	name string
	size float64
}

var (
	latencyUnits = []unit{{"ns", 1}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}}
	bwUnits      = []unit{{"kB/s", 1e3}, {"MB/s", 1e6}, {"GB/s", 1e9}}
)

// pickUnit returns the smallest unit in which every value stays below 1000, so a column
// reads "34.0" (ms) rather than "34047" (µs).
func pickUnit(units []unit, values []float64) unit { return pickUnitBelow(units, values, 999.5) }

// pickUnitBelow returns the smallest unit in which every value stays below limit.
func pickUnitBelow(units []unit, values []float64, limit float64) unit {
	top := 0.0
	for _, v := range values {
		top = max(top, math.Abs(v))
	}
	for _, u := range units[:len(units)-1] {
		if top/u.size < limit {
			return u
		}
	}
	return units[len(units)-1]
}

// tableUnits are the units of each latency column (by metric name) and of MB/s.
type tableUnits struct {
	lat map[string]unit
	bw  unit
}

// columnUnits picks every figure column's unit from the values it shows.
func columnUnits(rows []row) tableUnits {
	values := func(m results.Metric) []float64 {
		var vs []float64
		for _, rw := range rows {
			if s, ok := rw.summary(m); ok {
				vs = append(vs, s.Median)
			}
		}
		return vs
	}
	u := tableUnits{lat: map[string]unit{}, bw: pickUnit(bwUnits, values(mBW))}
	for _, m := range append([]results.Metric{mMean, mMax}, shownPercentiles...) {
		u.lat[m.Name] = pickUnit(latencyUnits, values(m))
	}
	return u
}

// tableLayout builds the header, alignment and cells of one layout level (see tableLevels).
func tableLayout(rows []row, u tableUnits, level, maxText int, sharedWorkload bool) ([]string, []tw.Align, [][]string) {
	compact := level > 0
	type column struct {
		header string
		right  bool
		cell   func(rw row) string
	}
	var cols []column
	text := func(h string, f func(rw row) string) { cols = append(cols, column{h, false, f}) }
	num := func(h string, f func(rw row) string) { cols = append(cols, column{h, true, f}) }
	figure := func(m results.Metric, format func(float64) string, spread bool) func(rw row) string {
		return func(rw row) string {
			s, ok := rw.summary(m)
			if !ok {
				return "-"
			}
			out := format(s.Median)
			if spread && s.N > 1 {
				out += fmt.Sprintf(" ±%.0f%%", 100*s.HalfRange())
			}
			return out
		}
	}
	latCol := func(m results.Metric, label string) {
		lu := u.lat[m.Name]
		num(label+" ("+lu.name+")", figure(m, func(ns float64) string { return sig3(ns / lu.size) }, false))
	}
	bw := figure(mBW, func(v float64) string { return sig3(v / u.bw.size) }, true)

	if !compact {
		text("Target", func(rw row) string { return targetName(rw.c.Runs[0]) })
		text("Backend", func(rw row) string { return rw.c.Runs[0].Target.Backend })
		text("Security", func(rw row) string { return dash(securityLabel(rw.c.Runs[0])) })
		if !sharedWorkload {
			text("Workload", func(rw row) string { return workloadName(rw.c) })
		}
	} else {
		text("Target", func(rw row) string {
			first := rw.c.Runs[0]
			second := []string{first.Target.Backend}
			if sec := securityLabel(first); sec != "" {
				second = append(second, sec)
			}
			if !sharedWorkload {
				second = append(second, workloadName(rw.c))
			}
			return cutMiddle(targetName(first), maxText) + "\n" + cut(strings.Join(second, " "), maxText)
		})
	}
	text("Dir", func(rw row) string { return rw.dir })
	num("IOPS", figure(mIOPS, humanCount, true))
	if level < 3 {
		num(u.bw.name, bw)
		latCol(mMean, "Mean")
	}
	for i, p := range shownPercentiles {
		if level < 2 || i == 1 { // p50, p99, p99.9; only p99 from level 2
			latCol(p, p.Name)
		}
	}
	latCol(mMax, "Max")
	if !compact && anyReplication(rows) {
		num("Repl sent/GiB written", func(rw row) string {
			if v, ok := replicationPerGiB(rw.c, rw.dir); ok {
				return v
			}
			return "-"
		})
	}
	if !compact {
		num("Errors", func(rw row) string {
			if n, ok := rw.errors(); ok {
				return strconv.FormatInt(n, 10)
			}
			return "-"
		})
		num("Verify mismatches", func(rw row) string {
			if n, ok := verifyMismatches(rw.c); ok {
				return strconv.FormatInt(n, 10)
			}
			return "-"
		})
		text("Status", func(rw row) string { return statusCell(rw.c, 60) })
	} else {
		text("Status", func(rw row) string { return compactStatus(rw, max(13, maxText*2/3)) })
	}

	header := make([]string, len(cols))
	align := make([]tw.Align, len(cols))
	for i, c := range cols {
		header[i], align[i] = c.header, tw.AlignLeft
		if c.right {
			align[i] = tw.AlignRight
		}
	}
	cells := make([][]string, 0, len(rows))
	for _, rw := range rows {
		c := make([]string, len(cols))
		for i, col := range cols {
			c[i] = col.cell(rw)
		}
		cells = append(cells, c)
	}
	return header, align, cells
}

// maxLineWidth is the widest line of s in terminal columns (box-drawing characters and µ
// take one).
func maxLineWidth(s string) int {
	widest := 0
	for _, l := range strings.Split(s, "\n") {
		widest = max(widest, utf8.RuneCountInString(l))
	}
	return widest
}

// cutMiddle shortens s to n runes (0: no limit) by replacing its middle with "…": the two
// ends of a URL (host, file) tell targets apart.
func cutMiddle(s string, n int) string {
	r := []rune(s)
	if n <= 0 || len(r) <= n {
		return s
	}
	head := (n - 1) / 2
	return string(r[:head]) + "…" + string(r[len(r)-(n-1-head):])
}

// cut shortens s to n runes (0: no limit), ending it with "…".
func cut(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// writeTable renders a terminal (box-drawn) or Markdown table with per-column alignment.
func writeTable(w io.Writer, header []string, align []tw.Align, cells [][]string, markdown bool) error {
	opts := []tablewriter.Option{
		tablewriter.WithHeaderAutoFormat(tw.Off), // keep "MB/s" and "µs" as written
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
	}
	if markdown {
		opts = append(opts, tablewriter.WithRenderer(renderer.NewMarkdown()))
	}
	t := tablewriter.NewTable(w, opts...)
	t.Header(header)
	if err := t.Bulk(cells); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func columnConstant(cells [][]string, col int) bool {
	for _, c := range cells[1:] {
		if c[col] != cells[0][col] {
			return false
		}
	}
	return true
}

func dropColumn[T any](s []T, col int) []T {
	return append(append([]T(nil), s[:col]...), s[col+1:]...)
}

// statusCell says whether a case's runs are good runs: "ok", or loudly what failed with the
// start of the first failure's reason ("VERIFY FAILED: 2048 of 2048 blocks mismatched …",
// "INCOMPLETE 1 of 3: nfs: server went away"), cut to n runes. Verify failures come first:
// corrupt data matters more than a short run.
func statusCell(c *results.Case, n int) string {
	word, bad := statusWord(c)
	if bad == nil {
		return word
	}
	reason := strings.TrimPrefix(bad.Problem(), "verify: ")
	return word + ": " + cut(reason, n)
}

// statusWord is "ok" ("ok (3 runs)") or "VERIFY FAILED"/"INCOMPLETE" with the count of such
// runs among several, and the first run it describes.
func statusWord(c *results.Case) (string, *results.Run) {
	var verify, incomplete []*results.Run
	for _, r := range c.Runs {
		switch r.Outcome() {
		case results.StatusVerifyFailed:
			verify = append(verify, r)
		case results.StatusIncomplete:
			incomplete = append(incomplete, r)
		}
	}
	word, failed := "VERIFY FAILED", verify
	if len(verify) == 0 {
		word, failed = "INCOMPLETE", incomplete
	}
	if len(failed) == 0 {
		if len(c.Runs) > 1 {
			return fmt.Sprintf("ok (%d runs)", len(c.Runs)), nil
		}
		return "ok", nil
	}
	if len(c.Runs) > 1 {
		word += fmt.Sprintf(" %d of %d", len(failed), len(c.Runs))
	}
	return word, failed[0]
}

// compactStatus is the Status cell of the compact layouts: the status word, and on a
// second line the errors, mismatches and the first failure's reason, cut to n runes.
func compactStatus(rw row, n int) string {
	word, bad := statusWord(rw.c)
	var details []string
	if e, ok := rw.errors(); ok && e > 0 {
		details = append(details, fmt.Sprintf("%d errors", e))
	}
	if bad != nil {
		details = append(details, strings.TrimPrefix(bad.Problem(), "verify: "))
	}
	if len(details) == 0 {
		return word
	}
	return word + "\n" + cut(strings.Join(details, "; "), n)
}

// latencyUnit picks one unit for every latency column of an HTML table: ms once some
// row's mean reaches 10 ms (µs figures would get long), µs otherwise.
func latencyUnit(rows []row) (string, float64) {
	for _, rw := range rows {
		if s, ok := rw.summary(mMean); ok && s.Max >= 10e6 {
			return "ms", 1e6
		}
	}
	return "µs", 1e3
}

// humanCount renders a count with three significant digits and a k/M/G suffix: 12.3k.
func humanCount(v float64) string {
	suffix := ""
	for _, s := range []string{"k", "M", "G"} {
		if v < 999.5 {
			break
		}
		v /= 1000
		suffix = s
	}
	return sig3(v) + suffix
}

// sig3 renders v with three significant digits (no exponent): 1.23, 12.3, 123, 1234.
func sig3(v float64) string {
	switch {
	case v >= 99.95 || v <= -99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995 || v <= -9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// csvHeader names every column with its unit; numbers are raw, in bytes, nanoseconds, I/Os.
var csvHeader = []string{"run_id", "start", "target", "backend", "security", "workload", "repeat",
	"direction", "ios", "bytes", "iops", "bw_bytes_per_s", "lat_mean_ns", "lat_p50_ns", "lat_p99_ns",
	"lat_p99.9_ns", "lat_max_ns", "errors", "verify_mismatches", "complete", "error"}

// renderCSV writes one record per run and direction (repeats are not aggregated: CSV is for
// people who do their own statistics). With migration runs every record also has the
// migration columns (migrationCSVHeader, empty for a run on the host). The output is one
// table, header first, as a spreadsheet or csv reader expects of a file: the VEE '07
// layouts (text, Markdown, HTML) are not appended, since their cells are medians of these
// records' migration_time, disruption, wire bytes and joules columns by storage × link,
// which a pivot table rebuilds from the raw figures.
func renderCSV(w io.Writer, runs []*results.Run) error {
	cw := csv.NewWriter(w)
	migrations := slices.ContainsFunc(runs, func(r *results.Run) bool { return r.Migration != nil })
	header := csvHeader
	if migrations {
		header = append(slices.Clip(header), migrationCSVHeader()...)
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	f64 := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, rw := range runDirs(runs) {
		r := rw.run
		repeat := ""
		if r.Repeats > 1 {
			repeat = strconv.Itoa(r.Repeat)
		}
		rec := []string{r.ID, r.Start.UTC().Format("2006-01-02T15:04:05.000Z07:00"), targetName(r),
			r.Target.Backend, r.Target.Info["security"], r.Workload.Describe(), repeat, rw.dir}
		if s := r.DirStats(rw.dir); s != nil {
			rec = append(rec, i64(s.IOs), i64(s.Bytes), f64(s.IOPS), f64(s.BWBps))
			if s.Lat.N > 0 {
				rec = append(rec, f64(s.Lat.Mean))
				for _, p := range shownPercentiles {
					if v, ok := p.Of(s); ok {
						rec = append(rec, f64(v))
					} else {
						rec = append(rec, "")
					}
				}
				rec = append(rec, i64(s.Lat.Max))
			} else {
				rec = append(rec, "", "", "", "", "")
			}
			rec = append(rec, i64(s.Errors))
		} else {
			rec = append(rec, "", "", "", "", "", "", "", "", "", "")
		}
		verify := ""
		if r.Verify != nil {
			verify = i64(r.Verify.Mismatches)
		}
		rec = append(rec, verify, strconv.FormatBool(r.Complete), r.Error)
		if migrations {
			rec = append(rec, migrationCSV(r)...)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// runDir is one direction of one run ("-" when the run recorded none).
type runDir struct {
	run *results.Run
	dir string
}

func runDirs(runs []*results.Run) []runDir {
	var out []runDir
	for _, r := range runs {
		n := len(out)
		for _, d := range []string{"read", "write", "sync"} {
			if r.DirStats(d) != nil {
				out = append(out, runDir{r, d})
			}
		}
		if len(out) == n {
			out = append(out, runDir{r, "-"})
		}
	}
	return out
}

// securityLabel is the security level a run's backend reported, with the signing algorithm
// when it reported one ("signed (GMAC)"): signing with AES-CMAC and with AES-GMAC cost very
// differently, and the target's name does not always say which.
func securityLabel(r *results.Run) string {
	sec := r.Target.Info["security"]
	if alg := r.Target.Info["signing"]; sec != "" && alg != "" {
		return sec + " (" + strings.TrimPrefix(alg, "AES-128-") + ")"
	}
	return sec
}
