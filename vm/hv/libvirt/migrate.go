package libvirt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// MigrateOptions map vmstorbench's migration settings to libvirt's flags and parameters.
type MigrateOptions struct {
	// Live keeps the guest running while its memory is copied (VIR_MIGRATE_LIVE); without
	// it libvirt pauses the guest for the whole migration (stop-and-copy).
	Live bool
	// Offline migrates only the definition of an inactive persistent domain
	// (VIR_MIGRATE_OFFLINE with VIR_MIGRATE_PERSIST_DEST).
	Offline bool
	// Postcopy allows switching to post-copy with Migration.StartPostcopy.
	Postcopy bool
	// PeerToPeer lets the source daemon drive the migration and connect to the destination
	// daemon itself, at DestURIFromSource (default: the destination connection's URI).
	// Tunnelled sends the migration stream through the daemons' connection (needs
	// PeerToPeer).
	PeerToPeer        bool
	Tunnelled         bool
	DestURIFromSource string
	// BandwidthMiBps limits the migration stream (0: libvirt's default, unlimited).
	BandwidthMiBps uint64
	// TLS encrypts the migration stream with the daemons' migration certificates
	// (VIR_MIGRATE_TLS); TLSDestination is the host name the destination's certificate
	// must match when it differs from the URI's.
	TLS            bool
	TLSDestination string
	// NonSharedDisk copies the whole disk to the destination (VIR_MIGRATE_NON_SHARED_DISK),
	// NonSharedInc only what differs from a shared backing image.
	NonSharedDisk bool
	NonSharedInc  bool
	// DestDisks, with NonSharedDisk, names the disks to copy (by target, "vda") and the
	// image each is copied into on the destination's host: the disks are listed in
	// VIR_MIGRATE_PARAM_MIGRATE_DISKS and the destination's domain XML
	// (VIR_MIGRATE_PARAM_DEST_XML) gets the paths. Empty: libvirt copies every writable
	// disk into the same path on the destination's host, which on one machine is the
	// source's own file.
	DestDisks map[string]string
	// Unsafe migrates even when libvirt thinks the disk is not shared (a local file both
	// daemons of one machine open, as in the testbed).
	Unsafe bool
	// MigrationURI is where the destination's QEMU listens (VIR_MIGRATE_PARAM_URI), e.g.
	// tcp://127.0.0.1 (the destination picks a port from its range) or tcp://HOST:PORT.
	MigrationURI string
	// MaxDowntime is the downtime pre-copy aims for (0: libvirt's default, 300 ms).
	MaxDowntime time.Duration
	// DestXML replaces the domain XML on the destination (0 keeps the source's, adjusted
	// for a domain Boot started: its console file).
	DestXML string
}

// Flags are the virDomainMigrateFlags for o.
func (o MigrateOptions) Flags() golibvirt.DomainMigrateFlags {
	var f golibvirt.DomainMigrateFlags
	set := func(on bool, flag golibvirt.DomainMigrateFlags) {
		if on {
			f |= flag
		}
	}
	set(o.Live, golibvirt.MigrateLive)
	set(o.Offline, golibvirt.MigrateOffline|golibvirt.MigratePersistDest)
	set(o.Postcopy, golibvirt.MigratePostcopy)
	set(o.PeerToPeer, golibvirt.MigratePeer2peer)
	set(o.Tunnelled, golibvirt.MigrateTunnelled)
	set(o.TLS, golibvirt.MigrateTLS)
	set(o.NonSharedDisk, golibvirt.MigrateNonSharedDisk)
	set(o.NonSharedInc, golibvirt.MigrateNonSharedInc)
	set(o.Unsafe, golibvirt.MigrateUnsafe)
	return f
}

// Names are the flags of o by name, for results ("live", "postcopy", "peer-to-peer", …).
func (o MigrateOptions) Names() []string {
	var out []string
	for _, f := range []struct {
		on   bool
		name string
	}{{o.Live, "live"}, {o.Offline, "offline"}, {o.Postcopy, "postcopy"}, {o.PeerToPeer, "peer-to-peer"},
		{o.Tunnelled, "tunnelled"}, {o.TLS, "tls"}, {o.NonSharedDisk, "non-shared-disk"}, {o.NonSharedInc, "non-shared-inc"},
		{o.Unsafe, "unsafe"}} {
		if f.on {
			out = append(out, f.name)
		}
	}
	return out
}

