package nfs

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// rpcConn is an ONC RPC (RFC 5531) client on one TCP connection. Any number of calls may be
// in flight: a call is registered by XID, sent under a send lock only, and its reply is
// matched by XID by a single receive goroutine, so concurrent callers pipeline on the wire.
//
// go-nfs-client's rpc.Client is not used for transport because it cannot fail fast (see the
// package documentation). Here there are no retries and no reconnects: a broken connection, a malformed reply stream
// or a call without reply before its deadline fails every call on the connection at once
// with the same error, and later calls fail immediately. A benchmark must report that, not
// hide it.
type rpcConn struct {
	conn    net.Conn
	addr    string
	cred    rpc.Auth
	timeout time.Duration

	xid atomic.Uint32

	// Sending: a caller that finds nobody writing writes its record itself, and then also
	// whatever other callers queued meanwhile, in one writev: under load many calls share a
	// system call, while a lone call pays no hand-off to a sender goroutine.
	sendMu    sync.Mutex
	sendQ     net.Buffers // records waiting for the writing caller
	sendSpare net.Buffers
	sending   bool

	mu      sync.Mutex
	pending map[uint32]*rpcCall
	current *rpcCall // the call whose reply is being read (no longer in pending)
	broken  error    // set once; every later call fails with it

	done     chan struct{} // closed when the receive loop has ended
	stop     chan struct{} // closed by close to end the watchdog
	stopOnce sync.Once
}

// readBufferSize is the receive buffer: the replies of many small calls in flight arrive
// with one read, while what a fill takes of a large READ reply's data is copied once more
// (the rest goes straight into the caller's buffer, see record.raw).
const readBufferSize = 64 << 10

// rpcCall is one call waiting for its reply.
type rpcCall struct {
	name     string // procedure name, for errors
	deadline time.Time
	// decode reads the procedure's results from the reply; it runs on the receive goroutine
	// while the caller waits, so it may write into the caller's buffers.
	decode func(d *decoder) error
	done   chan error
}

// errClosed is what calls on a closed connection fail with.
var errClosed = errors.New("connection closed")

// newRPCConn starts the receive loop and the deadline watchdog on conn.
func newRPCConn(conn net.Conn, cred rpc.Auth, timeout time.Duration) *rpcConn {
	c := &rpcConn{
		conn:    conn,
		addr:    conn.RemoteAddr().String(),
		cred:    cred,
		timeout: timeout,
		pending: map[uint32]*rpcCall{},
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
	}
	c.xid.Store(uint32(time.Now().UnixNano()))
	go c.receive()
	go c.watchdog()
	return c
}

// call sends one call and waits for its reply. args encodes the procedure's arguments;
// payload, if any, is sent after them without copying (it must already be counted in the
// arguments' opaque length) and padded to 4 bytes. The call fails when no reply has come by
// deadline (zero: now + the connection's timeout).
func (c *rpcConn) call(prog, vers, proc uint32, name string, deadline time.Time, args func(b *xdrBuf), payload []byte, decode func(d *decoder) error) error {
	if deadline.IsZero() {
		deadline = time.Now().Add(c.timeout)
	}
	xid := c.xid.Add(1)
	hdr := make(xdrBuf, 0, 160+len(c.cred.Body))
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
		args(&hdr)
	}
	padLen := pad4(len(payload))
	size := len(hdr) - 4 + len(payload) + padLen
	if size > 0x7fffffff {
		return fmt.Errorf("%s: call of %d bytes is too large", name, size)
	}
	hdr[0], hdr[1], hdr[2], hdr[3] = byte(size>>24)|0x80, byte(size>>16), byte(size>>8), byte(size)

	call := &rpcCall{name: name, deadline: deadline, decode: decode, done: make(chan error, 1)}
	// Register before sending: the reply may arrive before Write returns.
	c.mu.Lock()
	if c.broken != nil {
		err := c.broken
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", name, err)
	}
	c.pending[xid] = call
	c.mu.Unlock()

	if len(payload) == 0 {
		c.send(hdr)
	} else {
		c.send(hdr, payload, zeroPad[:padLen])
	}
	if err := <-call.done; err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// send writes one record, given as consecutive pieces, or queues it for the caller that is
// writing. A write error fails the connection, and with it every call waiting for a reply,
// so callers learn about it from their reply.
func (c *rpcConn) send(pieces ...[]byte) {
	c.sendMu.Lock()
	for _, p := range pieces {
		if len(p) > 0 {
			c.sendQ = append(c.sendQ, p)
		}
	}
	if c.sending {
		c.sendMu.Unlock()
		return
	}
	c.sending = true
	for len(c.sendQ) > 0 {
		batch := c.sendQ
		c.sendQ = c.sendSpare[:0]
		c.sendMu.Unlock()
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
		w := batch
		_, err := w.WriteTo(c.conn)
		clear(batch)
		c.sendMu.Lock()
		c.sendSpare = batch[:0]
		if err != nil {
			// A partly written record leaves the stream unusable for everyone.
			c.sendQ = nil
			c.sending = false
			c.sendMu.Unlock()
			c.fail(fmt.Errorf("send to %s: %w", c.addr, err))
			return
		}
	}
	c.sending = false
	c.sendMu.Unlock()
}

// receive reads replies and hands each to the call with its XID until the connection fails.
func (c *rpcConn) receive() {
	defer close(c.done)
	rec := &record{br: bufio.NewReaderSize(c.conn, readBufferSize), raw: c.conn}
	d := &decoder{r: rec}
	for {
		if err := rec.begin(); err != nil {
			c.fail(c.connErr(err))
			return
		}
		d.err = nil
		xid := d.u32()
		if d.err != nil {
			c.fail(c.connErr(d.err))
			return
		}
		c.mu.Lock()
		call := c.pending[xid]
		delete(c.pending, xid)
		c.current = call
		c.mu.Unlock()

		var err error
		if call == nil {
			// Not ours (or already failed): skip it.
		} else if err = readReplyHeader(d); err == nil && call.decode != nil {
			err = call.decode(d)
		}
		if rec.ioErr == nil {
			rec.discard()
		}
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
		if rec.ioErr != nil {
			cerr := c.connErr(rec.ioErr)
			if call != nil {
				call.done <- cerr
			}
			c.fail(cerr)
			return
		}
		if call != nil {
			call.done <- err
		}
	}
}

// connErr describes a receive error; after close it is errClosed.
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
	tick := c.timeout / 20
	tick = min(max(tick, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.done:
			return
		case now := <-t.C:
			c.mu.Lock()
			var late *rpcCall
			if c.current != nil && now.After(c.current.deadline) {
				late = c.current
			}
			for _, call := range c.pending {
				if now.After(call.deadline) {
					late = call
					break
				}
			}
			c.mu.Unlock()
			if late != nil {
				c.fail(fmt.Errorf("no reply from %s to %s within %s", c.addr, late.name, c.timeout))
			}
		}
	}
}

// fail breaks the connection: every waiting call and every later call gets err.
func (c *rpcConn) fail(err error) {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return
	}
	c.broken = err
	calls := c.pending
	c.pending = map[uint32]*rpcCall{}
	c.mu.Unlock()
	_ = c.conn.Close()
	for _, call := range calls {
		call.done <- err
	}
}

// close ends the connection and waits for the receive loop.
func (c *rpcConn) close() {
	c.fail(errClosed)
	<-c.done
	c.stopOnce.Do(func() { close(c.stop) })
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
