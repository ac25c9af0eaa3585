package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// Replica is a VM disk replicated between the source's and the destination's host (DRBD):
// the source QEMU opens its host's replica (Config.Disk), the destination QEMU the other
// host's (Config.DestDisk), and the replicas' roles change around the migration, as the
// published dual-primary scenario has it. Each method returns the replicas' states after it.
type Replica interface {
	// BeforeMigrate makes the destination's replica writable before the destination QEMU
	// opens it (DRBD: allow-two-primaries on, the peer promoted).
	BeforeMigrate(ctx context.Context) ([]results.ReplicaNodeState, error)
	// AfterSwitchover runs once the destination runs the guest and the source QEMU is gone:
	// the source's replica gives up its role (DRBD: demoted, two-primaries off).
	AfterSwitchover(ctx context.Context) ([]results.ReplicaNodeState, error)
	// Abort goes back to the source's replica alone when the migration did not complete
	// (DRBD: the peer demoted, two-primaries off), once the destination QEMU is gone.
	Abort(ctx context.Context) ([]results.ReplicaNodeState, error)
	// Counters reads the replicas' states with their replication traffic so far.
	Counters(ctx context.Context) ([]results.ReplicaNodeState, error)
	// Describe is the result's section as it starts: kind, protocol, link, node names.
	Describe() results.MigrationReplication
}

// replicaTimeout bounds each role change and sample (a TCG node runs drbdsetup slowly).
const replicaTimeout = 30 * time.Second

// ReplicaDisk is a disk QEMU opens with its own NBD client at nbdURL (nbd://host:port/name),
// of size bytes: one host's replica, such as a DRBD node's export. It is not dialled here:
// the destination's replica is exported only once BeforeMigrate has promoted it.
func ReplicaDisk(nbdURL string, size int64, access string) (*Disk, error) {
	u, err := url.Parse(nbdURL)
	if err != nil || u.Scheme != "nbd" || u.Host == "" {
		return nil, fmt.Errorf("replica disk %q: want nbd://host:port/export", nbdURL)
	}
	if size <= 0 {
		return nil, errors.New("replica disk: size must be positive")
	}
	return &Disk{Drive: hv.Disk{File: nbdURL, Format: "raw", Direct: true}, Access: access,
		URL: nbdURL, Scheme: "nbd", Size: size, server: serverAddr(u)}, nil
}

// replicaDestination starts the destination for a replicated disk, right before the
// migration (the destination QEMU opens its replica at once, which must be writable by
// then: the replicas are dual-primary only while migrating), and returns the migration
// URI. Without Config.Replica (or without a migration) it returns uri as it is.
func (s *scenario) replicaDestination(ctx context.Context, mig *results.Migration, accel string, uri string) (string, error) {
	cfg := s.cfg
	if cfg.Replica == nil || cfg.Mode == ModeNone {
		return uri, nil
	}
	port, err := testbed.FreePort()
	if err != nil {
		return "", err
	}
	listen := testbed.Addr(port)
	if err := s.replicaPrepare(ctx, mig); err != nil {
		return "", err
	}
	if err := s.prepareMigration(ctx, accel, listen); err != nil {
		return "", err
	}
	if cfg.Link == nil {
		return listen, nil
	}
	via, err := s.startLink(linkRAM, cfg.Link, listen)
	if err != nil {
		return "", err
	}
	cfg.Logf("migration goes through the emulated link %s", cfg.Link)
	return via, nil
}

