package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The gotgt server re-executes this test binary as its child.
	RunChildIfRequested()
	os.Exit(m.Run())
}

func TestIntegrationGotgtStartStop(t *testing.T) {
	g := NewGotgt()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := g.Start(ctx, t.TempDir())
	needISCSIServer(t, err)
	t.Cleanup(func() { g.Stop() })
	want := fmt.Sprintf("iscsi://127.0.0.1:%d/%s/%d", g.Port(), GotgtTarget, ISCSILUN)
	if len(eps) != 1 || eps[0].URL != want || eps[0].Name != "iscsi-gotgt" {
		t.Fatalf("endpoints %+v, want URL %s", eps, want)
	}
	c, err := net.DialTimeout("tcp", Addr(g.Port()), time.Second)
	if err != nil {
		t.Fatalf("portal: %v", err)
	}
	c.Close()
	t.Logf("isolation: %s", g.Isolation())
	if os.Geteuid() == 0 && g.Isolation() != IsolationNetns {
		t.Errorf("running as root but gotgt is not in a private network namespace (%q)", g.Isolation())
	}
	if g.Isolation() == IsolationNetns {
		// In the host's namespace only the relay listens, and only on loopback.
		for _, l := range tcpListeners(t, g.Port()) {
			if l != "0100007F" {
				t.Errorf("port %d has a listener on address %s of the host", g.Port(), l)
			}
		}
	}
	pid := g.PIDs()[0]
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("gotgt child %d still running after Stop", pid)
	}
}

// tcpListeners returns the hex local addresses of listening sockets on port in this network
// namespace (from /proc/net/tcp and tcp6).
func tcpListeners(t *testing.T, port int) []string {
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, p, ok := strings.Cut(fields[1], ":")
			if ok && p == fmt.Sprintf("%04X", port) {
				out = append(out, addr)
			}
		}
		fh.Close()
	}
	if len(out) == 0 {
		t.Errorf("no listener on port %d", port)
	}
	return out
}
