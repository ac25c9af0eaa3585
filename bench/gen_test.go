package bench

import (
	"math"
	"sort"
	"testing"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// testGen builds the generator of job 0 of w over region bytes.
func testGen(t testing.TB, w workloads.Workload, region int64) *generator {
	t.Helper()
	w = w.Defaults()
	s, err := newGenSpec(&w, region)
	if err != nil {
		t.Fatal(err)
	}
	return newGenerator(s, w.RandSeed, 0, new(jobPos))
}

func split(pairs ...int64) []workloads.BSSplitEntry {
	var e []workloads.BSSplitEntry
	for i := 0; i+1 < len(pairs); i += 2 {
		e = append(e, workloads.BSSplitEntry{BS: pairs[i], Pct: int(pairs[i+1])})
	}
	return e
}

// bssplit shares, per direction, over 100k I/Os. fio 3.33 (--ioengine=null --norandommap
// --bssplit=4k/10:64k/50:32k/40, 93,072 I/Os): 10.24% 4k, 39.97% 32k, 49.79% 64k; and
// --bssplit=4k/50:6k/50 issues only 4k blocks (sizes round down to the smallest).
func TestBSSplitShares(t *testing.T) {
	const n = 100000
	cases := []struct {
		name string
		w    workloads.Workload
		want [2]map[int64]float64
	}{
		{"randread 4k/10:64k/50:32k/40", workloads.Workload{RW: "randread", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 10, 65536, 50, 32768, 40)}},
			[2]map[int64]float64{{4096: .10, 32768: .40, 65536: .50}}},
		{"read rounds to the smallest", workloads.Workload{RW: "read", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 50, 6144, 50)}},
			[2]map[int64]float64{{4096: 1}}},
		{"randrw per direction", workloads.Workload{RW: "randrw", BSSplit: [2][]workloads.BSSplitEntry{split(2048, 50, 4096, 50), split(4096, 90, 8192, 10)}},
			[2]map[int64]float64{{2048: .5, 4096: .5}, {4096: .9, 8192: .1}}},
		{"zero shares are skipped", workloads.Workload{RW: "write", BSSplit: [2][]workloads.BSSplitEntry{nil, split(4096, 0, 8192, 100, 0, 50)}},
			[2]map[int64]float64{nil, {8192: 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := testGen(t, c.w, 64<<20)
			var count [2]map[int64]int
			var total [2]int
			for i := uint64(0); i < n; i++ {
				p := g.next(i)
				if count[p.dir] == nil {
					count[p.dir] = map[int64]int{}
				}
				count[p.dir][p.n]++
				total[p.dir]++
				if p.off < 0 || p.off+p.n > 64<<20 || p.off%2048 != 0 {
					t.Fatalf("I/O %d: %+v outside the region or misaligned", i, p)
				}
			}
			for d := range c.want {
				for bs := range count[d] {
					if _, ok := c.want[d][bs]; !ok {
						t.Errorf("%s: unexpected size %d", workloads.Direction(d), bs)
					}
				}
				for bs, share := range c.want[d] {
					got := float64(count[d][bs]) / float64(total[d])
					if math.Abs(got-share) > 0.01 {
						t.Errorf("%s %d: share %.4f, want %.2f ±0.01", workloads.Direction(d), bs, got, share)
					}
				}
			}
		})
	}
}

func TestBlockAlign(t *testing.T) {
	w := workloads.Workload{RW: "randrw", BlockAlign: [2]int64{16384, 65536}, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(8192)}}
	g := testGen(t, w, 16<<20)
	seen := map[int64]bool{}
	for i := uint64(0); i < 50000; i++ {
		p := g.next(i)
		if p.off%w.BlockAlign[p.dir] != 0 || p.off+p.n > 16<<20 {
			t.Fatalf("I/O %d: %s at %d not aligned to %d", i, p.dir, p.off, w.BlockAlign[p.dir])
		}
		seen[p.off] = true
	}
	// 1024 16k-aligned offsets (256 of them 64k-aligned): all drawn.
	if len(seen) != 1024 {
		t.Errorf("%d distinct offsets, want 1024", len(seen))
	}
}

