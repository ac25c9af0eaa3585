package initiator

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/schedyield"
	"github.com/vmstorbench/vmstorbench/internal/socktransport"
)

// Config says how to reach and log in to one target.
type Config struct {
	// Addr is host:port of the target portal.
	Addr string
	// TargetName is the target's iSCSI name (iqn....).
	TargetName string
	// InitiatorName is our iSCSI name.
	InitiatorName string
	// CHAPUser and CHAPSecret enable one-way CHAP (MD5). Empty user: AuthMethod=None.
	CHAPUser   string
	CHAPSecret string
	// HeaderDigest and DataDigest ask for CRC32C digests; login fails if the target refuses.
	HeaderDigest bool
	DataDigest   bool
	// Timeout bounds every command, and the login if ctx has no earlier deadline. When it
	// expires the session ends and every command in flight fails. Zero means 30 s.
	Timeout time.Duration
	// PingInterval is how long the connection may be silent before a NOP-Out ping checks that
	// the target is alive (the ping is answered within Timeout or the session ends). Zero means
	// 5 s, at most Timeout.
	PingInterval time.Duration
	// Dial opens the TCP connection; nil uses a net.Dialer bounded by ctx.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

// ErrSessionClosed is the error of commands issued after Close.
var ErrSessionClosed = errors.New("iscsi: session closed")

// TimeoutError is a command the target did not complete within Config.Timeout.
type TimeoutError struct {
	Op    string
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("iscsi: no response from target within %v to %s (target hung or unreachable); session closed", e.Limit, e.Op)
}

// Timeout marks the error as a timeout for net.Error-style checks.
func (e *TimeoutError) Timeout() bool { return true }

// maxSlots bounds the commands in flight on one session (ITTs carry the slot in 16 bits).
const maxSlots = 4096

// readBufferSize is the reader's buffer: small responses of many commands arrive in one read,
// large Data-In segments bypass it.
const readBufferSize = 64 << 10

// Session is one logged-in iSCSI session over one TCP connection. Its methods are safe for
// concurrent use: each command is tagged with its own ITT, and the commands of many callers
// are in flight at once within the target's command window.
//
// Reading is done by the callers themselves, one at a time (leader/follower): a caller that
// waits for its response takes the read token if it is free and reads and dispatches PDUs,
// for itself and for others, until its own response is in; then it hands the token to another
// waiting caller. A lone command thus never passes through another goroutine, and with many
// in flight one reader serves them all, as a dedicated reader goroutine would. When commands
// are in flight but no caller is waiting (they are all busy sending), a background goroutine
// holds the token instead, so that the socket is always read while anything is outstanding:
// a target blocked sending to us must never block our sends in turn. PDUs from many callers
// are written to the socket in batches (one sendmsg for what queued up meanwhile).
type Session struct {
	cfg    Config
	tr     socktransport.Transport
	params Params

	// Writer state. Commands get their CmdSN and enter the send queue under wmu, so they reach
	// the wire in CmdSN order; whoever finds no flush in progress becomes the flusher and
	// writes everything queued meanwhile with one sendmsg.
	wmu           sync.Mutex
	wcond         sync.Cond // window opened, flush ended, or session failed
	cmdSN         uint32
	pending       [][]byte
	spare         [][]byte
	flushing      bool
	collecting    bool // the reader yields to owners it woke and flushes after them
	idleWaiters   int  // goroutines waiting for the flush to end (guarded by wmu)
	windowWaiters atomic.Int32

	expStatSN atomic.Uint32
	expCmdSN  atomic.Uint32
	maxCmdSN  atomic.Uint32

	// Task table, indexed by the low 16 bits of the ITT.
	mu       sync.Mutex
	slots    []*task
	free     []int
	drained  bool         // the session failed and every task was told: no new tasks
	nwaiting atomic.Int32 // tasks whose owner is blocked in wait, and reapers blocked in Reap (changed under mu)
	nactive  atomic.Int32 // tasks in flight (changed under mu)
	nqueued  atomic.Int32 // of which tasks of a Queue (changed under mu)
	queues   []*Queue     // open queues (guarded by mu)
	// Reapers blocked until the command window opens for the commands they hold back.
	windowReapers atomic.Int32
	bgKick        chan struct{}
	bgStop        chan struct{}
	bgDone        chan struct{}

	// The read token: its holder reads the socket and dispatches PDUs.
	rtoken  sync.Mutex
	rd      pduReader          // token holder only
	br      buffered           // the reader under rd, to see whether the next read would block
	woke    int                // token holder only: owners woken since the last socket read
	rhdr    header             // token holder only: the header being dispatched
	scratch []byte             // token holder only: data segments we do not keep
	yielder schedyield.Yielder // token holder only (see readUntil)
	blocked func()             // writerBlocked, bound once (a method value allocates)
	// The flusher is blocked writing: a reader is needed even if only the commands of queues
	// whose reapers are away are in flight (see handoff).
	writeBlocked atomic.Bool

	failOnce  sync.Once
	failErr   error
	failed    chan struct{} // closed by fail
	drainOnce sync.Once
	watchDone chan struct{}
	closing   atomic.Bool

	now          atomic.Int64 // coarse clock for deadlines (UnixNano), advanced by the watchdog
	rxCount      atomic.Uint64
	pinging      atomic.Bool
	tick         time.Duration
	pingInterval time.Duration
}

type taskKind uint8

const (
	kindCommand taskKind = iota
	kindPing
	kindLogout
)

// task is one command in flight. Tasks are owned by table slots and reused: a task is
// active from acquire until the reader completes it, and free again after release.
type task struct {
	slot     int
	gen      uint16
	itt      uint32
	kind     taskKind
	active   bool     // guarded by Session.mu
	deadline int64    // UnixNano, guarded by Session.mu
	cdb      [16]byte // guarded by Session.mu (the watchdog names overdue commands)
	lun      [8]byte
	buf      []byte
	write    bool
	ev       chan event
	waiter   // its owner, blocked in wait for an event or the read token

	// A task of a Queue: the reader posts its events to q instead of ev (set under
	// Session.mu before the command is sent), and the queue's reaper owns the rest.
	q       *Queue
	tag     int
	lunID   uint64
	held    bool         // not sent yet: the command window was closed
	sendErr error        // a Data-Out for an R2T could not be sent
	r2ts    atomic.Int32 // R2Ts posted to q and not yet answered

	// Set by the reader before it sends the final event.
	status   byte
	response byte
	flags    byte
	residual uint32
	received int
	senseLen int
	sense    [96]byte

	// Sender side, reused between commands.
	hdr     [bhsLen + digestLen]byte
	scratch []byte
	segs    [][]byte
}

// event is what the reader tells the task's owner: an R2T or the end of the command.
type event struct {
	final  bool
	err    error
	ttt    uint32
	offset uint32
	length uint32
}

// Dial connects to cfg.Addr, logs in and returns a session in the full feature phase. ctx
// bounds the connection and the login.
func Dial(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.TargetName == "" {
		return nil, errors.New("iscsi: no target name")
	}
	if cfg.InitiatorName == "" {
		return nil, errors.New("iscsi: no initiator name")
	}
	if cfg.CHAPUser != "" && cfg.CHAPSecret == "" {
		return nil, fmt.Errorf("iscsi: CHAP user %q has no secret", cfg.CHAPUser)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 5 * time.Second
	}
	cfg.PingInterval = min(cfg.PingInterval, cfg.Timeout)
	dial := cfg.Dial
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
	}
	conn, err := dial(ctx, cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("iscsi: connect %s: %w", cfg.Addr, err)
	}
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	var isid [6]byte
	_, _ = rand.Read(isid[1:])
	isid[0] = 0x80 // ISID type "random" (RFC 7143 §11.12.5)
	br := bufio.NewReaderSize(conn, readBufferSize)
	l := newLoginConn(conn, br, &cfg, isid)
	err = l.login()
	if !stop() || ctx.Err() != nil {
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("iscsi: login to %s at %s: %w (%v)", cfg.TargetName, cfg.Addr, ctx.Err(), err)
		}
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	tr := socktransport.New(conn)
	var r io.Reader = tr
	early := br.Buffered()
	if early > 0 {
		// Bytes the login's reader took past the last Login Response belong to the session.
		b, _ := br.Peek(early)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(b)), tr)
	}
	sbr := bufio.NewReaderSize(r, readBufferSize)
	s := newSession(tr, sbr, cfg, l.params)
	if early == 0 {
		s.rd.buffered, s.rd.direct = sbr, tr
	}
	s.expStatSN.Store(l.expStatSN)
	s.expCmdSN.Store(l.expCmdSN)
	s.maxCmdSN.Store(l.maxCmdSN)
	s.cmdSN = l.expCmdSN
	go s.watchdog()
	go s.background()
	return s, nil
}