// replicaPrepare, before the destination QEMU starts, puts the destination on its own
// replica and makes that writable.
func (s *scenario) replicaPrepare(ctx context.Context, mig *results.Migration) error {
	cfg := s.cfg
	if cfg.DestDisk == nil {
		return errors.New("migrate: a replicated disk needs the destination's replica (Config.DestDisk)")
	}
	if cfg.Storage != StorageShared || cfg.StorageLink != nil {
		return fmt.Errorf("migrate: the disk is replicated on both hosts: it does not move (--storage %s) and no storage link applies (the replication link does)", cfg.Storage)
	}
	s.replicaSection(mig)
	s.dstDrive = cfg.DestDisk.Drive
	mig.DestinationDisk, mig.DestinationAccess = redactDrive(cfg.DestDisk.Drive.File), cfg.DestDisk.Access
	s.cleanup(func() error {
		// The run ends without a switchover (a failed migration, an error, mode none): back
		// to the source's replica alone, once the destination QEMU is stopped.
		if !s.replicaSwitched.Load() && s.replicaPromoted {
			return s.replicaStep(context.Background(), mig, "abort", cfg.Replica.Abort)
		}
		return nil
	})
	s.replicaPromoted = true
	return s.replicaStep(ctx, mig, "dual-primary", cfg.Replica.BeforeMigrate)
}

// replicaSection starts the result's replication section (once).
func (s *scenario) replicaSection(mig *results.Migration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mig.Replication == nil {
		rep := s.cfg.Replica.Describe()
		mig.Replication = &rep
	}
}

// replicaStep runs one role change and records it.
func (s *scenario) replicaStep(ctx context.Context, mig *results.Migration, name string, f func(context.Context) ([]results.ReplicaNodeState, error)) error {
	// DRBD's counters may restart when a role change renegotiates the connection: samples
	// right before and after it keep the traffic counted (MigrationReplication.Summarise).
	s.replicaSample(ctx, mig, "before "+name)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	nodes, err := f(ctx)
	defer s.replicaSample(ctx, mig, "after "+name)
	step := results.ReplicaStep{Name: name, TNS: s.sinceT0(start), DurationNS: int64(time.Since(start)), Nodes: nodes}
	if err != nil {
		step.Error = err.Error()
		err = fmt.Errorf("migrate: replicated disk, %s: %w", name, err)
	}
	s.mu.Lock()
	mig.Replication.Steps = append(mig.Replication.Steps, step)
	if err != nil && mig.Replication.Error == "" {
		mig.Replication.Error = err.Error()
	}
	s.mu.Unlock()
	s.cfg.Logf("replicated disk: %s in %s", name, time.Since(start).Round(time.Millisecond))
	return err
}

// replicaSample records the replicas' counters at a point of the run (no-op without a
// replica); a failed read is recorded, not fatal.
func (s *scenario) replicaSample(ctx context.Context, mig *results.Migration, point string) {
	if s.cfg.Replica == nil {
		return
	}
	s.replicaSection(mig)
	at := time.Now()
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	nodes, err := s.cfg.Replica.Counters(ctx)
	if err != nil && len(nodes) == 0 {
		nodes = []results.ReplicaNodeState{{Error: err.Error()}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mig.Replication.Samples = append(mig.Replication.Samples, results.ReplicaSample{Point: point, TNS: s.sinceT0(at), Nodes: nodes})
	mig.Replication.Summarise()
}

// migrateReplicated is migrate with the replicas' counters read when the migration starts
// and ends.
func (s *scenario) migrateReplicated(ctx context.Context, mig *results.Migration, uri string) error {
	s.replicaSample(ctx, mig, "migration start")
	err := s.migrate(ctx, mig, uri)
	if err == nil {
		s.replicaSample(ctx, mig, "migration end")
	}
	return err
}

// replicaSwitchover runs once the destination runs the guest and the source QEMU is stopped:
// the source's replica gives up its role.
func (s *scenario) replicaSwitchover(ctx context.Context, mig *results.Migration) error {
	if s.cfg.Replica == nil || !s.replicaPromoted {
		return nil
	}
	s.replicaSwitched.Store(true)
	return s.replicaStep(ctx, mig, "switchover", s.cfg.Replica.AfterSwitchover)
}

func (s *scenario) sinceT0(at time.Time) int64 {
	if s.t0.IsZero() {
		return 0
	}
	return int64(at.Sub(s.t0))
}
