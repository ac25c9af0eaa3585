// Package bench is the measurement engine: it opens one Target per job through the backends
// registry, runs the workload on iodepth workers per job (goroutines, or the slots of one
// queue driver per job: queue.go), times every I/O from submission to completion and returns
// the result document. It knows the backends' interface only.
package bench

import (
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Config is one run: one workload against one target.
type Config struct {
	// Target is the target URL.
	Target string
	// Registry resolves the URL; nil means backends.Default.
	Registry *backends.Registry
	Workload workloads.Workload
	// FirstJob numbers the run's jobs for the backends from FirstJob instead of 0: runs that
	// share a target concurrently (the jobs of one group of a job file) give disjoint ranges
	// so that backends which create one bench file per job do not hand two runs one file.
	FirstJob int
	// Interval is the time-series resolution (default 1 s).
	Interval time.Duration
	// Open carries the user's permissions (AllowDestructive, Keep); the engine fills Size,
	// Job, Direct, Write, Read, the file fields, SpaceNeeded and LayoutProgress.
	Open backends.OpenParams
	// Progress, if set, is called every ProgressEvery (default 500 ms) from one goroutine, and
	// once more (Phase "verify") before the verify pass; never two calls at once.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// LayoutProgress, if set, is called while bench files are laid out before the run, with
	// the bytes written and the bytes to lay out over all files so far; never two calls at
	// once. Calls come about every MiB: the caller throttles what it shows.
	LayoutProgress func(done, total int64)
	// Observer, if set, sees every completion (the in-guest agent streams them). It is called
	// from the I/O goroutines and must be cheap and safe for concurrent use.
	Observer Observer
	// StallTimeout ends the run with an error when no I/O completes for this long
	// (default 60 s). Grace is how long in-flight I/Os may take to finish once the run has
	// ended before their targets are closed under them (default 10 s).
	StallTimeout time.Duration
	Grace        time.Duration
	// Stop, when closed, ends the run gracefully: workers stop issuing I/O, the I/Os in
	// flight complete, the verify pass runs and the result is Complete, with the measurement
	// ending at the last completion. It is how a time-based run is ended on purpose before
	// its runtime (the in-guest agent's workload once the host has seen enough). Cancelling
	// ctx is different: it abandons the run, and it wins over Stop whenever it comes before
	// Run returns (a cancelled verify pass leaves the run incomplete). nil never stops.
	Stop <-chan struct{}
	// Submission is how each job issues its iodepth I/Os (queue.go): SubmissionQueue, one
	// goroutine keeping them in flight on the target's backends.Queue; SubmissionGoroutines,
	// iodepth goroutines each calling ReadAt or WriteAt; SubmissionAuto or "", a queue when
	// the target is a Queuer and iodepth > 1. The result records the mode used.
	Submission string
	// Recorded in the result as they are.
	Command []string
	Profile string
	Labels  map[string]string
}

// Progress is a snapshot of a running run; counters are cumulative and include ramp.
type Progress struct {
	Phase   string // "ramp", "run", "verify"
	Elapsed time.Duration
	IOs     [2]int64
	Bytes   [2]int64
}

// Observer receives completions.
type Observer interface {
	Observe(c Completion)
}

// Completion is one finished I/O; Start and End are since the run started (ramp included).
type Completion struct {
	Job   int
	Dir   workloads.Direction
	Bytes int
	Start time.Duration
	End   time.Duration
	Err   error
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 500 * time.Millisecond
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.Registry == nil {
		c.Registry = backends.Default
	}
}
