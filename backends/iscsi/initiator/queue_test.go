package initiator

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// reverseReads makes the fake answer READ(16)s in batches of n, last first.
func reverseReads(n int) func(f *fakeTarget, h *header, cdb []byte) bool {
	var stash []header
	var hook func(f *fakeTarget, h *header, cdb []byte) bool
	hook = func(f *fakeTarget, h *header, cdb []byte) bool {
		if cdb[0] != opRead16 {
			return false
		}
		stash = append(stash, *h)
		if len(stash) < n {
			return true
		}
		f.hook = nil // the serving goroutine's own field: answer through the default
		for i := len(stash) - 1; i >= 0; i-- {
			f.command(&stash[i], nil)
		}
		f.hook = hook
		stash = stash[:0]
		return true
	}
	return hook
}

// dialFake opens a session to f, over a pipe or over TCP, closed when the test ends.
func dialFake(t *testing.T, f *fakeTarget, tcp bool, cfg Config) *Session {
	t.Helper()
	dial := f.dial
	if tcp {
		dial = f.dialTCP
	}
	s, err := dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newTestQueue is s.NewQueue, failing the test on an error.
func newTestQueue(t *testing.T, s *Session) *Queue {
	t.Helper()
	q, err := s.NewQueue()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// reapAll reaps until n commands have completed, failing the test on a tag completed twice
// or on no progress within limit.
func reapAll(t *testing.T, q *Queue, n int, limit time.Duration) map[int]Completion {
	t.Helper()
	got := map[int]Completion{}
	done := make(chan struct{})
	timer := time.AfterFunc(limit, func() {
		select {
		case <-done:
		default:
			t.Errorf("Reap: %d of %d completions after %v; session state: %s\n%s", len(got), n, limit, q.s.debugState(), allStacks())
		}
	})
	defer timer.Stop()
	defer close(done)
	var cs []Completion
	for len(got) < n {
		cs = q.Reap(cs[:0], 1)
		for _, c := range cs {
			if _, dup := got[c.Tag]; dup {
				t.Fatalf("tag %d completed twice", c.Tag)
			}
			got[c.Tag] = c
		}
	}
	return got
}

// TestQueue drives reads and writes (immediate data, unsolicited Data-Out, R2Ts) through a
// Queue: answered out of order, through a command window smaller than the queue (commands
// held back until it opens), over a pipe and over TCP.
func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tcp     bool
		window  uint32
		reverse int // the fake answers reads in batches of this many, last first
		depth   int
		blocks  int // per command: 16 KiB and more take R2Ts (FirstBurstLength 8 KiB)
	}{
		{"pipe in order", false, 32, 1, 16, 8},
		{"tcp out of order", true, 32, 8, 16, 8},
		{"window of 2", false, 2, 1, 16, 8},
		{"window of 1, tcp", true, 1, 1, 8, 4},
		{"R2T writes out of order", true, 32, 4, 8, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTarget(t)
			f.window = tc.window
			reverse := reverseReads(tc.reverse)
			var mu sync.Mutex
			fua := map[uint64]bool{} // by LBA
			f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
				if cdb[0] == opWrite16 {
					mu.Lock()
					fua[binary.BigEndian.Uint64(cdb[2:10])] = cdb[1]&cdbFUA != 0
					mu.Unlock()
				}
				return reverse(f, h, cdb)
			}
			s := dialFake(t, f, tc.tcp, Config{Timeout: 10 * time.Second, PingInterval: time.Hour})
			q := newTestQueue(t, s)
			r := rand.New(rand.NewPCG(1, 2))
			size := tc.blocks * 512
			want := make([][]byte, tc.depth)
			for i := range want {
				want[i] = make([]byte, size)
				for j := range want[i] {
					want[i][j] = byte(r.Uint32())
				}
				// Commands of the same slot do not overlap: slot i owns its extent.
				if err := q.Write16(0, uint64(i*tc.blocks), uint32(tc.blocks), want[i], i%2 == 0, i); err != nil {
					t.Fatal(err)
				}
			}
			for tag, c := range reapAll(t, q, tc.depth, 8*time.Second) {
				if c.Err != nil || c.N != size {
					t.Fatalf("write %d: n %d err %v", tag, c.N, c.Err)
				}
			}
			mu.Lock()
			for i := range tc.depth {
				// The fake saw every write before answering it.
				if got := fua[uint64(i*tc.blocks)]; got != (i%2 == 0) {
					t.Errorf("write %d: FUA %v, want %v", i, got, i%2 == 0)
				}
			}
			mu.Unlock()
			got := make([][]byte, tc.depth)
			for i := range got {
				got[i] = make([]byte, size)
				if err := q.Read16(0, uint64(i*tc.blocks), uint32(tc.blocks), got[i], i); err != nil {
					t.Fatal(err)
				}
			}
			for tag, c := range reapAll(t, q, tc.depth, 8*time.Second) {
				if c.Err != nil || c.N != size {
					t.Fatalf("read %d: n %d err %v", tag, c.N, c.Err)
				}
				if !bytes.Equal(got[tag], want[tag]) {
					t.Fatalf("read %d: data differ", tag)
				}
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if s.nqueued.Load() != 0 || s.nactive.Load() != 0 {
				t.Errorf("after Close: %d queued, %d active", s.nqueued.Load(), s.nactive.Load())
			}
		})
	}
}

