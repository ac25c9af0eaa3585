// Package readtoken is the leader/follower reading of a pipelined request/reply connection
// (the NBD client and the NFS RPC client): the callers read the replies themselves, one at a
// time, instead of a receive goroutine.
//
// A caller that waits for its reply takes the read token if it is free and reads and
// dispatches replies, for itself and for others, until its own is in; then it hands the token
// to the last caller that queued for it. A lone request thus never passes through another
// goroutine (two goroutine wake-ups less per request at queue depth 1), and with many in
// flight one reader serves them all. When requests of waiting callers are in flight but
// nobody waits to read (they are all still sending), a background goroutine reads instead,
// so that the socket is read while anything is outstanding: a server blocked sending to us
// must never block our sends. An async client (one goroutine that sends without waiting and
// reaps later, as fio's asynchronous engines do) reads its own replies when it reaps, and
// queues for the token through a marker.
//
// The state is a Token embedded in the connection and guarded by the connection's own mutex;
// the protocol stays in the connection, behind Reader: reading and matching one reply,
// failing the connection, and telling whether a whole reply is buffered.
//
// The iSCSI initiator reads its socket the same way but does not use this package: its token
// is a mutex handed on directly to a waiter, its tasks wait for several PDUs each (R2T, Data-In,
// the response), and its token holder also writes what the woken owners queued. Sharing would
// need those in the Token; until a third client looks like the first two, it stays separate.
package readtoken

import (
	"runtime"
	"sync"

	"github.com/vmstorbench/vmstorbench/internal/schedyield"
)

// Reader is the connection's side of the token. Its methods are called by the token's
// holder, without the connection's mutex.
type Reader interface {
	// ReadOne reads one reply and completes its request (Token.Complete or
	// Token.CompleteAsync), whose Waiter it returns (nil: the reply completed nothing). An
	// error ends the reading: the token then calls Fail with it.
	ReadOne() (*Waiter, error)
	// Buffered reports whether a whole reply is buffered, so that reading it does not block.
	Buffered() bool
	// Fail ends the connection with err: every request in flight completes, and the failed
	// channel given to Token.Init is closed.
	Fail(err error)
}

// Waiter is a request in flight of a caller that waits for it (Token.Wait), or, inside an
// Async, an async client's place in the wait queue. Embed it in the request; make it with
// NewWaiter. Its fields are under the connection's mutex.
type Waiter struct {
	active  bool          // in flight (between Token.Start and a Complete)
	waiting bool          // in the token's wait queue
	res     chan error    // capacity 1: the result, sent when active ends (nil in a marker)
	kick    chan struct{} // capacity 1: "the read token is free" (an Async's: or a result arrived)
}

// NewWaiter returns a Waiter for a request: reusable, one request in flight at a time.
func NewWaiter() Waiter {
	return Waiter{res: make(chan error, 1), kick: make(chan struct{}, 1)}
}

// Active reports whether the request is in flight. The connection's mutex must be held.
func (w *Waiter) Active() bool { return w.active }

// Async is the token's part of an async client: embed it in the client; make it with
// NewAsync. Its fields are under the connection's mutex.
type Async struct {
	// marker stands for the reaper in the wait queue; it is never in flight. Its kick says
	// "a result arrived" or "the read token is free": the reaper re-examines the state on
	// every wake, so a stale one costs a loop only.
	marker    Waiter
	active    int  // requests in flight
	completes int  // results so far (read tells its own from others' by it)
	parked    bool // the reaper is blocked on marker.kick
}

// NewAsync returns the token's part of a new async client.
func NewAsync() Async {
	return Async{marker: Waiter{kick: make(chan struct{}, 1)}}
}

// Active returns how many requests of the client are in flight. The connection's mutex must
// be held.
func (a *Async) Active() int { return a.active }

// Completes returns how many of the client's requests have completed so far: a change says
// that one did. The connection's mutex must be held.
func (a *Async) Completes() int { return a.completes }

// Token is the read token of one connection and the requests it reads for. Embed it in the
// connection and Init it before use; its methods other than Wait, WaitAsync, Poll, Kick and
// Background need the connection's mutex held.
type Token struct {
	mu      *sync.Mutex // the connection's
	r       Reader
	failed  <-chan struct{} // closed, with mu held, when the connection fails
	bgKick  chan struct{}
	yielder schedyield.Yielder // the holder's only (see Wait)

	// Under mu:
	reading bool      // the token is held
	active  int       // requests in flight
	async   int       // of which sent by async clients
	waitq   []*Waiter // waiting for the token or their reply (an async client: its marker)
}

