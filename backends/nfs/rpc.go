package nfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/vmstorbench/vmstorbench/internal/schedyield"
	"github.com/vmstorbench/vmstorbench/internal/socktransport"
)

// rpcConn is an ONC RPC (RFC 5531) client on one TCP connection. Any number of calls may be
// in flight: a call is registered by XID and sent, and its reply is matched by XID in
// whatever order the server sends them, so concurrent callers pipeline on the wire.
//
// The socket is used with blocking system calls (package socktransport), and replies are
// read by the callers themselves, one at a time (leader/follower): a caller that waits for
// its reply takes the read token if it is free and reads and dispatches replies, for itself
// and for others, until its own is in; then it hands the token to another waiting caller. A
// lone call thus never passes through another goroutine or Go's network poller (a receive
// goroutine parked in the poller cost ~3 context switches and 2 futex calls per call, more
// CPU than the protocol), and with many in flight one reader serves them all. When calls are
// in flight but no caller waits to read (they are all still sending), a background goroutine
// reads instead, so that the socket is read while anything is outstanding: a server blocked
// sending to us must never block our sends.
//
// go-nfs-client's rpc.Client is not used for transport because it cannot fail fast (see the
// package documentation). Here there are no retries and no reconnects: a broken connection,
// a malformed reply stream or a call without reply before its deadline fails every call on
// the connection at once with the same error, and later calls fail immediately. A benchmark
// must report that, not hide it. A reply whose XID no call in flight has is skipped.
type rpcConn struct {
	tr      socktransport.Transport
	addr    string
	cred    rpc.Auth
	timeout time.Duration
	blocked func() // kickBackground, bound once (a method value allocates)

	xid atomic.Uint32

	// The read token's holder only.
	rec     *record
	dec     *decoder
	yielder schedyield.Yielder

	// Sending: a caller that finds nobody writing writes its record itself, and then also
	// whatever other callers queued meanwhile, in one sendmsg: under load many calls share a
	// system call, while a lone call pays no hand-off to a sender goroutine.
	sendMu        sync.Mutex
	sendQ         [][]byte   // records waiting for the writing caller
	sendCalls     []*rpcCall // their calls
	sendSpare     [][]byte
	sendSpareCall []*rpcCall
	sending       bool

	// life is read-held by every call: close frees the socket only when no call can be
	// reading or writing it.
	life sync.RWMutex

	mu      sync.Mutex
	pending map[uint32]*rpcCall
	current *rpcCall   // the call whose reply is being decoded (no longer in pending)
	nactive int        // calls in flight: pending and current
	nasync  int        // of which sent by an async client (see async.go)
	reading bool       // the read token is held
	waitq   []*rpcCall // callers waiting for the token or their reply (an async client: its marker)
	broken  error      // set once; every later call fails with it
	failed  chan struct{}
	bgKick  chan struct{}

	calls sync.Pool // of *rpcCall

	bgDone    chan struct{}
	watchDone chan struct{}
	closeOnce sync.Once
}

// readBufferSize is the receive buffer: the replies of many small calls in flight arrive
// with one read, while what a fill takes of a large READ reply's data is copied once more
// (the rest goes straight into the caller's buffer, see record.raw).
const readBufferSize = 64 << 10

// rpcCall is one call in flight; calls are reused.
type rpcCall struct {
	name     string    // procedure name, for errors
	deadline time.Time // under rpcConn.mu
	// decode reads the procedure's results from the reply; it runs on the read token's
	// holder while the caller waits, so it may write into the caller's buffers.
	decode  func(d *decoder) error
	active  bool          // under rpcConn.mu: in flight
	waiting bool          // under rpcConn.mu: in waitq
	res     chan error    // capacity 1: the result, sent (under rpcConn.mu) when active ends
	kick    chan struct{} // capacity 1: "the read token is free", to a waiting caller
	// queued is set while the record is with the writer: a call that ends before its record
	// is written (the connection failed, or a server answered a call it had not read whole)
	// is not reused, since the writer may still hold its header.
	queued atomic.Bool
	hdr    xdrBuf       // the record's header and arguments
	a      *asyncClient // under rpcConn.mu: the async client that sent the call, or nil
	tag    int          // the async client's tag of the call
}

