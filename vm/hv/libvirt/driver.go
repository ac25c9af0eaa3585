package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// DriverName is the driver's name in results.
const DriverName = "libvirt"

// DriverConfig says which daemons the hv driver talks to and how it migrates.
type DriverConfig struct {
	// SourceURI and DestURI are the daemons' connection URIs.
	SourceURI, DestURI string
	// Domain, if set, is an existing domain on the source to measure instead of booting a
	// transient one from vmstorbench's guest image. When it has the agent channel the
	// workload writes to its /dev/vda, which AllowDestructive must allow.
	Domain           string
	AllowDestructive bool
	// PeerToPeer, Tunnelled, DestURIFromSource, Unsafe, NonSharedDisk: see MigrateOptions.
	PeerToPeer, Tunnelled bool
	DestURIFromSource     string
	Unsafe                bool
	NonSharedDisk         bool
	// DestDisk, with NonSharedDisk, is where the guest's disk (vda, a local file) is copied
	// to on the destination's host: "" is a new image in a scratch directory (the
	// destination daemon on this machine), a directory a new image in it, a file that
	// image (of the source's size; overwritten only with AllowDestructive). KeepDestDisk
	// keeps a new image after the run.
	DestDisk     string
	KeepDestDisk bool
	// Firmware is the BIOS image on the hypervisor's host for transient domains; "" is
	// QEMU's qboot on a local daemon when installed (it starts a direct kernel boot sooner
	// than SeaBIOS), else QEMU's default.
	Firmware string
}

// Driver is the hv.Driver over two libvirt daemons.
type Driver struct {
	cfg      DriverConfig
	src, dst *Conn
	// SourceHost and DestHost describe the daemons (URIs redacted).
	SourceHost, DestHost Host

	kvm bool // the source daemon offers domain type kvm

	// What the last run measured, for the result (Summary).
	agent   bool
	flags   []string
	lastJob *JobStats
	// destDisk is the non-shared-disk migration's destination image (Boot makes it);
	// diskPolled the disk figures of the last job-stats poll, for when the completed job
	// is missing.
	destDisk   *destImage
	diskPolled *JobStats

	mu     sync.Mutex
	guests map[string][]*Guest // by domain name, on either connection
	stop   context.CancelFunc
}

// Summary is what a run under this driver adds to its result.
type Summary struct {
	Source, Dest Host
	// Domain is the existing domain measured ("" for a transient one).
	Domain string
	// Agent is true when the source guest had the agent channel.
	Agent bool
	// Flags name the migration flags used; Job is the destination's completed job.
	Flags []string
	Job   *JobStats
	// DestDisk is the image a non-shared-disk migration copied the disk into ("" when
	// shared); DiskBytes the disk bytes libvirt copied: disk_processed of the completed
	// job, else of the source's last job-stats poll (DiskBytesLastPoll: a lower bound;
	// libvirt 9.0's completed job reports the disk as 0 after an NBD mirror, its polls
	// during the migration count the mirror's bytes).
	DestDisk          string
	DiskBytes         int64
	DiskBytesLastPoll bool
}

// Summary describes the last guest booted and migrated through the driver.
func (d *Driver) Summary() Summary {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := Summary{Source: d.SourceHost, Dest: d.DestHost, Domain: d.cfg.Domain, Agent: d.agent, Flags: d.flags, Job: d.lastJob}
	if d.destDisk != nil {
		s.DestDisk = d.destDisk.Path
		switch {
		case d.lastJob != nil && d.lastJob.DiskProcessed > 0:
			s.DiskBytes = int64(d.lastJob.DiskProcessed)
		case d.diskPolled != nil:
			s.DiskBytes, s.DiskBytesLastPoll = int64(d.diskPolled.DiskProcessed), true
		}
	}
	return s
}

// KVM reports whether the source daemon can run domains of type kvm (its capabilities
// list it: /dev/kvm usable by its QEMU), for the scenario's "auto" accelerator.
func (d *Driver) KVM() bool { return d.kvm }

// Hosts describes both daemons.
func (d *Driver) Hosts() (src, dst Host) { return d.SourceHost, d.DestHost }

