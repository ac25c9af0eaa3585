package bench

import (
	"context"
	"errors"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// testTarget wraps a mem Target with fault injection and an offset log.
type testTarget struct {
	*mem.Target
	failAfter  int64 // fail I/Os after this many (0 = never)
	hangAfter  int64 // block I/Os after this many until Close (0 = never)
	count      atomic.Int64
	closed     chan struct{}
	closeOnce  sync.Once
	mu         sync.Mutex
	offsets    []int64
	logOffsets bool
	queues     []*testQueue // queue_test.go
	// fail Queue submissions after this many (0 = never)
	failSubmitAfter int64
	submits         atomic.Int64
}

func (t *testTarget) io(off int64) error {
	n := t.count.Add(1)
	if t.logOffsets {
		t.mu.Lock()
		t.offsets = append(t.offsets, off)
		t.mu.Unlock()
	}
	if t.failAfter > 0 && n > t.failAfter {
		return errors.New("injected I/O error")
	}
	if t.hangAfter > 0 && n > t.hangAfter {
		<-t.closed
		return errors.New("closed")
	}
	return nil
}

func (t *testTarget) ReadAt(b []byte, off int64) (int, error) {
	if err := t.io(off); err != nil {
		return 0, err
	}
	return t.Target.ReadAt(b, off)
}

func (t *testTarget) WriteAt(b []byte, off int64) (int, error) {
	if err := t.io(off); err != nil {
		return 0, err
	}
	return t.Target.WriteAt(b, off)
}

func (t *testTarget) Close() error {
	t.closeOnce.Do(func() { close(t.closed) })
	return nil
}

// registry returns a registry with a "test" backend whose targets are made by mk.
func registry(t *testing.T, mk func(size int64) *testTarget) (*backends.Registry, *[]*testTarget) {
	t.Helper()
	var mu sync.Mutex
	var opened []*testTarget
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		tt := mk(p.Size)
		mu.Lock()
		opened = append(opened, tt)
		mu.Unlock()
		return tt, nil
	}})
	return r, &opened
}

func memTarget(size int64) *testTarget {
	m, err := mem.New(size)
	if err != nil {
		panic(err)
	}
	return &testTarget{Target: m, closed: make(chan struct{})}
}

func TestRunCountsAndBytes(t *testing.T) {
	cases := []struct {
		name      string
		w         workloads.Workload
		wantR     int64 // bytes
		wantW     int64
		fixedIOs  int64 // total I/Os when known
		checkMixR bool
	}{
		{"seq read", workloads.Workload{RW: "read", Size: 4 << 20, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}, 4 << 20, 0, 1024, false},
		{"seq write 64k qd8", workloads.Workload{RW: "write", Size: 8 << 20, BS: [2]workloads.BlockSize{workloads.Fixed(65536), workloads.Fixed(65536)}, IODepth: 8}, 0, 8 << 20, 128, false},
		{"randread 2 jobs", workloads.Workload{RW: "randread", Size: 1 << 20, NumJobs: 2, IODepth: 4}, 2 << 20, 0, 512, false},
		{"io_size", workloads.Workload{RW: "randwrite", Size: 1 << 20, IOSize: 3 << 20}, 0, 3 << 20, 768, false},
		{"randrw 70/30", workloads.Workload{RW: "randrw", RWMixRead: 70, Size: 16 << 20, IODepth: 4}, -1, -1, 4096, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg, _ := registry(t, memTarget)
			r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: c.w})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Complete {
				t.Fatalf("incomplete: %s", r.Error)
			}
			var gotR, gotW, ios int64
			if r.Read != nil {
				gotR, ios = r.Read.Bytes, r.Read.IOs
			}
			if r.Write != nil {
				gotW, ios = r.Write.Bytes, ios+r.Write.IOs
			}
			if c.wantR >= 0 && gotR != c.wantR || c.wantW >= 0 && gotW != c.wantW {
				t.Errorf("bytes read %d write %d, want %d %d", gotR, gotW, c.wantR, c.wantW)
			}
			if ios != c.fixedIOs {
				t.Errorf("I/Os %d, want %d", ios, c.fixedIOs)
			}
			if c.checkMixR {
				frac := float64(r.Read.IOs) / float64(ios)
				if frac < 0.66 || frac > 0.74 {
					t.Errorf("read fraction %.3f, want ~0.70", frac)
				}
			}
			// The series must add up exactly to the totals.
			var sr, sw int64
			for _, p := range r.Series.Points {
				if p.Read != nil {
					sr += p.Read.Bytes
				}
				if p.Write != nil {
					sw += p.Write.Bytes
				}
			}
			if sr != gotR || sw != gotW {
				t.Errorf("series sums %d/%d, totals %d/%d", sr, sw, gotR, gotW)
			}
			if r.Read != nil && r.Read.Lat.N != r.Read.IOs {
				t.Errorf("latency N %d != I/Os %d", r.Read.Lat.N, r.Read.IOs)
			}
		})
	}
}

