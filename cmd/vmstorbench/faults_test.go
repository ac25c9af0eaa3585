package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// Faults injected during `migrate` (issue 16): each test runs the CLI entry point, kills
// something once the migration is under way, and checks the exit status class, the time
// from the fault to the exit (bounded generously: a hang, not a performance figure), the
// saved document with the named cause, and that no QEMU process or temporary file is left.

// phaseTrigger is the command's stderr: it calls fire (once, in its own goroutine) when the
// phase printer reports the migration under way.
type phaseTrigger struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	fire  func()
	fired chan time.Time
}

func (w *phaseTrigger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "  migrating\n") {
		w.once.Do(func() {
			go func() {
				w.fire()
				w.fired <- time.Now()
			}()
		})
	}
	return len(p), nil
}

func (w *phaseTrigger) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// requireQEMU skips (fails in CI) without QEMU.
func requireQEMU(t *testing.T) {
	t.Helper()
	if _, err := qemu.Binary(); err != nil {
		missing(t, err)
	}
}

func missing(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI=true and %v", err)
	}
	t.Skipf("skipping: %v", err)
}

type faultRun struct {
	err     error
	stderr  string
	doc     *results.Run
	toExit  time.Duration // from the fault to the command's return
	elapsed time.Duration
}

// migrateWithFault runs `vmstorbench migrate` with the args, calling inject(tmp) once the
// migration is under way (tmp is the run's TMPDIR, where QEMU's work directory lives).
func migrateWithFault(t *testing.T, inject func(t *testing.T, tmp string), args ...string) faultRun {
	t.Helper()
	requireQEMU(t)
	// A short path: QEMU's unix sockets live under it. The CLI builds (or finds) the shared
	// guest image in the default cache, as the vm packages' tests do.
	tmp, err := os.MkdirTemp("", "vsbf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	resDir := t.TempDir()
	w := &phaseTrigger{fired: make(chan time.Time, 1)}
	w.fire = func() { inject(t, tmp) }
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(w)
	cmd.SetArgs(append([]string{"migrate", "--accel", "tcg", "--at", "1s", "--after", "1s", "--disk-size", "8m",
		"--deadline", "30s", "--results", resDir}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	err = cmd.ExecuteContext(ctx)
	end := time.Now()
	fr := faultRun{err: err, stderr: w.String(), elapsed: end.Sub(start)}
	select {
	case at := <-w.fired:
		fr.toExit = end.Sub(at)
	default:
		t.Fatalf("the migration never started (err %v); stderr:\n%s", err, fr.stderr)
	}
	t.Logf("exit %d after %s, %s after the fault: %v", exitCode(err), fr.elapsed.Round(time.Millisecond), fr.toExit.Round(time.Millisecond), err)
	if testing.Verbose() {
		t.Logf("stderr:\n%s", fr.stderr)
	}
	files, _ := filepath.Glob(filepath.Join(resDir, "*.json"))
	if len(files) != 1 {
		t.Fatalf("%d result documents saved, want 1; stderr:\n%s", len(files), fr.stderr)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	fr.doc = &results.Run{}
	if err := json.Unmarshal(b, fr.doc); err != nil {
		t.Fatal(err)
	}
	if fr.doc.Migration == nil {
		t.Fatal("no migration section in the saved document")
	}
	checkNothingLeft(t, tmp)
	return fr
}

// qemuPIDs are the QEMU processes whose command line mentions dir (their work directory is
// under it), and whose name contains side when given.
func qemuPIDs(t *testing.T, dir, side string) []int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cl := string(b)
		if strings.Contains(cl, "qemu-system") && strings.Contains(cl, dir) && strings.Contains(cl, side) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// checkNothingLeft: every QEMU stopped, the work directory removed.
func checkNothingLeft(t *testing.T, tmp string) {
	t.Helper()
	if pids := qemuPIDs(t, tmp, ""); len(pids) > 0 {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL) // ours: their command line names our TMPDIR
		}
		t.Errorf("QEMU processes left running: %v", pids)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "vsb-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// killDestination SIGKILLs the destination QEMU.
func killDestination(t *testing.T, tmp string) {
	pids := qemuPIDs(t, tmp, "destination.qmp")
	if len(pids) != 1 {
		t.Errorf("destination QEMU: found pids %v", pids)
		return
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Errorf("kill the destination QEMU: %v", err)
	}
}

// The destination QEMU killed mid-migration: the migration fails, the guest runs on on the
// source and its workload ends intact: exit 4, the cause (the destination's exit) on stderr
// and in the document.
//
// VMSTORBENCH_FAULT_REPEAT=N repeats it N times (opt-in, ~7 s each): the issue saw the
// source's guest I/O hang for 60 s after this fault in 1 of 14 runs.
func TestIntegrationFaultDestinationKilled(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VMSTORBENCH_FAULT_REPEAT"))
	for i := range max(n, 1) {
		t.Run(strconv.Itoa(i), testDestinationKilled)
	}
}

func testDestinationKilled(t *testing.T) {
	fr := migrateWithFault(t, killDestination, "--target", "file://"+t.TempDir(), "--max-bandwidth", "40m")
	if a := fr.doc.Migration.After; a != nil {
		t.Logf("after the failed migration: %d I/Os, longest stall %s", a.IOs, time.Duration(a.LongestStallNS).Round(time.Millisecond))
	}
	if code := exitCode(fr.err); code != exitMigration {
		t.Errorf("exit %d (%v), want %d; stderr:\n%s", code, fr.err, exitMigration, fr.stderr)
	}
	m := fr.doc.Migration
	if m.Outcome != "failed" || !fr.doc.Complete {
		t.Errorf("outcome %q, complete %v (%s), want failed and complete", m.Outcome, fr.doc.Complete, fr.doc.Error)
	}
	if !strings.HasPrefix(m.Failure, "destination QEMU exited at ") || !strings.Contains(m.Failure, "signal: killed") {
		t.Errorf("failure %q: want the destination's exit named", m.Failure)
	}
	if !strings.Contains(fr.stderr, "vmstorbench: migrate: migration failed, the workload went on running on the source: destination QEMU exited") {
		t.Errorf("stderr does not name the cause:\n%s", fr.stderr)
	}
	if fr.toExit > 15*time.Second {
		t.Errorf("%s from the fault to the exit", fr.toExit)
	}
}

// startGanesha starts NFS-Ganesha for one test and returns the export directory's URL and
// the server's PID.
func startGanesha(t *testing.T) (*testbed.Ganesha, string) {
	t.Helper()
	requireQEMU(t)
	srv := testbed.NewGanesha()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	eps, err := srv.Start(ctx, t.TempDir())
	if err != nil {
		if os.Geteuid() != 0 || strings.Contains(err.Error(), "not found") {
			missing(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path.Dir(u.Path) // the export directory: the disk is a scratch image in it
	return srv, u.String()
}

// killStorage SIGKILLs Ganesha (the first of its PIDs; rpcbind stays).
func killStorage(srv *testbed.Ganesha) func(*testing.T, string) {
	return func(t *testing.T, _ string) {
		pids := srv.PIDs()
		if len(pids) == 0 {
			t.Error("ganesha: no PID")
			return
		}
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			t.Errorf("kill ganesha: %v", err)
		}
	}
}

// checkStorageFault: exit 1 within seconds, the first error line and the document name the
// storage.
func checkStorageFault(t *testing.T, fr faultRun) {
	t.Helper()
	if code := exitCode(fr.err); code != exitFailed {
		t.Errorf("exit %d (%v), want %d; stderr:\n%s", code, fr.err, exitFailed, fr.stderr)
	}
	if fr.err == nil || !strings.Contains(fr.err.Error(), "failed") {
		t.Errorf("error %v", fr.err)
	}
	if fr.doc.Complete || !strings.HasPrefix(fr.doc.Error, "storage: nfs://") {
		t.Errorf("complete %v, error %q: want incomplete, the storage named first", fr.doc.Complete, fr.doc.Error)
	}
	if !strings.HasPrefix(fr.doc.Migration.Failure, "storage: nfs://") {
		t.Errorf("migration.failure %q", fr.doc.Migration.Failure)
	}
	if !strings.Contains(fr.stderr, "vmstorbench: migrate: storage: nfs://") {
		t.Errorf("stderr does not name the storage first:\n%s", fr.stderr)
	}
	if fr.toExit > 15*time.Second {
		t.Errorf("%s from the fault to the exit", fr.toExit)
	}
}

// The NFS server killed during a pre-copy migration.
func TestIntegrationFaultStorageKilledPrecopy(t *testing.T) {
	srv, target := startGanesha(t)
	fr := migrateWithFault(t, killStorage(srv), "--target", target, "--max-bandwidth", "40m")
	checkStorageFault(t, fr)
}

// The NFS server killed during a stop-and-copy migration (the guest stopped).
func TestIntegrationFaultStorageKilledStopcopy(t *testing.T) {
	srv, target := startGanesha(t)
	fr := migrateWithFault(t, killStorage(srv), "--target", target, "--mode", "stopcopy", "--max-bandwidth", "40m")
	checkStorageFault(t, fr)
}

// No fault: stop-and-copy with the disk on NFS-Ganesha, repeated. The issue saw the
// destination guest's I/O stall after a completed migration in this setup. Opt-in
// (VMSTORBENCH_NFS_STOPCOPY_REPEAT=N, ~10 s a run): too slow for CI at a useful N.
func TestIntegrationNFSStopcopyRepeat(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VMSTORBENCH_NFS_STOPCOPY_REPEAT"))
	if n <= 0 {
		t.Skip("opt-in: VMSTORBENCH_NFS_STOPCOPY_REPEAT=N")
	}
	_, target := startGanesha(t)
	resDir := t.TempDir()
	start := time.Now()
	_, stderr, err := runCLI(t, "migrate", "--accel", "tcg", "--at", "1s", "--after", "2s", "--disk-size", "8m",
		"--target", target, "--mode", "stopcopy", "--repeat", strconv.Itoa(n), "--results", resDir)
	t.Logf("%d runs in %s: exit %d %v", n, time.Since(start).Round(time.Second), exitCode(err), err)
	if err != nil {
		t.Errorf("exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(resDir, "*.json"))
	worst := time.Duration(0)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var r results.Run
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		m := r.Migration
		after := time.Duration(0)
		if m.After != nil {
			after = time.Duration(m.After.LongestStallNS)
		}
		worst = max(worst, after)
		t.Logf("%s: complete %v, outcome %s, pause %.0f ms, stall %.0f ms, longest stall after %s", filepath.Base(f), r.Complete, m.Outcome, m.PauseMS, m.LongestStallMS, after.Round(time.Millisecond))
		if !r.Complete || m.Outcome != "completed" {
			t.Errorf("%s: complete %v, outcome %s: %s", filepath.Base(f), r.Complete, m.Outcome, r.Error)
		}
	}
	if worst > 5*time.Second {
		t.Errorf("the destination guest's I/O stalled %s after a completed migration", worst)
	}
}
