package initiator

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Queue keeps SCSI commands in flight on a Session for one goroutine, the way fio's
// asynchronous engines and libiscsi's event loop do: Submit queues a command without waiting
// for it, Reap waits for completions. The goroutine in Reap reads the socket itself when
// nobody else does (it takes the read token, as a synchronous caller waiting for its response
// does): the responses to its own commands go to its completion list without waking anyone,
// and responses to the commands of other goroutines (Execute and the calls built on it, on
// the same Session) are handed to them as usual. Commands submitted between two Reaps are
// written with one sendmsg when the next Reap begins (fio's commit).
//
// A Queue is used by one goroutine at a time. Its commands progress while that goroutine is
// in Reap (or while someone else reads): a caller that submits and does not reap within the
// session's Timeout fails the session, as an unanswered command would.
type Queue struct {
	s *Session

	// handoff picks a blocked reaper as it picks a blocked caller.
	waiter

	// Filled by the read token's holder, emptied by the reaper.
	mu         sync.Mutex
	events     []queueEvent
	spare      []queueEvent
	parked     bool // the reaper is blocked on notify
	wantWindow bool // ... and holds commands back until the command window opens
	notify     chan struct{}
	nfinal     atomic.Int32 // final events in events
	nr2t       atomic.Int32 // R2T events in events

	// The reaper's own.
	inflight int     // submitted, not yet reaped
	held     []*task // waiting for the command window, in submission order
	heldMax  uint32  // the MaxCmdSN that closed the window for held
	want     int     // completions the reaper waits for, while it reads
	closed   bool
}

type queueEvent struct {
	t  *task
	ev event
}

// Command is one SCSI command for a Queue.
type Command struct {
	LUN uint64
	// CDB is the command descriptor block, zero-padded to 16 bytes (as the SCSI Command PDU
	// carries it; the target knows the length from the operation code).
	CDB [16]byte
	// Buf is read into (Write false) or written from; the caller leaves it alone until the
	// command completes.
	Buf   []byte
	Write bool
	// Tag is the caller's: the Completion carries it back.
	Tag int
}

// Completion is one finished Command.
type Completion struct {
	Tag int
	// N and Err are what Read16 or Write16 would have said: N = len(Buf) or an error (a
	// *SCSIError, a *CommandError wrapping the session's error, a short transfer).
	N   int
	Err error
}

// ErrQueueClosed is the error of Submit after Close.
var ErrQueueClosed = errors.New("iscsi: queue closed")

// NewQueue returns a Queue on s. Several queues (each with its goroutine) may share a session.
func (s *Session) NewQueue() (*Queue, error) {
	q := &Queue{s: s, waiter: newWaiter(), notify: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drained || s.Err() != nil {
		return nil, s.failErr
	}
	s.queues = append(s.queues, q)
	return q, nil
}

// Read16 submits READ(16) of blocks blocks at lba into buf (blocks × block size bytes).
func (q *Queue) Read16(lun, lba uint64, blocks uint32, buf []byte, tag int) error {
	return q.Submit(Command{LUN: lun, CDB: rw16(opRead16, lba, blocks), Buf: buf, Tag: tag})
}

// Write16 submits WRITE(16) of buf (blocks × block size bytes) at lba, with FUA if fua (see
// Session.Write16FUA).
func (q *Queue) Write16(lun, lba uint64, blocks uint32, buf []byte, fua bool, tag int) error {
	cdb := rw16(opWrite16, lba, blocks)
	if fua {
		cdb[1] |= cdbFUA
	}
	return q.Submit(Command{LUN: lun, CDB: cdb, Buf: buf, Write: true, Tag: tag})
}

// Submit queues c. It does not wait: the command is sent at the next Reap at the latest, or
// later if the target's command window is full. An error means that c was not queued (the
// queue is closed, the session failed); a command queued when the session fails completes
// with the session's error.
func (q *Queue) Submit(c Command) error {
	if q.closed {
		return ErrQueueClosed
	}
	s := q.s
	t, err := s.acquire(kindCommand, s.cfg.Timeout, c.CDB[:])
	if err != nil {
		return &CommandError{Cmd: describeCDB(c.CDB[:]), Err: err}
	}
	// Set under the mutex lookup takes (see Execute).
	s.mu.Lock()
	t.lun, t.lunID = encodeLUN(c.LUN), c.LUN
	t.buf = c.Buf
	t.write = c.Write && len(c.Buf) > 0
	t.q, t.tag = q, c.Tag
	s.nqueued.Add(1)
	s.mu.Unlock()
	t.held, t.sendErr = false, nil
	s.build(t, t.cdb[:])
	q.inflight++
	if len(q.held) == 0 {
		sent, mx, err := s.enqueue(t.hdr[:], t.segs)
		if sent || err != nil {
			// On error the session failed: the drain completes the task with its error.
			return nil
		}
		q.heldMax = mx
	}
	t.held = true
	q.held = append(q.held, t)
	return nil
}

// enqueue gives the command PDU hdr (segs) its CmdSN and queues it for the next flush,
// unless the command window is full (sent false, with the MaxCmdSN that closed it).
func (s *Session) enqueue(hdr []byte, segs [][]byte) (sent bool, maxCmdSN uint32, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.failed:
		return false, 0, s.failErr
	default:
	}
	mx := s.maxCmdSN.Load()
	if !serialLessEq(s.cmdSN, mx) {
		return false, mx, nil
	}
	s.stampLocked(hdr, true)
	s.cmdSN++
	s.pending = append(s.pending, segs...)
	return true, mx, nil
}

