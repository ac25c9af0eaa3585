package nbd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/backendtest"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// startQemuNBD starts qemu-nbd through the testbed for one test and stops it (by PID) in
// Cleanup. It skips only when qemu-nbd is missing and CI is not set.
func startQemuNBD(t testing.TB, readOnly bool) (*testbed.QemuNBD, testbed.Endpoint) {
	t.Helper()
	s, eps := startQemuNBDTLS(t, readOnly, false)
	return s, eps["nbd-qemu"]
}

// startQemuNBDTLS is startQemuNBD with the TLS export too (withTLS) and all endpoints by name.
func startQemuNBDTLS(t testing.TB, readOnly, withTLS bool) (*testbed.QemuNBD, map[string]testbed.Endpoint) {
	t.Helper()
	s := testbed.NewQemuNBD()
	s.ReadOnly, s.NoTLS = readOnly, !withTLS
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	eps, err := s.Start(ctx, t.TempDir())
	if err != nil {
		if os.Getenv("CI") == "" && errors.Is(err, testbed.ErrMissingBinary) {
			t.Skipf("qemu-nbd unavailable: %v", err)
		}
		t.Fatalf("start qemu-nbd: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop qemu-nbd: %v", err)
		}
	})
	m := map[string]testbed.Endpoint{}
	for _, e := range eps {
		m[e.Name] = e
	}
	return s, m
}

// serveOwn exports an in-memory target of size bytes with vm/nbdexport and returns its URL.
func serveOwn(t testing.TB, size int64, readOnly bool) string {
	t.Helper()
	m, err := mem.New(size)
	if err != nil {
		t.Fatal(err)
	}
	e, err := nbdexport.Serve(m, "disk", readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		if err := e.Err(); err != nil {
			t.Errorf("export: %v", err)
		}
	})
	return e.URL()
}

func openURL(t testing.TB, raw string, p backends.OpenParams) (*Target, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := backends.Open(ctx, raw, p)
	if err != nil {
		return nil, err
	}
	return tg.(*Target), nil
}

