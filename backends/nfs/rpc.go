package nfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/vmstorbench/vmstorbench/internal/readtoken"
	"github.com/vmstorbench/vmstorbench/internal/socktransport"
)

// rpcConn is an ONC RPC (RFC 5531) client on one TCP connection. Any number of calls may be
// in flight: a call is registered by XID and sent, and its reply is matched by XID in
// whatever order the server sends them, so concurrent callers pipeline on the wire.
//
// The socket is used with blocking system calls (package socktransport), and replies are
// read by the callers themselves, one at a time (leader/follower, package readtoken): a
// caller that waits for its reply takes the read token if it is free and reads and
// dispatches replies, for itself and for others, until its own is in; then it hands the token
// to another waiting caller. A lone call thus never passes through another goroutine or Go's
// network poller (a receive goroutine parked in the poller cost ~3 context switches and 2
// futex calls per call, more CPU than the protocol). When calls are in flight but no caller
// waits to read, a background goroutine reads instead.
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
	blocked func() // tok.Kick, bound once (a method value allocates)

	xid atomic.Uint32

	// The read token's holder only.
	rec *record
	dec *decoder

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
	tok     readtoken.Token // the read token (state under mu); its calls in flight: pending and current
	pending map[uint32]*rpcCall
	current *rpcCall // the call whose reply is being decoded (no longer in pending)
	broken  error    // set once; every later call fails with it
	failed  chan struct{}

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
	decode func(d *decoder) error
	// The call's state in the read token (in flight: Active), under rpcConn.mu.
	readtoken.Waiter
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
		bgDone:    make(chan struct{}),
		watchDone: make(chan struct{}),
	}
	c.tok.Init(&c.mu, (*tokenReader)(c), c.failed)
	c.calls.New = func() any {
		return &rpcCall{Waiter: readtoken.NewWaiter()}
	}
	c.blocked = c.tok.Kick
	c.xid.Store(uint32(time.Now().UnixNano()))
	go func() {
		defer close(c.bgDone)
		c.tok.Background()
	}()
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
	err := c.tok.Wait(&cl.Waiter)
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
	cl.name, cl.deadline, cl.decode = name, deadline, decode
	cl.a, cl.tag = a, tag
	if a != nil {
		c.tok.Start(&cl.Waiter, &a.Async)
	} else {
		c.tok.Start(&cl.Waiter, nil)
	}
	c.pending[xid] = cl
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

// complete ends cl with err. c.mu must be held.
func (c *rpcConn) complete(cl *rpcCall, err error) {
	if a := cl.a; a != nil {
		cl.a = nil
		c.tok.CompleteAsync(&cl.Waiter, &a.Async)
		a.completed(cl, err)
		return
	}
	c.tok.Complete(&cl.Waiter, err)
}

// tokenReader is the connection as the read token's Reader.
type tokenReader rpcConn

func (r *tokenReader) ReadOne() (*readtoken.Waiter, error) { return (*rpcConn)(r).readOne() }

// Buffered reports whether a whole reply is buffered.
func (r *tokenReader) Buffered() bool { return r.rec.whole() }

func (r *tokenReader) Fail(err error) { (*rpcConn)(r).fail(err) }

// readOne reads one reply and completes its call, whose Waiter it returns (nil for a reply to
// no call in flight, which is skipped). Only the read token's holder calls it. An error breaks
// the connection (the caller calls fail); the call being decoded then gets it too.
func (c *rpcConn) readOne() (*readtoken.Waiter, error) {
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
	if cl == nil {
		return nil, ioErr
	}
	c.mu.Lock()
	c.current = nil
	c.complete(cl, err)
	c.mu.Unlock()
	return &cl.Waiter, ioErr
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
