// Package report renders result documents for people: side-by-side tables in the terminal,
// Markdown and CSV, comparisons, and the self-contained HTML report (charts: report/chart).
package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
)

// Formats are the formats Render accepts.
var Formats = []string{"table", "md", "csv"}

// Render writes runs side by side, one row per run and direction, in format "table"
// (terminal), "md" (Markdown) or "csv" (raw numbers in base units, with a header row).
func Render(w io.Writer, runs []*results.Run, format string) error {
	switch format {
	case "table", "md":
		return renderTable(w, rowsOf(runs), format == "md")
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
func (rw row) counted() []*results.Run {
	if ok := rw.c.Complete(); len(ok) > 0 {
		return ok
	}
	return rw.c.Runs
}

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

func renderTable(w io.Writer, rows []row, markdown bool) error {
	unit, unitNS := latencyUnit(rows)
	repeated := false
	for _, rw := range rows {
		repeated = repeated || len(rw.c.Runs) > 1
	}
	header := []string{"Target", "Backend", "Security", "Workload", "Dir", "IOPS", "MB/s (MB=10^6 B)",
		"Mean (" + unit + ")"}
	for _, p := range shownPercentiles {
		header = append(header, p.Name+" ("+unit+")")
	}
	header = append(header, "Max ("+unit+")", "Errors", "Verify mismatches", "Complete")
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight // numbers
	}
	for _, i := range []int{0, 1, 2, 3, 4, len(header) - 1} {
		align[i] = tw.AlignLeft
	}

	// figure renders the median of m over the row's runs with format, "±n%" after it when
	// spread is set and there are repeats, or "-" when no run has it.
	figure := func(rw row, m results.Metric, format func(float64) string, spread bool) string {
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
	lat := func(ns float64) string { return sig3(ns / unitNS) }
	cells := make([][]string, 0, len(rows))
	for _, rw := range rows {
		first := rw.c.Runs[0]
		c := []string{targetName(first), first.Target.Backend, dash(first.Target.Info["security"]), workloadName(rw.c), rw.dir}
		c = append(c, figure(rw, mIOPS, humanCount, true), figure(rw, mBW, func(v float64) string { return sig3(v / 1e6) }, true),
			figure(rw, mMean, lat, false))
		for _, p := range shownPercentiles {
			c = append(c, figure(rw, p, lat, false))
		}
		c = append(c, figure(rw, mMax, lat, false))
		if n, ok := rw.errors(); ok {
			c = append(c, strconv.FormatInt(n, 10))
		} else {
			c = append(c, "-")
		}
		verify := "-"
		if n, ok := verifyMismatches(rw.c); ok {
			verify = strconv.FormatInt(n, 10)
		}
		c = append(c, verify, completeCell(rw.c))
		if markdown {
			for i := range c {
				c[i] = strings.ReplaceAll(c[i], "|", `\|`)
			}
		}
		cells = append(cells, c)
	}

	// One workload for every row (the common case: one workload, several targets) is said
	// once above the table instead of in a wide column repeated on every row.
	const workloadCol = 3
	if len(cells) > 0 && columnConstant(cells, workloadCol) {
		prefix := "Workload: "
		if markdown {
			prefix = "**Workload:** "
		}
		if _, err := fmt.Fprintf(w, "%s%s\n\n", prefix, cells[0][workloadCol]); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		header = dropColumn(header, workloadCol)
		align = dropColumn(align, workloadCol)
		for i := range cells {
			cells[i] = dropColumn(cells[i], workloadCol)
		}
	}

	if err := writeTable(w, header, align, cells, markdown); err != nil {
		return err
	}
	if repeated {
		if _, err := fmt.Fprintln(w, "\nRepeated runs: figures are medians over the complete runs; ± is half their min–max range, relative to the median."); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
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

// completeCell marks a case with an incomplete run loudly, with the start of its error.
func completeCell(c *results.Case) string {
	var failed []*results.Run
	for _, r := range c.Runs {
		if !r.Complete {
			failed = append(failed, r)
		}
	}
	if len(failed) == 0 {
		if len(c.Runs) > 1 {
			return fmt.Sprintf("yes (%d runs)", len(c.Runs))
		}
		return "yes"
	}
	s := "INCOMPLETE"
	if len(c.Runs) > 1 {
		s += fmt.Sprintf(" %d of %d", len(failed), len(c.Runs))
	}
	if e := strings.Join(strings.Fields(failed[0].Error), " "); e != "" {
		if len([]rune(e)) > 60 {
			e = string([]rune(e)[:59]) + "…"
		}
		s += ": " + e
	}
	return s
}

// latencyUnit picks one unit for every latency column: ms once some row's mean reaches
// 10 ms (µs figures would get long), µs otherwise.
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
// people who do their own statistics).
func renderCSV(w io.Writer, runs []*results.Run) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
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
