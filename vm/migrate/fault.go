package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// Components a fault is attributed to: the first words of the error a failed run ends with.
const (
	compStorage   = "storage"
	compSource    = "source QEMU"
	compDest      = "destination QEMU"
	compGuest     = "guest"
	compMigration = "migration"
	compLink      = "link"
	// compDiskExport is the server the mirror writes the destination image through (its own
	// qemu-nbd).
	compDiskExport = "destination disk export"
)

// fault is one piece of evidence that something failed, timestamped on the host when
// vmstorbench saw it.
type fault struct {
	at        time.Time
	component string
	// side is the QEMU the fault stops ("source", "destination"), "" when it stops both
	// (the storage both open).
	side string
	// subject names the failed thing inside the component (the disk's URL), what and
	// reason say what happened, detail adds evidence (QEMU's stderr tail).
	subject, what, reason, detail string
	// secondary marks evidence of a failure that has its cause elsewhere (the migration
	// failed, the guest's workload hit errors, a connection dropped): it names the cause
	// only when no primary evidence (a process exit, a storage error) exists. Without this
	// rule a destination killed mid-migration would be reported as "migration failed",
	// whichever QEMU vmstorbench happened to hear from first.
	secondary bool
}

// format is the attribution line: "destination QEMU exited at 3.2 s (signal: killed): <stderr
// tail>", "storage: nfs://…: QEMU block I/O error on disk0 at 4.1 s (Input/output error)".
// Times are since t0 (the workload's start).
func (f fault) format(t0 time.Time) string {
	var b strings.Builder
	b.WriteString(f.component)
	if f.subject != "" {
		b.WriteString(": " + f.subject + ":")
	}
	fmt.Fprintf(&b, " %s at %.1f s", f.what, f.at.Sub(t0).Seconds())
	if f.reason != "" {
		b.WriteString(" (" + f.reason + ")")
	}
	if d := oneLine(f.detail, 300); d != "" {
		b.WriteString(": " + d)
	}
	return b.String()
}

// attribute picks the cause among the evidence: the earliest primary fault, else the
// earliest secondary one. ok is false when there is no evidence.
func attribute(faults []fault) (fault, bool) {
	var best fault
	ok := false
	for _, f := range faults {
		switch {
		case !ok:
			best, ok = f, true
		case best.secondary && !f.secondary:
			best = f
		case best.secondary == f.secondary && f.at.Before(best.at):
			best = f
		}
	}
	return best, ok
}

// oneLine squeezes a multi-line log tail into one line of at most n bytes (the end kept:
// QEMU's last words come last).
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// FaultError is the error a run ends with when it has evidence of what failed: Cause is the
// attribution line and comes first in the message.
type FaultError struct {
	Cause string
	Err   error
}

func (e *FaultError) Error() string {
	if e.Err == nil || errors.Is(e.Err, context.Canceled) {
		return e.Cause
	}
	// An error that already reports the cause (a wait that returned the context's cause)
	// adds nothing but its own words.
	then := strings.TrimSuffix(e.Err.Error(), ": "+e.Cause)
	if then == e.Cause {
		return e.Cause
	}
	return e.Cause + " (then: " + then + ")"
}

// withCause is err with the cause first: err itself when it carries a FaultError already
// (wrapped around what followed it, when it had nothing), else a FaultError around err when
// there is a cause. A FaultError is never given an error that contains it: its message would
// recurse without end.
func withCause(err error, cause string) error {
	var fe *FaultError
	switch {
	case errors.As(err, &fe):
		if fe.Err != nil || err == error(fe) {
			return err
		}
		return &FaultError{Cause: fe.Cause, Err: err}
	case cause != "":
		return &FaultError{Cause: cause, Err: err}
	}
	return err
}

func (e *FaultError) Unwrap() error { return e.Err }

// addFault records evidence. A primary fault that stops the QEMU the guest runs on (or the
// storage, which both use) cancels the scenario's context, so every wait and QMP call in
// progress ends within moments instead of at its own timeout.
func (s *scenario) addFault(f fault) {
	s.mu.Lock()
	// Each failed request of a dead server is evidence of the same fault: kept (the
	// earliest wins, whatever order they arrive in), told once.
	repeat := false
	for _, g := range s.faults {
		repeat = repeat || (g.component == f.component && g.side == f.side && g.subject == f.subject && g.what == f.what)
	}
	s.faults = append(s.faults, f)
	guestOn := s.guestOn
	s.mu.Unlock()
	if !repeat {
		s.cfg.Logf("fault: %s", f.format(s.origin()))
	}
	if !f.secondary && (f.side == "" || f.side == guestOn) && s.cancelFault != nil {
		s.cancelFault(&FaultError{Cause: f.format(s.origin())})
	}
}

// origin is the zero of fault times: the workload's start, or the run's before that.
func (s *scenario) origin() time.Time {
	if !s.t0.IsZero() {
		return s.t0
	}
	return s.started
}

