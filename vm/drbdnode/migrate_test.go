package drbdnode

import (
	"context"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// TestMigrateDualPrimary live-migrates a guest whose disk is the shared pair, as the
// published dual-primary scenario: the source QEMU on node A's export, the destination on
// node B's, B promoted for the migration, A demoted after it. The data reads back whole on
// the destination, the roles after are B Primary, A Secondary, two-primaries off, the
// replication traffic is counted per period, and the pair is handed back with A Primary.
func TestMigrateDualPrimary(t *testing.T) {
	needNBD(t)
	p := sharedPair(t)
	img := vmtest.Image(t)
	rep, ok, err := ReplicaFromURL(endpoint(t, p, "drbd-c"))
	if !ok || err != nil {
		t.Fatalf("endpoint not a pair: %v", err)
	}
	const size = 8 << 20 // the guest's verify pass and read-back read it at TCG speed
	var disks [2]*migrate.Disk
	for i := range disks {
		if disks[i], err = migrate.ReplicaDisk(rep.ExportURL(i), size, "nbd (QEMU)"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	defer func() {
		if err := rep.Restore(context.Background()); err != nil {
			t.Error(err)
		}
		a := call(t, p.Nodes[0].Control, drbdstate.Request{Op: "state"}).State
		if a.Role != "Primary" || a.PeerRole != "Secondary" || a.Connection != "Connected" {
			t.Errorf("pair not handed back: node a %+v", a)
		}
	}()
	res, err := migrate.Run(ctx, migrate.Config{
		Image: img, Accel: "tcg", Disk: disks[0], DestDisk: disks[1], Replica: rep,
		Workload: workloads.Workload{RW: "randwrite", BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}, IODepth: 4},
		At:       time.Second, After: time.Second, Deadline: time.Minute, Logf: t.Logf,
	})
	if err != nil {
		t.Fatalf("migration on the pair: %v", err)
	}
	m := res.Migration
	if m.Outcome != migrate.OutcomeCompleted {
		t.Fatalf("outcome %s: %s; notes %v", m.Outcome, m.Failure, m.Notes)
	}
	if in := m.Integrity; in == nil || in.Where != "destination" || in.ReadBack == nil || in.ReadBack.Checked == 0 || in.ReadBack.Mismatches != 0 {
		t.Errorf("integrity on the destination: %+v", in)
	}
	r := m.Replication
	if r == nil || r.Error != "" || len(r.Steps) != 2 || r.Steps[0].Name != "dual-primary" || r.Steps[1].Name != "switchover" {
		t.Fatalf("replication section: %+v", r)
	}
	for _, n := range r.Steps[0].Nodes {
		if n.Role != "Primary" || n.TwoPrimaries == nil || !*n.TwoPrimaries {
			t.Errorf("while migrating, node %s: %+v (want Primary, two-primaries on)", n.Node, n)
		}
	}
	for i, want := range []string{"Secondary", "Primary"} {
		if n := r.Steps[1].Nodes[i]; n.Role != want || n.TwoPrimaries == nil || *n.TwoPrimaries || n.Connection != "Connected" {
			t.Errorf("after the switchover, node %s: %+v (want %s, two-primaries off)", n.Node, n, want)
		}
	}
	if r.BeforeB <= 0 || r.DuringB <= 0 || r.AfterB <= 0 {
		t.Errorf("replication bytes before %d, during %d, after %d: the guest wrote in each period", r.BeforeB, r.DuringB, r.AfterB)
		for _, sm := range r.Samples {
			t.Logf("sample %-22s t=%v %+v", sm.Point, time.Duration(sm.TNS), sm.Nodes)
		}
	}
	if res.Run.Target.Info["security"] != "protocol C" || m.DestinationDisk != rep.ExportURL(1) {
		t.Errorf("target info %v, destination disk %q", res.Run.Target.Info, m.DestinationDisk)
	}
	t.Logf("dual-primary migration: %s, downtime %.0f ms, stall %.0f ms; replication before %d, during %d, after %d bytes; RAM stream %d bytes (links %+v); steps %s %v, %s %v",
		m.Outcome, m.QEMUDowntimeMS, m.LongestStallMS, r.BeforeB, r.DuringB, r.AfterB, m.TransferredB, m.Traffic,
		r.Steps[0].Name, time.Duration(r.Steps[0].DurationNS).Round(time.Millisecond), r.Steps[1].Name, time.Duration(r.Steps[1].DurationNS).Round(time.Millisecond))
}
