package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// withCause puts the cause first without ever wrapping a FaultError around an error that
// contains it (its message recursed without end: a stack overflow, or errors.Is looping), and
// without saying the cause twice when a wait returned the context's cause.
func TestWithCause(t *testing.T) {
	const cause = "storage: nfs://127.0.0.1/x: server 127.0.0.1:2049 refuses connections at 5.5 s (server down)"
	bare := func() error { return &FaultError{Cause: cause} } // the run's context's cause
	other := errors.New("qmp source: query-migrate: EOF")
	for _, tc := range []struct {
		name  string
		err   error
		cause string
		want  string
	}{
		{"the context's cause returned as it is", bare(), cause, cause},
		{"the context's cause wrapped by a wait", fmt.Errorf("wait for the guest: %w", bare()), cause,
			cause + " (then: wait for the guest)"},
		{"a fault the partial result wrapped", &FaultError{Cause: cause, Err: bare()}, cause, cause},
		{"a fault with what followed it", &FaultError{Cause: cause, Err: other}, cause, cause + " (then: " + other.Error() + ")"},
		{"an error with evidence found after it", other, cause, cause + " (then: " + other.Error() + ")"},
		{"an error without evidence", other, "", other.Error()},
		{"cancelled", &FaultError{Cause: cause, Err: context.Canceled}, cause, cause},
	} {
		done := make(chan string, 1)
		go func() {
			err := withCause(tc.err, tc.cause)
			_ = errors.Is(err, context.Canceled) // must end
			done <- err.Error()
		}()
		select {
		case got := <-done:
			if got != tc.want {
				t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
			}
			if tc.cause != "" && !strings.HasPrefix(got, tc.cause) {
				t.Errorf("%s: %q does not start with the cause", tc.name, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the error does not end (a cycle)", tc.name)
		}
	}
}

// A dead server fails every request in flight: each is evidence, the log tells the fault once.
func TestAddFaultTellsOnce(t *testing.T) {
	var logged []string
	s := &scenario{cfg: &Config{Logf: func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) }}, started: time.Now()}
	for i := range 5 {
		s.addFault(fault{at: time.Now(), component: compStorage, subject: "nfs://h/x", what: "NBD export's backend failed", reason: fmt.Sprintf("write %d", i)})
	}
	s.addFault(fault{at: time.Now(), component: compStorage, subject: "nfs://h/x", what: "server h refuses connections"})
	if len(logged) != 2 || len(s.faults) != 6 {
		t.Errorf("logged %d lines for %d faults, want 2 for 6: %q", len(logged), len(s.faults), logged)
	}
	if c := s.cause(); !strings.Contains(c, "(write 0)") {
		t.Errorf("cause %q: want the first evidence", c)
	}
}

// A QEMU that exits 0 unasked ran a guest that ended itself: the console's last lines (a
// kernel panic) say why, QEMU's stderr does not; a killed QEMU is told by its stderr alone.
func TestExitDetail(t *testing.T) {
	console := "[    1.0] booting\n[  35.2] Kernel panic - not syncing: Attempted to kill init!\n[  35.3] Rebooting in 1 seconds.."
	for _, tc := range []struct {
		reason, log, console, want string
	}{
		{"exit status 0", "", console, "console: [    1.0] booting | [  35.2] Kernel panic - not syncing: Attempted to kill init! | [  35.3] Rebooting in 1 seconds.."},
		{"signal: killed", "qemu-system-x86_64: terminating on signal 9", console, "qemu-system-x86_64: terminating on signal 9"},
		{"exit status 0", "", "", ""},
	} {
		if got := exitDetail(tc.reason, tc.log, tc.console); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.reason, got, tc.want)
		}
	}
}

// A guest whose clock ran far ahead of the host's while it booted is noted; the usual
// spread under TCG (0.4–1.8 times the host's time, measured) is not.
func TestClockRunaway(t *testing.T) {
	for _, tc := range []struct {
		uptime, boot time.Duration
		want         string
	}{
		{6*time.Minute + 26*time.Second, 11800 * time.Millisecond, "the guest's clock ran 33 times as fast as the host's while it booted (uptime 6m26s after 11.8s)"},
		{20470 * time.Millisecond, 11141 * time.Millisecond, ""},
		{5 * time.Second, 19 * time.Second, ""},
		{time.Second, 0, ""},
	} {
		got := clockRunaway(tc.uptime, tc.boot)
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("uptime %s, boot %s: %q, want %q…", tc.uptime, tc.boot, got, tc.want)
		}
	}
}