// Validate checks combinations libvirt would refuse, with one line each.
func (o MigrateOptions) Validate() error {
	switch {
	case o.Tunnelled && !o.PeerToPeer:
		return errors.New("libvirt: a tunnelled migration must be peer-to-peer")
	case o.Tunnelled && o.TLS:
		return errors.New("libvirt: a tunnelled migration cannot use the migration TLS (the daemons' connection carries it)")
	case o.Offline && (o.Live || o.Postcopy):
		return errors.New("libvirt: an offline migration moves only the definition: it cannot be live or post-copy")
	case o.Postcopy && !o.Live:
		return errors.New("libvirt: post-copy needs a live migration")
	case o.NonSharedDisk && o.NonSharedInc:
		return errors.New("libvirt: copy the whole disk or the increment, not both")
	case o.Tunnelled && o.MigrationURI != "":
		return errors.New("libvirt: a tunnelled migration has no migration URI")
	case len(o.DestDisks) > 0 && !o.NonSharedDisk && !o.NonSharedInc:
		return errors.New("libvirt: destination images for the disks need a migration that copies them (non-shared disk)")
	}
	return nil
}

// params are the typed parameters of o (without the destination XML).
func (o MigrateOptions) params() []golibvirt.TypedParam {
	var p []golibvirt.TypedParam
	if o.MigrationURI != "" {
		p = append(p, golibvirt.TypedParam{Field: "migrate_uri", Value: *golibvirt.NewTypedParamValueString(o.MigrationURI)})
	}
	if o.BandwidthMiBps > 0 {
		p = append(p, golibvirt.TypedParam{Field: "bandwidth", Value: *golibvirt.NewTypedParamValueUllong(o.BandwidthMiBps)})
	}
	if o.TLSDestination != "" {
		p = append(p, golibvirt.TypedParam{Field: "tls.destination", Value: *golibvirt.NewTypedParamValueString(o.TLSDestination)})
	}
	// A string list: the field once per disk.
	for _, target := range slices.Sorted(maps.Keys(o.DestDisks)) {
		p = append(p, golibvirt.TypedParam{Field: golibvirt.MigrateParamMigrateDisks, Value: *golibvirt.NewTypedParamValueString(target)})
	}
	return p
}

func withString(p []golibvirt.TypedParam, field, v string) []golibvirt.TypedParam {
	out := make([]golibvirt.TypedParam, 0, len(p)+1)
	for _, x := range p {
		if x.Field != field {
			out = append(out, x)
		}
	}
	return append(out, golibvirt.TypedParam{Field: field, Value: *golibvirt.NewTypedParamValueString(v)})
}

// SameHostError is the refusal to migrate between daemons with one host UUID.
type SameHostError struct{ UUID string }

func (e *SameHostError) Error() string {
	return fmt.Sprintf("libvirt: source and destination are the same host (host UUID %s): libvirt refuses to migrate a domain to the host it runs on; give a destination daemon on another host or with another host_uuid", e.UUID)
}

// Migration is a migration under way.
type Migration struct {
	Source *Domain
	dest   *Conn
	opts   MigrateOptions
	// Started is when the migration was started; SourceHost and DestHost describe both
	// daemons.
	Started              time.Time
	SourceHost, DestHost Host

	// destConsole is the destination's console file when both sides are on this machine.
	destConsole string
	// The state between Prepare and Perform (managed migrations).
	prepared   bool
	started    bool
	aborting   bool
	flags      golibvirt.DomainMigrateFlags
	protection golibvirt.DomainMigrateFlags
	params     []golibvirt.TypedParam
	cookie     []byte
	incoming   *Domain

	done  chan struct{}
	mu    sync.Mutex
	ended time.Time
	dst   *Domain
	err   error
	steps []Step
	// sourceCPU is the source domain's CPU time just before Confirm ended it (0 with
	// sourceCPUErr set when it could not be read, or before Confirm).
	sourceCPU    time.Duration
	sourceCPUErr error
}

// Step is how long one step of the migration protocol took, as this client saw it.
type Step struct {
	Name string // begin, prepare, perform, finish, confirm
	Took time.Duration
}

// timeStep records how long the step name, started at t0, took.
func (m *Migration) timeStep(name string, t0 time.Time) {
	m.mu.Lock()
	m.steps = append(m.steps, Step{Name: name, Took: time.Since(t0)})
	m.mu.Unlock()
}