// newSession builds a session on a transport in the full feature phase, reading from r.
func newSession(tr socktransport.Transport, r io.Reader, cfg Config, p Params) *Session {
	s := &Session{
		cfg:          cfg,
		tr:           tr,
		params:       p,
		failed:       make(chan struct{}),
		watchDone:    make(chan struct{}),
		bgKick:       make(chan struct{}, 1),
		bgStop:       make(chan struct{}),
		bgDone:       make(chan struct{}),
		pingInterval: cfg.PingInterval,
		tick:         min(max(cfg.Timeout/8, 10*time.Millisecond), 500*time.Millisecond),
	}
	s.wcond.L = &s.wmu
	s.blocked = s.writerBlocked
	s.rd = pduReader{r: r, hdrDigest: p.HeaderDigest, dataDigest: p.DataDigest, maxData: p.MaxRecvDataSegmentLength}
	s.br, _ = r.(buffered)
	s.scratch = make([]byte, p.MaxRecvDataSegmentLength)
	s.now.Store(time.Now().UnixNano())
	return s
}

// Params returns the negotiated session parameters.
func (s *Session) Params() Params { return s.params }

// Err returns the error that ended the session, or nil while it is usable.
func (s *Session) Err() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
		return nil
	}
}

// fail ends the session with err (the first error wins): the socket is shut down, which
// ends a blocked read or write; the read token's next holder then fails every task in flight
// (drain). A waiter is kicked in case nobody holds the token.
func (s *Session) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		close(s.failed)
		s.tr.Shutdown()
		s.wmu.Lock()
		s.wcond.Broadcast()
		s.wmu.Unlock()
		s.handoff()
	})
}

