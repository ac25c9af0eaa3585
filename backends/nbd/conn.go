package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
	"github.com/vmstorbench/vmstorbench/internal/readtoken"
	"github.com/vmstorbench/vmstorbench/internal/socktransport"
)

// maxInFlight bounds the requests one connection has in flight; callers beyond it wait for a
// free slot. Servers take fewer at a time (qemu-nbd and vm/nbdexport 16) and leave the rest
// in the socket: TCP's flow control queues them.
const maxInFlight = 256

// readBufferSize is the reader's buffer: many small replies arrive with one read, large read
// payloads bypass it.
const readBufferSize = 64 << 10

// ErrClosed is the error of requests issued after Close.
var ErrClosed = errors.New("connection closed")

// TimeoutError is a request the server did not answer within the timeout.
type TimeoutError struct {
	Op    string
	Limit time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("no reply from the server within %v to %s (server hung or unreachable); connection closed", e.Limit, e.Op)
}

// Timeout marks the error as a timeout for net.Error-style checks.
func (e *TimeoutError) Timeout() bool { return true }

// ServerError is an error value the server replied with to one request.
type ServerError struct {
	Errno uint32
}

func (e *ServerError) Error() string {
	s := "server replied " + nbdproto.ErrnoName(e.Errno)
	switch e.Errno {
	case nbdproto.ErrPerm:
		s += " (the export refuses the request; read-only?)"
	case nbdproto.ErrShutdown:
		s += " (the server is shutting down)"
	}
	return s
}

// conn is one NBD connection in the transmission phase. Its do method is safe for
// concurrent use: each request is tagged with its own handle, and replies are matched to the
// requests in flight in whatever order the server sends them.
//
// Replies are read by the callers themselves, one at a time (leader/follower, package
// readtoken): a caller that waits for its reply takes the read token if it is free and reads
// and dispatches replies, for itself and for others, until its own is in; then it hands the
// token to another waiting caller. When requests are in flight but no caller waits to read, a
// background goroutine reads instead.
//
// A handle is slot | generation<<32: a reply for a slot not in flight, or for an earlier use
// of it, is a protocol violation that ends the connection. Every request has a deadline
// (timeout from submission, checked by a watchdog); when one passes, or the connection
// breaks, every request in flight fails at once and the connection is closed.
type conn struct {
	tr      socktransport.Transport
	br      *bufio.Reader           // over tr; the read token's holder only
	rhdr    [nbdproto.ReplyLen]byte // the read token's holder only
	timeout time.Duration
	epoch   time.Time
	blocked func()       // tok.Kick, bound once (a method value allocates)
	life    sync.RWMutex // read-held by do: close frees the socket when no call uses it

	wmu sync.Mutex // one writer at a time: a request's header and payload go in one sendmsg

	mu      sync.Mutex
	tok     readtoken.Token // the read token; its state is under mu
	calls   []*call
	failErr error
	failed  chan struct{} // closed by fail
	free    chan *call

	bgDone    chan struct{}
	watchDone chan struct{}
	closeOnce sync.Once
}

// call is one slot for a request in flight; slots are reused.
type call struct {
	idx     uint32
	gen     uint32 // under conn.mu
	typ     uint16 // under conn.mu
	buf     []byte // a read's destination, under conn.mu
	start   int64  // submission time (conn.now), under conn.mu
	filling bool   // under conn.mu: the token holder is copying the payload into buf
	a       *async // the async client that owns the slot, or nil (conn.mu)
	tag     uint64 // the async client's tag of the request
	hdr     [nbdproto.RequestLen]byte
	vec     [2][]byte // header and write payload, for one sendmsg
	// The request's state in the read token (in flight: Active), under conn.mu.
	readtoken.Waiter
}

// newConn starts the transmission phase on nc, which the handshake left with nothing to
// read. A TCP or Unix socket is used with blocking system calls (package socktransport);
// other connections (TLS) as they are.
func newConn(nc net.Conn, timeout time.Duration) *conn {
	tr := socktransport.New(nc)
	c := &conn{
		tr: tr, br: bufio.NewReaderSize(tr, readBufferSize), timeout: timeout, epoch: time.Now(),
		calls: make([]*call, maxInFlight), failed: make(chan struct{}), free: make(chan *call, maxInFlight),
		bgDone: make(chan struct{}), watchDone: make(chan struct{}),
	}
	c.tok.Init(&c.mu, (*tokenReader)(c), c.failed)
	for i := range c.calls {
		cl := &call{idx: uint32(i), Waiter: readtoken.NewWaiter()}
		c.calls[i] = cl
		c.free <- cl
	}
	c.blocked = c.tok.Kick
	go func() {
		defer close(c.bgDone)
		c.tok.Background()
	}()
	go c.watch()
	return c
}

