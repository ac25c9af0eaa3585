package testbed

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLibvirtSocketURI(t *testing.T) {
	for _, c := range []struct{ socket, uri string }{
		{"/tmp/vsblv1/1/run/libvirt/libvirt-sock", "qemu+unix:///session?socket=/tmp/vsblv1/1/run/libvirt/libvirt-sock"},
		{"/tmp/a b&c/sock", "qemu+unix:///session?socket=/tmp/a+b%26c/sock"},
	} {
		got := LibvirtSocketURI(c.socket)
		u, err := url.Parse(got)
		if got != c.uri || err != nil || u.Query().Get("socket") != c.socket {
			t.Errorf("%q: %q (%v)", c.socket, got, err)
		}
	}
}

// TestLibvirtPairPostcopyWithTCP: the TCP listeners have no authentication, post-copy gives
// the daemons CAP_SYS_PTRACE; together they are refused before anything starts.
func TestLibvirtPairPostcopyWithTCP(t *testing.T) {
	p := &LibvirtPair{TCP: true, Postcopy: true}
	_, err := p.Start(context.Background(), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "use TLS") || strings.Contains(err.Error(), "\n") || p.base != "" {
		t.Fatalf("TCP with post-copy: %v", err)
	}
}

// TestIntegrationLibvirtPairStartStop starts the pair, checks that both sockets answer and
// the host UUIDs differ, and that Stop leaves no process and no directory.
func TestIntegrationLibvirtPairStartStop(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI=true and the libvirt pair needs root")
		}
		t.Skip("the libvirt pair needs root")
	}
	p := NewLibvirtPair()
	p.TCP, p.TLS = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eps, err := p.Start(ctx, t.TempDir())
	if err != nil {
		if os.Getenv("CI") == "" && errors.Is(err, ErrMissingBinary) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	if len(eps) != 6 || eps[0].Name != "libvirt-1" || eps[1].Name != "libvirt-2" || eps[2].Name != "libvirt-1-tcp" || eps[3].Name != "libvirt-2-tcp" ||
		eps[4].Name != "libvirt-1-tls" || eps[5].Name != "libvirt-2-tls" {
		t.Fatalf("endpoints %+v", eps)
	}
	for i, e := range eps[2:] {
		u, err := url.Parse(e.URL)
		if want := []string{"qemu+tcp", "qemu+tls"}[i/2]; err != nil || u.Scheme != want {
			t.Fatalf("endpoint URL %q: %v", e.URL, err)
		}
		if u.Scheme == "qemu+tls" {
			for _, f := range []string{"cacert.pem", "clientcert.pem", "clientkey.pem"} {
				if fi, err := os.Stat(filepath.Join(u.Query().Get("pkipath"), f)); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: %s %v", e.URL, f, err)
				}
			}
		}
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var sockets []string
	for _, e := range eps[:2] {
		u, err := url.Parse(e.URL)
		if err != nil || u.Scheme != "qemu+unix" {
			t.Fatalf("endpoint URL %q: %v", e.URL, err)
		}
		s := u.Query().Get("socket")
		c, err := net.DialTimeout("unix", s, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		sockets = append(sockets, s)
	}
	if u := p.HostUUIDs(); len(u) != 2 || u[0] == u[1] || u[0] == "" {
		t.Errorf("host UUIDs %v", u)
	}
	pids := p.PIDs()
	if len(pids) != 2 {
		t.Fatalf("PIDs %v", pids)
	}
	base := p.base
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("libvirtd %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(base); !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(sockets[0], base) {
		t.Errorf("%s after Stop: %v", base, err)
	}
}
