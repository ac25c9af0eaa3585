package nfs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// testQueue drives a Queue against a real server with the server's limits lowered to 64 KiB,
// so that I/Os are several calls: every completion must be what ReadAt or WriteAt returns for
// the same request, and the data read back what was written.
func testQueue(t *testing.T, s nfsServer) {
	const size = 4 << 20
	tg := openT(t, s.withFile("queue.img"), backends.OpenParams{Size: size, Read: true, Write: true})
	defer tg.Close()
	nt := tg.(*target)
	nt.rmax, nt.wmax = 64<<10, 64<<10
	const depth = 6
	q, err := nt.NewQueue(depth)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	type req struct {
		off int64
		n   int
	}
	// No two of them overlap: writes in flight at once reach the file in whatever order the
	// server runs them (Ganesha's threads), as with any asynchronous I/O.
	reqs := []req{{0, 4096}, {4096, 1 << 20}, {3 << 20, 200 << 10}, {size - 100<<10, 100 << 10}, {2<<20 + 5000, 65<<10 + 7}, {2 << 20, 1}}

	// Writes through the queue, all in flight at once.
	want := make([]byte, size)
	for i, r := range reqs {
		data := random(r.n)
		copy(want[r.off:], data)
		if err := q.Submit(backends.IO{Write: true, Off: r.off, Buf: data, Tag: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Submit(backends.IO{Write: true, Buf: make([]byte, 1), Tag: 99}); err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("a submission beyond the depth: %v", err)
	}
	got := q.Reap(nil, len(reqs))
	if len(got) != len(reqs) {
		t.Fatalf("%d completions of %d writes", len(got), len(reqs))
	}
	for _, c := range got {
		if c.Err != nil || c.N != reqs[c.Tag].n {
			t.Errorf("write %d: %d bytes, %v", c.Tag, c.N, c.Err)
		}
	}

	// Reads through the queue, against ReadAt: the file's data, and its end.
	reads := append(reqs, req{size - 1000, 64 << 10}, req{size, 4096}, req{size + 1<<20, 10}, req{-1, 10})
	for round := 0; round*depth < len(reads); round++ {
		batch := reads[round*depth : min(len(reads), (round+1)*depth)]
		bufs := make([][]byte, len(batch))
		for i, r := range batch {
			bufs[i] = make([]byte, r.n)
			if err := q.Submit(backends.IO{Off: r.off, Buf: bufs[i], Tag: i}); err != nil {
				t.Fatal(err)
			}
		}
		var done []backends.Completion
		for len(done) < len(batch) {
			done = q.Reap(done, 1)
		}
		for _, c := range done {
			r := batch[c.Tag]
			ref := make([]byte, r.n)
			n, err := tg.ReadAt(ref, r.off)
			if c.N != n || (c.Err == nil) != (err == nil) || (err != nil && c.Err.Error() != err.Error()) {
				t.Errorf("read %d at %d: queue %d, %v; ReadAt %d, %v", r.n, r.off, c.N, c.Err, n, err)
			}
			if errors.Is(err, io.EOF) != errors.Is(c.Err, io.EOF) {
				t.Errorf("read %d at %d: io.EOF from the queue %v, from ReadAt %v", r.n, r.off, c.Err, err)
			}
			if r.off >= 0 && r.off < size && !bytes.Equal(bufs[c.Tag][:c.N], want[r.off:r.off+int64(c.N)]) {
				t.Errorf("read %d at %d: data differs from what was written", r.n, r.off)
			}
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(backends.IO{Buf: make([]byte, 1)}); !errors.Is(err, errQueueClosed) {
		t.Errorf("Submit after Close: %v", err)
	}

	// A queue on a closed target refuses at once.
	tg.Close()
	if _, err := nt.NewQueue(1); err == nil {
		t.Error("NewQueue on a closed target succeeded")
	}
}

// TestQueueFails: I/Os in flight on a Queue when the server stops answering or closes the
// connection all complete, with the connection's error, and Reap does not wait past the
// deadline; later submissions are refused.
func TestQueueFails(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		server  func(c net.Conn, r *bufio.Reader)
		wantErr string
	}{
		{"server silent", 300 * time.Millisecond, func(c net.Conn, r *bufio.Reader) { waitClosed(r) }, "no reply"},
		{"server closes mid-reply", 10 * time.Second, func(c net.Conn, r *bufio.Reader) {
			reqs, err := readRequests(r, 3)
			if err != nil {
				return
			}
			reply := readReply(reqs[0].xid, make([]byte, 64<<10))
			_, _ = c.Write(reply[:len(reply)/2])
		}, "lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialScripted(t, scriptedServer(t, tt.server), tt.timeout)
			tg := &target{c: c, fh: []byte{1}, where: "scripted", rmax: 64 << 10, wmax: 64 << 10}
			q, err := tg.NewQueue(4)
			if err != nil {
				t.Fatal(err)
			}
			// Two reads of one call each, a write of two.
			for i, io := range []backends.IO{{Off: 0, Buf: make([]byte, 64<<10)}, {Off: 1 << 20, Buf: make([]byte, 4096)}, {Write: true, Off: 0, Buf: make([]byte, 100<<10)}} {
				io.Tag = i
				if err := q.Submit(io); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			got := q.Reap(nil, 3)
			if d := time.Since(start); d > tt.timeout+3*time.Second {
				t.Errorf("Reap took %s", d)
			}
			if len(got) != 3 {
				t.Fatalf("%d completions of 3", len(got))
			}
			for _, cp := range got {
				if cp.Err == nil || !strings.Contains(cp.Err.Error(), tt.wantErr) || cp.N != 0 {
					t.Errorf("I/O %d: %d bytes, %v; want 0 and an error saying %q", cp.Tag, cp.N, cp.Err, tt.wantErr)
				}
			}
			if err := q.Submit(backends.IO{Buf: make([]byte, 1)}); err == nil {
				t.Error("a submission on a failed connection was accepted")
			}
			if err := q.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}
