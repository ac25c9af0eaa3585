package initiator

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSessionPipelined runs concurrent writes and reads through a command window of 2,
// immediate data, unsolicited Data-Out and two R2Ts outstanding per write, over a pipe and
// over TCP (the blocking-socket transport).
func TestSessionPipelined(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "pipe", true: "tcp"}[tcp], func(t *testing.T) {
			f := newFakeTarget(t)
			f.window = 2
			dial := f.dial
			if tcp {
				dial = f.dialTCP
			}
			s, err := dial(Config{Timeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			p := s.Params()
			if p.InitialR2T || !p.ImmediateData || p.MaxOutstandingR2T != 2 || p.MaxXmitDataSegmentLength != 4096 || p.FirstBurstLength != 8192 {
				t.Fatalf("params %+v", p)
			}
			hammer(t, s, 16, 20, 128)
		})
	}
}

// TestSessionLargeIO moves 1 MiB requests over TCP with 4 KiB data segments in both
// directions at once: socket buffers fill up on both sides, and the fake target (one
// goroutine) blocks writing to us while we block writing to it, unless the session keeps
// reading while it writes.
func TestSessionLargeIO(t *testing.T) {
	f := newFakeTarget(t)
	f.disk = make([]byte, 16<<20)
	f.maxBurst = 256 << 10
	f.smallBuffers = true
	s, err := f.dialTCP(Config{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hammer(t, s, 8, 6, 2048)
}

// hammer runs g goroutines, each writing, reading back and comparing n random extents of up
// to maxBlocks blocks in its own region of the fake's disk.
func hammer(t *testing.T, s *Session, g, n, maxBlocks int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < n; i++ {
				blocks := uint32(1 + r.IntN(maxBlocks))
				lba := uint64(w * maxBlocks)
				buf := make([]byte, blocks*512)
				for j := range buf {
					buf[j] = byte(r.Uint32())
				}
				if err := s.Write16(0, lba, blocks, buf); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(buf))
				if err := s.Read16(0, lba, blocks, got); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, buf) {
					t.Errorf("goroutine %d: data differ", w)
					return
				}
			}
		}(w)
	}
	// A stall is diagnosed before the session's own timeout turns it into a bare error: the
	// stacks of every goroutine and the session's reader/writer state say where it stuck.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.Timeout * 2 / 3):
		t.Errorf("no progress for %v; session state: %s\n%s", s.cfg.Timeout*2/3, s.debugState(), allStacks())
		<-done
	}
}

// allStacks returns the stacks of every goroutine.
func allStacks() []byte {
	buf := make([]byte, 1<<20)
	return buf[:runtime.Stack(buf, true)]
}

