package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/report/chart"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// HTMLOptions shape an HTML report.
type HTMLOptions struct {
	// Title heads the page (default "vmstorbench report").
	Title string
	// Generated is when the report was made (default now).
	Generated time.Time
	// Extra sections are appended after the migration sections, e.g. a suite's comparison
	// summary. Their HTML is inserted as it is: the caller builds it safely.
	Extra []HTMLSection
}

// HTMLSection is a section a caller adds to the report.
type HTMLSection struct {
	Title string
	HTML  template.HTML
}

//go:embed html.tmpl
var htmlTemplateText string

// htmlTemplate is parsed once; a template that does not parse is a programming error that
// every test catches.
var htmlTemplate = template.Must(template.New("report").Parse(htmlTemplateText))

// WriteHTML writes runs as one self-contained HTML page: summary tables per direction,
// incomplete runs with their errors, charts as inline SVG, one section per migration run,
// the workloads as fio job sections, the commands, host facts and the runs. It needs no
// network, script, font or stylesheet from elsewhere, and prints no credential: URLs and
// command lines from the documents are redacted again.
func WriteHTML(w io.Writer, runs []*results.Run, opt HTMLOptions) error {
	return writeHTML(w, runs, opt, chart.All)
}

// chartSource makes the charts of a run set (chart.All; tests give a failing one).
type chartSource func([]*results.Run) ([]*chart.Chart, error)

func writeHTML(w io.Writer, runs []*results.Run, opt HTMLOptions, charts chartSource) error {
	if len(runs) == 0 {
		return errors.New("report: html: no runs")
	}
	if i := slices.Index(runs, nil); i >= 0 {
		return fmt.Errorf("report: html: run %d is nil", i)
	}
	page := buildPage(runs, opt, charts)
	var buf bytes.Buffer
	if err := htmlTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("report: html: %w", err)
	}
	return nil
}

// htmlPage is everything the template shows, already formatted.
type htmlPage struct {
	Title     string
	Generated string
	Tools     []string
	Runs      int
	Cases     int
	Period    string
	// Incomplete are the runs that are not good runs: incomplete, or verify failed.
	Incomplete        []htmlIncomplete
	IncompleteHeading string
	Tables            []htmlTable
	// MigrationTables are the "Migrations" table and the VEE '07 layouts (migration.go).
	MigrationTables []*grid
	Repeated        bool
	Charts          []htmlFigure
	ChartsNote      string
	Migrations      []htmlMigration
	Extra           []htmlExtra
	Workloads       []htmlWorkload
	Commands        []htmlCommand
	Hosts           []htmlHost
	RunList         []htmlRun
}

type htmlExtra struct {
	ID    string
	Title string
	HTML  template.HTML
}

func buildPage(runs []*results.Run, opt HTMLOptions, charts chartSource) *htmlPage {
	if opt.Title == "" {
		opt.Title = "vmstorbench report"
	}
	if opt.Generated.IsZero() {
		opt.Generated = time.Now()
	}
	cases := results.Group(runs)
	wls := distinctWorkloads(cases)
	p := &htmlPage{
		Title:     opt.Title,
		Generated: opt.Generated.UTC().Format("2006-01-02 15:04:05 UTC"),
		Tools:     toolVersions(runs),
		Runs:      len(runs),
		Cases:     len(cases),
		Period:    period(runs),
		Workloads: wls.defs,
		Commands:  commands(runs),
		Hosts:     hosts(runs),
	}
	verifyFailed := 0
	for _, r := range runs {
		switch r.Outcome() {
		case results.StatusVerifyFailed:
			verifyFailed++
			p.Incomplete = append(p.Incomplete, htmlIncomplete{ID: r.ID, Target: redactedTargetName(r),
				Workload: r.Workload.Describe(), Scenario: results.Scenario(r), Kind: "VERIFY FAILED", Error: redactText(r.Problem())})
		case results.StatusIncomplete:
			p.Incomplete = append(p.Incomplete, htmlIncomplete{ID: r.ID, Target: redactedTargetName(r),
				Workload: r.Workload.Describe(), Scenario: results.Scenario(r), Error: incompleteError(r)})
		}
		p.RunList = append(p.RunList, runRow(r, wls))
	}
	switch n := len(p.Incomplete); {
	case verifyFailed == 0 && n == 1:
		p.IncompleteHeading = "1 incomplete run"
	case verifyFailed == 0:
		p.IncompleteHeading = fmt.Sprintf("%d incomplete runs", n)
	case verifyFailed == n:
		p.IncompleteHeading = fmt.Sprintf("%d run%s failed verify: data did not read back as written", n, map[bool]string{true: "", false: "s"}[n == 1])
	default:
		p.IncompleteHeading = fmt.Sprintf("%d failed runs: %d verify failed, %d incomplete", n, verifyFailed, n-verifyFailed)
	}
	for _, c := range cases {
		p.Repeated = p.Repeated || len(c.Runs) > 1
	}
	p.Tables = dirTables(cases, wls)
	if g, _ := migrationGrid(cases, redactedTargetName); g != nil {
		g.ID = "migrations-summary" // "migrations" is the per-run section
		p.MigrationTables = append([]*grid{g}, veeGrids(cases, redactedTargetName)...)
	}
	p.Charts, p.ChartsNote = figures(runs, charts)
	for _, r := range runs {
		if r.Migration != nil {
			p.Migrations = append(p.Migrations, migrationView(r, len(p.Migrations)+1))
		}
	}
	for i, e := range opt.Extra {
		p.Extra = append(p.Extra, htmlExtra{ID: fmt.Sprintf("extra-%d", i+1), Title: e.Title, HTML: e.HTML})
	}
	return p
}

