package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/version"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// paddedInt64 keeps hot per-worker counters on their own cache lines.
type paddedInt64 struct {
	v atomic.Int64
	_ [56]byte
}

// job is one of numjobs: one Target, iodepth workers, one I/O sequence.
type job struct {
	id      int
	target  backends.Target
	base    int64 // first byte of the job's region
	region  int64
	seq     atomic.Uint64
	issued  atomic.Int64 // bytes, for variable block sizes
	pos     jobPos
	writes  atomic.Int64 // for fsync=N and fdatasync=N
	limits  [2]*limiter
	spec    *genSpec // the generators' shared tables
	blocks  *blockMap
	verify  verifyCounts
	workers []*worker
	// queue is the job's Queue when it runs in queue mode (queue.go), else nil.
	queue backends.Queue
}

type verifyCounts struct {
	checked    atomic.Int64
	mismatches atomic.Int64
	mu         sync.Mutex
	first      []results.Mismatch
}

const maxReportedMismatches = 16

func (v *verifyCounts) mismatch(jobID int, off int64, reason string) {
	if v.mismatches.Add(1) > maxReportedMismatches {
		return
	}
	v.mu.Lock()
	v.first = append(v.first, results.Mismatch{Job: jobID, Offset: off, Reason: reason})
	v.mu.Unlock()
}

// runState is shared by all workers of a run.
type runState struct {
	cfg        *Config
	w          workloads.Workload
	start      time.Time
	rampNS     int64
	deadlineNS int64 // 0 = none
	intervalNS int64
	limitIOs   uint64 // 0 = none (fixed block size)
	limitBytes int64  // 0 = none (variable block size)
	trimBytes  bool   // shrink the I/O crossing limitBytes (see ioLimits)
	stop       atomic.Bool
	errOnce    sync.Once
	err        error
	failNS     int64        // ns since start when err was set
	lastDone   atomic.Int64 // ns since start of the latest successful completion
	coll       *collector
	data       *dataPlan // write content and verify (buffers.go)
}

func (s *runState) fail(err error) {
	s.errOnce.Do(func() { s.err, s.failNS = err, s.now() })
	s.stop.Store(true)
}

// noteDone records a successful completion at t (ns since start).
func (s *runState) noteDone(t int64) {
	for {
		old := s.lastDone.Load()
		if t <= old || s.lastDone.CompareAndSwap(old, t) {
			return
		}
	}
}

// lastIO says when the last I/O completed, for errors about a target that stopped.
func (s *runState) lastIO() string {
	t := s.lastDone.Load()
	if t == 0 {
		return "no I/O completed"
	}
	return fmt.Sprintf("the last I/O completed %s after the start", time.Duration(t).Round(time.Millisecond))
}

func (s *runState) now() int64 { return int64(time.Since(s.start)) }

