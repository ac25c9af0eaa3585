package bench

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// The generator turns an I/O's sequence number into (direction, offset, length) without
// shared state beyond one counter, so iodepth workers of a job draw from one deterministic
// sequence: the same randseed gives the same offsets whatever the iodepth. Everything derived
// from the workload alone is computed once per run (genSpec) and only read on the hot path.

// mix64 is splitmix64's finaliser: a fast, well-distributed hash of a 64-bit value.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below maps a uniform 64-bit hash to [0, n) without a division (Lemire's multiply-high).
func below(h, n uint64) uint64 {
	hi, _ := bits.Mul64(h, n)
	return hi
}

// Hash keys: each choice of an I/O hashes its number with its own key so that the choices
// are independent.
const (
	keyDir   = 0x5bd1e995
	keyBS    = 0x27d4eb2f
	keyDist  = 0x165667b19e3779f9
	keyHot   = 0xc2b2ae3d27d4eb4f
	keyPoiss = 0x85ebca77c2b2ae63
)

// permutation is a keyed bijection on [0, n): a 4-round Feistel network on the smallest
// even bit width covering n, with cycle-walking. Random jobs visit every block exactly once
// per pass over the region (as fio's random map does) at no memory cost.
type permutation struct {
	n        uint64
	halfBits uint
	halfMask uint64
	keys     [4]uint64
}

func newPermutation(n, seed uint64) permutation {
	w := uint(bits.Len64(n - 1))
	if w < 2 {
		w = 2
	}
	half := (w + 1) / 2
	p := permutation{n: n, halfBits: half, halfMask: 1<<half - 1}
	for r := range p.keys {
		p.keys[r] = mix64(seed ^ uint64(r+1)*0xa0761d6478bd642f)
	}
	return p
}

func (p *permutation) at(i uint64) uint64 {
	if p.n <= 1 {
		return 0
	}
	x := i
	for {
		l, r := x>>p.halfBits, x&p.halfMask
		for _, k := range p.keys {
			l, r = r, l^(mix64(r^k)&p.halfMask)
		}
		x = l<<p.halfBits | r
		if x < p.n {
			return x
		}
	}
}

// plan is one I/O to issue.
type plan struct {
	dir workloads.Direction
	off int64
	n   int64
}

// bsSpec is how one direction picks its block sizes: fixed, a bsrange (multiples of min) or
// a bssplit.
type bsSpec struct {
	min, max int64
	steps    uint64 // bsrange: how many sizes, min, 2*min, ... max
	split    []bsSlot
	total    uint64 // bssplit: sum of the weights
}

type bsSlot struct {
	cum uint64 // weights up to and including this size
	bs  int64
}

func newBSSpec(b workloads.BlockSize, split []workloads.BSSplitEntry) bsSpec {
	var s bsSpec
	for _, e := range split {
		if e.BS <= 0 || e.Pct <= 0 {
			continue
		}
		if s.min == 0 || e.BS < s.min {
			s.min = e.BS
		}
	}
	if s.min > 0 {
		for _, e := range split {
			if e.BS <= 0 || e.Pct <= 0 {
				continue
			}
			// fio rounds each bssplit size down to a multiple of the smallest one (unless
			// bs_unaligned): bssplit=4k/50:6k/50 issues only 4k blocks. Do the same, so the
			// sizes, like bsrange's, tile the region in units of the smallest.
			bs := e.BS / s.min * s.min
			s.total += uint64(e.Pct)
			s.split = append(s.split, bsSlot{cum: s.total, bs: bs})
			s.max = max(s.max, bs)
		}
		if s.max == s.min {
			s.split = nil // one size after all: a fixed block size
		}
		return s
	}
	s.min, s.max = b.Min, b.Max
	if s.min <= 0 {
		s.min = 4096
	}
	if s.max < s.min {
		s.max = s.min
	}
	if s.max > s.min {
		s.steps = uint64((s.max-s.min)/s.min + 1)
	}
	return s
}

func (s *bsSpec) fixed() bool { return s.steps == 0 && s.split == nil }