// hotShares draws n I/Os and returns the share of them that hit the hottest 10% and 1% of
// blocks, and how many blocks were hit.
func hotShares(g *generator, n uint64) (top10, top1 float64, distinct int) {
	hits := map[int64]int{}
	for i := uint64(0); i < n; i++ {
		hits[g.next(i).off/4096]++
	}
	v := make([]int, 0, len(hits))
	for _, c := range hits {
		v = append(v, c)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(v)))
	nb := int(g.s.nblocks)
	sum := func(k int) float64 {
		s := 0
		for _, c := range v[:min(k, len(v))] {
			s += c
		}
		return float64(s) / float64(n)
	}
	return sum(nb / 10), sum(nb / 100), len(v)
}

// The skew of each distribution against fio 3.33's: --size=16m --bs=4k --ioengine=null
// --rw=randread --io_size=1g --random_distribution=..., offsets from --write_iolog, share of
// the I/Os that hit the hottest 10% and 1% of the 4096 blocks. fio hashes ranks to blocks
// modulo the block count, so a few ranks collide (zipf:1.2 hits 4024 blocks); the
// permutation here has no collisions, hence the tolerance.
func TestDistributionSkewMatchesFio(t *testing.T) {
	cases := []struct {
		dist        string
		param       float64
		top10, top1 float64 // fio's
	}{
		{"zipf", 1.2, .8877, .7053},
		{"zipf", 0.8, .5601, .2821},
		{"pareto", 0.2, .7255, .5244},
		{"pareto", 0.5, .1221, .0131}, // pow = 1: uniform (fio's hash collisions add a little)
		{"normal", 10, .4259, .0468},
		{"normal", 50, .2143, .0229},
		{"normal", 0, .4495, .0499},
		{"random", 0, .0999, .0098}, // the random map: every block 64 times
	}
	for _, c := range cases {
		w := workloads.Workload{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: c.dist, Param: c.param}}}
		g := testGen(t, w, 16<<20)
		top10, top1, distinct := hotShares(g, 262144)
		t.Logf("%s:%v top10%% %.4f (fio %.4f) top1%% %.4f (fio %.4f), %d blocks", c.dist, c.param, top10, c.top10, top1, c.top1, distinct)
		if math.Abs(top10-c.top10) > 0.03 || math.Abs(top1-c.top1) > 0.03 {
			t.Errorf("%s:%v: hottest 10%% get %.4f, 1%% get %.4f; fio %.4f, %.4f", c.dist, c.param, top10, top1, c.top10, c.top1)
		}
	}
}

// fio 3.33, --random_distribution=zoned:60/10:30/20:8/30:2/40 (262,144 I/Os): 59.98%,
// 29.97%, 8.09%, 1.96% of the I/Os in the four zones.
func TestZonedShares(t *testing.T) {
	zones := func(z ...int64) []workloads.Zone {
		var r []workloads.Zone
		for i := 0; i+1 < len(z); i += 2 {
			r = append(r, workloads.Zone{AccessPct: int(z[i]), Size: z[i+1]})
		}
		return r
	}
	const region = 16 << 20
	cases := []struct {
		name  string
		dist  workloads.Distribution
		edges []int64 // zone ends in bytes
		want  []float64
	}{
		{"zoned", workloads.Distribution{Kind: "zoned", Zones: zones(60, 10, 30, 20, 8, 30, 2, 40)},
			[]int64{region / 10, region * 3 / 10, region * 6 / 10, region}, []float64{.60, .30, .08, .02}},
		{"zoned_abs", workloads.Distribution{Kind: "zoned_abs", Zones: zones(60, 2<<20, 0, 2<<20, 40, 12<<20)},
			[]int64{2 << 20, 4 << 20, region}, []float64{.60, 0, .40}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := testGen(t, workloads.Workload{RW: "randwrite", RandomDist: [2]workloads.Distribution{{}, c.dist}}, region)
			const n = 200000
			got := make([]float64, len(c.edges))
			for i := uint64(0); i < n; i++ {
				off := g.next(i).off
				z := sort.Search(len(c.edges), func(k int) bool { return off < c.edges[k] })
				got[z] += 1.0 / n
			}
			for z := range got {
				if math.Abs(got[z]-c.want[z]) > 0.01 {
					t.Errorf("zone %d: share %.4f, want %.2f", z, got[z], c.want[z])
				}
			}
		})
	}
}