func TestRandomCoversEveryBlockOncePerPass(t *testing.T) {
	reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.logOffsets = true; return tt })
	w := workloads.Workload{RW: "randread", Size: 1 << 20, IODepth: 4}
	if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w}); err != nil {
		t.Fatal(err)
	}
	offs := (*opened)[0].offsets
	if len(offs) != 256 {
		t.Fatalf("%d I/Os, want 256", len(offs))
	}
	seen := map[int64]bool{}
	for _, o := range offs {
		if o%4096 != 0 || o < 0 || o >= 1<<20 || seen[o] {
			t.Fatalf("offset %d misaligned, out of range or repeated", o)
		}
		seen[o] = true
	}
}

func TestSameSeedSameOffsets(t *testing.T) {
	offsets := func(seed uint64, iodepth int) []int64 {
		reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.logOffsets = true; return tt })
		w := workloads.Workload{RW: "randread", Size: 4 << 20, IOSize: 1 << 20, RandSeed: seed, IODepth: iodepth}
		if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w}); err != nil {
			t.Fatal(err)
		}
		o := append([]int64(nil), (*opened)[0].offsets...)
		sort.Slice(o, func(i, j int) bool { return o[i] < o[j] })
		return o
	}
	a, b, c := offsets(7, 1), offsets(7, 8), offsets(8, 1)
	if len(a) != 256 || !equal(a, b) {
		t.Fatal("same seed gave different offsets")
	}
	if equal(a, c) {
		t.Fatal("different seeds gave the same offsets")
	}
}

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRateLimit(t *testing.T) {
	cases := []struct {
		name string
		w    workloads.Workload
		want float64 // I/Os per second
	}{
		{"rate_iops", workloads.Workload{RW: "randread", Size: 1 << 20, RateIOPS: [2]int64{500, 0}, Runtime: time.Second, TimeBased: true, IODepth: 4}, 500},
		{"rate bytes", workloads.Workload{RW: "write", Size: 1 << 20, Rate: [2]int64{0, 2 << 20}, Runtime: time.Second, TimeBased: true}, 512},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg, _ := registry(t, memTarget)
			r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: c.w})
			if err != nil {
				t.Fatal(err)
			}
			var iops float64
			if r.Read != nil {
				iops += r.Read.IOPS
			}
			if r.Write != nil {
				iops += r.Write.IOPS
			}
			// A limiter must never exceed its cap; below it, a loaded machine may starve the
			// run, so the lower bound only catches a limiter that throttles far too hard.
			if iops > c.want*1.05 || iops < c.want*0.5 {
				t.Errorf("IOPS %.1f, want at most %.0f (+5%%) and not far below", iops, c.want)
			}
		})
	}
}

// corruptingTarget flips a byte of every read of one block.
type corruptingTarget struct {
	*testTarget
	at int64
}

func (c *corruptingTarget) ReadAt(b []byte, off int64) (int, error) {
	n, err := c.testTarget.ReadAt(b, off)
	if off == c.at && n > 100 {
		b[100] ^= 0xff
	}
	return n, err
}