// drain runs once, by the read token's holder, after the session failed: it waits until no
// flush is reading a caller's buffer, gives every task in flight its final event, refuses new
// tasks and releases the socket.
func (s *Session) drain() {
	s.drainOnce.Do(func() {
		s.wmu.Lock()
		for s.flushing {
			s.idleWaiters++
			s.wcond.Wait()
			s.idleWaiters--
		}
		clear(s.pending)
		s.pending = s.pending[:0]
		s.wmu.Unlock()
		s.mu.Lock()
		s.drained = true
		var live []*task
		for _, t := range s.slots {
			if t.active {
				t.active = false
				live = append(live, t)
			}
		}
		s.nactive.Store(0)
		s.nqueued.Store(0)
		s.mu.Unlock()
		for _, t := range live {
			s.deliver(t, event{final: true, err: s.failErr})
		}
		_ = s.tr.Close()
	})
}

// Close logs out (bounded by Timeout, at most 5 s) and closes the connection.
func (s *Session) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		<-s.watchDone
		<-s.bgDone
		return nil
	}
	var err error
	if s.Err() == nil {
		err = s.logout()
	}
	s.fail(ErrSessionClosed)
	s.rtoken.Lock()
	s.drain()
	s.rtoken.Unlock()
	close(s.bgStop)
	<-s.watchDone
	<-s.bgDone
	return err
}

// acquire registers a new task with a fresh ITT and a deadline.
func (s *Session) acquire(kind taskKind, timeout time.Duration, cdb []byte) (*task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drained || s.Err() != nil {
		return nil, s.failErr
	}
	var t *task
	if n := len(s.free); n > 0 {
		t = s.slots[s.free[n-1]]
		s.free = s.free[:n-1]
	} else {
		if len(s.slots) >= maxSlots {
			return nil, fmt.Errorf("iscsi: more than %d commands in flight on one session", maxSlots)
		}
		t = &task{slot: len(s.slots), ev: make(chan event, s.params.MaxOutstandingR2T+1), waiter: newWaiter()}
		s.slots = append(s.slots, t)
	}
	t.gen++
	t.itt = uint32(t.gen)<<16 | uint32(t.slot)
	t.kind = kind
	t.active = true
	t.q = nil
	s.nactive.Add(1)
	t.deadline = s.now.Load() + int64(timeout)
	t.cdb = [16]byte{}
	copy(t.cdb[:], cdb)
	t.status, t.response, t.flags, t.residual, t.received, t.senseLen = 0, 0, 0, 0, 0, 0
	t.scratch = t.scratch[:0]
	return t, nil
}

// release returns a completed task's slot.
func (s *Session) release(t *task) {
	s.mu.Lock()
	t.buf = nil
	clear(t.segs)
	t.segs = t.segs[:0]
	s.free = append(s.free, t.slot)
	s.mu.Unlock()
}

// lookup finds the active task with itt.
func (s *Session) lookup(itt uint32) *task {
	slot := int(itt & 0xffff)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot < len(s.slots) {
		if t := s.slots[slot]; t.active && t.itt == itt {
			return t
		}
	}
	return nil
}

// complete ends an active task: its owner receives the final event.
func (s *Session) complete(t *task, err error) {
	s.mu.Lock()
	was := t.active
	t.active = false
	if was {
		s.nactive.Add(-1)
		if t.q != nil {
			s.nqueued.Add(-1)
		}
	}
	s.mu.Unlock()
	if was {
		s.deliver(t, event{final: true, err: err})
	}
}

