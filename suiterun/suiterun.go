// Package suiterun runs a suite (package suite parses and plans it and links no VM code):
// its endpoints, the baseline, the run matrix through package runner, the saved results,
// the comparison, JUnit and HTML. Execute returns an Outcome the CLI maps to exit statuses.
package suiterun

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
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/progress"
	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/suite"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt/lvsupport"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// Label is the result label naming the suite a run belongs to.
const Label = "suite"

// Files Execute writes into its output directory besides one result document per run.
// None of them ends in .json, so the directory can serve as a later run's baseline.
const (
	CopyFile      = "suite.yaml"
	LogFile       = "suite.log"
	TableFile     = "table.txt"
	HTMLFile      = "report.html"
	CompareFile   = "comparison.txt"
	CompareMDFile = "comparison.md"
	JUnitFile     = "comparison-junit.xml"
)

// ErrBothBaselines is bad input: a baseline directory and no baseline at once.
var ErrBothBaselines = errors.New("give --baseline or --no-baseline, not both")

// Options say how to run a suite.
type Options struct {
	// Out is the directory for everything the suite writes; it must not hold results yet.
	// Default: <ResultsDir>/<suite name>-<UTC time>.
	Out        string
	ResultsDir string
	// Baseline replaces the suite's baseline: when set; NoBaseline compares with none.
	Baseline   string
	NoBaseline bool
	TestbedDir string
	// Image is the guest image of migration scenarios.
	Image runner.ImageSpec
	// Command is the (redacted) command line stored in the results.
	Command []string
	// Stdout gets the table and the comparison; TableWidth (0: no limit) is what the
	// table shown there must fit (table.txt keeps every column).
	Stdout     io.Writer
	TableWidth int
	// Stderr gets the progress lines (the log file has them too) unless Quiet; Live
	// draws each run's live status on it (a terminal).
	Stderr io.Writer
	Quiet  bool
	Live   bool
	// LookupEnv finds the targets' secret_env: variables (os.LookupEnv when nil).
	LookupEnv func(string) (string, bool)
}

// Outcome is what a suite run came to.
type Outcome struct {
	OutDir   string
	Baseline string // the directory compared with, "" for none
	Planned  int    // runs in the plan
	Results  int    // result documents saved
	// Failed runs (Corrupt among them: verify mismatches); MigrationFailed runs whose
	// migration failed while the workload went on intact.
	Failed, Corrupt, MigrationFailed int
	// Comparison with the baseline, or the reason there is none (CompareErr).
	Comparison  *results.Comparison
	CompareErr  error
	Interrupted bool
}

