// Package results is the result document: one JSON file per run, with everything needed to
// read, re-render and compare it later. It has no knowledge of how results were collected.
package results

import (
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// SchemaVersion identifies this document layout. Readers refuse documents of a newer major.
const SchemaVersion = "vmstorbench.result/1"

// Run is one run of one workload against one target.
type Run struct {
	Schema string    `json:"schema"`
	Tool   Tool      `json:"tool"`
	ID     string    `json:"id"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	// Command is the argv that produced the run (secrets never reach argv).
	Command []string `json:"command,omitempty"`
	Host    Host     `json:"host"`
	Target  Target   `json:"target"`
	// Workload is the workload as run, defaults filled in.
	Workload workloads.Workload `json:"workload"`
	Profile  string             `json:"profile,omitempty"`
	// Complete is false when the run ended early; Error says why.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
	// Status is the run's outcome as Outcome judges it ("ok", "incomplete",
	// "verify_failed"), written with the document for readers that do not judge it
	// themselves. Readers of this package use Outcome, which never trusts this field.
	Status Status `json:"status,omitempty"`
	// Runtime is the measured time (ramp excluded). For a run that ended early it ends at
	// the last successful completion (LastIONS), not at the deadline.
	RuntimeNS int64 `json:"runtime_ns"`
	// LastIONS and StoppedAtNS are set for a run that ended early, from the start of
	// measurement: when its last I/O completed successfully, and when the failure was
	// detected (a target that stops answering is seen only after a stall timeout or grace
	// period).
	LastIONS    int64 `json:"last_io_ns,omitempty"`
	StoppedAtNS int64 `json:"stopped_at_ns,omitempty"`
	// Read and Write are the per-direction summaries; nil when the direction was not used.
	Read  *DirStats `json:"read,omitempty"`
	Write *DirStats `json:"write,omitempty"`
	// Sync summarises the syncs of fsync=N and fdatasync=N (IOs is their count, Lat their
	// latency), as fio's "sync" does.
	Sync *DirStats `json:"sync,omitempty"`
	// SyncCall names the Target calls those syncs used: "sync" (Target.Sync: fsync(2), NFS
	// COMMIT, SMB FLUSH, SYNCHRONIZE CACHE), "datasync" (fdatasync(2)), or "sync+datasync".
	// fdatasync=N on a backend without a data-only sync runs as "sync".
	SyncCall string `json:"sync_call,omitempty"`
	// Submission is how the engine issued each job's iodepth I/Os: "queue" (one goroutine
	// keeping them in flight on the backend's queue, as fio's asynchronous ioengines) or
	// "goroutines" (iodepth goroutines, each waiting for its I/O). SubmissionFallback says
	// why a run that asked for auto used goroutines on a backend with a queue (a workload
	// option one goroutine cannot do for several I/Os). Empty in documents written before.
	Submission         string  `json:"submission,omitempty"`
	SubmissionFallback string  `json:"submission_fallback,omitempty"`
	Verify             *Verify `json:"verify,omitempty"`
	// Migration is set for runs inside a live-migrating VM (see migration.go).
	Migration *Migration `json:"migration,omitempty"`
	// Replication is set for replicated devices (DRBD): their state through the run.
	Replication *Replication `json:"replication,omitempty"`
	CPU         CPU          `json:"cpu"`
	Series      Series       `json:"series"`
	// Repeat is the index of this run in a --repeat series (0-based) and Repeats their count.
	Repeat  int `json:"repeat,omitempty"`
	Repeats int `json:"repeats,omitempty"`
	// Labels are free-form key/values (suite name, scenario) for grouping in reports.
	Labels map[string]string `json:"labels,omitempty"`
	// Job says which job of a job file the run was; nil for a run of one workload given by
	// flags or a profile.
	Job *JobInfo `json:"job,omitempty"`
	// Jobs are the figures of each of the workload's numjobs jobs when there were several
	// (Read, Write and Sync are their sums), so that reports can show them apart as fio does
	// without group_reporting. Per-job time series are not kept.
	Jobs []JobStats `json:"jobs,omitempty"`
}

// JobInfo places a run in a job file that ran as a set: the jobs of a reporting group ran
// concurrently (fio's groups, separated by stonewall or new_group), each with its own run.
type JobInfo struct {
	// Name is the job's name (its section, or name=).
	Name string `json:"name"`
	// Set identifies one execution of the job file: runs of the same set and group ran
	// together. Each target and each --repeat runs the file as a new set.
	Set string `json:"set,omitempty"`
	// Group is the reporting group (fio's groupid), Index the job's position in the file;
	// both count from 0.
	Group int `json:"group"`
	Index int `json:"index"`
	// GroupReporting (fio group_reporting) asks reports to sum the job with the jobs before
	// it in its group, and its numjobs jobs with each other.
	GroupReporting bool `json:"group_reporting,omitempty"`
	// Global names the options (fio's canonical names) the job file's [global] sections set
	// for this job; fio-json shows them as "global options".
	Global []string `json:"global,omitempty"`
}

// JobStats are the figures of one of a run's numjobs jobs.
type JobStats struct {
	// Index is the job's number among the run's numjobs (0-based).
	Index int       `json:"index"`
	Read  *DirStats `json:"read,omitempty"`
	Write *DirStats `json:"write,omitempty"`
	Sync  *DirStats `json:"sync,omitempty"`
}

// Tool names the program that wrote the document.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Host describes the machine the run was started on.
type Host struct {
	Hostname  string `json:"hostname"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Kernel    string `json:"kernel,omitempty"`
	CPUModel  string `json:"cpu_model,omitempty"`
	CPUs      int    `json:"cpus"`
	MemoryB   int64  `json:"memory_bytes,omitempty"`
	GoVersion string `json:"go_version"`
}

// Target records what was measured; URL never holds a credential.
type Target struct {
	URL     string `json:"url"`
	Backend string `json:"backend"`
	// Info is what the backend reported (security level, dialect, access path...).
	Info map[string]string `json:"info,omitempty"`
}

// DirStats summarises one direction over the measured period.
type DirStats struct {
	IOs    int64   `json:"ios"`
	Bytes  int64   `json:"bytes"`
	Errors int64   `json:"errors"`
	IOPS   float64 `json:"iops"`
	BWBps  float64 `json:"bw_bytes_per_s"`
	// Lat is submission-to-completion latency.
	Lat Latency `json:"lat_ns"`
}

// Latency is a latency distribution in nanoseconds.
type Latency struct {
	N      int64   `json:"n"`
	Min    int64   `json:"min"`
	Max    int64   `json:"max"`
	Mean   float64 `json:"mean"`
	Stddev float64 `json:"stddev"`
	// Percentiles are keyed as fio keys them ("99.000000").
	Percentiles map[string]int64 `json:"percentiles,omitempty"`
	// Histogram is the full HDR histogram (base64 of the V2 compressed encoding), so that
	// reports can draw CDFs and merge repeats exactly.
	Histogram string `json:"hdr,omitempty"`
}

// Verify counts checked blocks and mismatches.
type Verify struct {
	Algorithm  string     `json:"algorithm"`
	Checked    int64      `json:"checked"`
	Mismatches int64      `json:"mismatches"`
	First      []Mismatch `json:"first_mismatches,omitempty"`
}

// Mismatch is one block that failed verification.
type Mismatch struct {
	Job    int    `json:"job"`
	Offset int64  `json:"offset"`
	Reason string `json:"reason"`
}

// CPU is this process's CPU time over the run.
type CPU struct {
	UserNS int64   `json:"user_ns"`
	SysNS  int64   `json:"sys_ns"`
	UsrPct float64 `json:"usr_pct"`
	SysPct float64 `json:"sys_pct"`
}

// Series is a time series of fixed intervals; each point's figures come from the I/Os that
// completed within it (never averages of averages).
type Series struct {
	IntervalNS int64   `json:"interval_ns"`
	Points     []Point `json:"points"`
}

// Point is one interval. TNS is the interval's end, from the start of measurement.
type Point struct {
	TNS   int64       `json:"t_ns"`
	Read  *PointStats `json:"read,omitempty"`
	Write *PointStats `json:"write,omitempty"`
}

// PointStats are one direction's figures in one interval.
type PointStats struct {
	IOs   int64   `json:"ios"`
	Bytes int64   `json:"bytes"`
	IOPS  float64 `json:"iops"`
	BWBps float64 `json:"bw_bytes_per_s"`
	// Latency percentiles of the interval's completions (0 when it had none).
	LatMean float64 `json:"lat_mean_ns"`
	LatP50  int64   `json:"lat_p50_ns"`
	LatP99  int64   `json:"lat_p99_ns"`
	LatMax  int64   `json:"lat_max_ns"`
}

// Dir returns the stats of direction d.
func (r *Run) Dir(d workloads.Direction) *DirStats {
	if d == workloads.Write {
		return r.Write
	}
	return r.Read
}

// FioPercentiles is fio's default percentile list.
var FioPercentiles = []float64{1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99}

// PercentileKey formats p as fio keys percentiles: "99.000000".
func PercentileKey(p float64) string {
	return formatFixed6(p)
}
