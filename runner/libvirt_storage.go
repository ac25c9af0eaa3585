package runner

import (
	"fmt"
	"os"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// libvirtStorage maps the storage method to the libvirt driver: with mirror, libvirt
// copies the disk itself inside its migration job (VIR_MIGRATE_NON_SHARED_DISK: the
// destination's NBD server, the source's drive-mirror), so the scenario runs as for shared
// storage (it drives no block job) and the driver copies the disk into the image --to
// names. A scratch image vmstorbench made in a directory target is made readable and
// writable by every user: the daemon's QEMU may run as another user (a session daemon's
// user, the system daemon's qemu user).
func libvirtStorage(cfg *migrate.Config, lv libvirt.DriverConfig, target string, keep bool) (libvirt.DriverConfig, error) {
	if cfg.Storage == migrate.StorageMirror {
		to, err := libvirtDestPath(cfg.To)
		if err != nil {
			return lv, err
		}
		lv.NonSharedDisk, lv.DestDisk, lv.KeepDestDisk = true, to, keep
		cfg.Storage, cfg.To = migrate.StorageShared, ""
	}
	if d := cfg.Disk; d != nil && d.Access == "file" && d.Scheme == "file" && strings.HasPrefix(target, "file://") {
		if st, err := os.Stat(strings.TrimPrefix(target, "file://")); err == nil && st.IsDir() {
			if err := os.Chmod(d.Drive.File, 0o666); err != nil {
				return lv, fmt.Errorf("the scratch image %s: %w", d.Drive.File, err)
			}
		}
	}
	return lv, nil
}

// libvirtDestPath is --to as a path on the destination's host ("" for a scratch image).
func libvirtDestPath(to string) (string, error) {
	if to == "" {
		return "", nil
	}
	u, err := backends.ParseURL(to)
	if err != nil {
		return "", fmt.Errorf("--to: %w", err)
	}
	if u.Scheme != "file" || (u.Host != "" && u.Host != "localhost") || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("--to %s: under libvirt the disk is copied into a file on the destination's host: give its path (file:///PATH, a directory for a new image or an image of the source's size)", backends.Redact(u))
	}
	return u.Path, nil
}

// libvirtMirrorResult records what libvirt's disk copy did, where the scenario saw a
// shared-storage migration: the method, the destination image, the disk bytes libvirt
// counted, and why the images were not compared at switchover.
func libvirtMirrorResult(mig *results.Migration, sum libvirt.Summary, security string) {
	mig.Storage = migrate.StorageMirror
	mig.DestinationDisk, mig.DestinationAccess = sum.DestDisk, "file (libvirt's NBD mirror into it)"
	// With VIR_MIGRATE_TLS libvirt runs the NBD connection over TLS too.
	mig.DiskStreamSecurity = security
	mig.DiskTransferredB = sum.DiskBytes
	if sum.DiskBytesLastPoll {
		mig.Notes = append(mig.Notes, "disk bytes: those of the source's last job-stats poll (libvirt's completed job does not count the NBD mirror), a lower bound")
	}
	mig.ImageCheck = &results.ImageCheck{When: "not compared", Error: "libvirt mirrors the disk inside its migration job and ends the source at Confirm, with no pause before the switchover where both images could be read; the workload's verify pass and the read-back on the destination check the data"}
}
