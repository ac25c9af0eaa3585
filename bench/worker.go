package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// worker is one of a job's iodepth I/O issuers. Everything on its hot path is its own.
type worker struct {
	st      *runState
	job     *job
	id      int // index among all workers of the run
	gen     *generator
	bufs    [2][]byte // read and write buffers, 4 KiB aligned for O_DIRECT
	cur     *interval
	nextB   int64 // run-relative ns at which the current interval ends
	verify  bool
	data    *writeData // what writes carry (buffers.go)
	seed    uint64
	obs     Observer
	limited [2]bool
	thinker thinker
	// progress counters, read by the monitor
	progIOs   [2]paddedInt64
	progBytes [2]paddedInt64
}

func newWorker(st *runState, j *job, id, slot int) *worker {
	w := st.w
	wk := &worker{
		st: st, job: j, id: id,
		verify: w.Verify != "",
		seed:   w.RandSeed + uint64(j.id)*0x9e3779b97f4a7c15,
		obs:    st.cfg.Observer,
	}
	wk.gen = newGenerator(j.spec, wk.seed, j.base, &j.pos)
	wk.thinker = newThinker(w.ThinkTime, w.ThinkTimeSpin, w.ThinkTimeBlocks)
	maxBS := j.spec.maxBlockSize()
	for d := range wk.bufs {
		wk.bufs[d] = alignedBuffer(int(maxBS))
		wk.limited[d] = j.limits[d] != nil
	}
	wk.data = newWriteData(st.data, wk.bufs[workloads.Write], wk.seed^uint64(slot+1), id)
	wk.cur = newInterval(0)
	wk.nextB = st.rampNS + st.intervalNS
	return wk
}

// alignedBuffer returns n bytes starting at a 4096-byte boundary.
func alignedBuffer(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := 0
	if r := int(uintptrOf(b) % align); r != 0 {
		off = align - r
	}
	return b[off : off+n : off+n]
}

// ioSlot is one I/O of a worker from its plan to its completion: what the worker's run loop
// and the queue driver (queue.go) both carry between planning, issuing and completing it.
type ioSlot struct {
	p       plan
	buf     []byte
	blk     int64  // verify block
	gen     uint32 // what the block holds once this I/O completes (verify)
	prevGen uint32 // what it holds until then
	held    bool   // the verify block is acquired
	paced   bool   // the rate limiter's slot is reserved (notBefore)
	due     int64  // run-relative ns before which the I/O must not be issued
	t0      int64  // submission time
}

func (wk *worker) run() {
	st := wk.st
	defer wk.finish()
	for !st.stop.Load() {
		var s ioSlot
		if !wk.plan(&s) {
			return
		}
		// Another worker may have this block in flight (a later pass over the region
		// reached it): wait for it rather than skip, so the job does every I/O of its
		// sequence. A worker holds one block at most and never waits while holding it.
		for wk.verify && !wk.acquire(&s) {
			if st.stop.Load() {
				return
			}
			runtime.Gosched()
		}
		if wk.limited[s.p.dir] {
			if !wk.reserveRate(&s) || !wk.pace(s.due) {
				wk.abandon(&s)
				return
			}
		}
		if !wk.issue(&s) {
			return
		}
		var err error
		var n int
		if s.p.dir == workloads.Read {
			n, err = wk.job.target.ReadAt(s.buf, s.p.off)
		} else {
			n, err = wk.job.target.WriteAt(s.buf, s.p.off)
		}
		if !wk.completeIO(&s, n, err, st.now()) {
			return
		}
		if fsync, fdatasync := wk.syncsDue(s.p); (fsync || fdatasync) && !wk.runSyncs(fsync, fdatasync) {
			return
		}
		if !wk.think() {
			return
		}
	}
}

// plan draws the job's next I/O into s: false when the job has done all it should.
func (wk *worker) plan(s *ioSlot) bool {
	st, j := wk.st, wk.job
	i := j.seq.Add(1) - 1
	if st.limitIOs > 0 && i >= st.limitIOs {
		return false
	}
	*s = ioSlot{p: wk.gen.next(i)}
	if st.limitBytes > 0 && !wk.budget(&s.p) {
		return false
	}
	if wk.verify {
		s.blk = (s.p.off - j.base) / j.blocks.bs
	}
	return true
}

