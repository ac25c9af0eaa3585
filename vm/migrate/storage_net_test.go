package migrate_test

import (
	"context"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// TestIntegrationStorageToNFS moves the disk to an NFS server (--to nfs://…, go-nfs: in
// process, so it does not wait for the machine-wide Ganesha another suite may hold): a new
// image in the export directory, written through vmstorbench's NFS backend (--access nbd:
// go-nfs does not serve QEMU's libnfs), by the mirror through the NBD export the
// destination QEMU opens, by the copy's receiver directly. One server for both.
func TestIntegrationStorageToNFS(t *testing.T) {
	srv := testbed.NewGoNFS()
	eps := startServer(t, srv)
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path.Dir(u.Path) // the export directory: a new image is made in it
	for _, method := range []string{migrate.StorageMirror, migrate.StorageCopy} {
		t.Run(method, func(t *testing.T) {
			res := runStorage(t, func(c *migrate.Config) {
				c.Storage, c.To = method, u.String()
				c.ToOptions = migrate.DiskOptions{Access: migrate.AccessNBD}
				// Each of the mirror's writes is a synchronous NFS WRITE here, about as
				// slow as the guest's: a background mirror was still behind at the 30 s
				// deadline; write-blocking keeps the guest at the destination's pace.
				c.MirrorCopyMode, c.Deadline = "write-blocking", 2*time.Minute
				// The destination's first I/Os go through the NBD export and the NFS
				// client: 1.6 s without a completion was seen on a loaded machine, longer
				// than the default second after the migration.
				c.After = 3 * time.Second
			})
			m := checkMoved(t, res, method, "disk-bulk-copy")
			if !strings.Contains(m.DestinationAccess, "nfs") {
				t.Errorf("destination %q through %q", m.DestinationDisk, m.DestinationAccess)
			}
			left, _ := filepath.Glob(filepath.Join(srv.ExportDir(), "vmstorbench*"))
			t.Logf("in the export after the run: %v", left)
		})
	}
	if left, _ := filepath.Glob(filepath.Join(srv.ExportDir(), "vmstorbench*")); len(left) != 0 {
		t.Errorf("destination images left on the export: %v", left)
	}
}

// TestIntegrationStorageToISCSI moves the disk to tgt LUNs: the mirror into the CHAP LUN
// the destination QEMU opens with libiscsi, the copy into the other LUN through
// vmstorbench's own initiator (--access nbd for --to, since vmstorbench writes it itself).
// The LUNs are ISCSILUNSize, so the source is a (sparse) image of that size. It also
// checks the refusals on a network destination: a LUN larger or smaller than the source,
// and a portal nobody listens on, each refused before the guest boots.
func TestIntegrationStorageToISCSI(t *testing.T) {
	eps := startServer(t, testbed.NewTgt())
	var plain, chap testbed.Endpoint
	for _, e := range eps {
		switch e.Security {
		case "chap":
			chap = e
		case "none":
			plain = e
		}
	}
	for k, v := range chap.Env {
		t.Setenv(k, v)
	}
	for _, c := range []struct {
		name, to string
		size     int64
		want     string
	}{
		{"larger", plain.URL, storageDisk, "disk would change size"},
		{"smaller", plain.URL, 2 * testbed.ISCSILUNSize, "too small"},
		{"unreachable", "iscsi://127.0.0.1:1/iqn.2026-12.org.vmstorbench:none/1", testbed.ISCSILUNSize, "127.0.0.1:1"},
	} {
		t.Run("refused-"+c.name, func(t *testing.T) {
			err := refusedMove(t, c.to, c.size)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("--to %s with a %d-byte source: %v; want an error about %q", c.to, c.size, err, c.want)
			}
		})
	}
	for _, c := range []struct {
		method, to, access string
	}{
		{migrate.StorageMirror, chap.URL, migrate.AccessAuto},
		{migrate.StorageCopy, plain.URL, migrate.AccessNBD},
	} {
		t.Run(c.method, func(t *testing.T) {
			res := runOn(t, "file://"+t.TempDir(), migrate.DiskOptions{Size: testbed.ISCSILUNSize}, func(cfg *migrate.Config) {
				cfg.Storage, cfg.To = c.method, c.to
				cfg.ToOptions = migrate.DiskOptions{Access: c.access, AllowDestructive: true}
				cfg.Workload.Size = storageDisk // the guest works on the first 32 MiB
				// The mirror writes the LUN's 224 MiB of zeroes too: 20 s seen on a loaded
				// machine, before the RAM moves.
				cfg.Deadline = 2 * time.Minute
				// On a quiet machine the guest's ~3,600 random 4 KiB writes a second dirty
				// 64 KiB chunks faster than a background mirror into the LUN re-sends them
				// (7.6 GB sent in 2 min, never ready); write-blocking converges, as in the
				// NFS test. The test is about the LUN as a destination, not convergence.
				if c.method == migrate.StorageMirror {
					cfg.MirrorCopyMode = "write-blocking"
				}
			})
			m := res.Migration
			checkClean(t, res)
			if m.Storage != c.method || m.GuestOn != "destination" {
				t.Fatalf("storage %q, guest on %q", m.Storage, m.GuestOn)
			}
			ic := m.ImageCheck
			switch {
			case c.access == migrate.AccessAuto:
				// Only QEMU (libiscsi) opens this LUN: the check says it could not read it,
				// and the guest's read-back on the destination (checkClean) checks the data.
				if ic == nil || !strings.Contains(ic.Error, "only QEMU opens it") {
					t.Fatalf("image check of a LUN only QEMU opens: %+v", ic)
				}
			case ic == nil || ic.Error != "" || ic.Blocks != testbed.ISCSILUNSize/4096 || ic.DifferingBlocks != 0:
				t.Fatalf("image check: %+v", ic)
			}
			if !strings.Contains(m.DestinationAccess, "iscsi") {
				t.Errorf("destination %q through %q", m.DestinationDisk, m.DestinationAccess)
			}
			t.Logf("%s to %s: migration %.0f ms, disruption %.0f ms, disk link %d bytes", c.method, m.DestinationAccess, m.MigrationTimeMS, m.DisruptionMS, m.DiskTransferredB)
		})
	}
}

// refusedMove runs a mirror to `to` from a new source image of size bytes and returns the
// run's error, which must come before anything boots.
func refusedMove(t *testing.T, to string, size int64) error {
	t.Helper()
	img := vmtest.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	disk, err := migrate.OpenDisk(ctx, "file://"+t.TempDir(), migrate.DiskOptions{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	start := time.Now()
	res, err := migrate.Run(ctx, migrate.Config{
		Image: img, Accel: "tcg", Disk: disk, Workload: testWorkload(), Storage: migrate.StorageMirror,
		To: to, ToOptions: migrate.DiskOptions{AllowDestructive: true},
		At: time.Second, After: time.Second, Deadline: 30 * time.Second, Logf: t.Logf,
	})
	if res != nil && res.Migration != nil && res.Migration.BootNS > 0 {
		t.Errorf("the guest booted before the refusal")
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	return err
}
