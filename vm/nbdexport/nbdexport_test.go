package nbdexport

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// TestIntegrationNBDRoundTrip exports an in-memory Target and has QEMU's own NBD client
// (qemu-io) write to it and read back; the Target must hold exactly what was written, and
// QEMU's flush must reach the Target's Sync.
func TestIntegrationNBDRoundTrip(t *testing.T) {
	qemuIO, err := testbed.LookPath("qemu-io", "qemu-utils")
	if err != nil {
		vmtest.Missing(t, err)
	}
	target := newGateTarget(t, 8<<20, 1)
	defer target.Close()
	// Data already on the target must be visible through the export.
	seed := bytes.Repeat([]byte{0x5a}, 4096)
	if _, err := target.WriteAt(seed, 1<<20); err != nil {
		t.Fatal(err)
	}
	e, err := Serve(target, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmds := []string{
		"write -P 0xab 4096 65536",
		"read -P 0xab 4096 65536",
		"read -P 0x5a 1048576 4096",
		"write -P 0xcd 8384512 4096", // the last 4 KiB
		"flush",
		// Requests in flight together, then a flush that waits for them.
		"aio_write -P 0x11 2097152 65536",
		"aio_write -P 0x22 2162688 65536",
		"aio_write -P 0x33 2228224 65536",
		"aio_write -P 0x44 2293760 65536",
		"aio_flush",
		"read -P 0x33 2228224 65536",
	}
	args := []string{"-f", "raw"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	args = append(args, e.URL())
	out, err := exec.CommandContext(ctx, qemuIO, args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Pattern verification failed") || strings.Contains(string(out), "error") {
		t.Fatalf("qemu-io %s: %v\n%s", e.URL(), err, out)
	}
	got := make([]byte, 65536)
	if _, err := target.ReadAt(got, 4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte{0xab}, 65536)) {
		t.Fatal("target does not hold what QEMU wrote at 4096")
	}
	last := make([]byte, 4096)
	if _, err := target.ReadAt(last, 8384512); err != nil || !bytes.Equal(last, bytes.Repeat([]byte{0xcd}, 4096)) {
		t.Fatalf("last block not written: %v", err)
	}
	for i, p := range []byte{0x11, 0x22, 0x33, 0x44} {
		if _, err := target.ReadAt(got, 2097152+int64(i)*65536); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{p}, 65536)) {
			t.Fatalf("aio_write %d not on the target: %v", i, err)
		}
	}
	// flush and aio_flush, and the disconnect (qemu-io sends NBD_CMD_DISC).
	if n := target.syncs.Load(); n < 3 {
		t.Fatalf("%d syncs reached the target, want at least 3 (flush, aio_flush, disconnect)", n)
	}
	t.Logf("%d syncs, at most %d requests in the backend at once", target.syncs.Load(), target.peak.Load())
	// Writing past the end must fail cleanly, not hang or corrupt.
	out, _ = exec.CommandContext(ctx, qemuIO, "-f", "raw", "-c", "write 8388608 4096", e.URL()).CombinedOutput()
	if !strings.Contains(string(out), "rror") {
		t.Fatalf("write beyond the end was accepted: %s", out)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("connection errors: %v", err)
	}
}

func TestURL(t *testing.T) {
	e, err := Serve(newGateTarget(t, 1<<20, 1), "vm disk", true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.URL(), "nbd://127.0.0.1:") || !strings.HasSuffix(e.URL(), "/vm%20disk") {
		t.Fatalf("URL %s", e.URL())
	}
}

// slowTarget delays every write, as a network backend's round trip does.
type slowTarget struct {
	*gateTarget
	delay time.Duration
}

// WriteAt takes its time inside the counted region, so that the peak says how many writes
// the export had in the backend at once (a sleep before entering would count only the copy).
func (s *slowTarget) WriteAt(b []byte, off int64) (int, error) {
	defer s.enter()()
	time.Sleep(s.delay)
	return s.Target.WriteAt(b, off)
}

// TestIntegrationQEMUConcurrent copies an image into the export with qemu-img convert (the
// copy must be exact), then has qemu-img bench write with 16 requests in flight and a flush
// every 64: with a backend that takes a while per write, the export must work on several at
// once, and the flushes must reach the backend.
func TestIntegrationQEMUConcurrent(t *testing.T) {
	qemuImg, err := testbed.LookPath("qemu-img", "qemu-utils")
	if err != nil {
		vmtest.Missing(t, err)
	}
	const size = 8 << 20
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(i*7 + i>>12)
	}
	img := filepath.Join(t.TempDir(), "src.img")
	if err := os.WriteFile(img, src, 0o644); err != nil {
		t.Fatal(err)
	}
	target := &slowTarget{gateTarget: newGateTarget(t, size, 1), delay: 2 * time.Millisecond}
	e, err := Serve(target, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qemuImgRun := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, qemuImg, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	qemuImgRun("convert", "-n", "-f", "raw", "-O", "raw", "-S", "0", "-m", "16", "-W", img, e.URL())
	got := make([]byte, size)
	if _, err := target.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Fatal("the export does not hold the image qemu-img copied")
	}
	syncs := target.syncs.Load()
	out := qemuImgRun("bench", "-f", "raw", "-w", "-c", "512", "-d", "16", "-s", "4096", "--flush-interval=64", e.URL())
	if p := target.peak.Load(); p < 2 {
		t.Fatalf("at most %d write in the backend at once: requests were served one at a time", p)
	}
	if n := target.syncs.Load() - syncs; n < 512/64 {
		t.Fatalf("%d syncs for qemu-img bench's %d flushes", n, 512/64)
	}
	t.Logf("qemu-img bench: %s; at most %d requests in the backend at once", strings.TrimSpace(out), target.peak.Load())
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Err(); err != nil {
		t.Fatalf("connection errors: %v", err)
	}
}