// Steps are the protocol steps run so far, in order (a peer-to-peer migration has one,
// perform, which the source daemon runs whole).
func (m *Migration) Steps() []Step {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Step(nil), m.steps...)
}

// StartMigration is PrepareMigration and Start.
func StartMigration(ctx context.Context, src *Domain, dest *Conn, opts MigrateOptions) (*Migration, error) {
	m, err := PrepareMigration(ctx, src, dest, opts)
	if err != nil {
		return nil, err
	}
	m.Start(ctx)
	return m, nil
}

// PrepareMigration checks both daemons and, for a managed (not peer-to-peer) migration,
// runs Begin on the source and Prepare on the destination: when it returns, the
// destination's QEMU runs, paused, waiting for the stream, and Incoming is the domain there
// (its agent channel can be read and connected to). Start sends the guest; Abandon undoes
// a prepared migration that will not be started.
func PrepareMigration(ctx context.Context, src *Domain, dest *Conn, opts MigrateOptions) (*Migration, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &Migration{Source: src, dest: dest, opts: opts, done: make(chan struct{})}
	var err error
	if m.SourceHost, err = src.Conn.Host(ctx); err != nil {
		return nil, err
	}
	if m.DestHost, err = dest.Host(ctx); err != nil {
		return nil, err
	}
	if m.SourceHost.UUID != "" && m.SourceHost.UUID == m.DestHost.UUID {
		return nil, &SameHostError{UUID: m.SourceHost.UUID}
	}
	if opts.MaxDowntime > 0 {
		err := src.Conn.call(ctx, 0, "set the maximum downtime of "+src.Name, func() error {
			return src.Conn.l.DomainMigrateSetMaxDowntime(src.d, uint64(opts.MaxDowntime/time.Millisecond), 0)
		})
		if err != nil {
			return nil, err
		}
	}
	if m.opts.DestXML == "" && (src.stage != nil || len(m.opts.DestDisks) > 0) {
		if m.opts.DestXML, err = m.destXML(ctx); err != nil {
			return nil, err
		}
	}
	m.params = m.opts.params()
	if m.opts.DestXML != "" {
		m.params = withString(m.params, golibvirt.MigrateParamDestXML, m.opts.DestXML)
	}
	m.flags = m.opts.Flags()
	if !m.opts.PeerToPeer {
		if err := m.prepare(ctx); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Incoming is the domain on the destination between PrepareMigration and the end of the
// migration (nil for a peer-to-peer migration, whose destination the source daemon
// prepares once started).
func (m *Migration) Incoming() *Domain { return m.incoming }

// Start sends the guest in the background. The migration is aborted when ctx ends (the
// guest keeps running on the source). Wait for it with Wait or Done.
func (m *Migration) Start(ctx context.Context) {
	if !m.claim() {
		return
	}
	m.Started = time.Now()
	go m.run(ctx)
}

// Aborted reports whether Abort was called (the migration's context ended, or a caller
// cancelled it).
func (m *Migration) Aborted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.aborting
}

// claim marks the migration started or abandoned; false if it already was.
func (m *Migration) claim() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return false
	}
	m.started = true
	return true
}

func (m *Migration) isStarted() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// Abandon ends a prepared migration that was not started: the destination's QEMU is
// stopped and the source's migration job ended, the guest running on the source.
func (m *Migration) Abandon(ctx context.Context) {
	if !m.claim() {
		return
	}
	if m.prepared {
		_ = m.finish(ctx, true)
		m.confirm(ctx, nil, true)
	}
	m.cleanDestination()
	m.mu.Lock()
	m.err, m.ended = errors.New("libvirt: migration abandoned before it started"), time.Now()
	m.mu.Unlock()
	close(m.done)
}

// Migrate is StartMigration and Wait.
func Migrate(ctx context.Context, src *Domain, dest *Conn, opts MigrateOptions) (*Domain, error) {
	m, err := StartMigration(ctx, src, dest, opts)
	if err != nil {
		return nil, err
	}
	return m.Wait()
}

