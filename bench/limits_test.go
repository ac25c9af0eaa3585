package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// Job sizes against fio 3.33's: fio --name=x --filename=/tmp/f --ioengine=psync --size=16m
// plus the options below; I/Os and bytes from its JSON output.
func TestJobEndsAsFio(t *testing.T) {
	fixed := func(n int64) [2]workloads.BlockSize {
		return [2]workloads.BlockSize{workloads.Fixed(n), workloads.Fixed(n)}
	}
	rng := [2]workloads.BlockSize{{Min: 3000, Max: 9000}, {Min: 3000, Max: 9000}}
	zipf := [2]workloads.Distribution{{Kind: "zipf", Param: 1.2}, {Kind: "zipf", Param: 1.2}}
	cases := []struct {
		name  string // fio options
		w     workloads.Workload
		ios   int64 // fio's; -1: not compared (variable sizes)
		bytes int64
		tol   float64 // relative, for sizes drawn at random
	}{
		// A block size that does not divide the region: only whole blocks, never past it.
		{"--bs=3000 --rw=read", workloads.Workload{RW: "read", BS: fixed(3000)}, 5592, 16776000, 0},
		{"--bs=3000 --rw=write", workloads.Workload{RW: "write", BS: fixed(3000)}, 5592, 16776000, 0},
		{"--bs=3000 --rw=randread", workloads.Workload{RW: "randread", BS: fixed(3000)}, 5592, 16776000, 0},
		{"--bs=3000 --rw=randwrite", workloads.Workload{RW: "randwrite", BS: fixed(3000)}, 5592, 16776000, 0},
		{"--bs=3000 --rw=randrw", workloads.Workload{RW: "randrw", BS: fixed(3000)}, 5592, 16776000, 0},
		{"--bs=3000 --rw=rw", workloads.Workload{RW: "rw", BS: fixed(3000)}, 5593, 16779000, 0},
		{"--bs=3000 --io_size=16776500 --rw=read", workloads.Workload{RW: "read", BS: fixed(3000), IOSize: 16776500}, 5592, 16776000, 0},
		{"--bs=3000 --io_size=10m --rw=randread", workloads.Workload{RW: "randread", BS: fixed(3000), IOSize: 10 << 20}, 3496, 10488000, 0},
		{"--bs=3000 --io_size=20m --rw=read", workloads.Workload{RW: "read", BS: fixed(3000), IOSize: 20 << 20}, 6991, 20973000, 0},
		{"--bs=3000 --io_size=20m --rw=randread", workloads.Workload{RW: "randread", BS: fixed(3000), IOSize: 20 << 20}, 6991, 20973000, 0},
		{"--bsrange=3000-9000 --rw=read", workloads.Workload{RW: "read", BS: rng}, -1, 16776000, 0},
		{"--bsrange=3000-9000 --rw=randread", workloads.Workload{RW: "randread", BS: rng}, -1, 16776000, 0},
		// loops
		{"--bs=3000 --loops=3 --rw=read", workloads.Workload{RW: "read", BS: fixed(3000), Loops: 3}, 16776, 50328000, 0},
		{"--bs=4k --loops=3 --rw=randread", workloads.Workload{RW: "randread", Loops: 3}, 12288, 50331648, 0},
		{"--bs=3000 --io_size=20m --loops=2 --rw=read", workloads.Workload{RW: "read", BS: fixed(3000), IOSize: 20 << 20, Loops: 2}, 11184, 33552000, 0},
		{"--bs=3000 --loops=2 --rw=rw", workloads.Workload{RW: "rw", BS: fixed(3000), Loops: 2}, 11185, 33555000, 0},
		// number_ios
		{"--bs=4k --number_ios=100 --rw=randread", workloads.Workload{RW: "randread", NumberIOs: 100}, 100, 409600, 0},
		{"--bs=4k --number_ios=5000 --rw=randread", workloads.Workload{RW: "randread", NumberIOs: 5000}, 4096, 16777216, 0},
		{"--bs=4k --number_ios=5000 --io_size=32m --rw=randread", workloads.Workload{RW: "randread", NumberIOs: 5000, IOSize: 32 << 20}, 5000, 20480000, 0},
		{"--bs=4k --number_ios=100 --loops=3 --rw=randread", workloads.Workload{RW: "randread", NumberIOs: 100, Loops: 3}, 300, 1228800, 0},
		{"--bs=4k --number_ios=1000 --rw=randrw", workloads.Workload{RW: "randrw", NumberIOs: 1000}, 1000, 4096000, 0},
		// rw offset modifiers
		{"--bs=4k --rw=read:8k", workloads.Workload{RW: "read", RWModifier: 8192}, 1366, 5595136, 0},
		{"--bs=4k --rw=read:8k --io_size=16m", workloads.Workload{RW: "read", RWModifier: 8192, IOSize: 16 << 20}, 4096, 16777216, 0},
		{"--bs=4k --rw=read:8k --loops=2", workloads.Workload{RW: "read", RWModifier: 8192, Loops: 2}, 2732, 11190272, 0},
		{"--bs=3000 --rw=read:8k", workloads.Workload{RW: "read", BS: fixed(3000), RWModifier: 8192}, 1499, 4497000, 0},
		// A pass of read:4k with bssplit=4k/50:16k/50 ends or wraps to the start depending
		// on the sizes drawn (fio --randseed=1, 2, 3: 12058624, 11898880, 16777216 bytes):
		// compared by a case whose pass covers more than the size.
		{"--bssplit=8k/50:16k/50 --rw=read:-4k", workloads.Workload{RW: "read", BSSplit: [2][]workloads.BSSplitEntry{split(8192, 50, 16384, 50)}, RWModifier: -4096}, -1, 16785408, 0.001},
		{"--bssplit=4k/50:16k/50 --rw=read", workloads.Workload{RW: "read", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 50, 16384, 50)}}, -1, 16777216, 0},
		{"--bssplit=4k/50:16k/50 --rw=randread", workloads.Workload{RW: "randread", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 50, 16384, 50)}}, -1, 16777216, 0},
		{"--bsrange=4k-16k --rw=randread:4", workloads.Workload{RW: "randread", BS: [2]workloads.BlockSize{{Min: 4096, Max: 16384}, {Min: 4096, Max: 16384}}, RWModifier: 4}, -1, 16777216, 0},
		{"--bs=3000 --rw=randread:8", workloads.Workload{RW: "randread", BS: fixed(3000), RWModifier: 8}, 5593, 16779000, 0},
		{"--bs=4k --rw=randread:8 --loops=4", workloads.Workload{RW: "randread", RWModifier: 8, Loops: 4}, 16384, 67108864, 0},
		{"--bs=4k --rw=read:-8k", workloads.Workload{RW: "read", RWModifier: -8192}, 4096, 16777216, 0},
		{"--bs=4k --rw=randread:8", workloads.Workload{RW: "randread", RWModifier: 8}, 4096, 16777216, 0},
		{"--bs=4k --rw=randread:8 --rw_sequencer=identical", workloads.Workload{RW: "randread", RWModifier: 8, RWSequencer: "identical"}, 4096, 16777216, 0},
		// no random map: no pass ends
		{"--bs=3000 --rw=randread --random_distribution=zipf:1.2", workloads.Workload{RW: "randread", BS: fixed(3000), RandomDist: zipf}, 5593, 16779000, 0},
		{"--bs=3000 --rw=randread --random_distribution=zipf:1.2 --loops=2", workloads.Workload{RW: "randread", BS: fixed(3000), RandomDist: zipf, Loops: 2}, 11185, 33555000, 0},
		{"--bs=4k --rw=randread --blockalign=64k", workloads.Workload{RW: "randread", BlockAlign: [2]int64{65536, 65536}}, 4096, 16777216, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.w.Size = 16 << 20
			reg, _ := registry(t, memTarget)
			r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: c.w})
			if err != nil {
				t.Fatal(err)
			}
			var ios, bytes int64
			for _, d := range []workloads.Direction{workloads.Read, workloads.Write} {
				if s := r.Dir(d); s != nil {
					ios, bytes = ios+s.IOs, bytes+s.Bytes
				}
			}
			if (c.ios >= 0 && ios != c.ios) || math.Abs(float64(bytes-c.bytes)) > c.tol*float64(c.bytes) {
				t.Errorf("%d I/Os, %d bytes; fio %d, %d", ios, bytes, c.ios, c.bytes)
			}
		})
	}
}

