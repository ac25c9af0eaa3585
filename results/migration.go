package results

import "fmt"

// Migration is what a live-migration run measured: the guest ran the workload on its
// virtual disk (which lives on the backend under test) while QEMU migrated it from a source
// to a destination process. Times (*_ns fields and T offsets) are host time since the
// workload was started in the guest; the guest's own clock is not used for any of them,
// because it stops or stretches while the guest is paused. It is set on Run.Migration.
type Migration struct {
	// Mode is "precopy", "postcopy" or "stopcopy".
	Mode string `json:"mode"`
	// Outcome is "completed", "cancelled" (the deadline passed: the source kept running) or
	// "failed".
	Outcome string `json:"outcome"`
	// Failure names what failed, when the migration failed or the run ended early: the
	// first cause by time among the evidence vmstorbench saw (a QEMU exiting with its
	// stderr tail, QEMU's block I/O errors, the NBD export's backend errors, the storage
	// server refusing connections, QEMU's migration error): "destination QEMU exited at
	// 3.2 s (signal: killed): …". Empty when nothing failed.
	Failure string `json:"failure,omitempty"`
	// Accel is the accelerator that ran the guests ("kvm" or "tcg"); AccelNote says why
	// (e.g. KVM tried and unusable).
	Accel     string `json:"accel"`
	AccelNote string `json:"accel_note,omitempty"`
	// Hypervisor is the driver that ran the guests ("qemu": QEMU processes vmstorbench
	// started; "libvirt"); QEMU the version of the QEMU that ran them (the field keeps its
	// name for older documents).
	Hypervisor string `json:"hypervisor,omitempty"`
	QEMU       string `json:"qemu_version,omitempty"`
	// Guest is the guest's kernel release, memory and vCPUs. The memory is what QEMU gave
	// the guest: under TCG 8 KiB less than asked (see qemu.Config.RAMBytes).
	GuestKernel  string `json:"guest_kernel,omitempty"`
	GuestMemoryB int64  `json:"guest_memory_bytes"`
	GuestCPUs    int    `json:"guest_cpus"`
	// Access is how QEMU reached the disk image: "file", "nfs (QEMU libnfs)",
	// "iscsi (QEMU libiscsi)", "nbd-export (smb)" (an NBD export inside vmstorbench serving
	// the backend), ...
	Access string `json:"access"`
	// DiskURL is what QEMU opened (no credentials).
	DiskURL string `json:"disk_url"`
	// Security is "none", "tls" (x509, server certificate checked) or "tls-verify-peer"
	// (client certificates checked too).
	Security string `json:"security"`
	// Link is the emulated network between the hypervisors; nil for direct loopback.
	Link   *MigrationLink  `json:"link,omitempty"`
	Params MigrationParams `json:"params"`

	// BootNS is from starting the source QEMU to the agent's hello.
	BootNS int64 `json:"boot_ns"`
	// StartNS and EndNS bound the migration: the migrate command (for stopcopy the stop)
	// and completion (for stopcopy the cont on the destination), or cancellation.
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
	// SwitchoverNS is when post-copy was started (postcopy only).
	SwitchoverNS int64 `json:"switchover_ns,omitempty"`

	// Downtime seen two ways. QEMUDowntimeMS is QEMU's own figure (query-migrate "downtime").
	// PauseMS is the pause as seen on the host: source STOP event to destination RESUME
	// event (for stopcopy: stop command to cont on the destination). LongestStallMS is the
	// longest gap between two completions of the guest's workload during the migration, as
	// timestamped on the host, less the time vmstorbench itself held the guest paused inside
	// that gap for its checks (CheckPauseMS): a --check-memory comparison over a WAN link
	// holds the destination for seconds, which would otherwise hide the real stall.
	// LongestStall is the whole gap as seen.
	//
	// QEMUDowntimeUnknown, when set, says why the hypervisor gave no downtime (libvirt 9.0
	// records no completed job after most post-copy migrations): QEMUDowntimeMS is then 0
	// and means nothing; every table, chart and aggregate shows it as unknown.
	QEMUDowntimeMS      float64 `json:"qemu_downtime_ms"`
	QEMUDowntimeUnknown string  `json:"qemu_downtime_unknown,omitempty"`
	PauseMS             float64 `json:"pause_ms"`
	LongestStallMS      float64 `json:"longest_stall_ms"`
	LongestStall        *Stall  `json:"longest_stall,omitempty"`
	// CheckPauseMS is how long vmstorbench's own checks (memory comparison, image check)
	// held the guest paused during the migration, reported on its own.
	CheckPauseMS float64 `json:"check_pause_ms,omitempty"`
	// DowntimeLimitExceeded flags QEMU's downtime (QEMUDowntimeMS) above the downtime-limit
	// in force (Params.DowntimeLimitMS, or QEMU's default 300 ms), pre-copy and post-copy.
	DowntimeLimitExceeded bool    `json:"downtime_limit_exceeded,omitempty"`
	TotalTimeMS           float64 `json:"total_time_ms"`
	SetupTimeMS           float64 `json:"setup_time_ms"`
	TransferredB          int64   `json:"transferred_bytes"`
	DirtySyncCount        int64   `json:"dirty_sync_count"`
	PostcopyReqs          int64   `json:"postcopy_requests,omitempty"`
	// RAMFigures says where SetupTimeMS, TransferredB, DirtySyncCount and PostcopyReqs come
	// from: "" the hypervisor's final figures; RAMFiguresLastPoll the last sample polled
	// while the migration ran (the hypervisor gave no final ones: a lower bound, counting
	// up to that poll only); RAMFiguresUnknown none at all (the zeros mean nothing).
	RAMFigures string `json:"ram_figures,omitempty"`

	// Before, During and After summarise the workload in the three periods (host time).
	Before *MigrationPhase `json:"before,omitempty"`
	During *MigrationPhase `json:"during,omitempty"`
	After  *MigrationPhase `json:"after,omitempty"`

	// WindowNS is the width of Windows (100 ms).
	WindowNS int64             `json:"window_ns"`
	Windows  []MigrationWindow `json:"windows"`
	// Samples is query-migrate polled every 50 ms on the source.
	Samples []MigrationSample `json:"samples"`
	// Events are QMP events of both QEMUs (STOP, RESUME, MIGRATION status changes...).
	Events []MigrationEvent `json:"events,omitempty"`

	Integrity *MigrationIntegrity `json:"integrity,omitempty"`
	Memory    *MemoryCheck        `json:"memory,omitempty"`

	// Outside is the same workload run at the same time by the host itself against another
	// file or LUN of the backend ("inside and outside"); OutsideStartNS is when it started
	// on the migration's timeline. StorageLink is the emulated link between the hypervisors
	// and the storage, if any.
	Outside        *Run           `json:"outside,omitempty"`
	OutsideStartNS int64          `json:"outside_start_ns,omitempty"`
	StorageLink    *MigrationLink `json:"storage_link,omitempty"`

	// Storage is how the disk reached the destination: "shared" (both QEMUs open the same
	// image), "copy" (the VM stopped while the whole image is streamed), "two-phase" (copied
	// live, then the changed blocks found by checksums across the link and sent while the VM
	// is stopped), "mirror" (QEMU mirrors the disk to the destination's NBD export while the
	// VM runs) or "pull" (the destination runs at once on a copy-on-read overlay backed by
	// the source over NBD and streams the rest). Empty in results older than this field:
	// shared.
	Storage string `json:"storage,omitempty"`
	// DestinationDisk is the destination's image for every method but shared (no
	// credentials), DestinationAccess how QEMU opens it.
	DestinationDisk   string `json:"destination_disk,omitempty"`
	DestinationAccess string `json:"destination_access,omitempty"`
	// DiskStreamSecurity is how the disk stream between the hypervisors was protected when
	// the disk moved (copy, two-phase, mirror, pull): "tls" or "tls-verify-peer" (encrypted with
	// the RAM stream's x509 credentials), or "none". Empty for shared storage, for a disk
	// move without migration (no stream between hypervisors), and in older results.
	DiskStreamSecurity string `json:"disk_stream_security,omitempty"`
	// MirrorCopyMode is the mirror's copy-mode, "background" or "write-blocking" (mirror
	// only).
	MirrorCopyMode string `json:"mirror_copy_mode,omitempty"`
	// MigrationTimeMS is from the command (StartNS) until the destination no longer needs
	// the source: the migration completed and, for pull, the disk stream ended.
	MigrationTimeMS float64 `json:"migration_time_ms"`
	// DisruptionMS is how long the VM ran nowhere: the source's STOP event (or vmstorbench's
	// stop command) to the destination's RESUME event, less the pauses of vmstorbench's own
	// checks (MemoryCheck.PauseNS, ImageCheck.PauseNS), which a real migration would not
	// have. Next to QEMUDowntimeMS (QEMU's own figure) and LongestStallMS (seen in the guest).
	DisruptionMS float64 `json:"disruption_ms"`
	// Phases are the stages of the migration on the timeline: "disk-bulk-copy",
	// "disk-deltas", "disk-final-sync", "ram-precopy", "downtime", "postcopy", "disk-pull".
	// They may overlap (a mirror keeps copying during the RAM pre-copy).
	Phases []MigrationSpan `json:"phases,omitempty"`
	// Traffic is what each emulated link or counting relay carried, counted where the bytes
	// pass: "ram" (the migration stream), "disk" (the disk stream between the hypervisors),
	// "storage" (hypervisors to the storage). Links without a relay are not listed.
	Traffic []LinkTraffic `json:"traffic,omitempty"`
	// DiskTransferredB is the disk stream's bytes in both directions (Traffic "disk").
	DiskTransferredB int64 `json:"disk_transferred_bytes,omitempty"`
	// Replication is set when the disk is replicated between the hypervisors (DRBD): the
	// roles around the migration and the replication traffic next to Traffic's.
	Replication *MigrationReplication `json:"replication,omitempty"`
	// Cost is the CPU time the migration took and an energy estimate from it.
	Cost *MigrationCost `json:"cost,omitempty"`
	// ImageCheck compares the destination's image with the source's, block by block, at
	// switchover (non-shared methods).
	ImageCheck *ImageCheck `json:"image_check,omitempty"`
	// GuestOn is where the guest runs at the end: "destination", or "source" when the
	// migration did not complete (the VM kept running there), or "source, on the
	// destination image" after a disk move without migration (mode none, mirror).
	GuestOn string `json:"guest_on,omitempty"`

	// Completions is how many completions the host received; DroppedCompletions how many
	// the guest could not send.
	Completions        int64    `json:"completions"`
	DroppedCompletions int64    `json:"dropped_completions,omitempty"`
	Notes              []string `json:"notes,omitempty"`

	// Libvirt is set for runs under libvirt: the daemons, versions, domain, what was
	// measured, and libvirt's completed-job figures.
	Libvirt *MigrationLibvirt `json:"libvirt,omitempty"`
}