func TestVerifyCatchesCorruption(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		r := &backends.Registry{}
		r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
			tt := memTarget(p.Size)
			if !corrupt {
				return tt, nil
			}
			return &corruptingTarget{testTarget: tt, at: 40960}, nil
		}})
		w := workloads.Workload{RW: "randwrite", Size: 1 << 20, Verify: "crc32c", IODepth: 4}
		res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w})
		if err != nil {
			t.Fatal(err)
		}
		v := res.Verify
		if v == nil || v.Checked != 256 {
			t.Fatalf("verify %+v, want 256 blocks checked", v)
		}
		if !corrupt && v.Mismatches != 0 {
			t.Fatalf("clean target: %d mismatches: %+v", v.Mismatches, v.First)
		}
		if corrupt && (v.Mismatches != 1 || v.First[0].Offset != 40960 || !strings.Contains(v.First[0].Reason, "crc32c")) {
			t.Fatalf("corrupted block: got %+v", v)
		}
	}
}

func TestVerifyDetectsStaleData(t *testing.T) {
	// A target that drops every write to one block after the first: the read-back finds the
	// first generation where a later one was written.
	m, _ := mem.New(1 << 20)
	var writes atomic.Int64
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(context.Context, *url.URL, backends.OpenParams) (backends.Target, error) {
		return &droppingTarget{Target: m, at: 0, writes: &writes}, nil
	}})
	w := workloads.Workload{RW: "randwrite", Size: 1 << 20, IOSize: 2 << 20, Verify: "crc32c"}
	res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verify.Mismatches != 1 || !strings.Contains(res.Verify.First[0].Reason, "stale") {
		t.Fatalf("got %+v, want one stale block", res.Verify)
	}
}

type droppingTarget struct {
	*mem.Target
	at     int64
	writes *atomic.Int64
}

func (d *droppingTarget) WriteAt(b []byte, off int64) (int, error) {
	if off == d.at && d.writes.Add(1) > 1 {
		return len(b), nil
	}
	return d.Target.WriteAt(b, off)
}

func TestTargetErrorGivesPartialResult(t *testing.T) {
	reg, _ := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.failAfter = 100; return tt })
	w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: 5 * time.Second, TimeBased: true, IODepth: 2}
	start := time.Now()
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("err = %v, want the injected error", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("run took %s after the error", time.Since(start))
	}
	if r == nil || r.Complete || r.Error == "" || r.Read.IOs < 99 || r.Read.Errors < 1 {
		t.Fatalf("partial result %+v", r)
	}
}

// A target that stops answering is given up on after the grace period, in both submission
// modes; a queue is drained and closed.
func TestHungTargetDoesNotHangRun(t *testing.T) {
	for _, c := range []struct {
		iodepth int
		mode    string
		minIOs  int64
	}{
		{1, SubmissionGoroutines, 50},
		// The test queue does its I/O in Submit, so the hung 51st blocks the driver there:
		// the I/Os it submitted before in the same round are reaped only after the deadline,
		// outside the measurement (up to iodepth-1 of the 50 that completed).
		{4, SubmissionQueue, 47},
	} {
		t.Run(c.mode, func(t *testing.T) {
			reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.hangAfter = 50; return tt })
			w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: 200 * time.Millisecond, TimeBased: true, IODepth: c.iodepth}
			start := time.Now()
			r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, StallTimeout: time.Second, Grace: 500 * time.Millisecond})
			if err == nil {
				t.Fatal("want an error for a hung target")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("run took %s", d)
			}
			if r == nil || r.Submission != c.mode || r.Complete || r.Read == nil || r.Read.IOs > 50 || r.Read.IOs < c.minIOs {
				t.Fatalf("partial result %+v", r)
			}
			for _, q := range (*opened)[0].queues {
				if !q.closed || q.submitted != q.reaped {
					t.Errorf("queue %+v: want closed, every I/O reaped", q)
				}
			}
		})
	}
}

func TestCancelGivesPartialResult(t *testing.T) {
	reg, _ := registry(t, memTarget)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: time.Minute, TimeBased: true}
	r, err := Run(ctx, Config{Target: "test://", Registry: reg, Workload: w})
	if err == nil || r == nil || r.Complete || r.Read.IOs == 0 {
		t.Fatalf("err %v, result %+v", err, r)
	}
}

