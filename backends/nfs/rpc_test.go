package nfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests in this file exercise the RPC transport against small scripted RPC servers on
// loopback: they check wire behaviour (pipelining, XID matching, fragments, deadlines) that a
// real NFS server cannot be made to show on demand. NFS behaviour is tested against real
// servers in integration_test.go.

// rpcRequest is one call as a scripted server saw it.
type rpcRequest struct {
	xid  uint32
	body []byte
}

// readRequest reads one single-fragment record.
func readRequest(r *bufio.Reader) (rpcRequest, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return rpcRequest{}, err
	}
	n := binary.BigEndian.Uint32(h[:]) & 0x7fffffff
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return rpcRequest{}, err
	}
	return rpcRequest{xid: binary.BigEndian.Uint32(body), body: body}, nil
}

// callArgs returns the procedure arguments of a call: after XID, message type, RPC version,
// program, version, procedure, credential and verifier (AUTH_NONE).
func callArgs(body []byte) []byte {
	credLen := int(binary.BigEndian.Uint32(body[28:]))
	return body[32+credLen+pad4(credLen)+8:]
}

// acceptedReply is a successful reply to xid carrying results, split into fragments of at
// most frag bytes (0: one fragment).
func acceptedReply(xid uint32, results []byte, frag int) []byte {
	var msg xdrBuf
	msg.u32(xid)
	msg.u32(msgReply)
	msg.u32(msgAccepted)
	msg.u32(0) // verifier
	msg.u32(0)
	msg.u32(acceptSuccess)
	msg = append(msg, results...)
	if frag <= 0 {
		frag = len(msg)
	}
	var out xdrBuf
	for off := 0; off < len(msg); off += frag {
		end := min(off+frag, len(msg))
		mark := uint32(end - off)
		if end == len(msg) {
			mark |= 0x80000000
		}
		out.u32(mark)
		out = append(out, msg[off:end]...)
	}
	return out
}

// scriptedServer accepts one connection and runs script on it.
func scriptedServer(t testing.TB, script func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		script(c, bufio.NewReader(c))
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

func dialScripted(t testing.TB, addr string, timeout time.Duration) *rpcConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := newRPCConn(conn, authSysCred(0, 0), timeout)
	t.Cleanup(c.close)
	return c
}

// TestRPCPipelined: the server reads all 16 calls before it answers any, then answers in
// reverse order. A client that waited for each reply before sending the next call would
// never get there (its calls would time out); a client that matched replies by order
// rather than XID would hand out wrong results.
func TestRPCPipelined(t *testing.T) {
	const n = 16
	addr := scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		var reqs []rpcRequest
		for len(reqs) < n {
			req, err := readRequest(r)
			if err != nil {
				return
			}
			reqs = append(reqs, req)
		}
		for i := len(reqs) - 1; i >= 0; i-- {
			// The result is the program number the call asked for: each caller checks
			// it got the reply to its own call.
			prog := binary.BigEndian.Uint32(callArgs(reqs[i].body))
			var res xdrBuf
			res.u32(prog)
			if _, err := c.Write(acceptedReply(reqs[i].xid, res, 0)); err != nil {
				return
			}
		}
	})
	c := dialScripted(t, addr, 5*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			port, err := getPort(c, uint32(1000+i), 3, time.Time{})
			if err == nil && port != 1000+i {
				err = errors.New("reply matched to the wrong call")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRPCFragmentedReply(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		req, err := readRequest(r)
		if err != nil {
			return
		}
		var res xdrBuf
		res.u32(2049)
		c.Write(acceptedReply(req.xid, res, 7))
	})
	c := dialScripted(t, addr, 5*time.Second)
	port, err := getPort(c, nfsProg, nfsVers, time.Time{})
	if err != nil || port != 2049 {
		t.Fatalf("port %d, err %v", port, err)
	}
}

// TestRPCDeadline: a server that accepts calls and never answers fails every call in flight
// shortly after the timeout, and later calls at once.
func TestRPCDeadline(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		for {
			if _, err := readRequest(r); err != nil {
				return
			}
		}
	})
	c := dialScripted(t, addr, 300*time.Millisecond)
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := getPort(c, nfsProg, nfsVers, time.Time{})
			if err == nil || !strings.Contains(err.Error(), "no reply") {
				t.Errorf("err = %v, want a no-reply error", err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("calls failed after %s", d)
	}
	if _, err := getPort(c, nfsProg, nfsVers, time.Time{}); err == nil {
		t.Error("a call on a failed connection succeeded")
	}
}

// TestRPCServerCloses: a connection the server drops fails the call in flight at once.
func TestRPCServerCloses(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		readRequest(r)
	})
	c := dialScripted(t, addr, time.Minute)
	start := time.Now()
	_, err := getPort(c, nfsProg, nfsVers, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("err = %v, want connection lost", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("call failed after %s", d)
	}
}