// NewDriver connects to both daemons and reads their versions and host UUIDs; the same
// host UUID on both is refused (libvirt cannot migrate a domain to its own host).
func NewDriver(ctx context.Context, cfg DriverConfig) (_ *Driver, err error) {
	if cfg.SourceURI == "" || cfg.DestURI == "" {
		return nil, errors.New("libvirt: the libvirt driver needs a source and a destination URI")
	}
	d := &Driver{cfg: cfg, guests: map[string][]*Guest{}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.src, err = Connect(ctx, cfg.SourceURI); err != nil {
		return nil, err
	}
	if d.dst, err = Connect(ctx, cfg.DestURI); err != nil {
		return nil, err
	}
	if d.SourceHost, err = d.src.Host(ctx); err != nil {
		return nil, err
	}
	if d.DestHost, err = d.dst.Host(ctx); err != nil {
		return nil, err
	}
	if d.SourceHost.UUID != "" && d.SourceHost.UUID == d.DestHost.UUID {
		return nil, &SameHostError{UUID: d.SourceHost.UUID}
	}
	if d.kvm, err = d.src.CanKVM(ctx); err != nil {
		return nil, err
	}
	ectx, cancel := context.WithCancel(context.Background())
	d.stop = cancel
	for _, c := range []*Conn{d.src, d.dst} {
		c := c
		if err := c.WatchLifecycle(ectx, func(ev LifecycleEvent) { d.dispatch(c, ev) }); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Close disconnects from both daemons and removes the destination image it made (the
// guests are stopped by then).
func (d *Driver) Close() error {
	if d.stop != nil {
		d.stop()
	}
	d.mu.Lock()
	dd := d.destDisk
	d.mu.Unlock()
	return errors.Join(d.src.Close(), d.dst.Close(), dd.close())
}

// Name implements hv.Driver.
func (d *Driver) Name() string { return DriverName }

// Version implements hv.Driver: the source's hypervisor (QEMU) version.
func (d *Driver) Version() string { return d.SourceHost.HypervisorVersion }

// Supports implements hv.Driver: no memory dump, no pause before switchover, no block jobs
// (libvirt drives QEMU's; vmstorbench's storage methods talk QMP).
func (d *Driver) Supports(hv.Capability) bool { return false }

// Boot implements hv.Driver: a transient domain from spec, or the existing domain of
// DriverConfig.Domain (spec's image and disk are then not used).
func (d *Driver) Boot(ctx context.Context, spec hv.Spec) (hv.Guest, error) {
	if d.cfg.Domain != "" {
		if d.cfg.NonSharedDisk {
			// Its disks could be copied into the same paths on another host, which on one
			// machine are the source's own files: not without naming each destination.
			return nil, errors.New("libvirt: copying the disks of an existing domain with the migration is not supported: migrate it on shared storage, or let vmstorbench boot its guest")
		}
		dom, err := d.src.Lookup(ctx, d.cfg.Domain)
		if err != nil {
			return nil, err
		}
		info, err := dom.Info(ctx)
		if err != nil {
			return nil, err
		}
		g, err := d.guest(ctx, dom, spec, info.MemoryBytes)
		if err == nil && g.agent != "" && !d.cfg.AllowDestructive {
			return nil, fmt.Errorf("libvirt: domain %s has the agent channel, so the workload would run in it on its /dev/vda and overwrite it: allow that (--allow-destructive) only if /dev/vda is a disk for the benchmark", dom.Name)
		}
		return g, err
	}
	lspec := Spec{
		Type: TypeQEMU, MemoryMiB: spec.MemoryMiB, CPUs: spec.CPUs,
		Kernel: spec.Kernel, Initrd: spec.Initrd, Cmdline: spec.Cmdline, Firmware: d.cfg.Firmware,
		NoAgentChannel: spec.AgentPort == "",
	}
	if spec.Accel == "kvm" {
		lspec.Type = TypeKVM
	}

	if spec.AgentPort != "" && spec.AgentPort != AgentChannelName {
		return nil, fmt.Errorf("libvirt: agent port %q: the libvirt driver's domains have %s", spec.AgentPort, AgentChannelName)
	}
	if spec.Disk != nil {
		if spec.Disk.Auth != nil {
			return nil, hv.Unsupported(d, "a disk with credentials")
		}
		if spec.Disk.CopyOnRead {
			return nil, hv.Unsupported(d, "copy-on-read")
		}
		lspec.Disk = &Disk{Source: strings.TrimPrefix(spec.Disk.File, "file://"), Format: spec.Disk.Format}
		if src := lspec.Disk.Source; d.src.Local() && strings.HasPrefix(src, "/") && !openableByAll(src) {
			return nil, fmt.Errorf("libvirt: the disk %s is not readable and writable by every user, and the daemon's QEMU may run as another user: use --access nbd (vmstorbench serves the disk over NBD) or a disk the hypervisor can open", src)
		}
		if !spec.Disk.Direct {
			lspec.Disk.Cache = "writeback"
		}
	}
	if d.cfg.NonSharedDisk {
		if err := d.prepareDestDisk(lspec.Disk); err != nil {
			return nil, err
		}
	}
	dom, err := d.src.Boot(ctx, lspec)
	if err != nil {
		return nil, err
	}
	mem := int64(lspec.MemoryMiB)
	if mem <= 0 {
		mem = 256
	}
	ram := mem << 20
	if lspec.Type == TypeQEMU {
		ram -= tcgRAMShortfall
	}
	g, err := d.guest(ctx, dom, spec, ram)
	if err != nil {
		_ = dom.Destroy(context.WithoutCancel(ctx))
		return nil, err
	}
	return g, nil
}

// prepareDestDisk makes the image a non-shared-disk migration copies the local file disk
// into (once: a repeated Boot reuses it, the next migration overwrites it).
func (d *Driver) prepareDestDisk(disk *Disk) error {
	if disk == nil || !strings.HasPrefix(disk.Source, "/") || strings.HasPrefix(disk.Source, "/dev/") {
		return errors.New("libvirt: copying the disk with the migration (non-shared disk) is done here for a local image file only (--target file://…, --access native)")
	}
	d.mu.Lock()
	done := d.destDisk != nil
	d.mu.Unlock()
	if done {
		return nil
	}
	img, err := prepareDestImage(disk.Source, d.cfg.DestDisk, d.dst.Local(), d.cfg.AllowDestructive, d.cfg.KeepDestDisk)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.destDisk = img
	d.mu.Unlock()
	return nil
}

// guest wraps dom, reading its agent channel.
func (d *Driver) guest(ctx context.Context, dom *Domain, spec hv.Spec, ram int64) (*Guest, error) {
	g := &Guest{drv: d, dom: dom, name: spec.Name, onEvent: spec.OnEvent, ram: ram, done: make(chan struct{})}
	if ch, ok, err := dom.ReadAgentChannel(ctx); err != nil {
		return nil, err
	} else if ok && ch.Network == "unix" {
		g.agent = ch.Address
	}
	d.mu.Lock()
	d.guests[dom.Name] = append(d.guests[dom.Name], g)
	if dom.Conn == d.src {
		d.agent = g.agent != ""
	}
	d.mu.Unlock()
	return g, nil
}

// dispatch hands a lifecycle event to the guest it concerns.
func (d *Driver) dispatch(c *Conn, ev LifecycleEvent) {
	d.mu.Lock()
	var gs []*Guest
	for _, g := range d.guests[ev.Domain] {
		if g.dom.Conn == c {
			gs = append(gs, g)
		}
	}
	d.mu.Unlock()
	for _, g := range gs {
		g.event(ev)
	}
}

// Migrate implements hv.Driver: Begin on the source and Prepare on the destination (its
// QEMU then runs, waiting on p.Listen); Migration.Start sends the guest.
func (d *Driver) Migrate(ctx context.Context, src hv.Guest, dst hv.Spec, p hv.Params) (hv.Migration, hv.Guest, error) {
	sg, ok := src.(*Guest)
	if !ok {
		return nil, nil, fmt.Errorf("libvirt driver: the source guest is a %T, not a libvirt guest", src)
	}
	if p.PauseBeforeSwitchover {
		return nil, nil, hv.Unsupported(d, "pausing before the switchover")
	}
	o := d.migrateOptions(p)
	d.mu.Lock()
	d.diskPolled = nil
	d.mu.Unlock()
	m, err := PrepareMigration(ctx, sg.dom, d.dst, o)
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	d.flags, d.lastJob = o.Names(), nil
	d.mu.Unlock()
	sg.mu.Lock()
	sg.outgoing = m
	sg.mu.Unlock()
	mig := &hvMigration{drv: d, m: m}
	in := m.Incoming()
	if in == nil {
		return mig, nil, nil
	}
	dg, err := d.guest(ctx, in, dst, sg.ram)
	if err != nil {
		m.Abandon(ctx)
		return nil, nil, err
	}
	mig.dst = dg
	return mig, dg, nil
}

// migrateOptions maps the scenario's parameters and the driver's configuration to
// libvirt's.
func (d *Driver) migrateOptions(p hv.Params) MigrateOptions {
	o := MigrateOptions{
		Live: true, PeerToPeer: d.cfg.PeerToPeer, Tunnelled: d.cfg.Tunnelled, DestURIFromSource: d.cfg.DestURIFromSource,
		Unsafe: d.cfg.Unsafe, NonSharedDisk: d.cfg.NonSharedDisk, MaxDowntime: p.DowntimeLimit,
	}
	d.mu.Lock()
	if d.destDisk != nil {
		// The guest's disk (vda) into the image Boot made: on one machine the same path
		// would be the source's own file.
		o.DestDisks = map[string]string{"vda": d.destDisk.Path}
	}
	d.mu.Unlock()
	switch p.Mode {
	case hv.ModePostcopy:
		o.Postcopy = true
	case hv.ModeStopcopy:
		// The scenario pauses the guest before Start: a live migration of a paused guest
		// is stop-and-copy, and the destination stays paused as the source was.
	}
	if p.Security == hv.SecurityTLS || p.Security == hv.SecurityTLSVerify {
		// libvirt takes the credentials from its own configuration
		// (migrate_tls_x509_cert_dir, migrate_tls_x509_verify in qemu.conf).
		o.TLS = true
	}
	if p.MaxBandwidth > 0 {
		o.BandwidthMiBps = uint64((p.MaxBandwidth + 1<<20 - 1) >> 20)
	}
	if p.Listen != "" && !o.Tunnelled {
		o.MigrationURI = "tcp://" + p.Listen
	}
	return o
}

// hvMigration is an hv.Migration over a Migration.
type hvMigration struct {
	drv *Driver
	m   *Migration
	dst *Guest

	mu       sync.Mutex
	switched bool
	final    *hv.Progress
}

// Start implements hv.Migration: the source's QEMU connects to connectTo (a relay in front
// of the destination's listener) when set.
func (h *hvMigration) Start(ctx context.Context, connectTo string) error {
	if connectTo != "" && !h.m.opts.Tunnelled {
		h.m.params = withString(h.m.params, "migrate_uri", "tcp://"+connectTo)
	}
	// The scenario bounds the migration itself (its deadline, Cancel): the job is not tied
	// to this call's context.
	h.m.Start(context.WithoutCancel(ctx))
	return nil
}

// Poll implements hv.Migration: the source's job statistics while the migration runs; once
// it has ended, its outcome with the destination's completed-job figures.
func (h *hvMigration) Poll(ctx context.Context) (hv.Progress, error) {
	select {
	case <-h.m.Done():
		return h.result(ctx), nil
	default:
	}
	js, err := h.m.Stats(ctx)
	if err != nil {
		// The source's domain goes at Confirm, a moment before the migration's goroutine
		// reports the end: wait for that rather than fail on the missing domain.
		wait := time.Duration(0)
		if IsCode(err, golibvirt.ErrNoDomain) {
			wait = 10 * time.Second
		}
		select {
		case <-h.m.Done():
			return h.result(ctx), nil
		case <-time.After(wait):
		case <-ctx.Done():
		}
		return hv.Progress{}, err
	}
	p := progress(js)
	if js.Has["disk_processed"] {
		h.drv.mu.Lock()
		h.drv.diskPolled = &js
		h.drv.mu.Unlock()
	}
	h.mu.Lock()
	switched := h.switched
	h.mu.Unlock()
	switch {
	case js.Type == "none":
		p.Status = hv.StatusSetup
	case switched:
		p.Status = hv.StatusPostcopy
	default:
		p.Status = hv.StatusActive
	}
	return p, nil
}

// result is the outcome of an ended migration, computed once.
func (h *hvMigration) result(ctx context.Context) hv.Progress {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.final != nil {
		return *h.final
	}
	dom, err := h.m.Wait()
	var p hv.Progress
	switch {
	case err != nil && h.m.Aborted():
		p = hv.Progress{Status: hv.StatusCancelled, Error: err.Error()}
	case err != nil:
		p = hv.Progress{Status: hv.StatusFailed, Error: err.Error()}
	default:
		js, jerr := dom.CompletedJob(ctx, h.switched, 3*time.Second)
		if jerr == nil && js.Type != "none" {
			p = progress(js)
			h.drv.mu.Lock()
			h.drv.lastJob = &js
			h.drv.mu.Unlock()
		} else {
			// After most post-copy migrations libvirt 9.0 never records the destination's
			// completed job (measured: 8 of 12 runs; still "none" 10 s after Confirm): the
			// total time is then this process's, Perform to Confirm (libvirt sends no event
			// at the end of post-copy either); the downtime and the RAM figures unknown.
			p.TotalTime = h.m.Elapsed()
			p.NoFinalFigures = noFinalFigures(js, jerr)
		}
		p.Status = hv.StatusCompleted
	}
	h.final = &p
	return p
}

// noFinalFigures says why the destination's completed job gave no figures.
func noFinalFigures(js JobStats, err error) string {
	if err != nil {
		return "libvirt's completed job could not be read: " + err.Error()
	}
	return fmt.Sprintf("libvirt recorded no completed job on the destination (job type %q)", js.Type)
}

// progress maps libvirt's job statistics to hv's.
func progress(js JobStats) hv.Progress {
	p := hv.Progress{TotalTime: js.Elapsed, Downtime: js.Downtime, SetupTime: js.Setup, Error: js.ErrMsg}
	if js.Has["memory_total"] {
		p.HaveRAM = true
		p.Transferred, p.Remaining, p.Total = int64(js.MemoryProcessed), int64(js.MemoryRemaining), int64(js.MemoryTotal)
		p.Iterations, p.DirtyPagesRate, p.PostcopyRequests = int64(js.Iterations), int64(js.DirtyRate), int64(js.PostcopyRequests)
		p.Mbps = float64(js.MemoryBPS) * 8 / 1e6
	}
	return p
}

// StartPostcopy implements hv.Migration.
func (h *hvMigration) StartPostcopy(ctx context.Context) error {
	if err := h.m.StartPostcopy(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	h.switched = true
	h.mu.Unlock()
	return nil
}

// Cancel implements hv.Migration: abort a running migration, or undo a prepared one.
func (h *hvMigration) Cancel(ctx context.Context) error {
	if !h.m.isStarted() {
		h.m.Abandon(ctx)
		return nil
	}
	return h.m.Abort(ctx)
}

// Guest is an hv.Guest: a domain on the source or the destination daemon.
type Guest struct {
	drv     *Driver
	dom     *Domain
	name    string
	agent   string
	ram     int64
	onEvent func(hv.Event)

	mu           sync.Mutex
	done         chan struct{}
	exitedAt     string
	migratedAway bool
	// outgoing is the last migration this guest was the source of: it holds the CPU time
	// the domain had used when the migration ended it.
	outgoing *Migration
}

// Domain is the libvirt domain behind the guest.
func (g *Guest) Domain() *Domain { return g.dom }

// HasAgent reports whether the domain has the agent channel (else only the host side is
// measured).
func (g *Guest) HasAgent() bool { return g.agent != "" }

// Name implements hv.Guest.
func (g *Guest) Name() string { return g.name }

// AgentSocket implements hv.Guest ("" when the domain has no agent channel on a unix socket).
func (g *Guest) AgentSocket() string { return g.agent }

// RAMBytes implements hv.Guest.
func (g *Guest) RAMBytes() int64 { return g.ram }

// State implements hv.Guest, in QEMU's vocabulary.
func (g *Guest) State(ctx context.Context) (hv.State, error) {
	g.mu.Lock()
	away := g.migratedAway
	g.mu.Unlock()
	if away {
		return hv.StatePostMigrate, nil
	}
	st, reason, err := g.dom.State(ctx)
	if err != nil {
		if IsCode(err, golibvirt.ErrNoDomain) {
			return hv.StateShutdown, nil
		}
		return "", err
	}
	switch st {
	case "running", "blocked":
		return hv.StateRunning, nil
	case "paused":
		// VIR_DOMAIN_PAUSED_MIGRATION (2): an incoming domain waiting for the stream, or a
		// source at the end of pre-copy.
		if reason == 2 && g.dom.Conn == g.drv.dst {
			return hv.StateInMigrate, nil
		}
		if reason == 2 {
			return hv.StatePostMigrate, nil
		}
		return hv.StatePaused, nil
	case "crashed":
		return hv.StatePanicked, nil
	case "shutoff", "shutdown":
		return hv.StateShutdown, nil
	}
	return hv.State(st), nil
}

// CPUTime implements hv.CPUTimer: the domain's QEMU process's CPU time (virDomainGetInfo),
// or, once a migration has ended the domain here, the value recorded just before Confirm.
func (g *Guest) CPUTime(ctx context.Context) (time.Duration, error) {
	g.mu.Lock()
	out := g.outgoing
	g.mu.Unlock()
	if out != nil {
		d, ok, err := out.SourceCPUTime()
		if err != nil {
			return 0, err
		}
		if ok {
			return d, nil
		}
	}
	info, err := g.dom.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.CPUTime, nil
}

// Pause implements hv.Guest.
func (g *Guest) Pause(ctx context.Context) error { return g.dom.Pause(ctx) }

// Continue implements hv.Guest.
func (g *Guest) Continue(ctx context.Context) error { return g.dom.Resume(ctx) }

// Stop implements hv.Guest: a transient domain is destroyed (it is then gone); an existing
// domain vmstorbench did not start is left running.
func (g *Guest) Stop() error {
	if !g.dom.Transient {
		g.markExited("left running (not started by vmstorbench)")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := g.dom.Destroy(ctx)
	g.markExited("destroyed")
	return err
}

// Kill implements hv.Guest.
func (g *Guest) Kill(grace time.Duration) error {
	if !g.dom.Transient {
		g.markExited("left running (not started by vmstorbench)")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(grace, 5*time.Second))
	defer cancel()
	err := g.dom.Destroy(ctx)
	g.markExited("killed")
	return err
}

func (g *Guest) markExited(why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.done:
	default:
		g.exitedAt = why
		close(g.done)
	}
}

// event maps a lifecycle event: suspended and resumed are QEMU's STOP and RESUME; stopped
// and crashed end the guest (not a stop because the domain migrated away).
func (g *Guest) event(ev LifecycleEvent) {
	switch ev.Type {
	case "suspended":
		g.emit("STOP", ev)
	case "resumed":
		g.emit("RESUME", ev)
	case "stopped":
		if ev.Detail == 3 { // VIR_DOMAIN_EVENT_STOPPED_MIGRATED
			// Gone to the destination, as planned: QEMU's source would linger in
			// "postmigrate" until stopped; this one is gone, which is not a fault.
			g.mu.Lock()
			g.migratedAway = true
			g.mu.Unlock()
			return
		}
		g.markExited(fmt.Sprintf("domain stopped (libvirt detail %d)", ev.Detail))
	case "crashed":
		g.emit("GUEST_PANICKED", ev)
		g.markExited("domain crashed")
	}
}

func (g *Guest) emit(name string, ev LifecycleEvent) {
	if g.onEvent != nil {
		g.onEvent(hv.Event{Name: name, Received: ev.Received})
	}
}

// Exited implements hv.Guest.
func (g *Guest) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Done implements hv.Guest.
func (g *Guest) Done() <-chan struct{} { return g.done }

// ExitReason implements hv.Guest.
func (g *Guest) ExitReason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.exitedAt
}

// Log implements hv.Guest: libvirt keeps QEMU's log on the hypervisor's host; the driver
// has the console only.
func (g *Guest) Log() string { return "see the domain's QEMU log on " + g.dom.Conn.Redacted }

// ConsoleTail implements hv.Guest: the console file of a transient domain on a local
// daemon ("" otherwise).
func (g *Guest) ConsoleTail(n int64) string {
	p := g.dom.ConsoleLog()
	if p == "" {
		return ""
	}
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// BlockStats implements hv.Guest.
func (g *Guest) BlockStats(ctx context.Context) (hv.BlockStats, error) {
	b, err := g.dom.BlockStats(ctx)
	return hv.BlockStats{ReadOps: b.ReadOps, WriteOps: b.WriteOps, FlushOps: b.FlushOps}, err
}