func TestRampAndSeries(t *testing.T) {
	reg, _ := registry(t, func(size int64) *testTarget { return memTarget(size) })
	w := workloads.Workload{RW: "randread", Size: 1 << 20, RateIOPS: [2]int64{1000, 0}, RampTime: 200 * time.Millisecond, Runtime: 500 * time.Millisecond, TimeBased: true}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// At 1000 IOPS, 700 ms of running hold at most ~700 I/Os of which the 200 ms ramp's must
	// not be counted: at most ~500 measured. (Upper bounds hold however loaded the machine.)
	if r.RuntimeNS > int64(500*time.Millisecond) {
		t.Errorf("runtime %s, want at most 500ms (ramp excluded)", time.Duration(r.RuntimeNS))
	}
	if n := r.Read.IOs; n > 525 || n < 200 {
		t.Errorf("%d I/Os measured, want at most ~500 (ramp excluded)", n)
	}
	var sum int64
	for i, p := range r.Series.Points {
		sum += p.Read.IOs
		last := i == len(r.Series.Points)-1
		if !last && p.TNS != int64(i+1)*int64(100*time.Millisecond) {
			t.Errorf("point %d ends at %d ns, want every 100ms", i, p.TNS)
		}
		if p.Read.IOs > 0 && p.Read.LatP50 <= 0 {
			t.Errorf("point %d has I/Os but no latency", i)
		}
	}
	if sum != r.Read.IOs {
		t.Errorf("series sums to %d I/Os, total %d", sum, r.Read.IOs)
	}
}

func TestValidationErrors(t *testing.T) {
	reg, _ := registry(t, memTarget)
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Target: "nosuch://x", Registry: reg}, "unknown backend"},
		{Config{Target: "test://?foo=1", Registry: reg}, "unknown option"},
		{Config{Target: "test://", Registry: reg, Workload: workloads.Workload{RW: "sideways"}}, "rw="},
		{Config{Target: "test://", Registry: reg, Workload: workloads.Workload{Verify: "rot13"}}, "verify"},
		{Config{Target: "", Registry: reg}, "empty target"},
	}
	for _, c := range cases {
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.cfg.Target, err, c.want)
		}
	}
}

func TestPermutationIsBijection(t *testing.T) {
	for _, n := range []uint64{1, 2, 3, 7, 64, 1000, 4097} {
		p := newPermutation(n, 42)
		seen := make([]bool, n)
		for i := uint64(0); i < n; i++ {
			v := p.at(i)
			if v >= n || seen[v] {
				t.Fatalf("n=%d: at(%d)=%d repeats or out of range", n, i, v)
			}
			seen[v] = true
		}
	}
}

func TestFsyncIsMeasured(t *testing.T) {
	reg, _ := registry(t, memTarget)
	w := workloads.Workload{RW: "write", Size: 1 << 20, Fsync: 4}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sync == nil || r.Sync.IOs != 64 || r.Sync.Lat.N != 64 {
		t.Fatalf("sync stats %+v, want 64 syncs (256 writes, fsync=4)", r.Sync)
	}
}

// A time-based run stops workers at the deadline between choosing a block and writing it:
// the block must keep the generation it really holds, or the read-back reports false
// mismatches (one per worker).
func TestVerifyTimeBasedDeadlineNoFalseMismatches(t *testing.T) {
	for _, rw := range []string{"write", "randwrite", "randrw"} {
		reg, _ := registry(t, memTarget)
		w := workloads.Workload{RW: rw, Size: 4 << 20, Verify: "crc32c", IODepth: 8, Runtime: 200 * time.Millisecond, TimeBased: true}
		r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
		if err != nil {
			t.Fatal(err)
		}
		if r.Verify.Mismatches != 0 || r.Verify.Checked == 0 {
			t.Errorf("%s: verify %+v, want blocks checked and no mismatches", rw, r.Verify)
		}
	}
}

// With verify, a worker that draws a block another worker has in flight waits for it: a
// size-limited job still does every I/O of its sequence.
func TestVerifyDoesEveryIO(t *testing.T) {
	reg, _ := registry(t, memTarget)
	w := workloads.Workload{RW: "randwrite", Size: 1 << 20, IOSize: 8 << 20, BS: [2]workloads.BlockSize{workloads.Fixed(16384), workloads.Fixed(16384)},
		NumJobs: 2, IODepth: 8, Verify: "crc32c"}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if r.Write.IOs != 1024 || r.Verify.Mismatches != 0 {
		t.Fatalf("%d writes (want 1024), verify %+v", r.Write.IOs, r.Verify)
	}
}

