package runner

import (
	"context"

	"github.com/vmstorbench/vmstorbench/bench/jobset"
	"github.com/vmstorbench/vmstorbench/results"
)

// SetJob is one job of a job file's set: its run, the file's grouping of it, and its hooks.
type SetJob struct {
	HostSpec
	Stonewall, NewGroup, GroupReporting bool
	Global                              []string // options the file's [global] set
	Hooks                               Hooks
}

// SetResult is one job's result; Index is its position in the set.
type SetResult struct {
	Index int
	Run   *results.Run
	Err   error
}

// SetWaves are the indices of the jobs that run together, wave after wave (a stonewall
// starts a new one).
func SetWaves(jobs []SetJob) [][]int { return jobset.Waves(setSpecs(jobs)) }

// RunJobSet runs the jobs as fio runs a job file's: concurrently but for stonewall, which
// waits for the jobs before it. The results come in the jobs' order once all have ended.
func RunJobSet(ctx context.Context, jobs []SetJob) []SetResult {
	var out []SetResult
	for _, r := range jobset.Run(ctx, setSpecs(jobs)) {
		out = append(out, SetResult{Index: r.Index, Run: r.Run, Err: r.Err})
	}
	return out
}

func setSpecs(jobs []SetJob) []jobset.Job {
	specs := make([]jobset.Job, len(jobs))
	for i, j := range jobs {
		cfg := j.BenchConfig()
		cfg.Progress, cfg.LayoutProgress = j.Hooks.Progress, j.Hooks.Layout
		specs[i] = jobset.Job{Config: cfg, Stonewall: j.Stonewall, NewGroup: j.NewGroup, GroupReporting: j.GroupReporting, Global: j.Global}
	}
	return specs
}