// Init readies t for the connection whose mutex is mu, read through r; failed is closed
// (with mu held) when the connection fails. Run t.Background on a goroutine of its own.
func (t *Token) Init(mu *sync.Mutex, r Reader, failed <-chan struct{}) {
	t.mu, t.r, t.failed = mu, r, failed
	t.bgKick = make(chan struct{}, 1)
}

// isFailed reports whether the connection has failed. mu must be held.
func (t *Token) isFailed() bool {
	select {
	case <-t.failed:
		return true
	default:
		return false
	}
}

// Take takes the token if it is free and reports whether it did; the holder gives it back
// with Release. mu must be held.
func (t *Token) Take() bool {
	if t.reading {
		return false
	}
	t.reading = true
	return true
}

// Start makes w's request one in flight; a is the async client that sent it, or nil for a
// caller that will Wait for it. mu must be held.
func (t *Token) Start(w *Waiter, a *Async) {
	w.active = true
	t.active++
	if a != nil {
		t.async++
		a.active++
	}
}

// Complete ends the request w of a caller that waits, with err. mu must be held.
func (t *Token) Complete(w *Waiter, err error) {
	w.active = false
	t.active--
	if w.waiting {
		t.unwait(w)
	}
	w.res <- err
}

// CompleteAsync ends the request w of async client a, whose reaper is woken if it waits;
// the connection records the result. mu must be held.
func (t *Token) CompleteAsync(w *Waiter, a *Async) {
	w.active = false
	t.active--
	t.async--
	a.active--
	a.completes++
	if a.parked {
		a.parked = false
		select {
		case a.marker.kick <- struct{}{}:
		default:
		}
	}
}

// unwait takes w off the wait queue. mu must be held.
func (t *Token) unwait(w *Waiter) {
	w.waiting = false
	for i, q := range t.waitq {
		if q == w {
			t.waitq = append(t.waitq[:i], t.waitq[i+1:]...)
			return
		}
	}
}

// Wait returns the result of w's request, reading replies while it holds the token.
func (t *Token) Wait(w *Waiter) error {
	for {
		t.mu.Lock()
		if !w.active {
			t.mu.Unlock()
			return w.result()
		}
		if t.Take() {
			t.mu.Unlock()
			t.readUntil(w)
			t.Release()
			continue
		}
		w.waiting = true
		t.waitq = append(t.waitq, w)
		t.mu.Unlock()
		select {
		case err := <-w.res: // completed (and taken off waitq) by the token holder or Fail
			w.dropKick()
			return err
		case <-w.kick: // the token is free: try to take it
		}
	}
}

// TryResult takes the result of w's request if it is in, without waiting, and reports
// whether it was; for a caller that does not Wait (a test).
func (w *Waiter) TryResult() (bool, error) {
	select {
	case err := <-w.res:
		w.dropKick()
		return true, err
	default:
		return false, nil
	}
}

// result takes the result of w's request, which is no longer active.
func (w *Waiter) result() error {
	err := <-w.res
	w.dropKick()
	return err
}

// dropKick drops a kick that crossed the completion: it is stale, since whoever completed the
// request held the token after the kicker.
func (w *Waiter) dropKick() {
	select {
	case <-w.kick:
	default:
	}
}

// readUntil reads replies, as the token's holder, until w's is in and no whole reply is left
// in the buffer, or the connection fails.
func (t *Token) readUntil(w *Waiter) {
	// A caller that reads its own replies one request at a time never parks; without a yield
	// now and then, Go's sysmon preempts it mid-read (see package schedyield).
	t.yielder.Maybe()
	mine := false
	for {
		got, err := t.r.ReadOne()
		if err != nil {
			t.r.Fail(err)
			return
		}
		mine = mine || got == w
		more := t.r.Buffered()
		if !mine && !more {
			// The next read blocks, and the owner we just completed is runnable (if it was
			// parked), queued on our P: let it run here first (it sends its next request and
			// waits) rather than block with it queued, which makes sysmon take the P from our
			// read and another thread run it (NBD, 1 MiB reads at queue depth 8: 6 -> 3.7
			// context switches per read, ~10% less CPU).
			runtime.Gosched()
		}
		// Past our own reply, replies already in the buffer are dispatched too: their owners
		// are woken by their results anyway, and the token is not handed to one of them (one
		// goroutine wake-up less each).
		if mine && !more {
			return
		}
	}
}