// Run runs cfg and returns its result. When the run ends early (a target error, a stall,
// cancellation) the result is returned with Complete=false and Error set, together with the
// error, so the caller can save what was measured.
func Run(ctx context.Context, cfg Config) (*results.Run, error) {
	cfg.defaults()
	userSize := cfg.Workload.Size
	w := cfg.Workload.Defaults()
	if err := w.Validate(); err != nil {
		return nil, err
	}
	// The data and durability options are checked before any target is opened.
	data, err := newDataPlan(w)
	if err != nil {
		return nil, err
	}
	u, err := backends.ParseURL(cfg.Target)
	if err != nil {
		return nil, err
	}
	b, err := cfg.Registry.Lookup(u)
	if err != nil {
		return nil, err
	}
	if b.DiscardsData && w.Verify != "" {
		return nil, fmt.Errorf("verify=%s: %s:// keeps nothing it is written, so there is nothing to verify: use a target that stores data (file://, mem://, ...)", w.Verify, b.Scheme)
	}

	fp, err := planFiles(w)
	if err != nil {
		return nil, err
	}
	jobs, err := openTargets(ctx, &cfg, w, fp)
	if err != nil {
		return nil, err
	}
	closed := false
	closeAll := func() error {
		if closed {
			return nil
		}
		closed = true
		var errs []error
		for _, j := range jobs {
			if err := j.target.Close(); err != nil {
				errs = append(errs, fmt.Errorf("job %d: close: %w", j.id, err))
			}
		}
		return errors.Join(errs...)
	}
	defer closeAll()

	fitSize := userSize
	if fp.multi {
		// The files make the region; with filesize= given, size= is how much to transfer
		// (as in fio).
		if w.FileSize.Min > 0 && userSize > 0 && w.IOSize == 0 {
			w.IOSize = userSize
		}
		fitSize = 0
	}
	if w, err = fitRegion(w, fitSize, jobs); err != nil {
		return nil, err
	}
	cache, err := invalidate(w, jobs)
	if err != nil {
		return nil, err
	}
	info := describe(jobs[0].target)
	if info == nil {
		info = map[string]string{}
	}
	info["cache"] = cache

	res := &results.Run{
		Schema:   results.SchemaVersion,
		Tool:     results.Tool{Name: "vmstorbench", Version: version.String()},
		ID:       newID(),
		Command:  cfg.Command,
		Host:     HostFacts(),
		Target:   results.Target{URL: backends.Redact(u), Backend: u.Scheme, Info: info},
		Workload: w,
		SyncCall: syncCalls(w, jobs[0].target), // which call fsync=/fdatasync= use (durability.go)
		Profile:  cfg.Profile,
		Labels:   cfg.Labels,
	}

	st := &runState{cfg: &cfg, w: w, rampNS: int64(w.RampTime), intervalNS: int64(cfg.Interval), data: data}
	if w.Runtime > 0 {
		st.deadlineNS = st.rampNS + int64(w.Runtime)
	}
	if err := planJobs(st, jobs); err != nil {
		return nil, err
	}
	facts := &workloadFacts{iodepth: w.IODepth, nrfiles: len(fp.sizes), thinkSpin: w.ThinkTime > 0 && w.ThinkTimeSpin > 0}
	if res.Submission, res.SubmissionFallback, err = submission(cfg.Submission, facts, jobs[0].target, u.Scheme); err != nil {
		return nil, err
	}
	if res.Submission == SubmissionQueue {
		if err := openQueues(jobs, w.IODepth); err != nil {
			return nil, err
		}
	}

	if !startDelay(ctx, cfg.Stop, w.StartDelay) {
		st.fail(fmt.Errorf("run interrupted: %w", context.Cause(ctx)))
	}
	repl := newReplicationSampler(ctx, jobs[0].target, st.rampNS, cfg.Interval)
	ru0 := rusage()
	res.Start = time.Now()
	st.start = res.Start
	repl.begin(ctx, st.start)
	endNS, p := runWorkers(ctx, st, jobs)
	res.End = time.Now()
	ru1 := rusage()
	if ctx.Err() != nil {
		// Cancellation wins over a graceful Stop and over a run that just ended: the caller
		// abandoned it.
		st.fail(fmt.Errorf("run interrupted: %w", context.Cause(ctx)))
	}

	measured := endNS - st.rampNS
	if measured < 0 {
		measured = 0
	}
	res.RuntimeNS = measured
	fillStats(res, st, measured)
	res.CPU = cpuUse(ru0, ru1, res.End.Sub(res.Start))
	if repl != nil {
		var written int64
		if res.Write != nil {
			written = res.Write.Bytes
		}
		res.Replication = repl.finish(written)
		if d := res.Replication.Degraded; d != "" {
			// A degraded pair is another case than a healthy one: label it so reports keep
			// the two apart.
			labels := map[string]string{"degraded": d}
			for k, v := range res.Labels {
				labels[k] = v
			}
			res.Labels = labels
		}
	}

	if w.Verify != "" {
		if st.err == nil && w.Writes() {
			if cfg.Progress != nil {
				cfg.Progress(Progress{Phase: "verify", Elapsed: time.Since(st.start), IOs: p.IOs, Bytes: p.Bytes})
			}
			verifyPass(ctx, jobs)
			if ctx.Err() != nil {
				// The pass stopped short: the blocks it did not read are unchecked.
				st.fail(fmt.Errorf("verify pass interrupted: %w", context.Cause(ctx)))
			}
		}
		res.Verify = verifySummary(w, jobs)
	}
	if err := closeAll(); err != nil && st.err == nil {
		st.fail(err)
	}
	res.Complete = st.err == nil
	res.Status = res.Outcome()
	if st.err != nil {
		// The figures end at the last successful completion (measured), not at the
		// deadline; say when that was and when the failure was seen.
		res.LastIONS = measured
		res.StoppedAtNS = max(st.failNS-st.rampNS, 0)
		res.Error = st.err.Error()
		return res, st.err
	}
	return res, nil
}

