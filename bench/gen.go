package bench

import (
	"math/bits"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// The generator turns an I/O's sequence number into (direction, offset, length) without
// shared state beyond one counter, so iodepth workers of a job draw from one deterministic
// sequence: the same randseed gives the same offsets whatever the iodepth.

// mix64 is splitmix64's finaliser: a fast, well-distributed hash of a 64-bit value.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

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

// generator is per worker; it reads job-wide state (sequential positions) atomically.
type generator struct {
	w        *workloads.Workload
	seed     uint64
	region   int64 // bytes of the job's region
	base     int64 // first byte of the job's region
	align    int64
	nblocks  uint64
	readFrac uint64 // reads per 2^32 I/Os for mixed workloads
	mixed    bool
	random   bool
	// cached permutation for the current pass over the region
	pass uint64
	perm permutation
	pos  *[2]paddedInt64 // job-wide sequential positions per direction
}

func newGenerator(w *workloads.Workload, seed uint64, base, region int64, pos *[2]paddedInt64) *generator {
	align := min(w.BS[workloads.Read].Min, w.BS[workloads.Write].Min)
	g := &generator{
		w: w, seed: seed, base: base, region: region, align: align,
		nblocks:  uint64(region / align),
		readFrac: uint64(w.ReadFraction() * (1 << 32)),
		mixed:    w.IsMixed(),
		random:   w.IsRandom(),
		pos:      pos,
	}
	if g.nblocks == 0 {
		g.nblocks = 1
	}
	g.perm = newPermutation(g.nblocks, seed)
	return g
}

// next returns the plan of I/O number i of the job.
func (g *generator) next(i uint64) plan {
	var p plan
	switch {
	case g.mixed:
		if mix64(g.seed^0x5bd1e995^i)&(1<<32-1) >= g.readFrac {
			p.dir = workloads.Write
		}
	case !g.w.Does(workloads.Read):
		p.dir = workloads.Write
	}
	bs := g.w.BS[p.dir]
	p.n = bs.Min
	if bs.Max > bs.Min {
		steps := uint64((bs.Max-bs.Min)/bs.Min + 1)
		p.n = bs.Min + int64(mix64(g.seed^0x27d4eb2f^i)%steps)*bs.Min
		if p.n > bs.Max {
			p.n = bs.Max
		}
	}
	if g.random {
		pass := i / g.nblocks
		if pass != g.pass {
			g.pass = pass
			g.perm = newPermutation(g.nblocks, g.seed+pass*0x9e3779b97f4a7c15)
		}
		p.off = int64(g.perm.at(i%g.nblocks)) * g.align
	} else {
		raw := g.pos[p.dir].v.Add(p.n) - p.n
		p.off = raw % g.region
	}
	if p.off+p.n > g.region {
		// Wrap: a block that would cross the region's end starts over at its beginning
		// (sequential) or moves back to fit (random).
		if g.random {
			p.off = (g.region - p.n) / g.align * g.align
		} else {
			p.off = 0
		}
	}
	p.off += g.base
	return p
}
