package nbdexport

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// TestIntegrationNBDRoundTrip exports an in-memory Target and has QEMU's own NBD client
// (qemu-io) write to it and read back; the Target must hold exactly what was written.
func TestIntegrationNBDRoundTrip(t *testing.T) {
	qemuIO, err := testbed.LookPath("qemu-io", "qemu-utils")
	if err != nil {
		vmtest.Missing(t, err)
	}
	target, err := mem.New(8 << 20)
	if err != nil {
		t.Fatal(err)
	}
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
	target, _ := mem.New(1 << 20)
	e, err := Serve(target, "vm disk", true)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.URL(), "nbd://127.0.0.1:") || !strings.HasSuffix(e.URL(), "/vm%20disk") {
		t.Fatalf("URL %s", e.URL())
	}
}