// The plan of I/O i depends on i alone (and the seed): workers drawing in any order, any
// number of them, get the same plans.
func TestPlansDependOnTheIONumberOnly(t *testing.T) {
	dists := []workloads.Distribution{{}, {Kind: "zipf", Param: 1.1}, {Kind: "pareto", Param: 0.3}, {Kind: "normal", Param: 5},
		{Kind: "zoned", Zones: []workloads.Zone{{AccessPct: 90, Size: 10}, {AccessPct: 10, Size: 90}}}}
	for _, d := range dists {
		for _, mod := range []int64{0, 8} {
			w := workloads.Workload{RW: "randrw", RWModifier: mod, RandomDist: [2]workloads.Distribution{d, d},
				BSSplit: [2][]workloads.BSSplitEntry{split(4096, 50, 16384, 50), nil}}
			a, b := testGen(t, w, 8<<20), testGen(t, w, 8<<20)
			const n = 20000
			want := make([]plan, n)
			for i := range want {
				want[i] = a.next(uint64(i))
			}
			// Backwards, as if a late worker drew every I/O: the same plans.
			for i := n - 1; i >= 0; i-- {
				if p := b.next(uint64(i)); p != want[i] {
					t.Fatalf("%s mod %d: I/O %d gives %+v then %+v", d.Kind, mod, i, want[i], p)
				}
			}
			w.RandSeed = 99
			c := testGen(t, w, 8<<20)
			same := 0
			for i := range want {
				if c.next(uint64(i)) == want[i] {
					same++
				}
			}
			if same > n/2 {
				t.Errorf("%s: another seed gives %d of %d plans the same", d.Kind, same, n)
			}
		}
	}
}

// rw=randread:8 issues 8 I/Os per generated offset: fio 3.33 (--rw=randread:8 --bs=4k
// --size=16m) reads 1011712, 1015808, ... 1040384, then 12419072, ...; with
// --rw_sequencer=identical, 1011712 eight times, then 12419072.
func TestRandomModifierGroups(t *testing.T) {
	for _, seqr := range []string{"", "sequential", "identical"} {
		w := workloads.Workload{RW: "randread", RWModifier: 8, RWSequencer: seqr}
		g := testGen(t, w, 16<<20)
		var first int64
		bases := map[int64]bool{}
		for i := uint64(0); i < 8000; i++ {
			p := g.next(i)
			if i%8 == 0 {
				first = p.off
				bases[first] = true
				continue
			}
			want := first + int64(i%8)*4096
			if seqr == "identical" {
				want = first
			}
			if want+4096 > 16<<20 {
				continue // wrapped
			}
			if p.off != want {
				t.Fatalf("%s: I/O %d at %d, want %d", seqr, i, p.off, want)
			}
		}
		if len(bases) < 950 {
			t.Errorf("%s: %d distinct group offsets for 1000 groups", seqr, len(bases))
		}
	}
}