// acquire takes the verify block of s without waiting: false when another I/O holds it.
func (wk *worker) acquire(s *ioSlot) bool {
	gen, ok := wk.job.blocks.acquire(s.blk)
	if ok {
		s.gen, s.prevGen, s.held = gen, gen, true
	}
	return ok
}

// abandon gives up s before it was issued: its verify block keeps what it held.
func (wk *worker) abandon(s *ioSlot) {
	if s.held {
		wk.job.blocks.release(s.blk, s.prevGen)
		s.held = false
	}
}

// reserveRate takes the rate limiter's next slot for s (s.due): false when it falls after
// the end of the run.
func (wk *worker) reserveRate(s *ioSlot) bool {
	st := wk.st
	s.due = wk.job.limits[s.p.dir].reserve(st.now(), s.p.n)
	s.paced = true
	return st.deadlineNS == 0 || s.due < st.deadlineNS
}

// issue fills s's buffer and stamps its submission time: false (s abandoned) when the
// deadline has passed.
func (wk *worker) issue(s *ioSlot) bool {
	st := wk.st
	s.buf = wk.bufs[s.p.dir][:s.p.n]
	if s.p.dir == workloads.Write {
		if wk.verify {
			s.gen = nextGen(s.gen)
		}
		// Verify block, scrambled or regenerated content (buffers.go).
		wk.data.prepare(s.buf, s.p.off, s.gen)
	}
	s.t0 = st.now()
	if st.deadlineNS > 0 && s.t0 >= st.deadlineNS {
		wk.abandon(s) // the write was never issued
		return false
	}
	return true
}

// completeIO records s, which returned n and err at t1: verify, statistics, the Observer,
// and the run's failure on an error (false).
func (wk *worker) completeIO(s *ioSlot, n int, err error, t1 int64) bool {
	if err == nil && n != len(s.buf) {
		err = io.ErrShortWrite
		if s.p.dir == workloads.Read {
			err = io.ErrUnexpectedEOF
		}
	}
	if s.held {
		wk.verifyIO(s.p, s.buf, s.blk, s.gen, err)
		s.held = false
	}
	wk.complete(s.p, s.t0, t1, err)
	if err != nil {
		wk.st.fail(fmt.Errorf("job %d: %s of %d bytes at offset %d: %w", wk.job.id, s.p.dir, s.p.n, s.p.off, err))
		return false
	}
	return true
}

// pace waits until due, the rate limiter's slot; false means the run ended while waiting.
func (wk *worker) pace(due int64) bool {
	st := wk.st
	for now := st.now(); due > now; now = st.now() {
		if st.stop.Load() {
			return false
		}
		time.Sleep(min(time.Duration(due-now), 100*time.Millisecond))
	}
	return true
}

func (wk *worker) verifyIO(p plan, buf []byte, blk int64, gen uint32, err error) {
	j := wk.job
	switch {
	case err != nil:
		// The block's content is unknown after a failed I/O: stop expecting a generation.
		if p.dir == workloads.Write {
			gen = 0
		}
	case p.dir == workloads.Read:
		checked, problem := wk.st.data.verify.check(buf, p.off, gen&^blockBusy)
		if checked {
			j.verify.checked.Add(1)
		}
		if problem != "" {
			j.verify.mismatch(j.id, p.off, problem)
		}
	}
	j.blocks.release(blk, gen)
}

// complete records one finished I/O.
func (wk *worker) complete(p plan, t0, t1 int64, err error) {
	st := wk.st
	wk.progIOs[p.dir].v.Add(1)
	wk.progBytes[p.dir].v.Add(p.n)
	if wk.obs != nil {
		wk.obs.Observe(Completion{Job: wk.job.id, Dir: p.dir, Bytes: int(p.n), Start: time.Duration(t0), End: time.Duration(t1), Err: err})
	}
	if err == nil {
		st.noteDone(t1)
	}
	// A success after the deadline is outside the measurement; a failure counts whenever it
	// comes (a target that stopped answering fails its I/Os only when closed under them).
	if t1 < st.rampNS || (err == nil && st.deadlineNS > 0 && t1 > st.deadlineNS) {
		return
	}
	if t1 >= wk.nextB {
		wk.flush(t1)
	}
	a := &wk.cur.dir[p.dir]
	if err != nil {
		a.errs++
		return
	}
	a.record(t1-t0, p.n)
}