// errClosed is what calls on a closed connection fail with.
var errClosed = errors.New("connection closed")

// newRPCConn starts the background reader and the deadline watchdog on conn. A TCP socket
// is used with blocking system calls (package socktransport); conn then belongs to the
// transport.
func newRPCConn(conn net.Conn, cred rpc.Auth, timeout time.Duration) *rpcConn {
	addr := conn.RemoteAddr().String()
	tr := socktransport.New(conn)
	rec := &record{br: bufio.NewReaderSize(tr, readBufferSize), raw: tr}
	if fr, ok := tr.(interface{ ReadFull(p []byte) error }); ok {
		rec.full = fr.ReadFull
	}
	c := &rpcConn{
		tr:        tr,
		addr:      addr,
		cred:      cred,
		timeout:   timeout,
		rec:       rec,
		dec:       &decoder{r: rec},
		pending:   map[uint32]*rpcCall{},
		failed:    make(chan struct{}),
		bgKick:    make(chan struct{}, 1),
		bgDone:    make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	c.calls.New = func() any {
		return &rpcCall{res: make(chan error, 1), kick: make(chan struct{}, 1)}
	}
	c.blocked = c.kickBackground
	c.xid.Store(uint32(time.Now().UnixNano()))
	go c.background()
	go c.watchdog()
	return c
}

// call sends one call and waits for its reply. args encodes the procedure's arguments;
// payload, if any, is sent after them without copying (it must already be counted in the
// arguments' opaque length) and padded to 4 bytes. The call fails when no reply has come by
// deadline (zero: now + the connection's timeout).
func (c *rpcConn) call(prog, vers, proc uint32, name string, deadline time.Time, args func(b *xdrBuf), payload []byte, decode func(d *decoder) error) error {
	c.life.RLock()
	defer c.life.RUnlock()
	cl := c.calls.Get().(*rpcCall)
	if err := c.start(cl, prog, vers, proc, name, deadline, args, payload, decode, nil, 0); err != nil {
		c.calls.Put(cl)
		return fmt.Errorf("%s: %w", name, err)
	}
	calls := [1]*rpcCall{cl}
	bufs := [3][]byte{cl.hdr, payload, zeroPad[:pad4(len(payload))]}
	c.send(calls[:], bufs[:])
	err := c.wait(cl)
	cl.decode = nil
	if !cl.queued.Load() {
		c.calls.Put(cl)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// start encodes cl's record header (the record mark counts payload and its padding) and
// registers cl in flight, for async client a (nil: a caller that waits) under tag. Nothing
// is sent. On error (the connection failed, a call too large) cl is still the caller's.
func (c *rpcConn) start(cl *rpcCall, prog, vers, proc uint32, name string, deadline time.Time, args func(b *xdrBuf), payload []byte, decode func(d *decoder) error, a *asyncClient, tag int) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(c.timeout)
	}
	xid := c.xid.Add(1)
	hdr := &cl.hdr // through the call, which is on the heap anyway: a local would move there
	*hdr = (*hdr)[:0]
	hdr.u32(0) // record mark, set below
	hdr.u32(xid)
	hdr.u32(0) // CALL
	hdr.u32(2) // RPC version
	hdr.u32(prog)
	hdr.u32(vers)
	hdr.u32(proc)
	hdr.u32(c.cred.Flavor)
	hdr.opaque(c.cred.Body)
	hdr.u32(0) // verifier: AUTH_NONE
	hdr.u32(0)
	if args != nil {
		args(hdr)
	}
	size := len(*hdr) - 4 + len(payload) + pad4(len(payload))
	if size > 0x7fffffff {
		return fmt.Errorf("call of %d bytes is too large", size)
	}
	binary.BigEndian.PutUint32(*hdr, uint32(size)|0x80000000)

	// Queued from now until written: if fail completes cl before its record is sent, cl is
	// not reused while the record may still be on its way to the writer.
	cl.queued.Store(true)
	// Register before sending: the reply may arrive before the write returns.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		cl.queued.Store(false)
		return c.broken
	}
	cl.name, cl.deadline, cl.decode, cl.active = name, deadline, decode, true
	cl.a, cl.tag = a, tag
	if a != nil {
		c.nasync++
		a.active++
	}
	c.pending[xid] = cl
	c.nactive++
	return nil
}

