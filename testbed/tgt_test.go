package testbed

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTgtEndpoints(t *testing.T) {
	eps := tgtEndpoints(3260, "s3cret")
	if len(eps) != 2 {
		t.Fatalf("%d endpoints", len(eps))
	}
	plain, chap := eps[0], eps[1]
	if plain.Name != "iscsi-tgt" || plain.Security != "none" || plain.URL != "iscsi://127.0.0.1:3260/"+TgtTarget+"/1" || plain.Env != nil {
		t.Errorf("plain endpoint %+v", plain)
	}
	if chap.Name != "iscsi-tgt-chap" || chap.Security != "chap" || chap.Env[ISCSISecretEnv] != "s3cret" {
		t.Errorf("CHAP endpoint %+v", chap)
	}
	if !strings.HasSuffix(chap.URL, "?chap_user="+ISCSICHAPUser) || strings.Contains(chap.URL, "s3cret") {
		t.Errorf("CHAP URL %q", chap.URL)
	}
}

// needISCSIServer skips when the server cannot run here (binary missing or not root) and
// CI is not set; in CI it is a failure.
func needISCSIServer(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "" && (errors.Is(err, ErrMissingBinary) || os.Geteuid() != 0) {
		t.Skip(err)
	}
	t.Fatal(err)
}

func TestIntegrationTgtStartStop(t *testing.T) {
	tg := NewTgt()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := tg.Start(ctx, t.TempDir())
	needISCSIServer(t, err)
	t.Cleanup(func() { tg.Stop() })
	if len(eps) != 2 {
		t.Fatalf("endpoints %+v", eps)
	}
	pids := tg.PIDs()
	if len(pids) != 1 {
		t.Fatalf("PIDs %v", pids)
	}
	c, err := net.DialTimeout("tcp", Addr(tg.Port()), time.Second)
	if err != nil {
		t.Fatalf("portal: %v", err)
	}
	c.Close()
	// Both targets exist, and the CHAP account is bound to the second one.
	if err := tg.adm(ctx, "", "--mode", "target", "--op", "show", "--tid", "2"); err != nil {
		t.Fatalf("tgtadm show: %v", err)
	}
	sock := filepath.Join(tgtRunDir, "socket."+strconv.Itoa(tg.control))
	if err := tg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pids[0], 0); err == nil {
		t.Errorf("tgtd %d still running after Stop", pids[0])
	}
	if _, err := os.Stat(sock); err == nil {
		t.Errorf("control socket %s left behind", sock)
	}
	if len(tg.PIDs()) != 0 {
		t.Errorf("PIDs after Stop: %v", tg.PIDs())
	}
}