func (c *conn) now() int64 { return int64(time.Since(c.epoch)) }

// err returns why the connection failed, or nil.
func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failErr
}

// complete ends cl's request with err. c.mu must be held.
func (c *conn) complete(cl *call, err error) {
	cl.filling, cl.buf = false, nil
	if a := cl.a; a != nil {
		c.tok.CompleteAsync(&cl.Waiter, &a.Async)
		a.completed(cl, err)
		return
	}
	c.tok.Complete(&cl.Waiter, err)
}

// tokenReader is the connection as the read token's Reader.
type tokenReader conn

func (r *tokenReader) ReadOne() (*readtoken.Waiter, error) { return (*conn)(r).readOne() }

// Buffered reports whether a whole reply header is buffered (a read's payload may follow).
func (r *tokenReader) Buffered() bool { return r.br.Buffered() >= nbdproto.ReplyLen }

func (r *tokenReader) Fail(err error) { (*conn)(r).fail(err) }

// fail ends the connection with err (the first error wins): every request in flight gets
// err, except the one whose payload the token holder is receiving (it completes that one),
// and the socket is closed so that the reader and blocked writers return.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.failErr != nil {
		c.mu.Unlock()
		return
	}
	c.failErr = err
	close(c.failed)
	for _, cl := range c.calls {
		if cl.Active() && !cl.filling {
			c.complete(cl, err)
		}
	}
	c.mu.Unlock()
	c.tr.Shutdown()
}

// activateLocked makes cl a request in flight of type typ (reading into buf), of async client
// a (nil: a caller that waits for it), and returns its handle, unless the connection has
// failed. Called with c.mu held; on error cl is still the caller's, to give back.
func (c *conn) activateLocked(cl *call, typ uint16, buf []byte, a *async) (handle uint64, err error) {
	if c.failErr != nil {
		return 0, c.failErr
	}
	cl.gen++
	cl.typ, cl.buf, cl.start = typ, buf, c.now()
	if a != nil {
		cl.a = a
		c.tok.Start(&cl.Waiter, &a.Async)
	} else {
		c.tok.Start(&cl.Waiter, nil)
	}
	return uint64(cl.gen)<<32 | uint64(cl.idx), nil
}

// do sends one request and waits for its reply. For a read, buf receives the payload; for
// a write, payload is sent.
func (c *conn) do(typ, flags uint16, off uint64, length uint32, buf, payload []byte) error {
	c.life.RLock()
	defer c.life.RUnlock()
	var cl *call
	select {
	case cl = <-c.free:
	case <-c.failed:
		return c.err()
	}
	c.mu.Lock()
	handle, err := c.activateLocked(cl, typ, buf, nil)
	c.mu.Unlock()
	if err != nil {
		c.free <- cl
		return err
	}

	nbdproto.Request{Flags: flags, Type: typ, Handle: handle, Offset: off, Length: length}.Put(cl.hdr[:])
	cl.vec[0], cl.vec[1] = cl.hdr[:], payload
	c.wmu.Lock()
	// Before the write blocks (the server does not read), make sure someone reads its
	// replies: a server blocked sending them would never read our request.
	err = c.tr.WriteBuffers(cl.vec[:], c.blocked)
	c.wmu.Unlock()
	cl.vec[1] = nil
	if err != nil {
		c.fail(c.connErr("send", err))
	}
	err = c.tok.Wait(&cl.Waiter)
	c.free <- cl
	return err
}