// MigrationLink is the emulated link between source and destination.
type MigrationLink struct {
	Preset       string `json:"preset,omitempty"`
	LatencyNS    int64  `json:"latency_ns"`
	JitterNS     int64  `json:"jitter_ns"`
	BandwidthBps int64  `json:"bandwidth_bytes_per_s"`
}

// MigrationParams are the migration's settings.
type MigrationParams struct {
	// MaxBandwidthBps is QEMU's max-bandwidth (0: QEMU's default).
	MaxBandwidthBps int64 `json:"max_bandwidth_bytes_per_s,omitempty"`
	// DowntimeLimitMS is QEMU's downtime-limit (0: QEMU's default, 300 ms).
	DowntimeLimitMS int64 `json:"downtime_limit_ms,omitempty"`
	// DeadlineNS is when an unconverged migration is cancelled.
	DeadlineNS int64 `json:"deadline_ns"`
	// AtNS is how long the workload ran before the migration started; AfterNS how long it
	// ran after it ended.
	AtNS    int64 `json:"at_ns"`
	AfterNS int64 `json:"after_ns"`
	// PostcopyAfterNS / PostcopyIterations: when post-copy was switched on.
	PostcopyAfterNS    int64 `json:"postcopy_after_ns,omitempty"`
	PostcopyIterations int   `json:"postcopy_iterations,omitempty"`
}

