package iscsi

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/backendtest"
	"github.com/vmstorbench/vmstorbench/testbed"
)

func TestMain(m *testing.M) {
	// The gotgt testbed re-executes this test binary as its target process.
	testbed.RunChildIfRequested()
	os.Exit(m.Run())
}

// startServer starts a testbed server for one test and stops it (by PID) in Cleanup. It
// skips only when the server cannot run here (binary missing, not root) and CI is not set.
func startServer(t testing.TB, s testbed.Server) map[string]testbed.Endpoint {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := s.Start(ctx, t.TempDir())
	if err != nil {
		if os.Getenv("CI") == "" && (errors.Is(err, testbed.ErrMissingBinary) || os.Geteuid() != 0) {
			t.Skipf("%s unavailable: %v", s.Name(), err)
		}
		t.Fatalf("start %s: %v", s.Name(), err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop %s: %v", s.Name(), err)
		}
	})
	m := map[string]testbed.Endpoint{}
	for _, e := range eps {
		m[e.Name] = e
	}
	return m
}

// openEndpoint opens ep's URL (with extra query options) with ep's environment.
func openEndpoint(t testing.TB, ep testbed.Endpoint, query string, p backends.OpenParams) (*Target, error) {
	t.Helper()
	for k, v := range ep.Env {
		t.Setenv(k, v)
	}
	raw := ep.URL
	if query != "" {
		if strings.Contains(raw, "?") {
			raw += "&" + query
		} else {
			raw += "?" + query
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := backends.Open(ctx, raw, p)
	if err != nil {
		return nil, err
	}
	return tg.(*Target), nil
}

func mustOpen(t testing.TB, ep testbed.Endpoint, query string) *Target {
	t.Helper()
	tg, err := openEndpoint(t, ep, query, backends.OpenParams{Write: true, AllowDestructive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// exercise writes random blocks from 32 goroutines on one Target, reads every block back
// and compares, then syncs.
func exercise(t *testing.T, tg *Target) {
	t.Helper()
	if tg.Size() != testbed.ISCSILUNSize {
		t.Fatalf("Size %d, want %d", tg.Size(), testbed.ISCSILUNSize)
	}
	backendtest.RoundTrip(t, tg, tg.BlockSize())
}

func TestIntegrationTgt(t *testing.T) {
	eps := startServer(t, testbed.NewTgt())
	plain, chap := eps["iscsi-tgt"], eps["iscsi-tgt-chap"]

	t.Run("ReadWrite", func(t *testing.T) {
		tg := mustOpen(t, plain, "")
		want := map[string]string{"security": "none", "access": "userspace", "digest": "none", "block_size": "512"}
		for k, v := range want {
			if got := tg.Describe()[k]; got != v {
				t.Errorf("Describe()[%q] = %q, want %q", k, got, v)
			}
		}
		exercise(t, tg)
	})
	t.Run("Queue", func(t *testing.T) {
		ro, err := openEndpoint(t, plain, "", backends.OpenParams{})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		for _, tc := range []struct {
			name, query string
			maxIO       int64
		}{
			{"whole commands", "", 0},
			{"8 KiB commands with digests", "header_digest=crc32c&data_digest=crc32c", 8192},
		} {
			t.Run(tc.name, func(t *testing.T) { testQueue(t, mustOpen(t, plain, tc.query), ro, tc.maxIO) })
		}
	})
	t.Run("Digests", func(t *testing.T) {
		tg := mustOpen(t, plain, "header_digest=crc32c&data_digest=crc32c")
		if d := tg.Describe()["digest"]; d != "header=crc32c,data=crc32c" {
			t.Errorf("digest %q", d)
		}
		exercise(t, tg)
	})
	t.Run("CHAP", func(t *testing.T) {
		tg := mustOpen(t, chap, "")
		if s := tg.Describe()["security"]; s != "chap" {
			t.Errorf("security %q, want chap", s)
		}
		buf := make([]byte, 4096)
		if _, err := tg.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CHAPWrongSecret", func(t *testing.T) {
		bad := chap
		bad.Env = map[string]string{testbed.ISCSISecretEnv: "not-the-secret-at-all"}
		_, err := openEndpoint(t, bad, "", backends.OpenParams{})
		wantErr(t, err, "CHAP authentication failed", "0x0201")
		if strings.Contains(err.Error(), "not-the-secret-at-all") {
			t.Errorf("error shows the secret: %v", err)
		}
	})
	t.Run("CHAPRequired", func(t *testing.T) {
		noauth := chap
		noauth.URL = strings.Split(chap.URL, "?")[0]
		_, err := openEndpoint(t, noauth, "", backends.OpenParams{})
		wantErr(t, err, "authentication")
	})
	t.Run("UnknownTarget", func(t *testing.T) {
		ep := plain
		ep.URL = strings.Replace(plain.URL, testbed.TgtTarget, "iqn.2025-01.org.vmstorbench:nosuch", 1)
		_, err := openEndpoint(t, ep, "", backends.OpenParams{})
		wantErr(t, err, "target name not found")
	})
	t.Run("UnknownLUN", func(t *testing.T) {
		ep := plain
		ep.URL = strings.TrimSuffix(plain.URL, "/1") + "/7"
		_, err := openEndpoint(t, ep, "", backends.OpenParams{})
		wantErr(t, err, "LUN 7 does not exist", "LUNs 0, 1")
	})
	t.Run("ControllerLUN", func(t *testing.T) {
		ep := plain
		ep.URL = strings.TrimSuffix(plain.URL, "/1") + "/0"
		_, err := openEndpoint(t, ep, "", backends.OpenParams{})
		wantErr(t, err, "storage array controller, not a disk")
	})
	t.Run("Rules", func(t *testing.T) {
		_, err := openEndpoint(t, plain, "", backends.OpenParams{Write: true})
		wantErr(t, err, "--allow-destructive")
		_, err = openEndpoint(t, plain, "", backends.OpenParams{Size: testbed.ISCSILUNSize + 512})
		wantErr(t, err, "holds 268435456 bytes")
		// Without size= the engine's default size is a wish: the LUN is used whole.
		if tg, err := openEndpoint(t, plain, "", backends.OpenParams{Size: testbed.ISCSILUNSize + 512, SizeIsDefault: true}); err != nil {
			t.Errorf("default size larger than the LUN: %v", err)
		} else {
			tg.Close()
		}
		tg := mustOpen(t, plain, "")
		_, err = tg.ReadAt(make([]byte, 4096), 100)
		wantErr(t, err, "multiples of the LUN's 512-byte block size")
		_, err = tg.WriteAt(make([]byte, 1000), 0)
		wantErr(t, err, "multiples")
		_, err = tg.WriteAt(make([]byte, 4096), tg.Size()-512)
		wantErr(t, err, "beyond the end")
		n, err := tg.ReadAt(make([]byte, 4096), tg.Size()-512)
		if n != 512 || err == nil {
			t.Errorf("read across the end: %d, %v; want 512, EOF", n, err)
		}
		ro, err := openEndpoint(t, plain, "", backends.OpenParams{})
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		_, err = ro.WriteAt(make([]byte, 512), 0)
		wantErr(t, err, "reading only")
	})
}

func TestIntegrationGotgt(t *testing.T) {
	eps := startServer(t, testbed.NewGotgt())
	ep := eps["iscsi-gotgt"]
	t.Run("ReadWrite", func(t *testing.T) {
		exercise(t, mustOpen(t, ep, ""))
	})
	t.Run("UnknownTarget", func(t *testing.T) {
		bad := ep
		bad.URL = strings.Replace(ep.URL, testbed.GotgtTarget, "iqn.2025-01.org.vmstorbench:nosuch", 1)
		_, err := openEndpoint(t, bad, "", backends.OpenParams{})
		wantErr(t, err, "iqn.2025-01.org.vmstorbench:nosuch")
	})
	t.Run("UnknownLUN", func(t *testing.T) {
		bad := ep
		bad.URL = strings.TrimSuffix(ep.URL, "/1") + "/7"
		_, err := openEndpoint(t, bad, "", backends.OpenParams{})
		wantErr(t, err, "LUN 7 does not exist")
	})
	t.Run("CHAPUnsupported", func(t *testing.T) {
		t.Setenv(SecretEnv, "some-secret-1234")
		_, err := openEndpoint(t, ep, "chap_user=u", backends.OpenParams{})
		wantErr(t, err, "CHAP")
	})
	t.Run("DigestsUnimplemented", func(t *testing.T) {
		// gotgt v0.2.2 accepts HeaderDigest=CRC32C but sends no digests.
		_, err := openEndpoint(t, ep, "header_digest=crc32c", backends.OpenParams{})
		wantErr(t, err, "header digest mismatch", "digests it does not implement")
	})
}

// TestIntegrationTargetKilled kills the target under 16 busy goroutines: every call must
// fail within seconds, none may hang.
func TestIntegrationTargetKilled(t *testing.T) {
	for _, mk := range []func() testbed.Server{
		func() testbed.Server { return testbed.NewTgt() },
		func() testbed.Server { return testbed.NewGotgt() },
	} {
		srv := mk()
		t.Run(srv.Name(), func(t *testing.T) {
			var ep testbed.Endpoint
			for _, e := range startServer(t, srv) {
				if e.Security == "none" {
					ep = e
				}
			}
			tg := mustOpen(t, ep, "timeout=3s")
			busyUntilFailure(t, tg, func() {
				for _, pid := range srv.PIDs() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}, 5*time.Second)
		})
	}
}

// TestIntegrationTargetHung freezes tgtd (SIGSTOP): the connection stays open but nothing
// answers, so only the command timeout can end the calls.
func TestIntegrationTargetHung(t *testing.T) {
	srv := testbed.NewTgt()
	ep := startServer(t, srv)["iscsi-tgt"]
	tg := mustOpen(t, ep, "timeout=2s")
	pids := srv.PIDs()
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	busyUntilFailure(t, tg, func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
	}, 6*time.Second)
	if _, err := tg.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("read after the session failed succeeded")
	}
}

// busyUntilFailure keeps tg busy with 16 goroutines, calls kill, and checks that every
// goroutine's call fails within limit.
func busyUntilFailure(t *testing.T, tg *Target, kill func(), limit time.Duration) {
	t.Helper()
	errs, stop := backendtest.Busy(tg, 16, 2048)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	kill()
	backendtest.WaitErrors(t, errs, 16, killed, limit)
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}
