package nfs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
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
func scriptedServer(t *testing.T, script func(c net.Conn, r *bufio.Reader)) string {
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

func dialScripted(t *testing.T, addr string, timeout time.Duration) *rpcConn {
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