// send writes the records of calls, given as bufs (the pieces of all records, in order), or
// queues them for the caller that is writing. A write error fails the connection, and with
// it every call in flight, so callers learn about it from their results.
func (c *rpcConn) send(calls []*rpcCall, bufs [][]byte) {
	c.sendMu.Lock()
	for _, p := range bufs {
		if len(p) > 0 {
			c.sendQ = append(c.sendQ, p)
		}
	}
	c.sendCalls = append(c.sendCalls, calls...)
	if c.sending {
		c.sendMu.Unlock()
		return
	}
	c.sending = true
	for len(c.sendQ) > 0 {
		batch, calls := c.sendQ, c.sendCalls
		c.sendQ, c.sendCalls = c.sendSpare[:0], c.sendSpareCall[:0]
		c.sendMu.Unlock()
		// Before the write blocks (the server does not read), make sure someone reads its
		// replies: a server blocked sending them would never read our calls.
		err := c.tr.WriteBuffers(batch, c.blocked)
		clear(batch)
		for i, q := range calls {
			q.queued.Store(false)
			calls[i] = nil
		}
		c.sendMu.Lock()
		c.sendSpare, c.sendSpareCall = batch[:0], calls[:0]
		if err != nil {
			// A partly written record leaves the stream unusable for everyone.
			for _, q := range c.sendCalls {
				q.queued.Store(false)
			}
			c.sendQ, c.sendCalls = nil, nil
			c.sending = false
			c.sendMu.Unlock()
			c.fail(c.connErr(fmt.Errorf("send: %w", err)))
			return
		}
	}
	c.sending = false
	c.sendMu.Unlock()
}

// wait returns cl's result, reading replies itself while it holds the read token.
func (c *rpcConn) wait(cl *rpcCall) error {
	for {
		c.mu.Lock()
		if !cl.active {
			c.mu.Unlock()
			return c.result(cl)
		}
		if !c.reading {
			c.reading = true
			c.mu.Unlock()
			// A caller that reads its own replies one call at a time never parks; without a
			// yield now and then, Go's sysmon preempts it mid-read (see package schedyield).
			c.yielder.Maybe()
			mine := false
			for {
				got, err := c.readOne()
				if err != nil {
					c.fail(err)
					break
				}
				mine = mine || got == cl
				more := c.rec.whole()
				if !mine && !more {
					// The next read blocks, and the caller we just completed is runnable (if
					// it was parked), queued on our P: let it run here first (it sends its
					// next call and waits) rather than block with it queued, which makes
					// sysmon take the P from our read and another thread run it.
					runtime.Gosched()
				}
				// Past our own reply, replies already in the buffer are dispatched too: their
				// callers are woken by their results anyway, and the token is not handed to
				// one of them (one goroutine wake-up less each).
				if mine && !more {
					break
				}
			}
			c.release()
			continue
		}
		cl.waiting = true
		c.waitq = append(c.waitq, cl)
		c.mu.Unlock()
		select {
		case err := <-cl.res: // completed (and taken off waitq) by the token holder or fail
			c.dropKick(cl)
			return err
		case <-cl.kick: // the token is free: try to take it
		}
	}
}

// result takes cl's result once it is no longer active.
func (c *rpcConn) result(cl *rpcCall) error {
	err := <-cl.res
	c.dropKick(cl)
	return err
}

// dropKick drops a kick that crossed cl's completion: it is stale, since whoever completed
// cl held the token after the kicker.
func (c *rpcConn) dropKick(cl *rpcCall) {
	select {
	case <-cl.kick:
	default:
	}
}