// deliver gives ev to t's owner: on its channel, or to its queue, which wakes the reaper only
// if it is blocked (a reaper that reads for itself is told nothing).
func (s *Session) deliver(t *task, ev event) {
	if t.q != nil {
		if t.q.post(t, ev) {
			s.woke++
		}
		return
	}
	t.ev <- ev
	s.woke++
}

// send queues PDU segments and writes them unless another goroutine is writing already (it
// will write ours too). cmd assigns the next CmdSN, waiting for the target's command window;
// immediate PDUs carry the current CmdSN without advancing it. hdr is the PDU header whose
// CmdSN/ExpStatSN (and header digest) are filled in here; it is segs[0].
func (s *Session) send(hdr []byte, cmd, immediate bool, segs [][]byte) error {
	s.wmu.Lock()
	for {
		select {
		case <-s.failed:
			s.wmu.Unlock()
			return s.failErr
		default:
		}
		if !cmd {
			break
		}
		// Announce the wait before looking at the window so that the reader, which updates
		// maxCmdSN and then looks at windowWaiters, cannot miss us.
		s.windowWaiters.Add(1)
		if serialLessEq(s.cmdSN, s.maxCmdSN.Load()) {
			s.windowWaiters.Add(-1)
			break
		}
		if s.nqueued.Load() > 0 {
			// The window may be full of a queue's commands whose reaper is away: make sure
			// someone reads (handoff counts us among those who need a reader).
			s.kickBackground()
		}
		s.wcond.Wait()
		s.windowWaiters.Add(-1)
	}
	s.stampLocked(hdr, cmd || immediate)
	if cmd {
		s.cmdSN++
	}
	s.pending = append(s.pending, segs...)
	if s.flushing || s.collecting {
		// The flusher writes ours too; or the reader is letting the owners it woke send their
		// next commands and writes them all at once when they are done.
		s.wmu.Unlock()
		return nil
	}
	_, err := s.flushLocked(false)
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("iscsi: send to target: %w", err))
		return s.failErr
	}
	return nil
}

// stampLocked fills in the CmdSN (if withCmdSN), ExpStatSN and header digest of hdr (nil:
// no header). wmu is held.
func (s *Session) stampLocked(hdr []byte, withCmdSN bool) {
	if hdr == nil {
		return
	}
	h := (*header)(hdr[:bhsLen])
	if withCmdSN {
		h.put32(24, s.cmdSN)
	}
	h.put32(28, s.expStatSN.Load())
	if s.params.HeaderDigest {
		putDigest(hdr[bhsLen:], crc32c(hdr[:bhsLen]))
	}
}

// flushLocked writes the queued PDUs, including any queued while it writes. wmu is held on
// entry and exit (not while writing); no flush may be in progress. A caller holding the read
// token says so (holder): it must not block on a full socket, because the target may be
// blocked writing to us and only a reader can unblock it; so it writes what fits, and if
// that is not all, it gives the token up before it waits (held reports whether it still has
// it). Anyone else who has to wait makes sure that a reader exists.
func (s *Session) flushLocked(holder bool) (held bool, err error) {
	held = holder
	s.flushing = true
	for len(s.pending) > 0 {
		batch := s.pending
		s.pending = s.spare[:0]
		s.wmu.Unlock()
		rest := batch
		if held {
			if rest, err = s.tr.TryWrite(batch); err == nil && len(rest) > 0 {
				held = false
				s.rtoken.Unlock()
				s.handoff()
			}
		}
		if err == nil && len(rest) > 0 {
			err = s.tr.WriteBuffers(rest, s.blocked)
			s.writeBlocked.Store(false)
		}
		clear(batch) // drop references to callers' buffers
		s.wmu.Lock()
		s.spare = batch[:0]
		if err != nil {
			clear(s.pending)
			s.pending = s.pending[:0]
			break
		}
	}
	s.flushing = false
	if s.idleWaiters > 0 {
		s.wcond.Broadcast()
	}
	return held, err
}

// flushCollected writes what the owners woken by the reader (the read token's holder) queued
// while it yielded, and reports whether the reader still holds the token.
func (s *Session) flushCollected() bool {
	s.wmu.Lock()
	s.collecting = false
	if s.flushing || len(s.pending) == 0 {
		s.wmu.Unlock()
		return true
	}
	held, err := s.flushLocked(true)
	s.wmu.Unlock()
	if err != nil {
		s.fail(fmt.Errorf("iscsi: send to target: %w", err))
	}
	return held
}

