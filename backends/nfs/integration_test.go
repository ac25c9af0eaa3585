package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// nfsServer is a running test server.
type nfsServer struct {
	name      string
	url       *url.URL // endpoint URL (names testbed.NFSFile in the export)
	exportDir string   // local directory behind the export
	stop      func() error
	pid       int // server process, 0 if in-process
}

// withFile returns the endpoint URL naming file instead, plus extra query options.
func (s nfsServer) withFile(file string, opts ...string) string {
	u := *s.url
	u.Path = path.Join(path.Dir(u.Path), file)
	for _, o := range opts {
		u.RawQuery += "&" + o
	}
	return u.String()
}

// exportURL is the URL of the export's root directory.
func (s nfsServer) exportURL() string {
	u := *s.url
	u.Path = path.Dir(u.Path)
	return u.String()
}

// skipOrFail skips a test whose server cannot run here, unless CI says it must.
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") == "" && (errors.Is(err, testbed.ErrMissingBinary) || os.Geteuid() != 0) {
		t.Skip(err)
	}
	t.Fatal(err)
}

func startGanesha(t *testing.T) nfsServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := testbed.NewGanesha()
	eps, err := g.Start(ctx, t.TempDir())
	if err != nil {
		skipOrFail(t, err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	return nfsServer{name: "ganesha", url: u, exportDir: g.ExportDir(), stop: g.Stop, pid: g.PIDs()[0]}
}

func startGoNFS(t *testing.T) nfsServer {
	t.Helper()
	g := testbed.NewGoNFS()
	eps, err := g.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	return nfsServer{name: "gonfs", url: u, exportDir: g.ExportDir(), stop: g.Stop}
}

func openT(t *testing.T, rawURL string, p backends.OpenParams) backends.Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tg, err := backends.Open(ctx, rawURL, p)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestIntegrationGanesha(t *testing.T) {
	s := startGanesha(t)
	t.Run("Portmapper", func(t *testing.T) { testPortmapper(t, s) })
	runServerTests(t, s)
}

// testPortmapper opens a URL without ports: they come from rpcbind, where Ganesha registered.
func testPortmapper(t *testing.T, s nfsServer) {
	u := *s.url
	u.Host = "127.0.0.1"
	u.RawQuery = ""
	cfg, err := parseConfig(&u)
	if err != nil {
		t.Fatal(err)
	}
	o := &opener{ctx: context.Background(), cfg: cfg}
	if err := o.ports(); err != nil {
		t.Fatal(err)
	}
	if want := s.url.Port() + "/" + s.url.Query().Get("mountport"); fmt.Sprintf("%d/%d", o.cfg.nfsPort, o.cfg.mountPort) != want {
		// Another test's Ganesha registered after this one: rpcbind holds one entry per program.
		t.Logf("rpcbind points at another server (%d/%d, ours %s): checked the lookup only", o.cfg.nfsPort, o.cfg.mountPort, want)
		return
	}
	u.Path = path.Join(path.Dir(u.Path), "pmap.img")
	tg := openT(t, u.String(), backends.OpenParams{Size: 1 << 20, Write: true})
	if _, err := tg.WriteAt([]byte("portmapper"), 0); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationGoNFS(t *testing.T) {
	s := startGoNFS(t)
	runServerTests(t, s)
}

// runServerTests runs the backend's tests against one server; the last one stops it.
func runServerTests(t *testing.T, s nfsServer) {
	t.Run("ReadWriteVerify", func(t *testing.T) { testReadWriteVerify(t, s) })
	t.Run("Unstable", func(t *testing.T) { testUnstable(t, s) })
	t.Run("UnknownExport", func(t *testing.T) { testUnknownExport(t, s) })
	t.Run("FileRules", func(t *testing.T) { testFileRules(t, s) })
	t.Run("BenchVerify", func(t *testing.T) { testBenchVerify(t, s) })
	t.Run("Queue", func(t *testing.T) { testQueue(t, s) })
	t.Run("SpaceCheck", func(t *testing.T) { testSpaceCheck(t, s) })
	t.Run("Files", func(t *testing.T) { testFiles(t, s) })
	if s.pid != 0 {
		t.Run("ServerHung", func(t *testing.T) { testServerHung(t, s) })
	}
	t.Run("ServerStopped", func(t *testing.T) { testServerStopped(t, s) })
}

// testSpaceCheck asks for twice the export's free space: the run is refused with one line
// from FSSTAT's figures before any file is created.
func testSpaceCheck(t *testing.T, s nfsServer) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.exportDir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	w := workloads.Workload{RW: "write", Size: 2 * free / (1 << 20) * (1 << 20)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := bench.Run(ctx, bench.Config{Target: s.exportURL(), Workload: w})
	if err == nil {
		t.Fatalf("a run of %d bytes with %d free was accepted", w.Size, free)
	}
	msg := err.Error()
	t.Log(msg)
	want := "need " + backends.HumanBytes(w.Size) + " for 1 bench file(s), "
	if !strings.Contains(msg, want) || !strings.Contains(msg, " free on "+s.url.Host+":"+path.Dir(s.url.Path)+" ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line with %q and the export", msg, want)
	}
	if _, err := os.Stat(filepath.Join(s.exportDir, "vmstorbench.job0.dat")); !os.IsNotExist(err) {
		t.Errorf("refused run created its bench file: %v", err)
	}
}

// testFiles runs two jobs of two files each (fio nrfiles) in the export's root directory:
// four bench files during the run, none after.
func testFiles(t *testing.T, s nfsServer) {
	w := workloads.Workload{RW: "randrw", Size: 2 << 20, NumJobs: 2, NrFiles: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Target: s.exportURL(), Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if res.Target.Info["files"] != "2" || res.Target.Info["cache"] != "server cache not droppable" {
		t.Errorf("target info %v", res.Target.Info)
	}
	if res.Read.IOs+res.Write.IOs != 2*512 {
		t.Errorf("%d I/Os, want 2 jobs × 2 MiB / 4 KiB", res.Read.IOs+res.Write.IOs)
	}
	left, _ := filepath.Glob(filepath.Join(s.exportDir, "vmstorbench.job*"))
	if len(left) != 0 {
		t.Errorf("bench files left behind: %v", left)
	}
}

// testReadWriteVerify writes random data at random offsets from 16 goroutines on one
// target, reads it back through the backend and from the server's disk.
func testReadWriteVerify(t *testing.T, s nfsServer) {
	const size = 8 << 20
	const workers = 16
	// Small rsize/wsize make the servers' real replies go through request splitting.
	tg := openT(t, s.withFile("rw.img", "rsize=192k", "wsize=128k"), backends.OpenParams{Size: size, Write: true})
	if got := tg.Size(); got != size {
		t.Fatalf("Size() = %d, want %d", got, size)
	}
	t.Logf("%s: READ up to %d bytes, WRITE up to %d bytes per call", s.name, tg.(*target).rmax, tg.(*target).wmax)
	d := tg.(backends.Describer).Describe()
	if d["security"] != "auth_sys" || d["protocol"] != "nfsv3" || d["access"] != "userspace" || d["stable"] != "filesync" {
		t.Errorf("Describe() = %v", d)
	}

	model := make([]byte, size) // a new file reads as zeros
	region := size / workers
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			base := w * region
			for range 24 {
				off := base + rng.IntN(region-1)
				n := 1 + rng.IntN(min(region-(off-base), 200<<10))
				buf := make([]byte, n)
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				if m, err := tg.WriteAt(buf, int64(off)); err != nil || m != n {
					errs <- errors.Join(err, errors.New("short write"))
					return
				}
				copy(model[off:], buf)
				off = base + rng.IntN(region-1)
				n = 1 + rng.IntN(region-(off-base))
				got := make([]byte, n)
				if m, err := tg.ReadAt(got, int64(off)); err != nil || m != n {
					errs <- errors.Join(err, errors.New("short read"))
					return
				}
				if !bytes.Equal(got, model[off:off+n]) {
					errs <- errors.New("read back differs from what was written")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Larger than rsize/wsize: split into pieces sent together.
	big := make([]byte, 3<<20+123)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	if n, err := tg.WriteAt(big, 1000); err != nil || n != len(big) {
		t.Fatalf("big write: %d, %v", n, err)
	}
	copy(model[1000:], big)
	all := make([]byte, size)
	if n, err := tg.ReadAt(all, 0); err != nil || n != size {
		t.Fatalf("full read: %d, %v", n, err)
	}
	if !bytes.Equal(all, model) {
		t.Fatal("full read differs from the model")
	}
	tail := make([]byte, 100)
	if n, err := tg.ReadAt(tail, size-40); n != 40 || err != io.EOF {
		t.Fatalf("read past the end: %d, %v; want 40, EOF", n, err)
	}
	onDisk, err := os.ReadFile(filepath.Join(s.exportDir, "rw.img"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, model) {
		t.Fatal("the server's file differs from what was written")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.exportDir, "rw.img")); !os.IsNotExist(err) {
		t.Errorf("created file not removed on Close: %v", err)
	}
}

func testUnstable(t *testing.T, s nfsServer) {
	tg := openT(t, s.withFile("unstable.img", "stable=unstable"), backends.OpenParams{Size: 4 << 20, Write: true})
	defer tg.Close()
	if d := tg.(backends.Describer).Describe(); d["stable"] != "unstable" {
		t.Errorf("Describe() = %v", d)
	}
	data := bytes.Repeat([]byte("unstable"), 256<<10/8)
	for off := int64(0); off < 4<<20; off += int64(len(data)) {
		if _, err := tg.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := tg.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := tg.ReadAt(got, 3<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after commit: %v", err)
	}
	if err := tg.Sync(); err != nil { // nothing written since: still fine
		t.Fatal(err)
	}
}

func testUnknownExport(t *testing.T, s nfsServer) {
	u := *s.url
	u.Path = "/no/such/export/file.img"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := backends.Open(ctx, u.String(), backends.OpenParams{Size: 1 << 20, Write: true})
	if err == nil {
		t.Fatal("opened a file in an export that does not exist")
	}
	t.Log(err)
	msg := err.Error()
	if !strings.Contains(msg, "no export") || !strings.Contains(msg, "MNT3ERR_") {
		t.Errorf("error does not say what is wrong: %v", err)
	}
	if s.name == "ganesha" && !strings.Contains(msg, s.exportDir) {
		t.Errorf("error does not list the server's exports: %v", err)
	}
	// An explicit export= that the server does not have.
	_, err = backends.Open(ctx, s.withFile("x.img", "export=/nope"), backends.OpenParams{Size: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "not a leading part") {
		t.Errorf("export= outside the path: %v", err)
	}
}

// testFileRules checks which files the backend creates, refuses, sizes and removes.
func testFileRules(t *testing.T, s nfsServer) {
	local := func(name string) string { return filepath.Join(s.exportDir, name) }
	exists := func(name string) bool { _, err := os.Stat(local(name)); return err == nil }
	ctx := context.Background()

	// An existing file the tool did not create: read yes, write only with AllowDestructive.
	orig := bytes.Repeat([]byte{0xab}, 1<<20)
	if err := os.WriteFile(local("existing.img"), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := backends.Open(ctx, s.withFile("existing.img"), backends.OpenParams{Size: 1 << 20, Write: true}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("write to an existing file without allow-destructive: %v", err)
	}
	tg := openT(t, s.withFile("existing.img"), backends.OpenParams{Size: 1 << 20, Read: true})
	got := make([]byte, 1<<20)
	if _, err := tg.ReadAt(got, 0); err != nil || !bytes.Equal(got, orig) || tg.Size() != 1<<20 {
		t.Fatalf("read existing file: %v", err)
	}
	tg.Close()
	tg = openT(t, s.withFile("existing.img"), backends.OpenParams{Size: 2 << 20, Write: true, AllowDestructive: true})
	if tg.Size() != 2<<20 {
		t.Errorf("existing file not extended to the job size: %d", tg.Size())
	}
	tg.Close()
	if !exists("existing.img") {
		t.Error("Close removed a file the tool did not create")
	}

	// Keep leaves a created file.
	tg = openT(t, s.withFile("kept.img"), backends.OpenParams{Size: 1 << 20, Write: true, Keep: true})
	tg.Close()
	if !exists("kept.img") {
		t.Error("Keep: created file removed")
	}

	// Job N > 0 gets <file>.N.
	tg = openT(t, s.withFile("jobs.img"), backends.OpenParams{Size: 1 << 20, Write: true, Job: 3})
	if !exists("jobs.img.3") || exists("jobs.img") {
		t.Error("job 3 did not get jobs.img.3")
	}
	tg.Close()

	// A directory URL gets one owned bench file per job.
	tg = openT(t, s.exportURL(), backends.OpenParams{Size: 1 << 20, Write: true, Job: 2})
	if !exists("vmstorbench.job2.dat") {
		t.Error("directory URL: vmstorbench.job2.dat not created")
	}
	tg.Close()
	if exists("vmstorbench.job2.dat") {
		t.Error("directory URL: bench file not removed")
	}

	// A reading job on a new file lays it out with data.
	tg = openT(t, s.withFile("layout.img"), backends.OpenParams{Size: 3<<20 + 512, Read: true})
	onDisk, err := os.ReadFile(local("layout.img"))
	if err != nil || len(onDisk) != 3<<20+512 || bytes.Count(onDisk, []byte{0}) > len(onDisk)/10 {
		t.Errorf("new file for a reading job not laid out with data (%d bytes, err %v)", len(onDisk), err)
	}
	tg.Close()

	if _, err := backends.Open(ctx, s.withFile("missing.img", "create=never"), backends.OpenParams{Size: 1 << 20, Write: true}); err == nil || !strings.Contains(err.Error(), "create=never") {
		t.Errorf("create=never on a missing file: %v", err)
	}
}

func testBenchVerify(t *testing.T, s nfsServer) {
	w := workloads.Workload{
		RW:      workloads.RandWrite,
		BS:      [2]workloads.BlockSize{workloads.Fixed(16 << 10), workloads.Fixed(16 << 10)},
		Size:    8 << 20,
		IODepth: 8,
		NumJobs: 2,
		Verify:  "crc32c",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Target: s.withFile("bench.img", "stable=unstable"), Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Verify == nil || res.Verify.Checked == 0 || res.Verify.Mismatches != 0 {
		t.Fatalf("run: complete %v, verify %+v", res.Complete, res.Verify)
	}
	if res.Target.Info["protocol"] != "nfsv3" {
		t.Errorf("target info %v", res.Target.Info)
	}
}

// testServerStopped stops the server under a target with reads in flight: every call must
// fail within seconds, and later calls at once.
func testServerStopped(t *testing.T, s nfsServer) {
	tg := openT(t, s.withFile("stopped.img", "timeout=3s"), backends.OpenParams{Size: 1 << 20, Write: true})
	defer tg.Close()
	var wg sync.WaitGroup
	// stopAt is written before stopped is closed, so a reader that sees stopped closed reads
	// it safely; every reader sees the close (a channel holding the time, taken and put back
	// by each reader, was briefly empty for the others).
	var stopAt time.Time
	stopped := make(chan struct{})
	late := make(chan time.Duration, 8)
	for range 8 {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := tg.ReadAt(buf, 0); err != nil {
					select {
					case <-stopped:
						late <- time.Since(stopAt)
					default:
						t.Errorf("read failed before the server stopped: %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	stopAt = time.Now()
	close(stopped)
	stopErr := make(chan error, 1)
	go func() { stopErr <- s.stop() }()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("reads still hanging 15 s after the server was stopped")
	}
	close(late)
	var slowest time.Duration
	for d := range late {
		slowest = max(slowest, d)
	}
	t.Logf("%s stopped: all reads failed within %s", s.name, slowest)
	if slowest > 8*time.Second {
		t.Errorf("a read failed only %s after the server was stopped", slowest)
	}
	start := time.Now()
	if _, err := tg.WriteAt([]byte("x"), 0); err == nil {
		t.Error("write after the server stopped succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("call on a dead connection took %s", d)
	}
	if err := <-stopErr; err != nil {
		t.Error(err)
	}
}

// testServerHung freezes the server process (SIGSTOP): the connection stays up but nothing
// answers, so only the call deadline (timeout=) can end the calls in flight.
func testServerHung(t *testing.T, s nfsServer) {
	tg := openT(t, s.withFile("hung.img", "timeout=1s"), backends.OpenParams{Size: 1 << 20, Write: true, Keep: true})
	defer tg.Close()
	if err := syscall.Kill(s.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(s.pid, syscall.SIGCONT)
	for wait := time.Now(); !processStopped(s.pid); time.Sleep(time.Millisecond) { // the signal takes effect asynchronously
		if time.Since(wait) > 5*time.Second {
			t.Fatal("server process did not stop")
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := tg.ReadAt(make([]byte, 4096), 0); err == nil || !strings.Contains(err.Error(), "no reply") {
				t.Errorf("read from a frozen server: %v", err)
			}
		})
	}
	wg.Wait()
	t.Logf("reads from the frozen server failed after %s", time.Since(start))
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("reads failed only after %s with timeout=1s", d)
	}
}

// processStopped reports whether every thread of pid is stopped (state T).
func processStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		st := string(b)
		if i := strings.LastIndex(st, ")"); i < 0 || len(st) < i+3 || st[i+2] != 'T' {
			return false
		}
	}
	return true
}

func TestRedact(t *testing.T) {
	// AUTH_SYS has no secrets: the URL is shown as it is, options included.
	raw := "nfs://127.0.0.1:2049/export/vm.img?mountport=20048&uid=1000"
	if got := backends.RedactString(raw); got != raw {
		t.Errorf("Redact(%s) = %s", raw, got)
	}
	// A password in the URL is refused before the backend sees it and is not echoed.
	_, err := backends.Open(context.Background(), "nfs://user:hunter2@127.0.0.1/export/f", backends.OpenParams{})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("password URL: %v", err)
	}
	// A user name makes no sense for AUTH_SYS.
	_, err = backends.Open(context.Background(), "nfs://user@127.0.0.1/export/f", backends.OpenParams{})
	if err == nil || !strings.Contains(err.Error(), "uid=") {
		t.Errorf("user in URL: %v", err)
	}
}
