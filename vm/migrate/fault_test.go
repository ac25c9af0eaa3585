package migrate

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// The attribution picks the first primary cause by time, whatever order the evidence
// arrived in, and falls back to secondary evidence only when nothing else is known.
func TestAttribute(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	destExit := fault{at: at(3.2), component: compDest, side: "destination", what: "exited", reason: "signal: killed", detail: "qemu-system-x86_64: terminating\non signal 9\n"}
	migFailed := fault{at: at(3.1), component: compMigration, what: "failed", reason: "Unable to write to socket: Broken pipe", secondary: true}
	blockErr := fault{at: at(4.1), component: compStorage, subject: "nfs://127.0.0.1:2049/vm.img", what: "QEMU block I/O error on disk0", reason: "Input/output error"}
	refused := fault{at: at(3.9), component: compStorage, subject: "nfs://127.0.0.1:2049/vm.img", what: "server 127.0.0.1:2049 refuses connections", reason: "server down"}
	guestErr := fault{at: at(3.5), component: compGuest, what: "workload ended with an error", reason: "EIO", secondary: true}

	for _, tc := range []struct {
		name     string
		evidence []fault
		want     string
	}{
		{"destination killed: the exit wins over the earlier migration failure", []fault{migFailed, destExit},
			"destination QEMU exited at 3.2 s (signal: killed): qemu-system-x86_64: terminating on signal 9"},
		{"storage: the earliest storage evidence", []fault{guestErr, blockErr, refused},
			"storage: nfs://127.0.0.1:2049/vm.img: server 127.0.0.1:2049 refuses connections at 3.9 s (server down)"},
		{"block I/O error alone", []fault{blockErr},
			"storage: nfs://127.0.0.1:2049/vm.img: QEMU block I/O error on disk0 at 4.1 s (Input/output error)"},
		{"only secondary evidence", []fault{guestErr, migFailed},
			"migration failed at 3.1 s (Unable to write to socket: Broken pipe)"},
	} {
		f, ok := attribute(tc.evidence)
		if !ok {
			t.Fatalf("%s: no attribution", tc.name)
		}
		if got := f.format(t0); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if _, ok := attribute(nil); ok {
		t.Error("attribution without evidence")
	}
}

// A primary fault on the side the guest runs on (or the storage) ends the scenario's
// context with the cause; one on the other side, or secondary evidence, does not: a
// destination killed mid-migration leaves the guest running on the source.
func TestAddFaultCancels(t *testing.T) {
	for _, tc := range []struct {
		f      fault
		cancel bool
	}{
		{fault{component: compDest, side: "destination", what: "exited"}, false},
		{fault{component: compSource, side: "source", what: "exited"}, true},
		{fault{component: compStorage, what: "server refuses connections"}, true},
		{fault{component: compMigration, what: "failed", secondary: true}, false},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		s := &scenario{cfg: &Config{Logf: func(string, ...any) {}}, started: time.Now(), guestOn: "source", cancelFault: cancel}
		tc.f.at = time.Now()
		s.addFault(tc.f)
		var fe *FaultError
		if got := errors.As(context.Cause(ctx), &fe); got != tc.cancel {
			t.Errorf("%s %s: cancelled %v, want %v", tc.f.component, tc.f.what, got, tc.cancel)
		} else if got && !strings.HasPrefix(fe.Error(), tc.f.component) {
			t.Errorf("cause %q does not start with the component %q", fe.Error(), tc.f.component)
		}
		cancel(nil)
	}
}

// The storage probe names a server that refuses connections after it accepted them, and
// leaves alone an address that never answered (a guessed port).
func TestProbeStorage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	s := &scenario{cfg: &Config{Logf: t.Logf, Disk: &Disk{URL: "nfs://127.0.0.1/x"}}, started: time.Now(), guestOn: "source", cancelFault: cancel}
	done := make(chan struct{})
	go func() { defer close(done); s.probeStorage(context.Background(), addr, 20*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	killed := time.Now()
	ln.Close() // the server is gone
	<-done
	if took := time.Since(killed); took > time.Second {
		t.Errorf("%s to notice", took)
	}
	if c := s.cause(); !strings.HasPrefix(c, "storage: nfs://127.0.0.1/x: server "+addr+" refuses connections") {
		t.Errorf("cause %q", c)
	}
	if context.Cause(ctx) == nil {
		t.Error("the run's context was not ended")
	}

	// Never reached: no fault.
	s2 := &scenario{cfg: &Config{Logf: t.Logf, Disk: &Disk{URL: "nfs://127.0.0.1/x"}}, started: time.Now()}
	s2.probeStorage(context.Background(), addr, 20*time.Millisecond)
	if c := s2.cause(); c != "" {
		t.Errorf("a server never reached was blamed: %q", c)
	}
}
