package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	hvqemu "github.com/vmstorbench/vmstorbench/vm/hv/qemu"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// GuestDisk is the guest's view of its disk, the agent's target.
const GuestDisk = "file:///dev/vda"

// Task IDs the scenario gives the agent.
const (
	taskWorkload = 1
	taskReadBack = 2
)

// Timeouts of the scenario's waits. TCG on a busy host is slow: these are generous, but
// bounded, so a guest that crashed ends the run with an error instead of hanging it.
const (
	tcgBootTimeout      = 90 * time.Second
	firstIOTimeout      = 60 * time.Second
	resultTimeout       = 30 * time.Second
	readBackTimeout     = 10 * time.Minute
	queryMigrateEvery   = 50 * time.Millisecond
	queryMigrateTimeout = 10 * time.Second
)

// Result is a migration run: the result document, whose Migration section is filled.
type Result struct {
	Run       *results.Run
	Migration *results.Migration
}

type side struct {
	name  string
	guest hv.Guest
	// vm is the guest's QEMU when the driver is QEMU's (hvqemu.QEMUGuest), nil otherwise:
	// the block-job storage methods talk QMP to it, and Run refuses them for drivers
	// without hv.CapBlockJobs.
	vm   *qemu.VM
	conn *agent.Conn
	// stopping is set before vmstorbench ends this QEMU itself, so that its exit is not
	// taken for a fault.
	stopping atomic.Bool
}

// newSide wraps a guest the driver started.
func newSide(name string, g hv.Guest) *side {
	sd := &side{name: name, guest: g}
	if q, ok := g.(hvqemu.QEMUGuest); ok {
		sd.vm = q.VM()
	}
	return sd
}

// console is the tail of the side's serial console, for error messages.
func (sd *side) console() string { return sd.guest.ConsoleTail(2000) }

// pid is the side's hypervisor process on this host, 0 when the driver does not say.
func (sd *side) pid() int {
	if p, ok := sd.guest.(hv.Processes); ok {
		return p.PID()
	}
	return 0
}

func (sd *side) stop() error { return sd.stopWith(false) }

// stopWith stops the side's QEMU; hurry skips the polite "quit" over QMP, for a QEMU a fault
// may have left unable to answer (it would cost the full QMP and grace timeouts).
func (sd *side) stopWith(hurry bool) error {
	if sd == nil {
		return nil
	}
	var errs []error
	if sd.conn != nil {
		_ = sd.conn.Close()
		sd.conn = nil
	}
	if sd.guest != nil {
		sd.stopping.Store(true)
		stop := sd.guest.Stop
		if hurry {
			stop = func() error { return sd.guest.Kill(time.Second) }
		}
		if err := stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s QEMU (pid %d): %w", sd.name, sd.pid(), err))
		}
		sd.guest, sd.vm = nil, nil
	}
	return errors.Join(errs...)
}