// openQueues gives every job its Queue of depth I/Os; on an error none is left open.
func openQueues(jobs []*job, depth int) error {
	for _, j := range jobs {
		q, err := j.target.(backends.Queuer).NewQueue(depth)
		if err != nil {
			for _, o := range jobs {
				if o.queue != nil {
					o.queue.Close()
					o.queue = nil
				}
			}
			return fmt.Errorf("job %d: queue of %d: %w", j.id, depth, err)
		}
		j.queue = q
	}
	return nil
}

// maxConcurrentOpens bounds how many targets are opened (and laid out) at once.
const maxConcurrentOpens = 64

// openTargets opens every job's files (one Target each; several per job are joined in a
// multiTarget). The first is opened alone and told what the rest of the run will allocate,
// so that its backend refuses a run that does not fit in the free space before anything is
// written; the rest are opened concurrently and each checks its own new bytes.
func openTargets(ctx context.Context, cfg *Config, w workloads.Workload, fp *filePlan) ([]*job, error) {
	nr := len(fp.sizes)
	n := w.NumJobs * nr
	parts := make([]backends.Target, n)
	errs := make([]error, n)
	lp := newLayoutProgress(cfg.LayoutProgress, n)
	total := fp.total(w.NumJobs)
	open := func(i int) {
		j, f := i/nr, i%nr
		p := cfg.Open
		p.Size, p.Job, p.Direct, p.Write, p.Read = fp.sizes[f], cfg.FirstJob+j, w.Direct, w.Writes(), w.Does(workloads.Read)
		p.SizeIsDefault = cfg.Workload.Size == 0 && !fp.multi
		p.File, p.NrFiles = f, nr
		p.SyncWrites = w.SyncIO // fio sync=: O_SYNC/O_DSYNC or the backend's equivalent
		if fp.names != nil {
			p.FileName = fp.names[j][f]
		}
		p.SpaceNeeded, p.SpaceFiles = 0, 0
		if i == 0 {
			p.SpaceNeeded, p.SpaceFiles = total-fp.sizes[f], n-1
		}
		if lp != nil {
			p.LayoutProgress = lp.target(i)
		}
		parts[i], errs[i] = cfg.Registry.Open(ctx, cfg.Target, p)
	}
	open(0)
	if errs[0] == nil {
		sem := make(chan struct{}, maxConcurrentOpens)
		var wg sync.WaitGroup
		for i := 1; i < n; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				open(i)
			})
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		for _, t := range parts {
			if t != nil {
				t.Close()
			}
		}
		return nil, err
	}
	jobs := make([]*job, w.NumJobs)
	for j := range jobs {
		t := parts[j*nr]
		if fp.multi {
			t = newMultiTarget(parts[j*nr:(j+1)*nr], fp.sizes)
		}
		jobs[j] = &job{id: j, target: t}
	}
	return jobs, nil
}

// layoutProgress sums the layout progress of all targets for Config.LayoutProgress.
type layoutProgress struct {
	mu              sync.Mutex
	fn              func(done, total int64)
	done, total     []int64
	sumDone, sumTot int64
}

