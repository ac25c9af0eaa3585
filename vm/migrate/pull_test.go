package migrate

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/nbdexport"
)

// TestPullBacking makes the pull's overlay as a run does (backing file: the source's export
// through a tap) and has QEMU read the whole of it through the backing file as the
// destination QEMU would, with the client credentials object the destination gets: qemu-img
// convert, no guest. The copy must equal the source, and the tap see the source's known
// pattern in the clear without TLS only.
func TestPullBacking(t *testing.T) {
	qemuImg, err := testbed.LookPath("qemu-img", "qemu-utils")
	if err != nil {
		vmtest.Missing(t, err)
	}
	const size = 4 << 20
	src := scratchDisk(t, size, true)
	pattern := []byte("vmstorbench pull plaintext pattern 0123456789")
	f, err := os.OpenFile(src.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(pattern, 3<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, err := os.ReadFile(src.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, security := range []string{SecurityNone, SecurityTLS, SecurityTLSVerify} {
		t.Run(security, func(t *testing.T) {
			dir := t.TempDir()
			var srvTLS *tls.Config
			args := []string{"convert", "-O", "raw"}
			if security != SecurityNone {
				creds, err := writeTLSCreds(dir)
				if err != nil {
					t.Fatal(err)
				}
				if srvTLS, _, err = diskStreamTLS(dir, security == SecurityTLSVerify); err != nil {
					t.Fatal(err)
				}
				files := &hv.TLSFiles{ServerDir: creds.ServerDir, ClientDir: creds.ClientDir}
				args = append(args, "--object", hvqemu.TLSClientObject(hvqemu.TLSClientObjectID, files))
			}
			img, err := os.Open(src.path)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			exp, err := nbdexport.Serve(fileTarget{img, size}, pullExportName, true, nbdexport.WithTLS(srvTLS))
			if err != nil {
				t.Fatal(err)
			}
			defer exp.Close()
			tp := startTap(t, exp.Addr())
			backing, err := pullBacking(tp.addr, srvTLS != nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			overlay, out := filepath.Join(dir, "overlay.qcow2"), filepath.Join(dir, "copy.raw")
			if err := createOverlay(ctx, overlay, backing, size); err != nil {
				t.Fatal(err)
			}
			if o, err := exec.CommandContext(ctx, qemuImg, append(args, overlay, out)...).CombinedOutput(); err != nil {
				t.Fatalf("qemu-img convert through the backing file %s: %v: %s", backing, err, strings.TrimSpace(string(o)))
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the copy read through the overlay's backing file differs from the source")
			}
			if n := tp.bytesBack(); n < size {
				t.Fatalf("the tap passed %d bytes from the export, the image has %d: it was not on the way", n, size)
			}
			if seen := tp.contains(pattern); seen != (security == SecurityNone) {
				t.Errorf("security %s: the tap saw the image's plaintext: %v", security, seen)
			}
			if err := exp.Close(); err != nil {
				t.Fatal(err)
			}
			if err := exp.Err(); err != nil {
				t.Errorf("export: %v", err)
			}
		})
	}
}