func incompleteError(r *results.Run) string {
	if e := strings.TrimSpace(r.Error); e != "" {
		return redactText(e)
	}
	return "(no error recorded)"
}

func toolVersions(runs []*results.Run) []string {
	var out []string
	for _, r := range runs {
		name := r.Tool.Name
		if name == "" {
			name = "vmstorbench"
		}
		v := strings.TrimSpace(name + " " + r.Tool.Version)
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func period(runs []*results.Run) string {
	var first, last time.Time
	for _, r := range runs {
		if !r.Start.IsZero() && (first.IsZero() || r.Start.Before(first)) {
			first = r.Start
		}
		end := r.End
		if end.IsZero() {
			end = r.Start
		}
		if end.After(last) {
			last = end
		}
	}
	if first.IsZero() {
		return "unknown"
	}
	const layout = "2006-01-02 15:04:05 UTC"
	return first.UTC().Format(layout) + " – " + last.UTC().Format(layout)
}

// redactedTargetName is results.TargetName with credentials removed: a label is free text
// and may hold a URL too.
func redactedTargetName(r *results.Run) string {
	if _, labelled := r.Labels[results.TargetLabel]; labelled {
		return redactText(results.TargetName(r))
	}
	return redactURL(r.Target.URL)
}

// ---- summary tables

// htmlTable is the summary of one direction: one row per case that recorded it.
type htmlTable struct {
	Dir     string
	Heading string
	LatUnit string
	ShowBW  bool
	Rate    string // "IOPS", or "Syncs/s" for syncs
	// ShowSecurity and ShowScenario are false when every row has none to show.
	ShowSecurity, ShowScenario bool
	// ShowRepl is true when a row is on a replicated device (DRBD).
	ShowRepl bool
	Rows     []htmlRow
}

type htmlRow struct {
	Target, Backend, Security string
	Workload, WorkloadID      string
	WorkloadDesc              string
	Scenario                  string
	Runs, RunsTitle           string
	Incomplete                bool
	IOPS, BW                  htmlCell
	Mean, P50, P99, P999, Max htmlCell
	Errors                    string
	ErrorsBad                 bool
	Repl                      string
	Verify                    string
	VerifyBad                 bool
}

// htmlCell is a median with its spread; Title says the range and the run count.
type htmlCell struct {
	Text  string
	Title string
}

var dirHeadings = map[string]string{"read": "Reads", "write": "Writes", "sync": "Syncs (fsync)"}

func dirTables(cases []*results.Case, wls workloadIndex) []htmlTable {
	var tables []htmlTable
	for _, dir := range []string{"read", "write", "sync"} {
		var rows []row
		for _, c := range cases {
			if slices.Contains(c.Dirs(), dir) {
				rows = append(rows, row{c, dir})
			}
		}
		if len(rows) == 0 {
			continue
		}
		unit, unitNS := latencyUnit(rows)
		t := htmlTable{Dir: dir, Heading: dirHeadings[dir], LatUnit: unit, ShowBW: dir != "sync", Rate: "IOPS"}
		if dir == "sync" {
			t.Rate = "Syncs/s"
		}
		lat := func(ns float64) string { return sig3(ns / unitNS) }
		mb := func(v float64) string { return sig3(v / 1e6) }
		for _, rw := range rows {
			first := rw.c.Runs[0]
			complete := len(rw.c.Complete())
			hr := htmlRow{
				Target:       redactedTargetName(first),
				Backend:      dash(first.Target.Backend),
				Security:     dash(securityLabel(first)),
				Workload:     rw.c.WorkloadName(),
				WorkloadID:   wls.id(first),
				WorkloadDesc: rw.c.Workload(),
				Scenario:     rw.c.Scenario(),
				Incomplete:   complete < len(rw.c.Runs),
				IOPS:         spreadCell(rw, mIOPS, humanCount),
				BW:           spreadCell(rw, mBW, mb),
				Mean:         spreadCell(rw, mMean, lat),
				Max:          spreadCell(rw, mMax, lat),
			}
			hr.P50 = spreadCell(rw, shownPercentiles[0], lat)
			hr.P99 = spreadCell(rw, shownPercentiles[1], lat)
			hr.P999 = spreadCell(rw, shownPercentiles[2], lat)
			switch {
			case len(rw.c.Runs) == 1 && complete == 1:
				hr.Runs = "1"
			case complete == len(rw.c.Runs):
				hr.Runs = strconv.Itoa(complete)
			case complete == 0:
				hr.Runs = fmt.Sprintf("0 of %d", len(rw.c.Runs))
				hr.RunsTitle = "no good run (incomplete or verify failed): figures from the failed runs"
			default:
				hr.Runs = fmt.Sprintf("%d of %d", complete, len(rw.c.Runs))
				hr.RunsTitle = fmt.Sprintf("%d of %d runs failed (incomplete or verify failed): figures from the good ones", len(rw.c.Runs)-complete, len(rw.c.Runs))
			}
			hr.Errors = "-"
			if n, ok := rw.errors(); ok {
				hr.Errors, hr.ErrorsBad = strconv.FormatInt(n, 10), n > 0
			}
			hr.Verify = "-"
			if n, ok := verifyMismatches(rw.c); ok {
				hr.Verify, hr.VerifyBad = strconv.FormatInt(n, 10), n > 0
			}
			hr.Repl = "-"
			if v, ok := replicationPerGiB(rw.c, rw.dir); ok {
				hr.Repl, t.ShowRepl = v, true
			}
			t.ShowSecurity = t.ShowSecurity || hr.Security != "-"
			t.ShowScenario = t.ShowScenario || hr.Scenario != "host"
			t.Rows = append(t.Rows, hr)
		}
		tables = append(tables, t)
	}
	return tables
}

// spreadCell is the median of m over the row's counted runs, "±n%" (half the range) when
// there are repeats, with the range and run count in the title.
func spreadCell(rw row, m results.Metric, format func(float64) string) htmlCell {
	s, ok := rw.summary(m)
	if !ok {
		return htmlCell{Text: "-"}
	}
	c := htmlCell{Text: format(s.Median)}
	if s.N > 1 {
		c.Text += fmt.Sprintf(" ±%.0f%%", 100*s.HalfRange())
		c.Title = fmt.Sprintf("median of %d runs; min %s, max %s", s.N, format(s.Min), format(s.Max))
	}
	return c
}

// ---- charts

// htmlFigure is one chart: inline SVG, or a note when it could not be drawn.
type htmlFigure struct {
	ID    string
	N     int
	Title string
	SVG   template.HTML
	Note  string
}

// figures draws every chart of the runs as inline SVG. A failure never fails the report:
// it becomes a visible note where the charts (or the one chart) would be.
func figures(runs []*results.Run, source chartSource) ([]htmlFigure, string) {
	charts, err := safeCharts(source, runs)
	note := ""
	switch {
	case errors.Is(err, chart.ErrNoData):
		note = "No charts: " + oneLine(redactText(err.Error()))
	case err != nil:
		note = "Charts could not be drawn: " + oneLine(redactText(err.Error()))
	}
	var out []htmlFigure
	used := map[string]bool{}
	for _, c := range charts {
		if c == nil {
			continue
		}
		f := htmlFigure{N: len(out) + 1, Title: c.Title, ID: uniqueID("fig-"+c.Name, used)}
		if f.Title == "" {
			f.Title = c.Name
		}
		if svg, err := renderSVG(c); err != nil {
			f.Note = "This chart could not be drawn: " + oneLine(redactText(err.Error()))
		} else {
			f.SVG = template.HTML(inlineSVG(svg, f.ID+"-caption"))
		}
		out = append(out, f)
	}
	if len(out) == 0 && note == "" {
		note = "No charts: the runs have nothing to plot."
	}
	return out, note
}

// safeCharts calls source, turning a panic in the plotting library (gonum panics on some
// font and data problems) into an error: a chart must never take the whole report down.
func safeCharts(source chartSource, runs []*results.Run) (charts []*chart.Chart, err error) {
	defer func() {
		if p := recover(); p != nil {
			charts, err = nil, fmt.Errorf("chart: %v", p)
		}
	}()
	return source(runs)
}

// renderSVG draws one chart as an SVG document, a panic becoming an error as above.
func renderSVG(c *chart.Chart) (svg string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("chart %s: %v", c.Name, p)
		}
	}()
	var buf bytes.Buffer
	if err := c.Render(&buf, "svg"); err != nil {
		return "", err
	}
	return buf.String(), nil
}

