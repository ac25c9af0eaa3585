package bench

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// testQueue is a testTarget's Queue: Submit does the I/O through the testTarget's ReadAt and
// WriteAt (so its fault injection applies) and Reap hands back what is done. It counts what
// is left unreaped when it is closed.
type testQueue struct {
	t        *testTarget
	depth    int
	done     []backends.Completion
	closed   bool
	leftover int // completions not reaped at Close
	// I/Os queued and completions handed back
	submitted, reaped int
}

func (t *testTarget) NewQueue(depth int) (backends.Queue, error) {
	q := &testQueue{t: t, depth: depth}
	t.mu.Lock()
	t.queues = append(t.queues, q)
	t.mu.Unlock()
	return q, nil
}

func (q *testQueue) Submit(io backends.IO) error {
	if q.closed || len(q.done) >= q.depth {
		return errors.New("test queue: closed or full")
	}
	if n := q.t.submits.Add(1); q.t.failSubmitAfter > 0 && n > q.t.failSubmitAfter {
		return errors.New("injected submit error")
	}
	q.submitted++
	q.done = append(q.done, backends.Do(q.t, io))
	return nil
}

func (q *testQueue) Reap(dst []backends.Completion, _ int) []backends.Completion {
	dst = append(dst, q.done...)
	q.reaped += len(q.done)
	q.done = q.done[:0]
	return dst
}

func (q *testQueue) Close() error {
	q.closed, q.leftover = true, len(q.done)
	return nil
}

// The queue mode does the I/Os the goroutine mode does: the same counts and bytes, the
// same syncs, data that verifies.
func TestQueueAndGoroutinesAgree(t *testing.T) {
	const size = 4 << 20
	for _, c := range []struct {
		name string
		w    workloads.Workload
	}{
		{"randread", workloads.Workload{RW: "randread", Size: size}},
		{"randwrite", workloads.Workload{RW: "randwrite", Size: size}},
		{"randrw 70% reads", workloads.Workload{RW: "randrw", RWMixRead: 70, Size: size}},
		{"seq number_ios", workloads.Workload{RW: "read", BS: bs(16 << 10), Size: size, NumberIOs: 100}},
		{"rate limited", workloads.Workload{RW: "randread", Size: size, NumberIOs: 100, RateIOPS: [2]int64{2000, 2000}}},
		{"thinktime", workloads.Workload{RW: "randwrite", Size: size, NumberIOs: 200, ThinkTime: time.Millisecond, ThinkTimeBlocks: 10}},
		{"verify two passes", workloads.Workload{RW: "randrw", Size: 1 << 20, IOSize: 2 << 20, Verify: "crc32c"}},
		// Four blocks for eight slots: a slot's block is often held by another slot in
		// flight, which the driver reaps before the slot can go.
		{"verify on 4 blocks", workloads.Workload{RW: "randrw", Size: 16 << 10, IOSize: 1 << 20, Verify: "crc32c"}},
		{"verify seq on 4 blocks", workloads.Workload{RW: "write", Size: 16 << 10, IOSize: 1 << 20, Verify: "crc32c"}},
		{"fsync=4", workloads.Workload{RW: "randwrite", Size: 1 << 20, Fsync: 4}},
		{"fdatasync=3 numjobs=2", workloads.Workload{RW: "write", Size: 1 << 20, Fdatasync: 3, NumJobs: 2}},
		{"rate until the deadline", workloads.Workload{RW: "randread", Size: size, RateIOPS: [2]int64{1000, 1000}, Runtime: 60 * time.Millisecond, TimeBased: true}},
		{"ramp and runtime", workloads.Workload{RW: "randread", Size: size, RampTime: 20 * time.Millisecond, Runtime: 50 * time.Millisecond, TimeBased: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := c.w
			w.IODepth, w.RandSeed = 8, 42
			res := map[string]*results.Run{}
			for _, mode := range []string{SubmissionGoroutines, SubmissionQueue} {
				r, err := Run(context.Background(), Config{Target: "mem://", Workload: w, Submission: mode})
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if r.Submission != mode || r.SubmissionFallback != "" {
					t.Errorf("%s: result says submission %q (%q)", mode, r.Submission, r.SubmissionFallback)
				}
				if w.Verify != "" && (r.Verify == nil || r.Verify.Mismatches != 0 || r.Verify.Checked == 0) {
					t.Errorf("%s: verify %+v", mode, r.Verify)
				}
				res[mode] = r
			}
			if w.TimeBased {
				return // as many I/Os as the time allows
			}
			g, q := res[SubmissionGoroutines], res[SubmissionQueue]
			for _, d := range []workloads.Direction{workloads.Read, workloads.Write} {
				gs, qs := g.Dir(d), q.Dir(d)
				if (gs == nil) != (qs == nil) || gs != nil && (gs.IOs != qs.IOs || gs.Bytes != qs.Bytes || gs.IOs == 0) {
					t.Errorf("%s: goroutines %+v, queue %+v", d, gs, qs)
				}
			}
			if (g.Sync == nil) != (q.Sync == nil) || g.Sync != nil && g.Sync.IOs != q.Sync.IOs {
				t.Errorf("syncs: goroutines %+v, queue %+v", g.Sync, q.Sync)
			}
		})
	}
}

