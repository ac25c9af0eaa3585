// Package jobset runs the jobs of a fio job file as fio does: the jobs between stonewalls
// run concurrently, each as its own bench.Run with its own result document, and the next
// group starts when every job of the previous one has ended. It records in each result
// which job, reporting group and execution of the file it was (results.JobInfo), so that
// reports can show jobs apart or sum a group (group_reporting).
package jobset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
)

// Job is one job of a job file.
type Job struct {
	// Name is the job's name in reports; "" means the workload's name.
	Name string
	// Config is the job's run. Its Workload.StartDelay delays the job within its group;
	// Run sets FirstJob.
	Config bench.Config
	// Stonewall makes the job wait until every job before it has ended, and starts a new
	// reporting group; NewGroup starts a new reporting group without waiting (fio stonewall
	// and new_group). Both are ignored on the first job.
	Stonewall bool
	NewGroup  bool
	// GroupReporting is fio's group_reporting: reports sum the job with its group.
	GroupReporting bool
	// Global names the options the job file's [global] set (recorded in the result).
	Global []string
}

// Result is the outcome of one job: its run (nil when it failed before measuring, or was
// cancelled during its start delay) and its error, as bench.Run returns them.
type Result struct {
	// Index is the job's position in the slice given to Run.
	Index int
	Run   *results.Run
	Err   error
}

// Waves returns the indexes of the jobs that run concurrently, group after group: a new
// wave starts at every job with Stonewall.
func Waves(jobs []Job) [][]int {
	var waves [][]int
	for i, j := range jobs {
		if len(waves) == 0 || j.Stonewall {
			waves = append(waves, nil)
		}
		waves[len(waves)-1] = append(waves[len(waves)-1], i)
	}
	return waves
}

// Run runs jobs wave by wave (Waves) and returns the results of the jobs it started, in the
// order of jobs. A job's failure does not stop the others, nor the next waves, as in fio;
// cancelling ctx does: no wave starts after it.
//
// Jobs of one wave that share a target (the same URL) get disjoint job numbers
// (bench.Config.FirstJob), so backends that create one bench file per job give each job its
// own files, as fio names a directory's files after the job; a job alone on its target
// numbers from 0, as a lone run does.
//
// startdelay is applied here, before bench.Run, and cleared from the Config passed to it so
// the job is never delayed twice should the engine learn to delay; the result records it.
func Run(ctx context.Context, jobs []Job) []Result {
	set := newSetID()
	groups := reportingGroups(jobs)
	// Each goroutine writes its own element: no lock needed.
	out := make([]*Result, len(jobs))
	for _, wave := range Waves(jobs) {
		if ctx.Err() != nil {
			break
		}
		var wg sync.WaitGroup
		next := map[string]int{} // target URL → its next free job number in this wave
		for _, i := range wave {
			cfg := jobs[i].Config
			cfg.FirstJob = next[cfg.Target]
			next[cfg.Target] += max(cfg.Workload.NumJobs, 1)
			info := &results.JobInfo{Name: jobs[i].Name, Set: set, Group: groups[i], Index: i, GroupReporting: jobs[i].GroupReporting, Global: jobs[i].Global}
			if info.Name == "" {
				info.Name = cfg.Workload.Name
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := runJob(ctx, i, cfg, info)
				out[i] = &res
			}()
		}
		wg.Wait()
	}
	var rs []Result
	for _, r := range out {
		if r != nil {
			rs = append(rs, *r)
		}
	}
	return rs
}

// runJob waits for the job's start delay and runs it.
func runJob(ctx context.Context, i int, cfg bench.Config, info *results.JobInfo) Result {
	delay := cfg.Workload.StartDelay
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{Index: i, Err: fmt.Errorf("job %q: cancelled during startdelay: %w", info.Name, context.Cause(ctx))}
		case <-t.C:
		}
		cfg.Workload.StartDelay = 0
	}
	r, err := bench.Run(ctx, cfg)
	if r != nil {
		r.Job = info
		r.Workload.StartDelay = delay
	}
	if err != nil {
		err = fmt.Errorf("job %q: %w", info.Name, err)
	}
	return Result{Index: i, Run: r, Err: err}
}

// reportingGroups numbers the jobs' reporting groups: a new one starts at every job with
// Stonewall or NewGroup, as fio's groupid.
func reportingGroups(jobs []Job) []int {
	g := make([]int, len(jobs))
	for i := 1; i < len(jobs); i++ {
		g[i] = g[i-1]
		if jobs[i].Stonewall || jobs[i].NewGroup {
			g[i]++
		}
	}
	return g
}

func newSetID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on supported platforms
	return hex.EncodeToString(b[:])
}