// commit writes what enqueue queued, unless a flush in progress (or a reader's collection,
// see readUntil) writes it anyway.
func (s *Session) commit() {
	s.wmu.Lock()
	if s.flushing || s.collecting || len(s.pending) == 0 {
		s.wmu.Unlock()
		return
	}
	_, err := s.flushLocked(false)
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("iscsi: send to target: %w", err))
	}
}

// sendHeld queues the held commands that the command window now admits.
func (q *Queue) sendHeld() {
	for len(q.held) > 0 {
		t := q.held[0]
		sent, mx, err := q.s.enqueue(t.hdr[:], t.segs)
		if err != nil {
			// The drain completes every held task with the session's error.
			for _, t := range q.held {
				t.held = false
			}
			clear(q.held)
			q.held = q.held[:0]
			return
		}
		if !sent {
			q.heldMax = mx
			return
		}
		t.held = false
		q.held = append(q.held[:0], q.held[1:]...)
	}
}

// post gives the queue an event of one of its tasks; it reports whether it woke the reaper.
// Called by the read token's holder (or the drain).
func (q *Queue) post(t *task, ev event) bool {
	q.mu.Lock()
	q.events = append(q.events, queueEvent{t, ev})
	if ev.final {
		q.nfinal.Add(1)
	} else {
		q.nr2t.Add(1)
	}
	wake := q.parked
	if wake {
		q.parked = false
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
	return wake
}

// ready tells the reaper reading on its own behalf (readUntil) to stop: an R2T is to be
// answered, the window opened for held commands, or enough commands completed and the next
// read would block (what is buffered is dispatched first: one Reap takes it all).
func (q *Queue) ready() bool {
	if q.nr2t.Load() > 0 {
		return true
	}
	if len(q.held) > 0 && q.s.maxCmdSN.Load() != q.heldMax {
		return true
	}
	return int(q.nfinal.Load()) >= q.want && (q.s.br == nil || q.s.br.Buffered() < bhsLen)
}

// wakeWindowReapers wakes the reapers blocked with commands held back by the command window,
// which has just opened.
func (s *Session) wakeWindowReapers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range s.queues {
		q.mu.Lock()
		if q.parked && q.wantWindow {
			q.parked = false
			select {
			case q.notify <- struct{}{}:
			default:
			}
		}
		q.mu.Unlock()
	}
}