// Every offset of a job stays in its region, whatever the block sizes, holes and passes.
func TestOffsetsStayInRegion(t *testing.T) {
	ws := []workloads.Workload{
		{RW: "read", BS: [2]workloads.BlockSize{{Min: 3000, Max: 9000}}, IOSize: 40 << 20},
		{RW: "write", BSSplit: [2][]workloads.BSSplitEntry{nil, split(4096, 30, 65536, 70)}, RWModifier: 12288, IOSize: 40 << 20},
		{RW: "read", BS: [2]workloads.BlockSize{{Min: 4096, Max: 16384}}, RWModifier: -20480, IOSize: 40 << 20},
		{RW: "rw", BS: [2]workloads.BlockSize{workloads.Fixed(3000), {Min: 1000, Max: 5000}}, RWModifier: 5000, IOSize: 40 << 20},
		{RW: "randrw", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 30, 65536, 70), nil}, RWModifier: 16, IOSize: 40 << 20},
	}
	for _, w := range ws {
		w.Size, w.Offset = 4<<20, 1<<20
		reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.logOffsets = true; return tt })
		w.IODepth = 4
		r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
		if err != nil {
			t.Fatalf("%+v: %v", w, err)
		}
		if !r.Complete {
			t.Fatalf("%+v: %s", w, r.Error)
		}
		for _, off := range (*opened)[0].offsets {
			if off < w.Offset || off >= w.Offset+w.Size {
				t.Fatalf("%s: offset %d outside [%d, %d)", w.RW, off, w.Offset, w.Offset+w.Size)
			}
		}
	}
}