// connErr describes a broken connection; a connection we closed ourselves reports why.
func (c *conn) connErr(op string, err error) error {
	if ferr := c.err(); ferr != nil {
		return ferr
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: the server closed the connection", op)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// readOne reads one reply and completes its request, whose Waiter it returns. Only the read
// token's holder calls it. An error ends the connection (the caller calls fail).
func (c *conn) readOne() (*readtoken.Waiter, error) {
	h := c.rhdr[:]
	if _, err := io.ReadFull(c.br, h); err != nil {
		return nil, c.connErr("receive", err)
	}
	errno, handle, err := nbdproto.ParseSimpleReply(h)
	if err != nil {
		return nil, err
	}
	idx, gen := uint32(handle), uint32(handle>>32)
	c.mu.Lock()
	var cl *call
	if idx < uint32(len(c.calls)) {
		cl = c.calls[idx]
	}
	if cl == nil || !cl.Active() || cl.gen != gen {
		c.mu.Unlock()
		return nil, fmt.Errorf("the server replied to handle %#x, which no request in flight has", handle)
	}
	if cl.typ != nbdproto.CmdRead || errno != 0 {
		// No payload follows: a simple reply to a read that failed carries none.
		if errno != 0 {
			c.complete(cl, &ServerError{Errno: errno})
		} else {
			c.complete(cl, nil)
		}
		c.mu.Unlock()
		return &cl.Waiter, nil
	}
	cl.filling = true
	buf := cl.buf
	c.mu.Unlock()
	if err = c.readPayload(buf); err != nil {
		err = c.connErr("receive read data", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.complete(cl, err)
	if err != nil {
		return nil, err
	}
	return &cl.Waiter, nil
}

// quickACKConn acknowledges at once what it reads (TCP_QUICKACK after every read). Without
// it, a server that writes a reply in two small pieces with Nagle's algorithm on (qemu-nbd
// does so under TLS: a record for the header, one for the data) waits for our delayed ACK,
// 40 ms, before the second: measured 44 ms per 4 KiB read through qemu-nbd --tls-creds,
// and 0.4 ms with it.
type quickACKConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// quickACK wraps a TCP connection in a quickACKConn; other connections are returned as
// they are.
func quickACK(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &quickACKConn{TCPConn: tc, rc: rc}
}

func (c *quickACKConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	_ = c.rc.Control(setQuickACK)
	return n, err
}

func setQuickACK(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) }

// fullReader is implemented by transports that fill a buffer with one call.
type fullReader interface{ ReadFull(p []byte) error }

// readPayload fills buf: what the buffered reader holds, then the rest straight from the
// transport (with one system call for the whole payload on a blocking socket).
func (c *conn) readPayload(buf []byte) error {
	if n := c.br.Buffered(); n > 0 {
		k, _ := c.br.Read(buf[:min(n, len(buf))])
		buf = buf[k:]
	}
	if len(buf) == 0 {
		return nil
	}
	if fr, ok := c.tr.(fullReader); ok {
		return fr.ReadFull(buf)
	}
	_, err := io.ReadFull(c.br, buf)
	return err
}

// watchTick is how often the watchdog looks for overdue requests: a request fails at most
// one tick after its deadline.
func watchTick(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 10*time.Millisecond), time.Second)
}

// watch fails the connection when a request has been in flight longer than the timeout.
func (c *conn) watch() {
	defer close(c.watchDone)
	t := time.NewTicker(watchTick(c.timeout))
	defer t.Stop()
	for {
		select {
		case <-c.failed:
			return
		case <-t.C:
		}
		now := c.now()
		var late uint16
		overdue := false
		c.mu.Lock()
		for _, cl := range c.calls {
			if cl.Active() && time.Duration(now-cl.start) > c.timeout {
				late, overdue = cl.typ, true
				break
			}
		}
		c.mu.Unlock()
		if overdue {
			c.fail(&TimeoutError{Op: cmdName(late), Limit: c.timeout})
		}
	}
}

func cmdName(typ uint16) string {
	switch typ {
	case nbdproto.CmdRead:
		return "a read"
	case nbdproto.CmdWrite:
		return "a write"
	case nbdproto.CmdFlush:
		return "a flush"
	}
	return fmt.Sprintf("command %d", typ)
}

// close disconnects politely (NBD_CMD_DISC) when the connection is healthy, then closes it
// and waits for the reader and the watchdog to end.
func (c *conn) close() error {
	var err error
	c.closeOnce.Do(func() {
		if c.err() == nil {
			var h [nbdproto.RequestLen]byte
			nbdproto.Request{Type: nbdproto.CmdDisc}.Put(h[:])
			// A server that stopped reading must not hang Close: the write is bounded.
			t := time.AfterFunc(min(c.timeout, 5*time.Second), c.tr.Shutdown)
			c.wmu.Lock()
			if werr := c.tr.WriteBuffers([][]byte{h[:]}, func() {}); werr != nil {
				err = fmt.Errorf("nbd: disconnect: %w", werr)
			}
			c.wmu.Unlock()
			t.Stop()
		}
		c.fail(ErrClosed)
		<-c.bgDone
		<-c.watchDone
		// Calls still in do return at once (the connection failed); later ones see the
		// failure before they touch the socket.
		c.life.Lock()
		defer c.life.Unlock()
		// The transport of a TLS connection was closed by fail already.
		if cerr := c.tr.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("nbd: close: %w", cerr)
		}
	})
	return err
}

