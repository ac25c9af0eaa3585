package jobset

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// recorder is a registry of in-memory targets that records the job numbers it was asked for.
type recorder struct {
	reg  *backends.Registry
	mu   sync.Mutex
	jobs []int
}

func newRecorder() *recorder {
	rec := &recorder{reg: &backends.Registry{}}
	rec.reg.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		rec.mu.Lock()
		rec.jobs = append(rec.jobs, p.Job)
		rec.mu.Unlock()
		return mem.New(p.Size)
	}})
	return rec
}

// slowJob reads 16 blocks at 50 I/Os per second: about 300 ms, long enough for jobs that
// run concurrently to overlap whatever the machine's load, short enough for a unit test.
func slowJob(rec *recorder, name string) Job {
	w := workloads.Workload{Name: name, RW: workloads.SeqRead, Size: 64 << 10,
		BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}, RateIOPS: [2]int64{50, 50}}
	return Job{Config: bench.Config{Target: "test://", Registry: rec.reg, Workload: w}}
}

func runAll(t *testing.T, jobs []Job) []*results.Run {
	t.Helper()
	var runs []*results.Run
	for _, res := range Run(context.Background(), jobs) {
		if res.Err != nil {
			t.Fatalf("job %d: %v", res.Index, res.Err)
		}
		runs = append(runs, res.Run)
	}
	if len(runs) != len(jobs) {
		t.Fatalf("%d results for %d jobs", len(runs), len(jobs))
	}
	return runs
}

func overlap(a, b *results.Run) bool { return a.Start.Before(b.End) && b.Start.Before(a.End) }

func TestJobsOfAGroupRunConcurrently(t *testing.T) {
	rec := newRecorder()
	runs := runAll(t, []Job{slowJob(rec, "a"), slowJob(rec, "b")})
	if !overlap(runs[0], runs[1]) {
		t.Errorf("jobs without stonewall did not overlap: a %s..%s, b %s..%s",
			runs[0].Start.Format(time.StampMicro), runs[0].End.Format(time.StampMicro),
			runs[1].Start.Format(time.StampMicro), runs[1].End.Format(time.StampMicro))
	}
	// They shared the target: the backend was asked for different job numbers.
	slices.Sort(rec.jobs)
	if !slices.Equal(rec.jobs, []int{0, 1}) {
		t.Errorf("job numbers %v, want [0 1]", rec.jobs)
	}
	// Jobs on different targets keep their own numbering.
	rec.jobs = nil
	other := slowJob(rec, "other")
	other.Config.Target = "test://other"
	runAll(t, []Job{slowJob(rec, "a"), other})
	if !slices.Equal(rec.jobs, []int{0, 0}) {
		t.Errorf("job numbers on two targets %v, want [0 0]", rec.jobs)
	}
	a, b := runs[0].Job, runs[1].Job
	if a == nil || b == nil || a.Name != "a" || b.Name != "b" || a.Index != 0 || b.Index != 1 ||
		a.Group != 0 || b.Group != 0 || a.Set == "" || a.Set != b.Set {
		t.Errorf("job info %+v %+v", a, b)
	}
}

func TestStonewallSeparatesGroups(t *testing.T) {
	rec := newRecorder()
	jobs := []Job{slowJob(rec, "a"), slowJob(rec, "b"), slowJob(rec, "c")}
	jobs[1].Stonewall = true
	jobs[2].NewGroup = true // a new reporting group, but it runs with b
	runs := runAll(t, jobs)
	if runs[1].Start.Before(runs[0].End) {
		t.Errorf("b started %s before a ended", runs[0].End.Sub(runs[1].Start))
	}
	if !overlap(runs[1], runs[2]) {
		t.Error("new_group c did not run alongside b")
	}
	for i, want := range []int{0, 1, 2} {
		if g := runs[i].Job.Group; g != want {
			t.Errorf("job %d: group %d, want %d", i, g, want)
		}
	}
	// Each wave numbers its jobs from 0 again: a alone, then b and c together.
	if !slices.Equal(rec.jobs[:1], []int{0}) || !slices.Contains(rec.jobs[1:], 1) {
		t.Errorf("job numbers %v", rec.jobs)
	}
	if waves := Waves(jobs); len(waves) != 2 || !slices.Equal(waves[1], []int{1, 2}) {
		t.Errorf("waves %v", waves)
	}
}

