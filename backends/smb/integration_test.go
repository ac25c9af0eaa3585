package smb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/backendtest"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// startSamba starts a real smbd for one test and stops it by PID when the test ends. It
// skips only when smbd is missing (or we are not root) outside CI.
func startSamba(t testing.TB) (*testbed.Samba, map[string]testbed.Endpoint, string) {
	s, eps, password, _ := startSambaDir(t)
	return s, eps, password
}

// startSambaDir is startSamba that also returns the server's state directory.
func startSambaDir(t testing.TB) (*testbed.Samba, map[string]testbed.Endpoint, string, string) {
	t.Helper()
	return startSambaWith(t, testbed.NewSamba())
}

// startSambaWith is startSambaDir for a Samba configured by the caller.
func startSambaWith(t testing.TB, s *testbed.Samba) (*testbed.Samba, map[string]testbed.Endpoint, string, string) {
	t.Helper()
	if _, err := testbed.LookPath("smbd", "samba"); err != nil || os.Geteuid() != 0 {
		if err == nil {
			err = errors.New("the Samba testbed needs root")
		}
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dir := t.TempDir()
	eps, err := s.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	byName := map[string]testbed.Endpoint{}
	for _, ep := range eps {
		byName[ep.Name] = ep
	}
	password := eps[0].Env[PasswordEnv]
	return s, byName, password, dir
}

// serverView is smbstatus's line for the one session open on the server: protocol,
// encryption and signing as Samba sees them. A session closed a moment ago may linger
// briefly, so it waits up to 2 s for exactly one.
func serverView(t *testing.T, stateDir string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		out, err := exec.Command("smbstatus", "-s", filepath.Join(stateDir, "smb.conf"), "-b").CombinedOutput()
		if err != nil {
			t.Fatalf("smbstatus: %v: %s", err, out)
		}
		var sessions []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, testbed.SambaUser) {
				sessions = append(sessions, strings.Join(strings.Fields(line), " "))
			}
		}
		if len(sessions) == 1 {
			return sessions[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("smbstatus shows %d sessions:\n%s", len(sessions), out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withFile points an endpoint URL at another file of the same share and adds query options.
func withFile(endpointURL, file, query string) string {
	u, err := url.Parse(endpointURL)
	if err != nil {
		panic(err)
	}
	u.Path = path.Dir(u.Path) + "/" + file
	q := u.Query()
	extra, _ := url.ParseQuery(query)
	for k, v := range extra {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func openTarget(t testing.TB, rawURL string, p backends.OpenParams) backends.Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := backends.Open(ctx, rawURL, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}

// hammer has 16 goroutines write random blocks at random offsets of their own regions, then
// read everything back and compare.
func hammer(t *testing.T, tg backends.Target, size int64) {
	const workers = 16
	region := size / workers
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			base := int64(w) * region
			want := make([]byte, region)
			if _, err := tg.ReadAt(want, base); err != nil { // initial content (zeros)
				errs <- err
				return
			}
			for range 24 {
				n := 1 + rng.IntN(300<<10) // up to 300 KiB: odd sizes, sub-block and multi-block
				off := rng.Int64N(region - int64(n))
				buf := make([]byte, n)
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				if m, err := tg.WriteAt(buf, base+off); err != nil || m != n {
					errs <- fmt.Errorf("write %d at %d: n=%d %v", n, base+off, m, err)
					return
				}
				copy(want[off:], buf)
			}
			got := make([]byte, region)
			if n, err := tg.ReadAt(got, base); err != nil || n != len(got) {
				errs <- fmt.Errorf("read back: n=%d %v", n, err)
				return
			}
			if !bytes.Equal(got, want) {
				errs <- fmt.Errorf("worker %d: data read back differs from data written", w)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := tg.Sync(); err != nil {
		t.Error(err)
	}
}

func describe(tg backends.Target) map[string]string {
	if d, ok := tg.(backends.Describer); ok {
		return d.Describe()
	}
	return nil
}

func TestIntegrationSMB(t *testing.T) {
	_, eps, password, stateDir := startSambaDir(t)
	shareDir := filepath.Join(stateDir, "share")
	t.Setenv(PasswordEnv, password)
	const size = 8 << 20
	gone := func(t *testing.T, file string) {
		t.Helper()
		if _, err := os.Stat(filepath.Join(shareDir, file)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not removed on Close (%v)", file, err)
		}
	}

	for _, name := range []string{"smb", "smb-signed", "smb-signed-cmac", "smb-encrypted"} {
		t.Run("endpoint="+name, func(t *testing.T) {
			ep := eps[name]
			tg := openTarget(t, ep.URL, backends.OpenParams{Size: size, Write: true})
			if tg.Size() != size {
				t.Fatalf("Size %d, want %d", tg.Size(), size)
			}
			d := describe(tg)
			if d["security"] != ep.Security || d["dialect"] != "3.1.1" || d["access"] != "userspace" {
				t.Fatalf("Describe() = %v, want security %s, dialect 3.1.1", d, ep.Security)
			}
			// The signing algorithm is recorded for the signed level only.
			wantSigning := map[string]string{"smb-signed": "AES-128-GMAC", "smb-signed-cmac": "AES-128-CMAC"}[name]
			if d["signing"] != wantSigning {
				t.Fatalf("Describe() = %v, want signing %q", d, wantSigning)
			}
			// Samba agrees: "partial" signing is the tree connect only, which 3.1.1 signs always.
			dir := stateDir
			if name == "smb-signed-cmac" {
				dir = filepath.Join(stateDir, "signing-cmac")
			}
			view := serverView(t, dir)
			wantView := map[string]string{
				"smb":             "SMB3_11 - partial(AES-128-GMAC)",
				"smb-signed":      "SMB3_11 - AES-128-GMAC",
				"smb-signed-cmac": "SMB3_11 - AES-128-CMAC",
				"smb-encrypted":   "SMB3_11 partial(AES-128-GCM)",
			}[name]
			if !strings.Contains(view, wantView) {
				t.Fatalf("smbstatus: %q, want %q", view, wantView)
			}
			hammer(t, tg, size)
			// One 4 MiB call is split into negotiated-size requests sent together.
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
			if n, err := tg.WriteAt(big, 1<<20); err != nil || n != len(big) {
				t.Fatalf("large write: n=%d %v", n, err)
			}
			got := make([]byte, len(big))
			if n, err := tg.ReadAt(got, 1<<20); err != nil || n != len(big) || !bytes.Equal(got, big) {
				t.Fatalf("large read: n=%d %v equal=%v", n, err, bytes.Equal(got, big))
			}
			// Reads past the end are short with io.EOF.
			if n, err := tg.ReadAt(make([]byte, 8192), size-4096); n != 4096 || err != io.EOF {
				t.Fatalf("read across EOF: n=%d err=%v", n, err)
			}
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.ReadAt(got[:1], 0); err == nil {
				t.Fatal("read after Close succeeded")
			}
			if ep.Name == "smb" || ep.Name == "smb-signed" { // other directories
				gone(t, testbed.SambaFile)
			}
		})
	}

	for _, dialect := range []string{"2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"} {
		for _, sign := range []string{"auto", "required"} {
			t.Run("dialect="+dialect+"/sign="+sign, func(t *testing.T) {
				u := withFile(eps["smb"].URL, "dialect.img", "dialect="+dialect+"&sign="+sign)
				tg := openTarget(t, u, backends.OpenParams{Size: 1 << 20, Write: true})
				wantSec := map[string]string{"auto": "none", "required": "signed"}[sign]
				if d := describe(tg); d["dialect"] != dialect || d["security"] != wantSec {
					t.Fatalf("Describe() = %v, want dialect %s, security %s", d, dialect, wantSec)
				}
				// Only 3.1.1 negotiates the algorithm; the others sign as their dialect says.
				wantSigning := map[string]string{"2.0.2": "HMAC-SHA256", "2.1": "HMAC-SHA256", "3.0": "AES-128-CMAC", "3.0.2": "AES-128-CMAC", "3.1.1": "AES-128-GMAC"}[dialect]
				if sign == "auto" {
					wantSigning = ""
				}
				if d := describe(tg); d["signing"] != wantSigning {
					t.Fatalf("Describe() = %v, want signing %q", d, wantSigning)
				}
				buf := bytes.Repeat([]byte{7}, 200<<10)
				if _, err := tg.WriteAt(buf, 12345); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(buf))
				if _, err := tg.ReadAt(got, 12345); err != nil || !bytes.Equal(got, buf) {
					t.Fatalf("read back: %v", err)
				}
			})
		}
	}

	t.Run("encryption needs SMB3", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := backends.Open(ctx, withFile(eps["smb-encrypted"].URL, "x.img", "dialect=2.1"), backends.OpenParams{Size: 4096, Write: true})
		if err == nil || !strings.Contains(err.Error(), "tree connect") {
			t.Fatalf("SMB 2.1 on an encrypted share: %v", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		dir := t.TempDir()
		pwFile := filepath.Join(dir, "pw")
		const wrong = "not-the-password-0123"
		if err := os.WriteFile(pwFile, []byte(wrong+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := backends.Open(ctx, withFile(eps["smb"].URL, "pw.img", "password_file="+pwFile), backends.OpenParams{Size: 4096, Write: true})
		if err == nil {
			t.Fatal("wrong password accepted")
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("wrong password took %v", el)
		}
		msg := err.Error()
		if strings.Contains(msg, wrong) || strings.Contains(msg, password) {
			t.Fatalf("error reveals a password: %s", msg)
		}
		if !strings.Contains(msg, "session set-up") || !strings.Contains(msg, "logon is invalid") {
			t.Fatalf("unclear error: %s", msg)
		}
	})

	t.Run("no password", func(t *testing.T) {
		t.Setenv(PasswordEnv, "")
		_, err := backends.Open(context.Background(), eps["smb"].URL, backends.OpenParams{})
		if err == nil || !strings.Contains(err.Error(), PasswordEnv) {
			t.Fatalf("missing password: %v", err)
		}
	})

	t.Run("unknown share", func(t *testing.T) {
		u := strings.Replace(eps["smb"].URL, "/"+testbed.SambaShare+"/", "/nosuchshare/", 1)
		_, err := backends.Open(context.Background(), u, backends.OpenParams{Size: 4096, Write: true})
		if err == nil || !strings.Contains(err.Error(), `share "nosuchshare"`) {
			t.Fatalf("unknown share: %v", err)
		}
	})

	t.Run("missing directory", func(t *testing.T) {
		_, err := backends.Open(context.Background(), withFile(eps["smb"].URL, "no/such/dir/f.img", ""), backends.OpenParams{Size: 4096, Write: true})
		if err == nil || !strings.Contains(err.Error(), "no such file, directory") {
			t.Fatalf("missing directory: %v", err)
		}
	})

	t.Run("existing files", func(t *testing.T) {
		u := withFile(eps["smb"].URL, "kept.img", "")
		kept := openTarget(t, u, backends.OpenParams{Size: 64 << 10, Write: true, Keep: true})
		if _, err := kept.WriteAt([]byte("hello"), 100); err != nil {
			t.Fatal(err)
		}
		if err := kept.Close(); err != nil {
			t.Fatal(err)
		}
		// Not created by this run: writing needs AllowDestructive.
		_, err := backends.Open(context.Background(), u, backends.OpenParams{Size: 64 << 10, Write: true})
		if err == nil || !strings.Contains(err.Error(), "allow-destructive") {
			t.Fatalf("existing file opened for writing: %v", err)
		}
		// Reading it is fine; it is not grown for a reading job.
		r := openTarget(t, u, backends.OpenParams{Size: 1 << 20, Read: true})
		got := make([]byte, 5)
		if _, err := r.ReadAt(got, 100); err != nil || string(got) != "hello" {
			t.Fatalf("read kept file: %q %v", got, err)
		}
		if _, err := r.WriteAt(got, 0); err == nil {
			t.Fatal("write through a read-only open succeeded")
		}
		if r.Size() != 64<<10 {
			t.Fatalf("read-only open of a 64 KiB file: Size %d", r.Size())
		}
		// With AllowDestructive it is written and grown, and not removed on Close.
		w := openTarget(t, u, backends.OpenParams{Size: 1 << 20, Write: true, AllowDestructive: true})
		if w.Size() != 1<<20 {
			t.Fatalf("Size %d", w.Size())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r2 := openTarget(t, u, backends.OpenParams{Size: 1 << 20})
		if _, err := r2.ReadAt(got, 100); err != nil || string(got) != "hello" {
			t.Fatalf("kept file after destructive open: %q %v", got, err)
		}
	})

	t.Run("reading job lays out a new file", func(t *testing.T) {
		tg := openTarget(t, withFile(eps["smb"].URL, "layout.img", ""), backends.OpenParams{Size: 3<<20 + 512, Read: true})
		buf := make([]byte, 4096)
		for _, off := range []int64{0, 2 << 20, 3<<20 + 512 - 4096} {
			if _, err := tg.ReadAt(buf, off); err != nil || bytes.Equal(buf, make([]byte, len(buf))) {
				t.Fatalf("at %d: hole or error (%v)", off, err)
			}
		}
		if err := tg.Close(); err != nil {
			t.Fatal(err)
		}
		gone(t, "layout.img")
	})

	t.Run("jobs get their own files", func(t *testing.T) {
		u := withFile(eps["smb"].URL, "jobs.img", "")
		a := openTarget(t, u, backends.OpenParams{Size: 4096, Write: true, Job: 0})
		b := openTarget(t, u, backends.OpenParams{Size: 4096, Write: true, Job: 1})
		if _, err := os.Stat(filepath.Join(shareDir, "jobs.img.1")); err != nil {
			t.Fatal(err)
		}
		if _, err := a.WriteAt([]byte("a"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteAt([]byte("b"), 0); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1)
		if _, err := a.ReadAt(got, 0); err != nil || got[0] != 'a' {
			t.Fatalf("job 0 reads %q %v", got, err)
		}
	})
}

// TestIntegrationSMBServerKilled kills smbd (all its processes) under 16 busy goroutines:
// every call must fail within seconds, and later calls at once.
func TestIntegrationSMBServerKilled(t *testing.T) {
	s, eps, password := startSamba(t)
	t.Setenv(PasswordEnv, password)
	tg := openTarget(t, eps["smb-signed"].URL, backends.OpenParams{Size: 16 << 20, Write: true})
	errs, stop := backendtest.Busy(tg, 16, 256)
	defer stop()
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(-s.PIDs()[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	backendtest.WaitErrors(t, errs, 16, killed, 5*time.Second)
	if _, err := tg.ReadAt(make([]byte, 4096), 0); err == nil {
		t.Fatal("read after the server died succeeded")
	}
	if err := tg.Close(); err != nil {
		t.Logf("Close after server death: %v", err)
	}
}

// TestIntegrationSMBServerHung stops smbd (SIGSTOP): the connection stays up but nothing
// answers, so the per-request timeout must end the calls.
func TestIntegrationSMBServerHung(t *testing.T) {
	s, eps, password := startSamba(t)
	t.Setenv(PasswordEnv, password)
	pgid := s.PIDs()[0]
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) })
	tg := openTarget(t, withFile(eps["smb"].URL, testbed.SambaFile, "timeout=1500ms"), backends.OpenParams{Size: 16 << 20, Write: true})
	errs, stop := backendtest.Busy(tg, 16, 256)
	defer stop()
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	first := backendtest.WaitErrors(t, errs, 16, stopped, 4*time.Second)
	if !strings.Contains(first.Error(), "no response from") {
		t.Errorf("timeout error unclear: %v", first)
	}
	start := time.Now()
	_ = tg.Close()
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close after a timeout took %v", el)
	}
}