// TestQueueWithCallers runs a Queue (reads and R2T writes) while other goroutines run
// synchronous commands on the same session through a small command window: each reader
// dispatches for everyone, and nobody waits for a response someone else read.
func TestQueueWithCallers(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipe", true: "tcp"}[tcp], func(t *testing.T) {
			f := newFakeTarget(t)
			f.disk = make([]byte, 4<<20)
			f.window = 4
			s := dialFake(t, f, tcp, Config{Timeout: 20 * time.Second, PingInterval: time.Hour})
			var wg sync.WaitGroup
			wg.Go(func() { hammer(t, s, 4, 20, 64) }) // LBAs below 256
			q := newTestQueue(t, s)
			const depth, blocks, rounds = 8, 40, 6 // 20 KiB: immediate, unsolicited and R2T data
			r := rand.New(rand.NewPCG(3, 4))
			for round := range rounds {
				bufs := make([][]byte, depth)
				for i := range bufs {
					bufs[i] = make([]byte, blocks*512)
					for j := range bufs[i] {
						bufs[i][j] = byte(r.Uint32())
					}
					lba := uint64(1024 + (round*depth+i)*blocks)
					if err := q.Write16(0, lba, blocks, bufs[i], false, i); err != nil {
						t.Fatal(err)
					}
				}
				for tag, c := range reapAll(t, q, depth, 15*time.Second) {
					if c.Err != nil {
						t.Fatalf("write %d: %v", tag, c.Err)
					}
				}
				back := make([][]byte, depth)
				for i := range back {
					back[i] = make([]byte, blocks*512)
					lba := uint64(1024 + (round*depth+i)*blocks)
					if err := q.Read16(0, lba, blocks, back[i], i); err != nil {
						t.Fatal(err)
					}
				}
				for tag, c := range reapAll(t, q, depth, 15*time.Second) {
					if c.Err != nil || !bytes.Equal(back[tag], bufs[tag]) {
						t.Fatalf("read %d: err %v or data differ", tag, c.Err)
					}
				}
			}
			wg.Wait()
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestQueueFailure: when the target stops answering or closes the connection, every queued
// command completes exactly once with the session's error, Reap returns them in bounded time,
// and the queue takes no more commands.
func TestQueueFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeTarget)
		check func(t *testing.T, err error)
	}{
		{"silent", func(f *fakeTarget) { f.silent.Store(true) }, func(t *testing.T, err error) {
			var te *TimeoutError
			if !errors.As(err, &te) {
				t.Errorf("error %v, want a TimeoutError", err)
			}
		}},
		{"closes", func(f *fakeTarget) {
			f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
				f.conn.Close()
				return true
			}
		}, func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "target closed the connection") && !strings.Contains(err.Error(), "send to target") {
				t.Errorf("error %v, want a closed connection", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTarget(t)
			f.window = 4 // some commands are held back by the window when the session fails
			s := dialFake(t, f, false, Config{Timeout: 300 * time.Millisecond, PingInterval: time.Hour})
			q := newTestQueue(t, s)
			// A synchronous caller in flight too: it fails with the same error.
			syncErr := make(chan error, 1)
			tc.setup(f)
			go func() { syncErr <- s.Read16(0, 100, 1, make([]byte, 512)) }()
			// The synchronous caller may fail the session before some of these are queued:
			// Submit then refuses them with the session's error, and they never complete.
			n := 0
			for i := range 12 {
				err := q.Read16(0, uint64(i), 1, make([]byte, 512), n)
				if err == nil {
					n++
					continue
				}
				if s.Err() == nil || !errors.Is(err, s.Err()) {
					t.Fatalf("submit %d: %v, not the failed session's error (%v)", i, err, s.Err())
				}
			}
			start := time.Now()
			for tag, c := range reapAll(t, q, n, 3*time.Second) {
				if c.Err == nil {
					t.Fatalf("command %d succeeded", tag)
				}
				if !errors.Is(c.Err, s.Err()) {
					t.Errorf("command %d: %v, not the session's error %v", tag, c.Err, s.Err())
				}
				tc.check(t, c.Err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("completions after %v with a 300ms timeout", d)
			}
			if err := <-syncErr; err == nil || !errors.Is(err, s.Err()) {
				t.Errorf("synchronous caller: %v", err)
			}
			if err := q.Read16(0, 0, 1, make([]byte, 512), 99); err == nil {
				t.Error("Submit on a failed session queued the command")
			}
			if cs := q.Reap(nil, 1); len(cs) != 0 {
				t.Errorf("Reap with nothing in flight: %v", cs)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
