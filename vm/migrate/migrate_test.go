package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/file"
	_ "github.com/vmstorbench/vmstorbench/backends/nfs"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// testWorkload writes and reads 4 KiB blocks at random with a few I/Os in flight: it dirties
// the disk (so the integrity check has something to check) and keeps the guest busy.
func testWorkload() workloads.Workload {
	return workloads.Workload{Name: "mig-test", RW: workloads.RandMixed, RWMixRead: 50, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}, IODepth: 4}
}

func runScenario(t testing.TB, mutate func(*migrate.Config)) *migrate.Result {
	t.Helper()
	return runOn(t, "file://"+t.TempDir(), migrate.DiskOptions{}, mutate)
}

// runOn runs a scenario with the guest's disk on target.
func runOn(t testing.TB, target string, do migrate.DiskOptions, mutate func(*migrate.Config)) *migrate.Result {
	t.Helper()
	img := vmtest.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if do.Size == 0 {
		// Small: the guest's verify pass and the read-back each read the region under TCG
		// (about 2000 blocks a second), yet the workload still rewrites most blocks.
		do.Size = 8 << 20
	}
	disk, err := migrate.OpenDisk(ctx, target, do)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := disk.Close(); err != nil {
			t.Error(err)
		}
	}()
	cfg := migrate.Config{
		Image: img, Accel: "tcg", Disk: disk, Workload: testWorkload(),
		At: time.Second, After: time.Second, Deadline: 30 * time.Second,
		Logf: t.Logf,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	start := time.Now()
	res, err := migrate.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("migration run: %v", err)
	}
	m := res.Migration
	t.Logf("%s on %s: %s in %s; qemu downtime %.0f ms, pause %.1f ms, longest stall %.1f ms, total %.0f ms, %d completions, boot %s; before %.0f IOPS, during %.0f, after %.0f",
		m.Mode, m.Access, m.Outcome, time.Since(start).Round(time.Millisecond), m.QEMUDowntimeMS, m.PauseMS, m.LongestStallMS, m.TotalTimeMS, m.Completions,
		time.Duration(m.BootNS).Round(time.Millisecond), iops(m.Before), iops(m.During), iops(m.After))
	if path := os.Getenv("VMSTORBENCH_DUMP"); path != "" {
		// Keep the whole measurement for a look by hand.
		b, _ := json.MarshalIndent(res, "", " ")
		_ = os.WriteFile(path+"."+t.Name()+".json", b, 0o644)
	}
	return res
}

func iops(p *results.MigrationPhase) float64 {
	if p == nil {
		return 0
	}
	return p.IOPS
}

// checkClean asserts what every completed migration must show: the guest kept doing I/O on
// the destination and the read-back found every block intact.
func checkClean(t *testing.T, res *migrate.Result) {
	t.Helper()
	m := res.Migration
	if m.Outcome != migrate.OutcomeCompleted {
		t.Fatalf("outcome %s, notes %v", m.Outcome, m.Notes)
	}
	if m.After == nil || m.After.IOs == 0 {
		t.Fatalf("no I/O after the migration: %+v", m.After)
	}
	if m.Before == nil || m.Before.IOs == 0 {
		t.Fatalf("no I/O before the migration: %+v", m.Before)
	}
	in := m.Integrity
	if in == nil || in.Where != "destination" || in.ReadBack == nil {
		t.Fatalf("no read-back on the destination: %+v", in)
	}
	if in.ReadBack.Checked == 0 || in.ReadBack.Mismatches != 0 {
		t.Fatalf("read-back: %d blocks checked, %d mismatches %+v", in.ReadBack.Checked, in.ReadBack.Mismatches, in.ReadBack.First)
	}
	// The host's stop ends the workload gracefully: the engine's own verify pass ran on the
	// destination.
	if in.Workload == nil || in.Workload.Checked == 0 || in.Workload.Mismatches != 0 {
		t.Fatalf("workload verify pass: %+v", in.Workload)
	}
	if !res.Run.Complete {
		t.Fatalf("run not complete: %s", res.Run.Error)
	}
	if len(m.Samples) == 0 || len(m.Windows) == 0 {
		t.Fatalf("no samples (%d) or windows (%d)", len(m.Samples), len(m.Windows))
	}
}

func TestIntegrationPrecopy(t *testing.T) {
	res := runScenario(t, nil)
	checkClean(t, res)
	if res.Migration.QEMUDowntimeMS <= 0 {
		t.Errorf("QEMU reported no downtime")
	}
}

func TestIntegrationPostcopy(t *testing.T) {
	res := runScenario(t, func(c *migrate.Config) { c.Mode = migrate.ModePostcopy })
	checkClean(t, res)
	m := res.Migration
	if m.SwitchoverNS == 0 {
		t.Fatal("post-copy was never started")
	}
	sawPostcopy := false
	for _, s := range m.Samples {
		if s.Status == "postcopy-active" {
			sawPostcopy = true
		}
	}
	if !sawPostcopy && m.TotalTimeMS > 200 {
		t.Errorf("no postcopy-active sample in a %.0f ms migration", m.TotalTimeMS)
	}
}

