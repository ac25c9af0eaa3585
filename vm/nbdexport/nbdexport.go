// Package nbdexport serves any backends.Target over NBD on 127.0.0.1, so that QEMU (whose
// nbd:// client is built in) can use storage it has no driver for, SMB above all, through
// vmstorbench's own backend. This package adapts the Target, listens, and tracks connections
// so Close leaves nothing behind.
//
// The server is its own: fixed newstyle negotiation (NBD_OPT_GO, _INFO, _EXPORT_NAME,
// _LIST, _ABORT, and _STARTTLS on an export made WithTLS), then simple replies to READ,
// WRITE (with FUA), FLUSH and DISC. Each connection serves up to ConnWorkers requests at the same time and replies in
// the order they complete, as the protocol allows (replies carry the request's handle): a
// backend that pipelines requests (SMB, NFS, iSCSI) gets the guest's queue depth, not one
// request at a time. FLUSH and FUA call the Target's Sync, so a guest's flush reaches the
// backend. A request the backend fails is answered with EIO and the connection goes on.
package nbdexport

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// ConnWorkers is how many requests one connection serves at the same time: QEMU's NBD client
// keeps up to 16 in flight.
const ConnWorkers = 16

// Block sizes offered to the client: 512-byte requests work on every backend (O_DIRECT
// included), 4 KiB is what they prefer, and larger requests than MaxRequest are refused.
const (
	minBlock       = 512
	preferredBlock = 4096
	MaxRequest     = 32 << 20
)

// maxRecordedErrors bounds the backend errors Err keeps.
const maxRecordedErrors = 16

// negotiationTimeout bounds a connection's negotiation, TLS handshake included: QEMU
// negotiates at once, and a client that stalls there holds a connection for nothing.
const negotiationTimeout = 30 * time.Second

// readBufferSize is the buffered reader's size on each connection.
const readBufferSize = 64 << 10

// Export is a running NBD export of one Target.
type Export struct {
	name     string
	target   backends.Target
	readOnly bool
	// tls, when set, is required of every client (WithTLS).
	tls  *tls.Config
	ln   net.Listener
	bufs sync.Pool // *[]byte request buffers

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	errs  []error
	wg    sync.WaitGroup
	// onErr, when set, hears every backend error as it happens: a migration run attributes
	// a stalled disk to its server from it within moments, not at a timeout.
	onErr func(error)
}

// OnError sets f to be called (from the serving goroutine, so it must not block) with every
// error the backend returns.
func (e *Export) OnError(f func(error)) {
	e.mu.Lock()
	e.onErr = f
	e.mu.Unlock()
}

// Option configures an export.
type Option func(*Export)

// WithTLS makes the export require TLS with config (nil: plain, as without the option):
// the protocol's FORCEDTLS mode. A client must send NBD_OPT_STARTTLS first; every other
// option before it is answered NBD_REP_ERR_TLS_REQD (NBD_OPT_ABORT excepted), and
// NBD_OPT_EXPORT_NAME, which cannot be refused with a reply, ends the connection. A config
// that requires client certificates (ClientAuth) refuses clients without one in the
// handshake.
func WithTLS(config *tls.Config) Option {
	return func(e *Export) { e.tls = config }
}

// Serve exports target under name on a free port of 127.0.0.1. readOnly refuses writes. A
// client asking for the empty name (the default export) gets it too.
func Serve(target backends.Target, name string, readOnly bool, opts ...Option) (*Export, error) {
	if name == "" {
		return nil, errors.New("nbd export: empty export name")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("nbd export: listen: %w", err)
	}
	return ServeListener(ln, target, name, readOnly, opts...)
}

