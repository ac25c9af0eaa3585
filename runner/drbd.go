package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/vm/drbdnode"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// drbdMigration is a migration on the testbed's DRBD pair (a drbd:// endpoint that names
// the peer node): the source QEMU's disk is node A's export, the destination's node B's,
// each opened by QEMU's own NBD client, and the pair goes dual-primary for the migration.
// The link between the sites carries the replication, not a storage path: the storage link
// (--storage-link, a suite's storage_link) shapes the pair's replication link for the run.
type drbdMigration struct {
	replica  *drbdnode.Replica
	src, dst *migrate.Disk
}

// openDRBDMigration returns nil (and no error) for any target but a testbed DRBD pair.
// --access does not apply to the pair: each QEMU opens its own node's export with its own
// NBD client.
func openDRBDMigration(ctx context.Context, s MigrationSpec) (*drbdMigration, error) {
	rep, ok, err := drbdnode.ReplicaFromURL(s.Target)
	if !ok || err != nil {
		return nil, err
	}
	if (s.Storage != "" && s.Storage != migrate.StorageShared) || s.To != "" {
		return nil, fmt.Errorf("--storage %s: a DRBD pair keeps the disk on both hosts: nothing to move (use the default, shared)", s.Storage)
	}
	rep.Link = s.StorageLink
	// The export's size, read once; the guest uses at most the disk size asked of it.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t, err := backends.Open(sctx, rep.ExportURL(0), backends.OpenParams{Read: true})
	if err != nil {
		return nil, fmt.Errorf("drbd pair: node a's export: %w", err)
	}
	size := min(t.Size(), s.DiskOptions.Size)
	t.Close()
	m := &drbdMigration{replica: rep}
	for i, d := range []**migrate.Disk{&m.src, &m.dst} {
		disk, err := migrate.ReplicaDisk(rep.ExportURL(i), size, "nbd (QEMU) to DRBD node "+[]string{"a", "b"}[i])
		if err != nil {
			return nil, err
		}
		*d = disk
	}
	m.src.URL, m.src.Scheme = backends.RedactString(s.Target), "drbd"
	return m, nil
}

// apply puts the pair into the run's configuration; nil m leaves it as it is.
func (m *drbdMigration) apply(cfg *migrate.Config) {
	if m == nil {
		return
	}
	cfg.Disk, cfg.DestDisk, cfg.Replica, cfg.StorageLink = m.src, m.dst, m.replica, nil
}

// close hands the pair back to the testbed's endpoints: node A Primary, the link as found.
func (m *drbdMigration) close(logf func(string, ...any)) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := m.replica.Restore(ctx); err != nil {
		logf("%v", err)
	}
}