// Stall is a gap in the guest's completions.
type Stall struct {
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`
}

// MigrationPhase summarises the workload over one period, from host timestamps (latency
// figures are the guest's own measurements of each I/O).
type MigrationPhase struct {
	StartNS        int64   `json:"start_ns"`
	EndNS          int64   `json:"end_ns"`
	IOs            int64   `json:"ios"`
	Bytes          int64   `json:"bytes"`
	Errors         int64   `json:"errors,omitempty"`
	IOPS           float64 `json:"iops"`
	BWBps          float64 `json:"bw_bytes_per_s"`
	LatMeanNS      float64 `json:"lat_mean_ns"`
	LatP99NS       int64   `json:"lat_p99_ns"`
	LatMaxNS       int64   `json:"lat_max_ns"`
	LongestStallNS int64   `json:"longest_stall_ns"`
}

// MigrationWindow is one window of the host-timestamped completions. TNS is the window's
// end.
type MigrationWindow struct {
	TNS       int64   `json:"t_ns"`
	IOs       int64   `json:"ios"`
	Bytes     int64   `json:"bytes"`
	Errors    int64   `json:"errors,omitempty"`
	IOPS      float64 `json:"iops"`
	BWBps     float64 `json:"bw_bytes_per_s"`
	LatMeanNS float64 `json:"lat_mean_ns"`
	LatP50NS  int64   `json:"lat_p50_ns"`
	LatP99NS  int64   `json:"lat_p99_ns"`
	LatMaxNS  int64   `json:"lat_max_ns"`
}

// MigrationSample is one query-migrate reply.
type MigrationSample struct {
	TNS                int64   `json:"t_ns"`
	Status             string  `json:"status"`
	TotalTimeMS        int64   `json:"total_time_ms,omitempty"`
	DowntimeMS         int64   `json:"downtime_ms,omitempty"`
	ExpectedDowntimeMS int64   `json:"expected_downtime_ms,omitempty"`
	SetupTimeMS        int64   `json:"setup_time_ms,omitempty"`
	TransferredB       int64   `json:"transferred_bytes,omitempty"`
	RemainingB         int64   `json:"remaining_bytes,omitempty"`
	TotalB             int64   `json:"total_bytes,omitempty"`
	DirtySyncCount     int64   `json:"dirty_sync_count,omitempty"`
	DirtyPagesRate     int64   `json:"dirty_pages_rate,omitempty"`
	Mbps               float64 `json:"mbps,omitempty"`
	PostcopyRequests   int64   `json:"postcopy_requests,omitempty"`
}

// MigrationEvent is one QMP event, timestamped on arrival at the host.
type MigrationEvent struct {
	TNS    int64  `json:"t_ns"`
	Side   string `json:"side"`
	Name   string `json:"event"`
	Detail string `json:"detail,omitempty"`
}

// MigrationIntegrity is the data check after the migration: the guest, now on the
// destination (or still on the source when the migration was cancelled), read the whole
// region back and checked every block's header and checksum.
type MigrationIntegrity struct {
	// Where is "destination" or "source".
	Where string `json:"where"`
	// ReadBack is the read-back check; Workload is the engine's own verify pass at the end
	// of the workload (nil when the workload was ended before it could run one).
	ReadBack *Verify `json:"read_back,omitempty"`
	Workload *Verify `json:"workload,omitempty"`
	Note     string  `json:"note,omitempty"`
}

// MemoryCheck compares guest RAM of source and destination (pmemsave of both, destination
// still paused) after the migration.
type MemoryCheck struct {
	PageSize       int64   `json:"page_size"`
	Pages          int64   `json:"pages"`
	DifferingPages int64   `json:"differing_pages"`
	FirstAddresses []int64 `json:"first_differing_addresses,omitempty"`
	// PauseNS is how long the check kept the guest paused (added to its downtime).
	PauseNS int64 `json:"pause_ns"`
}

// MigrationSpan is one stage of a migration on the run's timeline (host time since the
// workload started).
type MigrationSpan struct {
	Name    string `json:"name"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	// Bytes is what the stage moved, when known (the disk stages).
	Bytes int64 `json:"bytes,omitempty"`
}