var (
	svgPrologue = regexp.MustCompile(`(?s)^.*?(<svg[\s>])`)
	svgXMLNS    = regexp.MustCompile(`\s+xmlns(:xlink)?="[^"]*"`)
)

// inlineSVG turns a standalone SVG document into an element for an HTML page: without the
// XML declaration and comments before <svg>, without the namespace declarations (HTML
// parsers put <svg> into the SVG namespace themselves, and the page then names no URL at
// all), labelled by its caption.
func inlineSVG(doc, captionID string) string {
	doc = svgPrologue.ReplaceAllString(doc, "$1")
	end := strings.IndexByte(doc, '>')
	if end < 0 {
		return doc
	}
	open := svgXMLNS.ReplaceAllString(doc[:end], "")
	open += fmt.Sprintf(` role="img" aria-labelledby="%s"`, captionID)
	return open + strings.TrimRight(doc[end:], "\n")
}

var nonIDChar = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// uniqueID makes an HTML id from s, distinct from the ones in used.
func uniqueID(s string, used map[string]bool) string {
	id := strings.Trim(nonIDChar.ReplaceAllString(s, "-"), "-")
	if id == "" {
		id = "fig"
	}
	base := id
	for n := 2; used[id]; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	used[id] = true
	return id
}

// ---- incomplete runs, run list