func mustOpen(t testing.TB, raw string, p backends.OpenParams) *Target {
	t.Helper()
	tg, err := openURL(t, raw, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

var rw = backends.OpenParams{Read: true, Write: true, AllowDestructive: true}

// exercise writes random blocks from 32 goroutines on one Target (more than any server
// takes at once), reads every block back and compares, then syncs.
func exercise(t *testing.T, tg *Target) {
	t.Helper()
	backendtest.RoundTrip(t, tg, 512)
}

func TestIntegrationQemuNBD(t *testing.T) {
	_, ep := startQemuNBD(t, false)
	if ep.Name != "nbd-qemu" {
		t.Errorf("endpoint %q", ep.Name)
	}
	t.Run("ReadWrite", func(t *testing.T) {
		tg := mustOpen(t, ep.URL, rw)
		if tg.Size() != testbed.QemuNBDSize {
			t.Fatalf("Size %d, want %d", tg.Size(), testbed.QemuNBDSize)
		}
		d := tg.Describe()
		for k, v := range map[string]string{"export": "vm", "security": "none", "tls": "no", "access": "userspace", "size": "268435456"} {
			if d[k] != v {
				t.Errorf("Describe()[%q] = %q, want %q", k, d[k], v)
			}
		}
		if !strings.Contains(d["flags"], "flush") || !strings.Contains(d["flags"], "fua") || strings.Contains(d["flags"], "read-only") {
			t.Errorf("flags %q", d["flags"])
		}
		exercise(t, tg)
	})
	t.Run("DirectIsFUA", func(t *testing.T) {
		p := rw
		p.Direct = true
		tg := mustOpen(t, ep.URL, p)
		if !tg.fua || tg.Describe()["write_mode"] != "write-through (FUA on every write)" {
			t.Errorf("direct: fua %v, write_mode %q", tg.fua, tg.Describe()["write_mode"])
		}
		exercise(t, tg)
	})
	t.Run("Shared", func(t *testing.T) {
		// Two connections see each other's writes (one image behind both).
		a, b := mustOpen(t, ep.URL, rw), mustOpen(t, ep.URL, rw)
		want := bytes.Repeat([]byte{0xa5}, 4096)
		if _, err := a.WriteAt(want, 8192); err != nil {
			t.Fatal(err)
		}
		if err := a.Sync(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4096)
		if _, err := b.ReadAt(got, 8192); err != nil || !bytes.Equal(got, want) {
			t.Errorf("read through the second connection: %v, equal %v", err, bytes.Equal(got, want))
		}
	})
	t.Run("Queue", func(t *testing.T) { queueRoundTrip(t, mustOpen(t, ep.URL, rw), 0) })
	t.Run("Rules", func(t *testing.T) { rules(t, ep.URL, testbed.QemuNBDSize) })
	t.Run("UnknownExport", func(t *testing.T) {
		_, err := openURL(t, strings.TrimSuffix(ep.URL, "/vm")+"/nosuch", backends.OpenParams{})
		wantErr(t, err, `no export "nosuch"`)
	})
}

// TestIntegrationQemuNBDTLS reaches qemu-nbd --tls-creds (x509, the testbed's throw-away CA)
// through NBD_OPT_STARTTLS.
func TestIntegrationQemuNBDTLS(t *testing.T) {
	_, eps := startQemuNBDTLS(t, false, true)
	ep, ok := eps["nbd-qemu-tls"]
	if !ok || ep.Security != "tls" {
		t.Fatalf("endpoints %+v", eps)
	}
	t.Run("ReadWrite", func(t *testing.T) {
		tg := mustOpen(t, ep.URL, rw)
		d := tg.Describe()
		if d["security"] != "tls" || !strings.HasPrefix(d["tls"], "TLS 1.3") {
			t.Errorf("security %q, tls %q", d["security"], d["tls"])
		}
		exercise(t, tg)
	})
	t.Run("Queue", func(t *testing.T) { queueRoundTrip(t, mustOpen(t, ep.URL, rw), 0) })
	plain := strings.Split(ep.URL, "?")[0]
	t.Run("Required", func(t *testing.T) {
		_, err := openURL(t, plain, backends.OpenParams{})
		wantErr(t, err, "requires TLS", "tls=on")
	})
	t.Run("UnknownCA", func(t *testing.T) {
		_, err := openURL(t, plain+"?tls=on", backends.OpenParams{})
		wantErr(t, err, "TLS handshake", "certificate")
	})
	t.Run("WrongName", func(t *testing.T) {
		_, err := openURL(t, ep.URL+"&tls_hostname=nas.example", backends.OpenParams{})
		wantErr(t, err, "TLS handshake", "nas.example")
	})
}

func TestIntegrationQemuNBDReadOnly(t *testing.T) {
	_, ep := startQemuNBD(t, true)
	readOnly(t, ep.URL)
}

func TestOwnExport(t *testing.T) {
	const size = 64 << 20
	u := serveOwn(t, size, false)
	t.Run("ReadWrite", func(t *testing.T) {
		tg := mustOpen(t, u, rw)
		if tg.Size() != size {
			t.Fatalf("Size %d", tg.Size())
		}
		if bs := tg.Describe()["block_size"]; bs != "min=512,preferred=4096,max=33554432" {
			t.Errorf("block_size %q", bs)
		}
		exercise(t, tg)
	})
	t.Run("DirectIsFUA", func(t *testing.T) {
		p := rw
		p.Direct = true
		exercise(t, mustOpen(t, u, p))
	})
	t.Run("Rules", func(t *testing.T) { rules(t, u, size) })
	t.Run("ReadOnly", func(t *testing.T) { readOnly(t, serveOwn(t, size, true)) })
	t.Run("UnknownExport", func(t *testing.T) {
		_, err := openURL(t, strings.TrimSuffix(u, "/disk")+"/nosuch", backends.OpenParams{})
		wantErr(t, err, `no export "nosuch"`)
	})
	t.Run("LargeRequestSplit", func(t *testing.T) {
		// 40 MiB is more than the 32 MiB the export takes in one request.
		tg := mustOpen(t, u, rw)
		buf := make([]byte, 40<<20)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		if _, err := tg.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(buf))
		if _, err := tg.ReadAt(got, 0); err != nil || !bytes.Equal(got, buf) {
			t.Fatalf("40 MiB round trip: %v", err)
		}
	})
	t.Run("TLSRefused", func(t *testing.T) {
		_, err := openURL(t, u+"?tls=on", backends.OpenParams{})
		wantErr(t, err, "refused TLS", "NBD_REP_ERR_UNSUP")
	})
}

// rules checks the destructive-write rule, sizes, alignment and the end of the export.
func rules(t *testing.T, u string, size int64) {
	_, err := openURL(t, u, backends.OpenParams{Write: true})
	wantErr(t, err, "--allow-destructive")
	tg := mustOpen(t, u, rw)
	_, err = tg.WriteAt(make([]byte, 4096), tg.Size()-512)
	wantErr(t, err, "beyond the end")
	n, err := tg.ReadAt(make([]byte, 4096), tg.Size()-512)
	if n != 512 || err == nil {
		t.Errorf("read across the end: %d, %v; want 512, EOF", n, err)
	}
	if tg.minBlock > 1 {
		_, err = tg.ReadAt(make([]byte, 4096), 100)
		wantErr(t, err, "minimum block size")
	}
	ro := mustOpen(t, u, backends.OpenParams{Read: true})
	_, err = ro.WriteAt(make([]byte, 512), 0)
	wantErr(t, err, "reading only")
}

// readOnly checks a read-only export: reads work, a writing open is refused clearly.
func readOnly(t *testing.T, u string) {
	tg := mustOpen(t, u, backends.OpenParams{Read: true})
	if f := tg.Describe()["flags"]; !strings.Contains(f, "read-only") {
		t.Errorf("flags %q lack read-only", f)
	}
	if _, err := tg.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	_, err := openURL(t, u, rw)
	wantErr(t, err, "is read-only", "NBD_FLAG_READ_ONLY")
}

// TestIntegrationServerKilled kills qemu-nbd under 16 busy goroutines: every call must fail
// within seconds, none may hang.
func TestIntegrationServerKilled(t *testing.T) {
	srv, ep := startQemuNBD(t, false)
	tg := mustOpen(t, ep.URL+"?timeout=3s", rw)
	queued := queueUntilFailure(tg)
	busyUntilFailure(t, tg, func() {
		for _, pid := range srv.PIDs() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}, 5*time.Second)
	waitQueueFailure(t, queued, time.Second)
	if _, err := tg.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("read after the connection failed succeeded")
	}
}