func newLayoutProgress(fn func(done, total int64), targets int) *layoutProgress {
	if fn == nil {
		return nil
	}
	return &layoutProgress{fn: fn, done: make([]int64, targets), total: make([]int64, targets)}
}

// target is target i's callback; calls to fn are serialized.
func (l *layoutProgress) target(i int) func(done, total int64) {
	return func(done, total int64) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sumDone += done - l.done[i]
		l.sumTot += total - l.total[i]
		l.done[i], l.total[i] = done, total
		l.fn(l.sumDone, l.sumTot)
	}
}

// invalidate drops the targets' cached data before the run as fio's invalidate=1 (its
// default) does, and says what was done for the result ("cache" in the target info).
func invalidate(w workloads.Workload, jobs []*job) (string, error) {
	if w.NoInvalidate {
		return "kept (invalidate=0)", nil
	}
	var out string
	for _, j := range jobs {
		s, err := dropCache(j.target)
		if err != nil {
			return "", fmt.Errorf("job %d: invalidate: %w", j.id, err)
		}
		if j.id == 0 {
			out = s
		}
	}
	return out, nil
}

// fitRegion sizes the region: a workload without size= uses the smallest job target after
// offset (as fio does with an existing file); one with size= must fit in every job's target.
func fitRegion(w workloads.Workload, userSize int64, jobs []*job) (workloads.Workload, error) {
	smallest := jobs[0].target.Size()
	for _, j := range jobs[1:] {
		smallest = min(smallest, j.target.Size())
	}
	if userSize == 0 && smallest > w.Offset {
		w.Size = smallest - w.Offset
	}
	if w.Offset+w.Size > smallest {
		return w, fmt.Errorf("target is %d bytes but the workload needs offset+size = %d bytes", smallest, w.Offset+w.Size)
	}
	return w, w.Validate()
}

// planJobs sets limits, regions, rate limiters and verify maps.
func planJobs(st *runState, jobs []*job) error {
	w := st.w
	region := w.Size
	if w.Verify != "" && w.NumJobs > 1 {
		// With verify, jobs split the region so that no job rewrites another's blocks.
		region = w.Size / int64(w.NumJobs) / w.BS[workloads.Read].Min * w.BS[workloads.Read].Min
		if region < w.BS[workloads.Read].Max {
			return fmt.Errorf("verify with numjobs=%d: size=%d leaves less than one block per job", w.NumJobs, w.Size)
		}
	}
	spec, err := newGenSpec(&st.w, region)
	if err != nil {
		return err
	}
	if err := checkVerify(&w, spec); err != nil {
		return err
	}
	lim, err := planLimits(&w, spec)
	if err != nil {
		return err
	}
	st.limitIOs, st.limitBytes, st.trimBytes = lim.ios, lim.bytes, lim.trim
	for i, j := range jobs {
		j.spec = spec
		j.base, j.region = w.Offset, region
		if w.Verify != "" && w.NumJobs > 1 {
			j.base = w.Offset + int64(i)*region
		}
		for d := range j.limits {
			j.limits[d] = newLimiter(w.Rate[d], w.RateIOPS[d])
			if l := j.limits[d]; l != nil && w.RateProcess == "poisson" {
				l.poisson, l.seed = true, w.RandSeed+uint64(j.id)*0x9e3779b97f4a7c15+uint64(d)
			}
		}
		if w.Verify != "" {
			m, err := newBlockMap(region, w.BS[workloads.Read].Min)
			if err != nil {
				return err
			}
			j.blocks = m
		}
	}
	return nil
}