// wait blocks until t has an event (an R2T or its end) and returns it. A waiter reads the
// socket itself when nobody else does (see Session).
func (s *Session) wait(t *task) event {
	owe := false // we were kicked to read and have not tried yet: pass it on if we leave
	for {
		select {
		case ev := <-t.ev:
			if owe {
				s.handoff()
			}
			return ev
		default:
		}
		s.mu.Lock()
		t.waiting = true
		s.nwaiting.Add(1)
		s.mu.Unlock()
		got := s.rtoken.TryLock()
		// Either we read now, or the holder hands the token on when it is done.
		owe = false
		if got {
			s.unwait(&t.waiter)
			if s.readUntil(t, nil) {
				s.rtoken.Unlock()
				s.handoff()
			}
			continue
		}
		select {
		case ev := <-t.ev:
			if s.unwait(&t.waiter) {
				s.handoff() // we were chosen to read but do not need to: pass it on
			}
			return ev
		case <-t.kick:
			s.unwait(&t.waiter)
			owe = true
		}
	}
}

// waiter is a goroutine that may block for the read token: a synchronous caller (a task's
// owner) or a Queue's reaper. handoff picks one and kicks it.
type waiter struct {
	kick    chan struct{} // "the read token is yours": sent by handoff
	waiting bool          // guarded by Session.mu: blocked
	kicked  bool          // guarded by Session.mu: a kick was sent and not yet taken
}

func newWaiter() waiter { return waiter{kick: make(chan struct{}, 1)} }

// give kicks w: the read token is its. Called with Session.mu held.
func (w *waiter) give() {
	w.kicked = true
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// unwait marks w as no longer blocked and reports whether it had been kicked.
func (s *Session) unwait(w *waiter) bool {
	s.mu.Lock()
	w.waiting = false
	s.nwaiting.Add(-1)
	k := w.kicked
	w.kicked = false
	s.mu.Unlock()
	select {
	case <-w.kick:
	default:
	}
	return k
}

// handoff passes the read token on after its holder released it: to one blocked waiter or
// reaper (unless one was chosen already), else to the background reader if commands are in
// flight whose owners wait for them. The commands of a Queue whose reaper is not in Reap are
// left to its next Reap (as libiscsi's and fio's event loops leave them until they look),
// rather than have the background reader take them and then hand each over.
func (s *Session) handoff() {
	s.mu.Lock()
	if s.nwaiting.Load() == 0 {
		active := s.nactive.Load()
		need := active > s.nqueued.Load() || active > 0 && (s.writeBlocked.Load() || s.windowWaiters.Load() > 0)
		s.mu.Unlock()
		if need {
			s.kickBackground()
		}
		return
	}
	defer s.mu.Unlock()
	// A blocked reaper first, then a blocked caller; none if one was kicked already.
	var pick *waiter
	kickedAlready := func(w *waiter) bool {
		if w.waiting && pick == nil && !w.kicked {
			pick = w
		}
		return w.waiting && w.kicked
	}
	for _, q := range s.queues {
		if kickedAlready(&q.waiter) {
			return
		}
	}
	for _, t := range s.slots {
		if kickedAlready(&t.waiter) {
			return
		}
	}
	if pick != nil {
		pick.give()
	}
}

// writerBlocked is called by a flush about to block: someone must read meanwhile.
func (s *Session) writerBlocked() {
	s.writeBlocked.Store(true)
	s.kickBackground()
}

func (s *Session) kickBackground() {
	select {
	case s.bgKick <- struct{}{}:
	default:
	}
}

// background is the reader of last resort: kicked by handoff when commands are in flight and
// no caller waits, or by a write that would block, it reads while that lasts.
func (s *Session) background() {
	defer close(s.bgDone)
	for {
		select {
		case <-s.bgKick:
		case <-s.bgStop:
			return
		}
		if !s.rtoken.TryLock() {
			continue // the holder hands off when it is done
		}
		if s.readUntil(nil, nil) {
			s.rtoken.Unlock()
			s.handoff()
		}
	}
}

// readUntil reads and dispatches PDUs until t has an event waiting (q != nil, a reaper: until
// q is ready, see Queue.ready; both nil, the background reader: until no command is in flight
// or a caller waits to read), or the session fails, in which case it drains. The caller holds
// the read token, and still does on return unless held is false (it gave the token up before
// a write that would block).
func (s *Session) readUntil(t *task, q *Queue) (held bool) {
	h := &s.rhdr
	s.woke = 0
	// A caller that reads its own responses one command at a time never parks; without a
	// yield now and then, Go's sysmon preempts it mid-read (~1.5x the CPU per 4 KiB read at
	// queue depth 1; see package schedyield).
	s.yielder.Maybe()
	for {
		if s.Err() != nil {
			s.drain()
			return true
		}
		if t != nil {
			if len(t.ev) > 0 {
				return true
			}
		} else if q != nil {
			if q.ready() {
				return true
			}
		} else if s.nactive.Load() == 0 || s.nwaiting.Load() > 0 {
			return true
		}
		if s.woke > 0 && (s.br == nil || s.br.Buffered() < bhsLen) {
			// The next read blocks, and owners we woke are runnable, queued on our P (which a
			// blocked read keeps): let them run first, here, rather than wait for another
			// thread to steal them. They queue their next commands, which we write with one
			// sendmsg, and then we read again: an event loop on one thread, as libiscsi's.
			s.woke = 0
			s.wmu.Lock()
			s.collecting = true
			s.wmu.Unlock()
			runtime.Gosched()
			if !s.flushCollected() {
				return false
			}
		}
		err := s.rd.readHeader(h)
		if err == nil {
			s.rxCount.Add(1)
			err = s.dispatch(h)
		}
		if err != nil {
			var de *DigestError
			if errors.As(err, &de) && s.rxCount.Load() == 0 {
				err = fmt.Errorf("%w: on the first PDU after login, so the target probably agreed to digests it does not implement (gotgt v0.2.2 does): use header_digest=none and data_digest=none", err)
			}
			if s.closing.Load() {
				err = ErrSessionClosed
			} else if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("iscsi: target closed the connection: %w", err)
			}
			s.fail(err) // no-op if the session failed first: that error wins
			s.drain()
			return true
		}
	}
}