// Execute checks everything the suite needs (secrets, the baseline, the testbed, the output
// directory, the guest image) before it runs anything, then runs the plan, saving each
// result in o.Out, and writes the table, the report and the comparison there.
func Execute(ctx context.Context, s *suite.Suite, o Options) (*Outcome, error) {
	lookupEnv := o.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	stdout := o.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	var problems []string
	for _, p := range s.Problems(lookupEnv) {
		if (p.Target != nil && p.Target.Optional) || (p.Target == nil && (o.Baseline != "" || o.NoBaseline)) {
			continue // an optional target is left out below; --baseline replaces the file's
		}
		problems = append(problems, p.String())
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the suite cannot run here:\n  %s", strings.Join(problems, "\n  "))
	}
	baselineDir := s.Baseline
	switch {
	case o.NoBaseline && o.Baseline != "":
		return nil, ErrBothBaselines
	case o.NoBaseline:
		baselineDir = ""
	case o.Baseline != "":
		baselineDir = o.Baseline
	}
	var notes []string
	if baselineDir == "" && len(s.Thresholds) > 0 {
		notes = append(notes, "thresholds are not checked: there is no baseline to compare with")
	}
	var baseRuns []*results.Run
	if baselineDir != "" {
		var err error
		if baseRuns, err = results.LoadAll(baselineDir); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
	}
	secretDir, err := os.MkdirTemp("", "vmstorbench-suite-secrets-") // 0700
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(secretDir)
	eps, tnotes, env, err := Endpoints(s, o.TestbedDir, secretDir, lookupEnv, false)
	if err != nil {
		return nil, err
	}
	runner.ExportEnv(env)
	notes = append(notes, tnotes...)
	var img *guest.Image
	if s.Migrates() {
		// Built (or found in the cache) before the output directory exists: a missing
		// kernel stops the suite before anything is written.
		if img, err = runner.BuildImage(ctx, o.Image, func(l string) {
			if !o.Quiet {
				fmt.Fprintln(stderr, l)
			}
		}); err != nil {
			return nil, err
		}
	}
	outDir := o.Out
	if outDir == "" {
		outDir = filepath.Join(o.ResultsDir, s.Name+"-"+time.Now().UTC().Format("20060102T150405Z"))
	}
	if err := prepareOutDir(outDir); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(outDir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	defer logFile.Close()
	progressW := io.Writer(logFile)
	if !o.Quiet {
		progressW = io.MultiWriter(stderr, logFile)
	}
	if data, err := os.ReadFile(s.File); err == nil {
		// The suite as run, next to its results (it holds no secrets: they are refused).
		if err := os.WriteFile(filepath.Join(outDir, CopyFile), data, 0o644); err != nil {
			return nil, fmt.Errorf("suite: %w", err)
		}
	}
	for _, n := range notes {
		fmt.Fprintln(progressW, "note:", n)
	}
	for _, wl := range s.Workloads {
		for _, j := range wl.Jobs {
			for _, n := range j.Notes {
				fmt.Fprintf(progressW, "note: %s: %s\n", j.Name, n)
			}
		}
	}
	// Diagnostics of migration runs (KVM fell back to TCG, the guest's console when it
	// broke) go to the log file: the progress line has the outcome.
	logf := func(format string, args ...any) { fmt.Fprintf(logFile, format+"\n", args...) }

	plan := s.Plan(eps)
	out := &Outcome{OutDir: outDir, Baseline: baselineDir, Planned: len(plan)}
	fmt.Fprintf(progressW, "suite %s: %d runs into %s\n", s.Name, len(plan), outDir)
	var runs []*results.Run
	for _, pr := range plan {
		if ctx.Err() != nil {
			break
		}
		r, err := runPlanned(ctx, s, pr, o, img, logf, stderr)
		if r != nil {
			r.Repeat, r.Repeats = pr.Repeat, pr.Repeats
			if _, serr := results.Save(outDir, r); serr != nil {
				return nil, serr
			}
			runs = append(runs, r)
		}
		switch runner.Classify(r, err) {
		case runner.VerifyFailed:
			out.Failed++
			out.Corrupt++
		case runner.Failed:
			out.Failed++
		case runner.MigrationFailed:
			out.MigrationFailed++
		}
		fmt.Fprintf(progressW, "%s → %s\n", pr, RunOutcome(r, err))
	}
	out.Results = len(runs)
	out.Interrupted = ctx.Err() != nil
	if len(runs) == 0 {
		return out, nil
	}

	var table bytes.Buffer
	if err := report.Render(&table, runs, "table"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(outDir, TableFile), table.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	if o.TableWidth > 0 {
		// table.txt keeps every column; the terminal gets the table that fits it.
		table.Reset()
		if err := report.RenderTable(&table, runs, "table", report.TableOptions{Width: o.TableWidth}); err != nil {
			return nil, err
		}
	}
	fmt.Fprint(stdout, table.String())

	var extra []report.HTMLSection
	if baseRuns != nil {
		out.Comparison, out.CompareErr = results.Compare(baseRuns, runs, results.CompareOptions{Thresholds: s.Thresholds})
		if out.CompareErr == nil {
			text, err := writeComparison(outDir, out.Comparison)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(stdout, "\ncompared with the baseline %s:\n%s", baselineDir, text)
			extra = append(extra, report.HTMLSection{Title: "Compared with the baseline",
				HTML: template.HTML("<pre>" + html.EscapeString(text) + "</pre>")})
		} else {
			out.Comparison = nil
		}
	}
	if err := writeHTML(filepath.Join(outDir, HTMLFile), s, runs, extra); err != nil {
		return nil, err
	}
	fmt.Fprintf(progressW, "saved %s, %s and %s in %s\n", countNoun(len(runs), "result"), TableFile, HTMLFile, outDir)
	out.Interrupted = ctx.Err() != nil
	return out, nil
}

// writeComparison writes the comparison as text, Markdown and JUnit into dir and returns
// the text.
func writeComparison(dir string, cmp *results.Comparison) (string, error) {
	var text, md, junit bytes.Buffer
	if err := report.RenderComparison(&text, cmp, "table"); err != nil {
		return "", err
	}
	if err := report.RenderComparison(&md, cmp, "md"); err != nil {
		return "", err
	}
	if err := results.WriteJUnit(&junit, cmp); err != nil {
		return "", err
	}
	for name, data := range map[string][]byte{CompareFile: text.Bytes(), CompareMDFile: md.Bytes(), JUnitFile: junit.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return "", fmt.Errorf("suite: %w", err)
		}
	}
	return text.String(), nil
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// prepareOutDir creates the output directory; one that already holds result documents is
// refused, so two suites' results never mix.
func prepareOutDir(dir string) error {
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) > 0 {
		return fmt.Errorf("--out %s already holds result documents; choose a new directory", dir)
	}
	return runner.EnsureWritableDir(dir)
}

func writeHTML(path string, s *suite.Suite, runs []*results.Run, extra []report.HTMLSection) error {
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
func runPlanned(ctx context.Context, s *suite.Suite, pr suite.Run, o Options, img *guest.Image, logf func(string, ...any), stderr io.Writer) (*results.Run, error) {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[Label] = s.Name
	target := runner.Target{URL: pr.Endpoint.URL, Name: pr.Endpoint.Name}
	j, sc := pr.Job, pr.Scenario
	if sc.Host() {
		spec := runner.HostSpec{Target: target, Workload: j.Workload, SizeGiven: j.SizeGiven, Interval: s.Interval, Submission: s.Submission,
			AllowDestructive: pr.Endpoint.AllowDestructive, Profile: j.Profile, Labels: labels, Command: o.Command}
		h, done := progress.HostHooks(stderr, backends.RedactString(target.URL), j.Workload.Name, o.Live, true)
		r, err := runner.RunHost(ctx, spec, h)
		done()
		return r, err
	}
	labels[results.TargetLabel] = target.Name
	w := j.Workload
	if !j.SizeGiven {
		w.Size = 0 // the guest works on its whole disk
	}
	spec := runner.MigrationSpec{
		Config: migrate.Config{
			Image: img, Accel: sc.Accel, CacheDir: o.Image.CacheDir, MemoryMiB: sc.MemoryMiB,
			Workload: w, NoVerify: !sc.Verify,
			Mode: sc.Mode, At: sc.At, After: sc.After,
			PostcopyAfter: sc.PostcopyAfter, PostcopyIterations: sc.PostcopyIterations,
			MaxBandwidth: sc.MaxBandwidth, DowntimeLimit: sc.DowntimeLimit, Deadline: sc.Deadline,
			Security: sc.Security, Link: sc.LinkSpec, StorageLink: sc.StorageLinkSpec, CheckMemory: sc.CheckMemory,
			Storage: sc.Storage, To: sc.To, DiskLink: sc.DiskLinkSpec, NoImageCheck: sc.NoImageCheck,
			MirrorCopyMode: sc.MirrorCopyMode,
			Labels:         labels, Profile: j.Profile, Command: o.Command,
		},
		Target:      target.URL,
		DiskOptions: migrate.DiskOptions{Size: sc.DiskSize, Access: sc.Access, AllowDestructive: pr.Endpoint.AllowDestructive},
	}
	if sc.Outside {
		out, err := suite.OutsideURL(target.URL)
		if err != nil {
			return nil, err
		}
		spec.OutsideTarget = out
	}
	if sc.Libvirt() {
		// The parser checked the targets the file names by URL; a testbed endpoint is
		// known only now (a mirror copies a local image file only).
		if err := lvsupport.Check(sc.LibvirtChoices(target.URL), lvsupport.Keys); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name(), err)
		}
		lv, err := libvirtConfig(sc, o.TestbedDir)
		if err != nil {
			return nil, err
		}
		lv.AllowDestructive = pr.Endpoint.AllowDestructive
		spec.Libvirt = lv
	}
	h := runner.Hooks{Logf: logf}
	if o.Live {
		h.Phase = progress.Phases(stderr, true, sc.Mode, time.Now())
	}
	r, err := runner.RunMigration(ctx, spec, h)
	if o.Live {
		fmt.Fprint(stderr, progress.ClearLine)
	}
	return r, err
}

// libvirtConfig is the libvirt driver's configuration of a scenario with hypervisor:
// libvirt; testbed:NAME URIs name endpoints of the testbed in testbedDir.
func libvirtConfig(sc *suite.Scenario, testbedDir string) (*libvirt.DriverConfig, error) {
	refs, _, err := runner.ResolveTestbed([]string{sc.SourceURI, sc.DestURI}, false, testbedDir)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", sc.Name(), err)
	}
	return &libvirt.DriverConfig{SourceURI: refs[0].URL, DestURI: refs[1].URL, Domain: sc.Domain}, nil
}

// RunOutcome is the end of a run's progress line: the figures, or the error.
func RunOutcome(r *results.Run, err error) string {
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
				parts = append(parts, fmt.Sprintf("%s %s IOPS %.1f MB/s", d.name, progress.HumanCount(d.s.IOPS), d.s.BWBps/1e6))
			}
		}
		if m := r.Migration; m != nil {
			parts = append(parts, fmt.Sprintf("migration %s, downtime %s", m.Outcome, m.QEMUDowntimeText()))
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
