// Package hv is the hypervisor driver interface the migration scenario (vm/migrate) runs
// over: boot a guest from a driver-neutral Spec, prepare and run the migration of a pair,
// poll its progress, pause, continue and stop guests, and read their diagnostics. Two
// drivers implement it: vm/hv/qemu (QEMU processes vmstorbench starts itself) and a libvirt
// driver (a transient domain defined from the Spec, virDomainMigrate3, job stats).
//
// The required interfaces are small, like one libvirt virHypervisorDriver table; what only
// some hypervisors can do is an optional interface found by type assertion (MemoryDumper,
// Processes, CPUTimer, Switchover, and in vm/hv/qemu the QMP handle), and a scenario option that
// needs a missing capability is refused with Unsupported before anything boots.
//
// Standard library only: the guest agent must not link any driver.
package hv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Driver is one hypervisor.
type Driver interface {
	// Name is the driver's name, recorded in results: "qemu", "libvirt".
	Name() string
	// Version is the hypervisor's version ("7.2.19"; libvirt: its QEMU's), "" if unknown.
	Version() string
	// Boot starts a guest from spec and returns once the hypervisor runs it (the guest's
	// agent may still be booting: dial AgentSocket and wait for its hello).
	Boot(ctx context.Context, spec Spec) (Guest, error)
	// Migrate prepares the migration of src to a destination described by dst and returns
	// the destination Guest: when it returns, the destination's hypervisor runs, receives
	// on p.Listen, and its AgentSocket accepts connections (the scenario connects to the
	// destination's agent before the guest moves, so that nothing the agent sends after
	// the switchover is lost). The transfer begins with Migration.Start.
	//
	// It is pair-level, not a verb of one guest, because libvirt starts the destination
	// itself. QEMU: the destination is started with -incoming defer, then
	// migrate-incoming. libvirt (go-libvirt speaks the RPC protocol, so the client can run
	// the v3 protocol steps itself, as virsh does for a non-peer-to-peer migration):
	// Migrate = DomainMigrateBegin3Params on the source + DomainMigratePrepare3Params on the
	// destination (which starts the destination QEMU, listening); Start =
	// DomainMigratePerform3Params, then DomainMigrateFinish3Params and
	// DomainMigrateConfirm3Params (the steps virDomainMigrate3 runs); Poll =
	// DomainGetJobStats.
	//
	// On error a non-nil Guest is returned when the destination was started: the caller
	// stops it.
	Migrate(ctx context.Context, src Guest, dst Spec, p Params) (Migration, Guest, error)
	// Supports says whether the driver's guests and migrations offer an optional
	// capability, so that a run refuses what needs it before anything boots.
	Supports(c Capability) bool
}

// Spec describes a guest driver-neutrally; each driver renders it (QEMU command line,
// libvirt domain XML).
type Spec struct {
	// Name is "source" or "destination": it names files, sockets and errors.
	Name string
	// Dir holds the guest's sockets and logs on this host; it exists, and its path is
	// short (unix socket paths are limited to 107 bytes).
	Dir string
	// Accel is "tcg" or "kvm".
	Accel     string
	MemoryMiB int
	CPUs      int
	// Kernel, Initrd and Cmdline boot the guest directly (guest.Image).
	Kernel  string
	Initrd  string
	Cmdline string
	// Disk is the guest's one disk (virtio, /dev/vda); nil for none.
	Disk *Disk
	// AgentPort is the virtio-serial port name the in-guest agent opens; the host end is a
	// unix socket, Guest.AgentSocket.
	AgentPort string
	// OnEvent, if not nil, receives the hypervisor's events with their arrival time. It is
	// called from the driver's reader and must not block.
	OnEvent func(Event)
}

// Disk is a guest disk, driver-neutral: a local image, vmstorbench's NBD export, or a
// network URL the hypervisor opens with its own driver.
type Disk struct {
	// File is a local path ("/var/tmp/x.img"), an NBD URL ("nbd://127.0.0.1:10809/vmdisk")
	// or the URL of a hypervisor's native network driver ("nfs://host/export/x.img?uid=0",
	// "iscsi://host:3260/iqn.2026-01.org.example:t/0").
	File string
	// Format is "raw" or "qcow2" ("" is raw).
	Format string
	// Direct bypasses the host page cache (cache=none), which shared storage needs for a
	// consistent view from both hosts.
	Direct bool
	// CopyOnRead writes what the guest reads from a backing image into the image (the
	// pull method's destination).
	CopyOnRead bool
	// Auth logs in to a network disk (iSCSI CHAP); nil for none.
	Auth *DiskAuth
}