// Same seed, same offsets, whatever the iodepth, for the non-uniform distributions and the
// random rw modifiers too.
func TestSameSeedSameOffsetsSkewed(t *testing.T) {
	for _, w := range []workloads.Workload{
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zipf", Param: 1.2}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "normal", Param: 10}}},
		{RW: "randread", RWModifier: 4},
	} {
		var first []int64
		for _, depth := range []int{1, 8} {
			reg, opened := registry(t, func(size int64) *testTarget { tt := memTarget(size); tt.logOffsets = true; return tt })
			w.Size, w.IOSize, w.IODepth = 4<<20, 1<<20, depth
			if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w}); err != nil {
				t.Fatal(err)
			}
			o := sorted((*opened)[0].offsets)
			if first == nil {
				first = o
			} else if len(o) != 256 || !equal(first, o) {
				t.Errorf("%+v: iodepth %d gives other offsets than iodepth 1", w.RandomDist[0], depth)
			}
		}
	}
}

func sorted(o []int64) []int64 {
	o = append([]int64(nil), o...)
	for i := 1; i < len(o); i++ {
		for j := i; j > 0 && o[j] < o[j-1]; j-- {
			o[j], o[j-1] = o[j-1], o[j]
		}
	}
	return o
}

// thinktime paces a worker: no more than one I/O per thinktime, and the pause is not part
// of the latency. Upper bounds only: a loaded machine can only lower the count.
func TestThinkTime(t *testing.T) {
	cases := []struct {
		think  time.Duration
		spin   time.Duration
		blocks int
		depth  int
	}{
		{20 * time.Millisecond, 0, 0, 1},
		{20 * time.Millisecond, 5 * time.Millisecond, 0, 1},
		{20 * time.Millisecond, 0, 10, 2},
	}
	const runtime = 400 * time.Millisecond
	for _, c := range cases {
		reg, _ := registry(t, memTarget)
		w := workloads.Workload{RW: "randread", Size: 1 << 20, Runtime: runtime, TimeBased: true, IODepth: c.depth,
			ThinkTime: c.think, ThinkTimeSpin: c.spin, ThinkTimeBlocks: c.blocks}
		r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
		if err != nil {
			t.Fatal(err)
		}
		// Each worker: blocks I/Os, then a pause of think; the last pause may be cut short.
		blocks := int64(max(c.blocks, 1))
		most := int64(c.depth) * blocks * (int64(runtime/c.think) + 1)
		if r.Read.IOs > most || r.Read.IOs < 1 {
			t.Errorf("%+v: %d I/Os in %s, want 1..%d", c, r.Read.IOs, runtime, most)
		}
		if r.Read.Lat.Mean >= float64(c.think) {
			t.Errorf("%+v: mean latency %s includes the think time", c, time.Duration(r.Read.Lat.Mean))
		}
	}
}