// cause is the attribution line, "" without evidence.
func (s *scenario) cause() string {
	s.mu.Lock()
	f, ok := attribute(s.faults)
	s.mu.Unlock()
	if !ok {
		return ""
	}
	return f.format(s.origin())
}

// hasPrimaryFault reports whether a process exit or storage error has been seen.
func (s *scenario) hasPrimaryFault() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if !f.secondary {
			return true
		}
	}
	return false
}

// addCheckPause records a pause of vmstorbench's own (a check with the guest held paused).
func (s *scenario) addCheckPause(from, to time.Time) {
	s.mu.Lock()
	s.checkPauses = append(s.checkPauses, span{int64(from.Sub(s.t0)), int64(to.Sub(s.t0))})
	s.mu.Unlock()
}

// storageFailed reports whether there is primary evidence against the storage.
func (s *scenario) storageFailed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if !f.secondary && f.component == compStorage {
			return true
		}
	}
	return false
}

// settle waits up to d for primary evidence: a failure QEMU reports (migration failed) often
// arrives a moment before the process exit that caused it is reaped.
func (s *scenario) settle(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end) && !s.hasPrimaryFault(); {
		time.Sleep(20 * time.Millisecond)
	}
}

// setGuestOn records which QEMU runs the guest now, for deciding which faults end the run.
func (s *scenario) setGuestOn(side string) {
	s.mu.Lock()
	s.guestOn = side
	s.mu.Unlock()
}

// watchQEMU turns sd's QEMU exiting, other than by side.stop, into a fault with its reason
// and stderr tail.
func (s *scenario) watchQEMU(sd *side) {
	vm := sd.guest
	comp := compSource
	if sd.name == "destination" {
		comp = compDest
	}
	go func() {
		<-vm.Done()
		if sd.stopping.Load() {
			return
		}
		s.addFault(fault{at: time.Now(), component: comp, side: sd.name, what: "exited", reason: s.exitReason(sd), detail: exitDetail(vm.ExitReason(), vm.Log(), vm.ConsoleTail(4096))})
	}()
}

// exitReason is how sd's QEMU ended; an exit status 0 nobody asked for is the guest ending
// itself (QEMU runs with -no-reboot: a guest kernel that panics resets, and QEMU exits), which
// QEMU's SHUTDOWN event names.
func (s *scenario) exitReason(sd *side) string {
	r := sd.vm.ExitReason()
	if r != "exit status 0" {
		return r
	}
	for _, why := range []string{"guest-reset", "guest-shutdown", "guest-panic"} {
		if _, ok := s.event(sd.name, "SHUTDOWN", why, time.Time{}); ok {
			return r + ", the guest ended itself: " + why
		}
	}
	return r
}

// exitDetail is what tells why QEMU ended: its stderr, and for a guest that ended itself the
// last lines of its console (a kernel panic says why there, QEMU's stderr is empty).
func exitDetail(reason, qemuLog, console string) string {
	if reason != "exit status 0" || console == "" {
		return qemuLog
	}
	return strings.TrimSpace(qemuLog + "\nconsole: " + lastLine(console))
}

// blockIOError turns QEMU's BLOCK_IO_ERROR event into a storage fault.
func (s *scenario) blockIOError(sideName string, ev hv.Event) {
	var d struct {
		Device    string `json:"device"`
		Node      string `json:"node-name"`
		Operation string `json:"operation"`
		Action    string `json:"action"`
		Reason    string `json:"reason"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	dev := d.Device
	if dev == "" {
		dev = d.Node
	}
	// After a storage move the destination's disk is another image on other storage.
	subject := s.cfg.Disk.URL
	if sideName == "destination" && s.dst0 != nil {
		subject = s.dst0.URL
	}
	s.addFault(fault{
		at: ev.Received, component: compStorage, subject: subject,
		what:   fmt.Sprintf("QEMU block I/O error on %s (%s, %s QEMU, action %s)", dev, d.Operation, sideName, d.Action),
		reason: d.Reason,
	})
}

// probeStorage dials the storage server every interval until ctx ends: a connection refused
// by a server that accepted one before means the server is gone (killed, crashed), which is
// a storage fault at once. A slow or timed-out dial is not: a loaded server is not a failed
// one. A server that never accepted (the address guessed from the URL is not where it
// listens, e.g. NFS found through the portmapper) is not probed at all.
func (s *scenario) probeStorage(ctx context.Context, addr string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	reached := false
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, interval)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		switch {
		case err == nil:
			c.Close()
			reached = true
		case !reached && errors.Is(err, syscall.ECONNREFUSED):
			return
		case errors.Is(err, syscall.ECONNREFUSED) && s.replicaSwitched.Load():
			return // the source's replica stopped serving on purpose after the switchover
		case errors.Is(err, syscall.ECONNREFUSED):
			s.addFault(fault{at: time.Now(), component: compStorage, subject: s.cfg.Disk.URL,
				what: "server " + addr + " refuses connections", reason: "server down"})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