// stopAfter is an Observer that closes stop once n I/Os have completed.
// stopAfter closes stop once every one of its jobs has seen n completions (jobs start at
// different times on a busy machine: counting all together could stop before one began).
type stopAfter struct {
	n    int64
	done [2]atomic.Int64 // per job
	left atomic.Int32    // jobs still short of n
	once sync.Once
	stop chan struct{}
}

func newStopAfter(n int64, jobs int) *stopAfter {
	s := &stopAfter{n: n, stop: make(chan struct{})}
	s.left.Store(int32(jobs))
	return s
}

func (s *stopAfter) Observe(c Completion) {
	if s.done[c.Job].Add(1) == s.n && s.left.Add(-1) == 0 {
		s.once.Do(func() { close(s.stop) })
	}
}

// A time-based run ended by Stop drains, runs its verify pass (reading back every block it
// wrote, with the generation it last wrote there) and is complete.
func TestStopEndsRunGracefullyWithVerifyPass(t *testing.T) {
	for _, rw := range []string{"randwrite", "randrw"} {
		t.Run(rw, func(t *testing.T) {
			reg, _ := registry(t, memTarget)
			obs := newStopAfter(1000, 2)
			var phases []string
			w := workloads.Workload{RW: rw, Size: 1 << 20, Verify: "crc32c", IODepth: 4, NumJobs: 2, Runtime: time.Hour, TimeBased: true}
			r, err := Run(context.Background(), Config{
				Target: "test://", Registry: reg, Workload: w, Observer: obs, Stop: obs.stop,
				Progress: func(p Progress) {
					if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
						phases = append(phases, p.Phase)
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !r.Complete || r.Error != "" {
				t.Fatalf("complete %v, error %q", r.Complete, r.Error)
			}
			if r.Write == nil || r.Write.IOs < 500 || r.RuntimeNS <= 0 {
				t.Fatalf("writes %+v, runtime %d", r.Write, r.RuntimeNS)
			}
			// 2 jobs of 128 blocks each, all written many times over in 1000 I/Os each.
			if v := r.Verify; v == nil || v.Mismatches != 0 || v.Checked < 256 {
				t.Fatalf("verify %+v, want the verify pass to have checked every block", v)
			}
			if phases[len(phases)-1] != "verify" {
				t.Errorf("phases %v, want verify last", phases)
			}
		})
	}
}

// Stop closed before Run: no I/O at all, and still a complete (empty) run.
func TestStopBeforeStart(t *testing.T) {
	reg, opened := registry(t, memTarget)
	stop := make(chan struct{})
	close(stop)
	w := workloads.Workload{RW: "randwrite", Size: 1 << 20, Verify: "crc32c", IODepth: 4, Runtime: time.Hour, TimeBased: true}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, Stop: stop})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Complete || r.Write.IOs != 0 || r.Verify.Checked != 0 || r.Verify.Mismatches != 0 {
		t.Fatalf("complete %v, writes %d, verify %+v", r.Complete, r.Write.IOs, r.Verify)
	}
	if n := (*opened)[0].count.Load(); n != 0 {
		t.Fatalf("%d I/Os reached the target", n)
	}
}

// cancelOnRead cancels a context on the first read: with a write-only workload, that is the
// verify pass's first read.
type cancelOnRead struct {
	*testTarget
	cancel context.CancelFunc
}

func (c *cancelOnRead) ReadAt(b []byte, off int64) (int, error) {
	c.cancel()
	return c.testTarget.ReadAt(b, off)
}

// Cancelling ctx abandons the run even when Stop asked for a graceful end: before the start,
// or during the verify pass that the Stop led to.
func TestCancelWinsOverStop(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T) (*Config, context.Context)
		want string
	}{
		{"both before start", func(t *testing.T) (*Config, context.Context) {
			reg, _ := registry(t, memTarget)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			stop := make(chan struct{})
			close(stop)
			return &Config{Target: "test://", Registry: reg, Stop: stop}, ctx
		}, "run interrupted"},
		{"during the verify pass", func(t *testing.T) (*Config, context.Context) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			r := &backends.Registry{}
			r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
				return &cancelOnRead{testTarget: memTarget(p.Size), cancel: cancel}, nil
			}})
			obs := newStopAfter(500, 1)
			return &Config{Target: "test://", Registry: r, Observer: obs, Stop: obs.stop}, ctx
		}, "verify pass interrupted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, ctx := c.run(t)
			cfg.Workload = workloads.Workload{RW: "randwrite", Size: 1 << 20, Verify: "crc32c", IODepth: 4, Runtime: time.Hour, TimeBased: true}
			r, err := Run(ctx, *cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want %q wrapping context.Canceled", err, c.want)
			}
			if r == nil || r.Complete || !strings.Contains(r.Error, c.want) {
				t.Fatalf("result %+v, want incomplete", r)
			}
		})
	}
}