// destXML is the migratable XML of a domain Boot started, with the console written to a
// file of the destination's own (both sides may be on this machine) or, on a remote
// destination, not kept.
func (m *Migration) destXML(ctx context.Context) (string, error) {
	x, err := m.Source.XML(ctx, golibvirt.DomainXMLMigratable)
	if err != nil {
		return "", err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return "", fmt.Errorf("libvirt: domain %s: parse XML: %w", m.Source.Name, err)
	}
	if err := setDiskSources(&d, m.opts.DestDisks); err != nil {
		return "", fmt.Errorf("libvirt: domain %s: %w", m.Source.Name, err)
	}
	if m.Source.stage == nil {
		return d.Marshal()
	}
	// Named after the destination host: a file another daemon's user created (on the way
	// here) cannot be opened by this one's.
	uuid := m.DestHost.UUID
	if len(uuid) > 8 {
		uuid = uuid[:8]
	}
	m.destConsole = m.Source.stage.consolePath(m.Source.Name + "-" + uuid + ".console")
	if d.Devices != nil {
		for i := range d.Devices.Serials {
			s := &d.Devices.Serials[i]
			if s.Source != nil && s.Source.File != nil {
				if m.dest.local {
					s.Source.File.Path = m.destConsole
				} else {
					s.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
				}
			}
		}
		for i := range d.Devices.Consoles {
			c := &d.Devices.Consoles[i]
			if c.Source != nil && c.Source.File != nil {
				if m.dest.local {
					c.Source.File.Path = m.destConsole
				} else {
					c.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
				}
			}
		}
	}
	return d.Marshal()
}

// setDiskSources points each file disk named in paths (by target) at its new path; a
// named disk the domain does not have as a file is refused.
func setDiskSources(d *libvirtxml.Domain, paths map[string]string) error {
	found := map[string]bool{}
	if d.Devices != nil {
		for i := range d.Devices.Disks {
			disk := &d.Devices.Disks[i]
			if disk.Target == nil || disk.Source == nil || disk.Source.File == nil {
				continue
			}
			if p, ok := paths[disk.Target.Dev]; ok {
				disk.Source.File.File = p
				found[disk.Target.Dev] = true
			}
		}
	}
	for _, target := range slices.Sorted(maps.Keys(paths)) {
		if !found[target] {
			return fmt.Errorf("no file disk %s to copy to %s", target, paths[target])
		}
	}
	return nil
}

// Done is closed when the migration has ended.
func (m *Migration) Done() <-chan struct{} { return m.done }

// Wait waits for the end of the migration and returns the domain on the destination, or
// the error; after an error the guest runs on the source and nothing is left on the
// destination.
func (m *Migration) Wait() (*Domain, error) {
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dst, m.err
}

// Ended is when the migration ended (zero while it runs).
func (m *Migration) Ended() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ended
}

// Stats reads the source's job statistics while the migration runs.
func (m *Migration) Stats(ctx context.Context) (JobStats, error) {
	return m.Source.JobStats(ctx, false)
}

// Elapsed is the time from Start to the end of the migration (Confirm), 0 while it runs.
func (m *Migration) Elapsed() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended.IsZero() || m.Started.IsZero() {
		return 0
	}
	return m.ended.Sub(m.Started)
}

// StartPostcopy switches a migration started with Postcopy to post-copy.
func (m *Migration) StartPostcopy(ctx context.Context) error {
	return m.Source.Conn.call(ctx, 0, "start post-copy of "+m.Source.Name, func() error {
		return m.Source.Conn.l.DomainMigrateStartPostCopy(m.Source.d, 0)
	})
}

// Abort cancels the migration; the guest keeps running on the source.
func (m *Migration) Abort(ctx context.Context) error {
	m.mu.Lock()
	m.aborting = true
	m.mu.Unlock()
	return m.Source.Conn.call(ctx, 0, "abort the migration of "+m.Source.Name, func() error {
		return m.Source.Conn.l.DomainAbortJob(m.Source.d)
	})
}

// performTimeout bounds the Perform call: the migration's own deadline is enforced by
// aborting the job when ctx ends; this is the backstop should the daemon not answer.
func performTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl) + time.Minute
	}
	return time.Hour
}