func TestStartDelay(t *testing.T) {
	rec := newRecorder()
	jobs := []Job{slowJob(rec, "a"), slowJob(rec, "late")}
	const delay = 120 * time.Millisecond
	jobs[1].Config.Workload.StartDelay = delay
	before := time.Now()
	runs := runAll(t, jobs)
	if got := runs[1].Start.Sub(before); got < delay {
		t.Errorf("delayed job started %s after the set, want at least %s", got, delay)
	}
	if runs[1].Workload.StartDelay != delay {
		t.Errorf("result records startdelay %s, want %s", runs[1].Workload.StartDelay, delay)
	}
	if !overlap(runs[0], runs[1]) {
		t.Error("the delayed job left its group")
	}
}

func TestCancelStopsLaterGroups(t *testing.T) {
	rec := newRecorder()
	jobs := []Job{slowJob(rec, "a"), slowJob(rec, "waiting"), slowJob(rec, "next")}
	jobs[1].Config.Workload.StartDelay = time.Hour
	jobs[2].Stonewall = true
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := Run(ctx, jobs)
	if len(res) != 2 || res[1].Index != 1 || res[1].Run != nil || res[1].Err == nil {
		t.Fatalf("results %+v: want a's (interrupted) and the delayed job's error, no third", res)
	}
}

// fioJobs decodes fio JSON: one entry per reported job.
func fioJobs(t *testing.T, runs []*results.Run) []struct {
	JobName string `json:"jobname"`
	GroupID int    `json:"groupid"`
	Read    struct {
		TotalIOs int64 `json:"total_ios"`
	} `json:"read"`
} {
	t.Helper()
	var buf bytes.Buffer
	if err := results.WriteFioJSON(&buf, runs); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Jobs []struct {
			JobName string `json:"jobname"`
			GroupID int    `json:"groupid"`
			Read    struct {
				TotalIOs int64 `json:"total_ios"`
			} `json:"read"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Jobs
}

func TestGroupReportingAndClonesInFioJSON(t *testing.T) {
	rec := newRecorder()
	quick := func(name string) Job {
		j := slowJob(rec, name)
		j.Config.Workload.RateIOPS = [2]int64{}
		j.Config.Workload.NumJobs = 2
		return j
	}
	// Without group_reporting: one entry per numjobs clone, 16 reads each.
	runs := runAll(t, []Job{quick("clones")})
	got := fioJobs(t, runs)
	if len(got) != 2 || got[0].Read.TotalIOs != 16 || got[1].Read.TotalIOs != 16 || got[1].JobName != "clones" {
		t.Errorf("per-clone entries: %+v", got)
	}
	// With it: the clones of the first job, and the second job of the group, are one entry.
	jobs := []Job{quick("grouped"), quick("second"), quick("walled")}
	for i := range jobs {
		jobs[i].GroupReporting = true
	}
	jobs[2].Stonewall = true
	runs = runAll(t, jobs)
	got = fioJobs(t, runs)
	if len(got) != 2 || got[0].JobName != "grouped" || got[0].Read.TotalIOs != 4*16 || got[0].GroupID != 0 ||
		got[1].JobName != "walled" || got[1].Read.TotalIOs != 2*16 || got[1].GroupID != 1 {
		t.Errorf("group_reporting entries: %+v", got)
	}
	// The table sums the group the same way.
	merged, err := results.GroupReported(runs)
	if err != nil || len(merged) != 2 || merged[0].Read.IOs != 64 || merged[0].Read.Lat.N != 64 || len(merged[0].Jobs) != 4 {
		t.Errorf("GroupReported: %v, %d runs", err, len(merged))
	}
}