// The closed forms of fixed-size sequential offsets with holes agree with fio's
// get_next_seq_offset stepped I/O by I/O (seqStep), passes included.
func TestSeqHolesMatchFioStepping(t *testing.T) {
	for _, region := range []int64{16 << 10, 100000, 1 << 20} {
		for _, bs := range []int64{512, 3000, 4096} {
			for _, hole := range []int64{0, 1, 4096, 8192, 20000, -512, -4096, -8192, -12288, -99999, -(1 << 21)} {
				sp := newSeqSpec(bs, hole, region)
				last := int64(0)
				passLen := uint64(0)
				for k := uint64(0); k < 3000; k++ {
					off := seqStep(last, hole, region)
					if off < 0 || off+bs > region {
						// The pass is over; the next starts at 0.
						if passLen == 0 {
							passLen = k
						}
						off = 0
					}
					if got := sp.at(k); got != off {
						t.Fatalf("region %d bs %d hole %d: I/O %d at %d, fio steps to %d", region, bs, hole, k, got, off)
					}
					last = off + bs
				}
				if passLen != sp.pass && !(sp.pass == 0 && passLen == 0) {
					if !(passLen == 0 && sp.pass > 3000) {
						t.Errorf("region %d bs %d hole %d: pass of %d I/Os, fio %d", region, bs, hole, sp.pass, passLen)
					}
				}
			}
		}
	}
	// fio 3.33 --rw=read:8k --bs=4k --size=16m: 0, 12288, 24576 ...; read:-8k: 0, 16769024,
	// 16764928, 16760832 ...
	fwd, back := newSeqSpec(4096, 8192, 16<<20), newSeqSpec(4096, -8192, 16<<20)
	for k, want := range []int64{0, 12288, 24576, 36864} {
		if got := fwd.at(uint64(k)); got != want {
			t.Errorf("read:8k I/O %d at %d, fio %d", k, got, want)
		}
	}
	for k, want := range []int64{0, 16769024, 16764928, 16760832} {
		if got := back.at(uint64(k)); got != want {
			t.Errorf("read:-8k I/O %d at %d, fio %d", k, got, want)
		}
	}
}

// Hand-built workloads with out-of-range values give errors, never a panic.
func TestGenSpecRejectsBadValues(t *testing.T) {
	bad := []workloads.Workload{
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zipf", Param: 1}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zipf", Param: -1}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "pareto", Param: 1}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "normal", Param: 100}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "normal", Param: math.NaN()}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "bimodal"}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned", Zones: []workloads.Zone{{AccessPct: 50, Size: 80}, {AccessPct: 50, Size: 80}}}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned_abs", Zones: []workloads.Zone{{AccessPct: 100, Size: 1 << 40}}}}},
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned", Zones: []workloads.Zone{{AccessPct: -1, Size: 10}}}}},
		{RW: "randread", BlockAlign: [2]int64{-4096, 0}},
		{RW: "randread", RWModifier: -3},
		{RW: "randread", RWSequencer: "backwards"},
		{RW: "read", BSSplit: [2][]workloads.BSSplitEntry{split(64<<20, 100)}},
	}
	for i, w := range bad {
		w = w.Defaults()
		if _, err := newGenSpec(&w, 16<<20); err == nil {
			t.Errorf("case %d: %+v accepted", i, w)
		}
	}
	// Degenerate but harmless: planned without a panic.
	odd := []workloads.Workload{
		{RW: "randread", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 0)}},   // no weight: bs
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned"}}}, // no zones: uniform
		{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned_abs", Zones: []workloads.Zone{{AccessPct: 100, Size: 100}}}}},
		{RW: "randread", BlockAlign: [2]int64{1 << 30, 0}},
		{RW: "read", RWModifier: -(1 << 40)},
		{RW: "read", RWModifier: 1 << 40},
		{RW: "randrw", RWModifier: 1 << 40, BSSplit: [2][]workloads.BSSplitEntry{split(512, 1, 4096, 1), nil}},
		{RW: "rw", RWModifier: -4096, BS: [2]workloads.BlockSize{{Min: 512, Max: 8192}, workloads.Fixed(4096)}},
	}
	for _, w := range odd {
		g := testGen(t, w, 1<<20)
		for i := uint64(0); i < 5000; i++ {
			p := g.next(i)
			if p.off < 0 || p.n <= 0 || p.off+p.n > 1<<20 {
				t.Fatalf("%+v: I/O %d %+v outside the region", w, i, p)
			}
		}
	}
}