// check adds QEMU's own last words to err when QEMU has exited (a broken QMP connection
// says nothing about why).
func (sd *side) check(err error) error {
	if err == nil || sd == nil || sd.guest == nil {
		return err
	}
	for i := 0; i < 25 && !sd.guest.Exited(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if sd.guest.Exited() {
		return fmt.Errorf("%w; the %s QEMU exited: %s; console: %s", err, sd.name, sd.guest.Log(), lastLine(sd.console()))
	}
	return err
}

type scenario struct {
	cfg *Config
	dir string
	// drv runs the guests; qemuVer is its version (the KVM probe's key, the result's).
	drv     hv.Driver
	qemuVer string
	t0      time.Time

	msgs    chan agent.Message
	hellos  chan agent.Message
	results chan agent.Message
	coll    *collector

	src, dst *side
	// hostOnly is set when the guest has no agent channel (an existing libvirt domain):
	// only the host side is measured, the hypervisor's figures and the outside workload.
	hostOnly bool
	// migration is the migration the driver prepared (nil before).
	migration hv.Migration
	// tls are the migration's credentials (TLS security levels).
	tls *hv.TLSFiles
	// drive is the disk as both QEMUs open it (through the storage link, if any).
	drive hv.Disk
	// workload is what the guest runs.
	workload workloads.Workload

	// dstDrive is the destination's disk: the same as drive on shared storage.
	dstDrive hv.Disk
	// The disk's move (storage.go, mirror.go): the destination image, the length copied,
	// where the mirror and the copy sender connect (through the disk link), and how far
	// the move got.
	dst0         *Disk
	imageLen     int64
	mirrorTarget string
	// mirrorExport is the qemu-nbd serving the destination image to the mirror (nil when the
	// destination QEMU exports it: see startMirrorExport).
	mirrorExport *testbed.Process
	// mirrorExportStopping is set before vmstorbench stops it (not a fault then).
	mirrorExportStopping atomic.Bool
	copyAddr             string
	srcStopped           bool
	switchedDisk         bool
	mirrorStarted        bool
	mirrorDone           bool
	jobErrorNoted        bool
	jobEvents            chan jobEvent
	// switchover hears the source's MIGRATION pre-switchover event, so that the disk's
	// last step starts at once rather than at the next query-migrate poll.
	switchover chan struct{}
	// closePullExport closes the source's export for the pull (once).
	closePullExport func() error
	// A replicated disk's role changes (replica.go): the destination's replica promoted,
	// the switchover done (read by the storage probe too).
	replicaPromoted bool
	replicaSwitched atomic.Bool
	cpu             *cpuMeter

	mu          sync.Mutex
	links       []countedLink
	cleanups    []func() error
	events      []timedEvent
	notes       []string
	connEnded   map[string]error
	guestPhase  string
	lastPercent float64

	// Fault evidence (fault.go): started is the run's start, faults what was seen,
	// guestOn the side running the guest, cancelFault ends the run's context with the
	// attributed cause.
	started time.Time
	faults  []fault
	// checkPauses are the times vmstorbench held the guest paused for its own checks,
	// left out of the workload's stall.
	checkPauses []span
	guestOn     string
	cancelFault context.CancelCauseFunc
}

type timedEvent struct {
	at     time.Time
	side   string
	name   string
	detail string
}

// Run runs one migration scenario. It returns the result (also when the migration failed or
// was cancelled, with the outcome saying so) and an error when the run could not measure
// what it set out to. Every QEMU process it starts is stopped before it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	drv := cfg.Driver
	if drv == nil {
		var err error
		if drv, err = hvqemu.New(cfg.QEMU, guest.Firmware()); err != nil {
			return nil, err
		}
	}
	if err := cfg.supportedBy(drv); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vsb-mig-")
	if err != nil {
		return nil, fmt.Errorf("migrate: work directory: %w", err)
	}
	s := &scenario{
		cfg: &cfg, dir: dir, drv: drv, qemuVer: drv.Version(),
		msgs: make(chan agent.Message, 4096), hellos: make(chan agent.Message, 8), results: make(chan agent.Message, 8),
		coll: newCollector(taskWorkload), connEnded: map[string]error{}, jobEvents: make(chan jobEvent, 64), switchover: make(chan struct{}, 1),
		started: time.Now(), guestOn: "source",
	}
	// The scenario runs under a context that a fault ends (fault.go): a storage server gone
	// or the guest's QEMU exiting stops every wait at once, with the cause.
	fctx, cancelFault := context.WithCancelCause(ctx)
	defer cancelFault(nil)
	s.cancelFault = cancelFault
	pumpCtx, stopPump := context.WithCancel(context.Background())
	pumpDone := make(chan struct{})
	go func() { defer close(pumpDone); s.pump(pumpCtx) }()
	if exp := cfg.Disk.export; exp != nil {
		exp.OnError(func(err error) {
			s.addFault(fault{at: time.Now(), component: compStorage, subject: cfg.Disk.URL, what: "NBD export's backend failed", reason: err.Error()})
		})
		defer exp.OnError(nil)
	}
	if cfg.Disk.server != "" {
		go s.probeStorage(pumpCtx, cfg.Disk.server, 250*time.Millisecond)
	}
	defer func() {
		// Stop both QEMUs first (by PID, both at once: a QEMU stuck on a dead server takes
		// its full grace period), then the pump, then remove sockets and files.
		var wg sync.WaitGroup
		hurry := s.storageFailed()
		for _, sd := range []*side{s.src, s.dst} {
			wg.Add(1)
			go func() { defer wg.Done(); _ = sd.stopWith(hurry) }()
		}
		wg.Wait()
		// Then what served them: links, the copy receiver, the destination image.
		if err := s.runCleanups(); err != nil {
			cfg.Logf("cleaning up: %v", err)
		}
		stopPump()
		<-pumpDone
		os.RemoveAll(dir)
	}()
	res, err := s.run(fctx)
	if err != nil && ctx.Err() == nil {
		// The first error line names what failed, from the evidence (fault.go).
		err = withCause(err, s.cause())
	}
	if res != nil && res.Migration != nil && res.Migration.Failure == "" && (err != nil || res.Migration.Outcome == OutcomeFailed) {
		res.Migration.Failure = s.cause()
	}
	if res != nil && res.Run != nil {
		if err != nil && res.Run.Error == "" {
			res.Run.Error = err.Error()
			res.Run.Complete = false
		}
	}
	return res, err
}