// dispatch handles one PDU whose header is h; it consumes the data segment.
func (s *Session) dispatch(h *header) error {
	switch h.opcode() {
	case opDataIn:
		return s.dataIn(h)
	case opSCSIResp:
		return s.scsiResponse(h)
	case opR2T:
		return s.r2t(h)
	case opNopIn:
		return s.nopIn(h)
	case opLogoutRsp:
		return s.logoutResponse(h)
	case opAsync:
		return s.async(h)
	case opReject:
		return s.reject(h)
	}
	return protoErr("unexpected %s", opName(h.opcode()))
}

// updateSN takes the command window from any response, and StatSN from those that carry
// status (RFC 7143 §4.2.2.1: a window with MaxCmdSN < ExpCmdSN-1 is ignored).
func (s *Session) updateSN(h *header, status bool) {
	if status {
		if next := h.statSN() + 1; serialLess(s.expStatSN.Load(), next) {
			s.expStatSN.Store(next)
		}
	}
	exp, mx := h.expCmdSN(), h.maxCmdSN()
	if serialLess(mx, exp-1) {
		return
	}
	if serialLess(s.expCmdSN.Load(), exp) {
		s.expCmdSN.Store(exp)
	}
	if serialLess(s.maxCmdSN.Load(), mx) {
		s.maxCmdSN.Store(mx)
		if s.windowWaiters.Load() > 0 {
			s.wmu.Lock()
			s.wcond.Broadcast()
			s.wmu.Unlock()
		}
		if s.windowReapers.Load() > 0 {
			s.wakeWindowReapers()
		}
	}
}

func (s *Session) commandTask(h *header) (*task, error) {
	t := s.lookup(h.itt())
	if t == nil || t.kind != kindCommand {
		return nil, protoErr("%s for ITT 0x%08x, which is not a command in flight", opName(h.opcode()), h.itt())
	}
	return t, nil
}

func (s *Session) dataIn(h *header) error {
	t, err := s.commandTask(h)
	if err != nil {
		return err
	}
	n := h.dataLen()
	off := h.u32(40)
	if t.write {
		return protoErr("Data-In for write command ITT 0x%08x", t.itt)
	}
	if uint64(off)+uint64(n) > uint64(len(t.buf)) {
		return protoErr("Data-In offset %d + length %d beyond the %d bytes expected (ITT 0x%08x)", off, n, len(t.buf), t.itt)
	}
	if err := s.rd.readData(t.buf[off : int(off)+n]); err != nil {
		return err
	}
	t.received += n
	if h.flags()&flagStatus == 0 {
		s.updateSN(h, false)
		return nil
	}
	if h.flags()&flagFinal == 0 {
		return protoErr("Data-In with status but without the final bit")
	}
	s.updateSN(h, true)
	t.status, t.flags, t.residual = h[3], h.flags(), h.u32(44)
	s.complete(t, nil)
	return nil
}

