package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// suiteLabel is the result label naming the suite a run belongs to.
const suiteLabel = "suite"

// Files 'suite run' writes into its output directory besides one result document per run.
// None of them ends in .json, so the directory can serve as a later run's --baseline.
const (
	suiteCopyFile      = "suite.yaml"
	suiteLogFile       = "suite.log"
	suiteTableFile     = "table.txt"
	suiteHTMLFile      = "report.html"
	suiteCompareFile   = "comparison.txt"
	suiteCompareMDFile = "comparison.md"
	suiteJUnitFile     = "comparison-junit.xml"
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
		if resolved, notes, err := suiteEndpoints(s, o.testbedDir, "", os.LookupEnv, true); err == nil {
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

// suiteEndpoints resolves the suite's targets: testbed endpoints to their URLs (and their
// credentials into this process's environment, as 'run --testbed' does), secrets to files
// the backends read. An optional target that is not available is left out with a note;
// any other is an error. With dryRun nothing is written and secrets are not looked at.
func suiteEndpoints(s *suite.Suite, testbedDir, secretDir string, lookupEnv func(string) (string, bool), dryRun bool) ([]suite.Endpoint, []string, error) {
	var eps []suite.Endpoint
	var notes []string
	declared := map[string]bool{}
	for _, t := range s.Targets {
		declared[t.Name] = true
	}
	if s.Testbed {
		refs, err := resolveTestbedTargets(nil, true, testbedDir)
		if err != nil {
			return nil, nil, fmt.Errorf("testbed: true: %w", err)
		}
		for _, r := range refs {
			if !declared[r.name] { // a target the file lists itself runs once, as listed
				eps = append(eps, suite.Endpoint{Name: r.name, URL: r.url, AllowDestructive: s.AllowDestructive})
			}
		}
	}
	for _, t := range s.Targets {
		e := suite.Endpoint{Name: t.Name, URL: t.URL, Target: t, AllowDestructive: t.AllowDestructive}
		var err error
		if _, ok := t.TestbedName(); ok {
			var refs []targetRef
			if refs, err = resolveTestbedTargets([]string{t.URL}, false, testbedDir); err == nil {
				e.URL = refs[0].url
			}
		} else if !dryRun {
			e.URL, err = t.ResolveURL(secretDir, lookupEnv)
		}
		if err != nil {
			if t.Optional {
				notes = append(notes, fmt.Sprintf("target %q is left out (optional): %v", t.Name, err))
				continue
			}
			return nil, nil, fmt.Errorf("%s:%d: target %q: %w", s.File, t.Line, t.Name, err)
		}
		if _, err := lookupTarget(e.URL); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: target %q: %w", s.File, t.Line, t.Name, err)
		}
		eps = append(eps, e)
	}
	if len(eps) == 0 {
		return nil, notes, errors.New("no target left to run")
	}
	return eps, notes, nil
}

func runSuite(cmd *cobra.Command, o *suiteOptions, path string) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	s, err := suite.Load(path, backends.Default)
	if err != nil {
		return err
	}
	// Everything is checked before anything runs: secrets, the baseline, the testbed, the
	// output directory, the guest image.
	var problems []string
	for _, p := range s.Problems(os.LookupEnv) {
		if (p.Target != nil && p.Target.Optional) || (p.Target == nil && (o.baseline != "" || o.noBaseline)) {
			continue // an optional target is left out below; --baseline replaces the file's
		}
		problems = append(problems, p.String())
	}
	if len(problems) > 0 {
		return fmt.Errorf("the suite cannot run here:\n  %s", strings.Join(problems, "\n  "))
	}
	baselineDir := s.Baseline
	switch {
	case o.noBaseline && o.baseline != "":
		return usage(errors.New("give --baseline or --no-baseline, not both"))
	case o.noBaseline:
		baselineDir = ""
	case o.baseline != "":
		baselineDir = o.baseline
	}
	var notes []string
	if baselineDir == "" && len(s.Thresholds) > 0 {
		notes = append(notes, "thresholds are not checked: there is no baseline to compare with")
	}
	var baseRuns []*results.Run
	if baselineDir != "" {
		if baseRuns, err = results.LoadAll(baselineDir); err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
	}
	secretDir, err := os.MkdirTemp("", "vmstorbench-suite-secrets-") // 0700
	if err != nil {
		return err
	}
	defer os.RemoveAll(secretDir)
	eps, tnotes, err := suiteEndpoints(s, o.testbedDir, secretDir, os.LookupEnv, false)
	if err != nil {
		return err
	}
	notes = append(notes, tnotes...)
	var img *guest.Image
	if s.Migrates() {
		// Built (or found in the cache) before the output directory exists: a missing
		// kernel stops the suite before anything is written.
		if img, err = o.img.build(ctx, func(l string) {
			if !o.quiet {
				fmt.Fprintln(stderr, l)
			}
		}); err != nil {
			return err
		}
	}
	outDir := o.out
	if outDir == "" {
		outDir = filepath.Join(defaultResultsDir, s.Name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := prepareOutDir(outDir); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(outDir, suiteLogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	defer logFile.Close()
	progress := io.Writer(logFile)
	if !o.quiet {
		progress = io.MultiWriter(stderr, logFile)
	}
	if data, err := os.ReadFile(path); err == nil {
		// The suite as run, next to its results (it holds no secrets: they are refused).
		if err := os.WriteFile(filepath.Join(outDir, suiteCopyFile), data, 0o644); err != nil {
			return fmt.Errorf("suite: %w", err)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(progress, "note:", n)
	}
	for _, wl := range s.Workloads {
		for _, j := range wl.Jobs {
			for _, n := range j.Notes {
				fmt.Fprintf(progress, "note: %s: %s\n", j.Name, n)
			}
		}
	}
	live := !o.quiet && isTerminal(stderr)
	// Diagnostics of migration runs (KVM fell back to TCG, the guest's console when it
	// broke) go to the log file: the progress line has the outcome.
	logf := func(format string, args ...any) { fmt.Fprintf(logFile, format+"\n", args...) }

	plan := s.Plan(eps)
	fmt.Fprintf(progress, "suite %s: %d runs into %s\n", s.Name, len(plan), outDir)
	var runs []*results.Run
	failed, corrupt, migFailed := 0, 0, 0
	for _, pr := range plan {
		if ctx.Err() != nil {
			break
		}
		r, err := runPlanned(ctx, s, pr, o, img, live, logf, stderr)
		if r != nil {
			r.Repeat, r.Repeats = pr.Repeat, pr.Repeats
			if _, serr := results.Save(outDir, r); serr != nil {
				return serr
			}
			runs = append(runs, r)
		}
		// Each run is classed as migrate and run class theirs (main.go's runExit).
		switch runExit(r, runMigration(r), err) {
		case exitVerify:
			failed++
			corrupt++
		case exitFailed:
			failed++
		case exitMigration:
			migFailed++
		}
		fmt.Fprintf(progress, "%s → %s\n", pr, runOutcome(r, err))
	}
	if len(runs) == 0 {
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: errors.New("interrupted before any run finished")}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("no run produced a result (see %s)", filepath.Join(outDir, suiteLogFile))}
	}

	stdout := cmd.OutOrStdout()
	var table bytes.Buffer
	if err := report.Render(&table, runs, "table"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, suiteTableFile), table.Bytes(), 0o644); err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	if width := tableWidth(stdout, os.LookupEnv); width > 0 {
		// table.txt keeps every column; the terminal gets the table that fits it.
		table.Reset()
		if err := report.RenderTable(&table, runs, "table", report.TableOptions{Width: width}); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, table.String())

	var cmp *results.Comparison
	var cmpErr error
	var extra []report.HTMLSection
	if baseRuns != nil {
		cmp, cmpErr = results.Compare(baseRuns, runs, results.CompareOptions{Thresholds: s.Thresholds})
		if cmpErr == nil {
			var text, md bytes.Buffer
			if err := report.RenderComparison(&text, cmp, "table"); err != nil {
				return err
			}
			if err := report.RenderComparison(&md, cmp, "md"); err != nil {
				return err
			}
			var junit bytes.Buffer
			if err := results.WriteJUnit(&junit, cmp); err != nil {
				return err
			}
			for name, data := range map[string][]byte{suiteCompareFile: text.Bytes(), suiteCompareMDFile: md.Bytes(), suiteJUnitFile: junit.Bytes()} {
				if err := os.WriteFile(filepath.Join(outDir, name), data, 0o644); err != nil {
					return fmt.Errorf("suite: %w", err)
				}
			}
			fmt.Fprintf(stdout, "\ncompared with the baseline %s:\n%s", baselineDir, text.String())
			extra = append(extra, report.HTMLSection{Title: "Compared with the baseline",
				HTML: template.HTML("<pre>" + html.EscapeString(text.String()) + "</pre>")})
		}
	}
	if err := writeSuiteHTML(filepath.Join(outDir, suiteHTMLFile), s, runs, extra); err != nil {
		return err
	}
	fmt.Fprintf(progress, "saved %s, %s and %s in %s\n", countNoun(len(runs), "result"), suiteTableFile, suiteHTMLFile, outDir)

	switch {
	case ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: errors.New("interrupted; the finished runs are saved in " + outDir)}
	case corrupt > 0:
		return &exitError{code: exitVerify, err: fmt.Errorf("verify failed in %d of %d runs: data did not read back as written (see above)", corrupt, len(plan))}
	case cmpErr != nil:
		return &exitError{code: exitUsage, err: fmt.Errorf("could not compare with the baseline %s: %w", baselineDir, cmpErr)}
	}
	var msgs []string
	if failed > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d runs failed (see above)", failed, len(plan)))
	}
	if cmp != nil && cmp.Regressed() {
		f := cmp.Failures()
		msgs = append(msgs, fmt.Sprintf("regression: %d of %d checks failed, first %s: %s", len(f), cmp.CheckCount(), f[0].Case.Name(), f[0].Check.Reason))
	}
	if len(msgs) > 0 {
		return &exitError{code: exitRegression, err: errors.New(strings.Join(msgs, "; "))}
	}
	if migFailed > 0 {
		return &exitError{code: exitMigration, err: fmt.Errorf("the migration did not complete in %d of %d runs (see above)", migFailed, len(plan))}
	}
	return nil
}

