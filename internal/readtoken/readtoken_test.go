package readtoken

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// reply is what the fake socket delivers next: the completion of w (of async client a, or
// of a caller that waits, with res), or a read error.
type reply struct {
	w       *Waiter
	a       *Async
	res     error
	readErr error
}

// fakeConn is a connection whose socket is a channel of replies.
type fakeConn struct {
	mu      sync.Mutex
	tok     Token
	failed  chan struct{}
	failErr error
	replies chan reply
	started []started // under mu
	bgDone  chan struct{}
}

type started struct {
	w *Waiter
	a *Async
}

func newFake(t *testing.T, background bool) *fakeConn {
	f := &fakeConn{failed: make(chan struct{}), replies: make(chan reply, 64), bgDone: make(chan struct{})}
	f.tok.Init(&f.mu, f, f.failed)
	if background {
		go func() {
			defer close(f.bgDone)
			f.tok.Background()
		}()
	} else {
		close(f.bgDone)
	}
	t.Cleanup(func() {
		f.Fail(errors.New("test over"))
		<-f.bgDone
	})
	return f
}

func (f *fakeConn) ReadOne() (*Waiter, error) {
	select {
	case r := <-f.replies:
		if r.readErr != nil {
			return nil, r.readErr
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.a != nil {
			f.tok.CompleteAsync(r.w, r.a)
		} else {
			f.tok.Complete(r.w, r.res)
		}
		return r.w, nil
	case <-f.failed:
		return nil, errors.New("socket shut down")
	}
}

func (f *fakeConn) Buffered() bool { return len(f.replies) > 0 }

func (f *fakeConn) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return
	}
	f.failErr = err
	close(f.failed)
	for _, s := range f.started {
		if !s.w.active {
			continue
		}
		if s.a != nil {
			f.tok.CompleteAsync(s.w, s.a)
		} else {
			f.tok.Complete(s.w, err)
		}
	}
}

// start puts a request of a (nil: a caller that waits) in flight.
func (f *fakeConn) start(a *Async) *Waiter {
	w := NewWaiter()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tok.Start(&w, a)
	f.started = append(f.started, started{&w, a})
	return &w
}

// until waits for cond (checked with mu held).
func (f *fakeConn) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitOn runs Wait for w on a goroutine; the result comes on the channel.
func (f *fakeConn) waitOn(w *Waiter) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f.tok.Wait(w) }()
	return ch
}