// LinkTraffic is the bytes one link carried during the run, counted on the link.
type LinkTraffic struct {
	// Link is "ram", "disk" or "storage"; Shape the emulated link's preset ("" unshaped:
	// a counting relay only).
	Link  string `json:"link"`
	Shape string `json:"shape,omitempty"`
	// UpB is from the side that connects to the side that listens, DownB back: for "ram"
	// and "disk" the source's QEMU (or vmstorbench's copy sender) to the destination,
	// except for pull, where the destination reads from the source's export (the data is
	// DownB); for "storage" the hypervisors to the storage server.
	UpB   int64 `json:"up_bytes"`
	DownB int64 `json:"down_bytes"`
}

// Where a migration's RAM figures come from (Migration.RAMFigures).
const (
	RAMFiguresLastPoll = "last-poll"
	RAMFiguresUnknown  = "unknown"
)

// QEMUDowntimeKnown reports whether QEMUDowntimeMS is the hypervisor's figure.
func (m *Migration) QEMUDowntimeKnown() bool { return m.QEMUDowntimeUnknown == "" }

// QEMUDowntimeText is QEMU's downtime for tables, "412 ms", or "unknown".
func (m *Migration) QEMUDowntimeText() string {
	if !m.QEMUDowntimeKnown() {
		return "unknown"
	}
	return fmt.Sprintf("%.0f ms", m.QEMUDowntimeMS)
}