// prepareOutDir creates the output directory; one that already holds result documents is
// refused, so two suites' results never mix.
func prepareOutDir(dir string) error {
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) > 0 {
		return fmt.Errorf("--out %s already holds result documents; choose a new directory", dir)
	}
	return ensureWritableDir(dir)
}

func writeSuiteHTML(path string, s *suite.Suite, runs []*results.Run, extra []report.HTMLSection) error {
	var b bytes.Buffer
	title := "vmstorbench suite " + s.Name
	if s.Description != "" {
		title += ": " + strings.Join(strings.Fields(s.Description), " ")
	}
	if err := report.WriteHTML(&b, runs, report.HTMLOptions{Title: title, Extra: extra}); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("suite: %w", err)
	}
	return nil
}

// runPlanned runs one cell of the matrix: on the host like 'vmstorbench run', in a
// migrating VM like 'vmstorbench migrate'.
func runPlanned(ctx context.Context, s *suite.Suite, pr suite.Run, o *suiteOptions, img *guest.Image, live bool, logf func(string, ...any), stderr io.Writer) (*results.Run, error) {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[suiteLabel] = s.Name
	target := targetRef{url: pr.Endpoint.URL, name: pr.Endpoint.Name}
	j, sc := pr.Job, pr.Scenario
	if sc.Host() {
		ro := &runOptions{interval: s.Interval, allowDestructive: pr.Endpoint.AllowDestructive, profile: j.Profile}
		return runOne(ctx, ro, plannedJob{w: j.Workload, sizeGiven: j.SizeGiven}, target, labels, live, stderr)
	}
	labels[results.TargetLabel] = target.name
	w := j.Workload
	if !j.SizeGiven {
		w.Size = 0 // the guest works on its whole disk
	}
	mo := &migrateOptions{
		img: o.img, target: target.url, profile: j.Profile,
		mode: sc.Mode, at: sc.At, after: sc.After, deadline: sc.Deadline, downtimeLimit: sc.DowntimeLimit,
		postcopyAfter: sc.PostcopyAfter, postcopyIters: sc.PostcopyIterations,
		security: sc.Security, checkMemory: sc.CheckMemory, accel: sc.Accel, memory: sc.MemoryMiB,
		access: sc.Access, noVerify: !sc.Verify, allowDestructive: pr.Endpoint.AllowDestructive,
		quiet: !live, checkImage: !sc.NoImageCheck,
		storage: sc.Storage, to: sc.To, mirrorCopyMode: sc.MirrorCopyMode,
	}
	if sc.Outside {
		out, err := suite.OutsideURL(target.url)
		if err != nil {
			return nil, err
		}
		mo.outside = out
	}
	res, err := migrateOnce(ctx, mo, img, w, sc.DiskSize, sc.MaxBandwidth, sc.LinkSpec, sc.StorageLinkSpec, sc.DiskLinkSpec, labels, live, logf, stderr)
	if res == nil {
		return nil, err
	}
	res.Run.Migration = res.Migration
	return res.Run, err
}

