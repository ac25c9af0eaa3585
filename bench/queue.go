package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Submission modes (Config.Submission, the result's "submission").
const (
	SubmissionAuto       = "auto"       // queue when the target is a backends.Queuer and iodepth > 1
	SubmissionQueue      = "queue"      // one goroutine per job keeps iodepth I/Os in flight on a Queue
	SubmissionGoroutines = "goroutines" // iodepth goroutines per job, each calling ReadAt/WriteAt
)

// CheckSubmission refuses a submission mode that is none of auto, queue and goroutines ("" is
// auto).
func CheckSubmission(mode string) error {
	switch mode {
	case "", SubmissionAuto, SubmissionQueue, SubmissionGoroutines:
		return nil
	}
	return fmt.Errorf("submission %q: must be auto, queue or goroutines", mode)
}

// submission decides how the jobs issue their I/O: the mode used and, when auto would have
// used a queue but cannot, why not. A mode the targets cannot do is an error.
func submission(mode string, w *workloadFacts, t backends.Target, scheme string) (used, fallback string, err error) {
	if err := CheckSubmission(mode); err != nil {
		return "", "", err
	}
	if mode == SubmissionGoroutines {
		return SubmissionGoroutines, "", nil
	}
	_, queuer := t.(backends.Queuer)
	if m, ok := t.(*multiTarget); ok {
		_, queuer = m.parts[0].(backends.Queuer)
	}
	if !queuer {
		if mode == SubmissionQueue {
			return "", "", fmt.Errorf("submission queue: the %s backend has no queue (backends.Queuer): use auto or goroutines", scheme)
		}
		return SubmissionGoroutines, "", nil
	}
	if mode != SubmissionQueue && w.iodepth <= 1 {
		return SubmissionGoroutines, "", nil
	}
	// What one goroutine cannot do for several I/Os at once.
	var why string
	switch {
	case w.nrfiles > 1:
		why = fmt.Sprintf("nrfiles=%d: a Queue reaps one target and the job's files are %d, so one goroutine would wait on one file while another's completions wait", w.nrfiles, w.nrfiles)
	case w.thinkSpin:
		why = "thinktime_spin: a slot's spinning pause would stall the job's other I/Os"
	}
	if why == "" {
		return SubmissionQueue, "", nil
	}
	if mode == SubmissionQueue {
		return "", "", fmt.Errorf("submission queue: %s; use auto or goroutines", why)
	}
	return SubmissionGoroutines, why, nil
}

// workloadFacts are what submission needs of the workload.
type workloadFacts struct {
	iodepth   int
	nrfiles   int
	thinkSpin bool
}

// queueDriver runs one job's iodepth I/O slots from one goroutine through one Queue (fio's
// asynchronous ioengines: queue, commit, getevents): it submits until iodepth I/Os are in
// flight, reaps at least one, completes what it reaped and refills. Each slot is a worker
// (its generator, buffers, write data, statistics and progress counters are the slot's), so
// the I/O sequence, the statistics and the results are those of the goroutine mode; the
// worker's plan, acquire, issue and completeIO are shared with it.
//
// What a goroutine does by waiting, a slot does by state: a slot whose verify block is held
// by another slot of the job waits for that slot's completion; a slot waiting for its rate
// slot or pausing (thinktime) is due at a time. While I/Os are in flight the driver waits in
// Reap, so a slot that falls due then is issued at the next completion (at most one I/O
// latency late: the rate limiter's schedule catches up, so the rate holds); with nothing in
// flight it sleeps until the first due time. Syncs of fsync=N and fdatasync=N wait until the
// I/Os in flight have completed (as fio's libaio does), so that no I/O's latency includes a
// sync; no I/O is submitted while they are due.
type queueDriver struct {
	st       *runState
	job      *job
	q        backends.Queue
	slots    []*worker
	io       []ioSlot
	state    []slotState
	inflight int
	// idle are the slots to refill; waiting counts the slots planned or pausing, which every
	// fill visits (with none, a fill visits only the slots just reaped: the common case
	// costs nothing per slot of iodepth).
	idle    []int
	waiting int
	syncs   []dueSync
	done    []backends.Completion
}

type slotState uint8

const (
	slotIdle     slotState = iota // plans its next I/O when the driver fills
	slotPlanned                   // planned, waiting for its verify block or its rate slot
	slotPausing                   // thinktime: idle again at its due time
	slotInFlight                  // submitted, not reaped
	slotEnded                     // the slot does no more I/O
)

// dueSync is a sync of fsync=N or fdatasync=N waiting for the I/Os in flight.
type dueSync struct {
	slot             int
	fsync, fdatasync bool
}

func newQueueDriver(st *runState, j *job, q backends.Queue) *queueDriver {
	n := len(j.workers)
	d := &queueDriver{st: st, job: j, q: q, slots: j.workers, io: make([]ioSlot, n), state: make([]slotState, n),
		idle: make([]int, 0, n), done: make([]backends.Completion, 0, n)}
	for k := range n {
		d.idle = append(d.idle, k)
	}
	return d
}

// set moves slot k to state s, keeping the count of waiting slots.
func (d *queueDriver) set(k int, s slotState) {
	waits := func(s slotState) bool { return s == slotPlanned || s == slotPausing }
	if waits(d.state[k]) {
		d.waiting--
	}
	if waits(s) {
		d.waiting++
	}
	d.state[k] = s
}

// run drives the job to its end; every slot's statistics are handed to the collector and the
// Queue is drained and closed before it returns.
func (d *queueDriver) run() {
	st := d.st
	defer func() {
		for _, wk := range d.slots {
			wk.finish()
		}
	}()
	for {
		due, blocked := int64(math.MaxInt64), false
		if len(d.syncs) == 0 {
			due, blocked = d.fill()
		}
		switch {
		case d.inflight > 0:
			d.reap()
		case len(d.syncs) > 0:
			d.runSyncs()
		case d.ended():
			d.close()
			return
		case due != math.MaxInt64:
			d.sleep(due)
		case blocked:
			// A slot waits for a block no slot of this job holds: that cannot happen (a
			// block is held from planning to completion, by a slot in flight or planned).
			st.fail(fmt.Errorf("job %d: queue driver: a slot waits for a verify block nothing holds", d.job.id))
			d.abandonAll()
		}
	}
}

// fill plans and submits on every slot that can go: it returns the first time a waiting slot
// falls due and whether a slot waits for a block held by another.
func (d *queueDriver) fill() (due int64, blocked bool) {
	due = math.MaxInt64
	stop := d.st.stop.Load()
	if d.waiting == 0 && !stop {
		for _, k := range d.idle {
			// A failed Submit stops the run: the slots after it end instead of going.
			d.advance(k, 0, d.st.stop.Load(), &due, &blocked)
		}
		d.idle = d.idle[:0]
		return due, blocked
	}
	d.idle = d.idle[:0]
	now := d.st.now()
	for k := range d.slots {
		if stop = stop || d.st.stop.Load(); d.state[k] != slotInFlight && d.state[k] != slotEnded {
			d.advance(k, now, stop, &due, &blocked)
		}
	}
	return due, blocked
}

// advance takes slot k as far as it can go towards submission.
func (d *queueDriver) advance(k int, now int64, stop bool, due *int64, blocked *bool) {
	wk, s := d.slots[k], &d.io[k]
	if d.state[k] == slotPausing {
		if stop {
			d.set(k, slotEnded)
			return
		}
		if s.due > now {
			*due = min(*due, s.due)
			return
		}
		d.set(k, slotIdle)
	}
	if d.state[k] == slotIdle {
		if stop || !wk.plan(s) {
			d.set(k, slotEnded)
			return
		}
		d.set(k, slotPlanned)
	}
	if stop {
		wk.abandon(s)
		d.set(k, slotEnded)
		return
	}
	if wk.verify && !s.held && !wk.acquire(s) {
		*blocked = true
		return
	}
	if wk.limited[s.p.dir] && !s.paced {
		if !wk.reserveRate(s) {
			wk.abandon(s)
			d.set(k, slotEnded)
			return
		}
		now = d.st.now()
	}
	if s.due > now {
		*due = min(*due, s.due)
		return
	}
	if !wk.issue(s) {
		d.set(k, slotEnded)
		return
	}
	if err := d.q.Submit(backends.IO{Write: s.p.dir == workloads.Write, Off: s.p.off, Buf: s.buf, Tag: k}); err != nil {
		// Not queued, so it will not complete: it is this slot's failed I/O (the run fails).
		wk.completeIO(s, 0, fmt.Errorf("submit: %w", err), d.st.now())
		d.set(k, slotEnded)
		return
	}
	d.set(k, slotInFlight)
	d.inflight++
}

// reap waits for at least one completion and completes what came.
func (d *queueDriver) reap() {
	d.done = d.q.Reap(d.done[:0], 1)
	t1 := d.st.now()
	for _, c := range d.done {
		k := c.Tag
		if k < 0 || k >= len(d.slots) || d.state[k] != slotInFlight {
			d.st.fail(fmt.Errorf("job %d: queue returned a completion for tag %d, which is not in flight", d.job.id, k))
			continue
		}
		d.inflight--
		d.complete(k, c, t1)
	}
}

// complete is what a worker does after its I/O returns: record it, count the syncs it
// brings, pause.
func (d *queueDriver) complete(k int, c backends.Completion, t1 int64) {
	wk, s := d.slots[k], &d.io[k]
	d.set(k, slotEnded)
	if !wk.completeIO(s, c.N, c.Err, t1) {
		return
	}
	if fsync, fdatasync := wk.syncsDue(s.p); fsync || fdatasync {
		d.syncs = append(d.syncs, dueSync{slot: k, fsync: fsync, fdatasync: fdatasync})
	}
	end, ok := wk.pauseAfter()
	switch {
	case !ok:
	case end > 0:
		s.due = end
		d.set(k, slotPausing)
	default:
		d.set(k, slotIdle)
		d.idle = append(d.idle, k)
	}
}

// runSyncs runs the due syncs, nothing being in flight; each is timed into the statistics of
// the slot whose write made it due.
func (d *queueDriver) runSyncs() {
	for _, s := range d.syncs {
		if !d.slots[s.slot].runSyncs(s.fsync, s.fdatasync) {
			break
		}
	}
	d.syncs = d.syncs[:0]
}

// sleep waits, nothing being in flight, until due or the run's stop.
func (d *queueDriver) sleep(due int64) {
	st := d.st
	if now := st.now(); due > now && !st.stop.Load() {
		time.Sleep(min(time.Duration(due-now), 100*time.Millisecond))
	}
}

func (d *queueDriver) ended() bool {
	for _, s := range d.state {
		if s != slotEnded {
			return false
		}
	}
	return true
}

func (d *queueDriver) abandonAll() {
	for k, wk := range d.slots {
		if d.state[k] == slotPlanned {
			wk.abandon(&d.io[k])
		}
		if d.state[k] != slotInFlight {
			d.set(k, slotEnded)
		}
	}
}

func (d *queueDriver) close() {
	if err := d.q.Close(); err != nil {
		d.st.fail(fmt.Errorf("job %d: close queue: %w", d.job.id, err))
	}
}