// complete ends cl with err. c.mu must be held.
func (c *rpcConn) complete(cl *rpcCall, err error) {
	cl.active = false
	c.nactive--
	if a := cl.a; a != nil {
		c.nasync--
		cl.a = nil
		a.completed(cl, err)
		return
	}
	if cl.waiting {
		c.unwait(cl)
	}
	cl.res <- err
}

// unwait takes cl off the wait queue. c.mu must be held.
func (c *rpcConn) unwait(cl *rpcCall) {
	cl.waiting = false
	for i, w := range c.waitq {
		if w == cl {
			c.waitq = append(c.waitq[:i], c.waitq[i+1:]...)
			return
		}
	}
}

// release gives up the read token and passes it on.
func (c *rpcConn) release() {
	c.mu.Lock()
	c.reading = false
	c.handOn()
	c.mu.Unlock()
}

// handOn passes the free read token on: to a caller waiting for it, or, when calls of
// waiting callers are in flight but nobody waits to read, to the background reader. Calls
// of async clients alone do not wake the background reader: their client reads their
// replies when it reaps (and its sends wake the reader before they block), so that a reply
// to them passes through no other goroutine. c.mu must be held.
func (c *rpcConn) handOn() {
	if c.nactive == 0 || c.broken != nil {
		return
	}
	if n := len(c.waitq); n > 0 {
		w := c.waitq[n-1]
		c.waitq = c.waitq[:n-1]
		w.waiting = false
		kick := w.kick
		if w.a != nil { // an async client's marker
			kick = w.a.wake
		}
		select {
		case kick <- struct{}{}:
		default:
		}
	} else if c.nactive > c.nasync {
		c.kickBackground()
	}
}

// kickBackground wakes the background reader (which reads if nobody holds the token).
func (c *rpcConn) kickBackground() {
	select {
	case c.bgKick <- struct{}{}:
	default:
	}
}

// background reads replies while calls are in flight and no caller waits to read.
func (c *rpcConn) background() {
	defer close(c.bgDone)
	for {
		select {
		case <-c.bgKick:
		case <-c.failed:
			return
		}
		c.mu.Lock()
		if c.reading || c.nactive == 0 || c.broken != nil {
			c.mu.Unlock()
			continue
		}
		c.reading = true
		c.mu.Unlock()
		for {
			c.mu.Lock()
			stop := c.nactive == 0 || len(c.waitq) > 0
			c.mu.Unlock()
			if stop {
				break
			}
			if _, err := c.readOne(); err != nil {
				c.fail(err)
				break
			}
		}
		c.release()
	}
}

// readOne reads one reply and completes its call, which it returns (nil for a reply to no
// call in flight, which is skipped). Only the read token's holder calls it. An error breaks
// the connection (the caller calls fail); the call being decoded then gets it too.
func (c *rpcConn) readOne() (*rpcCall, error) {
	rec, d := c.rec, c.dec
	if err := rec.begin(); err != nil {
		return nil, c.connErr(err)
	}
	d.err = nil
	xid := d.u32()
	if d.err != nil {
		return nil, c.connErr(d.err)
	}
	c.mu.Lock()
	cl := c.pending[xid]
	if cl != nil {
		delete(c.pending, xid)
		c.current = cl
	}
	c.mu.Unlock()

	var err error
	if cl != nil {
		if err = readReplyHeader(d); err == nil && cl.decode != nil {
			err = cl.decode(d)
		}
	}
	if rec.ioErr == nil {
		_ = rec.discard()
	}
	var ioErr error
	if rec.ioErr != nil {
		ioErr = c.connErr(rec.ioErr)
		err = ioErr
	}
	if cl != nil {
		c.mu.Lock()
		c.current = nil
		c.complete(cl, err)
		c.mu.Unlock()
	}
	return cl, ioErr
}

// connErr describes a transport error; once the connection has failed (closed, a deadline
// passed) it is why.
func (c *rpcConn) connErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	return fmt.Errorf("connection to %s lost: %w", c.addr, err)
}