func (s *scenario) run(ctx context.Context) (*Result, error) {
	cfg := s.cfg
	mig := &results.Migration{
		Mode: cfg.Mode, Outcome: OutcomeFailed, QEMU: s.qemuVer, Hypervisor: s.drv.Name(),
		GuestMemoryB: int64(cfg.MemoryMiB) << 20, GuestCPUs: cfg.CPUs,
		Access: cfg.Disk.Access, DiskURL: redactDrive(cfg.Disk.Drive.File), Security: cfg.Security,
		WindowNS: int64(cfg.Window),
		Params: results.MigrationParams{
			MaxBandwidthBps: cfg.MaxBandwidth, DowntimeLimitMS: cfg.DowntimeLimit.Milliseconds(),
			DeadlineNS: int64(cfg.Deadline), AtNS: int64(cfg.At), AfterNS: int64(cfg.After),
			PostcopyAfterNS: int64(cfg.PostcopyAfter), PostcopyIterations: cfg.PostcopyIterations,
		},
	}
	if cfg.Mode != ModePostcopy {
		mig.Params.PostcopyAfterNS, mig.Params.PostcopyIterations = 0, 0
	}
	if l := cfg.Link; l != nil {
		mig.Link = &results.MigrationLink{Preset: l.Name, LatencyNS: int64(l.Latency), JitterNS: int64(l.Jitter), BandwidthBps: l.Bandwidth}
	}
	w, wnote, err := cfg.guestWorkload(cfg.Disk.Size)
	if err != nil {
		return nil, fmt.Errorf("migrate: workload: %w", err)
	}
	if wnote != "" {
		s.note(wnote)
	}
	s.workload = w

	// TLS credentials for both sides.
	if cfg.Security != SecurityNone {
		creds, err := writeTLSCreds(s.dir)
		if err != nil {
			return nil, err
		}
		s.tls = &hv.TLSFiles{ServerDir: creds.ServerDir, ClientDir: creds.ClientDir}
	}

	// The disk, through the emulated storage link if asked.
	s.drive = cfg.Disk.Drive
	if l := cfg.StorageLink; l != nil {
		drive, err := cfg.Disk.throughLink(func(upstream string) (string, error) {
			return s.startLink(linkStorage, l, upstream)
		})
		if err != nil {
			return nil, fmt.Errorf("migrate: --storage-link: %w", err)
		}
		s.drive = drive
		mig.StorageLink = &results.MigrationLink{Preset: l.Name, LatencyNS: int64(l.Latency), JitterNS: int64(l.Jitter), BandwidthBps: l.Bandwidth}
		cfg.Logf("the disk is reached through the emulated link %s", l)
	}
	// Where the disk goes, when it moves: checked before anything boots.
	if err := s.prepareStorage(ctx, mig); err != nil {
		return nil, err
	}

	// Source: boot and wait for the agent.
	s.progress("booting", -1, "")
	bootStart := time.Now()
	accel, accelNote, hello, err := s.bootSource(ctx)
	if err != nil {
		return nil, err
	}
	mig.Accel, mig.AccelNote = accel, accelNote
	mig.GuestMemoryB = s.src.guest.RAMBytes()
	mig.BootNS = int64(hello.At.Sub(bootStart))
	mig.GuestKernel = hello.Hello.Kernel
	if s.hostOnly {
		s.note(HostOnlyNote)
	} else {
		cfg.Logf("source booted with %s in %s (guest uptime %s: agent code from %s, modules %s)", accel, hello.At.Sub(bootStart).Round(time.Millisecond),
			time.Duration(hello.Hello.UptimeNS).Round(time.Millisecond), time.Duration(hello.Hello.StartNS).Round(time.Millisecond),
			time.Duration(hello.Hello.ModulesNS).Round(time.Millisecond))
		if n := clockRunaway(time.Duration(hello.Hello.UptimeNS), hello.At.Sub(bootStart)); n != "" {
			s.note(n)
		}
	}

	// Destination: waiting for the incoming migration.
	uri := ""
	if cfg.Mode != ModeNone && cfg.Replica == nil { // a replicated disk's destination starts later (replica.go)
		port, err := testbed.FreePort()
		if err != nil {
			return nil, err
		}
		listen := testbed.Addr(port)
		if err := s.prepareMigration(ctx, accel, listen); err != nil {
			return nil, err
		}
		uri = listen
		// The RAM stream goes through the emulated link, or, when the disk moves too, a
		// relay that counts its bytes apart from the disk's.
		if cfg.Link != nil || cfg.Storage != StorageShared {
			via, err := s.startLink(linkRAM, cfg.Link, testbed.Addr(port))
			if err != nil {
				return nil, err
			}
			uri = via
			if cfg.Link != nil {
				cfg.Logf("migration goes through the emulated link %s", cfg.Link)
			}
		}
		if err := s.setupDiskTransfer(ctx); err != nil {
			return nil, err
		}
	}

	// The workload.
	s.t0 = time.Now()
	if !s.hostOnly {
		if err := s.src.conn.SendTask(agent.Task{ID: taskWorkload, Target: GuestDisk, Workload: w, Interval: time.Second, Stream: !cfg.NoStream, FlushEvery: cfg.FlushEvery,
			StallTimeout: guestClockTimeout, Grace: guestClockTimeout}); err != nil {
			return nil, err
		}
	}
	s.replicaSample(ctx, mig, "workload start")
	var outside chan outsideResult
	stopOutside := func() {}
	if cfg.OutsideTarget != "" {
		// Stopped gracefully with the guest's workload; cancelled if the scenario fails first.
		octx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := make(chan struct{})
		stopOutside = sync.OnceFunc(func() { close(stop) })
		outside = make(chan outsideResult, 1)
		go func() { outside <- s.runOutside(octx, stop, w) }()
	}
	s.progress("warming", -1, "")
	if !cfg.NoStream && !s.hostOnly {
		if err := s.waitFirstIO(ctx); err != nil {
			return nil, err
		}
	}
	// From here on the host has measured something: a run that ends early (a server gone,
	// QEMU failing, Ctrl-C) keeps the timeline and QEMU's figures, marked incomplete.
	partial := func(err error) (*Result, error) {
		var fe *FaultError
		if errors.As(context.Cause(ctx), &fe) {
			err = &FaultError{Cause: fe.Cause, Err: err}
		} else if ctx.Err() != nil {
			err = fmt.Errorf("run interrupted: %w", context.Cause(ctx))
		}
		s.note(fmt.Sprintf("the run ended early: %v (guest phase %q; %s)", err, s.phase(), s.coll.arrivals(s.t0)))
		if cfg.Mode != ModeNone && mig.StartNS == 0 {
			mig.Outcome = OutcomeNone // it ended before the migration began
		}
		return s.assemble(mig, &agent.Result{Task: taskWorkload, Error: err.Error()}, nil, int64(time.Since(s.t0))), err
	}
	if err := s.sleep(ctx, cfg.At, func() { s.progress("warming", -1, "") }); err != nil {
		return partial(err)
	}
	if uri, err = s.replicaDestination(ctx, mig, accel, uri); err != nil {
		return partial(err)
	}

	// The migration.
	if cfg.Mode == ModeNone && cfg.Storage == StorageMirror {
		mig.Outcome = OutcomeNone
		if err := s.moveDisk(ctx, mig); err != nil {
			s.abandon(mig)
			return partial(err)
		}
	} else if cfg.Mode == ModeNone {
		mig.Outcome = OutcomeNone
		mig.StartNS = int64(time.Since(s.t0))
		mig.EndNS = mig.StartNS
	} else if err := s.migrateReplicated(ctx, mig, uri); err != nil {
		s.abandon(mig)
		return partial(err)
	}
	guestSide := s.src
	mig.Integrity = &results.MigrationIntegrity{Where: "source"}
	mig.GuestOn = "source"
	if mig.Outcome == OutcomeCompleted {
		s.setGuestOn("destination")
		guestSide = s.dst
		mig.Integrity.Where = "destination"
		mig.GuestOn = "destination"
		// The source has nothing left to do: free its CPU for the rest of the run.
		_ = s.src.stop()
		if err := s.replicaSwitchover(ctx, mig); err != nil {
			s.note(err.Error())
		}
	} else if s.dst != nil {
		_ = s.dst.stop()
	}

	// After the migration, then stop the workload.
	if err := s.sleep(ctx, cfg.After, func() { s.progress("after", -1, "") }); err != nil {
		return partial(err)
	}
	if s.hostOnly {
		return s.endHostOnly(mig, stopOutside, outside), nil
	}
	stopAt := time.Now()
	err = guestSide.conn.StopTask(taskWorkload)
	stopOutside()
	var wres *agent.Result
	if err == nil {
		wres, err = s.waitResult(ctx, taskWorkload, resultTimeout, guestSide)
	}
	if err != nil {
		err = guestSide.check(err)
		// Keep what was measured: the host's timeline and QEMU's figures are all there.
		s.note(fmt.Sprintf("the guest on the %s did not end its workload: %v (guest phase %q; %s; %s)", guestSide.name, err, s.phase(), s.coll.arrivals(s.t0), diskActivity(ctx, guestSide)))
		if guestSide == s.dst {
			if first := guestBroken(s.dst.guest.ConsoleTail(64 << 10)); first != "" {
				s.note("the guest kernel broke on the destination after a completed migration (console: " + first + "); --check-memory compares guest RAM of both sides")
			}
		}
		endNS := int64(stopAt.Sub(s.t0))
		return s.assemble(mig, &agent.Result{Task: taskWorkload, Error: err.Error()}, nil, endNS), err
	}
	endNS := int64(stopAt.Sub(s.t0))
	s.replicaSample(ctx, mig, "end")
	if wres.Run != nil && wres.Run.Verify != nil {
		v := wres.Run.Verify
		cfg.Logf("workload stopped: result %s later, its verify pass checked %d blocks (%d mismatches)", time.Since(stopAt).Round(time.Millisecond), v.Checked, v.Mismatches)
	}
	if outside != nil {
		o := <-outside
		if o.err != nil {
			s.note("outside workload on " + backends.RedactString(cfg.OutsideTarget) + ": " + o.err.Error())
		}
		if o.run != nil {
			mig.Outside = o.run
			mig.OutsideStartNS = int64(o.run.Start.Sub(s.t0))
		}
	}

	// Read the region back and check every block, from where the guest now runs.
	var readBack *agent.Result
	if w.Verify != "" {
		s.progress("checking", -1, "reading the region back from the "+mig.Integrity.Where)
		check := workloads.Workload{
			Name: "read-back", RW: workloads.SeqRead, BS: w.BS, Size: w.Size, Offset: w.Offset,
			IODepth: 32, NumJobs: 1, Direct: true, Verify: w.Verify, RandSeed: w.RandSeed,
		}
		// A read-back that fails leaves the workload's figures intact; the run is incomplete.
		if err := guestSide.conn.SendTask(agent.Task{ID: taskReadBack, Target: GuestDisk, Workload: check, Interval: time.Second,
			StallTimeout: guestClockTimeout, Grace: guestClockTimeout}); err != nil {
			err = guestSide.check(err)
			s.note("read-back not started: " + err.Error())
			return s.assemble(mig, wres, nil, endNS), err
		}
		readStart := time.Now()
		if readBack, err = s.waitResult(ctx, taskReadBack, readBackTimeout, guestSide); err != nil {
			s.note("read-back did not finish: " + err.Error())
			return s.assemble(mig, wres, nil, endNS), err
		}
		cfg.Logf("read-back on the %s took %s", mig.Integrity.Where, time.Since(readStart).Round(time.Millisecond))
		if readBack.Error != "" {
			s.note("read-back check failed: " + readBack.Error)
		}
	} else {
		mig.Integrity.Note = wnote
	}
	_ = guestSide.conn.Quit()
	s.progress("done", -1, "")

	return s.assemble(mig, wres, readBack, endNS), nil
}