// runWorkers runs all workers to the end and returns the run-relative time of the end of
// measurement and the final progress counters.
func runWorkers(ctx context.Context, st *runState, jobs []*job) (int64, Progress) {
	nworkers := len(jobs) * st.w.IODepth
	jobOf := make([]int, 0, nworkers)
	for i := range jobs {
		for k := 0; k < st.w.IODepth; k++ {
			jobOf = append(jobOf, i)
		}
	}
	st.coll = newCollector(jobOf, len(jobs), st.intervalNS)
	collStop := make(chan struct{})
	collDone := make(chan struct{})
	go func() { st.coll.run(nworkers, collStop); close(collDone) }()

	var wg sync.WaitGroup
	all := make([]*worker, 0, nworkers)
	for _, j := range jobs {
		for k := 0; k < st.w.IODepth; k++ {
			wk := newWorker(st, j, len(all), k)
			j.workers = append(j.workers, wk)
			all = append(all, wk)
		}
	}
	// A Stop that came before the start ends the run before its first I/O.
	select {
	case <-st.cfg.Stop:
		st.stop.Store(true)
	default:
	}
	for _, j := range jobs {
		if j.queue != nil {
			wg.Go(newQueueDriver(st, j, j.queue).run)
			continue
		}
		for _, wk := range j.workers {
			wg.Go(wk.run)
		}
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	monitorDone := make(chan struct{})
	gaveUp := make(chan struct{})
	go monitor(ctx, st, all, workersDone, monitorDone, gaveUp)

	select {
	case <-workersDone:
	case <-gaveUp:
		// The monitor gave up on workers stuck in I/O: close their targets under them so the
		// backends fail the calls, and stop waiting for them shortly after.
		for _, j := range jobs {
			j.target.Close()
		}
		select {
		case <-workersDone:
		case <-time.After(2 * time.Second):
		}
	}
	// The monitor's last Progress call happens before it ends: none may follow the caller's.
	<-monitorDone
	close(collStop)
	<-collDone
	// The measurement ends at the last successful completion: for a run that failed (a
	// target that stopped answering, an error) not at the deadline nor at the failed I/Os
	// that came after it.
	end := st.lastDone.Load()
	if st.deadlineNS > 0 && end > st.deadlineNS {
		end = st.deadlineNS
	}
	return end, snapshot(st, all)
}

// monitor reports progress, turns cancellation into a failure and Stop into a graceful end,
// ends stalled runs, and gives up on workers that stay stuck in I/O for longer than the grace
// period after the end (closing gaveUp).
func monitor(ctx context.Context, st *runState, all []*worker, workersDone, done, gaveUp chan struct{}) {
	defer close(done)
	tick := time.NewTicker(min(st.cfg.ProgressEvery, 250*time.Millisecond))
	defer tick.Stop()
	lastProgress := time.Now()
	var lastIOs int64
	var stoppedAt time.Time
	nextReport := time.Now().Add(st.cfg.ProgressEvery)
	// Each of these fires once: set to nil after, so a closed channel does not spin the loop.
	cancelled, stopReq := ctx.Done(), st.cfg.Stop
	for {
		select {
		case <-workersDone:
			if st.cfg.Progress != nil {
				st.cfg.Progress(snapshot(st, all))
			}
			return
		case <-cancelled:
			cancelled = nil
			st.fail(fmt.Errorf("run interrupted: %w", context.Cause(ctx)))
		case <-stopReq:
			stopReq = nil
			st.stop.Store(true)
		case now := <-tick.C:
			p := snapshot(st, all)
			ios := p.IOs[0] + p.IOs[1]
			if ios != lastIOs {
				lastIOs, lastProgress = ios, now
			} else if now.Sub(lastProgress) > st.cfg.StallTimeout && !st.stop.Load() {
				st.fail(fmt.Errorf("no I/O completed for %s: target stalled (%s)", st.cfg.StallTimeout, st.lastIO()))
			}
			if st.cfg.Progress != nil && !now.Before(nextReport) {
				st.cfg.Progress(p)
				nextReport = now.Add(st.cfg.ProgressEvery)
			}
		}
		if st.stop.Load() || (st.deadlineNS > 0 && st.now() > st.deadlineNS) {
			if stoppedAt.IsZero() {
				stoppedAt = time.Now()
			} else if time.Since(stoppedAt) > st.cfg.Grace {
				st.fail(fmt.Errorf("I/O still in flight %s after the run ended: target not responding (%s)", st.cfg.Grace, st.lastIO()))
				close(gaveUp)
				return
			}
		}
	}
}

func snapshot(st *runState, all []*worker) Progress {
	p := Progress{Phase: "run", Elapsed: time.Since(st.start)}
	if int64(p.Elapsed) < st.rampNS {
		p.Phase = "ramp"
	}
	for _, wk := range all {
		for d := range p.IOs {
			p.IOs[d] += wk.progIOs[d].v.Load()
			p.Bytes[d] += wk.progBytes[d].v.Load()
		}
	}
	return p
}

// fillStats turns the collector's totals and points into the result.
func fillStats(res *results.Run, st *runState, measured int64) {
	c := st.coll
	pts := c.points
	// The last interval is usually partial: rate it over the time it really lasted, and drop
	// a trailing point that lies wholly after the end of measurement.
	for len(pts) > 0 && pts[len(pts)-1].TNS-st.intervalNS >= measured && len(pts) > 1 {
		pts = pts[:len(pts)-1]
	}
	if n := len(pts); n > 0 && measured > 0 {
		last := &pts[n-1]
		if dur := measured - (last.TNS - st.intervalNS); dur > 0 && dur < st.intervalNS {
			scale := float64(st.intervalNS) / float64(dur)
			for _, ps := range []*results.PointStats{last.Read, last.Write} {
				if ps != nil {
					ps.IOPS *= scale
					ps.BWBps *= scale
				}
			}
			last.TNS = measured
		}
	}
	for i := range pts {
		if !st.w.Does(workloads.Read) {
			pts[i].Read = nil
		}
		if !st.w.Does(workloads.Write) {
			pts[i].Write = nil
		}
	}
	res.Series = results.Series{IntervalNS: st.intervalNS, Points: pts}
	if st.w.Does(workloads.Read) {
		res.Read = dirStats(&c.total[workloads.Read], measured)
	}
	if st.w.Does(workloads.Write) {
		res.Write = dirStats(&c.total[workloads.Write], measured)
	}
	if st.w.Fsync > 0 || st.w.Fdatasync > 0 {
		res.Sync = dirStats(&c.total[syncIdx], measured)
		res.Sync.Bytes, res.Sync.BWBps = 0, 0
	}
	for j := range c.jobTotal {
		js := results.JobStats{Index: j}
		if st.w.Does(workloads.Read) {
			js.Read = dirStats(&c.jobTotal[j][workloads.Read], measured)
		}
		if st.w.Does(workloads.Write) {
			js.Write = dirStats(&c.jobTotal[j][workloads.Write], measured)
		}
		if st.w.Fsync > 0 {
			js.Sync = dirStats(&c.jobTotal[j][syncIdx], measured)
			js.Sync.Bytes, js.Sync.BWBps = 0, 0
		}
		res.Jobs = append(res.Jobs, js)
	}
}

func verifySummary(w workloads.Workload, jobs []*job) *results.Verify {
	v := &results.Verify{Algorithm: w.Verify}
	for _, j := range jobs {
		v.Checked += j.verify.checked.Load()
		v.Mismatches += j.verify.mismatches.Load()
		v.First = append(v.First, j.verify.first...)
	}
	if len(v.First) > maxReportedMismatches {
		v.First = v.First[:maxReportedMismatches]
	}
	return v
}

func describe(t backends.Target) map[string]string {
	if d, ok := t.(backends.Describer); ok {
		return d.Describe()
	}
	return nil
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func cpuUse(a, b syscall.Rusage, wall time.Duration) results.CPU {
	user := time.Duration(b.Utime.Nano() - a.Utime.Nano())
	sys := time.Duration(b.Stime.Nano() - a.Stime.Nano())
	c := results.CPU{UserNS: int64(user), SysNS: int64(sys)}
	if wall > 0 {
		c.UsrPct = 100 * float64(user) / float64(wall)
		c.SysPct = 100 * float64(sys) / float64(wall)
	}
	return c
}
