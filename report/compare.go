package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"

	"github.com/vmstorbench/vmstorbench/results"
)

// ComparisonFormats are the formats RenderComparison accepts.
var ComparisonFormats = []string{"table", "md"}

// RenderComparison writes a comparison in format "table" (terminal) or "md" (Markdown): the
// verdict first, then one row per case, direction and metric with both medians, the change,
// whether it is within noise and the threshold checks, then the failures, the excluded
// incomplete runs and how noise was judged.
func RenderComparison(w io.Writer, c *results.Comparison, format string) error {
	if format != "table" && format != "md" {
		return fmt.Errorf("report: unknown comparison format %q (formats: %s)", format, strings.Join(ComparisonFormats, ", "))
	}
	md := format == "md"
	p := &printer{w: w}
	bold := func(s string) string {
		if md {
			return "**" + s + "**"
		}
		return s
	}
	// Lines of the heading stay lines in Markdown only as paragraphs of their own.
	bullet, eol := "  ", "\n"
	if md {
		bullet, eol = "- ", "\n\n"
	}

	p.printf("%s %s%s", bold("Result:"), resultLine(c), eol)
	p.printf("Base: %d runs, candidate: %d runs, %s. Figures are medians of the complete runs; change is the candidate's median against the base's.\n\n",
		c.BaseRuns, c.CandRuns, plural(len(c.Cases), "case"))

	header := []string{"Target", "Workload", "Dir", "Metric", "Base", "Candidate", "Change", "Verdict", "Check"}
	var cells [][]string
	for _, cc := range c.Cases {
		for _, ch := range cc.Changes {
			cells = append(cells, []string{cc.Target(), cc.Workload(), ch.Dir, ch.Metric.Name,
				side(ch.Metric, ch.Base, ch.HasBase), side(ch.Metric, ch.Cand, ch.HasCand),
				results.FormatPercent(ch.Percent), ch.Verdict(), checkCell(ch)})
		}
	}
	if md {
		for _, row := range cells {
			for i := range row {
				row[i] = strings.ReplaceAll(row[i], "|", `\|`)
			}
		}
	}
	// A column that is the same on every row (one target, one workload) is said once above.
	constant := []bool{false, false}
	for col := range constant {
		if len(cells) > 0 && columnConstant(cells, col) {
			constant[col] = true
			p.printf("%s %s%s", bold(header[col]+":"), cells[0][col], eol)
		}
	}
	for col := len(constant) - 1; col >= 0; col-- {
		if constant[col] {
			header = dropColumn(header, col)
			for i := range cells {
				cells[i] = dropColumn(cells[i], col)
			}
		}
	}
	if p.err != nil {
		return p.err
	}
	if len(cells) > 0 {
		if !md && (constant[0] || constant[1]) {
			p.printf("\n")
		}
		align := make([]tw.Align, len(header))
		for i, h := range header {
			align[i] = tw.AlignLeft
			switch h {
			case "Base", "Candidate", "Change":
				align[i] = tw.AlignRight
			}
		}
		if err := writeTable(w, header, align, cells, md); err != nil {
			return err
		}
	}

	if f := c.Failures(); len(f) > 0 {
		p.printf("\n%s\n", bold("Failed checks:"))
		for _, x := range f {
			p.printf("%s%s: %s\n", bullet, x.Case.Name(), x.Check.Reason)
		}
	}
	if len(c.Excluded) > 0 {
		heading := "Incomplete runs, excluded from the figures:"
		for _, e := range c.Excluded {
			if e.Status == results.StatusVerifyFailed {
				heading = "Failed runs (incomplete, or verify found mismatches), excluded from the figures:"
			}
		}
		p.printf("\n%s\n", bold(heading))
		for _, e := range c.Excluded {
			msg := strings.Join(strings.Fields(e.Error), " ")
			if msg == "" {
				msg = "no error recorded"
			}
			p.printf("%s%s run %s (%s): %s\n", bullet, e.Side, e.ID, e.Case, msg)
		}
	}
	if len(c.Unused) > 0 {
		var ts []string
		for _, t := range c.Unused {
			ts = append(ts, t.String())
		}
		p.printf("\n%s %s matched no metric of any case and checked nothing.\n", bold("Unused thresholds:"), strings.Join(ts, ", "))
	}
	p.printf("\nNoise: with 2–3 complete runs a side, a change is significant when the min–max ranges of the runs do not overlap; "+
		"with 4 or more, when the Mann–Whitney U test gives p < %s. A threshold fails only when the change crosses it and is not within noise; "+
		"with a single run on a side there is no noise estimate and the threshold alone decides.\n",
		strconv.FormatFloat(c.Alpha, 'g', -1, 64))
	return p.err
}