func (m *Migration) run(ctx context.Context) {
	// Abort the job when ctx ends first: the calls below then return with libvirt's error.
	stopWatch := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Abort(actx)
		case <-stopWatch:
		}
	}()
	var dst *Domain
	var err error
	bg := context.WithoutCancel(ctx)
	if m.opts.PeerToPeer {
		dst, err = m.runPeerToPeer(bg, performTimeout(ctx))
	} else {
		dst, err = m.perform(bg, performTimeout(ctx))
	}
	close(stopWatch)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("libvirt: migration of %s aborted: %w (%v)", m.Source.Name, ctx.Err(), err)
		}
		m.cleanDestination()
	} else if m.Source.stage != nil && m.dest.local {
		// The destination's QEMU was started from the staged files: they go with it.
		dst.stage, m.Source.stage = m.Source.stage, nil
		dst.console = m.destConsole
	}
	m.mu.Lock()
	m.dst, m.err, m.ended = dst, err, time.Now()
	m.mu.Unlock()
	close(m.done)
}

// cleanDestination destroys what a failed migration left on the destination, if the
// domain still exists on the source (it is the source's copy that counts then).
func (m *Migration) cleanDestination() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, _, err := m.Source.State(ctx); err != nil {
		return
	}
	if d, err := m.dest.Lookup(ctx, m.Source.Name); err == nil {
		_ = d.Destroy(ctx)
	}
}

// runPeerToPeer asks the source daemon to migrate (virDomainMigratePerform3Params with the
// destination's URI), as virsh migrate --p2p does.
func (m *Migration) runPeerToPeer(ctx context.Context, timeout time.Duration) (*Domain, error) {
	src := m.Source
	dconn := m.opts.DestURIFromSource
	if dconn == "" {
		dconn = m.dest.uri
	}
	defer m.timeStep("perform", time.Now())
	err := src.Conn.call(ctx, timeout, "migrate "+src.Name+" (peer-to-peer)", func() error {
		_, err := src.Conn.l.DomainMigratePerform3Params(src.d, golibvirt.OptString{dconn}, m.params, nil, m.flags)
		return err
	})
	if err != nil {
		return nil, err
	}
	d, err := m.dest.Lookup(ctx, src.Name)
	if err != nil {
		return nil, err
	}
	d.Transient = src.Transient
	return d, nil
}

// The managed migration drives the five steps of libvirt's migration protocol version 3
// from this client, as virDomainMigrate3 does without VIR_MIGRATE_PEER2PEER: Begin on the
// source (returns the domain XML and a cookie), Prepare on the destination (starts QEMU
// waiting for the stream), Perform on the source (the migration itself; returns when it
// ends), Finish on the destination (resumes the guest there, or kills it when Perform
// failed), Confirm on the source (kills the source, or resumes it when the migration
// failed).

// prepare runs Begin and Prepare.
func (m *Migration) prepare(ctx context.Context) error {
	src, dst := m.Source, m.dest
	var supported int32
	_ = src.Conn.call(ctx, 0, "features", func() error {
		var err error
		// VIR_DRV_FEATURE_MIGRATE_CHANGE_PROTECTION: the domain cannot be changed while
		// the migration runs, and Begin starts the job.
		supported, err = src.Conn.l.ConnectSupportsFeature(7)
		return err
	})
	if supported == 1 {
		m.protection = golibvirt.MigrateChangeProtection
	}
	var domXML string
	t0 := time.Now()
	err := src.Conn.call(ctx, 0, "begin migrating "+src.Name, func() error {
		var err error
		m.cookie, domXML, err = src.Conn.l.DomainMigrateBegin3Params(src.d, m.params, uint32(m.flags|m.protection))
		return err
	})
	if err != nil {
		return err
	}
	m.timeStep("begin", t0)
	if st, _, err := src.State(ctx); err == nil && st == "paused" {
		m.flags |= golibvirt.MigratePaused
	}
	m.params = withString(m.params, "destination_xml", domXML)
	var uriOut golibvirt.OptString
	t0 = time.Now()
	err = dst.call(ctx, 2*DefaultCallTimeout, "prepare the destination of "+src.Name, func() error {
		var err error
		m.cookie, uriOut, err = dst.l.DomainMigratePrepare3Params(m.params, m.cookie, uint32(m.destFlags()))
		return err
	})
	if err != nil {
		if m.protection != 0 {
			// Begin started a job on the source: Confirm with cancelled ends it.
			m.confirm(ctx, nil, true)
		}
		return err
	}
	m.prepared = true
	m.timeStep("prepare", t0)
	if len(uriOut) > 0 && uriOut[0] != "" {
		m.params = withString(m.params, "migrate_uri", uriOut[0])
	}
	m.params = withString(m.params, "destination_name", src.Name)
	if !m.opts.Offline {
		in, err := dst.Lookup(ctx, src.Name)
		if err != nil {
			m.Abandon(ctx)
			return err
		}
		in.Transient = src.Transient
		m.incoming = in
	}
	return nil
}