// TestIntegrationStopcopy stops the guest, migrates it over an emulated link and continues
// it on the destination: only once the destination has loaded what the link still carries
// when the source reports "completed" (a "cont" before that is lost).
func TestIntegrationStopcopy(t *testing.T) {
	res := runScenario(t, func(c *migrate.Config) {
		c.Mode = migrate.ModeStopcopy
		c.Link = &linkemu.Link{Name: "test-link", Latency: 5 * time.Millisecond, Bandwidth: 50_000_000}
	})
	checkClean(t, res)
	m := res.Migration
	// The guest is stopped for the whole transfer: the pause covers the migration.
	if m.PauseMS < m.TotalTimeMS/2 {
		t.Errorf("stop-and-copy pause %.1f ms is shorter than half the migration's %.0f ms", m.PauseMS, m.TotalTimeMS)
	}
	if m.During != nil && m.During.IOs > m.During.IOs/2 && m.LongestStallMS < m.PauseMS/2 {
		t.Errorf("longest stall %.1f ms, pause %.1f ms: the stall should cover the pause", m.LongestStallMS, m.PauseMS)
	}
}

func TestIntegrationTLSVerifyPeer(t *testing.T) {
	res := runScenario(t, func(c *migrate.Config) { c.Security = migrate.SecurityTLSVerify })
	checkClean(t, res)
	if res.Migration.Security != migrate.SecurityTLSVerify {
		t.Fatalf("security %q", res.Migration.Security)
	}
}

func TestIntegrationTLS(t *testing.T) {
	res := runScenario(t, func(c *migrate.Config) { c.Security = migrate.SecurityTLS; c.CheckMemory = true })
	checkClean(t, res)
	mc := res.Migration.Memory
	if mc == nil || mc.Pages == 0 {
		t.Fatalf("memory not compared: %+v", mc)
	}
	// Pre-copy under TCG left stale pages until the guest's RAM size stopped being a
	// multiple of 256 KiB (qemu.Config.RAMBytes): any differing page is a regression.
	if mc.DifferingPages != 0 {
		t.Errorf("memory check: %d of %d pages differ between source and destination, first at %#x", mc.DifferingPages, mc.Pages, mc.FirstAddresses)
	}
}

// TestIntegrationDeadlineCancel throttles the migration so that it cannot finish before its
// deadline: it must be cancelled, and the guest must keep running (and check clean) on the
// source.
func TestIntegrationDeadlineCancel(t *testing.T) {
	res := runScenario(t, func(c *migrate.Config) {
		c.MaxBandwidth = 1 << 20 // 1 MiB/s: 256 MiB of guest RAM cannot move in 2 s
		c.Deadline = 2 * time.Second
	})
	m := res.Migration
	if m.Outcome != migrate.OutcomeCancelled {
		t.Fatalf("outcome %s, want cancelled; notes %v", m.Outcome, m.Notes)
	}
	if in := m.Integrity; in == nil || in.Where != "source" || in.ReadBack == nil || in.ReadBack.Mismatches != 0 || in.ReadBack.Checked == 0 ||
		in.Workload == nil || in.Workload.Mismatches != 0 || in.Workload.Checked == 0 {
		t.Fatalf("integrity on the source: %+v", m.Integrity)
	}
	if m.After == nil || m.After.IOs == 0 {
		t.Fatal("the guest did no I/O on the source after the cancelled migration")
	}
	if got := m.EndNS - m.StartNS; got < int64(2*time.Second) || got > int64(6*time.Second) {
		t.Errorf("migration lasted %s, deadline 2s", time.Duration(got))
	}
}