// The same seed gives the same I/Os in both modes.
func TestQueueSameOffsets(t *testing.T) {
	offsets := func(mode string) []int64 {
		reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.logOffsets = true; return tt })
		w := workloads.Workload{RW: "randrw", Size: 4 << 20, IOSize: 1 << 20, RandSeed: 3, IODepth: 8}
		if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, Submission: mode}); err != nil {
			t.Fatal(err)
		}
		o := append([]int64(nil), (*opened)[0].offsets...)
		sort.Slice(o, func(i, j int) bool { return o[i] < o[j] })
		return o
	}
	if a, b := offsets(SubmissionGoroutines), offsets(SubmissionQueue); len(a) != 256 || !equal(a, b) {
		t.Fatalf("goroutines did %d I/Os, queue %d, or at other offsets", len(a), len(b))
	}
}

// A failed I/O ends a queue-mode run as it ends a goroutine one: a partial result, every I/O
// in flight reaped and the queue closed.
func TestQueueErrorGivesPartialResult(t *testing.T) {
	for _, c := range []struct {
		name   string
		target func(size int64) *testTarget
		want   string
	}{
		{"completion error", func(size int64) *testTarget { tt := memTarget(size); tt.failAfter = 100; return tt }, "injected"},
		{"submit error", func(size int64) *testTarget { tt := memTarget(size); tt.failSubmitAfter = 100; return tt }, "submit: injected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg, opened := registry(t, c.target)
			w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: 5 * time.Second, TimeBased: true, IODepth: 8}
			r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if r == nil || r.Submission != SubmissionQueue || r.Complete || r.Error == "" || r.Read.IOs < 90 || r.Read.Errors < 1 {
				t.Fatalf("partial result %+v", r)
			}
			qs := (*opened)[0].queues
			if len(qs) != 1 || !qs[0].closed || qs[0].leftover != 0 || qs[0].submitted != qs[0].reaped {
				t.Fatalf("queues %+v: want one, closed, every I/O reaped", qs)
			}
		})
	}
}

func TestSubmissionChoice(t *testing.T) {
	for _, c := range []struct {
		name     string
		target   string
		mode     string
		w        workloads.Workload
		want     string
		fallback string // part of the fallback reason, or of the error when want is ""
	}{
		{"auto on a queue", "mem://", "", workloads.Workload{IODepth: 4}, SubmissionQueue, ""},
		{"auto at iodepth 1", "mem://", SubmissionAuto, workloads.Workload{IODepth: 1}, SubmissionGoroutines, ""},
		{"queue at iodepth 1", "mem://", SubmissionQueue, workloads.Workload{IODepth: 1}, SubmissionQueue, ""},
		{"auto without a queue", "null://", "", workloads.Workload{IODepth: 4}, SubmissionGoroutines, ""},
		{"goroutines asked", "mem://", SubmissionGoroutines, workloads.Workload{IODepth: 4}, SubmissionGoroutines, ""},
		{"auto with nrfiles=2", "mem://", "", workloads.Workload{IODepth: 4, NrFiles: 2}, SubmissionGoroutines, "nrfiles=2"},
		{"auto with thinktime_spin", "mem://", "", workloads.Workload{IODepth: 4, ThinkTime: time.Millisecond, ThinkTimeSpin: time.Microsecond, ThinkTimeBlocks: 100}, SubmissionGoroutines, "thinktime_spin"},
		{"queue without a queue", "null://", SubmissionQueue, workloads.Workload{IODepth: 4}, "", "the null backend has no queue"},
		{"queue with nrfiles=2", "mem://", SubmissionQueue, workloads.Workload{IODepth: 4, NrFiles: 2}, "", "nrfiles=2"},
		{"unknown mode", "mem://", "async", workloads.Workload{IODepth: 4}, "", `submission "async"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := c.w
			w.RW, w.Size, w.NumberIOs = "randread", 1<<20, 64
			r, err := Run(context.Background(), Config{Target: c.target, Workload: w, Submission: c.mode})
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), c.fallback) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line with %q", err, c.fallback)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Submission != c.want || !strings.Contains(r.SubmissionFallback, c.fallback) || (c.fallback == "") != (r.SubmissionFallback == "") {
				t.Errorf("submission %q (%q), want %s (%q)", r.Submission, r.SubmissionFallback, c.want, c.fallback)
			}
			if r.Read == nil || r.Read.IOs != 64*int64(max(w.NrFiles, 1)) && r.Read.IOs != 64 {
				t.Errorf("read %+v", r.Read)
			}
		})
	}
}