func TestRPCRejected(t *testing.T) {
	addr := scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		req, err := readRequest(r)
		if err != nil {
			return
		}
		var msg xdrBuf
		msg.u32(0) // record mark, below
		msg.u32(req.xid)
		msg.u32(msgReply)
		msg.u32(msgDenied)
		msg.u32(rejectAuth)
		msg.u32(5) // AUTH_TOOWEAK
		binary.BigEndian.PutUint32(msg, uint32(len(msg)-4)|0x80000000)
		c.Write(msg)
	})
	c := dialScripted(t, addr, 5*time.Second)
	_, err := getPort(c, nfsProg, nfsVers, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "AUTH_TOOWEAK") {
		t.Fatalf("err = %v, want AUTH_TOOWEAK", err)
	}
}

// chunkReader returns at most max bytes per Read, as a socket returns what has arrived.
type chunkReader struct {
	r   io.Reader
	max int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.max {
		p = p[:c.max]
	}
	return c.r.Read(p)
}

// TestRecordDirectReads: READ data goes straight from the connection into the caller's
// buffer once the receive buffer is empty, and comes from the buffer while it holds some;
// either way the bytes arrive in order, across fragments, and the next record starts where
// this one ended.
func TestRecordDirectReads(t *testing.T) {
	tests := []struct {
		name              string
		size, frag, chunk int
	}{
		{"small, one fragment", 100, 0, 1 << 20},
		{"below directRead", directRead - 1, 0, 3000},
		{"1 MiB, whole reads", 1 << 20, 0, 1 << 20},
		{"1 MiB, socket-sized reads", 1 << 20, 0, 3000},
		{"300 KiB, fragments of 5000", 300 << 10, 5000, 64 << 10},
		{"odd size, fragments of 7", 70001, 70001 / 7, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]byte, tt.size)
			for i := range data {
				data[i] = byte(i*7 + i>>9)
			}
			var results, next xdrBuf
			results.opaque(data)
			next.u32(42)
			stream := append(acceptedReply(1, results, tt.frag), acceptedReply(2, next, 0)...)
			src := &chunkReader{r: bytes.NewReader(stream), max: tt.chunk}
			rec := &record{br: bufio.NewReaderSize(src, readBufferSize), raw: src}
			d := &decoder{r: rec}

			if err := rec.begin(); err != nil {
				t.Fatal(err)
			}
			if xid := d.u32(); xid != 1 {
				t.Fatalf("first xid %d", xid)
			}
			if err := readReplyHeader(d); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, d.u32())
			d.into(got)
			if d.err != nil {
				t.Fatal(d.err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("READ data differs from what was sent")
			}
			if err := rec.discard(); err != nil {
				t.Fatal(err)
			}

			if err := rec.begin(); err != nil {
				t.Fatal(err)
			}
			if xid := d.u32(); xid != 2 {
				t.Fatalf("second xid %d: the first record was not read to its end", xid)
			}
			if err := readReplyHeader(d); err != nil {
				t.Fatal(err)
			}
			if v := d.u32(); d.err != nil || v != 42 {
				t.Fatalf("second record: %d, %v", v, d.err)
			}
		})
	}
}

// readReply is a READ reply (RFC 1813 READ3resok) to xid carrying data, eof false.
func readReply(xid uint32, data []byte) []byte {
	var res xdrBuf
	res.u32(0)      // NFS3_OK
	res.bool(false) // no post_op_attr
	res.u32(uint32(len(data)))
	res.bool(false) // eof
	res.opaque(data)
	return acceptedReply(xid, res, 0)
}

// portReply is a PMAPPROC_GETPORT reply to req giving the program number it asked for as
// the port: each caller can check it got the reply to its own call.
func portReply(req rpcRequest) []byte {
	var res xdrBuf
	res.u32(binary.BigEndian.Uint32(callArgs(req.body)))
	return acceptedReply(req.xid, res, 0)
}

// readRequests reads n calls.
func readRequests(r *bufio.Reader, n int) ([]rpcRequest, error) {
	var reqs []rpcRequest
	for len(reqs) < n {
		req, err := readRequest(r)
		if err != nil {
			return reqs, err
		}
		reqs = append(reqs, req)
	}
	return reqs, nil
}

// smallBuffers shrinks a TCP connection's socket buffers (which also turns off their
// autotuning), so that a few MiB unread fill them.
func smallBuffers(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
		_ = tc.SetWriteBuffer(64 << 10)
	}
}

// waitClosed reads until the client closes the connection.
func waitClosed(r *bufio.Reader) { _, _ = io.Copy(io.Discard, r) }