// TestIntegrationServerHung freezes qemu-nbd (SIGSTOP): the connection stays open but
// nothing answers, so only the request deadline can end the calls.
func TestIntegrationServerHung(t *testing.T) {
	srv, ep := startQemuNBD(t, false)
	tg := mustOpen(t, ep.URL+"?timeout=2s", rw)
	queued := queueUntilFailure(tg)
	pids := srv.PIDs()
	defer func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	first := busyUntilFailure(t, tg, func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
	}, 6*time.Second)
	var te *TimeoutError
	if !errors.As(first, &te) {
		t.Errorf("first error %v is not a timeout", first)
	}
	for i, err := range waitQueueFailure(t, queued, time.Second) {
		if !errors.As(err, &te) {
			t.Errorf("queued I/O %d: error %v is not a timeout", i, err)
		}
	}
}

// queueUntilFailure keeps 16 reads in flight on a Queue of tg (beside Busy's goroutines)
// until one fails, then reaps the others; it sends the errors of all that failed.
func queueUntilFailure(tg *Target) <-chan []error {
	const depth = 16
	out := make(chan []error, 1)
	go func() {
		q, err := tg.NewQueue(depth)
		if err != nil {
			out <- []error{err}
			return
		}
		defer q.Close()
		bufs := make([][]byte, depth)
		var errs []error
		inflight, i := 0, 0
		submit := func(s int) {
			i++
			off := int64(192<<20) + int64(i%1024)*64<<10
			if err := q.Submit(backends.IO{Off: off, Buf: bufs[s], Tag: s}); err != nil {
				errs = append(errs, err)
				return
			}
			inflight++
		}
		for s := range bufs {
			bufs[s] = make([]byte, 64<<10)
			submit(s)
		}
		var done []backends.Completion
		for inflight > 0 {
			done = q.Reap(done[:0], 1)
			for _, c := range done {
				inflight--
				if c.Err != nil {
					errs = append(errs, c.Err)
				} else if len(errs) == 0 {
					submit(c.Tag)
				}
			}
		}
		out <- errs
	}()
	return out
}

// waitQueueFailure waits (at most limit, after the Busy calls failed) for the errors of
// queueUntilFailure: all of its reads in flight must have failed.
func waitQueueFailure(t *testing.T, queued <-chan []error, limit time.Duration) []error {
	t.Helper()
	select {
	case errs := <-queued:
		if len(errs) == 0 {
			t.Error("the queue saw no error")
		}
		return errs
	case <-time.After(limit):
		t.Fatalf("the queue's I/Os did not all complete within %v of the synchronous calls' failures", limit)
		return nil
	}
}

func busyUntilFailure(t *testing.T, tg *Target, kill func(), limit time.Duration) error {
	t.Helper()
	errs, stop := backendtest.Busy(tg, 16, 2048)
	defer stop()
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	kill()
	return backendtest.WaitErrors(t, errs, 16, killed, limit)
}

func TestIntegrationUnixSocket(t *testing.T) {
	bin, err := testbed.LookPath("qemu-nbd", "qemu-utils")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	dir := t.TempDir()
	img, sock := filepath.Join(dir, "disk.img"), filepath.Join(dir, "nbd.sock")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := testbed.StartProcess(dir, "qemu-nbd", nil, bin, "-k", sock, "-x", "u", "-f", "raw", "-t", img)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(2 * time.Second)
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 200 || p.Exited() {
			t.Fatalf("qemu-nbd socket did not appear: %s", testbed.TailLog(p.LogPath, 400))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tg := mustOpen(t, "nbd+unix:///u?socket="+sock, rw)
	if tg.Size() != 1<<20 {
		t.Fatalf("size %d", tg.Size())
	}
	want := bytes.Repeat([]byte("unix"), 1024)
	if _, err := tg.WriteAt(want, 4096); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := tg.ReadAt(got, 4096); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("round trip over the Unix socket: %v", err)
	}
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