func TestPerJobStatsSumToTotals(t *testing.T) {
	reg, opened := registry(t, memTarget)
	w := workloads.Workload{RW: "randrw", Size: 1 << 20, NumJobs: 3, IODepth: 2, Fsync: 8}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, FirstJob: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(*opened) != 3 || len(r.Jobs) != 3 {
		t.Fatalf("%d targets, %d job stats, want 3 each", len(*opened), len(r.Jobs))
	}
	var ios, bytes, syncs, latN [2]int64
	for i, js := range r.Jobs {
		if js.Index != i || js.Read == nil || js.Write == nil || js.Sync == nil {
			t.Fatalf("job %d: %+v", i, js)
		}
		// Each job of a size-bound run transfers its own region once.
		if got := js.Read.Bytes + js.Write.Bytes; got != 1<<20 {
			t.Errorf("job %d transferred %d bytes, want %d", i, got, 1<<20)
		}
		for d, s := range []*results.DirStats{js.Read, js.Write} {
			ios[d] += s.IOs
			bytes[d] += s.Bytes
			latN[d] += s.Lat.N
		}
		syncs[0] += js.Sync.IOs
	}
	for d, s := range []*results.DirStats{r.Read, r.Write} {
		if ios[d] != s.IOs || bytes[d] != s.Bytes || latN[d] != s.Lat.N {
			t.Errorf("dir %d: jobs sum to %d I/Os %d bytes %d latencies, run has %d %d %d", d, ios[d], bytes[d], latN[d], s.IOs, s.Bytes, s.Lat.N)
		}
	}
	if syncs[0] != r.Sync.IOs {
		t.Errorf("syncs: jobs %d, run %d", syncs[0], r.Sync.IOs)
	}

	// One job: the run's totals are the job's, nothing is repeated.
	w.NumJobs = 1
	if r, err = Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w}); err != nil || r.Jobs != nil {
		t.Fatalf("numjobs=1: %v, jobs %+v", err, r.Jobs)
	}
}

func TestFirstJobNumbersTargets(t *testing.T) {
	var mu sync.Mutex
	var jobs []int
	reg := &backends.Registry{}
	reg.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		mu.Lock()
		jobs = append(jobs, p.Job)
		mu.Unlock()
		return memTarget(p.Size), nil
	}})
	w := workloads.Workload{RW: "read", Size: 64 << 10, NumJobs: 2}
	if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w, FirstJob: 3}); err != nil {
		t.Fatal(err)
	}
	sort.Ints(jobs)
	if len(jobs) != 2 || jobs[0] != 3 || jobs[1] != 4 {
		t.Errorf("backends saw jobs %v, want [3 4]", jobs)
	}
}

// stallingTarget answers I/O for the first stallAfter of a run (from its first I/O), then
// blocks every I/O until it is closed, as a server that was SIGSTOPped does; Close fails
// the blocked calls as the network backends do.
type stallingTarget struct {
	*testTarget
	stallAfter time.Duration
	once       sync.Once
	stallAt    time.Time
}

func (s *stallingTarget) wait() error {
	s.once.Do(func() { s.stallAt = time.Now().Add(s.stallAfter) })
	if time.Now().After(s.stallAt) {
		<-s.closed
		return errors.New("connection closed")
	}
	return nil
}

func (s *stallingTarget) ReadAt(b []byte, off int64) (int, error) {
	if err := s.wait(); err != nil {
		return 0, err
	}
	return s.Target.ReadAt(b, off)
}

func (s *stallingTarget) WriteAt(b []byte, off int64) (int, error) {
	if err := s.wait(); err != nil {
		return 0, err
	}
	return s.Target.WriteAt(b, off)
}

