package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/internal/progress"
	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// fioFlags are the workload options the run command takes as flags, by fio's names; each
// one given becomes "name=value" for workloads.ApplyOptions, so flags, --fio strings and job
// files share one option table.
var fioFlags = []struct{ name, help string }{
	{"rw", "read|write|randread|randwrite|rw|randrw"},
	{"bs", "block size, or read,write sizes (4k, 64k,1m)"},
	{"bsrange", "block size range (4k-64k)"},
	{"size", "region each job works on (fio units: 256m, 1g); default the whole target or 1GiB for a new file"},
	{"offset", "start of the region"},
	{"io-size", "bytes each job transfers before it stops (default size)"},
	{"iodepth", "I/Os in flight per job"},
	{"numjobs", "jobs (each with its own connection/file)"},
	{"runtime", "run time (10s, 2m)"},
	{"ramp-time", "warm-up time excluded from the figures"},
	{"rwmixread", "percent reads for rw/randrw"},
	{"rate", "bytes/s cap per job (read[,write])"},
	{"rate-iops", "I/Os per second cap per job (read[,write])"},
	{"randseed", "seed for random offsets"},
	{"fsync", "fsync after every N writes"},
	{"verify", "crc32c: every block carries a header that reads check"},
}

var fioBoolFlags = []struct{ name, help string }{
	{"time-based", "run for runtime even when size is covered"},
	{"direct", "O_DIRECT / unbuffered I/O"},
}

type runOptions struct {
	targets          []string
	profile          string
	fio              string
	interval         time.Duration
	resultsDir       string
	noSave           bool
	jsonOut          bool
	outputFormat     string
	quiet            bool
	keep             bool
	allowDestructive bool
	repeat           int
	labels           []string
	useTestbed       bool
	testbedDir       string
	submission       string
}