func (s *Session) scsiResponse(h *header) error {
	t, err := s.commandTask(h)
	if err != nil {
		return err
	}
	n := h.dataLen()
	data := s.scratch[:n]
	if err := s.rd.readData(data); err != nil {
		return err
	}
	s.updateSN(h, true)
	t.response, t.status, t.flags, t.residual = h[2], h[3], h.flags(), h.u32(44)
	if n >= 2 {
		sl := int(data[0])<<8 | int(data[1])
		if sl > n-2 {
			return protoErr("SCSI Response sense length %d in a %d-byte data segment", sl, n)
		}
		t.senseLen = copy(t.sense[:], data[2:2+sl])
	} else if n == 1 {
		return protoErr("SCSI Response with a 1-byte data segment")
	}
	s.complete(t, nil)
	return nil
}

func (s *Session) r2t(h *header) error {
	t, err := s.commandTask(h)
	if err != nil {
		return err
	}
	if h.dataLen() != 0 {
		return protoErr("R2T with a data segment")
	}
	if !t.write {
		return protoErr("R2T for read command ITT 0x%08x", t.itt)
	}
	off, length, ttt := h.u32(40), h.u32(44), h.ttt()
	if length == 0 || uint64(off)+uint64(length) > uint64(len(t.buf)) || ttt == reservedTag {
		return protoErr("R2T offset %d length %d TTT 0x%08x for a %d-byte write", off, length, ttt, len(t.buf))
	}
	s.updateSN(h, false)
	if t.q != nil {
		if int(t.r2ts.Load()) >= s.params.MaxOutstandingR2T {
			return protoErr("more R2Ts outstanding than MaxOutstandingR2T=%d", s.params.MaxOutstandingR2T)
		}
		t.r2ts.Add(1)
	} else if len(t.ev) >= cap(t.ev)-1 {
		return protoErr("more R2Ts outstanding than MaxOutstandingR2T=%d", s.params.MaxOutstandingR2T)
	}
	s.deliver(t, event{ttt: ttt, offset: off, length: length})
	return nil
}

func (s *Session) nopIn(h *header) error {
	n := h.dataLen()
	if err := s.rd.readData(s.scratch[:n]); err != nil {
		return err
	}
	if h.itt() != reservedTag {
		t := s.lookup(h.itt())
		if t == nil || t.kind != kindPing {
			return protoErr("NOP-In for ITT 0x%08x, which is not a ping in flight", h.itt())
		}
		s.updateSN(h, true)
		s.complete(t, nil)
		return nil
	}
	s.updateSN(h, false)
	if ttt := h.ttt(); ttt != reservedTag {
		// The target pings us: answer from another goroutine so that the reader never blocks
		// on a full socket.
		lun := h.lunBytes()
		go s.answerNop(ttt, lun)
	}
	return nil
}

func (s *Session) logoutResponse(h *header) error {
	if err := s.rd.discardData(h.dataLen()); err != nil {
		return err
	}
	t := s.lookup(h.itt())
	if t == nil || t.kind != kindLogout {
		return protoErr("Logout Response for ITT 0x%08x, which is not a logout in flight", h.itt())
	}
	s.updateSN(h, true)
	t.response = h[2]
	s.complete(t, nil)
	return nil
}

func (s *Session) async(h *header) error {
	if err := s.rd.discardData(h.dataLen()); err != nil {
		return err
	}
	s.updateSN(h, true)
	switch h[36] {
	case 1:
		return errorf("target requests logout (asynchronous event 1)")
	case 2:
		return errorf("target announces it drops the connection (asynchronous event 2)")
	case 3:
		return errorf("target announces it drops the session (asynchronous event 3)")
	}
	// 0: SCSI asynchronous event (a unit attention follows on the next command);
	// 4: parameter renegotiation request (we keep the current values); 255: vendor.
	return nil
}

func (s *Session) reject(h *header) error {
	n := h.dataLen()
	data := s.scratch[:n]
	if err := s.rd.readData(data); err != nil {
		return err
	}
	s.updateSN(h, true)
	what := "a PDU"
	if n >= bhsLen {
		var r header
		copy(r[:], data)
		what = fmt.Sprintf("our %s", &r)
	}
	return errorf("target rejected %s: %s (reason 0x%02x)", what, rejectReason(h[2]), h[2])
}

// answerNop answers a target's NOP-In ping.
func (s *Session) answerNop(ttt uint32, lun [8]byte) {
	var hdr [bhsLen + digestLen]byte
	h := (*header)(hdr[:bhsLen])
	h[0] = flagImmediate | opNopOut
	h[1] = flagFinal
	h.setLUNBytes(lun)
	h.put32(16, reservedTag)
	h.put32(20, ttt)
	_ = s.send(hdr[:], false, true, [][]byte{s.hdrSlice(hdr[:])})
}