// resultLine is the verdict in one line.
func resultLine(c *results.Comparison) string {
	n := c.CheckCount()
	switch {
	case c.Regressed() && len(c.Thresholds) == 0:
		return fmt.Sprintf("FAILED: %s failed verify", plural(len(c.Failures()), "candidate run"))
	case len(c.Thresholds) == 0:
		return "no thresholds given (--fail-on): changes reported, nothing checked"
	case c.Regressed():
		return fmt.Sprintf("REGRESSION: %d of %s failed", len(c.Failures()), plural(n, "check"))
	case n == 0:
		return "no threshold matched any metric: nothing checked"
	}
	return fmt.Sprintf("no regression: %s passed", plural(n, "check"))
}

// side renders one side's median with its spread and run count: "12.3k ±2% (n=3)".
func side(m results.Metric, s results.Summary, ok bool) string {
	if !ok {
		return "-"
	}
	out := metricValue(m, s.Median)
	if s.N > 1 {
		out += fmt.Sprintf(" ±%.0f%% (n=%d)", 100*s.HalfRange(), s.N)
	}
	return out
}

// metricValue renders a value in the metric's base unit (I/O/s, B/s, ns, bytes,
// CPU-seconds, joules) with its unit;
// latencies pick ns, µs, ms or s to stay short, since one column holds every metric.
func metricValue(m results.Metric, v float64) string {
	switch m.Unit {
	case "IOPS":
		return humanCount(v) + " IOPS"
	case "MB/s":
		return sig3(v/1e6) + " MB/s"
	case "MB": // bytes
		u := pickUnit(byteUnits, []float64{v})
		return sig3(v/u.size) + " " + u.name
	case "s", "J": // CPU-seconds, joules
		return sig3(v) + " " + m.Unit
	}
	return humanNS(v)
}

func humanNS(ns float64) string {
	switch {
	case ns >= 999.5e6:
		return sig3(ns/1e9) + " s"
	case ns >= 999.5e3:
		return sig3(ns/1e6) + " ms"
	case ns >= 999.5:
		return sig3(ns/1e3) + " µs"
	}
	return strconv.FormatFloat(ns, 'f', 0, 64) + " ns"
}

// checkCell sums up a change's threshold checks: "-" without any, "FAIL iops<-10%", "ok".
func checkCell(ch *results.Change) string {
	if len(ch.Checks) == 0 {
		return "-"
	}
	var failed, forgiven []string
	for _, k := range ch.Checks {
		switch {
		case k.Failed:
			failed = append(failed, k.Threshold.String())
		case k.Reason != "": // crossed, but within noise
			forgiven = append(forgiven, k.Threshold.String())
		}
	}
	switch {
	case len(failed) > 0:
		return "FAIL " + strings.Join(failed, ", ")
	case len(forgiven) > 0:
		return "ok (crosses " + strings.Join(forgiven, ", ") + " within noise)"
	}
	return "ok"
}

// printer keeps the first write error so that a sequence of prints is checked once.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		if _, err := fmt.Fprintf(p.w, format, args...); err != nil {
			p.err = fmt.Errorf("report: %w", err)
		}
	}
}

// plural counts: "1 case", "3 cases".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