// startdelay: waits before the first I/O, outside the runtime; a Stop during it ends the run
// with no I/O.
func TestStartDelay(t *testing.T) {
	const delay = 150 * time.Millisecond
	reg, opened := registry(t, memTarget)
	w := workloads.Workload{RW: "randread", Size: 1 << 20, StartDelay: delay}
	t0 := time.Now()
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Start.Sub(t0); d < delay {
		t.Errorf("run started %s after Run, want after the %s delay", d, delay)
	}
	if r.Read.IOs != 256 || (*opened)[0].count.Load() != 256 {
		t.Errorf("%d I/Os, want 256", r.Read.IOs)
	}
	if r.RuntimeNS > int64(r.End.Sub(r.Start)) {
		t.Errorf("runtime %d longer than the run after the delay", r.RuntimeNS)
	}

	stop := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	reg2, opened2 := registry(t, memTarget)
	w.StartDelay = time.Hour
	r, err = Run(context.Background(), Config{Target: "test://", Registry: reg2, Workload: w, Stop: stop})
	if err != nil || !r.Complete || (*opened2)[0].count.Load() != 0 {
		t.Fatalf("Stop during startdelay: err %v, result %+v", err, r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	reg3, _ := registry(t, memTarget)
	if _, err := Run(ctx, Config{Target: "test://", Registry: reg3, Workload: w}); err == nil {
		t.Fatal("cancel during startdelay: no error")
	}
}

// rate_process=poisson: exponential gaps whose mean is the rate's, the same for the same
// seed. On a fake clock (each I/O issued the moment its slot comes), so not timed.
func TestPoissonRate(t *testing.T) {
	gaps := func(poisson bool, seed uint64) []int64 {
		l := newLimiter(0, 1000) // 1 ms a gap on average
		l.poisson, l.seed = poisson, seed
		var now int64
		g := make([]int64, 100000)
		for i := range g {
			slot := l.reserve(now, 4096)
			next := l.next.Load()
			g[i] = next - slot
			now = slot
		}
		return g
	}
	stats := func(g []int64) (mean, cv float64) {
		var s, s2 float64
		for _, v := range g {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		mean = s / float64(len(g))
		return mean, math.Sqrt(s2/float64(len(g))-mean*mean) / mean
	}
	lin, p1, p2, p3 := gaps(false, 1), gaps(true, 1), gaps(true, 1), gaps(true, 2)
	if m, cv := stats(lin); m != 1e6 || cv > 1e-9 {
		t.Errorf("linear: mean %.0f cv %.3f, want 1ms, 0", m, cv)
	}
	m, cv := stats(p1)
	if math.Abs(m-1e6) > 0.02e6 || math.Abs(cv-1) > 0.05 {
		t.Errorf("poisson: mean gap %.0f ns (want 1ms ±2%%), coefficient of variation %.3f (want 1, exponential)", m, cv)
	}
	if !equal(p1, p2) || equal(p1, p3) {
		t.Error("poisson gaps: not the same for the same seed, or the same for another")
	}
}

// A rate-limited poisson run: no faster than its rate on average (upper bound only).
func TestPoissonRun(t *testing.T) {
	reg, _ := registry(t, memTarget)
	w := workloads.Workload{RW: "randread", Size: 1 << 20, RateIOPS: [2]int64{400, 0}, RateProcess: "poisson", Runtime: 500 * time.Millisecond, TimeBased: true}
	r, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	// 200 I/Os expected; a Poisson count of mean 200 exceeds 270 with probability < 1e-5 (the
	// 100 ms catch-up burst of the limiter adds at most 40).
	if r.Read.IOs > 310 || r.Read.IOs < 1 {
		t.Errorf("%d I/Os in 500ms at 400 IOPS", r.Read.IOs)
	}
}

// planJobs refuses what verify cannot follow.
func TestVerifyRefusesVariableLayouts(t *testing.T) {
	for _, w := range []workloads.Workload{
		{RW: "randwrite", Verify: "crc32c", BSSplit: [2][]workloads.BSSplitEntry{nil, split(4096, 50, 8192, 50)}},
		{RW: "randwrite", Verify: "crc32c", BlockAlign: [2]int64{0, 2048}},
		{RW: "write", Verify: "crc32c", RWModifier: 1000},
	} {
		reg, _ := registry(t, memTarget)
		w.Size = 1 << 20
		if _, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: w}); err == nil {
			t.Errorf("%+v: accepted", w)
		}
	}
}

func TestPlanLimitsEdges(t *testing.T) {
	cases := []struct {
		name string
		w    workloads.Workload
		want ioLimits
	}{
		{"time_based ignores number_ios and loops", workloads.Workload{RW: "randread", TimeBased: true, Runtime: time.Second, NumberIOs: 100, Loops: 3}, ioLimits{}},
		{"huge io_size and loops saturate", workloads.Workload{RW: "randread", IOSize: math.MaxInt64, Loops: math.MaxInt32,
			RandomDist: [2]workloads.Distribution{{Kind: "zipf", Param: 2}}}, ioLimits{ios: 1 << 51}},
		{"huge number_ios", workloads.Workload{RW: "read", NumberIOs: math.MaxInt64, Loops: 7}, ioLimits{ios: 7 * 4096}},
		{"bsrange bound by the region", workloads.Workload{RW: "read", BS: [2]workloads.BlockSize{{Min: 3000, Max: 9000}}}, ioLimits{bytes: 16776000, trim: true}},
		{"bsrange bound by io_size", workloads.Workload{RW: "randread", IOSize: 1 << 20, BS: [2]workloads.BlockSize{{Min: 3000, Max: 9000}}}, ioLimits{bytes: 1 << 20}},
	}
	for _, c := range cases {
		w := c.w
		w.Size = 16 << 20
		w = w.Defaults()
		s, err := newGenSpec(&w, w.Size)
		if err != nil {
			t.Fatal(err)
		}
		got, err := planLimits(&w, s)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	w := workloads.Workload{RW: "read", Size: 1 << 20, RateProcess: "bursty"}.Defaults()
	s, _ := newGenSpec(&w, w.Size)
	if _, err := planLimits(&w, s); err == nil {
		t.Error("rate_process=bursty accepted")
	}
}