// pick returns the size of the I/O whose hash is h.
func (s *bsSpec) pick(h uint64) int64 {
	switch {
	case s.split != nil:
		v := below(h, s.total)
		for _, sl := range s.split {
			if v < sl.cum {
				return sl.bs
			}
		}
		return s.split[len(s.split)-1].bs
	case s.steps > 0:
		return min(s.min+int64(below(h, s.steps))*s.min, s.max)
	}
	return s.min
}

// seqSpec gives the offsets of a sequential direction with a fixed block size in closed
// form, I/O k of the direction at offset at(k), reproducing fio's get_next_seq_offset with
// a hole (rw=read:8k, rw=write:-8k):
//
//   - the first I/O is at 0; each next one at the end of the previous plus the hole;
//   - forwards, a block that no longer fits ends the pass; the next pass starts at 0 again
//     (fio: the file is done; with more to do, a new round starts at 0). If the end plus the
//     hole reaches the region's end while the block still fitted, fio wraps to 0 within the
//     pass: the offsets cycle the same way and the pass never ends;
//   - backwards (hole < -bs), a position before the region's start wraps to its end plus the
//     hole: offsets 0, end-|hole|, end-|hole|+(bs+hole), ... cycling, never ending.
//
// fio: --rw=read:8k --bs=4k --size=16m reads 0, 12288, 24576, ... 1366 blocks then stops;
// --rw=read:-8k reads 0, 16769024, 16764928, ... (4096 blocks, limited by size).
type seqSpec struct {
	s      int64  // step: bs + hole
	period uint64 // forwards: offsets repeat every period I/Os
	back   bool
	start  int64  // backwards: offset of I/O 1
	cycle  uint64 // backwards: period of I/Os 1, 2, ...
	pass   uint64 // I/Os of a pass that ends (fio's "file done"); 0 = never ends
}

func newSeqSpec(bs, hole, region int64) seqSpec {
	s := bs + hole
	switch {
	case region < bs:
		// Unreachable after Validate (bs <= size); one I/O per pass keeps it harmless.
		return seqSpec{period: 1, pass: 1}
	case s > 0:
		k := uint64((region-bs)/s) + 1
		sp := seqSpec{s: s, period: k, pass: k}
		last := int64(k-1)*s + bs
		if hole > 0 && last < region && last+hole >= region {
			sp.pass = 0 // fio wraps to 0 inside the pass
		}
		return sp
	case s == 0:
		// rw=read:-4k with bs=4k: fio reads offset 0 over and over.
		return seqSpec{period: 1}
	case region+hole < 0:
		// The hole jumps back past the region: fio ends the pass after the first I/O.
		return seqSpec{period: 1, pass: 1}
	}
	return seqSpec{s: s, back: true, start: region + hole, cycle: uint64((region+hole)/-s) + 1}
}

func (sp *seqSpec) at(k uint64) int64 {
	if !sp.back {
		return int64(k%sp.period) * sp.s
	}
	if k == 0 {
		return 0
	}
	return sp.start + int64((k-1)%sp.cycle)*sp.s
}

// seqStep is fio's get_next_seq_offset for one direction of a region with variable block
// sizes: the offset after an I/O that ended at last (0: the start of a pass), or -1 when the
// pass is over.
func seqStep(last, hole, region int64) int64 {
	if last >= region {
		return -1
	}
	pos := last
	if pos != 0 && hole != 0 {
		pos += hole
		if pos >= region || pos < 0 {
			if hole > 0 {
				pos = 0
			} else {
				pos = region + hole
			}
		}
	}
	if pos < 0 {
		return -1
	}
	return pos
}