// DiskAuth are the credentials of a network disk. The secret stays in a file (mode 0600)
// and reaches the hypervisor through its secret mechanism, never its command line.
type DiskAuth struct {
	User       string
	SecretFile string
}

// Params are the migration's settings.
type Params struct {
	// Mode is ModePrecopy, ModePostcopy or ModeStopcopy. Stop-and-copy is pre-copy of a
	// guest the caller paused first.
	Mode string
	// Security is SecurityNone, SecurityTLS or SecurityTLSVerify; TLS names the
	// credentials for the TLS levels.
	Security string
	TLS      *TLSFiles
	// MaxBandwidth is the stream's bandwidth limit in bytes/s (0: the hypervisor's default).
	MaxBandwidth int64
	// DowntimeLimit is the longest pause the hypervisor should aim for (0: its default).
	DowntimeLimit time.Duration
	// Listen is where the destination accepts the migration stream ("127.0.0.1:40123").
	Listen string
	// Paused keeps the destination paused after the stream has loaded, until
	// Guest.Continue (the memory check compares both sides first).
	Paused bool
	// PauseBeforeSwitchover stops the migration, guest paused and disk still active on the
	// source, in StatusPreSwitchover until Switchover.ContinueSwitchover (the storage
	// methods move the disk's last writes there). Only drivers with Switchover offer it.
	PauseBeforeSwitchover bool
}

// TLSFiles are the credential directories of a TLS migration: the server's (destination)
// holds ca-cert.pem, server-cert.pem and server-key.pem; the client's (source)
// ca-cert.pem, client-cert.pem and client-key.pem.
type TLSFiles struct {
	ServerDir, ClientDir string
}

// Migration modes and security levels (the values of vmstorbench's flags).
const (
	ModePrecopy  = "precopy"
	ModePostcopy = "postcopy"
	ModeStopcopy = "stopcopy"

	SecurityNone      = "none"            // plain TCP
	SecurityTLS       = "tls"             // TLS; the source checks the destination's certificate
	SecurityTLSVerify = "tls-verify-peer" // TLS; the destination checks the source's certificate too
)

// Guest is one running (or starting, or migrating-in) guest.
type Guest interface {
	// Name is the Spec's name.
	Name() string
	// AgentSocket is the host end of the agent's virtio-serial port (a unix socket); it
	// may not accept connections until the guest runs.
	AgentSocket() string
	// RAMBytes is the guest RAM the hypervisor gave it (can be less than Spec.MemoryMiB:
	// see vm/qemu's TCG shortfall).
	RAMBytes() int64
	// State is the guest's run state.
	State(ctx context.Context) (State, error)
	// Pause stops the vCPUs; Continue starts them again (also a destination kept paused).
	Pause(ctx context.Context) error
	Continue(ctx context.Context) error
	// Stop ends the guest politely (shut the hypervisor process down, undefine), then by
	// force; Kill ends it at once, after grace at most, for a hypervisor a fault may have
	// left unable to answer. Both are safe to call more than once.
	Stop() error
	Kill(grace time.Duration) error
	// Exited reports whether the guest's hypervisor process has ended; Done is closed
	// then, and ExitReason says how ("exit status 1", "signal: killed"), "" while it runs.
	Exited() bool
	Done() <-chan struct{}
	ExitReason() string
	// Log is the tail of the hypervisor's own log (for errors); ConsoleTail the last n
	// bytes of the guest's serial console.
	Log() string
	ConsoleTail(n int64) string
	// BlockStats are the guest disk's operation counts so far.
	BlockStats(ctx context.Context) (BlockStats, error)
}

// State is a guest's run state, in QEMU's run-state vocabulary, which libvirt's domain
// states map onto; states other than these constants pass through as the hypervisor
// names them.
type State string

const (
	StateRunning     State = "running"
	StatePaused      State = "paused"
	StateInMigrate   State = "inmigrate" // a destination still loading the incoming stream
	StatePostMigrate State = "postmigrate"
	StateError       State = "internal-error"
	StatePanicked    State = "guest-panicked"
	StateShutdown    State = "shutdown"
)

// Stopped reports whether the guest has stopped for good (error, panic, shutdown).
func (s State) Stopped() bool {
	return s == StateError || s == StatePanicked || s == StateShutdown
}

// BlockStats are a guest disk's operation counts.
type BlockStats struct {
	ReadOps, WriteOps, FlushOps int64
}

