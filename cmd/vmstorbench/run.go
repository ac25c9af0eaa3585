package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/bench/jobset"
	"github.com/vmstorbench/vmstorbench/report"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/workloads"
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

// plannedJob is one workload to run against every target.
type plannedJob struct {
	w         workloads.Workload
	sizeGiven bool
	target    string // from filename= when no --target
	// fromFile marks a job file's job: the file's jobs run as a set (bench/jobset), with
	// the group semantics of its stonewall, new_group and group_reporting.
	fromFile                            bool
	stonewall, newGroup, groupReporting bool
	global                              []string // options the file's [global] set
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
		if _, err := lookupTarget(t.url); err != nil {
			return usage(err)
		}
	}
	if !o.noSave {
		if err := ensureWritableDir(o.resultsDir); err != nil {
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
	record := func(r *results.Run, err error, target targetRef, rep int) error {
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
			verr := fmt.Errorf("%s: %s", backends.RedactString(target.url), r.Verify.Problem())
			fmt.Fprintf(stderr, "vmstorbench: %v\n", verr)
			corrupt = append(corrupt, verr)
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", backends.RedactString(target.url), err)
			if !single {
				// With several runs each failure is told as it happens; the rest go on.
				fmt.Fprintf(stderr, "vmstorbench: %v\n", err)
			}
			failures = append(failures, err)
		}
		return nil
	}
	for rep := 0; rep < o.repeat; rep++ {
		if len(jobs) > 0 && jobs[0].fromFile {
			// A job file runs as a set against each target (each job against its own
			// filename= without --target), its jobs grouped as fio groups them.
			sets := []*targetRef{nil}
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
				if err := runJobSet(ctx, o, jobs, set, labels, showProgress, stderr, func(r *results.Run, err error, t targetRef) error {
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

func runOne(ctx context.Context, o *runOptions, j plannedJob, target targetRef, labels map[string]string, showProgress bool, stderr io.Writer) (*results.Run, error) {
	cfg := jobConfig(o, j, target, labels)
	var pl *progressLine
	if showProgress {
		pl = newProgressLine(stderr, backends.RedactString(target.url), cfg.Workload.Name)
		cfg.Progress = pl.update
	}
	var ll *layoutLine
	if !o.quiet {
		ll = &layoutLine{w: stderr, tty: showProgress}
		cfg.LayoutProgress = ll.update
	}
	r, err := bench.Run(ctx, cfg)
	if pl != nil {
		pl.done()
	}
	if ll != nil {
		ll.finish()
	}
	return r, err
}

// runJobSet runs a job file's jobs as one set (jobset.Run): all against target when it is
// non-nil, else each against its own filename=. record is called for each job, in order.
func runJobSet(ctx context.Context, o *runOptions, jobs []plannedJob, target *targetRef, labels map[string]string, showProgress bool, stderr io.Writer, record func(*results.Run, error, targetRef) error) error {
	specs := make([]jobset.Job, len(jobs))
	targets := make([]targetRef, len(jobs))
	for i, j := range jobs {
		targets[i] = targetRef{url: j.target}
		if target != nil {
			targets[i] = *target
		}
		specs[i] = jobset.Job{
			Config:    jobConfig(o, j, targets[i], labels),
			Stonewall: j.stonewall, NewGroup: j.newGroup, GroupReporting: j.groupReporting,
			Global: j.global,
		}
	}
	// One progress line per group: the jobs that run together show their sum on it.
	for _, wave := range jobset.Waves(specs) {
		if !showProgress {
			break
		}
		name := specs[wave[0]].Config.Workload.Name
		if len(wave) > 1 {
			name = fmt.Sprintf("%d jobs", len(wave))
		}
		wp := &waveProgress{line: newProgressLine(stderr, backends.RedactString(targets[wave[0]].url), name), last: make([]bench.Progress, len(wave))}
		for k, i := range wave {
			specs[i].Config.Progress = wp.job(k)
		}
	}
	// Jobs that run together lay out their files together: each tells what it laid out in
	// one line when it is recorded, never a shared terminal line.
	layouts := make([]*layoutLine, len(specs))
	for i := range specs {
		if !o.quiet {
			layouts[i] = &layoutLine{w: stderr}
			specs[i].Config.LayoutProgress = layouts[i].update
		}
	}
	// Results are recorded in the file's job order, as fio reports its jobs, not in the
	// order concurrent jobs happened to end.
	for _, res := range jobset.Run(ctx, specs) {
		if l := layouts[res.Index]; l != nil {
			l.finish()
		}
		if err := record(res.Run, res.Err, targets[res.Index]); err != nil {
			return err
		}
	}
	if showProgress {
		fmt.Fprint(stderr, "\r\033[K") // the last job's progress line
	}
	return nil
}

// jobConfig is the engine configuration of job j against target.
func jobConfig(o *runOptions, j plannedJob, target targetRef, labels map[string]string) bench.Config {
	w := j.w
	if !j.sizeGiven {
		w.Size = 0 // the engine sizes the region to the target
	}
	if target.name != "" {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[results.TargetLabel] = target.name
	}
	return bench.Config{
		Target:   target.url,
		Workload: w,
		Interval: o.interval,
		Open:     backends.OpenParams{AllowDestructive: o.allowDestructive, Keep: o.keep},
		Command:  redactArgs(os.Args),
		Profile:  o.profile,
		Labels:   labels,
	}
}

// layoutLine shows bench-file layout as fio does ("laying out 1.0 GiB: 42%") on a terminal,
// and one line when it is over otherwise.
type layoutLine struct {
	w          io.Writer
	tty        bool
	start      time.Time
	lastShown  time.Time
	lastPct    int64
	done, size int64
	end        time.Time // when the last byte was laid out
}

func (l *layoutLine) update(done, total int64) {
	if l.start.IsZero() {
		// From the first report, not from when the job was planned: a job of a set may
		// wait for a stonewall before it lays anything out.
		l.start = time.Now()
	}
	l.done, l.size = done, total
	if done == total {
		l.end = time.Now()
	}
	if !l.tty || total <= 0 {
		return
	}
	pct := 100 * done / total
	now := time.Now()
	if pct == l.lastPct && now.Sub(l.lastShown) < 250*time.Millisecond {
		return
	}
	l.lastPct, l.lastShown = pct, now
	fmt.Fprintf(l.w, "\r\033[Klaying out %s: %d%%", backends.HumanBytes(total), pct)
}

// finish clears the terminal line, or tells a log what layout wrote and how long it took.
func (l *layoutLine) finish() {
	if l.size == 0 {
		return
	}
	if l.tty {
		fmt.Fprint(l.w, "\r\033[K")
		return
	}
	if l.done < l.size {
		fmt.Fprintf(l.w, "layout stopped after %s of %s\n", backends.HumanBytes(l.done), backends.HumanBytes(l.size))
		return
	}
	fmt.Fprintf(l.w, "laid out %s in %.1f s\n", backends.HumanBytes(l.size), l.end.Sub(l.start).Seconds())
}

// planJobs builds the workloads: a job file's jobs, or one workload from --profile and the
// flags, with flags and --fio applied on top in both cases.
func planJobs(cmd *cobra.Command, o *runOptions, args []string, haveTargets bool) ([]plannedJob, error) {
	kv := flagOptions(cmd.Flags(), o.fio)
	sizeGiven := hasOption(kv, "size")
	if len(args) == 1 {
		if o.profile != "" {
			return nil, errors.New("give either a job file or --profile, not both")
		}
		f, err := os.Open(args[0])
		if err != nil {
			return nil, fmt.Errorf("job file: %w", err)
		}
		defer f.Close()
		parsed, err := workloads.ParseJobFile(args[0], f)
		if err != nil {
			return nil, err
		}
		if len(parsed) == 0 {
			return nil, fmt.Errorf("%s: no job sections", args[0])
		}
		var out []plannedJob
		for _, pj := range parsed {
			w, notes, err := workloads.ApplyOptions(pj.Workload, kv)
			if err != nil {
				return nil, fmt.Errorf("%s: job %q: %w", args[0], pj.Section, err)
			}
			_, given := pj.Options["size"]
			pl := plannedJob{w: w, sizeGiven: given || sizeGiven, fromFile: true,
				stonewall: pj.Stonewall, newGroup: pj.NewGroup, groupReporting: pj.GroupReporting, global: pj.Global}
			if haveTargets {
				if n := pj.TargetNote(); n != "" {
					notes = append(notes, n)
				}
			} else {
				// filename= (or directory=) is the target: a local path only, never a
				// host:port or an engine's name created as a local file.
				if pl.target, err = pj.FileTarget(); err != nil {
					return nil, fmt.Errorf("%s:%d: job %q: %w", args[0], pj.Line, pj.Section, err)
				}
				if pl.target == "" {
					return nil, fmt.Errorf("%s: job %q has no filename= or directory= and no --target was given", args[0], pj.Section)
				}
			}
			for _, n := range append(pj.Notes, notes...) {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s: %s\n", pj.Section, n)
			}
			out = append(out, pl)
		}
		return out, nil
	}
	if !haveTargets {
		return nil, errors.New("no target: give --target URL (see 'vmstorbench backends'), e.g. --target file:///var/tmp")
	}
	base := workloads.Workload{}
	var err error
	if o.profile != "" {
		if base, err = workloads.Profile(o.profile); err != nil {
			return nil, err
		}
		sizeGiven = true // profiles size their region
	}
	w, notes, err := workloads.ApplyOptions(base, kv)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
	if w.Name == "" {
		w.Name = o.profile
		if w.Name == "" {
			w.Name = w.RW
		}
	}
	return []plannedJob{{w: w, sizeGiven: sizeGiven}}, nil
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

func hasOption(kv []string, name string) bool {
	for _, s := range kv {
		k, _, _ := strings.Cut(strings.TrimPrefix(s, "--"), "=")
		if k == name {
			return true
		}
	}
	return false
}

func lookupTarget(raw string) (backends.Backend, error) {
	u, err := backends.ParseURL(raw)
	if err != nil {
		return backends.Backend{}, err
	}
	return backends.Default.Lookup(u)
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

// ensureWritableDir creates dir if needed and checks that files can be created in it, so a
// bad --results fails before the run rather than after it.
func ensureWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".vmstorbench-write-test-*")
	if err != nil {
		return fmt.Errorf("results directory %s is not writable: %w", dir, errors.Unwrap(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// redactArgs removes credentials from URLs in argv before it is stored in a result.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, "://") {
			if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
				out[i] = k + "=" + backends.RedactString(v)
				continue
			}
			out[i] = backends.RedactString(a)
			continue
		}
		out[i] = a
	}
	return out
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

// progressLine shows elapsed time, IOPS and MB/s on one terminal line.
type progressLine struct {
	w        io.Writer
	label    string
	last     bench.Progress
	lastTime time.Time
}

func newProgressLine(w io.Writer, target, name string) *progressLine {
	return &progressLine{w: w, label: name + " @ " + target, lastTime: time.Now()}
}

func (p *progressLine) update(pr bench.Progress) {
	now := time.Now()
	secs := now.Sub(p.lastTime).Seconds()
	if secs <= 0 {
		return
	}
	var parts []string
	for d, name := range []string{"read", "write"} {
		ios := pr.IOs[d] - p.last.IOs[d]
		bytes := pr.Bytes[d] - p.last.Bytes[d]
		if pr.IOs[d] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s IOPS %.1f MB/s", name, humanCount(float64(ios)/secs), float64(bytes)/secs/1e6))
	}
	fmt.Fprintf(p.w, "\r\033[K%s  %s %5.1fs  %s", p.label, pr.Phase, pr.Elapsed.Seconds(), strings.Join(parts, "  "))
	p.last, p.lastTime = pr, now
}

func (p *progressLine) done() { fmt.Fprint(p.w, "\r\033[K") }

// waveProgress adds up the progress of jobs that run concurrently onto one line; bench calls
// each job's Progress from that job's own goroutine.
type waveProgress struct {
	mu     sync.Mutex
	line   *progressLine
	last   []bench.Progress // latest of each job, cumulative
	shown  time.Time
	primed bool
}

// waveProgressEvery spaces the line's updates: the jobs report at their own moments, and a
// rate taken between two of them milliseconds apart would jump.
const waveProgressEvery = 400 * time.Millisecond

func (w *waveProgress) job(k int) func(bench.Progress) {
	return func(p bench.Progress) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.last[k] = p
		if w.primed && time.Since(w.shown) < waveProgressEvery {
			return
		}
		w.primed, w.shown = true, time.Now()
		sum := bench.Progress{Phase: p.Phase}
		for _, q := range w.last {
			sum.Elapsed = max(sum.Elapsed, q.Elapsed)
			for d := range sum.IOs {
				sum.IOs[d] += q.IOs[d]
				sum.Bytes[d] += q.Bytes[d]
			}
		}
		w.line.update(sum)
	}
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