// genSpec is what a run's generators share, read-only.
type genSpec struct {
	region   int64
	readFrac uint64 // reads per 2^32 I/Os for mixed workloads
	mixed    bool
	random   bool
	dirs     [2]bool
	bs       [2]bsSpec
	maxBS    int64
	// sameBS is the block size when every I/O has the same one, else 0.
	sameBS int64
	// Random offsets: block numbers in units of unit (the smallest alignment in use), each
	// direction aligned to align[d].
	align   [2]int64
	unit    int64
	nblocks uint64
	dist    [2]distSpec
	// Sequential: hole after each I/O (fio ddir_seq_add); seq[d] when the direction's size
	// is fixed.
	hole     int64
	seq      [2]seqSpec
	seqFixed [2]bool
	// Random with rw=randread:N: N I/Os per generated offset, the next N-1 continuing from
	// it (rw_sequencer=sequential) or repeating it (identical).
	groupN    uint64
	identical bool
	// passIOs is the number of I/Os of a fresh pass over the region when fio would end it
	// (sequential end of region, random map exhausted); 0 = a pass never ends by itself.
	passIOs uint64
	// passBytes is the same in bytes for variable block sizes (0 = no end).
	passBytes int64
	// seqPasses, for a sequential job with variable sizes, is how many passes over the
	// region it makes before its end (0 = no limit): fio's loops when io_size is not given.
	// With holes, where a pass ends depends on the sizes drawn: only the position knows.
	seqPasses uint64
}

// newGenSpec checks what the engine relies on (whatever Validate let through: a hand-built
// Workload must not crash the engine) and precomputes the generator's tables.
func newGenSpec(w *workloads.Workload, region int64) (*genSpec, error) {
	if region <= 0 {
		return nil, errors.New("size: region must be positive")
	}
	s := &genSpec{
		region:   region,
		readFrac: uint64(w.ReadFraction() * (1 << 32)),
		mixed:    w.IsMixed(),
		random:   w.IsRandom(),
	}
	for d := workloads.Read; d <= workloads.Write; d++ {
		s.dirs[d] = w.Does(d)
		s.bs[d] = newBSSpec(w.BS[d], w.BSSplit[d])
		if s.dirs[d] {
			if s.bs[d].max > region {
				return nil, fmt.Errorf("bs (%s) %d is larger than the region (%d bytes)", d, s.bs[d].max, region)
			}
			s.maxBS = max(s.maxBS, s.bs[d].max)
		}
	}
	if s.maxBS == 0 {
		return nil, errors.New("rw: no direction to do")
	}
	for d := range s.dirs {
		if !s.dirs[d] {
			continue
		}
		b := &s.bs[d]
		switch {
		case !b.fixed():
			s.sameBS = -1
		case s.sameBS == 0:
			s.sameBS = b.min
		case s.sameBS != b.min:
			s.sameBS = -1
		}
	}
	if s.sameBS < 0 {
		s.sameBS = 0
	}
	if w.RWSequencer != "" && w.RWSequencer != "sequential" && w.RWSequencer != "identical" {
		return nil, fmt.Errorf("rw_sequencer=%q: must be sequential or identical", w.RWSequencer)
	}
	if s.random {
		if err := s.randomSpec(w); err != nil {
			return nil, err
		}
	} else {
		s.seqSpec(w)
	}
	return s, nil
}

func (s *genSpec) randomSpec(w *workloads.Workload) error {
	// fio's blockalign defaults to the direction's minimum block size; any other alignment
	// turns fio's random map off (init.c), as does a non-uniform distribution.
	randomMap := true
	for d := range s.dirs {
		if !s.dirs[d] {
			continue
		}
		a := w.BlockAlign[d]
		if a < 0 {
			return fmt.Errorf("blockalign (%s)=%d: must not be negative", workloads.Direction(d), a)
		}
		if a == 0 {
			a = s.bs[d].min
		}
		if a != s.bs[d].min {
			randomMap = false
		}
		s.align[d] = a
		if s.unit == 0 || a < s.unit {
			s.unit = a
		}
	}
	s.nblocks = uint64(s.region / s.unit)
	if s.nblocks == 0 {
		s.nblocks = 1
	}
	s.groupN = 1
	if w.RWModifier < 0 {
		return fmt.Errorf("rw=%s:%d: a random pattern takes a positive number of I/Os", w.RW, w.RWModifier)
	}
	if w.RWModifier > 1 {
		s.groupN = uint64(w.RWModifier)
		s.identical = w.RWSequencer == "identical"
	}
	for d := range s.dirs {
		if !s.dirs[d] {
			continue
		}
		ds, err := newDistSpec(w.RandomDist[d], s.nblocks, s.unit)
		if err != nil {
			return fmt.Errorf("random_distribution (%s): %w", workloads.Direction(d), err)
		}
		s.dist[d] = ds
		if ds.kind != distUniform {
			randomMap = false
		}
	}
	if randomMap {
		// A pass draws each block once (once per group of N I/Os with randread:N).
		s.passIOs = satMul(s.nblocks, s.groupN)
		if s.sameBS == 0 {
			// Variable sizes: fio's random map trims the I/Os so that a pass transfers
			// the whole region in units of the smallest size.
			s.passIOs = 0
			s.passBytes = int64(s.nblocks) * s.unit
		}
	}
	return nil
}

