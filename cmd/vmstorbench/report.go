package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/report/chart"
	"github.com/vmstorbench/vmstorbench/results"
)

type reportOptions struct {
	format       string
	html         string
	title        string
	charts       string
	chartFormats []string
	quiet        bool
	skip         bool
}

func newReportCmd() *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report RESULTS...",
		Short: "Render saved result documents (files, directories or globs) side by side",
		Long: `Render saved result documents (files, directories or globs) side by side as a table
(--format table|md|csv) on stdout. --html FILE also writes one self-contained HTML page
(tables, charts, migrations, workloads, commands, hosts; it loads nothing from anywhere) and
--charts DIR writes each chart as a file (--chart-format svg,png,pdf). --quiet leaves the
table out.`,
		Example: `  vmstorbench report vmstorbench-results/
  vmstorbench report vmstorbench-results/ --html report.html --charts charts/ --quiet`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd, args, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "table", "table|md|csv")
	f.StringVar(&o.html, "html", "", "also write a self-contained HTML report to `FILE`")
	f.StringVar(&o.title, "title", "", "the HTML report's title (default \"vmstorbench report\")")
	f.StringVar(&o.charts, "charts", "", "also write the charts as files into `DIR`")
	f.StringSliceVar(&o.chartFormats, "chart-format", []string{"svg", "png"}, "chart file formats for --charts: svg, png, pdf")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "do not print the table (with --html or --charts)")
	f.BoolVar(&o.skip, "skip-unreadable", false, "leave out, with a warning, result files that cannot be read (default: refuse the whole set)")
	return cmd
}

func runReport(cmd *cobra.Command, args []string, o reportOptions) error {
	// Check every option before reading anything, so a typo costs nothing.
	if !slices.Contains(report.Formats, o.format) {
		return fmt.Errorf("report: --format %q: want one of %s", o.format, strings.Join(report.Formats, ", "))
	}
	formats, err := checkChartFormats(o.chartFormats)
	if err != nil {
		return err
	}
	if cmd.Flags().Changed("chart-format") && o.charts == "" {
		return errors.New("report: --chart-format needs --charts DIR")
	}
	if o.quiet && o.html == "" && o.charts == "" {
		return errors.New("report: --quiet with neither --html nor --charts would write nothing")
	}
	if len(args) == 0 {
		return errors.New("report: name result files or directories (e.g. vmstorbench-results/)")
	}
	runs, err := loadResults(cmd.ErrOrStderr(), o.skip, args...)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return errors.New("report: no result documents found")
	}

	// The files first: a path that cannot be written fails before the table is printed.
	if o.html != "" {
		if err := writeHTMLFile(o.html, runs, o.title); err != nil {
			return err
		}
		if !o.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "report: wrote %s\n", o.html)
		}
	}
	if o.charts != "" {
		if err := os.MkdirAll(o.charts, 0o755); err != nil {
			return fmt.Errorf("report: charts directory: %w", err)
		}
		files, err := chart.WriteAll(o.charts, runs, formats)
		if err != nil {
			return fmt.Errorf("report: charts: %w", err)
		}
		if !o.quiet {
			fmt.Fprintf(cmd.ErrOrStderr(), "report: wrote %d chart files into %s\n", len(files), o.charts)
		}
	}
	if o.quiet {
		return nil
	}
	stdout := cmd.OutOrStdout()
	return report.RenderTable(stdout, runs, o.format, report.TableOptions{Width: tableWidth(stdout, os.LookupEnv)})
}

// loadResults loads result documents for report and compare. A file that cannot be read
// fails the whole set unless skip is set: then it is left out with a warning on stderr.
func loadResults(stderr io.Writer, skip bool, paths ...string) ([]*results.Run, error) {
	runs, skipped, err := results.LoadAllWith(results.LoadOptions{SkipUnreadable: true}, paths...)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 && !skip {
		return nil, fmt.Errorf("%w (--skip-unreadable leaves such files out with a warning)", skipped[0])
	}
	for _, e := range skipped {
		fmt.Fprintf(stderr, "warning: skipped %v\n", e)
	}
	return runs, nil
}

// checkChartFormats accepts "svg,png" as one value or several flags, in any case.
func checkChartFormats(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("report: --chart-format: name at least one format")
	}
	out, err := chart.CheckFormats(in)
	if err != nil {
		return nil, fmt.Errorf("report: --chart-format: %w", err)
	}
	return out, nil
}

// writeHTMLFile writes the page (creating its directory) next to its final name and renames it into place, so a
// failed run never leaves half a report where a good one was.
func writeHTMLFile(path string, runs []*results.Run, title string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: --html %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vmstorbench-report-*.html")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) { // name the file asked for, not the temporary one
			err = pe.Err
		}
		return fmt.Errorf("report: --html %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if err := report.WriteHTML(tmp, runs, report.HTMLOptions{Title: title, Generated: time.Now()}); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("report: --html: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: --html: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: --html: %w", err)
	}
	return nil
}
