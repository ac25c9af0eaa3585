package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/suiterun"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

type suiteOptions struct {
	out        string
	baseline   string
	noBaseline bool
	testbedDir string
	quiet      bool
	strict     bool
	img        imageFlags
}

func newSuiteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suite",
		Short: "Run a suite file: targets × workloads × scenarios × repeats, one report, an optional baseline comparison",
		Long: `A suite file (YAML) lists targets, workloads, scenarios (on the host or inside a live-migrating
VM), repeats, and optionally a baseline with thresholds. 'suite check' validates it and prints
the plan without touching any storage; 'suite run' runs the whole matrix, saves every result
in one directory with the table and an HTML report, and compares with the baseline.

Secrets never go in the file: a target names an environment variable (secret_env:) or a file
(secret_file:, relative to the suite file) holding its password or CHAP secret; a URL with a
password in it is refused. 'suite check' reports a secret that is not available as a warning
(so the file can be checked where the secrets are not; --strict makes it an error), 'suite
run' stops on it before running anything, or leaves the target out if it is optional: true.

See examples/suites/ for the lab comparison of NFS and SMB and a nightly NAS regression.`,
	}
	cmd.AddCommand(newSuiteRunCmd(), newSuiteCheckCmd())
	return cmd
}

func newSuiteRunCmd() *cobra.Command {
	o := &suiteOptions{}
	cmd := &cobra.Command{
		Use:   "run SUITE.yaml",
		Short: "Run every run of a suite, save the results, the table and report.html in one directory, compare with the baseline",
		Long: `Run the suite's matrix (repeats outermost, targets innermost), one progress line per run, and
save into --out: one result document per run, the suite file, table.txt, report.html and
suite.log; with a baseline (the suite's baseline: or --baseline DIR, e.g. an earlier --out
directory) also comparison.txt, comparison.md and comparison-junit.xml.

Exit status: 0 all runs complete and no regression, 1 a run failed or a threshold was
crossed (or a run failed verify and the baseline comparison rejects it), 2 the results
could not be compared with the baseline, 3 a run's verify found blocks that did not read
back as written (wins over 1 and 2), 130 interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSuite(cmd, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "directory for everything the suite writes (default "+defaultResultsDir+"/<suite name>-<UTC time>)")
	f.StringVar(&o.baseline, "baseline", "", "directory of result documents to compare with (overrides the suite's baseline:)")
	f.BoolVar(&o.noBaseline, "no-baseline", false, "do not compare (e.g. to make the first baseline: --no-baseline --out BASELINE_DIR)")
	f.StringVar(&o.testbedDir, "testbed-state", testbed.DefaultDir(), "state directory of the testbed for testbed targets")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress lines (the log file still has them)")
	o.img.register(f) // the guest image, for migration scenarios
	return cmd
}

func newSuiteCheckCmd() *cobra.Command {
	o := &suiteOptions{}
	cmd := &cobra.Command{
		Use:   "check SUITE.yaml",
		Short: "Validate a suite file and print its plan, without touching any storage",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return checkSuite(cmd, o, args[0]) },
	}
	cmd.Flags().StringVar(&o.testbedDir, "testbed-state", testbed.DefaultDir(), "state directory of the testbed, to resolve testbed targets if it runs")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "fail on warnings too (a secret or the baseline not available here)")
	return cmd
}

// checkSuite validates the file and prints the plan. Testbed targets are resolved when the
// testbed runs (that reads its state file, nothing else); otherwise they stay as named.
func checkSuite(cmd *cobra.Command, o *suiteOptions, path string) error {
	s, err := suite.Load(path, backends.Default)
	if err != nil {
		return usage(err)
	}
	var warnings []string
	for _, p := range s.Problems(os.LookupEnv) {
		w := p.String()
		if p.Target != nil && p.Target.Optional {
			w += " (optional: the run leaves it out)"
		}
		warnings = append(warnings, w)
	}
	eps := s.DeclaredEndpoints()
	if usesTestbed(s) {
		if resolved, notes, _, err := suiterun.Endpoints(s, o.testbedDir, "", os.LookupEnv, true); err == nil {
			eps = resolved
			warnings = append(warnings, notes...)
		} else {
			warnings = append(warnings, fmt.Sprintf("%v (the plan shows the testbed targets unresolved)", err))
		}
	}
	out := cmd.OutOrStdout()
	printSuite(out, s, eps)
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if o.strict && len(warnings) > 0 {
		return fmt.Errorf("%d warnings (--strict)", len(warnings))
	}
	return nil
}

func usesTestbed(s *suite.Suite) bool {
	if s.Testbed {
		return true
	}
	for _, t := range s.Targets {
		if _, ok := t.TestbedName(); ok {
			return true
		}
	}
	return false
}

// printSuite prints what the suite declares and the runs it expands to.
func printSuite(w io.Writer, s *suite.Suite, eps []suite.Endpoint) {
	fmt.Fprintf(w, "suite %s (%s)\n", s.Name, s.File)
	if s.Description != "" {
		fmt.Fprintf(w, "  %s\n", strings.Join(strings.Fields(s.Description), " "))
	}
	type line struct{ name, what, notes string }
	var targets, jobs, scenarios []line
	for _, e := range eps {
		var notes []string
		if t := e.Target; t != nil {
			switch {
			case t.SecretEnv != "":
				notes = append(notes, "secret from $"+t.SecretEnv)
			case t.SecretFile != "":
				notes = append(notes, "secret from "+t.SecretFile)
			}
			if t.Optional {
				notes = append(notes, "optional")
			}
		}
		if e.AllowDestructive {
			notes = append(notes, "allow_destructive")
		}
		targets = append(targets, line{e.Name, backends.RedactString(e.URL), strings.Join(notes, ", ")})
	}
	for _, wl := range s.Workloads {
		for _, j := range wl.Jobs {
			notes := ""
			if j.Profile != "" {
				notes = "profile " + j.Profile
			}
			jobs = append(jobs, line{j.Name, describeJob(j), notes})
		}
	}
	for _, sc := range s.Scenarios {
		scenarios = append(scenarios, line{sc.Name(), describeScenario(sc), ""})
	}
	width := 0
	for _, l := range slices.Concat(targets, jobs, scenarios) {
		width = max(width, len(l.name))
	}
	for _, sec := range []struct {
		title string
		lines []line
	}{{"targets", targets}, {"workloads", jobs}, {"scenarios", scenarios}} {
		fmt.Fprintln(w, sec.title)
		for _, l := range sec.lines {
			text := fmt.Sprintf("  %-*s  %s", width, l.name, l.what)
			if l.notes != "" {
				text += "  (" + l.notes + ")"
			}
			fmt.Fprintln(w, text)
		}
	}
	fmt.Fprintf(w, "repeats %d", s.Repeats)
	if s.Baseline != "" || s.ThresholdsText != "" {
		fmt.Fprintf(w, ", baseline %s, thresholds %s", orDash(s.Baseline), orDash(s.ThresholdsText))
	}
	fmt.Fprintln(w)
	runs := s.Plan(eps)
	fmt.Fprintf(w, "\nplan: %s × %s × %s × %s = %s\n", countNoun(len(eps), "target"), countNoun(len(jobs), "workload"),
		countNoun(len(s.Scenarios), "scenario"), countNoun(s.Repeats, "repeat"), countNoun(len(runs), "run"))
	perRepeat := len(runs) / s.Repeats
	shown := runs
	if len(runs) > 30 && s.Repeats > 1 {
		shown = runs[:perRepeat] // the other repeats run the same, in the same order
	}
	for _, r := range shown {
		fmt.Fprintf(w, "  %s\n", r)
	}
	if len(shown) < len(runs) {
		fmt.Fprintf(w, "  ... then the same %d runs for repeats 2 to %d\n", perRepeat, s.Repeats)
	}
	for _, wl := range s.Workloads {
		for _, j := range wl.Jobs {
			for _, n := range j.Notes {
				fmt.Fprintf(w, "note: %s: %s\n", j.Name, n)
			}
		}
	}
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describeJob is the workload in one line, with the size and time it runs for.
func describeJob(j *suite.Job) string {
	w := j.Workload
	s := w.Describe()
	if j.SizeGiven {
		s += " size=" + units.FormatSize(w.Size)
	} else {
		s += " size=(the target's)"
	}
	if w.Runtime > 0 {
		s += " runtime=" + w.Runtime.String()
		if w.TimeBased {
			s += " time_based"
		}
	}
	return s
}

func describeScenario(sc *suite.Scenario) string {
	if sc.Host() {
		return "on the host"
	}
	s := "in a VM (" + units.FormatSize(sc.DiskSize) + " disk, " + fmt.Sprint(sc.MemoryMiB) + " MiB, access " + sc.Access + ", accel " + sc.Accel + ")"
	if sc.LinkSpec != nil {
		s += ", link " + sc.LinkSpec.String()
	}
	if sc.StorageLinkSpec != nil {
		s += ", storage link " + sc.StorageLinkSpec.String()
	}
	if sc.MaxBandwidth > 0 {
		s += ", max-bandwidth " + units.FormatSize(sc.MaxBandwidth) + "/s"
	}
	if sc.Storage != "" && sc.Storage != "shared" {
		s += ", storage " + sc.Storage
		if sc.MirrorCopyMode != "" {
			s += " (" + sc.MirrorCopyMode + ")"
		}
		if sc.To != "" {
			s += " to " + sc.To
		}
		if sc.DiskLinkSpec != nil {
			s += ", disk link " + sc.DiskLinkSpec.String()
		}
		if sc.NoImageCheck {
			s += ", no image check"
		}
	}
	if !sc.Verify {
		s += ", no verify"
	}
	return s
}

func runSuite(cmd *cobra.Command, o *suiteOptions, path string) error {
	s, err := suite.Load(path, backends.Default)
	if err != nil {
		return err
	}
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	out, err := suiterun.Execute(cmd.Context(), s, suiterun.Options{
		Out: o.out, ResultsDir: defaultResultsDir, Baseline: o.baseline, NoBaseline: o.noBaseline, TestbedDir: o.testbedDir,
		Image: o.img.spec, Command: runner.RedactArgs(os.Args),
		Stdout: stdout, TableWidth: tableWidth(stdout, os.LookupEnv),
		Stderr: stderr, Quiet: o.quiet, Live: !o.quiet && isTerminal(stderr),
	})
	switch {
	case errors.Is(err, suiterun.ErrBothBaselines):
		return usage(err)
	case err != nil:
		return err
	}
	return suiteExit(out)
}

// suiteExit is the exit status of a suite run, with its message.
func suiteExit(out *suiterun.Outcome) error {
	if out.Results == 0 {
		if out.Interrupted {
			return &exitError{code: exitInterrupted, err: errors.New("interrupted before any run finished")}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("no run produced a result (see %s)", filepath.Join(out.OutDir, suiterun.LogFile))}
	}
	switch {
	case out.Interrupted:
		return &exitError{code: exitInterrupted, err: errors.New("interrupted; the finished runs are saved in " + out.OutDir)}
	case out.Corrupt > 0:
		return &exitError{code: exitVerify, err: fmt.Errorf("verify failed in %d of %d runs: data did not read back as written (see above)", out.Corrupt, out.Planned)}
	case out.CompareErr != nil:
		return &exitError{code: exitUsage, err: fmt.Errorf("could not compare with the baseline %s: %w", out.Baseline, out.CompareErr)}
	}
	var msgs []string
	if out.Failed > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d runs failed (see above)", out.Failed, out.Planned))
	}
	if cmp := out.Comparison; cmp != nil && cmp.Regressed() {
		f := cmp.Failures()
		msgs = append(msgs, fmt.Sprintf("regression: %d of %d checks failed, first %s: %s", len(f), cmp.CheckCount(), f[0].Case.Name(), f[0].Check.Reason))
	}
	if len(msgs) > 0 {
		return &exitError{code: exitRegression, err: errors.New(strings.Join(msgs, "; "))}
	}
	if out.MigrationFailed > 0 {
		return &exitError{code: exitMigration, err: fmt.Errorf("the migration did not complete in %d of %d runs (see above)", out.MigrationFailed, out.Planned)}
	}
	return nil
}