// handshakeConfig is what the negotiation needs.
type handshakeConfig struct {
	export string
	tls    *tls.Config // nil: no TLS
}

// handshake runs the fixed newstyle negotiation on nc (bounded by ctx and timeout) and
// returns the connection to use for transmission (TLS-wrapped if negotiated) and the
// export's information.
func handshake(ctx context.Context, nc net.Conn, hc handshakeConfig, timeout time.Duration) (net.Conn, nbdproto.ExportInfo, error) {
	var info nbdproto.ExportInfo
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := nc.SetDeadline(deadline); err != nil {
		return nil, info, err
	}
	// A cancelled context interrupts the negotiation too.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	br := bufio.NewReaderSize(nc, readBufferSize)
	var hello [nbdproto.HelloLen]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return nil, info, negotiationErr("greeting", err)
	}
	flags, err := nbdproto.ParseHello(hello[:])
	if err != nil {
		return nil, info, err
	}
	if flags&nbdproto.FlagFixedNewstyle == 0 {
		return nil, info, errors.New("nbd: the server does not offer fixed newstyle negotiation (only plain newstyle); not supported")
	}
	clientFlags := uint32(nbdproto.FlagFixedNewstyle)
	noZeroes := flags&nbdproto.FlagNoZeroes != 0
	if noZeroes {
		clientFlags |= nbdproto.FlagNoZeroes
	}
	if _, err := nc.Write(binary.BigEndian.AppendUint32(nil, clientFlags)); err != nil {
		return nil, info, negotiationErr("client flags", err)
	}
	o := &optionIO{r: br, w: nc}
	if hc.tls != nil {
		typ, msg, err := o.simple(nbdproto.OptStartTLS, nil)
		if err != nil {
			return nil, info, err
		}
		if typ != nbdproto.RepAck {
			return nil, info, fmt.Errorf("nbd: the server refused TLS (NBD_OPT_STARTTLS: %s%s); remove tls= to connect without it", nbdproto.RepName(typ), msgSuffix(msg))
		}
		if br.Buffered() > 0 {
			return nil, info, errors.New("nbd: the server sent data before the TLS handshake")
		}
		tc := tls.Client(quickACK(nc), hc.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, info, fmt.Errorf("nbd: TLS handshake: %w", err)
		}
		nc = tc
		br = bufio.NewReaderSize(nc, readBufferSize)
		o = &optionIO{r: br, w: nc}
	}
	info, err = o.goExport(hc.export, noZeroes)
	if err != nil {
		return nil, info, err
	}
	if br.Buffered() > 0 {
		return nil, info, errors.New("nbd: the server sent data after the negotiation, before any request")
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, info, err
	}
	return nc, info, nil
}

func negotiationErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("nbd: negotiation (%s): the server closed the connection", what)
	}
	return fmt.Errorf("nbd: negotiation (%s): %w", what, err)
}

func msgSuffix(msg []byte) string {
	if len(msg) == 0 {
		return ""
	}
	return ": " + sanitize(msg)
}

// sanitize makes a server's message safe to print: printable ASCII, at most 200 bytes.
func sanitize(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	out := make([]byte, len(b))
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			ch = '?'
		}
		out[i] = ch
	}
	return fmt.Sprintf("%q", out)
}

// optionIO sends options and reads their replies during negotiation.
type optionIO struct {
	r *bufio.Reader
	w io.Writer
}