func TestStalledTargetFiguresEndWhenIOStopped(t *testing.T) {
	const stallAfter = 300 * time.Millisecond
	tests := []struct {
		name           string
		runtime, stall time.Duration // the runtime option and the engine's stall timeout
		wantErr        string
	}{
		// The stall timeout fires before the deadline.
		{"stall detected", 5 * time.Second, 400 * time.Millisecond, "target stalled"},
		// The deadline passes first; the grace period gives up on the I/Os in flight (the
		// issue's server SIGSTOPped at 3 s of a 20 s run, scaled down).
		{"deadline passes", 800 * time.Millisecond, 10 * time.Second, "target not responding"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &backends.Registry{}
			r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
				return &stallingTarget{testTarget: memTarget(p.Size), stallAfter: stallAfter}, nil
			}})
			w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: tc.runtime, TimeBased: true, IODepth: 2}
			// Goroutines: the target blocks in ReadAt, where a goroutine waits (a Queue does
			// not block in Submit, and testTarget's would bypass this wrapper).
			res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w,
				Interval: 100 * time.Millisecond, StallTimeout: tc.stall, Grace: 300 * time.Millisecond,
				Submission: SubmissionGoroutines})
			if err == nil {
				t.Fatal("no error for a target that stopped answering")
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "the last I/O completed") {
				t.Errorf("err = %v, want %q with the time of the last I/O", err, tc.wantErr)
			}
			if res == nil || res.Complete || res.Read == nil || res.Read.IOs == 0 {
				t.Fatalf("partial result %+v", res)
			}
			runtime := time.Duration(res.RuntimeNS)
			// The figures cover the time I/O was done: about stallAfter, far from the runtime option.
			if runtime < stallAfter-50*time.Millisecond || runtime > stallAfter+150*time.Millisecond {
				t.Errorf("runtime %s, want about %s (I/O stopped then), not the runtime option %s", runtime, stallAfter, tc.runtime)
			}
			if res.LastIONS != res.RuntimeNS {
				t.Errorf("last_io_ns %d, runtime_ns %d: want equal", res.LastIONS, res.RuntimeNS)
			}
			if time.Duration(res.StoppedAtNS) < stallAfter+200*time.Millisecond {
				t.Errorf("stopped_at %s: the failure cannot be seen before the stall timeout or grace", time.Duration(res.StoppedAtNS))
			}
			if res.Read.Errors != 2 {
				t.Errorf("%d errors, want the 2 I/Os in flight (iodepth 2) failed when closed", res.Read.Errors)
			}
			if want := float64(res.Read.IOs) / runtime.Seconds(); res.Read.IOPS < 0.99*want || res.Read.IOPS > 1.01*want {
				t.Errorf("IOPS %.0f, want %.0f: I/Os over the time I/O was done", res.Read.IOPS, want)
			}
			pts := res.Series.Points
			if len(pts) == 0 || pts[len(pts)-1].TNS > res.RuntimeNS {
				t.Fatalf("series ends at %d, after the last I/O at %d", pts[len(pts)-1].TNS, res.RuntimeNS)
			}
			if res.Status != "incomplete" {
				t.Errorf("status %q", res.Status)
			}
		})
	}
}

// TestVerifyRefusedOnDiscardingTarget: a backend that keeps nothing (null://) cannot be
// verified; the run is refused before it opens anything, not reported as all-mismatched.
func TestVerifyRefusedOnDiscardingTarget(t *testing.T) {
	reg := &backends.Registry{}
	opened := false
	reg.Register(backends.Backend{Scheme: "void", DiscardsData: true, Open: func(context.Context, *url.URL, backends.OpenParams) (backends.Target, error) {
		opened = true
		return memTarget(1 << 20), nil
	}})
	w := workloads.Workload{RW: "randwrite", Size: 1 << 20, Verify: "crc32c"}
	_, err := Run(context.Background(), Config{Target: "void://", Registry: reg, Workload: w})
	if err == nil || !strings.Contains(err.Error(), "nothing to verify") || opened {
		t.Errorf("err %v, opened %v: want a refusal before open", err, opened)
	}
	w.Verify = ""
	if _, err := Run(context.Background(), Config{Target: "void://", Registry: reg, Workload: w}); err != nil {
		t.Errorf("without verify: %v", err)
	}
}