// ServeListener is Serve on a listener the caller made (a testbed DRBD node exports its
// device on the guest's address, where QEMU's port forward reaches it). The export owns ln.
func ServeListener(ln net.Listener, target backends.Target, name string, readOnly bool, opts ...Option) (*Export, error) {
	if name == "" {
		ln.Close()
		return nil, errors.New("nbd export: empty export name")
	}
	e := &Export{name: name, target: target, readOnly: readOnly, ln: ln, conns: map[net.Conn]struct{}{}}
	for _, o := range opts {
		o(e)
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetNoDelay(true)
			}
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				err := e.handle(c)
				c.Close()
				e.mu.Lock()
				delete(e.conns, c)
				// A client hanging up is the normal end of a connection.
				if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) {
					e.errs = append(e.errs, err)
				}
				e.mu.Unlock()
			}()
		}
	}()
	return e, nil
}

// Addr is the export's host:port.
func (e *Export) Addr() string { return e.ln.Addr().String() }

// URL is the export as QEMU's nbd driver takes it: nbd://127.0.0.1:port/name.
func (e *Export) URL() string {
	return (&url.URL{Scheme: "nbd", Host: e.Addr(), Path: "/" + e.name}).String()
}

// Err returns the errors connections ended with (other than clients hanging up) and the
// first errors of the backend (which the client was answered EIO for).
func (e *Export) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.errs...)
}

