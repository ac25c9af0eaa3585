package testbed

import (
	"context"
	"errors"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestQemuNBDEndpoints(t *testing.T) {
	for _, c := range []struct {
		ca                  string
		name, url, security string
	}{
		{"", "nbd-qemu", "nbd://127.0.0.1:10809/vm", "none"},
		{"/s/a b/ca-cert.pem", "nbd-qemu-tls", "nbd://127.0.0.1:10809/vm?tls=on&tls_ca=%2Fs%2Fa+b%2Fca-cert.pem", "tls"},
	} {
		e := qemuNBDEndpoint(10809, c.ca)
		if e.Name != c.name || e.URL != c.url || e.Security != c.security || e.Env != nil {
			t.Errorf("ca %q: endpoint %+v", c.ca, e)
		}
		if u, err := url.Parse(e.URL); err != nil || u.Query().Get("tls_ca") != c.ca {
			t.Errorf("ca %q: URL %q does not carry it", c.ca, e.URL)
		}
	}
}

func TestIntegrationQemuNBDStartStop(t *testing.T) {
	q := NewQemuNBD()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := q.Start(ctx, t.TempDir())
	if err != nil {
		if os.Getenv("CI") == "" && errors.Is(err, ErrMissingBinary) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop() })
	if len(eps) != 2 || eps[0].Name != "nbd-qemu" || eps[1].Name != "nbd-qemu-tls" {
		t.Fatalf("endpoints %+v", eps)
	}
	pids := q.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs %v", pids)
	}
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("qemu-nbd %d still running after Stop", pid)
		}
	}
	if len(q.PIDs()) != 0 {
		t.Errorf("PIDs after Stop: %v", q.PIDs())
	}
}