// HostOnlyNote is the note of a run whose guest has no agent.
const HostOnlyNote = "host side only: the guest has no " + guest.AgentPortName + " channel, so no workload ran inside it and nothing was read back; the hypervisor's migration figures and the outside workload (if any) are measured"

// endHostOnly ends a host-side-only run: the outside workload, then the document without
// the guest's I/O.
func (s *scenario) endHostOnly(mig *results.Migration, stopOutside func(), outside chan outsideResult) *Result {
	stopOutside()
	endNS := int64(time.Since(s.t0))
	if outside != nil {
		o := <-outside
		if o.err != nil {
			s.note("outside workload on " + backends.RedactString(s.cfg.OutsideTarget) + ": " + o.err.Error())
		}
		if o.run != nil {
			mig.Outside = o.run
			mig.OutsideStartNS = int64(o.run.Start.Sub(s.t0))
		}
	}
	mig.Integrity.Note = "not checked: " + HostOnlyNote
	s.progress("done", -1, "")
	return s.assemble(mig, &agent.Result{Task: taskWorkload}, nil, endNS)
}

// guestClockTimeout is the in-guest engine's stall timeout and grace for the migration's
// tasks: out of the way, because they run on the guest's clock. Under TCG on a loaded host
// that clock ran up to ~33 times faster than the host's (6m26s of guest uptime at 11.8 s of
// boot), so the engine's 60 s stall timeout and 10 s grace ended healthy runs after a second
// or two of slow storage ("no I/O completed for 1m0s", "I/O still in flight 10s after the run
// ended") right after stop-and-copy migrations over the emulated WAN. The host decides that
// I/O has stopped, on its own clock (hangTimeout of no disk I/O in QEMU's statistics), and
// bounds every task (resultTimeout, readBackTimeout).
const guestClockTimeout = 24 * time.Hour