// Close stops listening, closes every connection and waits for them to end. The Target is
// the caller's to close.
func (e *Export) Close() error {
	err := e.ln.Close()
	e.mu.Lock()
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

func (e *Export) recordErr(err error) {
	e.mu.Lock()
	if len(e.errs) < maxRecordedErrors {
		e.errs = append(e.errs, err)
	}
	f := e.onErr
	e.mu.Unlock()
	if f != nil {
		f(err)
	}
}

// handle serves one connection: negotiation (within negotiationTimeout), then transmission
// until the client disconnects.
func (e *Export) handle(c net.Conn) error {
	if err := c.SetDeadline(time.Now().Add(negotiationTimeout)); err != nil {
		return err
	}
	conn, r, ok, err := e.negotiate(c, bufio.NewReaderSize(c, readBufferSize))
	if conn != c {
		// TLS: end the session (close_notify) before the caller closes the socket, as
		// the protocol asks of a soft disconnect.
		defer conn.Close()
	}
	if err != nil || !ok {
		return err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		return err
	}
	return e.transmit(r, conn)
}

// transmissionFlags are the export's flags as the client sees them.
func (e *Export) transmissionFlags() uint16 {
	f := uint16(nbdproto.TFlagHasFlags | nbdproto.TFlagSendFlush | nbdproto.TFlagSendFUA | nbdproto.TFlagCanMultiConn)
	if e.readOnly {
		f |= nbdproto.TFlagReadOnly
	}
	return f
}

// negotiate runs the fixed newstyle handshake on c, read through r. It returns the
// connection and reader transmission goes on with (TLS over c once NBD_OPT_STARTTLS was
// negotiated, else c and r), and true when the client chose the export and transmission
// begins, false when the client ended the negotiation.
func (e *Export) negotiate(c net.Conn, r *bufio.Reader) (net.Conn, *bufio.Reader, bool, error) {
	var hello [nbdproto.HelloLen]byte
	nbdproto.PutHello(hello[:], nbdproto.FlagFixedNewstyle|nbdproto.FlagNoZeroes)
	if _, err := c.Write(hello[:]); err != nil {
		return c, r, false, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(r, cf[:]); err != nil {
		return c, r, false, err
	}
	clientFlags := binary.BigEndian.Uint32(cf[:])
	if clientFlags&nbdproto.FlagFixedNewstyle == 0 {
		return c, r, false, errors.New("nbd export: client does not speak fixed newstyle negotiation")
	}
	noZeroes := clientFlags&nbdproto.FlagNoZeroes != 0
	tlsUp := false
	for {
		var h [nbdproto.OptionHeaderLen]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return c, r, false, err
		}
		opt, n, err := nbdproto.ParseOptionHeader(h[:])
		if err != nil {
			return c, r, false, fmt.Errorf("nbd export: %w", err)
		}
		if n > nbdproto.MaxOptionBytes {
			return c, r, false, fmt.Errorf("nbd export: option %d of %d bytes is too long", opt, n)
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(r, data); err != nil {
			return c, r, false, err
		}
		if e.tls != nil && !tlsUp {
			// FORCEDTLS: nothing but STARTTLS and ABORT before TLS.
			switch opt {
			case nbdproto.OptStartTLS:
				if len(data) > 0 {
					if err := optReply(c, opt, nbdproto.RepErrInvalid, []byte("NBD_OPT_STARTTLS carries no data")); err != nil {
						return c, r, false, err
					}
					continue
				}
				// The client waits for the ACK before its handshake: anything already
				// buffered was sent in the clear and must not be taken as part of it.
				if r.Buffered() > 0 {
					return c, r, false, errors.New("nbd export: client sent data after NBD_OPT_STARTTLS before the server's reply")
				}
				if err := optReply(c, opt, nbdproto.RepAck, nil); err != nil {
					return c, r, false, err
				}
				tc := tls.Server(c, e.tls)
				if err := tc.Handshake(); err != nil {
					return c, r, false, fmt.Errorf("nbd export: TLS handshake: %w", err)
				}
				// Option haggling starts again, over TLS.
				c, r, tlsUp = tc, bufio.NewReaderSize(tc, readBufferSize), true
				continue
			case nbdproto.OptExportName:
				// No reply can refuse it: the protocol has the server hang up.
				return c, r, false, errors.New("nbd export: client chose the export with NBD_OPT_EXPORT_NAME without TLS, which the export requires")
			case nbdproto.OptAbort:
			default:
				if err := optReply(c, opt, nbdproto.RepErrTLSReqd, []byte("this export requires TLS: send NBD_OPT_STARTTLS first")); err != nil {
					return c, r, false, err
				}
				continue
			}
		}
		switch opt {
		case nbdproto.OptExportName:
			// The old way to choose an export: no reply on an unknown name but a hang-up.
			if !e.isName(string(data)) {
				return c, r, false, fmt.Errorf("nbd export: client asked for export %q", data)
			}
			b := binary.BigEndian.AppendUint64(nil, uint64(e.target.Size()))
			b = binary.BigEndian.AppendUint16(b, e.transmissionFlags())
			if !noZeroes {
				b = append(b, make([]byte, 124)...)
			}
			_, err := c.Write(b)
			return c, r, err == nil, err
		case nbdproto.OptAbort:
			return c, r, false, optReply(c, opt, nbdproto.RepAck, nil)
		case nbdproto.OptList:
			name := binary.BigEndian.AppendUint32(nil, uint32(len(e.name)))
			if err := optReply(c, opt, nbdproto.RepServer, append(name, e.name...)); err != nil {
				return c, r, false, err
			}
			if err := optReply(c, opt, nbdproto.RepAck, nil); err != nil {
				return c, r, false, err
			}
		case nbdproto.OptInfo, nbdproto.OptGo:
			name, _, ok := nbdproto.ParseInfoRequest(data)
			var err error
			switch {
			case !ok:
				err = optReply(c, opt, nbdproto.RepErrInvalid, []byte("malformed request"))
			case !e.isName(name):
				err = optReply(c, opt, nbdproto.RepErrUnknown, []byte("no such export"))
			default:
				if err = e.sendInfo(c, opt); err == nil && opt == nbdproto.OptGo {
					return c, r, true, nil
				}
			}
			if err != nil {
				return c, r, false, err
			}
		case nbdproto.OptStartTLS:
			// Here TLS is up already, or the export has none (NOTLS mode: unsupported).
			typ := uint32(nbdproto.RepErrUnsup)
			if tlsUp {
				typ = nbdproto.RepErrInvalid
			}
			if err := optReply(c, opt, typ, nil); err != nil {
				return c, r, false, err
			}
		default:
			if err := optReply(c, opt, nbdproto.RepErrUnsup, nil); err != nil {
				return c, r, false, err
			}
		}
	}
}

func (e *Export) isName(name string) bool { return name == e.name || name == "" }

// sendInfo answers NBD_OPT_INFO/GO for the export: size and flags, block sizes, done.
func (e *Export) sendInfo(w io.Writer, opt uint32) error {
	exp := nbdproto.AppendInfoExport(nil, uint64(e.target.Size()), e.transmissionFlags())
	if err := optReply(w, opt, nbdproto.RepInfo, exp); err != nil {
		return err
	}
	bs := nbdproto.AppendInfoBlockSize(nil, minBlock, preferredBlock, MaxRequest)
	if err := optReply(w, opt, nbdproto.RepInfo, bs); err != nil {
		return err
	}
	return optReply(w, opt, nbdproto.RepAck, nil)
}

func optReply(w io.Writer, opt, typ uint32, payload []byte) error {
	_, err := w.Write(nbdproto.AppendOptionReply(make([]byte, 0, nbdproto.OptionReplyHeaderLen+len(payload)), opt, typ, payload))
	return err
}

// request is one command of the transmission phase.
type request struct {
	typ    uint16
	flags  uint16
	handle uint64
	off    uint64
	length uint32
	data   *[]byte // a write's payload
}

// replier writes replies on one connection; workers call it concurrently.
type replier struct {
	mu  sync.Mutex
	c   net.Conn
	err error
	// coalesce, on a TLS connection, is where a reply's header and the start of its data
	// are put together: written apart, the 16-byte header would take a TLS record (and a
	// system call) of its own.
	coalesce []byte
}

func newReplier(c net.Conn) *replier {
	rp := &replier{c: c}
	if _, ok := c.(*tls.Conn); ok {
		rp.coalesce = make([]byte, 0, maxTLSRecord)
	}
	return rp
}

// maxTLSRecord is the most plaintext one TLS record carries.
const maxTLSRecord = 16 << 10

// reply answers a request: errno, and for a successful read its data (which stays in the
// caller's buffer: a backend opened with O_DIRECT reads into aligned buffers only).
func (rp *replier) reply(handle uint64, errno uint32, data []byte) {
	var h [nbdproto.ReplyLen]byte
	nbdproto.PutSimpleReply(h[:], errno, handle)
	if errno != 0 {
		data = nil
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.err != nil {
		return
	}
	var err error
	if rp.coalesce != nil {
		k := min(len(data), cap(rp.coalesce)-len(h))
		_, err = rp.c.Write(append(append(rp.coalesce[:0], h[:]...), data[:k]...))
		if err == nil && k < len(data) {
			_, err = rp.c.Write(data[k:])
		}
	} else {
		bufs := net.Buffers{h[:]}
		if len(data) > 0 {
			bufs = append(bufs, data)
		}
		_, err = bufs.WriteTo(rp.c)
	}
	if err != nil {
		// The reader sees the broken connection too and ends it.
		rp.err = err
		rp.c.Close()
	}
}

// transmit reads requests and hands them to ConnWorkers workers, which reply as they
// complete. It returns when the client disconnects (after the requests in flight are
// answered) or the connection breaks.
func (e *Export) transmit(r io.Reader, c net.Conn) error {
	rp := newReplier(c)
	reqs := make(chan *request)
	var workers sync.WaitGroup
	for i := 0; i < ConnWorkers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for rq := range reqs {
				e.serve(rq, rp)
			}
		}()
	}
	drained := false
	drain := func() {
		if !drained {
			drained = true
			close(reqs)
			workers.Wait()
		}
	}
	defer drain()
	var h [nbdproto.RequestLen]byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		wr, err := nbdproto.ParseRequest(h[:])
		if err != nil {
			return fmt.Errorf("nbd export: %w", err)
		}
		rq := &request{flags: wr.Flags, typ: wr.Type, handle: wr.Handle, off: wr.Offset, length: wr.Length}
		switch rq.typ {
		case nbdproto.CmdWrite:
			if rq.length > MaxRequest {
				// Its payload follows and cannot be skipped sensibly: end the connection.
				return fmt.Errorf("nbd export: write of %d bytes is larger than the %d advertised", rq.length, MaxRequest)
			}
			rq.data = e.buffer(int(rq.length))
			if _, err := io.ReadFull(r, *rq.data); err != nil {
				return err
			}
			if e.readOnly {
				e.bufs.Put(rq.data)
				rp.reply(rq.handle, nbdproto.ErrPerm, nil)
				continue
			}
			reqs <- rq
		case nbdproto.CmdRead, nbdproto.CmdFlush:
			reqs <- rq
		case nbdproto.CmdDisc:
			// Answer what is in flight, make the writes durable, hang up.
			drain()
			if !e.readOnly {
				if err := e.target.Sync(); err != nil {
					return fmt.Errorf("nbd export: sync at disconnect: %w", err)
				}
			}
			return nil
		default:
			// Not offered (TRIM, WRITE_ZEROES, ...): none of them carries a payload.
			rp.reply(rq.handle, nbdproto.ErrInvalid, nil)
		}
		if rp.failed() {
			return errors.New("nbd export: connection broken while replying")
		}
	}
}

