package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// skipNFSUnlessCI skips a test whose server cannot run here, unless CI says it must.
func skipNFSUnlessCI(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "" && (errors.Is(err, ErrMissingBinary) || os.Geteuid() != 0) {
		t.Skip(err)
	}
	t.Fatal(err)
}

// listenAddrs returns the local addresses (as /proc/net/tcp{,6} print them) of sockets
// listening on port.
func listenAddrs(t *testing.T, port int) []string {
	t.Helper()
	var addrs []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		s := bufio.NewScanner(fh)
		for s.Scan() {
			fields := strings.Fields(s.Text())
			// sl local_address rem_address st ...; st 0A is LISTEN.
			if len(fields) > 3 && fields[3] == "0A" && strings.HasSuffix(fields[1], fmt.Sprintf(":%04X", port)) {
				addrs = append(addrs, fields[1])
			}
		}
		fh.Close()
	}
	return addrs
}

// loopbackOnly reports whether a /proc/net address is 127.0.0.1 (in IPv4 or mapped IPv6).
func loopbackOnly(addr string) bool {
	host := addr[:strings.LastIndex(addr, ":")]
	return host == "0100007F" || host == "0000000000000000FFFF00000100007F"
}

func TestIntegrationGanesha(t *testing.T) {
	rpcbindBefore := listening(portmapAddr)
	dir := t.TempDir()
	g := NewGanesha()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := g.Start(ctx, dir)
	if err != nil {
		skipNFSUnlessCI(t, err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			g.Stop()
		}
	})

	if len(eps) != 1 || eps[0].Name != "nfs-ganesha" || eps[0].Security != "auth_sys" {
		t.Fatalf("endpoints %+v", eps)
	}
	nfsPort, mountPort := g.Ports()
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "nfs" || u.Host != Addr(nfsPort) || u.Path != filepath.Join(dir, "export", NFSFile) ||
		u.Query().Get("mountport") != fmt.Sprint(mountPort) || g.ExportDir() != filepath.Join(dir, "export") {
		t.Errorf("endpoint URL %s (ports %d, %d)", eps[0].URL, nfsPort, mountPort)
	}
	for _, port := range []int{nfsPort, mountPort} {
		addrs := listenAddrs(t, port)
		if len(addrs) == 0 {
			t.Errorf("nothing listens on port %d", port)
		}
		for _, a := range addrs {
			if !loopbackOnly(a) {
				t.Errorf("port %d listens on %s, not only 127.0.0.1", port, a)
			}
		}
	}
	// Everything Ganesha writes for this instance is under dir.
	for _, f := range []string{"ganesha.conf", "ganesha.log", "ganesha.pid", "recovery"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Ganesha, plus rpcbind if Start started it. (Whether rpcbind ran before Start says
	// nothing: another package's Ganesha may have stopped its rpcbind while Start waited for
	// the machine lock.)
	pids := g.PIDs()
	startedRPCBind := g.rpcbind != nil
	if len(pids) == 0 || (startedRPCBind && len(pids) != 2) || (!startedRPCBind && len(pids) != 1) {
		t.Errorf("PIDs() = %v (rpcbind running before: %v, started: %v)", pids, rpcbindBefore, startedRPCBind)
	}

	start := time.Now()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	t.Logf("stopped in %s; log ends: %s", time.Since(start), TailLog(filepath.Join(dir, "ganesha.log"), 300))
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil && !zombie(pid) {
			t.Errorf("pid %d still running after Stop", pid)
		}
	}
	if len(g.PIDs()) != 0 {
		t.Errorf("PIDs() after Stop = %v", g.PIDs())
	}
}

// zombie reports whether pid has exited but not been reaped (by a parent outside this test).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

func TestGaneshaConfig(t *testing.T) {
	conf := ganeshaConfig("/state dir", "/state dir/export", 2049, 20048)
	for _, want := range []string{
		"Bind_addr = 127.0.0.1;", "NFS_Port = 2049;", "MNT_Port = 20048;", "Protocols = 3, 4;",
		"Enable_NLM = false;", "Enable_RQUOTA = false;", "Enable_UDP = false;",
		`RecoveryRoot = "/state dir/recovery";`, `Path = "/state dir/export";`,
		"Access_Type = RW;", "Squash = No_Root_Squash;", "SecType = sys;", "Name = VFS;",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
}