func (s *genSpec) seqSpec(w *workloads.Workload) {
	s.hole = w.RWModifier
	pass := uint64(0)
	for d := range s.dirs {
		if !s.dirs[d] || !s.bs[d].fixed() {
			continue
		}
		s.seqFixed[d] = true
		s.seq[d] = newSeqSpec(s.bs[d].min, s.hole, s.region)
		pass = s.seq[d].pass
	}
	// A mixed workload has a position per direction; fio ends the job when either reaches
	// the end, which depends on the mix: count such jobs by size (as fio does when neither
	// direction reaches the end, the common case) and let each direction wrap.
	if s.mixed {
		return
	}
	if s.sameBS > 0 {
		s.passIOs = pass
		return
	}
	if !w.TimeBased && w.IOSize == 0 {
		s.seqPasses = uint64(max(w.Loops, 1))
	}
	if s.hole == 0 {
		// Variable sizes: fio shrinks the last block of a pass to fit.
		d := workloads.Read
		if !s.dirs[d] {
			d = workloads.Write
		}
		s.passBytes = s.region / s.bs[d].min * s.bs[d].min
	}
}

// generator is per worker; it reads job-wide state (sequential positions) atomically.
type generator struct {
	s    *genSpec
	seed uint64
	base int64 // first byte of the job's region
	// cached permutation for the current pass over the region
	pass uint64
	perm permutation
	hot  permutation // scatters the hot blocks of non-uniform distributions
	pos  *jobPos
	// groupAdvance's running sum: I/Os advFirst..advNext-1 of a group take adv bytes
	advFirst, advNext uint64
	adv               int64
}

// jobPos is a job's shared sequential state: per direction, the I/Os done (fixed sizes) or
// the end of the last I/O (variable sizes, fio's last_pos); passes over the region started.
type jobPos struct {
	dir    [2]paddedInt64
	passes atomic.Int64
}

func newGenerator(s *genSpec, seed uint64, base int64, pos *jobPos) *generator {
	g := &generator{s: s, seed: seed, base: base, pos: pos, advFirst: math.MaxUint64}
	g.perm = newPermutation(s.nblocks, seed)
	for d := range s.dist {
		if s.dist[d].scatter {
			// fio hashes the rank of zipf, pareto and normal draws so that the hot blocks
			// are scattered over the region; a keyed permutation does it without collisions.
			g.hot = newPermutation(s.nblocks, seed^keyHot)
			break
		}
	}
	return g
}

// next returns the plan of I/O number i of the job.
func (g *generator) next(i uint64) plan {
	s := g.s
	var p plan
	switch {
	case s.mixed:
		if mix64(g.seed^keyDir^i)&(1<<32-1) >= s.readFrac {
			p.dir = workloads.Write
		}
	case !s.dirs[workloads.Read]:
		p.dir = workloads.Write
	}
	p.n = g.size(p.dir, i)
	if s.random {
		p.off = g.randomOff(p.dir, i, p.n)
	} else {
		p.off, p.n = g.seqOff(p.dir, i, p.n)
	}
	p.off += g.base
	return p
}

