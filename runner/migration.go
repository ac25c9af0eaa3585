package runner

import (
	"context"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
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
}

// RunMigration opens the disk, runs the migration scenario on it and returns the result
// document with its migration section (Run.Migration); a run that failed after it started
// returns its partial result with the error.
func RunMigration(ctx context.Context, s MigrationSpec, h Hooks) (*results.Run, error) {
	disk, err := migrate.OpenDisk(ctx, s.Target, s.DiskOptions)
	if err != nil {
		return nil, err
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
	start := time.Now()
	res, err := migrate.Run(ctx, cfg)
	if res == nil {
		return nil, err
	}
	h.logf("migration run finished in %s", time.Since(start).Round(time.Millisecond))
	res.Run.Migration = res.Migration
	return res.Run, err
}
