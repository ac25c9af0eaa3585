// Package backendtest holds what the backends' integration tests share: keeping a target
// busy while its server is killed or frozen, and checking that every call then fails in time.
package backendtest

import (
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// Busy runs n goroutines of alternating 64 KiB writes and reads on tg, spread over the first
// slots × 64 KiB of it, until a call fails; each goroutine then sends its error. Call
// stop to end the goroutines that have not failed yet (each then sends nil).
func Busy(tg backends.Target, n, slots int) (errs <-chan error, stop func()) {
	ch := make(chan error, n)
	done := make(chan struct{})
	for w := range n {
		go func() {
			buf := make([]byte, 64<<10)
			for i := 0; ; i++ {
				off := int64((w*97+i*31)%slots) * int64(len(buf))
				var err error
				if i%2 == 0 {
					_, err = tg.WriteAt(buf, off)
				} else {
					_, err = tg.ReadAt(buf, off)
				}
				if err != nil {
					ch <- err
					return
				}
				select {
				case <-done:
					ch <- nil
					return
				default:
				}
			}
		}()
	}
	var stopped bool
	return ch, func() {
		if !stopped {
			stopped = true
			close(done)
		}
	}
}

// WaitErrors waits for n errors from errs (the goroutines of Busy) at most limit after since
// (when the server was killed or frozen), fails the test otherwise, and returns the first.
func WaitErrors(t testing.TB, errs <-chan error, n int, since time.Time, limit time.Duration) error {
	t.Helper()
	var first error
	deadline := time.After(limit - time.Since(since))
	for i := range n {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a call loop ended without an error")
			}
			if first == nil {
				first = err
				t.Logf("first error after %v: %v", time.Since(since).Round(time.Millisecond), err)
			}
		case <-deadline:
			t.Fatalf("only %d of %d calls failed within %v", i, n, limit)
		}
	}
	t.Logf("all %d calls failed %v after the server went away", n, time.Since(since).Round(time.Millisecond))
	return first
}