var sinkPlan plan

// The generator's per-I/O cost, alone (the engine benchmarks include the backend and the
// scheduler, noisy on a shared machine).
func BenchmarkGenerator(b *testing.B) {
	cases := []struct {
		name string
		w    workloads.Workload
	}{
		{"randread", workloads.Workload{RW: "randread"}},
		{"read", workloads.Workload{RW: "read"}},
		{"randrw", workloads.Workload{RW: "randrw"}},
		{"rw", workloads.Workload{RW: "rw"}},
		{"bsrange", workloads.Workload{RW: "randread", BS: [2]workloads.BlockSize{{Min: 4096, Max: 65536}}}},
		{"bssplit", workloads.Workload{RW: "randread", BSSplit: [2][]workloads.BSSplitEntry{split(4096, 10, 65536, 50, 32768, 40)}}},
		{"zipf", workloads.Workload{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zipf", Param: 1.2}}}},
		{"pareto", workloads.Workload{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "pareto", Param: 0.2}}}},
		{"normal", workloads.Workload{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "normal", Param: 10}}}},
		{"zoned", workloads.Workload{RW: "randread", RandomDist: [2]workloads.Distribution{{Kind: "zoned", Zones: []workloads.Zone{{AccessPct: 60, Size: 10}, {AccessPct: 30, Size: 20}, {AccessPct: 10, Size: 70}}}}}},
		{"randread:8", workloads.Workload{RW: "randread", RWModifier: 8}},
		{"read:8k", workloads.Workload{RW: "read", RWModifier: 8192}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			g := testGen(b, c.w, 1<<30)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sinkPlan = g.next(uint64(i))
			}
		})
	}
}

// A huge randread:N group with variable sizes costs the same per I/O as a short one, and
// its offsets still follow on.
func TestLongGroupIsCheap(t *testing.T) {
	w := workloads.Workload{RW: "randread", RWModifier: 1 << 40, BS: [2]workloads.BlockSize{{Min: 4096, Max: 16384}}}
	g := testGen(t, w, 1<<40)
	prev := g.next(0)
	for i := uint64(1); i < 200000; i++ {
		p := g.next(i)
		if p.off != prev.off+prev.n {
			t.Fatalf("I/O %d at %d, want %d", i, p.off, prev.off+prev.n)
		}
		prev = p
	}
	// A worker that jumps back recomputes the sum.
	if p := testGen(t, w, 1<<40).next(199999); p != prev {
		t.Fatalf("fresh generator: %+v, want %+v", p, prev)
	}
}

// A sequential job with variable sizes and holes ends where its pass ends (or its loops'
// passes): a position, not a byte count, knows where that is.
func TestSeqVariablePassEnds(t *testing.T) {
	end := func(loops int) (uint64, int64) {
		w := workloads.Workload{RW: "read", Size: 1 << 20, BSSplit: [2][]workloads.BSSplitEntry{split(4096, 50, 16384, 50)}, RWModifier: 12288, Loops: loops}
		g := testGen(t, w, 1<<20)
		var bytes int64
		for i := uint64(0); i < 100000; i++ {
			p := g.next(i)
			if p.n == 0 {
				if q := g.next(i + 1); q.n != 0 {
					t.Fatalf("I/O %d after the end: %+v", i+1, q)
				}
				return i, bytes
			}
			bytes += p.n
		}
		t.Fatal("no end")
		return 0, 0
	}
	n1, b1 := end(1)
	n3, b3 := end(3)
	// Passes of about 1 MiB / 22 KiB (mean size 10k + hole 12k) = 48 I/Os, 480 KiB each;
	// one that wraps inside goes on for one more.
	if n1 < 30 || n1 > 100 || b1 > 1<<20 || n3 < 2*n1 || n3 > 5*n1 || b3 > 3<<20 {
		t.Errorf("loops=1: %d I/Os, %d bytes; loops=3: %d, %d", n1, b1, n3, b3)
	}
}