func (o *optionIO) send(opt uint32, data []byte) error {
	if _, err := o.w.Write(nbdproto.AppendOption(nil, opt, data)); err != nil {
		return negotiationErr("send option", err)
	}
	return nil
}

// reply reads one option reply to opt and returns its type and payload.
func (o *optionIO) reply(opt uint32) (uint32, []byte, error) {
	var h [nbdproto.OptionReplyHeaderLen]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		return 0, nil, negotiationErr("option reply", err)
	}
	ropt, typ, n, err := nbdproto.ParseOptionReplyHeader(h[:])
	if err != nil {
		return 0, nil, err
	}
	if ropt != opt {
		return 0, nil, fmt.Errorf("nbd: the server replied to option %d while option %d was asked", ropt, opt)
	}
	if n > nbdproto.MaxOptionBytes {
		return 0, nil, fmt.Errorf("nbd: option reply of %d bytes is too long", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(o.r, p); err != nil {
		return 0, nil, negotiationErr("option reply", err)
	}
	return typ, p, nil
}

// simple sends an option that is answered by one reply (ACK or an error).
func (o *optionIO) simple(opt uint32, data []byte) (uint32, []byte, error) {
	if err := o.send(opt, data); err != nil {
		return 0, nil, err
	}
	typ, p, err := o.reply(opt)
	if err != nil {
		return 0, nil, err
	}
	if typ != nbdproto.RepAck && typ&nbdproto.RepFlagError == 0 {
		return 0, nil, fmt.Errorf("nbd: unexpected %s to option %d", nbdproto.RepName(typ), opt)
	}
	return typ, p, nil
}

// goExport selects the export with NBD_OPT_GO (asking for its block sizes, which the
// client then honours), falling back to NBD_OPT_EXPORT_NAME on servers without NBD_OPT_GO.
func (o *optionIO) goExport(name string, noZeroes bool) (nbdproto.ExportInfo, error) {
	var info nbdproto.ExportInfo
	if err := o.send(nbdproto.OptGo, nbdproto.AppendInfoRequest(nil, name, nbdproto.InfoBlockSize)); err != nil {
		return info, err
	}
	haveExport := false
	for {
		typ, p, err := o.reply(nbdproto.OptGo)
		if err != nil {
			return info, err
		}
		switch {
		case typ == nbdproto.RepInfo:
			if err := info.ParseInfo(p); err != nil {
				return info, err
			}
			if binary.BigEndian.Uint16(p) == nbdproto.InfoExport { // ParseInfo checked len(p) >= 2
				haveExport = true
			}
		case typ == nbdproto.RepAck:
			if !haveExport {
				return info, errors.New("nbd: the server accepted NBD_OPT_GO without sending the export's size (NBD_INFO_EXPORT)")
			}
			return info, nil
		case typ == nbdproto.RepErrUnsup:
			return o.exportName(name, noZeroes)
		case typ == nbdproto.RepErrTLSReqd:
			return info, fmt.Errorf("nbd: export %q: the server requires TLS%s; add tls=on (with tls_ca= naming the CA that signed the server's certificate)", name, msgSuffix(p))
		case typ == nbdproto.RepErrUnknown:
			return info, fmt.Errorf("nbd: the server has no export %q%s", name, msgSuffix(p))
		case typ&nbdproto.RepFlagError != 0:
			return info, fmt.Errorf("nbd: the server refused export %q: %s%s", name, nbdproto.RepName(typ), msgSuffix(p))
		default:
			return info, fmt.Errorf("nbd: unexpected %s to NBD_OPT_GO", nbdproto.RepName(typ))
		}
	}
}

// exportName selects the export the old way: no error reply, the server hangs up on an
// unknown name.
func (o *optionIO) exportName(name string, noZeroes bool) (nbdproto.ExportInfo, error) {
	var info nbdproto.ExportInfo
	if err := o.send(nbdproto.OptExportName, []byte(name)); err != nil {
		return info, err
	}
	n := 10
	if !noZeroes {
		n += 124
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(o.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return info, fmt.Errorf("nbd: the server closed the connection on NBD_OPT_EXPORT_NAME %q (no such export?)", name)
		}
		return info, negotiationErr("export name", err)
	}
	info.Size, info.Flags = binary.BigEndian.Uint64(b), binary.BigEndian.Uint16(b[8:])
	return info, nil
}