func recv(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

var errServer = errors.New("server error")

// asyncBehindCaller starts a caller's request and one of an async client as; the caller
// Waits and holds the token, the client waits in WaitAsync for its one result, queued behind
// the caller (its marker waits, parked). The results come on resSync and reaped.
func (f *fakeConn) asyncBehindCaller(t *testing.T) (caller *Waiter, as *Async, w1 *Waiter, resSync, reaped <-chan error) {
	t.Helper()
	caller = f.start(nil)
	a := NewAsync()
	as = &a
	w1 = f.start(as)
	resSync = f.waitOn(caller)
	f.until(t, "the caller holds the token", func() bool { return f.tok.reading })
	done := make(chan error, 1)
	go func() {
		f.tok.WaitAsync(as, func() bool { return as.completes >= 1 })
		done <- nil
	}()
	f.until(t, "the async client waits", func() bool { return as.marker.waiting && as.parked })
	return caller, as, w1, resSync, done
}

func TestToken(t *testing.T) {
	tests := []struct {
		name       string
		background bool
		run        func(t *testing.T, f *fakeConn)
	}{
		{"a lone caller reads its own reply", false, func(t *testing.T, f *fakeConn) {
			w := f.start(nil)
			f.replies <- reply{w: w, res: errServer}
			if err := f.tok.Wait(w); !errors.Is(err, errServer) {
				t.Fatalf("Wait: %v, want %v", err, errServer)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.tok.reading || f.tok.active != 0 {
				t.Fatalf("after Wait: reading %v, %d in flight", f.tok.reading, f.tok.active)
			}
		}},
		{"the holder reads another's reply; the token goes to the last waiter", false, func(t *testing.T, f *fakeConn) {
			a, b, c := f.start(nil), f.start(nil), f.start(nil)
			resA := f.waitOn(a)
			f.until(t, "a holds the token", func() bool { return f.tok.reading })
			resB := f.waitOn(b)
			f.until(t, "b waits", func() bool { return len(f.tok.waitq) == 1 })
			resC := f.waitOn(c)
			f.until(t, "c waits", func() bool { return len(f.tok.waitq) == 2 })
			// a reads b's reply (b leaves the queue with its result), then its own, and hands
			// the token to c, which reads its own reply.
			f.replies <- reply{w: b}
			if err := recv(t, "b", resB); err != nil {
				t.Fatal(err)
			}
			f.replies <- reply{w: a}
			if err := recv(t, "a", resA); err != nil {
				t.Fatal(err)
			}
			f.until(t, "c holds the token", func() bool { return f.tok.reading && len(f.tok.waitq) == 0 })
			f.replies <- reply{w: c, res: errServer}
			if err := recv(t, "c", resC); !errors.Is(err, errServer) {
				t.Fatalf("c: %v, want %v", err, errServer)
			}
		}},
		{"the background reader reads when nobody waits", true, func(t *testing.T, f *fakeConn) {
			w := f.start(nil)
			f.tok.Kick() // a send about to block
			f.replies <- reply{w: w}
			f.until(t, "the background reader completes the request", func() bool { return !w.active })
			if ok, err := w.TryResult(); !ok || err != nil {
				t.Fatalf("TryResult: %v, %v", ok, err)
			}
		}},
		{"release kicks the background reader for a caller's request only", false, func(t *testing.T, f *fakeConn) {
			as := NewAsync()
			for _, step := range []struct {
				what  string
				a     *Async
				kicks int
			}{{"async requests alone", &as, 0}, {"a caller's request in flight, nobody waiting", nil, 1}} {
				f.start(step.a)
				f.mu.Lock()
				f.tok.Take()
				f.mu.Unlock()
				f.tok.Release()
				if n := len(f.tok.bgKick); n != step.kicks {
					t.Fatalf("%s: %d kicks, want %d", step.what, n, step.kicks)
				}
			}
		}},
		{"an async client reads its own replies", false, func(t *testing.T, f *fakeConn) {
			as := NewAsync()
			w1, w2 := f.start(&as), f.start(&as)
			f.replies <- reply{w: w1, a: &as}
			f.replies <- reply{w: w2, a: &as}
			f.tok.WaitAsync(&as, func() bool { return as.completes >= 2 })
			f.mu.Lock()
			defer f.mu.Unlock()
			if as.Active() != 0 || as.Completes() != 2 || f.tok.reading {
				t.Fatalf("after WaitAsync: %d in flight, %d completes, reading %v", as.Active(), as.Completes(), f.tok.reading)
			}
		}},
		{"the holder hands the token to an async client's marker", false, func(t *testing.T, f *fakeConn) {
			caller, as, w1, resSync, reaped := f.asyncBehindCaller(t)
			f.replies <- reply{w: caller}
			if err := recv(t, "the caller", resSync); err != nil {
				t.Fatal(err)
			}
			f.until(t, "the async client holds the token", func() bool { return f.tok.reading && !as.marker.waiting })
			f.replies <- reply{w: w1, a: as}
			recv(t, "the async client", reaped)
		}},
		{"an async client parked for its result is woken by the holder", false, func(t *testing.T, f *fakeConn) {
			caller, as, w1, resSync, reaped := f.asyncBehindCaller(t)
			f.replies <- reply{w: w1, a: as} // read by the caller for the async client
			recv(t, "the async client", reaped)
			f.replies <- reply{w: caller}
			if err := recv(t, "the caller", resSync); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.tok.reading || len(f.tok.waitq) != 0 {
				t.Fatalf("after both: reading %v, %d waiting", f.tok.reading, len(f.tok.waitq))
			}
		}},
		{"a read error fails the holder and the waiters", false, func(t *testing.T, f *fakeConn) {
			a, b := f.start(nil), f.start(nil)
			as := NewAsync()
			f.start(&as)
			resA := f.waitOn(a)
			f.until(t, "a holds the token", func() bool { return f.tok.reading })
			resB := f.waitOn(b)
			f.until(t, "b waits", func() bool { return len(f.tok.waitq) == 1 })
			reaped := make(chan error, 1)
			go func() {
				f.tok.WaitAsync(&as, func() bool { return false })
				reaped <- nil
			}()
			f.until(t, "the marker waits", func() bool { return as.marker.waiting })
			errBroken := errors.New("connection broken")
			f.replies <- reply{readErr: errBroken}
			for _, r := range []struct {
				name string
				ch   <-chan error
			}{{"a", resA}, {"b", resB}} {
				if err := recv(t, r.name, r.ch); !errors.Is(err, errBroken) {
					t.Errorf("%s: %v, want %v", r.name, err, errBroken)
				}
			}
			recv(t, "the async client", reaped)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.tok.active != 0 || f.tok.async != 0 || as.Active() != 0 {
				t.Fatalf("after the failure: %d in flight (%d async), the client's %d", f.tok.active, f.tok.async, as.Active())
			}
		}},
		{"the background reader ends when the connection fails", true, func(t *testing.T, f *fakeConn) {
			w := f.start(nil)
			f.tok.Kick()
			f.until(t, "the background reader holds the token", func() bool { return f.tok.reading })
			f.replies <- reply{readErr: errors.New("connection broken")}
			select {
			case <-f.bgDone:
			case <-time.After(10 * time.Second):
				t.Fatal("the background reader did not end")
			}
			if ok, err := w.TryResult(); !ok || err == nil {
				t.Fatalf("TryResult: %v, %v; want the connection's error", ok, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newFake(t, tt.background))
		})
	}
}