// Reap sends what was submitted since the last Reap, then waits until at least atLeast commands
// have completed since then (fewer if fewer are in flight) and appends every completion it
// has to dst. Every submitted command completes exactly once: with the session's error if it
// fails, which happens within Timeout of a target that stops answering.
func (q *Queue) Reap(dst []Completion, atLeast int) []Completion {
	s := q.s
	got := 0
	owe := false // we were kicked to read and have not: pass it on if we leave
	for {
		q.sendHeld()
		s.commit()
		n := len(dst)
		dst = q.collect(dst)
		got += len(dst) - n
		if got >= atLeast || q.inflight == 0 {
			break
		}
		q.want = min(atLeast-got, q.inflight)
		s.mu.Lock()
		q.waiting = true
		s.nwaiting.Add(1)
		s.mu.Unlock()
		owe = false
		if s.rtoken.TryLock() {
			q.s.unwait(&q.waiter)
			if s.readUntil(nil, q) {
				s.rtoken.Unlock()
				s.handoff()
			}
			continue
		}
		// Park unless something arrived meanwhile. A reaper waiting for the window announces
		// it before it looks at MaxCmdSN, which the reader stores before it looks at
		// windowReapers: one of the two sees the other.
		q.mu.Lock()
		q.parked = true
		if len(q.held) > 0 {
			q.wantWindow = true
			s.windowReapers.Add(1)
		}
		park := len(q.events) == 0 && (len(q.held) == 0 || s.maxCmdSN.Load() == q.heldMax)
		q.mu.Unlock()
		if park {
			select {
			case <-q.notify:
			case <-q.kick:
			}
		}
		q.mu.Lock()
		q.parked = false
		if q.wantWindow {
			q.wantWindow = false
			s.windowReapers.Add(-1)
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		default:
		}
		owe = q.s.unwait(&q.waiter)
	}
	if owe {
		s.handoff()
	}
	return dst
}

// collect takes the posted events: it answers R2Ts and appends completions to dst.
func (q *Queue) collect(dst []Completion) []Completion {
	q.mu.Lock()
	evs := q.events
	q.events = q.spare[:0]
	q.nfinal.Store(0)
	q.nr2t.Store(0)
	q.mu.Unlock()
	for _, e := range evs {
		t := e.t
		if !e.ev.final {
			if t.sendErr == nil {
				t.sendErr = q.s.sendData(t, e.ev.ttt, e.ev.offset, e.ev.length)
			}
			t.r2ts.Add(-1)
			continue
		}
		dst = append(dst, q.finish(t, e.ev))
		q.inflight--
	}
	clear(evs)
	q.spare = evs[:0]
	return dst
}

// finish turns a task's final event into its Completion and releases the task. A command
// that Execute's callers would retry (UNIT ATTENTION, BUSY, TASK SET FULL: rare, after login
// or under overload) is retried here synchronously.
func (q *Queue) finish(t *task, ev event) Completion {
	s := q.s
	if t.held {
		// Failed by the drain before it was sent.
		for i, h := range q.held {
			if h == t {
				q.held = append(q.held[:i], q.held[i+1:]...)
				break
			}
		}
		t.held = false
	}
	c := Completion{Tag: t.tag}
	err := ev.err
	if err == nil {
		err = t.sendErr
	}
	if err != nil {
		c.Err = &CommandError{Cmd: describeCDB(t.cdb[:]), Err: err}
		s.release(t)
		return c
	}
	res, err := s.result(t)
	if err != nil && retryable(err) {
		res, err = s.retry(t.lunID, t.cdb, t.buf, t.write)
	}
	if err == nil && res.N != len(t.buf) {
		err = fmt.Errorf("iscsi: %s: short transfer, %d of %d bytes", describeCDB(t.cdb[:]), res.N, len(t.buf))
	}
	s.release(t)
	if err != nil {
		c.Err = err
		return c
	}
	c.N = res.N
	return c
}

// retryable tells the SCSI errors that Execute's callers retry (see Session.run). Apart from
// finish, so that the completion path allocates nothing (errors.As's target escapes).
func retryable(err error) bool {
	var se *SCSIError
	return errors.As(err, &se) && (se.UnitAttention() || se.Status == StatusBusy || se.Status == StatusTaskSetFull)
}

// retry runs a command again as Execute's callers do (cdb is a copy: the task may be reused
// meanwhile).
func (s *Session) retry(lun uint64, cdb [16]byte, buf []byte, write bool) (Result, error) {
	return s.run(lun, cdb[:], buf, write)
}

// Close waits for the queue's commands to complete (within the session's Timeout) and
// releases the queue; the session stays open.
func (q *Queue) Close() error {
	if q.closed {
		return nil
	}
	var failed error
	var buf []Completion
	for q.inflight > 0 {
		buf = q.Reap(buf[:0], q.inflight)
		for _, c := range buf {
			if c.Err != nil && failed == nil {
				failed = c.Err
			}
		}
	}
	q.closed = true
	s := q.s
	s.mu.Lock()
	for i, o := range s.queues {
		if o == q {
			s.queues = append(s.queues[:i], s.queues[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if failed != nil {
		return fmt.Errorf("iscsi: closing a queue with commands in flight: %w", failed)
	}
	return nil
}
