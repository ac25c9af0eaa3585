package nbd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// pattern is what the scripted servers' reads return at off: every byte names its 512-byte
// sector, so that a payload delivered to the wrong request shows.
func pattern(off uint64, n uint32) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + uint64(i)) / 512)
	}
	return b
}

// answerRead replies to rq successfully (with pattern data for a read).
func answerRead(c net.Conn, rq nbdproto.Request) {
	if rq.Type == nbdproto.CmdRead {
		replyTo(c, 0, rq.Handle, pattern(rq.Offset, rq.Length))
		return
	}
	replyTo(c, 0, rq.Handle, nil)
}

// reapAll reaps until n I/Os have completed and returns them by tag; it fails the test when
// that takes longer than limit (a Reap must never hang).
func reapAll(t *testing.T, q backends.Queue, n int, limit time.Duration) map[int]backends.Completion {
	t.Helper()
	got := make(chan []backends.Completion, 1)
	go func() {
		var all []backends.Completion
		for len(all) < n {
			all = q.Reap(all, 1)
		}
		got <- all
	}()
	select {
	case all := <-got:
		m := map[int]backends.Completion{}
		for _, c := range all {
			if _, dup := m[c.Tag]; dup {
				t.Errorf("tag %d completed twice", c.Tag)
			}
			m[c.Tag] = c
		}
		return m
	case <-time.After(limit):
		t.Fatalf("Reap did not return %d completions within %v", n, limit)
		return nil
	}
}