// TestRPCReaders runs calls from several callers against servers that make the read token
// change hands, need the background reader, or break the connection, and checks which
// calls succeed and that the failed ones all got the same error, which later calls get at
// once too.
func TestRPCReaders(t *testing.T) {
	const bigPayload = 4 << 20
	getPortCall := func(c *rpcConn, i int) error {
		port, err := getPort(c, uint32(1000+i), 3, time.Time{})
		if err == nil && port != 1000+i {
			return errors.New("reply matched to the wrong call")
		}
		return err
	}
	// asyncOrGetPort: caller 0 sends asyncCalls calls through an async client and reaps
	// them, checking each result; the others call getPort.
	const asyncCalls = 8
	asyncOrGetPort := func(c *rpcConn, i int) error {
		if i > 0 {
			return getPortCall(c, i)
		}
		a := c.newAsync()
		defer a.close()
		got := make([]uint32, asyncCalls)
		for j := range asyncCalls {
			err := a.send(99, "ASYNC", func(b *xdrBuf) { b.u32(uint32(2000 + j)) }, nil,
				func(d *decoder) error { got[j] = d.u32(); return d.err }, j)
			if err != nil {
				return err
			}
		}
		var res []asyncResult
		for len(res) < asyncCalls {
			res = a.reap(res, 1)
		}
		var first error
		for _, r := range res {
			switch {
			case r.err != nil && first == nil:
				first = r.err
			case r.err != first:
				return fmt.Errorf("async call %d: %v; another got %v", r.tag, r.err, first)
			case r.err == nil && got[r.tag] != uint32(2000+r.tag):
				return fmt.Errorf("async call %d: reply to another call (%d)", r.tag, got[r.tag])
			}
		}
		if first != nil {
			return fmt.Errorf("ASYNC: %w", first)
		}
		return nil
	}
	tests := []struct {
		name    string
		timeout time.Duration
		callers int
		small   bool // small socket buffers on the client
		server  func(c net.Conn, r *bufio.Reader)
		call    func(c *rpcConn, i int) error
		wantOK  int    // calls that succeed
		wantErr string // what the others' error says
	}{{
		// The server answers each call on its own, in the order they came, after a pause:
		// the caller holding the token finds its own reply first (or another's) and hands
		// the token on to a waiting caller, again and again.
		name:    "token hand-over",
		timeout: 10 * time.Second,
		callers: 8,
		server: func(c net.Conn, r *bufio.Reader) {
			reqs, err := readRequests(r, 8)
			if err != nil {
				return
			}
			for _, req := range reqs {
				time.Sleep(5 * time.Millisecond)
				if _, err := c.Write(portReply(req)); err != nil {
					return
				}
			}
			waitClosed(r)
		},
		call:   getPortCall,
		wantOK: 8,
	}, {
		// The server reads the head of a large call, then sends MiBs of replies to calls
		// we never made before it reads on. The only caller is blocked writing (both sides'
		// buffers are full), nobody waits to read: without the background reader both
		// sides would wait for each other until the deadline. The stray replies are
		// skipped.
		name:    "background reader, stray replies",
		timeout: 10 * time.Second,
		callers: 1,
		small:   true,
		server: func(c net.Conn, r *bufio.Reader) {
			smallBuffers(c)
			var h [8]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				return
			}
			size, xid := binary.BigEndian.Uint32(h[:])&0x7fffffff, binary.BigEndian.Uint32(h[4:])
			stray := readReply(xid+1000, make([]byte, 1<<20))
			for range 4 {
				if _, err := c.Write(stray); err != nil {
					return
				}
			}
			if _, err := io.CopyN(io.Discard, r, int64(size-4)); err != nil {
				return
			}
			var res xdrBuf
			res.u32(7)
			if _, err := c.Write(acceptedReply(xid, res, 0)); err != nil {
				return
			}
			waitClosed(r)
		},
		call: func(c *rpcConn, _ int) error {
			var got uint32
			err := c.call(nfsProg, nfsVers, 99, "BIG", time.Time{},
				func(b *xdrBuf) { b.u32(bigPayload) }, make([]byte, bigPayload),
				func(d *decoder) error { got = d.u32(); return d.err })
			if err == nil && got != 7 {
				err = fmt.Errorf("result %d, want 7", got)
			}
			return err
		},
		wantOK: 1,
	}, {
		// An async client's calls and waiting callers' calls on one connection, answered in
		// reverse order: the reaper and the waiting callers read for each other.
		name:    "async client among waiting callers",
		timeout: 10 * time.Second,
		callers: 5,
		server: func(c net.Conn, r *bufio.Reader) {
			reqs, err := readRequests(r, asyncCalls+4)
			if err != nil {
				return
			}
			for i := len(reqs) - 1; i >= 0; i-- {
				time.Sleep(time.Millisecond)
				if _, err := c.Write(portReply(reqs[i])); err != nil {
					return
				}
			}
			waitClosed(r)
		},
		call:   asyncOrGetPort,
		wantOK: 5,
	}, {
		// Nothing is answered: the async client's calls fail with the waiting callers'.
		name:    "async client, deadline",
		timeout: 300 * time.Millisecond,
		callers: 3,
		server: func(c net.Conn, r *bufio.Reader) {
			waitClosed(r)
		},
		call:    asyncOrGetPort,
		wantErr: "no reply",
	}, {
		// Two calls are answered; the third reply stops half-way, and nothing more comes:
		// the call being decoded and those waiting all fail when the deadline passes.
		name:    "deadline",
		timeout: 300 * time.Millisecond,
		callers: 8,
		server: func(c net.Conn, r *bufio.Reader) {
			reqs, err := readRequests(r, 8)
			if err != nil {
				return
			}
			msg := append(portReply(reqs[0]), portReply(reqs[1])...)
			third := portReply(reqs[2])
			msg = append(msg, third[:len(third)-2]...)
			if _, err := c.Write(msg); err != nil {
				return
			}
			waitClosed(r)
		},
		call:    getPortCall,
		wantOK:  2,
		wantErr: "no reply",
	}, {
		// One READ is answered; the reply to the next stops a third into its data, and the
		// server closes the connection.
		name:    "server closes mid-reply",
		timeout: 10 * time.Second,
		callers: 8,
		server: func(c net.Conn, r *bufio.Reader) {
			reqs, err := readRequests(r, 8)
			if err != nil {
				return
			}
			data := make([]byte, 1<<20)
			second := readReply(reqs[1].xid, data)
			msg := append(readReply(reqs[0].xid, data), second[:len(second)/3]...)
			_, _ = c.Write(msg)
		},
		call: func(c *rpcConn, i int) error {
			dst := make([]byte, 1<<20)
			n, _, err := read(c, []byte{1}, uint64(i)<<20, dst)
			if err == nil && n != len(dst) {
				err = fmt.Errorf("read %d bytes of %d", n, len(dst))
			}
			return err
		},
		wantOK:  1,
		wantErr: "lost",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptedServer(t, tt.server)
			var c *rpcConn
			if tt.small {
				d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) {
						_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10)
						_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 64<<10)
					})
				}}
				conn, err := d.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				c = newRPCConn(conn, authNone, tt.timeout)
				t.Cleanup(c.close)
			} else {
				c = dialScripted(t, addr, tt.timeout)
			}
			start := time.Now()
			errs := make([]error, tt.callers)
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Go(func() { errs[i] = tt.call(c, i) })
			}
			wg.Wait()
			if d := time.Since(start); d > tt.timeout+3*time.Second {
				t.Errorf("calls took %s", d)
			}
			var first error
			ok := 0
			for i, err := range errs {
				switch {
				case err == nil:
					ok++
				case tt.wantErr == "" || !strings.Contains(err.Error(), tt.wantErr):
					t.Errorf("call %d: %v, want an error saying %q", i, err, tt.wantErr)
				case first == nil:
					first = errors.Unwrap(err)
				case errors.Unwrap(err) != first:
					t.Errorf("call %d: %v; another call got %v", i, err, first)
				}
			}
			if ok != tt.wantOK {
				t.Errorf("%d calls succeeded, want %d", ok, tt.wantOK)
			}
			if first == nil {
				return
			}
			start = time.Now()
			_, err := getPort(c, 1, 1, time.Time{})
			if errors.Unwrap(err) != first {
				t.Errorf("a later call: %v, want %v", err, first)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("a later call failed after %s", d)
			}
		})
	}
}

// BenchmarkRPCRead4k: 4 KiB READs, one at a time and 16 in flight, against a loopback
// server that answers each at once; allocs/op is the figure to watch (the server allocates
// nothing per call).
func BenchmarkRPCRead4k(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(fmt.Sprintf("qd%d", depth), func(b *testing.B) {
			addr := scriptedServer(b, func(c net.Conn, r *bufio.Reader) {
				reply := readReply(0, make([]byte, 4096))
				body := make([]byte, 4096)
				var h [4]byte
				for {
					if _, err := io.ReadFull(r, h[:]); err != nil {
						return
					}
					n := binary.BigEndian.Uint32(h[:]) & 0x7fffffff
					if _, err := io.ReadFull(r, body[:n]); err != nil {
						return
					}
					copy(reply[4:8], body[:4])
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			})
			c := dialScripted(b, addr, 10*time.Second)
			b.ReportAllocs()
			var wg sync.WaitGroup
			var ops atomic.Int64
			ops.Store(int64(b.N))
			for range depth {
				wg.Go(func() {
					dst := make([]byte, 4096)
					for ops.Add(-1) >= 0 {
						if _, _, err := read(c, []byte{1, 2, 3, 4}, 0, dst); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