func (g *generator) size(d workloads.Direction, i uint64) int64 {
	b := &g.s.bs[d]
	if b.split == nil && b.steps == 0 {
		return b.min
	}
	return b.pick(mix64(g.seed ^ keyBS ^ i))
}

func (g *generator) randomOff(d workloads.Direction, i uint64, n int64) int64 {
	s := g.s
	grp, q := i, uint64(0)
	if s.groupN > 1 {
		grp, q = i/s.groupN, i%s.groupN
	}
	var blk uint64
	if s.dist[d].kind == distUniform {
		pass := grp / s.nblocks
		if pass != g.pass {
			g.pass = pass
			g.perm = newPermutation(s.nblocks, g.seed+pass*0x9e3779b97f4a7c15)
		}
		blk = g.perm.at(grp % s.nblocks)
	} else {
		blk = g.distBlock(d, grp)
	}
	off := int64(blk) * s.unit
	a := s.align[d]
	if a != s.unit {
		off = off / a * a
	}
	if q > 0 && !s.identical {
		// rw=randread:N, rw_sequencer=sequential: continue from the group's offset.
		off += g.groupAdvance(i, q)
		if off >= s.region {
			off %= s.region
		}
	}
	if off+n > s.region {
		// A block that would cross the region's end moves back to fit.
		off = max(0, (s.region-n)/a*a)
	}
	return off
}

// groupAdvance is how far I/O i, the q-th of its group, is from the group's first offset:
// the sizes of the group's I/Os before it, whatever their direction (fio keeps a position
// per direction; with randrw:N the group continues across both here). With variable sizes
// the sum is carried from the worker's previous I/O of the same group, so that a long group
// (randread:1000000) costs iodepth size draws per I/O, not q.
func (g *generator) groupAdvance(i, q uint64) int64 {
	if g.s.sameBS > 0 {
		return int64(q) * g.s.sameBS
	}
	first := i - q
	k, adv := first, int64(0)
	if g.advFirst == first && g.advNext <= i {
		k, adv = g.advNext, g.adv
	}
	for ; k < i; k++ {
		d := workloads.Read
		switch {
		case g.s.mixed:
			if mix64(g.seed^keyDir^k)&(1<<32-1) >= g.s.readFrac {
				d = workloads.Write
			}
		case !g.s.dirs[workloads.Read]:
			d = workloads.Write
		}
		adv += g.size(d, k)
	}
	g.advFirst, g.advNext, g.adv = first, i, adv
	return adv
}

// seqOff returns the offset and (possibly shrunk) size of a sequential I/O.
func (g *generator) seqOff(d workloads.Direction, i uint64, n int64) (int64, int64) {
	s := g.s
	if s.seqFixed[d] {
		k := i
		if s.mixed {
			k = uint64(g.pos.dir[d].v.Add(1) - 1)
		}
		return s.seq[d].at(k), n
	}
	// Variable sizes: a job-wide position per direction, as fio's last_pos.
	minBS := s.bs[d].min
	p := &g.pos.dir[d].v
	for {
		last := p.Load()
		off, m := seqStep(last, s.hole, s.region), n
		if off >= 0 && off+m > s.region {
			// fio draws another size until one fits; the largest that fits keeps the draw
			// deterministic and the pass's bytes the same.
			m = (s.region - off) / minBS * minBS
		}
		wrap := off < 0 || m < minBS
		if wrap {
			// The pass is over: the job ends (n = 0) or starts another pass at the region's
			// start. The position stays at the end for the other workers to see it too.
			if s.seqPasses > 0 && uint64(g.pos.passes.Load())+1 >= s.seqPasses {
				return 0, 0
			}
			off, m = 0, n
		}
		if p.CompareAndSwap(last, off+m) {
			if wrap {
				g.pos.passes.Add(1)
			}
			return off, m
		}
	}
}

// maxBlockSize is the largest I/O the workload issues (buffers are this big).
func (s *genSpec) maxBlockSize() int64 { return s.maxBS }
