// Package report renders result documents for people: side-by-side tables in the terminal,
// Markdown and CSV.
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
	rows := rowsOf(runs)
	switch format {
	case "table", "md":
		return renderTable(w, rows, format == "md")
	case "csv":
		return renderCSV(w, rows)
	}
	return fmt.Errorf("report: unknown format %q (formats: %s)", format, strings.Join(Formats, ", "))
}

// row is one direction of one run; stats is nil for a run that recorded no direction (it
// failed before any I/O), which still gets a row so the failure shows.
type row struct {
	run   *results.Run
	dir   string
	stats *results.DirStats
}

func rowsOf(runs []*results.Run) []row {
	var rows []row
	for _, r := range runs {
		n := len(rows)
		if r.Read != nil {
			rows = append(rows, row{r, "read", r.Read})
		}
		if r.Write != nil {
			rows = append(rows, row{r, "write", r.Write})
		}
		if r.Sync != nil {
			// fsync=N: IOPS are syncs per second, latency is the sync's.
			rows = append(rows, row{r, "sync", r.Sync})
		}
		if len(rows) == n {
			rows = append(rows, row{run: r, dir: "-"})
		}
	}
	return rows
}

func targetName(r *results.Run) string {
	if _, labelled := r.Labels[results.TargetLabel]; labelled {
		return results.TargetName(r)
	}
	// URLs in results are stored redacted; redact again so a hand-edited file cannot leak.
	return backends.RedactString(r.Target.URL)
}

func workloadName(r *results.Run) string {
	s := r.Workload.Describe()
	if r.Repeats > 1 {
		s += fmt.Sprintf(" (repeat %d/%d)", r.Repeat+1, r.Repeats)
	}
	return s
}

// latency percentiles shown, in column order after the mean.
var shownPercentiles = []struct {
	name string
	p    float64
}{{"p50", 50}, {"p99", 99}, {"p99.9", 99.9}}

func percentile(l results.Latency, p float64) (int64, bool) {
	v, ok := l.Percentiles[results.PercentileKey(p)]
	return v, ok
}

func renderTable(w io.Writer, rows []row, markdown bool) error {
	unit, unitNS := latencyUnit(rows)
	header := []string{"Target", "Backend", "Security", "Workload", "Dir", "IOPS", "MB/s (MB=10^6 B)",
		"Mean (" + unit + ")"}
	for _, p := range shownPercentiles {
		header = append(header, p.name+" ("+unit+")")
	}
	header = append(header, "Max ("+unit+")", "Errors", "Verify mismatches", "Complete")
	align := make([]tw.Align, len(header))
	for i := range align {
		align[i] = tw.AlignRight // numbers
	}
	for _, i := range []int{0, 1, 2, 3, 4, len(header) - 1} {
		align[i] = tw.AlignLeft
	}

	// lat renders a latency in the table's unit, or "-" when there is none.
	lat := func(ns float64, ok bool) string {
		if !ok {
			return "-"
		}
		return sig3(ns / unitNS)
	}
	cells := make([][]string, 0, len(rows))
	for _, rw := range rows {
		r := rw.run
		c := []string{targetName(r), r.Target.Backend, dash(r.Target.Info["security"]), workloadName(r), rw.dir}
		if s := rw.stats; s != nil {
			has := s.Lat.N > 0
			c = append(c, humanCount(s.IOPS), sig3(s.BWBps/1e6), lat(s.Lat.Mean, has))
			for _, p := range shownPercentiles {
				v, ok := percentile(s.Lat, p.p)
				c = append(c, lat(float64(v), has && ok))
			}
			c = append(c, lat(float64(s.Lat.Max), has), strconv.FormatInt(s.Errors, 10))
		} else {
			c = append(c, "-", "-", "-", "-", "-", "-", "-", "-")
		}
		verify := "-"
		if r.Verify != nil {
			verify = strconv.FormatInt(r.Verify.Mismatches, 10)
		}
		c = append(c, verify, completeCell(r))
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

// completeCell marks an incomplete run loudly, with the start of its error.
func completeCell(r *results.Run) string {
	if r.Complete {
		return "yes"
	}
	s := "INCOMPLETE"
	if e := strings.Join(strings.Fields(r.Error), " "); e != "" {
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
		if rw.stats != nil && rw.stats.Lat.Mean >= 10e6 {
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

func renderCSV(w io.Writer, rows []row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	f64 := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, rw := range rows {
		r := rw.run
		repeat := ""
		if r.Repeats > 1 {
			repeat = strconv.Itoa(r.Repeat)
		}
		rec := []string{r.ID, r.Start.UTC().Format("2006-01-02T15:04:05.000Z07:00"), targetName(r),
			r.Target.Backend, r.Target.Info["security"], r.Workload.Describe(), repeat, rw.dir}
		if s := rw.stats; s != nil {
			rec = append(rec, i64(s.IOs), i64(s.Bytes), f64(s.IOPS), f64(s.BWBps))
			if s.Lat.N > 0 {
				rec = append(rec, f64(s.Lat.Mean))
				for _, p := range shownPercentiles {
					v, ok := percentile(s.Lat, p.p)
					if ok {
						rec = append(rec, i64(v))
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
