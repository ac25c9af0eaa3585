// Package migrate is the live-migration scenario: boot the guest on a source QEMU with its
// disk on the backend under test, start the workload in the guest, migrate the guest to a
// destination QEMU while it runs (pre-copy, post-copy or stop-and-copy; plain TCP or TLS;
// optionally through an emulated LAN/WAN link), keep running after, check the data from the
// destination, and put everything measured into one result document.
package migrate

import (
	"errors"
	"fmt"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Migration modes (hv's: the drivers take them as they are).
const (
	ModePrecopy  = hv.ModePrecopy
	ModePostcopy = hv.ModePostcopy
	ModeStopcopy = hv.ModeStopcopy
	// ModeNone runs the workload in the guest without migrating it: the baseline.
	ModeNone = "none"
)

// Outcomes.
const (
	OutcomeCompleted = "completed"
	OutcomeCancelled = "cancelled"
	OutcomeFailed    = "failed"
	OutcomeNone      = "not migrated"
)

// Config is one migration run.
type Config struct {
	Image *guest.Image
	// Driver runs the guests and the migration; nil is the QEMU driver (vm/hv/qemu) over
	// the binary QEMU.
	Driver hv.Driver
	// QEMU is the qemu-system-x86_64 binary of the default driver ("" finds it).
	QEMU string
	// Accel is "auto" (KVM if a quick boot check passes, else TCG), "kvm" or "tcg".
	Accel string
	// KVMBootCheck bounds the KVM boot check of Accel "auto" (default 4 s).
	KVMBootCheck time.Duration
	// CacheDir remembers the KVM probe's verdict (optional).
	CacheDir  string
	MemoryMiB int
	CPUs      int

	// Disk is the VM's disk (see OpenDisk); the scenario does not close it.
	Disk *Disk
	// Replica, with DestDisk, runs the VM on a replicated disk (replica.go): the source
	// QEMU opens Disk, the destination QEMU DestDisk (the other host's replica), and
	// Replica switches the replicas' roles around the migration.
	Replica  Replica
	DestDisk *Disk
	// Workload runs in the guest on its disk. The scenario makes it time-based, direct and
	// (when it writes fixed-size blocks, unless NoVerify) verified.
	Workload workloads.Workload
	NoVerify bool
	// Window is the width of the host-side time windows (default 100 ms).
	Window time.Duration
	// NoStream runs the workload without streaming its completions to the host (no host
	// timeline then): only to measure what streaming costs the guest.
	NoStream bool
	// FlushEvery is how often the agent sends its batch of completions (default 10 ms): the
	// resolution of stalls measured on the host.
	FlushEvery time.Duration

	Mode string
	// At is how long the workload runs before the migration starts (default 3 s), After how
	// long it keeps running once the migration has ended (default 3 s).
	At    time.Duration
	After time.Duration
	// PostcopyAfter switches a post-copy migration to post-copy this long after it started;
	// PostcopyIterations after this many dirty-sync iterations instead (whichever comes
	// first when both are set; default: after 1 iteration).
	PostcopyAfter      time.Duration
	PostcopyIterations int
	// MaxBandwidth (bytes/s) and DowntimeLimit are QEMU's migration parameters (0: QEMU's
	// defaults).
	MaxBandwidth  int64
	DowntimeLimit time.Duration
	// Deadline cancels a migration that has not completed this long after it started
	// (default 60 s); the guest keeps running on the source.
	Deadline time.Duration

	// Security is SecurityNone, SecurityTLS or SecurityTLSVerify.
	Security string
	// Link, if set, emulates the network between source and destination.
	Link *linkemu.Link
	// StorageLink, if set, emulates the network between both hypervisors and the storage
	// (disks QEMU reaches over one TCP connection: the NBD export, iSCSI).
	StorageLink *linkemu.Link
	// OutsideTarget, if set, is a backend URL the host runs the same workload against while
	// the guest runs it ("inside and outside"), opened with OutsideOpen.
	OutsideTarget string
	OutsideOpen   backends.OpenParams
	// Storage is how the disk gets to the destination: StorageShared (default: both QEMUs
	// open the same image), StorageCopy, StorageTwoPhase or StorageMirror.
	Storage string
	// To is where the destination's image goes for a method that moves the disk: a backend
	// URL, an image or a directory (a new image is made in it); "" is a new image in a
	// scratch directory, removed afterwards. ToOptions open it (Size is the source's).
	To        string
	ToOptions DiskOptions
	// DiskLink shapes the disk stream between the hypervisors (nil: the same shape as Link;
	// both nil: an unshaped relay that only counts the bytes). It is a link of its own: the
	// RAM stream's link does not share its bandwidth.
	DiskLink *linkemu.Link
	// MirrorCopyMode is drive-mirror's copy-mode: "background" (QEMU's default: new writes
	// are marked dirty and copied later, in chunks of the mirror's granularity, 64 KiB for a
	// raw image) or "write-blocking" (once a region is copied, a guest write to it completes
	// only when the target has it too). Background never converges when the guest dirties
	// chunks faster than the link moves them: 4 KiB random writes over the WAN preset did not
	// in 30 s.
	MirrorCopyMode string
	// NoImageCheck skips comparing the destination image with the source's at switchover
	// (the comparison keeps the VM stopped; its time is reported and left out of the
	// disruption time, but the guest's longest stall includes it).
	NoImageCheck bool
	// WattsPerCore is the power of one busy logical CPU for the energy estimate (default
	// DefaultWattsPerCore).
	WattsPerCore float64
	// CheckMemory starts the destination paused and compares guest RAM of both sides before
	// it continues (pre-copy and stop-and-copy only).
	CheckMemory bool

	// Progress receives live status lines (may be nil); Logf diagnostics (may be nil).
	Progress func(Status)
	Logf     func(format string, args ...any)
	// Labels, Profile and Command are copied into the result.
	Labels  map[string]string
	Profile string
	Command []string

	// validateOnly: Validate's check, without the image and the disk.
	validateOnly bool
	// linkTap, set by tests, puts a relay of theirs between an emulated link and its
	// upstream, so that they see what crosses the link: it returns the address the link
	// then forwards to.
	linkTap func(link, upstream string) (string, error)
}

// Status is the live state shown on the terminal.
type Status struct {
	Phase string // "booting", "warming", "migrating", "after", "checking", "done"
	// Percent is the migration's progress (RAM transferred / total), -1 when unknown.
	Percent float64
	// IOPS is the guest's completion rate over the last second (host time).
	IOPS   float64
	Detail string
}

// Validate checks the choices that need neither the guest image nor the disk (mode,
// storage method, security, their combinations), so that a command refuses a combination
// QEMU or the mode cannot do before it builds, opens or starts anything.
func (c Config) Validate() error {
	c.validateOnly = true
	return c.defaults()
}

func (c *Config) defaults() error {
	if c.Image == nil && !c.validateOnly {
		return errors.New("migrate: no guest image")
	}
	if c.Disk == nil && !c.validateOnly {
		return errors.New("migrate: no disk")
	}
	if c.Accel == "" {
		c.Accel = "auto"
	}
	switch c.Accel {
	case "auto", "kvm", "tcg":
	default:
		return fmt.Errorf("--accel %q: must be auto, kvm or tcg", c.Accel)
	}
	if c.KVMBootCheck <= 0 {
		c.KVMBootCheck = 4 * time.Second
	}
	if c.MemoryMiB <= 0 {
		c.MemoryMiB = 256
	}
	if c.CPUs <= 0 {
		c.CPUs = 1
	}
	if c.Window <= 0 {
		c.Window = 100 * time.Millisecond
	}
	if c.Mode == "" {
		c.Mode = ModePrecopy
	}
	switch c.Mode {
	case ModePrecopy, ModePostcopy, ModeStopcopy, ModeNone:
	default:
		return fmt.Errorf("--mode %q: must be precopy, postcopy, stopcopy or none", c.Mode)
	}
	if c.At <= 0 {
		c.At = 3 * time.Second
	}
	if c.After <= 0 {
		c.After = 3 * time.Second
	}
	if c.Deadline <= 0 {
		c.Deadline = 60 * time.Second
	}
	if c.Mode == ModePostcopy && c.PostcopyAfter <= 0 && c.PostcopyIterations <= 0 {
		c.PostcopyIterations = 1
	}
	if c.Security == "" {
		c.Security = SecurityNone
	}
	switch c.Security {
	case SecurityNone, SecurityTLS, SecurityTLSVerify:
	default:
		return fmt.Errorf("--security %q: must be none, tls or tls-verify-peer", c.Security)
	}
	if c.CheckMemory && c.Mode == ModePostcopy {
		return errors.New("--check-memory needs the destination paused until the end, which post-copy cannot do: use precopy or stopcopy")
	}
	if c.MaxBandwidth < 0 || c.DowntimeLimit < 0 {
		return errors.New("max-bandwidth and downtime-limit must not be negative")
	}
	if c.WattsPerCore < 0 {
		return fmt.Errorf("--watts-per-core %g: must not be negative", c.WattsPerCore)
	}
	if c.WattsPerCore == 0 {
		c.WattsPerCore = DefaultWattsPerCore
	}
	switch c.MirrorCopyMode {
	case "":
		c.MirrorCopyMode = "background"
	case "background", "write-blocking":
	default:
		return fmt.Errorf("--mirror-copy-mode %q: must be background or write-blocking", c.MirrorCopyMode)
	}
	if err := c.checkStorage(); err != nil {
		return err
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// guestWorkload is the workload as the guest runs it: on the whole disk (or the region the
// user gave), direct, time-based with a runtime long enough for the whole scenario (the
// host stops it), and verified when its blocks allow it.
func (c *Config) guestWorkload(diskSize int64) (workloads.Workload, string, error) {
	w := c.Workload.Defaults()
	w.Filename = ""
	w.Direct = true
	w.TimeBased = true
	w.RampTime = 0
	w.Runtime = c.At + c.Deadline + c.After + 5*time.Minute
	if diskSize > 0 {
		if w.Offset >= diskSize {
			return w, "", fmt.Errorf("offset %d is beyond the %d-byte disk", w.Offset, diskSize)
		}
		if w.Size == 0 || w.Offset+w.Size > diskSize {
			w.Size = diskSize - w.Offset
		}
	}
	note := ""
	if w.Writes() && !c.NoVerify && w.Verify == "" {
		if w.BS[workloads.Read] == w.BS[workloads.Write] && w.BS[workloads.Read].Min == w.BS[workloads.Read].Max && w.BS[workloads.Read].Min >= 512 {
			w.Verify = "crc32c"
		} else {
			note = "integrity not checked: verify needs one fixed block size (the workload uses " + w.BS[workloads.Read].String() + "," + w.BS[workloads.Write].String() + ")"
		}
	}
	if !w.Writes() {
		note = "integrity: the workload only reads, nothing to check"
	}
	if err := w.Validate(); err != nil {
		return w, "", err
	}
	return w, note, nil
}

// supportedBy refuses, before anything boots, what the scenario would need of the driver
// that it does not offer.
func (c *Config) supportedBy(d hv.Driver) error {
	if c.CheckMemory {
		if err := hv.Require(d, hv.CapMemoryDump, "--check-memory"); err != nil {
			return err
		}
	}
	if c.Storage != "" && c.Storage != StorageShared {
		if err := hv.Require(d, hv.CapBlockJobs, "--storage "+c.Storage); err != nil {
			return err
		}
	}
	if c.Mode != ModeNone && (c.Storage == StorageMirror || c.Storage == StorageTwoPhase) {
		if err := hv.Require(d, hv.CapSwitchover, "--storage "+c.Storage); err != nil {
			return err
		}
	}
	return nil
}
