package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/drbdnode"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
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
func openDRBDMigration(ctx context.Context, target string, diskSize int64, storageLink *linkemu.Link, o *migrateOptions) (*drbdMigration, error) {
	rep, ok, err := drbdnode.ReplicaFromURL(target)
	if !ok || err != nil {
		return nil, err
	}
	if o.storage != migrate.StorageShared || o.to != "" {
		return nil, usage(fmt.Errorf("--storage %s: a DRBD pair keeps the disk on both hosts: nothing to move (use the default, shared)", o.storage))
	}
	// --access does not apply: each QEMU opens its own node's export with its own NBD client.
	rep.Link = storageLink
	// The export's size, read once; the guest uses at most --disk-size of it.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t, err := backends.Open(sctx, rep.ExportURL(0), backends.OpenParams{Read: true})
	if err != nil {
		return nil, fmt.Errorf("drbd pair: node a's export: %w", err)
	}
	size := min(t.Size(), diskSize)
	t.Close()
	m := &drbdMigration{replica: rep}
	for i, d := range []**migrate.Disk{&m.src, &m.dst} {
		disk, err := migrate.ReplicaDisk(rep.ExportURL(i), size, "nbd (QEMU) to DRBD node "+[]string{"a", "b"}[i])
		if err != nil {
			return nil, err
		}
		*d = disk
	}
	m.src.URL, m.src.Scheme = backends.RedactString(target), "drbd"
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

// printReplication prints a replicated disk's part of a migration summary: the replication
// bytes next to the links' and the role changes.
func printReplication(w io.Writer, r *results.MigrationReplication) {
	if r == nil {
		return
	}
	mb := func(b int64) string {
		if b < 0 {
			return "?"
		}
		return fmt.Sprintf("%.1f MB", float64(b)/1e6)
	}
	link := "as the pair was set up"
	if r.Link != nil {
		link = r.Link.Preset
	}
	fmt.Fprintf(w, "  replica    %s protocol %s, %s to %s, replication link %s: %s before, %s during the migration, %s after\n",
		r.Kind, r.Protocol, r.Source, r.Destination, link, mb(r.BeforeB), mb(r.DuringB), mb(r.AfterB))
	if r.Note != "" {
		fmt.Fprintf(w, "    note: %s\n", r.Note)
	}
	for _, st := range r.Steps {
		var nodes []string
		for _, n := range st.Nodes {
			two := ""
			if n.TwoPrimaries != nil {
				two = map[bool]string{true: ", two-primaries on", false: ", two-primaries off"}[*n.TwoPrimaries]
			}
			nodes = append(nodes, fmt.Sprintf("%s %s (%s%s)", n.Node, n.Role, n.Connection, two))
		}
		fmt.Fprintf(w, "    %-13s at %6.2f s, %5.0f ms: %s", st.Name, float64(st.TNS)/1e9, float64(st.DurationNS)/1e6, strings.Join(nodes, "; "))
		if st.Error != "" {
			fmt.Fprintf(w, "   ERROR %s", st.Error)
		}
		fmt.Fprintln(w)
	}
}
