package migrate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// TestMirrorExport: a local destination image is served to the mirror by a qemu-nbd of its
// own (what a client writes through it lands in the image), which is gone once
// stopMirrorExport returns, before the destination QEMU would activate the image; other
// destinations keep the destination QEMU's export.
func TestMirrorExport(t *testing.T) {
	qemuIO, err := testbed.LookPath("qemu-io", "qemu-utils")
	if err == nil {
		_, err = testbed.LookPath("qemu-nbd", "qemu-utils")
	}
	if err != nil {
		if vmtest.CI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	const size = 1 << 20
	src := scratchDisk(t, size, true)
	s := &scenario{started: time.Now(), dir: t.TempDir(), cfg: &Config{Disk: src, Storage: StorageMirror, Security: SecurityNone, To: "file://" + t.TempDir(), Logf: t.Logf}}
	t.Cleanup(func() {
		if err := s.runCleanups(); err != nil {
			t.Error(err)
		}
	})
	if err := s.prepareStorage(context.Background(), &results.Migration{}); err != nil {
		t.Fatal(err)
	}
	if !s.mirrorExportable() {
		t.Fatalf("a local destination image (%+v) is not exported by qemu-nbd", s.dstDrive)
	}
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.startMirrorExport(context.Background(), port); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("nbd://%s/%s", testbed.Addr(port), mirrorExportName)
	if out, err := exec.Command(qemuIO, "-f", "raw", "-c", "write -P 0xa5 65536 4096", "-c", "flush", url).CombinedOutput(); err != nil {
		t.Fatalf("qemu-io through the export: %v: %s", err, out)
	}
	img, err := os.ReadFile(s.dst0.path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img[65536:65536+4096], bytes.Repeat([]byte{0xa5}, 4096)) || img[65535] != 0 || img[65536+4096] != 0 {
		t.Error("the write through the export did not land in the destination image as written")
	}
	if err := s.stopMirrorExport(); err != nil {
		t.Fatal(err)
	}
	if !s.mirrorExport.Exited() {
		t.Error("qemu-nbd still runs after stopMirrorExport")
	}
	time.Sleep(50 * time.Millisecond) // the watcher has seen the exit
	if c := s.cause(); c != "" {
		t.Errorf("stopping the export was taken for a fault: %s", c)
	}

	// Dying on its own (killed mid-mirror) is a primary fault of the export, named as such.
	s.mirrorExportStopping.Store(false)
	if err := s.startMirrorExport(context.Background(), port); err != nil {
		t.Fatal(err)
	}
	if err := s.mirrorExport.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.cause() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c := s.cause(); !strings.HasPrefix(c, "destination disk export: qemu-nbd (pid ") || !strings.Contains(c, "exited") || !strings.Contains(c, "killed") {
		t.Errorf("qemu-nbd killed: cause %q", c)
	}
	// Not a local file as the destination QEMU opens it (an NBD export of a backend): the
	// destination QEMU exports it itself.
	s.dstDrive = hv.Disk{File: "nbd://127.0.0.1:1/vmdisk", Format: "raw"}
	if s.mirrorExportable() {
		t.Error("an NBD destination drive would be exported by qemu-nbd")
	}
}