func (s *Session) hdrSlice(hdr []byte) []byte {
	if s.params.HeaderDigest {
		return hdr[:bhsLen+digestLen]
	}
	return hdr[:bhsLen]
}

// ping sends a NOP-Out that the target must answer within Timeout.
func (s *Session) ping() {
	defer s.pinging.Store(false)
	t, err := s.acquire(kindPing, s.cfg.Timeout, nil)
	if err != nil {
		return
	}
	h := (*header)(t.hdr[:bhsLen])
	h.clear()
	h[0] = flagImmediate | opNopOut
	h[1] = flagFinal
	h.put32(16, t.itt)
	h.put32(20, reservedTag)
	t.segs = append(t.segs[:0], s.hdrSlice(t.hdr[:]))
	_ = s.send(t.hdr[:], false, true, t.segs)
	s.wait(t)
	s.release(t)
}

// logout closes the session politely: Logout Request (close session) and its response.
func (s *Session) logout() error {
	t, err := s.acquire(kindLogout, min(s.cfg.Timeout, 5*time.Second), nil)
	if err != nil {
		return err
	}
	h := (*header)(t.hdr[:bhsLen])
	h.clear()
	h[0] = flagImmediate | opLogoutReq
	h[1] = flagFinal // reason 0: close the session
	h.put32(16, t.itt)
	t.segs = append(t.segs[:0], s.hdrSlice(t.hdr[:]))
	_ = s.send(t.hdr[:], false, true, t.segs)
	ev := s.wait(t)
	resp := t.response
	s.release(t)
	if ev.err != nil {
		return fmt.Errorf("iscsi: logout: %w", ev.err)
	}
	if resp != 0 {
		return fmt.Errorf("iscsi: logout: target answered response %d", resp)
	}
	return nil
}

// watchdog advances the coarse clock, fails the session when a task passes its deadline and
// pings a silent target.
func (s *Session) watchdog() {
	defer close(s.watchDone)
	tk := time.NewTicker(s.tick)
	defer tk.Stop()
	lastRx := s.rxCount.Load()
	quietSince := time.Now()
	for {
		var now time.Time
		select {
		case <-s.failed:
			return
		case now = <-tk.C:
		}
		s.now.Store(now.UnixNano())
		if op, late := s.overdue(now.UnixNano()); late {
			s.fail(&TimeoutError{Op: op, Limit: s.cfg.Timeout})
			return
		}
		if rx := s.rxCount.Load(); rx != lastRx {
			lastRx, quietSince = rx, now
		}
		if now.Sub(quietSince) >= s.pingInterval && !s.closing.Load() && s.pinging.CompareAndSwap(false, true) {
			quietSince = now
			go s.ping()
		}
	}
}

// overdue reports the first active task past its deadline.
func (s *Session) overdue(now int64) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.slots {
		if t.active && now > t.deadline {
			switch t.kind {
			case kindPing:
				return "a NOP-Out ping", true
			case kindLogout:
				return "the Logout Request", true
			}
			return describeCDB(t.cdb[:]), true
		}
	}
	return "", false
}

// debugState describes the reader and writer state, for diagnosing a stalled session.
func (s *Session) debugState() string {
	s.wmu.Lock()
	w := fmt.Sprintf("cmdSN=%d maxCmdSN=%d pending=%d flushing=%v collecting=%v idleWaiters=%d windowWaiters=%d",
		s.cmdSN, s.maxCmdSN.Load(), len(s.pending), s.flushing, s.collecting, s.idleWaiters, s.windowWaiters.Load())
	s.wmu.Unlock()
	token := "held"
	if s.rtoken.TryLock() {
		token = "free"
		s.rtoken.Unlock()
		s.handoff() // a waiter that found it taken by us waits for a kick
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var tasks []string
	for _, t := range s.slots {
		if t.active || t.waiting {
			tasks = append(tasks, fmt.Sprintf("itt=%#x active=%v waiting=%v kicked=%v events=%d", t.itt, t.active, t.waiting, t.kicked, len(t.ev)))
		}
	}
	for i, q := range s.queues {
		tasks = append(tasks, fmt.Sprintf("queue %d waiting=%v kicked=%v", i, q.waiting, q.kicked))
	}
	return fmt.Sprintf("%s; read token %s, nactive=%d nqueued=%d nwaiting=%d rx=%d; tasks: %s", w, token, s.nactive.Load(), s.nqueued.Load(), s.nwaiting.Load(), s.rxCount.Load(), strings.Join(tasks, "; "))
}

// buffered is the part of bufio.Reader the reader looks at.
type buffered interface{ Buffered() int }