func (rp *replier) failed() bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.err != nil
}

// serve does one request and replies.
func (e *Export) serve(rq *request, rp *replier) {
	size := uint64(e.target.Size())
	inRange := rq.length > 0 && rq.off <= size && uint64(rq.length) <= size-rq.off
	switch rq.typ {
	case nbdproto.CmdRead:
		if !inRange || rq.length > MaxRequest {
			rp.reply(rq.handle, nbdproto.ErrInvalid, nil)
			return
		}
		buf := e.buffer(int(rq.length))
		defer e.bufs.Put(buf)
		n, err := e.target.ReadAt(*buf, int64(rq.off))
		if n < len(*buf) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			e.recordErr(fmt.Errorf("nbd export: read %d bytes at %d: %w", rq.length, rq.off, err))
			rp.reply(rq.handle, nbdproto.ErrIO, nil)
			return
		}
		// io.EOF with a full buffer is a complete read.
		rp.reply(rq.handle, 0, *buf)
	case nbdproto.CmdWrite:
		defer e.bufs.Put(rq.data)
		if !inRange {
			rp.reply(rq.handle, nbdproto.ErrNoSpace, nil)
			return
		}
		if _, err := e.target.WriteAt(*rq.data, int64(rq.off)); err != nil {
			e.recordErr(fmt.Errorf("nbd export: write %d bytes at %d: %w", rq.length, rq.off, err))
			rp.reply(rq.handle, nbdproto.ErrIO, nil)
			return
		}
		if rq.flags&nbdproto.CmdFlagFUA != 0 {
			if err := e.target.Sync(); err != nil {
				e.recordErr(fmt.Errorf("nbd export: sync (FUA write at %d): %w", rq.off, err))
				rp.reply(rq.handle, nbdproto.ErrIO, nil)
				return
			}
		}
		rp.reply(rq.handle, 0, nil)
	case nbdproto.CmdFlush:
		// Every write answered before the flush has returned from WriteAt: Sync covers it.
		if err := e.target.Sync(); err != nil {
			e.recordErr(fmt.Errorf("nbd export: flush: %w", err))
			rp.reply(rq.handle, nbdproto.ErrIO, nil)
			return
		}
		rp.reply(rq.handle, 0, nil)
	}
}

// buffer returns a buffer of n bytes from the pool (give it back with e.bufs.Put).
func (e *Export) buffer(n int) *[]byte {
	if p, ok := e.bufs.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}