// Release gives up the token and passes it on.
func (t *Token) Release() {
	t.mu.Lock()
	t.reading = false
	t.handOn()
	t.mu.Unlock()
}

// handOn passes the free token on: to the last waiter queued for it, or, when requests of
// waiting callers are in flight but nobody waits, to the background reader. Requests of
// async clients alone do not wake the background reader: their client reads their replies
// when it reaps (and its sends wake the reader before they block, see Kick), so that a
// reply to them passes through no other goroutine. mu must be held.
func (t *Token) handOn() {
	if t.active == 0 || t.isFailed() {
		return
	}
	if n := len(t.waitq); n > 0 {
		w := t.waitq[n-1]
		t.waitq = t.waitq[:n-1]
		w.waiting = false
		select {
		case w.kick <- struct{}{}:
		default:
		}
	} else if t.active > t.async {
		t.Kick()
	}
}

// Kick wakes the background reader, which reads if nobody holds the token and requests are
// in flight. Call it before a send blocks: a server blocked sending its replies would never
// read our request. Safe with or without mu held.
func (t *Token) Kick() {
	select {
	case t.bgKick <- struct{}{}:
	default:
	}
}

// Background is the background reader: it reads replies while requests are in flight and
// nobody waits to read, until the connection fails.
func (t *Token) Background() {
	for {
		select {
		case <-t.bgKick:
		case <-t.failed:
			return
		}
		t.mu.Lock()
		if t.reading || t.active == 0 || t.isFailed() {
			t.mu.Unlock()
			continue
		}
		t.reading = true
		t.mu.Unlock()
		for {
			t.mu.Lock()
			stop := t.active == 0 || len(t.waitq) > 0
			t.mu.Unlock()
			if stop {
				break
			}
			if _, err := t.r.ReadOne(); err != nil {
				t.r.Fail(err)
				break
			}
		}
		t.Release()
	}
}

// Poll wakes the background reader when nobody reads and a has requests in flight, without
// waiting for anything: a client that only polls gets its results too.
func (t *Token) Poll(a *Async) {
	t.mu.Lock()
	if !t.reading && a.active > 0 {
		t.Kick()
	}
	t.mu.Unlock()
}

// WaitAsync returns when ready (called with mu held) reports true or no request of a is in
// flight, reading replies itself while it holds the token.
func (t *Token) WaitAsync(a *Async, ready func() bool) {
	queued := false // the marker was put in the wait queue
	for {
		t.mu.Lock()
		handed := queued && !a.marker.waiting // handOn passed the token to us
		if a.marker.waiting {
			t.unwait(&a.marker)
		}
		queued = false
		a.parked = false
		if ready() || a.active == 0 {
			if handed && !t.reading {
				// The token was passed to us and we do not take it: pass it on.
				t.handOn()
			}
			t.mu.Unlock()
			return
		}
		if t.Take() {
			t.mu.Unlock()
			t.readAsync(a, ready)
			t.Release()
			continue
		}
		a.parked, queued = true, true
		a.marker.waiting = true
		t.waitq = append(t.waitq, &a.marker)
		t.mu.Unlock()
		<-a.marker.kick
	}
}

// readAsync reads and dispatches replies, as the token's holder, until ready and no whole
// reply is left in the buffer (replies already received are dispatched at no cost: their
// owners are woken by their results anyway).
func (t *Token) readAsync(a *Async, ready func() bool) {
	// As in readUntil: a reader that never parks yields now and then (package schedyield).
	t.yielder.Maybe()
	t.mu.Lock()
	completes := a.completes
	t.mu.Unlock()
	for {
		if _, err := t.r.ReadOne(); err != nil {
			t.r.Fail(err)
			return
		}
		if t.r.Buffered() {
			continue
		}
		t.mu.Lock()
		stop := ready() || a.active == 0
		other := a.completes == completes // the last reply was not ours
		completes = a.completes
		t.mu.Unlock()
		if stop {
			return
		}
		if other {
			// As in readUntil: let the waiting owner just completed run here before we block.
			runtime.Gosched()
		}
	}
}
