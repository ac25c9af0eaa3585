package main

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
)

// compare's exit statuses, from the one table in main.go: CI scripts tell "slower" (1)
// from "could not compare" (2, bad input).
const exitRegression = exitFailed

type compareOptions struct {
	failOn       []string
	alpha        float64
	format       string
	junit        string
	markdown     string
	matchTargets bool
	skip         bool
}

func newCompareCmd() *cobra.Command {
	o := &compareOptions{}
	cmd := &cobra.Command{
		Use:   "compare BASE CANDIDATE",
		Short: "Compare a candidate set of runs with a base set, per case and metric; exit 1 on a regression",
		Long: `Compare the runs in CANDIDATE with the runs in BASE (each a result file, a directory of
them, or a quoted glob). Runs are matched by case: target, workload and scenario. Repeats of a
case are summarised by their median, and each metric's change is the candidate median against
the base median, per direction.

A change is "within noise" when the repeats cannot tell the sides apart: with 2-3 runs a side
when their min-max ranges overlap, with 4 or more when the Mann-Whitney U test gives
p >= --alpha. With a single run on a side there is no noise estimate.

--fail-on lists thresholds: 'iops<-10%,p99>+20%' fails when IOPS fall by more than 10 % or
p99 latency rises by more than 20 %; 'read.iops<-5%' or 'write.p99>+10%' checks one direction.
Metrics: iops, bw, mean, p50, p99, p99.9, max; for runs in a migrating VM also downtime (QEMU's),
pause (host-seen), stall (longest workload stall), total, setup, disruption, migration_time,
ram_bytes, disk_bytes, wire_bytes, cpu_s, joules ('downtime>+20%', no direction). A threshold
fails when the change crosses it and is not within noise.

Exit status: 0 no regression (or no thresholds), 1 a threshold failed (or a side had no
complete run to check it on), 2 the runs could not be compared (unreadable input, different
workloads or targets, bad options). Incomplete runs are left out and listed.

  vmstorbench compare runs/last-week runs/today --fail-on 'iops<-10%,p99>+20%' --junit compare.xml`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompare(cmd, o, args)
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: fmt.Errorf("compare: %w", err)}
	})
	f := cmd.Flags()
	f.StringArrayVar(&o.failOn, "fail-on", nil, "thresholds, comma-separated or repeated: 'iops<-10%,write.p99>+20%'")
	f.Float64Var(&o.alpha, "alpha", results.DefaultAlpha, "significance level of the Mann-Whitney test (4+ runs a side)")
	f.StringVar(&o.format, "format", "table", "stdout format: table|md")
	f.StringVar(&o.junit, "junit", "", "also write JUnit XML (one test case per case, direction and checked metric) to FILE")
	f.StringVar(&o.markdown, "markdown", "", "also write the comparison as Markdown to FILE")
	f.BoolVar(&o.skip, "skip-unreadable", false, "leave out, with a warning, result files that cannot be read (default: refuse, exit 2)")
	f.BoolVar(&o.matchTargets, "match-targets", false, "compare different targets (one on each side), matching cases by workload and scenario")
	return cmd
}

func runCompare(cmd *cobra.Command, o *compareOptions, args []string) error {
	usage := func(err error) error { return &exitError{code: exitUsage, err: err} }
	if len(args) != 2 {
		return usage(fmt.Errorf("compare: want two arguments, BASE and CANDIDATE (each a result file, directory or quoted glob); got %d", len(args)))
	}
	if !slices.Contains(report.ComparisonFormats, o.format) {
		return usage(fmt.Errorf("compare: unknown --format %q (formats: %s)", o.format, strings.Join(report.ComparisonFormats, ", ")))
	}
	thresholds, err := results.ParseThresholds(strings.Join(o.failOn, ","))
	if err != nil {
		return usage(fmt.Errorf("compare: --fail-on: %w", err))
	}
	if !(o.alpha > 0 && o.alpha < 1) {
		return usage(fmt.Errorf("compare: --alpha %v: want a level between 0 and 1, e.g. 0.05", o.alpha))
	}
	base, err := loadResults(cmd.ErrOrStderr(), o.skip, args[0])
	if err != nil {
		return usage(fmt.Errorf("compare: base: %w", err))
	}
	cand, err := loadResults(cmd.ErrOrStderr(), o.skip, args[1])
	if err != nil {
		return usage(fmt.Errorf("compare: candidate: %w", err))
	}
	c, err := results.Compare(base, cand, results.CompareOptions{Thresholds: thresholds, Alpha: o.alpha, MatchTargets: o.matchTargets})
	if err != nil {
		return usage(err)
	}

	if err := report.RenderComparison(cmd.OutOrStdout(), c, o.format); err != nil {
		return usage(err)
	}
	if o.markdown != "" {
		var b bytes.Buffer
		if err := report.RenderComparison(&b, c, "md"); err != nil {
			return usage(err)
		}
		if err := os.WriteFile(o.markdown, b.Bytes(), 0o644); err != nil {
			return usage(fmt.Errorf("compare: --markdown: %w", err))
		}
	}
	if o.junit != "" {
		var b bytes.Buffer
		if err := results.WriteJUnit(&b, c); err != nil {
			return usage(err)
		}
		if err := os.WriteFile(o.junit, b.Bytes(), 0o644); err != nil {
			return usage(fmt.Errorf("compare: --junit: %w", err))
		}
	}
	if failures := c.Failures(); len(failures) > 0 {
		first := failures[0]
		return &exitError{code: exitRegression, err: fmt.Errorf("compare: regression: %d of %d checks failed, first %s: %s",
			len(failures), c.CheckCount(), first.Case.Name(), first.Check.Reason)}
	}
	return nil
}
