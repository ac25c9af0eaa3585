package runner

import (
	"context"
	"errors"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// MigrationSpec is one migration run: migrate.Config as it is (so a field added there is set
// by the callers and reaches the scenario unchanged) but for the disk, which RunMigration
// opens from Target and DiskOptions, and the hooks, which come from Hooks.
type MigrationSpec struct {
	migrate.Config
	// Target is where the guest's disk lives: a directory (a scratch image is created), an
	// image file, or any backend URL.
	Target string
	// DiskOptions open the disk; their Access, AllowDestructive and Keep also open the
	// destination disk (Config.ToOptions) and the outside target (Config.OutsideOpen).
	DiskOptions migrate.DiskOptions
	// Libvirt, if set, runs the guests under two libvirt daemons instead of QEMU processes
	// vmstorbench starts (Config.Driver is then the libvirt driver).
	Libvirt *libvirt.DriverConfig
}

// RunMigration opens the disk, runs the migration scenario on it and returns the result
// document with its migration section (Run.Migration); a run that failed after it started
// returns its partial result with the error.
func RunMigration(ctx context.Context, s MigrationSpec, h Hooks) (*results.Run, error) {
	// A testbed DRBD pair is two disks and a replica (drbd.go), anything else one disk.
	drbd, err := openDRBDMigration(ctx, s)
	if err != nil {
		return nil, err
	}
	if drbd != nil && s.Libvirt != nil {
		drbd.close(h.logf)
		return nil, errors.New("a testbed DRBD pair gives the destination a disk of its own, which the libvirt driver does not: use another target with --hypervisor libvirt")
	}
	defer drbd.close(h.logf)
	disk := &migrate.Disk{}
	if drbd == nil {
		if disk, err = migrate.OpenDisk(ctx, s.Target, s.DiskOptions); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err := disk.Close(); err != nil {
			h.logf("closing the disk: %v", err)
		}
	}()
	cfg := s.Config
	cfg.Disk = disk
	d := s.DiskOptions
	cfg.OutsideOpen = backends.OpenParams{AllowDestructive: d.AllowDestructive, Keep: d.Keep}
	cfg.ToOptions = migrate.DiskOptions{Access: d.Access, AllowDestructive: d.AllowDestructive, Keep: d.Keep}
	cfg.Progress = h.Phase
	cfg.Logf = h.logf
	drbd.apply(&cfg)
	var lv *libvirt.Driver
	if s.Libvirt != nil {
		lvCfg, err := libvirtStorage(&cfg, *s.Libvirt, s.Target, d.Keep)
		if err != nil {
			return nil, err
		}
		if lv, err = libvirt.NewDriver(ctx, lvCfg); err != nil {
			return nil, err
		}
		defer lv.Close()
		cfg.Driver = lv
		if cfg.Accel == "auto" {
			// The daemon knows whether its QEMU can use KVM (its capabilities): no probe.
			cfg.Accel = "tcg"
			if lv.KVM() {
				cfg.Accel = "kvm"
			}
		}
		src, dst := lv.Hosts()
		h.logf("libvirt: source %s (%s, libvirt %s, QEMU %s), destination %s (%s, libvirt %s, QEMU %s)",
			src.URI, src.Hostname, src.LibvirtVersion, src.HypervisorVersion, dst.URI, dst.Hostname, dst.LibvirtVersion, dst.HypervisorVersion)
	}
	start := time.Now()
	res, err := migrate.Run(ctx, cfg)
	if res == nil {
		return nil, err
	}
	if lv != nil && res.Migration != nil {
		sum := lv.Summary()
		res.Migration.Libvirt = libvirtSection(sum)
		if s.Storage == migrate.StorageMirror {
			libvirtMirrorResult(res.Migration, sum, s.Security)
		}
	}
	h.logf("migration run finished in %s", time.Since(start).Round(time.Millisecond))
	res.Run.Migration = res.Migration
	return res.Run, err
}

// libvirtSection is a libvirt run's part of the result.
func libvirtSection(sum libvirt.Summary) *results.MigrationLibvirt {
	out := &results.MigrationLibvirt{
		SourceURI: sum.Source.URI, DestURI: sum.Dest.URI, SourceHost: sum.Source.Hostname, DestHost: sum.Dest.Hostname,
		LibvirtVersion: sum.Source.LibvirtVersion, DestLibvirtVersion: sum.Dest.LibvirtVersion, DestQEMU: sum.Dest.HypervisorVersion,
		Domain: sum.Domain, Measured: results.MeasuredHostOnly, Flags: sum.Flags,
	}
	if sum.Agent {
		out.Measured = results.MeasuredAgent
	}
	if j := sum.Job; j != nil {
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		out.Job = &results.LibvirtJob{
			ElapsedMS: ms(j.Elapsed), DowntimeMS: ms(j.Downtime), DowntimeNetMS: ms(j.DowntimeNet), SetupTimeMS: ms(j.Setup),
			DataTotalB: j.DataTotal, DataProcessedB: j.DataProcessed, MemoryBPS: j.MemoryBPS, Iterations: j.Iterations, DiskTotalB: j.DiskTotal,
		}
	}
	return out
}