func newQueue(t *testing.T, tg *Target, depth int) backends.Queue {
	t.Helper()
	q, err := tg.NewQueue(depth)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestQueueScripted drives a Queue of 8 reads (and writes) against servers that answer in
// their own ways; every I/O must complete once, with its data or the error that ReadAt would
// have returned, within the timeout.
func TestQueueScripted(t *testing.T) {
	const n = 8
	for _, c := range []struct {
		name   string
		writes bool
		// answer gets every request; held collects those not answered yet.
		answer  func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool
		errPart func(i int) string // "" for success
		timeout bool
		// syncRead: a ReadAt from another goroutine is in flight with the queue's I/Os.
		syncRead bool
	}{
		{name: "in order", answer: func(rq nbdproto.Request, c net.Conn, _ *[]nbdproto.Request) bool {
			answerRead(c, rq)
			return true
		}, errPart: func(int) string { return "" }},
		{name: "reversed", answer: func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool {
			if *held = append(*held, rq); len(*held) == n {
				for i := n - 1; i >= 0; i-- {
					answerRead(c, (*held)[i])
				}
			}
			return true
		}, errPart: func(int) string { return "" }},
		{name: "reversed, with a synchronous read", syncRead: true, answer: func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool {
			if *held = append(*held, rq); len(*held) == n+1 {
				for i := n; i >= 0; i-- {
					answerRead(c, (*held)[i])
				}
			}
			return true
		}, errPart: func(int) string { return "" }},
		{name: "writes reversed", writes: true, answer: func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool {
			if rq.Type != nbdproto.CmdWrite {
				return false
			}
			if *held = append(*held, rq); len(*held) == n {
				for i := n - 1; i >= 0; i-- {
					answerRead(c, (*held)[i])
				}
			}
			return true
		}, errPart: func(int) string { return "" }},
		{name: "server error", answer: func(rq nbdproto.Request, c net.Conn, _ *[]nbdproto.Request) bool {
			if rq.Offset == 3*4096 {
				replyTo(c, nbdproto.ErrIO, rq.Handle, nil)
			} else {
				answerRead(c, rq)
			}
			return true
		}, errPart: func(i int) string {
			if i == 3 {
				return "nbd: read 4096 bytes at 12288: server replied EIO"
			}
			return ""
		}},
		{name: "closes", answer: func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool {
			if rq.Offset == 2*4096 {
				answerRead(c, rq)
			}
			*held = append(*held, rq)
			return len(*held) < n
		}, errPart: func(i int) string {
			if i == 2 {
				return ""
			}
			return "the server closed the connection"
		}},
		{name: "silent", answer: func(rq nbdproto.Request, c net.Conn, held *[]nbdproto.Request) bool {
			if *held = append(*held, rq); len(*held) == n {
				time.Sleep(2 * time.Second)
				return false
			}
			return true
		}, errPart: func(i int) string { return "no reply from the server within 300ms" }, timeout: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var held []nbdproto.Request
			u := scriptedServer(t, func(rq nbdproto.Request, conn net.Conn) bool { return c.answer(rq, conn, &held) })
			tg := mustOpen(t, u+"?timeout=300ms", rw)
			q := newQueue(t, tg, n)
			syncDone := make(chan error, 1)
			if c.syncRead {
				go func() {
					buf := make([]byte, 4096)
					_, err := tg.ReadAt(buf, 100*4096)
					if err == nil && !bytes.Equal(buf, pattern(100*4096, 4096)) {
						err = errors.New("wrong data")
					}
					syncDone <- err
				}()
			}
			bufs := make([][]byte, n)
			for i := range bufs {
				bufs[i] = make([]byte, 4096)
				if err := q.Submit(backends.IO{Write: c.writes, Off: int64(i) * 4096, Buf: bufs[i], Tag: i}); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			got := reapAll(t, q, n, 2*time.Second)
			if d := time.Since(start); c.timeout && d > time.Second {
				t.Errorf("the timeout took %v", d)
			}
			for i := range n {
				cp, ok := got[i]
				switch {
				case !ok:
					t.Errorf("I/O %d: no completion", i)
				case c.errPart(i) == "":
					if cp.Err != nil || cp.N != 4096 {
						t.Errorf("I/O %d: %d, %v; want 4096, nil", i, cp.N, cp.Err)
					} else if !c.writes && !bytes.Equal(bufs[i], pattern(uint64(i)*4096, 4096)) {
						t.Errorf("I/O %d: wrong data", i)
					}
				default:
					if cp.Err == nil || !strings.Contains(cp.Err.Error(), c.errPart(i)) {
						t.Errorf("I/O %d: error %v, want one containing %q", i, cp.Err, c.errPart(i))
					}
					var te *TimeoutError
					if errors.As(cp.Err, &te) != c.timeout {
						t.Errorf("I/O %d: timeout error %v, want %v", i, errors.As(cp.Err, &te), c.timeout)
					}
				}
			}
			if c.syncRead {
				if err := <-syncDone; err != nil {
					t.Errorf("ReadAt beside the queue: %v", err)
				}
			}
			if err := q.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestQueueRules checks that a Queue applies ReadAt's and WriteAt's checks and end-of-export
// rules, its own limits, and splits an I/O longer than the export's largest request.
func TestQueueRules(t *testing.T) {
	var mu sync.Mutex
	var seen []nbdproto.Request
	u := scriptedServer(t, func(rq nbdproto.Request, c net.Conn) bool {
		mu.Lock()
		seen = append(seen, rq)
		mu.Unlock()
		if rq.Type == nbdproto.CmdRead && rq.Offset == 40960 {
			replyTo(c, nbdproto.ErrIO, rq.Handle, nil)
			return true
		}
		answerRead(c, rq)
		return true
	})
	tg := mustOpen(t, u, rw)
	size := tg.Size()
	tg.maxIO = 4096 // pieces of 4 KiB: a 16 KiB I/O is four requests
	tg.fua, tg.flushAll = false, true
	for _, c := range []struct {
		name    string
		io      backends.IO
		n       int
		errPart string
		eof     bool
		reqs    []uint16 // the requests sent, in order of offset
	}{
		{name: "read", io: backends.IO{Off: 4096, Buf: make([]byte, 4096)}, n: 4096, reqs: []uint16{nbdproto.CmdRead}},
		{name: "read split", io: backends.IO{Off: 8192, Buf: make([]byte, 16384)}, n: 16384,
			reqs: []uint16{nbdproto.CmdRead, nbdproto.CmdRead, nbdproto.CmdRead, nbdproto.CmdRead}},
		{name: "read split, third piece fails", io: backends.IO{Off: 32768, Buf: make([]byte, 16384)}, n: 8192,
			errPart: "nbd: read 4096 bytes at 40960: server replied EIO",
			reqs:    []uint16{nbdproto.CmdRead, nbdproto.CmdRead, nbdproto.CmdRead, nbdproto.CmdRead}},
		{name: "read across the end", io: backends.IO{Off: size - 512, Buf: make([]byte, 4096)}, n: 512, eof: true, reqs: []uint16{nbdproto.CmdRead}},
		{name: "read at the end", io: backends.IO{Off: size, Buf: make([]byte, 4096)}, eof: true},
		{name: "empty read", io: backends.IO{Off: 0, Buf: nil}},
		{name: "negative offset", io: backends.IO{Off: -4096, Buf: make([]byte, 4096)}, errPart: "negative offset"},
		{name: "write beyond the end", io: backends.IO{Write: true, Off: size - 512, Buf: make([]byte, 4096)}, errPart: "beyond the end"},
		{name: "write, FLUSH after it (no FUA)", io: backends.IO{Write: true, Off: 0, Buf: make([]byte, 8192)}, n: 8192,
			reqs: []uint16{nbdproto.CmdWrite, nbdproto.CmdWrite, nbdproto.CmdFlush}},
	} {
		t.Run(c.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			q := newQueue(t, tg, 2)
			defer q.Close()
			c.io.Tag = 7
			if err := q.Submit(c.io); err != nil {
				t.Fatal(err)
			}
			got := reapAll(t, q, 1, 5*time.Second)[7]
			if got.N != c.n {
				t.Errorf("N %d, want %d", got.N, c.n)
			}
			switch {
			case c.errPart != "":
				if got.Err == nil || !strings.Contains(got.Err.Error(), c.errPart) {
					t.Errorf("error %v, want one containing %q", got.Err, c.errPart)
				}
			case c.eof != (got.Err == io.EOF), !c.eof && got.Err != nil:
				t.Errorf("error %v, want EOF %v", got.Err, c.eof)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != len(c.reqs) {
				t.Fatalf("requests %+v, want types %v", seen, c.reqs)
			}
			for i, rq := range seen {
				if rq.Type != c.reqs[i] || rq.Flags&nbdproto.CmdFlagFUA != 0 {
					t.Errorf("request %d: %+v, want type %d without FUA", i, rq, c.reqs[i])
				}
			}
		})
	}
	t.Run("limits", func(t *testing.T) {
		q := newQueue(t, tg, 1)
		if err := q.Submit(backends.IO{Buf: make([]byte, 512)}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, q.Submit(backends.IO{Buf: make([]byte, 512)}), "queue full")
		reapAll(t, q, 1, 5*time.Second)
		q.Close()
		wantErr(t, q.Submit(backends.IO{Buf: make([]byte, 512)}), "queue is closed")
		if _, err := tg.NewQueue(0); err == nil {
			t.Error("NewQueue(0) succeeded")
		}
	})
	t.Run("read-only", func(t *testing.T) {
		ro := mustOpen(t, scriptedServer(t, func(rq nbdproto.Request, c net.Conn) bool { return false }), backends.OpenParams{Read: true})
		q := newQueue(t, ro, 1)
		defer q.Close()
		if err := q.Submit(backends.IO{Write: true, Buf: make([]byte, 512)}); err != nil {
			t.Fatal(err)
		}
		wantErr(t, reapAll(t, q, 1, time.Second)[0].Err, "reading only")
	})
}

// TestQueueFUA: with direct= on an export with FUA, the Queue's writes carry FUA as
// WriteAt's do.
func TestQueueFUA(t *testing.T) {
	flags := make(chan uint16, 1)
	u := scriptedServer(t, func(rq nbdproto.Request, c net.Conn) bool {
		flags <- rq.Flags
		answerRead(c, rq)
		return true
	})
	p := rw
	p.Direct = true
	q := newQueue(t, mustOpen(t, u, p), 1)
	defer q.Close()
	if err := q.Submit(backends.IO{Write: true, Buf: make([]byte, 4096)}); err != nil {
		t.Fatal(err)
	}
	if c := reapAll(t, q, 1, 5*time.Second)[0]; c.Err != nil || c.N != 4096 {
		t.Fatalf("write: %d, %v", c.N, c.Err)
	}
	if f := <-flags; f&nbdproto.CmdFlagFUA == 0 {
		t.Errorf("write flags %#x lack FUA", f)
	}
}

// queueRoundTrip writes the 2 MiB at base in 4 KiB blocks at random through a Queue of
// depth 16, reads them back through it and compares, while other goroutines call ReadAt,
// WriteAt and Sync on the next 2 MiB of the same connection (their replies pass through the
// queue's reader and the other way round).
func queueRoundTrip(t *testing.T, tg *Target, base int64) {
	t.Helper()
	const depth, bs, blocks = 16, 4096, 512
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			buf, got := make([]byte, bs), make([]byte, bs)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				off := base + int64(blocks+(g*61+i*7)%blocks)*bs
				for j := range buf {
					buf[j] = byte(i + g)
				}
				if _, err := tg.WriteAt(buf, off); err != nil {
					t.Errorf("WriteAt beside the queue: %v", err)
					return
				}
				if _, err := tg.ReadAt(got, off); err != nil || !bytes.Equal(got, buf) {
					t.Errorf("ReadAt beside the queue: %v, equal %v", err, bytes.Equal(got, buf))
					return
				}
				if i%16 == 0 {
					if err := tg.Sync(); err != nil {
						t.Errorf("Sync beside the queue: %v", err)
						return
					}
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	want := make([]byte, blocks*bs)
	for i := range want {
		want[i] = byte(rand.IntN(256))
	}
	q := newQueue(t, tg, depth)
	defer q.Close()
	// run passes every block through the queue at random order, keeping depth in flight.
	run := func(write bool, data []byte) {
		order := rand.Perm(blocks)
		slot := make([]int, depth) // the block each slot carries
		next, inflight := 0, 0
		submit := func(s int) {
			b := order[next]
			next++
			slot[s] = b
			if err := q.Submit(backends.IO{Write: write, Off: base + int64(b)*bs, Buf: data[b*bs : (b+1)*bs], Tag: s}); err != nil {
				t.Fatal(err)
			}
			inflight++
		}
		for s := 0; s < depth; s++ {
			submit(s)
		}
		var done []backends.Completion
		for inflight > 0 {
			done = q.Reap(done[:0], 1+rand.IntN(4))
			for _, c := range done {
				inflight--
				if c.Err != nil || c.N != bs {
					t.Fatalf("block %d: %d, %v", slot[c.Tag], c.N, c.Err)
				}
				if next < blocks {
					submit(c.Tag)
				}
			}
		}
	}
	run(true, want)
	got := make([]byte, len(want))
	run(false, got)
	if !bytes.Equal(got, want) {
		t.Fatal("the blocks read back through the queue differ from those written")
	}
	if err := tg.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestQueueOwnExport(t *testing.T) {
	tg := mustOpen(t, serveOwn(t, 8<<20, false), rw)
	queueRoundTrip(t, tg, 0)
	t.Run("two queues", func(t *testing.T) {
		var wg sync.WaitGroup
		for k := range 2 {
			wg.Go(func() { queueRoundTrip(t, tg, int64(k)*4<<20) })
		}
		wg.Wait()
	})
}

// TestQueueSlots: a Queue deeper than the connection's slots waits in Submit for its own
// I/Os to free one, and a Queue keeps no slot once its I/Os completed, so synchronous calls
// beside an idle open Queue go through.
func TestQueueSlots(t *testing.T) {
	u := scriptedServer(t, func(rq nbdproto.Request, c net.Conn) bool {
		answerRead(c, rq)
		return true
	})
	tg := mustOpen(t, u, rw)
	const depth = maxInFlight + 44
	q := newQueue(t, tg, depth)
	defer q.Close()
	bufs := make([]byte, depth*512)
	for i := range depth {
		if err := q.Submit(backends.IO{Off: int64(i) * 512, Buf: bufs[i*512 : (i+1)*512], Tag: i}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range reapAll(t, q, depth, 5*time.Second) {
		if c.Err != nil || !bytes.Equal(bufs[i*512:(i+1)*512], pattern(uint64(i)*512, 512)) {
			t.Fatalf("I/O %d: %v or wrong data", i, c.Err)
		}
	}
	// Reap with min 0 (a poll) sends what was submitted and returns what has completed.
	if err := q.Submit(backends.IO{Off: 512, Buf: bufs[:512], Tag: 1}); err != nil {
		t.Fatal(err)
	}
	var polled []backends.Completion
	for start := time.Now(); len(polled) == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("polling Reap(…, 0) never returned the read")
		}
		polled = q.Reap(polled, 0)
	}
	if polled[0].Err != nil || polled[0].N != 512 {
		t.Fatalf("polled read: %+v", polled[0])
	}
	done := make(chan error, 1)
	go func() {
		_, err := tg.ReadAt(make([]byte, 512), 0)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadAt beside an idle Queue did not return")
	}
}