// TestSessionTimeout: a target that stops answering fails every command in flight within
// the timeout, and the session stays failed.
func TestSessionTimeout(t *testing.T) {
	f := newFakeTarget(t)
	s, err := f.dial(Config{Timeout: 300 * time.Millisecond, PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f.silent.Store(true)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Read16(0, 0, 1, make([]byte, 512))
			var te *TimeoutError
			if !errors.As(err, &te) {
				t.Errorf("error %v, want a TimeoutError", err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("commands failed after %v with a 300ms timeout", d)
	}
	if err := s.TestUnitReady(0); err == nil {
		t.Error("command after the session failed succeeded")
	}
}

// TestSessionPing: a silent target is detected by the idle NOP-Out ping even when no
// command is in flight.
func TestSessionPing(t *testing.T) {
	f := newFakeTarget(t)
	s, err := f.dial(Config{Timeout: 300 * time.Millisecond, PingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case nop := <-f.nopOuts:
		if nop[0] == reservedTag {
			t.Errorf("ping NOP-Out without an ITT")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no NOP-Out ping on an idle session")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("answered ping failed the session: %v", err)
	}
	f.silent.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for s.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Err(); err == nil || !strings.Contains(err.Error(), "NOP-Out") {
		t.Fatalf("session error %v, want an unanswered ping", err)
	}
}

// TestSessionTargetNop: a NOP-In from the target with a TTT (here sent just before the
// answer to a command) is answered with a NOP-Out carrying that TTT.
func TestSessionTargetNop(t *testing.T) {
	f := newFakeTarget(t)
	f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
		var n header
		n[0], n[1] = opNopIn, flagFinal
		n.put32(16, reservedTag)
		n.put32(20, 0x1234)
		f.stamp(&n, false)
		f.send(&n, nil)
		return false
	}
	s, err := f.dial(Config{Timeout: 5 * time.Second, PingInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.TestUnitReady(0); err != nil {
		t.Fatal(err)
	}
	select {
	case nop := <-f.nopOuts:
		if nop != [2]uint32{reservedTag, 0x1234} {
			t.Errorf("NOP-Out ITT/TTT %#x", nop)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("target's NOP-In not answered")
	}
}

// TestSessionUnitAttention: commands are retried after UNIT ATTENTION.
func TestSessionUnitAttention(t *testing.T) {
	f := newFakeTarget(t)
	uas := 2
	f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
		if uas == 0 {
			return false
		}
		uas--
		f.respond(h.itt(), StatusCheckCondition, []byte{0x70, 0, SenseUnitAttention, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x29, 0})
		return true
	}
	s, err := f.dial(Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Read16(0, 0, 8, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if n := f.commands.Load(); n != 3 {
		t.Errorf("%d commands, want 3 (two unit attentions, then the read)", n)
	}
}

// TestSessionTargetErrors: a Reject, an asynchronous logout request and a closed connection
// each end the session with an error that says so, failing the command in flight.
func TestSessionTargetErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(f *fakeTarget, h *header)
		want string
	}{
		{"reject", func(f *fakeTarget, h *header) {
			var r header
			r[0], r[1], r[2] = opReject, flagFinal, 0x09
			r.put32(16, reservedTag)
			f.stamp(&r, true)
			f.send(&r, h[:])
		}, "target rejected our SCSI Command"},
		{"async logout", func(f *fakeTarget, h *header) {
			var r header
			r[0], r[1], r[36] = opAsync, flagFinal, 1
			r.put32(16, reservedTag)
			f.stamp(&r, true)
			f.send(&r, nil)
		}, "target requests logout"},
		{"close", func(f *fakeTarget, h *header) { f.conn.Close() }, "target closed the connection"},
		{"stray data", func(f *fakeTarget, h *header) {
			var r header
			r[0], r[1] = opDataIn, flagFinal
			r.put32(16, h.itt()^0x10000)
			f.stamp(&r, false)
			f.send(&r, make([]byte, 512))
		}, "not a command in flight"},
		{"too much data", func(f *fakeTarget, h *header) {
			var r header
			r[0], r[1] = opDataIn, flagFinal
			r.put32(16, h.itt())
			r.put32(40, 4096)
			f.stamp(&r, false)
			f.send(&r, make([]byte, 512))
		}, "beyond the 512 bytes expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeTarget(t)
			f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
				if cdb[0] != opRead16 {
					return false
				}
				tc.act(f, h)
				return true
			}
			s, err := f.dial(Config{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Read16(0, 0, 1, make([]byte, 512))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if s.Err() == nil {
				t.Error("session still usable")
			}
		})
	}
}

// TestSessionClose: Close logs out; later commands fail with ErrSessionClosed.
func TestSessionClose(t *testing.T) {
	f := newFakeTarget(t)
	s, err := f.dial(Config{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.TestUnitReady(0); !errors.Is(err, ErrSessionClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestWrite16FUA: Write16FUA sets FUA in the CDB (fio's sync=), Write16 does not, and the
// data lands either way.
func TestWrite16FUA(t *testing.T) {
	f := newFakeTarget(t)
	var flags []byte
	var mu sync.Mutex
	f.hook = func(f *fakeTarget, h *header, cdb []byte) bool {
		if cdb[0] == opWrite16 {
			mu.Lock()
			flags = append(flags, cdb[1])
			mu.Unlock()
		}
		return false
	}
	s, err := f.dial(Config{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := bytes.Repeat([]byte{0xa5}, 512)
	if err := s.Write16FUA(0, 1, 1, buf); err != nil {
		t.Fatal(err)
	}
	if err := s.Write16(0, 2, 1, buf); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1024)
	if err := s.Read16(0, 1, 2, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0xa5}, 1024)) {
		t.Fatalf("read back: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(flags) != 2 || flags[0]&cdbFUA == 0 || flags[1]&cdbFUA != 0 {
		t.Errorf("WRITE(16) byte 1 %#x, want FUA then none", flags)
	}
}
