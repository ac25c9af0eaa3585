package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
)

// More storage faults during `migrate` (issue 16), with faults_test.go's harness and its
// NFS-Ganesha server: the server killed once the guest runs on the destination in post-copy,
// and killed while QEMU reaches the disk through vmstorbench's NBD export (the path SMB,
// go-nfs and DRBD disks take) instead of its own NFS client.

// faultAt is the time of the attributed fault, in seconds since the workload started (the
// "at 3.9 s" of the cause), -1 when the cause has none.
var faultAtRE = regexp.MustCompile(` at ([0-9]+\.[0-9]) s`)

func faultAt(cause string) float64 {
	m := faultAtRE.FindStringSubmatch(cause)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// checkExportLeftovers: with the server killed the run cannot remove its bench file over
// NFS; each file left in the exported directory must be named on stderr (the failed removal),
// never left silently. The test removes them from the exported directory itself.
func checkExportLeftovers(t *testing.T, srv *testbed.Ganesha, fr faultRun) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(srv.ExportDir(), "*"))
	for _, f := range left {
		name := filepath.Base(f)
		if !strings.Contains(fr.stderr, "closing the disk: ") || !strings.Contains(fr.stderr, name) {
			t.Errorf("%s left on the server's export without a word on stderr", name)
		}
		os.Remove(f)
	}
}

// killStorageAfter kills the server d after the migration started.
func killStorageAfter(srv *testbed.Ganesha, d time.Duration) func(*testing.T, string) {
	kill := killStorage(srv)
	return func(t *testing.T, tmp string) {
		time.Sleep(d)
		kill(t, tmp)
	}
}

// The NFS server killed during post-copy: the guest already runs on the destination, whose
// QEMU holds the disk, and the source still holds pages it needs. The run must end within
// seconds with the storage named, not wait on a destination stuck on a dead server.
// A WAN link keeps post-copy going for seconds after the switch at 1 s, so the kill at 2.5 s
// lands in it; the document proves it (the switch before the fault).
func TestIntegrationFaultStorageKilledPostcopy(t *testing.T) {
	t0 := time.Now()
	srv, target := startGanesha(t)
	t.Logf("NFS-Ganesha up in %s", time.Since(t0).Round(time.Millisecond))
	fr := migrateWithFault(t, killStorageAfter(srv, 2500*time.Millisecond), "--target", target,
		"--mode", "postcopy", "--postcopy-after", "1s", "--link", "wan")
	checkStorageFault(t, fr)
	m := fr.doc.Migration
	at := faultAt(m.Failure)
	switched := float64(m.SwitchoverNS) / 1e9
	t.Logf("switch to post-copy at %.1f s, storage fault at %.1f s, migration %s (end %.1f s)", switched, at, m.Outcome, float64(m.EndNS)/1e9)
	if m.SwitchoverNS == 0 || at < switched {
		t.Errorf("the fault (at %.1f s) did not come after the switch to post-copy (at %.1f s)", at, switched)
	}
	if m.Outcome == "completed" && at > float64(m.EndNS)/1e9+1 {
		t.Errorf("post-copy had ended (%.1f s) before the fault (%.1f s): not a fault during post-copy", float64(m.EndNS)/1e9, at)
	}
	checkExportLeftovers(t, srv, fr)
}

// The NFS server killed during pre-copy while QEMU reaches the disk through vmstorbench's
// NBD export (--access nbd): the export's NFS client retries a dead server for minutes on
// its own; the run must still end within seconds, the storage (not the export, not QEMU)
// named first.
func TestIntegrationFaultStorageKilledNBDExport(t *testing.T) {
	t0 := time.Now()
	srv, target := startGanesha(t)
	t.Logf("NFS-Ganesha up in %s", time.Since(t0).Round(time.Millisecond))
	fr := migrateWithFault(t, killStorage(srv), "--target", target, "--access", "nbd", "--max-bandwidth", "40m")
	checkStorageFault(t, fr)
	if a := fr.doc.Migration.Access; a == "" || a == "nfs (QEMU libnfs)" {
		t.Errorf("access %q: the disk did not go through the NBD export", a)
	}
	checkExportLeftovers(t, srv, fr)
}