// TestIntegrationInterruptedKeepsPartial cancels a run as its migration starts (Ctrl-C does
// the same): the run must end with the context's error and a result that keeps what was
// measured, marked incomplete.
func TestIntegrationInterruptedKeepsPartial(t *testing.T) {
	img := vmtest.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	disk, err := migrate.OpenDisk(ctx, "file://"+t.TempDir(), migrate.DiskOptions{Size: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	runCtx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	start := time.Now()
	res, err := migrate.Run(runCtx, migrate.Config{
		Image: img, Accel: "tcg", Disk: disk, Workload: testWorkload(),
		At: time.Second, After: time.Second, Deadline: 30 * time.Second, Logf: t.Logf,
		Progress: func(st migrate.Status) {
			if st.Phase == "migrating" {
				interrupt()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("the interrupted run took %s to end", took)
	}
	if res == nil || res.Run == nil || res.Migration == nil {
		t.Fatal("no partial result")
	}
	m := res.Migration
	if res.Run.Complete || res.Run.Error == "" {
		t.Errorf("partial result not marked incomplete: complete %v, error %q", res.Run.Complete, res.Run.Error)
	}
	if m.Completions == 0 || m.Before == nil || m.Before.IOs == 0 || m.StartNS == 0 {
		t.Errorf("the I/O before the interruption was not kept: %d completions, before %+v, start %d", m.Completions, m.Before, m.StartNS)
	}
}

// TestIntegrationPrecopyNBDExport serves the disk to both QEMUs through vmstorbench's own NBD
// export of the file backend, the path SMB takes.
func TestIntegrationPrecopyNBDExport(t *testing.T) {
	res := runOn(t, "file://"+t.TempDir(), migrate.DiskOptions{Access: migrate.AccessNBD}, nil)
	checkClean(t, res)
	if res.Migration.Access != "nbd-export (file)" {
		t.Fatalf("access %q", res.Migration.Access)
	}
}

// TestIntegrationPrecopyNFS puts the disk on NFS-Ganesha, reached by QEMU's libnfs driver.
func TestIntegrationPrecopyNFS(t *testing.T) {
	srv := testbed.NewGanesha()
	eps := startServer(t, srv)
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = path.Dir(u.Path) // the export directory: the disk is a scratch image in it
	res := runOn(t, u.String(), migrate.DiskOptions{}, nil)
	checkClean(t, res)
	if res.Migration.Access != "nfs (QEMU libnfs)" {
		t.Fatalf("access %q", res.Migration.Access)
	}
	left, _ := filepath.Glob(filepath.Join(srv.ExportDir(), "*"))
	if len(left) != 0 {
		t.Errorf("scratch image left on the export: %v", left)
	}
}

// TestIntegrationPrecopyISCSI puts the disk on a tgt LUN, reached by QEMU's libiscsi
// driver, logging in with CHAP (the secret reaches QEMU in a file, not on its command line).
func TestIntegrationPrecopyISCSI(t *testing.T) {
	eps := startServer(t, testbed.NewTgt())
	var chap testbed.Endpoint
	for _, e := range eps {
		if e.Security == "chap" {
			chap = e
		}
	}
	for k, v := range chap.Env {
		t.Setenv(k, v)
	}
	res := runOn(t, chap.URL, migrate.DiskOptions{AllowDestructive: true}, nil)
	checkClean(t, res)
	if res.Migration.Access != "iscsi (QEMU libiscsi)" {
		t.Fatalf("access %q", res.Migration.Access)
	}
}

// startServer starts a testbed server for the test, or skips (fails in CI) when it cannot
// run here.
func startServer(t *testing.T, srv testbed.Server) []testbed.Endpoint {
	t.Helper()
	vmtest.RequireQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eps, err := srv.Start(ctx, t.TempDir())
	if err != nil {
		if errors.Is(err, testbed.ErrMissingBinary) || os.Geteuid() != 0 {
			vmtest.Missing(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return eps
}

// TestIntegrationLinksAndOutside migrates through an emulated link, reaches the disk (over
// the NBD export) through another one, and has the host run the workload against the same
// backend at the same time.
func TestIntegrationLinksAndOutside(t *testing.T) {
	outside := t.TempDir()
	res := runOn(t, "file://"+t.TempDir(), migrate.DiskOptions{Access: migrate.AccessNBD}, func(c *migrate.Config) {
		c.Link = &linkemu.Link{Name: "test-wan", Latency: 5 * time.Millisecond, Jitter: time.Millisecond, Bandwidth: 200_000_000}
		c.StorageLink = &linkemu.Link{Name: "test-lan", Latency: time.Millisecond}
		c.OutsideTarget = "file://" + outside
		// The source says "completed" while the link still carries the last bytes: the
		// memory check must wait for the destination to load them.
		c.CheckMemory = true
		// Over the NBD export and the storage link the guest's I/O takes a while to come
		// back after the switch-over (seconds on a busy host): leave it time.
		c.After = 4 * time.Second
	})
	checkClean(t, res)
	m := res.Migration
	if m.Link == nil || m.Link.LatencyNS != int64(5*time.Millisecond) || m.StorageLink == nil {
		t.Fatalf("links not recorded: %+v %+v", m.Link, m.StorageLink)
	}
	if m.Outside == nil || m.Outside.Write == nil || m.Outside.Write.IOs == 0 || !m.Outside.Complete {
		t.Fatalf("outside run: %+v", m.Outside)
	}
	if mc := m.Memory; mc == nil || mc.Pages == 0 || mc.DifferingPages != 0 {
		t.Errorf("memory check through the emulated link: %+v", mc)
	}
	// The storage link's millisecond each way is felt by every guest I/O.
	if m.Before.LatMeanNS < float64(2*time.Millisecond) {
		t.Errorf("mean guest latency %.0f ns through a 1 ms (each way) storage link", m.Before.LatMeanNS)
	}
	t.Logf("outside: %.0f write IOPS on the host while the guest did %.0f IOPS", m.Outside.Write.IOPS, m.Before.IOPS)
}