// watchdog fails the connection when a call has waited past its deadline. One ticker per
// connection is cheaper than a timer per call at tens of thousands of calls per second.
func (c *rpcConn) watchdog() {
	defer close(c.watchDone)
	tick := c.timeout / 20
	tick = min(max(tick, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.failed:
			return
		case now := <-t.C:
			c.mu.Lock()
			late := c.current
			if late != nil && !now.After(late.deadline) {
				late = nil
			}
			for _, cl := range c.pending {
				if late != nil {
					break
				}
				if now.After(cl.deadline) {
					late = cl
				}
			}
			var err error
			if late != nil {
				err = fmt.Errorf("no reply from %s to %s within %s", c.addr, late.name, c.timeout)
			}
			c.mu.Unlock()
			if err != nil {
				c.fail(err)
			}
		}
	}
}

// fail breaks the connection (the first error wins): every call in flight and every later
// call gets err, except the one whose reply the token holder is decoding (it completes that
// one when the read it is in fails), and the socket is shut down so that blocked reads and
// writes return.
func (c *rpcConn) fail(err error) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return
	}
	c.broken = err
	close(c.failed)
	for xid, cl := range c.pending {
		delete(c.pending, xid)
		c.complete(cl, err)
	}
	c.mu.Unlock()
	c.tr.Shutdown()
}

// close ends the connection and waits for the background reader and the watchdog; the
// socket is released once no call uses it.
func (c *rpcConn) close() {
	c.closeOnce.Do(func() {
		c.fail(errClosed)
		<-c.bgDone
		<-c.watchDone
		c.life.Lock()
		defer c.life.Unlock()
		_ = c.tr.Close()
	})
}

// RPC reply constants (RFC 5531).
const (
	msgReply       = 1
	msgAccepted    = 0
	msgDenied      = 1
	acceptSuccess  = 0
	rejectMismatch = 0
	rejectAuth     = 1
)

var acceptErrors = map[uint32]string{
	1: "PROG_UNAVAIL: the server does not offer this RPC program",
	2: "PROG_MISMATCH: the server does not offer this program version",
	3: "PROC_UNAVAIL: the server does not implement this procedure",
	4: "GARBAGE_ARGS: the server could not decode the arguments",
	5: "SYSTEM_ERR: the server failed",
}

var authErrors = map[uint32]string{
	1: "AUTH_BADCRED", 2: "AUTH_REJECTEDCRED", 3: "AUTH_BADVERF", 4: "AUTH_REJECTEDVERF",
	5: "AUTH_TOOWEAK (the server wants a stronger security flavor than auth_sys)",
}

// readReplyHeader reads a reply header after the XID and returns nil when the call was
// accepted and succeeded; the procedure's results follow.
func readReplyHeader(d *decoder) error {
	if mtype := d.u32(); d.err == nil && mtype != msgReply {
		return fmt.Errorf("malformed reply: message type %d", mtype)
	}
	switch stat := d.u32(); {
	case d.err != nil:
		return d.err
	case stat == msgAccepted:
		d.u32()       // verifier flavor
		d.opaque(400) // verifier body
		accept := d.u32()
		if d.err != nil {
			return d.err
		}
		if accept == acceptSuccess {
			return nil
		}
		if msg, ok := acceptErrors[accept]; ok {
			return errors.New("rpc: " + msg)
		}
		return fmt.Errorf("rpc: accept status %d", accept)
	case stat == msgDenied:
		why := d.u32()
		if why == rejectMismatch {
			lo, hi := d.u32(), d.u32()
			return fmt.Errorf("rpc: RPC version mismatch (server supports %d..%d)", lo, hi)
		}
		if why == rejectAuth {
			a := d.u32()
			if msg, ok := authErrors[a]; ok {
				return errors.New("rpc: call rejected: " + msg)
			}
			return fmt.Errorf("rpc: call rejected: auth status %d", a)
		}
		return fmt.Errorf("rpc: call rejected (%d)", why)
	default:
		return fmt.Errorf("malformed reply: reply status %d", stat)
	}
}
