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
	pos     [2]paddedInt64
	writes  atomic.Int64 // for fsync=N and fdatasync=N
	limits  [2]*limiter
	blocks  *blockMap
	verify  verifyCounts
	workers []*worker
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
	stop       atomic.Bool
	errOnce    sync.Once
	err        error
	lastDone   atomic.Int64 // ns since start of the latest completion
	coll       *collector
	data       *dataPlan // write content and verify (buffers.go)
}

func (s *runState) fail(err error) {
	s.errOnce.Do(func() { s.err = err })
	s.stop.Store(true)
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
	if _, err := cfg.Registry.Lookup(u); err != nil {
		return nil, err
	}

	jobs, err := openTargets(ctx, &cfg, w)
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

	if w, err = fitRegion(w, userSize, jobs); err != nil {
		return nil, err
	}

	res := &results.Run{
		Schema:   results.SchemaVersion,
		Tool:     results.Tool{Name: "vmstorbench", Version: version.String()},
		ID:       newID(),
		Command:  cfg.Command,
		Host:     HostFacts(),
		Target:   results.Target{URL: backends.Redact(u), Backend: u.Scheme, Info: describe(jobs[0].target)},
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

	ru0 := rusage()
	res.Start = time.Now()
	st.start = res.Start
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
	if st.err != nil {
		res.Error = st.err.Error()
		return res, st.err
	}
	return res, nil
}

// openTargets opens one Target per job, concurrently.
func openTargets(ctx context.Context, cfg *Config, w workloads.Workload) ([]*job, error) {
	jobs := make([]*job, w.NumJobs)
	errs := make([]error, w.NumJobs)
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Add(1)
		go func(j int) {
			defer wg.Done()
			p := cfg.Open
			p.Size, p.Job, p.Direct, p.Write, p.Read = w.Offset+w.Size, j, w.Direct, w.Writes(), w.Does(workloads.Read)
			p.SyncWrites = w.SyncIO // fio sync=: O_SYNC/O_DSYNC or the backend's equivalent
			t, err := cfg.Registry.Open(ctx, cfg.Target, p)
			if err != nil {
				errs[j] = err
				return
			}
			jobs[j] = &job{id: j, target: t}
		}(j)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, j := range jobs {
			if j != nil {
				j.target.Close()
			}
		}
		return nil, err
	}
	return jobs, nil
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
	limit := w.IOSize
	region := w.Size
	if w.Verify != "" && w.NumJobs > 1 {
		// With verify, jobs split the region so that no job rewrites another's blocks.
		region = w.Size / int64(w.NumJobs) / w.BS[workloads.Read].Min * w.BS[workloads.Read].Min
		if region < w.BS[workloads.Read].Max {
			return fmt.Errorf("verify with numjobs=%d: size=%d leaves less than one block per job", w.NumJobs, w.Size)
		}
	}
	if limit == 0 {
		limit = region
	}
	if !w.TimeBased {
		if bs, fixed := fixedBS(w); fixed {
			st.limitIOs = uint64((limit + bs - 1) / bs)
		} else {
			st.limitBytes = limit
		}
	}
	for i, j := range jobs {
		j.base, j.region = w.Offset, region
		if w.Verify != "" && w.NumJobs > 1 {
			j.base = w.Offset + int64(i)*region
		}
		for d := range j.limits {
			j.limits[d] = newLimiter(w.Rate[d], w.RateIOPS[d])
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

// fixedBS returns the block size when every I/O of w has the same size.
func fixedBS(w workloads.Workload) (int64, bool) {
	var bs int64
	for d := workloads.Read; d <= workloads.Write; d++ {
		if !w.Does(d) {
			continue
		}
		b := w.BS[d]
		if b.Min != b.Max || (bs != 0 && bs != b.Min) {
			return 0, false
		}
		bs = b.Min
	}
	return bs, true
}

// runWorkers runs all workers to the end and returns the run-relative time of the end of
// measurement and the final progress counters.
func runWorkers(ctx context.Context, st *runState, jobs []*job) (int64, Progress) {
	nworkers := len(jobs) * st.w.IODepth
	st.coll = newCollector(nworkers, st.intervalNS)
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
	for _, wk := range all {
		wg.Add(1)
		go func() { defer wg.Done(); wk.run() }()
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
				st.fail(fmt.Errorf("no I/O completed for %s: target stalled", st.cfg.StallTimeout))
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
				st.fail(fmt.Errorf("I/O still in flight %s after the run ended: target not responding", st.cfg.Grace))
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