func (m *Migration) destFlags() golibvirt.DomainMigrateFlags {
	return m.flags &^ (golibvirt.MigrateAbortOnError | golibvirt.MigrateAutoConverge)
}

// perform runs Perform, Finish and Confirm.
func (m *Migration) perform(ctx context.Context, timeout time.Duration) (*Domain, error) {
	src := m.Source
	var performErr error
	notifySource := true
	if !m.opts.Offline {
		t0 := time.Now()
		performErr = src.Conn.call(ctx, timeout, "migrate "+src.Name, func() error {
			var err error
			m.cookie, err = src.Conn.l.DomainMigratePerform3Params(src.d, nil, m.params, m.cookie, m.flags|m.protection)
			return err
		})
		m.timeStep("perform", t0)
		if performErr != nil {
			// A failed Perform has already ended the job on the source.
			notifySource = false
			m.cookie = nil
		}
	} else {
		m.cookie = nil
	}
	finishErr := m.finish(ctx, performErr != nil)
	if performErr == nil && finishErr != nil {
		performErr = finishErr
	}
	if notifySource {
		if finishErr == nil {
			m.recordSourceCPU(ctx)
		}
		m.confirm(ctx, m.cookie, finishErr != nil)
	}
	if performErr != nil {
		return nil, performErr
	}
	return m.incoming, nil
}

// finish runs Finish on the destination: cancelled stops the destination's QEMU.
func (m *Migration) finish(ctx context.Context, cancelled bool) error {
	c := int32(0)
	if cancelled {
		c = 1
	}
	dst := m.dest
	var ddom golibvirt.Domain
	defer m.timeStep("finish", time.Now())
	err := dst.call(ctx, 2*DefaultCallTimeout, "finish the migration of "+m.Source.Name, func() error {
		var err error
		ddom, m.cookie, err = dst.l.DomainMigrateFinish3Params(m.params, m.cookie, uint32(m.destFlags()), c)
		return err
	})
	if err == nil && !cancelled {
		if m.incoming == nil {
			m.incoming = &Domain{Conn: dst, Name: ddom.Name, Transient: m.Source.Transient}
		}
		m.incoming.d = ddom
	}
	return err
}

// recordSourceCPU reads the source domain's CPU time at the last moment it exists: Confirm
// ends its QEMU, and with it what virDomainGetInfo can tell.
func (m *Migration) recordSourceCPU(ctx context.Context) {
	info, err := m.Source.Info(ctx)
	m.mu.Lock()
	m.sourceCPU, m.sourceCPUErr = info.CPUTime, err
	m.mu.Unlock()
}

// SourceCPUTime is the source domain's CPU time recorded just before Confirm ended it; ok is
// false while the migration runs, after a failed one (the source still runs: ask it), and
// when it could not be read (err says why). A peer-to-peer migration records none: the
// source daemon runs Confirm itself, inside Perform.
func (m *Migration) SourceCPUTime() (d time.Duration, ok bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended.IsZero() || m.err != nil {
		return 0, false, nil
	}
	if m.opts.PeerToPeer {
		return 0, false, fmt.Errorf("libvirt: the CPU time of %s at the end of a peer-to-peer migration is not recorded (the source daemon ends it inside Perform)", m.Source.Name)
	}
	if m.sourceCPUErr != nil {
		return 0, false, fmt.Errorf("libvirt: CPU time of %s before Confirm: %w", m.Source.Name, m.sourceCPUErr)
	}
	return m.sourceCPU, true, nil
}

// confirm ends the migration job on the source: cancelled resumes the guest there,
// otherwise the source's copy is stopped.
func (m *Migration) confirm(ctx context.Context, cookie []byte, cancelled bool) {
	c := int32(0)
	if cancelled {
		c = 1
	}
	src := m.Source
	defer m.timeStep("confirm", time.Now())
	_ = src.Conn.call(ctx, 2*DefaultCallTimeout, "confirm the migration of "+src.Name, func() error {
		return src.Conn.l.DomainMigrateConfirm3Params(src.d, m.params, cookie, uint32(m.flags|m.protection), c)
	})
}