func newRunCmd() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [JOBFILE.fio]",
		Short: "Run a workload against one or more targets and save one result document per run",
		Long: `Run a workload (a profile, fio-style flags, or a fio job file) against each --target in
turn, print the results side by side, and save one JSON document per run under --results.
A job file's jobs run as fio runs them: concurrently, but for stonewall, which waits for the
jobs before it; each job is its own result, and group_reporting sums a group in the output.

  vmstorbench run --target file:///var/tmp --profile oltp
  vmstorbench run --target nfs://127.0.0.1:2049/export/vm.img --rw randread --bs 4k --iodepth 16 --runtime 10s
  vmstorbench run job.fio --target smb://bench@127.0.0.1:4450/vms/vm.img

Passwords never go on the command line: each backend reads its secret from an environment
variable or a file (see 'vmstorbench backends').

Exit status: 0 every run complete (and verified, with --verify); 1 a run failed or ended
early (its partial result is saved with complete: false), or bad input; 3 verify found
blocks that did not read back as written (the run's data is corrupt, whatever its speed:
"verify: N of M blocks mismatched (first at offsets ...)" on stderr, status
"verify_failed" in the result); 130 interrupted. 3 wins over 1.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	f.StringArrayVarP(&o.targets, "target", "t", nil, "target URL (repeat to compare targets); see 'vmstorbench backends'")
	f.StringVarP(&o.profile, "profile", "p", "", "named workload profile; see 'vmstorbench profiles'")
	f.StringVar(&o.fio, "fio", "", "fio options in one string: 'rw=randread bs=4k iodepth=16'")
	addFioFlags(f)
	f.DurationVar(&o.interval, "interval", time.Second, "time-series interval (e.g. 100ms)")
	f.StringVar(&o.submission, "submission", bench.SubmissionAuto, "how a job issues its iodepth I/Os: auto (queue when the backend has one and iodepth > 1), queue (one goroutine, the backend's queue) or goroutines (one per I/O in flight)")
	f.StringVar(&o.resultsDir, "results", defaultResultsDir, "directory for result documents")
	f.BoolVar(&o.noSave, "no-save", false, "do not save result documents")
	f.BoolVar(&o.jsonOut, "json", false, "print the result document(s) as JSON (same as --output-format json)")
	f.StringVar(&o.outputFormat, "output-format", "table", "table|md|csv|json|fio-json|json+ (fio's json+, with latency bins)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress line")
	f.BoolVar(&o.keep, "keep", false, "keep bench files the tool created")
	f.BoolVar(&o.allowDestructive, "allow-destructive", false, "allow writing to block devices and to existing files the tool did not create")
	f.IntVar(&o.repeat, "repeat", 1, "run everything N times (reports show median and spread)")
	f.StringArrayVar(&o.labels, "label", nil, "key=value label stored in the results (repeatable)")
	f.BoolVar(&o.useTestbed, "testbed", false, "add every endpoint of the running testbed as a target")
	f.StringVar(&o.testbedDir, "testbed-state", testbed.DefaultDir(), "state directory of the testbed for testbed:NAME targets")
	return cmd
}

func runRun(cmd *cobra.Command, o *runOptions, args []string) error {
	// Up to the results directory every check is of the input: refused with exitUsage.
	if o.jsonOut {
		o.outputFormat = "json"
	}
	switch o.outputFormat {
	case "table", "md", "csv", "json", "fio-json", "json+":
	default:
		return usage(fmt.Errorf("--output-format %q: must be table, md, csv, json, fio-json or json+", o.outputFormat))
	}
	if o.repeat < 1 {
		return usage(fmt.Errorf("--repeat %d: must be at least 1", o.repeat))
	}
	if err := bench.CheckSubmission(o.submission); err != nil {
		return usage(fmt.Errorf("--submission: %w", err))
	}
	if o.interval < time.Millisecond {
		return usage(fmt.Errorf("--interval %s: must be at least 1ms", o.interval))
	}
	labels, err := parseLabels(o.labels)
	if err != nil {
		return usage(err)
	}
	refs, err := resolveTestbedTargets(o.targets, o.useTestbed, o.testbedDir)
	if err != nil {
		return usage(err)
	}
	jobs, err := planJobs(cmd, o, args, len(refs) > 0)
	if err != nil {
		return usage(err)
	}
	for _, t := range refs {
		if _, err := runner.LookupTarget(t.URL); err != nil {
			return usage(err)
		}
	}
	if !o.noSave {
		if err := runner.EnsureWritableDir(o.resultsDir); err != nil {
			return usage(err)
		}
	}

	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	showProgress := !o.quiet && isTerminal(stderr)
	var runs []*results.Run
	var failures, corrupt []error
	attempts := 0
	single := o.repeat*len(jobs)*max(len(refs), 1) == 1
	// record saves and keeps one run's result and tells its failure.
	record := func(r *results.Run, err error, target runner.Target, rep int) error {
		attempts++
		if r != nil {
			r.Repeat, r.Repeats = rep, o.repeat
			if !o.noSave {
				path, serr := results.Save(o.resultsDir, r)
				if serr != nil {
					return serr
				}
				if !o.quiet {
					fmt.Fprintf(stderr, "saved %s\n", path)
				}
			}
			runs = append(runs, r)
		}
		if r != nil && r.Outcome() == results.StatusVerifyFailed {
			// Always told as it happens, on stderr, even with --quiet or --json.
			verr := fmt.Errorf("%s: %s", backends.RedactString(target.URL), r.Verify.Problem())
			fmt.Fprintf(stderr, "vmstorbench: %v\n", verr)
			corrupt = append(corrupt, verr)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", backends.RedactString(target.URL), err)
			if !single {
				// With several runs each failure is told as it happens; the rest go on.
				fmt.Fprintf(stderr, "vmstorbench: %v\n", err)
			}
			failures = append(failures, err)
		}
		return nil
	}
	for rep := 0; rep < o.repeat; rep++ {
		if len(jobs) > 0 && jobs[0].FromFile {
			// A job file runs as a set against each target (each job against its own
			// filename= without --target), its jobs grouped as fio groups them.
			sets := []*runner.Target{nil}
			if len(refs) > 0 {
				sets = nil
				for i := range refs {
					sets = append(sets, &refs[i])
				}
			}
			for _, set := range sets {
				if ctx.Err() != nil {
					break
				}
				if err := runJobSet(ctx, o, jobs, set, labels, showProgress, stderr, func(r *results.Run, err error, t runner.Target) error {
					return record(r, err, t, rep)
				}); err != nil {
					return err
				}
			}
			continue
		}
		for _, j := range jobs {
			for _, target := range refs {
				if ctx.Err() != nil {
					break
				}
				r, err := runOne(ctx, o, j, target, labels, showProgress, stderr)
				if err := record(r, err, target, rep); err != nil {
					return err
				}
			}
		}
	}
	if err := printRuns(cmd.OutOrStdout(), o.outputFormat, runs); err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		return &exitError{code: exitInterrupted, err: errors.New("interrupted; partial results saved")}
	case len(corrupt) > 0:
		if single && len(failures) == 1 {
			fmt.Fprintf(stderr, "vmstorbench: %v\n", failures[0]) // not told yet: the verify failure wins the exit
		}
		return &exitError{code: exitVerify, err: fmt.Errorf("verify failed in %d of %d runs: data did not read back as written (see above)", len(corrupt), attempts)}
	case single && len(failures) == 1:
		return &exitError{code: exitFailed, err: failures[0]}
	case len(failures) > 0:
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d runs failed (see above)", len(failures), attempts)}
	}
	return nil
}

// runOne runs job j against target, its live line and layout on stderr.
func runOne(ctx context.Context, o *runOptions, j runner.Job, target runner.Target, labels map[string]string, showProgress bool, stderr io.Writer) (*results.Run, error) {
	spec := hostSpec(o, j, target, labels)
	h, done := progress.HostHooks(stderr, backends.RedactString(target.URL), j.Workload.Name, showProgress, !o.quiet)
	r, err := runner.RunHost(ctx, spec, h)
	done()
	return r, err
}

// runJobSet runs a job file's jobs as one set (runner.RunJobSet): all against target when
// it is non-nil, else each against its own filename=. record is called for each job, in order.
func runJobSet(ctx context.Context, o *runOptions, jobs []runner.Job, target *runner.Target, labels map[string]string, showProgress bool, stderr io.Writer, record func(*results.Run, error, runner.Target) error) error {
	set := make([]runner.SetJob, len(jobs))
	for i, j := range jobs {
		t := runner.Target{URL: j.Target}
		if target != nil {
			t = *target
		}
		set[i] = runner.SetJob{HostSpec: hostSpec(o, j, t, labels),
			Stonewall: j.Stonewall, NewGroup: j.NewGroup, GroupReporting: j.GroupReporting, Global: j.Global}
	}
	// One progress line per group: the jobs that run together show their sum on it.
	for _, wave := range runner.SetWaves(set) {
		if !showProgress {
			break
		}
		name := set[wave[0]].Workload.Name
		if len(wave) > 1 {
			name = fmt.Sprintf("%d jobs", len(wave))
		}
		wp := progress.NewWave(progress.NewLine(stderr, backends.RedactString(set[wave[0]].Target.URL), name), len(wave))
		for k, i := range wave {
			set[i].Hooks.Progress = wp.Job(k)
		}
	}
	// Jobs that run together lay out their files together: each tells what it laid out in
	// one line when it is recorded, never a shared terminal line.
	layouts := make([]*progress.Layout, len(set))
	for i := range set {
		if !o.quiet {
			layouts[i] = progress.NewLayout(stderr, false)
			set[i].Hooks.Layout = layouts[i].Update
		}
	}
	// Results are recorded in the file's job order, as fio reports its jobs, not in the
	// order concurrent jobs happened to end.
	for _, res := range runner.RunJobSet(ctx, set) {
		if l := layouts[res.Index]; l != nil {
			l.Finish()
		}
		if err := record(res.Run, res.Err, set[res.Index].Target); err != nil {
			return err
		}
	}
	if showProgress {
		fmt.Fprint(stderr, progress.ClearLine) // the last job's progress line
	}
	return nil
}

// hostSpec is job j against target as the flags say.
func hostSpec(o *runOptions, j runner.Job, target runner.Target, labels map[string]string) runner.HostSpec {
	return runner.HostSpec{Target: target, Workload: j.Workload, SizeGiven: j.SizeGiven, Interval: o.interval,
		AllowDestructive: o.allowDestructive, Keep: o.keep, Profile: o.profile, Labels: labels,
		Command: runner.RedactArgs(os.Args), Submission: o.submission}
}

// planJobs builds the workloads: a job file's jobs, or one workload from --profile and the
// flags, with flags and --fio applied on top in both cases. Notes go to stderr.
func planJobs(cmd *cobra.Command, o *runOptions, args []string, haveTargets bool) ([]runner.Job, error) {
	p := runner.JobPlan{Profile: o.profile, Options: flagOptions(cmd.Flags(), o.fio), HaveTargets: haveTargets}
	if len(args) == 1 {
		p.JobFile = args[0]
	}
	jobs, notes, err := runner.PlanJobs(p)
	for _, n := range notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
	return jobs, err
}

// addFioFlags registers the workload flags, by fio's names.
func addFioFlags(f *pflag.FlagSet) {
	for _, ff := range fioFlags {
		f.String(ff.name, "", ff.help)
	}
	for _, ff := range fioBoolFlags {
		f.Bool(ff.name, false, ff.help)
	}
}

// flagOptions turns the fio flags that were given, then the --fio string, into
// "name=value" options for workloads.ApplyOptions.
func flagOptions(f *pflag.FlagSet, fio string) []string {
	var kv []string
	for _, ff := range fioFlags {
		if fl := f.Lookup(ff.name); fl.Changed {
			kv = append(kv, strings.ReplaceAll(ff.name, "-", "_")+"="+fl.Value.String())
		}
	}
	for _, ff := range fioBoolFlags {
		if fl := f.Lookup(ff.name); fl.Changed {
			v := "0"
			if fl.Value.String() == "true" {
				v = "1"
			}
			kv = append(kv, strings.ReplaceAll(ff.name, "-", "_")+"="+v)
		}
	}
	return append(kv, strings.Fields(fio)...)
}

func parseLabels(in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, l := range in {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: must be key=value", l)
		}
		m[k] = v
	}
	return m, nil
}

func printRuns(w io.Writer, format string, runs []*results.Run) error {
	if len(runs) == 0 {
		return nil
	}
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(runs) == 1 {
			return enc.Encode(runs[0])
		}
		return enc.Encode(runs)
	case "fio-json":
		return results.WriteFioJSON(w, runs)
	case "json+":
		return results.WriteFioJSONPlus(w, runs)
	}
	// Tables show a job file's jobs one row each, or one per group with group_reporting.
	runs, err := results.GroupReported(runs)
	if err != nil {
		return err
	}
	return report.RenderTable(w, runs, format, report.TableOptions{Width: tableWidth(w, os.LookupEnv)})
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// tableWidth is the width a terminal table must fit: the terminal's, else $COLUMNS, else 0
// (no limit: a file or pipe gets the full table).
func tableWidth(w io.Writer, lookupEnv func(string) (string, bool)) int {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	if v, ok := lookupEnv("COLUMNS"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return n
		}
	}
	return 0
}