// Migration is one migration prepared by Driver.Migrate.
type Migration interface {
	// Start begins the transfer; the source connects to connectTo ("host:port": a relay
	// in front of Params.Listen, or "" for Listen itself).
	Start(ctx context.Context, connectTo string) error
	// Poll returns the migration's progress now.
	Poll(ctx context.Context) (Progress, error)
	// StartPostcopy switches a ModePostcopy migration to post-copy.
	StartPostcopy(ctx context.Context) error
	// Cancel stops the migration; the guest stays on the source.
	Cancel(ctx context.Context) error
}

// Progress is a migration's state and figures (QEMU's query-migrate; libvirt's
// virDomainGetJobStats).
type Progress struct {
	// Status is one of the Status constants, or another the hypervisor names.
	Status Status
	// Error is the hypervisor's reason when Status is StatusFailed.
	Error string
	// TotalTime is the time since the migration began; Downtime the guest's pause (set once
	// completed); ExpectedDowntime the hypervisor's estimate; SetupTime the time before
	// the first byte.
	TotalTime, Downtime, ExpectedDowntime, SetupTime time.Duration
	// HaveRAM says the RAM figures below are set.
	HaveRAM bool
	// Transferred, Remaining and Total are RAM bytes.
	Transferred, Remaining, Total int64
	// Iterations are the dirty-page sync passes; DirtyPagesRate pages/s; Mbps the rate.
	Iterations       int64
	DirtyPagesRate   int64
	Mbps             float64
	PostcopyRequests int64
	// NoFinalFigures, set on a completed migration, says why the hypervisor gave none of its
	// final figures (libvirt 9.0 records no completed job after most post-copy
	// migrations): only Status and TotalTime (measured by the driver) are set, and the
	// zero Downtime, SetupTime and RAM figures are unknown, not measured.
	NoFinalFigures string
}

// Status is a migration's state.
type Status string

const (
	StatusSetup         Status = "setup"
	StatusActive        Status = "active"
	StatusPostcopy      Status = "postcopy-active"
	StatusPreSwitchover Status = "pre-switchover"
	StatusCompleted     Status = "completed"
	StatusFailed        Status = "failed"
	StatusCancelled     Status = "cancelled"
)

// Event is an asynchronous hypervisor event with the host time it arrived. Names are
// QEMU's QMP event names ("STOP", "RESUME", "MIGRATION", "BLOCK_IO_ERROR", ...); a driver
// whose hypervisor reports otherwise maps what it can onto them (libvirt lifecycle
// suspended → "STOP", resumed → "RESUME"), so the scenario times the guest's pause the same
// way. Data is the event's JSON payload.
type Event struct {
	Name     string
	Data     json.RawMessage
	Received time.Time
}

// Capability names an optional capability (Driver.Supports).
type Capability string

const (
	// CapMemoryDump: guests are MemoryDumpers (--check-memory).
	CapMemoryDump Capability = "memory dump"
	// CapSwitchover: migrations are Switchovers (Params.PauseBeforeSwitchover).
	CapSwitchover Capability = "pause before switchover"
	// CapBlockJobs: the driver's guests expose the hypervisor's block jobs (QEMU's QMP, see
	// vm/hv/qemu.QEMUGuest): the storage methods copy, two-phase, mirror and pull.
	CapBlockJobs Capability = "block jobs"
)

// Require returns Unsupported(d, what) unless d supports c.
func Require(d Driver, c Capability, what string) error {
	if d.Supports(c) {
		return nil
	}
	return Unsupported(d, what)
}

// Optional capabilities, found by type assertion.

// MemoryDumper is a Guest that can save its RAM to a file (the memory check).
type MemoryDumper interface {
	DumpMemory(ctx context.Context, path string, size int64) error
}

// Processes is a Guest whose hypervisor process runs on this host (its CPU time is
// measured).
type Processes interface {
	PID() int
}

// CPUTimer is a Guest whose hypervisor reports the CPU time its process has used, wherever
// it runs (libvirt's virDomainGetInfo). A guest that has migrated away reports the value
// its driver recorded last, just before the hypervisor ended it.
type CPUTimer interface {
	CPUTime(ctx context.Context) (time.Duration, error)
}

// Switchover is a Migration that can hold in StatusPreSwitchover
// (Params.PauseBeforeSwitchover) and go on when told.
type Switchover interface {
	ContinueSwitchover(ctx context.Context) error
}

// ErrUnsupported is wrapped by the errors of Unsupported.
var ErrUnsupported = errors.New("not supported")

// Unsupported is the error for what a driver cannot do: "--check-memory is not supported by
// the libvirt driver".
func Unsupported(d Driver, what string) error {
	return fmt.Errorf("%s is %w by the %s driver", what, ErrUnsupported, d.Name())
}