// recordSync records one sync of fsync=N or fdatasync=N.
func (wk *worker) recordSync(t0, t1 int64, err error) {
	st := wk.st
	if t1 < st.rampNS || (st.deadlineNS > 0 && t1 > st.deadlineNS) {
		return
	}
	if t1 >= wk.nextB {
		wk.flush(t1)
	}
	a := &wk.cur.dir[syncIdx]
	if err != nil {
		a.errs++
		return
	}
	a.record(t1-t0, 0)
}

// flush hands the current interval to the collector and starts the one containing t.
func (wk *worker) flush(t int64) {
	st := wk.st
	idx := (t - st.rampNS) / st.intervalNS
	var iv *interval
	if !wk.cur.empty() {
		iv = wk.cur
		wk.cur = newInterval(idx)
	}
	wk.cur.idx = idx
	wk.nextB = st.rampNS + (idx+1)*st.intervalNS
	st.coll.reports <- report{worker: wk.id, iv: iv, watermark: idx}
}

func (wk *worker) finish() {
	var iv *interval
	if !wk.cur.empty() {
		iv = wk.cur
	} else {
		wk.cur.free()
	}
	wk.cur = nil
	wk.st.coll.reports <- report{worker: wk.id, iv: iv, watermark: math.MaxInt64, done: true}
}

// limiter paces one direction of one job: each I/O reserves the next slot of a schedule
// derived from rate (bytes/s) and rate_iops, so pacing error does not accumulate.
type limiter struct {
	nsPerByte float64
	nsPerIO   int64
	next      atomic.Int64
	// rate_process=poisson: exponentially distributed gaps (see poissonGap)
	poisson bool
	seed    uint64
	draws   atomic.Uint64
}

func newLimiter(rate, iops int64) *limiter {
	if rate <= 0 && iops <= 0 {
		return nil
	}
	l := &limiter{}
	if rate > 0 {
		l.nsPerByte = 1e9 / float64(rate)
	}
	if iops > 0 {
		l.nsPerIO = int64(1e9 / float64(iops))
	}
	return l
}

// maxBurst is how far a limiter may fall behind (after a stall) before it stops trying to
// catch up with a burst.
const maxBurst = int64(100 * time.Millisecond)

func (l *limiter) reserve(now, n int64) int64 {
	cost := max(int64(float64(n)*l.nsPerByte), l.nsPerIO)
	if l.poisson {
		cost = l.poissonGap(cost)
	}
	for {
		next := l.next.Load()
		slot := next
		if slot < now-maxBurst {
			slot = now - maxBurst
		}
		if l.next.CompareAndSwap(next, slot+cost) {
			return slot
		}
	}
}

// verifyPass reads back every block the run wrote, with iodepth readers per job, and
// checks them. It is not part of the measured statistics.
func verifyPass(ctx context.Context, jobs []*job) {
	var wg sync.WaitGroup
	for _, j := range jobs {
		for _, wk := range j.workers {
			wg.Add(1)
			go func() { defer wg.Done(); wk.verifyBlocks(ctx) }()
		}
	}
	wg.Wait()
}

func (wk *worker) verifyBlocks(ctx context.Context) {
	j, st := wk.job, wk.st
	m := j.blocks
	buf := wk.bufs[workloads.Read][:m.bs]
	stride := int64(len(j.workers))
	slot := int64(0)
	for i, other := range j.workers {
		if other == wk {
			slot = int64(i)
		}
	}
	for blk := slot; blk < int64(len(m.gen)); blk += stride {
		if ctx.Err() != nil {
			return
		}
		gen := m.gen[blk].Load() &^ blockBusy
		if gen == 0 {
			continue
		}
		off := j.base + blk*m.bs
		if _, err := j.target.ReadAt(buf, off); err != nil {
			st.fail(fmt.Errorf("job %d: verify read at offset %d: %w", j.id, off, err))
			return
		}
		j.verify.checked.Add(1)
		if _, problem := st.data.verify.check(buf, off, gen); problem != "" {
			j.verify.mismatch(j.id, off, problem)
		}
	}
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
