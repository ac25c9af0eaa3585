package runner

import (
	"context"
	"maps"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Hooks are what a run tells as it goes; nil hooks are not called.
type Hooks struct {
	// Progress gets a host run's live I/O figures.
	Progress func(bench.Progress)
	// Layout gets a host run's bench-file layout (bytes done of total).
	Layout func(done, total int64)
	// Phase gets a migration run's live phase.
	Phase func(migrate.Status)
	// Logf gets diagnostics, one line each (without the newline).
	Logf func(format string, args ...any)
}

func (h Hooks) logf(format string, args ...any) {
	if h.Logf != nil {
		h.Logf(format, args...)
	}
}

// HostSpec is one workload run on the host against one target.
type HostSpec struct {
	Target   Target
	Workload workloads.Workload
	// SizeGiven keeps Workload.Size; otherwise the engine sizes the region to the target.
	SizeGiven        bool
	Interval         time.Duration
	AllowDestructive bool
	Keep             bool
	Profile          string
	Labels           map[string]string
	// Submission is the engine's submission mode (bench.Config.Submission; "" is auto).
	Submission string
	// Command is the (redacted) command line stored in the result.
	Command []string
}

// BenchConfig is the engine configuration of the spec, without hooks.
func (s HostSpec) BenchConfig() bench.Config {
	w := s.Workload
	if !s.SizeGiven {
		w.Size = 0 // the engine sizes the region to the target
	}
	labels := s.Labels
	if s.Target.Name != "" {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[results.TargetLabel] = s.Target.Name
	}
	return bench.Config{
		Target:     s.Target.URL,
		Workload:   w,
		Interval:   s.Interval,
		Submission: s.Submission,
		Open:       backends.OpenParams{AllowDestructive: s.AllowDestructive, Keep: s.Keep},
		Command:    s.Command,
		Profile:    s.Profile,
		Labels:     labels,
	}
}

// RunHost runs the spec's workload against its target and returns the result document
// (partial, with complete: false, when the run failed after it started).
func RunHost(ctx context.Context, s HostSpec, h Hooks) (*results.Run, error) {
	cfg := s.BenchConfig()
	cfg.Progress = h.Progress
	cfg.LayoutProgress = h.Layout
	return bench.Run(ctx, cfg)
}
