package results

// MigrationLibvirt is what a migration run under libvirt adds to its Migration: where it ran
// (the daemons' URIs, redacted, and hosts), with what (versions, the domain), what was
// measured, and libvirt's own figures of the completed job (virDomainGetJobStats on the
// destination), beside QEMU's that the common fields hold.
type MigrationLibvirt struct {
	// SourceURI and DestURI are the daemons' URIs without credentials.
	SourceURI string `json:"source_uri"`
	DestURI   string `json:"dest_uri"`
	// SourceHost and DestHost are the hypervisors' host names as libvirt reports them.
	SourceHost string `json:"source_host,omitempty"`
	DestHost   string `json:"dest_host,omitempty"`
	// LibvirtVersion and DestLibvirtVersion are the daemons' versions; the QEMU version is
	// Migration.QEMU (the source's) and DestQEMU.
	LibvirtVersion     string `json:"libvirt_version"`
	DestLibvirtVersion string `json:"dest_libvirt_version,omitempty"`
	DestQEMU           string `json:"dest_qemu_version,omitempty"`
	// Domain is the existing domain measured ("" for a transient domain vmstorbench
	// defined from its guest image).
	Domain string `json:"domain,omitempty"`
	// Measured is MeasuredAgent (the in-guest agent ran the workload and streamed it) or
	// MeasuredHostOnly (the domain has no agent channel: libvirt's job statistics and the
	// outside workload only).
	Measured string `json:"measured"`
	// Flags are the migration flags used ("live", "peer-to-peer", "tunnelled", "tls",
	// "postcopy", "unsafe", ...).
	Flags []string `json:"flags,omitempty"`
	// Job is the completed job as libvirt reports it on the destination.
	Job *LibvirtJob `json:"job,omitempty"`
}

// What a libvirt run measured.
const (
	MeasuredAgent    = "agent"
	MeasuredHostOnly = "host side only"
)

// LibvirtJob is a completed migration job's statistics.
type LibvirtJob struct {
	ElapsedMS      float64 `json:"elapsed_ms"`
	DowntimeMS     float64 `json:"downtime_ms"`
	DowntimeNetMS  float64 `json:"downtime_net_ms,omitempty"`
	SetupTimeMS    float64 `json:"setup_time_ms,omitempty"`
	DataTotalB     uint64  `json:"data_total_bytes"`
	DataProcessedB uint64  `json:"data_processed_bytes"`
	MemoryBPS      uint64  `json:"memory_bytes_per_s,omitempty"`
	Iterations     uint64  `json:"iterations,omitempty"`
	DiskTotalB     uint64  `json:"disk_total_bytes,omitempty"`
}