type htmlIncomplete struct {
	ID, Target, Workload, Scenario, Error string
	Kind                                  string // "VERIFY FAILED", or "" for an incomplete run
}

type htmlRun struct {
	ID, Start, Target, Workload, WorkloadID, Scenario, Repeat, Tool, Host string
	// Complete is Run.OK; Status says what else it is ("NO", "VERIFY FAILED").
	Complete bool
	Status   string
	Runtime  string
}

func runRow(r *results.Run, wls workloadIndex) htmlRun {
	repeat := ""
	if r.Repeats > 1 {
		repeat = fmt.Sprintf("%d of %d", r.Repeat+1, r.Repeats)
	}
	h := htmlRun{
		ID: r.ID, Start: r.Start.UTC().Format("2006-01-02 15:04:05"), Target: redactedTargetName(r),
		Workload: workloadLabel(r.Workload), WorkloadID: wls.id(r), Scenario: results.Scenario(r), Repeat: repeat,
		Tool: strings.TrimSpace(r.Tool.Version), Host: r.Host.Hostname, Complete: r.OK(), Status: "NO",
		Runtime: durationText(time.Duration(r.RuntimeNS)),
	}
	if r.Outcome() == results.StatusVerifyFailed {
		h.Status = "VERIFY FAILED"
	}
	if r.StoppedAtNS > 0 {
		h.Runtime += " (stopped)"
	}
	return h
}

func workloadLabel(w workloads.Workload) string {
	if w.Name != "" {
		return w.Name
	}
	return w.Describe()
}

// ---- hosts

type htmlHost struct {
	results.Host
	Memory string
	Runs   int
}

func hosts(runs []*results.Run) []htmlHost {
	var out []htmlHost
	for _, r := range runs {
		i := slices.IndexFunc(out, func(h htmlHost) bool { return h.Host == r.Host })
		if i < 0 {
			h := htmlHost{Host: r.Host, Memory: "-"}
			if r.Host.MemoryB > 0 {
				h.Memory = fmt.Sprintf("%.1f GiB", float64(r.Host.MemoryB)/(1<<30))
			}
			out = append(out, h)
			i = len(out) - 1
		}
		out[i].Runs++
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Runs > out[j].Runs })
	return out
}

func msText(ms float64) string { return durationText(time.Duration(ms * float64(time.Millisecond))) }

// durationText renders d with three significant digits in ns, µs, ms or s.
func durationText(d time.Duration) string { return humanNS(float64(d)) }

// sizeText renders bytes in binary units with three significant digits.
func sizeText(n int64) string {
	v := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if v < 1023.5 || u == "TiB" {
			if u == "B" {
				return strconv.FormatInt(n, 10) + " B"
			}
			return sig3(v) + " " + u
		}
		v /= 1024
	}
	return strconv.FormatInt(n, 10) + " B"
}
