package libvirt

import (
	"context"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// JobStats is what virDomainGetJobStats reports about a domain's job (a migration here).
// Fields libvirt did not report are zero; Has tells which were reported.
type JobStats struct {
	// Type is the job's type: "none", "bounded", "unbounded", "completed", "failed" or
	// "cancelled".
	Type string `json:"type"`
	// Elapsed is the time since the job started (on the destination: the whole migration).
	Elapsed time.Duration `json:"elapsed_ns"`
	// Downtime is the time the guest was stopped (completed jobs; the expected downtime
	// while running is not reported by libvirt's stats). DowntimeNet excludes the
	// network's part when libvirt knows it.
	Downtime    time.Duration `json:"downtime_ns,omitempty"`
	DowntimeNet time.Duration `json:"downtime_net_ns,omitempty"`
	// Setup is the time before the first byte was sent.
	Setup time.Duration `json:"setup_ns,omitempty"`
	// Data is RAM and disk together, in bytes.
	DataTotal     uint64 `json:"data_total"`
	DataProcessed uint64 `json:"data_processed"`
	DataRemaining uint64 `json:"data_remaining"`
	// Memory is the RAM part.
	MemoryTotal     uint64 `json:"memory_total"`
	MemoryProcessed uint64 `json:"memory_processed"`
	MemoryRemaining uint64 `json:"memory_remaining"`
	// MemoryBPS is the transfer rate (bytes/s); DirtyRate pages dirtied per second;
	// Iterations the dirty-sync iterations of pre-copy; PostcopyRequests the pages the
	// destination asked for after the switch to post-copy.
	MemoryBPS        uint64 `json:"memory_bps,omitempty"`
	DirtyRate        uint64 `json:"dirty_rate_pages_per_s,omitempty"`
	PageSize         uint64 `json:"page_size,omitempty"`
	Iterations       uint64 `json:"iterations,omitempty"`
	PostcopyRequests uint64 `json:"postcopy_requests,omitempty"`
	// Disk is the storage part (NON_SHARED_DISK migrations).
	DiskTotal     uint64 `json:"disk_total,omitempty"`
	DiskProcessed uint64 `json:"disk_processed,omitempty"`
	DiskRemaining uint64 `json:"disk_remaining,omitempty"`
	// ErrMsg is the error of a failed job (libvirt ≥ 6.3).
	ErrMsg string `json:"errmsg,omitempty"`
	// Has lists the fields libvirt reported, by libvirt's names.
	Has map[string]bool `json:"-"`
}

// Job types (virDomainJobType).
var jobTypes = []string{"none", "bounded", "unbounded", "completed", "failed", "cancelled"}

// parseJobStats maps libvirt's typed parameters to JobStats.
func parseJobStats(typ int32, params []golibvirt.TypedParam) JobStats {
	js := JobStats{Type: "unknown", Has: map[string]bool{}}
	if typ >= 0 && int(typ) < len(jobTypes) {
		js.Type = jobTypes[typ]
	}
	ms := func(v uint64) time.Duration { return time.Duration(v) * time.Millisecond }
	for _, p := range params {
		js.Has[p.Field] = true
		if s, ok := p.Value.I.(string); ok {
			if p.Field == "errmsg" {
				js.ErrMsg = s
			}
			continue
		}
		v := paramUint(p.Value.I)
		switch p.Field {
		case "time_elapsed":
			js.Elapsed = ms(v)
		case "downtime":
			js.Downtime = ms(v)
		case "downtime_net":
			js.DowntimeNet = ms(v)
		case "setup_time":
			js.Setup = ms(v)
		case "data_total":
			js.DataTotal = v
		case "data_processed":
			js.DataProcessed = v
		case "data_remaining":
			js.DataRemaining = v
		case "memory_total":
			js.MemoryTotal = v
		case "memory_processed":
			js.MemoryProcessed = v
		case "memory_remaining":
			js.MemoryRemaining = v
		case "memory_bps":
			js.MemoryBPS = v
		case "memory_dirty_rate":
			js.DirtyRate = v
		case "memory_page_size":
			js.PageSize = v
		case "memory_iteration":
			js.Iterations = v
		case "memory_postcopy_requests":
			js.PostcopyRequests = v
		case "disk_total":
			js.DiskTotal = v
		case "disk_processed":
			js.DiskProcessed = v
		case "disk_remaining":
			js.DiskRemaining = v
		}
	}
	return js
}

func paramUint(v any) uint64 {
	switch x := v.(type) {
	case uint64:
		return x
	case int64:
		if x > 0 {
			return uint64(x)
		}
	case uint32:
		return uint64(x)
	case int32:
		if x > 0 {
			return uint64(x)
		}
	case float64:
		if x > 0 {
			return uint64(x)
		}
	}
	return 0
}

// JobStats reads the domain's current job; completed reads the last completed job instead
// (on the destination after an incoming migration: that migration's figures).
func (d *Domain) JobStats(ctx context.Context, completed bool) (JobStats, error) {
	var flags golibvirt.DomainGetJobStatsFlags
	if completed {
		flags = golibvirt.DomainJobStatsCompleted
	}
	var typ int32
	var params []golibvirt.TypedParam
	err := d.Conn.call(ctx, 0, "job stats of "+d.Name, func() error {
		var err error
		typ, params, err = d.Conn.l.DomainGetJobStats(d.d, flags)
		return err
	})
	if err != nil {
		return JobStats{}, err
	}
	return parseJobStats(typ, params), nil
}

// CompletedJob is the destination's completed migration job. After a post-copy migration
// the destination's Finish returns when the guest resumes there, while the pages still
// travel; libvirt records the completed job only when QEMU reports the end, so with
// postcopy it asks again (every 100 ms, for up to wait) while the job type is still "none".
// Its data figures are those the source sent in its cookie at the switch to post-copy.
func (d *Domain) CompletedJob(ctx context.Context, postcopy bool, wait time.Duration) (JobStats, error) {
	end := time.Now().Add(wait)
	for {
		js, err := d.JobStats(ctx, true)
		if err != nil || js.Type != "none" || !postcopy || time.Now().After(end) {
			return js, err
		}
		select {
		case <-ctx.Done():
			return js, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