// runMigration is r's migration section, nil for plain runs.
func runMigration(r *results.Run) *results.Migration {
	if r == nil {
		return nil
	}
	return r.Migration
}

// runOutcome is the end of a progress line: the figures, or the error.
func runOutcome(r *results.Run, err error) string {
	var parts []string
	if r != nil {
		if r.Outcome() == results.StatusVerifyFailed {
			parts = append(parts, "VERIFY FAILED: "+r.Verify.Problem())
		}
		for _, d := range []struct {
			name string
			s    *results.DirStats
		}{{"read", r.Read}, {"write", r.Write}} {
			if d.s != nil && d.s.IOs > 0 {
				parts = append(parts, fmt.Sprintf("%s %s IOPS %.1f MB/s", d.name, humanCount(d.s.IOPS), d.s.BWBps/1e6))
			}
		}
		if m := r.Migration; m != nil {
			parts = append(parts, fmt.Sprintf("migration %s, downtime %.0f ms", m.Outcome, m.QEMUDowntimeMS))
			if m.Failure != "" {
				parts = append(parts, "failure: "+m.Failure)
			}
		}
	}
	if err != nil {
		msg := "error: " + err.Error() // backends redact the URLs in their errors
		if r != nil {
			msg += " (partial result saved)"
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return "no I/O"
	}
	return strings.Join(parts, ", ")
}