// clockRunaway says when the guest's clock ran well ahead of the host's during the boot
// (guest uptime over 3 times the host's boot time; seen: 33 times, a guest booted on an
// overloaded host under TCG), "" otherwise. Such a guest's own timings, and its kernel's
// timers, are off: the figures here come from the host's clock, and a run that fails after
// it is likely that (see guestClockTimeout).
func clockRunaway(uptime, boot time.Duration) string {
	if boot <= 0 || uptime <= 3*boot {
		return ""
	}
	return fmt.Sprintf("the guest's clock ran %.0f times as fast as the host's while it booted (uptime %s after %s): TCG on an overloaded host; the figures use the host's clock",
		float64(uptime)/float64(boot), uptime.Round(time.Second), boot.Round(100*time.Millisecond))
}

// guestBroken returns the first console line that shows a kernel failure, or "".
func guestBroken(console string) string {
	for _, line := range strings.Split(console, "\n") {
		for _, sign := range []string{"BUG:", "Oops", "Kernel panic", "general protection fault", "inconsistent task state", "RIP:"} {
			if strings.Contains(line, sign) {
				return strings.TrimSpace(line)
			}
		}
	}
	return ""
}

// diskActivity says whether the guest's disk is still busy (QEMU's block statistics sampled
// twice): it tells a guest that hangs from one whose I/O runs but whose agent is not heard.
func diskActivity(ctx context.Context, sd *side) string {
	if sd == nil || sd.guest == nil || sd.guest.Exited() {
		return "QEMU gone"
	}
	ops := func() (int64, error) {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := sd.guest.BlockStats(qctx)
		return st.ReadOps + st.WriteOps, err
	}
	a, err := ops()
	if err != nil {
		return "no block statistics: " + err.Error()
	}
	time.Sleep(time.Second)
	b, err := ops()
	if err != nil {
		return "no block statistics: " + err.Error()
	}
	st, _ := sd.guest.State(ctx)
	return fmt.Sprintf("QEMU status %s, the guest's disk did %d I/Os in the last second (%d since QEMU started)", st, b-a, b)
}
