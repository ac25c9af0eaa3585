package iscsi

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/iscsi/initiator"
)

// reapAll reaps until n I/Os have completed, failing on a tag completed twice.
func reapAll(t *testing.T, q backends.Queue, n int) map[int]backends.Completion {
	t.Helper()
	got := map[int]backends.Completion{}
	var cs []backends.Completion
	for len(got) < n {
		cs = q.Reap(cs[:0], n-len(got))
		if len(cs) == 0 {
			t.Fatalf("Reap returned nothing with %d of %d I/Os outstanding", n-len(got), n)
		}
		for _, c := range cs {
			if _, dup := got[c.Tag]; dup {
				t.Fatalf("tag %d completed twice", c.Tag)
			}
			got[c.Tag] = c
		}
	}
	return got
}

// testQueue drives tg through a Queue: writes and reads of several sizes (split into commands
// of at most maxIO bytes, 0: the LUN's own limit) compared, while another goroutine calls
// ReadAt and WriteAt on the same Target, then the edge cases ReadAt and WriteAt define.
func testQueue(t *testing.T, tg *Target, ro *Target, maxIO int64) {
	if maxIO > 0 {
		defer func(m int64) { tg.maxIO = m }(tg.maxIO)
		tg.maxIO = maxIO
	}
	const depth = 16
	q, err := tg.NewQueue(depth)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()

	// Synchronous callers on the same session, in the second half of the LUN.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		buf, back := bytes.Repeat([]byte{0x5a}, 64<<10), make([]byte, 64<<10)
		for off := tg.Size() / 2; ; off += int64(len(buf)) {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := tg.WriteAt(buf, off); err != nil {
				t.Error(err)
				return
			}
			if _, err := tg.ReadAt(back, off); err != nil || !bytes.Equal(back, buf) {
				t.Errorf("synchronous read back: %v or data differ", err)
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	r := rand.New(rand.NewPCG(5, 6))
	bufs := make([][]byte, depth)
	offs := make([]int64, depth)
	for i := range bufs {
		bufs[i] = make([]byte, (1+r.IntN(48))*int(tg.BlockSize())*8) // 4 KiB to 192 KiB
		for j := range bufs[i] {
			bufs[i][j] = byte(r.Uint32())
		}
		offs[i] = int64(i) << 20
		if err := q.Submit(backends.IO{Write: true, Off: offs[i], Buf: bufs[i], Tag: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Submit(backends.IO{Off: 0, Buf: make([]byte, 512), Tag: depth}); err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Errorf("Submit beyond the depth: %v", err)
	}
	for tag, c := range reapAll(t, q, depth) {
		if c.Err != nil || c.N != len(bufs[tag]) {
			t.Fatalf("write %d: n %d err %v", tag, c.N, c.Err)
		}
	}
	back := make([][]byte, depth)
	for i := range back {
		back[i] = make([]byte, len(bufs[i]))
		if err := q.Submit(backends.IO{Off: offs[i], Buf: back[i], Tag: i}); err != nil {
			t.Fatal(err)
		}
	}
	for tag, c := range reapAll(t, q, depth) {
		if c.Err != nil || c.N != len(bufs[tag]) || !bytes.Equal(back[tag], bufs[tag]) {
			t.Fatalf("read %d: n %d err %v, or data differ", tag, c.N, c.Err)
		}
	}

	size := tg.Size()
	edges := []struct {
		name    string
		io      backends.IO
		wantN   int
		wantErr string // "" none, "EOF" io.EOF, else a part of the message
	}{
		{"read across the end", backends.IO{Off: size - 512, Buf: make([]byte, 64<<10)}, 512, "EOF"},
		{"read at the end", backends.IO{Off: size, Buf: make([]byte, 4096)}, 0, "EOF"},
		{"empty read", backends.IO{Off: 4096, Buf: nil}, 0, ""},
		{"unaligned read", backends.IO{Off: 100, Buf: make([]byte, 4096)}, 0, "multiples of the LUN's 512-byte block size"},
		{"unaligned write", backends.IO{Write: true, Off: 0, Buf: make([]byte, 1000)}, 0, "multiples"},
		{"write across the end", backends.IO{Write: true, Off: size - 512, Buf: make([]byte, 4096)}, 0, "beyond the end"},
		{"large read", backends.IO{Off: 0, Buf: make([]byte, 1<<20)}, 1 << 20, ""},
	}
	for i, e := range edges {
		e.io.Tag = i
		if err := q.Submit(e.io); err != nil {
			t.Fatalf("%s: Submit: %v", e.name, err)
		}
	}
	for tag, c := range reapAll(t, q, len(edges)) {
		e := edges[tag]
		ok := c.N == e.wantN
		switch e.wantErr {
		case "":
			ok = ok && c.Err == nil
		case "EOF":
			ok = ok && c.Err == io.EOF
		default:
			ok = ok && c.Err != nil && strings.Contains(c.Err.Error(), e.wantErr)
		}
		if !ok {
			t.Errorf("%s: n %d err %v, want %d %q", e.name, c.N, c.Err, e.wantN, e.wantErr)
		}
	}

	rq, err := ro.NewQueue(1)
	if err != nil {
		t.Fatal(err)
	}
	defer rq.Close()
	if err := rq.Submit(backends.IO{Write: true, Buf: make([]byte, 512)}); err != nil {
		t.Fatal(err)
	}
	if c := reapAll(t, rq, 1)[0]; c.Err == nil || !strings.Contains(c.Err.Error(), "reading only") {
		t.Errorf("write through a read-only Target's queue: %v", c.Err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Submit(backends.IO{Buf: make([]byte, 512)}); err == nil || !errors.Is(err, initiator.ErrQueueClosed) {
		t.Errorf("Submit after Close: %v", err)
	}
}