// RAMFigureText is one of the RAM figures formatted as s, for tables: "unknown" when the
// hypervisor gave none, marked as a lower bound when it is the last poll's.
func (m *Migration) RAMFigureText(s string) string {
	switch m.RAMFigures {
	case RAMFiguresUnknown:
		return "unknown"
	case RAMFiguresLastPoll:
		return s + " (last poll: lower bound)"
	}
	return s
}

// The processes of MigrationCost.Unmeasured.
const (
	CostSource      = "source"
	CostDestination = "destination"
	CostHelpers     = "helpers"
)

// CPUText is the CPU-seconds v of process name ("1.27"), or "unmeasured".
func (c *MigrationCost) CPUText(name string, v float64) string {
	if _, ok := c.Unmeasured[name]; ok {
		return "unmeasured"
	}
	return fmt.Sprintf("%.2f", v)
}

// MigrationCost is what the migration cost in CPU, measured from /proc/PID/stat (user +
// system time; libvirt's virDomainGetInfo for a QEMU under libvirt) between the migration's start and its end (MigrationTimeMS), and an energy
// estimate derived from it.
type MigrationCost struct {
	// WallNS is the interval measured.
	WallNS int64 `json:"wall_ns"`
	// CPU-seconds of the source QEMU, the destination QEMU and vmstorbench's helpers: its own
	// process (link emulators, NBD exports, copy streams, its bookkeeping) and the processes
	// it starts for the run (the mirror's qemu-nbd, over its whole life).
	// Each QEMU includes running the guest (TCG emulates it on the host's CPU).
	SourceCPUS      float64 `json:"source_cpu_s"`
	DestinationCPUS float64 `json:"destination_cpu_s"`
	HelpersCPUS     float64 `json:"helpers_cpu_s"`
	TotalCPUS       float64 `json:"total_cpu_s"`
	// Unmeasured names the processes whose CPU time could not be had (CostSource,
	// CostDestination, CostHelpers) with why: their figure above is 0 and means nothing,
	// and TotalCPUS and the energy estimate cover the measured processes only.
	Unmeasured map[string]string `json:"unmeasured,omitempty"`
	// WattsPerCore is the assumed power of one busy core; EnergyJ = TotalCPUS × WattsPerCore.
	// An estimate, not a measurement: no power meter is read.
	WattsPerCore     float64 `json:"watts_per_core"`
	EnergyEstimateJ  float64 `json:"energy_estimate_j"`
	EnergyEstimateOf string  `json:"energy_estimate_basis"`
}

// ImageCheck is the destination image compared with the source image block by block.
type ImageCheck struct {
	// When is "switchover" (both images final, the VM stopped) or another moment named.
	When      string `json:"when"`
	BlockSize int64  `json:"block_size"`
	Blocks    int64  `json:"blocks"`
	// DifferingBlocks counts the blocks whose contents differ; Differing lists their
	// offsets (the first maxima; all of them are counted).
	DifferingBlocks int64   `json:"differing_blocks"`
	Differing       []int64 `json:"differing_offsets,omitempty"`
	// PauseNS is how long the check kept the VM stopped (not counted in DisruptionMS).
	PauseNS int64  `json:"pause_ns"`
	Error   string `json:"error,omitempty"`
}
