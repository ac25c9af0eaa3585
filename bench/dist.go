package bench

import (
	"fmt"
	"math"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// Non-uniform random distributions (fio random_distribution). Each draw depends only on the
// seed, the direction and the number of the I/O (or of its rw=randread:N group), so the
// same seed gives the same offsets whatever the iodepth. As in fio, they do not visit each
// block once per pass: blocks repeat and some are never drawn.
//
// zipf, pareto and normal follow fio's lib/zipf.c and lib/gauss.c (fio 3.33) draw for draw:
// they produce a rank, 0 the most frequent, which fio hashes to scatter the hot blocks over
// the region; here a keyed permutation does that (no two ranks share a block, unlike a hash
// modulo the block count). zoned and zoned_abs are positional and not scattered.

type distKind uint8

const (
	distUniform distKind = iota
	distZipf
	distPareto
	distNormal
	distZoned
)

type distSpec struct {
	kind    distKind
	n       uint64 // blocks
	scatter bool
	// zipf (Gray et al.'s method, as fio): theta, alpha = 1/(1-theta), eta, zeta(n), 1+0.5^theta
	theta, alpha, eta, zetan, two float64
	// pareto: rank = (n-1) * u^pow, pow = log(h)/log(1-h)
	pow float64
	// normal: fio's stddev in blocks
	stddev int64
	// zoned: cumulative access shares and block ranges
	zones []zoneSpec
	total uint64
}

type zoneSpec struct {
	cum   uint64 // access shares up to and including this zone
	start uint64 // first block
	n     uint64 // blocks
}

func newDistSpec(d workloads.Distribution, nblocks uint64, unit int64) (distSpec, error) {
	ds := distSpec{n: nblocks}
	p := d.Param
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return ds, fmt.Errorf("%s: parameter %v", d.Kind, p)
	}
	switch d.Kind {
	case "", "random":
	case "zipf":
		// fio rejects theta 1 (alpha would be infinite) and needs theta > 0.
		if p <= 0 || p == 1 {
			return ds, fmt.Errorf("zipf:%v: theta must be positive and not 1", p)
		}
		ds.kind, ds.scatter, ds.theta = distZipf, true, p
		n := float64(nblocks)
		ds.zetan = zeta(nblocks, p)
		zeta2 := 1 + math.Pow(0.5, p)
		ds.alpha = 1 / (1 - p)
		ds.eta = (1 - math.Pow(2/n, 1-p)) / (1 - zeta2/ds.zetan)
		ds.two = zeta2
	case "pareto":
		if p <= 0 || p >= 1 {
			return ds, fmt.Errorf("pareto:%v: h must be between 0 and 1", p)
		}
		ds.kind, ds.scatter = distPareto, true
		ds.pow = math.Log(p) / math.Log(1-p)
	case "normal":
		if p < 0 || p >= 100 {
			return ds, fmt.Errorf("normal:%v: deviation must be 0 <= dev < 100", p)
		}
		ds.kind, ds.scatter = distNormal, true
		if p != 0 {
			ds.stddev = int64(math.Ceil(float64(nblocks) * p / 100))
			ds.stddev = min(ds.stddev, int64(nblocks/2))
		}
	case "zoned", "zoned_abs":
		if err := ds.zoned(d, nblocks, unit); err != nil {
			return ds, err
		}
	default:
		return ds, fmt.Errorf("%q: unknown distribution", d.Kind)
	}
	return ds, nil
}

// zoned lays the zones out from the region's start: sizes in percent of the region (zoned,
// fio rounds a zone's start and length down to blocks) or in bytes (zoned_abs). Zones with no
// accesses take no I/O but still take their room. Without zones fio falls back to uniform.
func (ds *distSpec) zoned(d workloads.Distribution, nblocks uint64, unit int64) error {
	var start, sizePct uint64
	for _, z := range d.Zones {
		if z.AccessPct < 0 || z.Size < 0 {
			return fmt.Errorf("%s: negative zone %d/%d", d.Kind, z.AccessPct, z.Size)
		}
		var first, n uint64
		if d.Kind == "zoned" {
			first = sizePct * nblocks / 100
			sizePct += uint64(z.Size)
			if sizePct > 100 {
				return fmt.Errorf("zoned: zone sizes add up to more than 100%%")
			}
			n = nblocks * uint64(z.Size) / 100
		} else {
			first = start
			n = uint64(z.Size / unit)
			start += n
			if start > nblocks {
				// fio: "zoned_abs sizes exceed file size".
				return fmt.Errorf("zoned_abs: zones add up to more than the region (%d bytes)", int64(nblocks)*unit)
			}
		}
		if z.AccessPct == 0 {
			continue
		}
		if n == 0 {
			// A zone smaller than a block still gets its accesses: on its first block.
			n = 1
		}
		first = min(first, nblocks-1)
		ds.total += uint64(z.AccessPct)
		ds.zones = append(ds.zones, zoneSpec{cum: ds.total, start: first, n: min(n, nblocks-first)})
	}
	if ds.total > 0 {
		ds.kind = distZoned
	}
	return nil
}

// zeta is sum_{k=1..n} k^-theta. fio sums at most 10M terms (and is approximate beyond);
// here 100k exact terms and the Euler-Maclaurin tail, far more precise than the draw needs.
func zeta(n uint64, theta float64) float64 {
	const exact = 100000
	m := min(n, exact)
	var s float64
	for k := m; k >= 1; k-- { // small terms first
		s += math.Pow(float64(k), -theta)
	}
	if n > m {
		a, b := float64(m), float64(n)
		var integral float64
		if theta == 1 {
			integral = math.Log(b / a)
		} else {
			integral = (math.Pow(b, 1-theta) - math.Pow(a, 1-theta)) / (1 - theta)
		}
		f := func(x float64) float64 { return math.Pow(x, -theta) }
		df := func(x float64) float64 { return -theta * math.Pow(x, -theta-1) }
		s += integral + (f(b)-f(a))/2 + (df(b)-df(a))/12
	}
	return s
}

// unit53 maps a hash to [0, 1).
func unit53(h uint64) float64 { return float64(h>>11) / (1 << 53) }

// rank draws a rank in [0, n) (0 the hottest for zipf, pareto; the bell's centre for normal)
// or, for zoned, a block, from the hash h of the I/O.
func (ds *distSpec) rank(h uint64) uint64 {
	n := ds.n
	var r uint64
	switch ds.kind {
	case distZipf:
		u := unit53(h)
		z := u * ds.zetan
		switch {
		case z < 1:
			r = 0
		case z < ds.two:
			r = 1
		default:
			r = uint64(float64(n) * math.Pow(ds.eta*u-ds.eta+1, ds.alpha))
		}
	case distPareto:
		r = uint64(float64(n-1) * math.Pow(unit53(h), ds.pow))
	case distNormal:
		// fio: the mean of 12 uniform draws in [0, n] (a bell around n/2 whose deviation
		// is n/12 whatever dev is), plus a uniform draw of width dev% of n, halved until
		// it stays in range.
		var sum uint64
		x := h
		for range 12 {
			x = mix64(x)
			sum += below(x, n+1)
		}
		sum = (sum + 11) / 12
		if ds.stddev > 0 {
			x = mix64(x)
			dev := int64(float64(ds.stddev)*float64(uint32(x))/(1<<32)) - ds.stddev/2
			for dev != 0 && (int64(sum)+dev < 0 || uint64(int64(sum)+dev) >= n) {
				dev /= 2
			}
			sum = uint64(int64(sum) + dev)
		}
		r = sum
	case distZoned:
		v := below(h, ds.total)
		z := &ds.zones[len(ds.zones)-1]
		for k := range ds.zones {
			if v < ds.zones[k].cum {
				z = &ds.zones[k]
				break
			}
		}
		return z.start + below(mix64(h), z.n)
	}
	if r >= n {
		r = n - 1
	}
	return r
}

// distBlock is the block of the I/O (or group) number grp for direction d.
func (g *generator) distBlock(d workloads.Direction, grp uint64) uint64 {
	ds := &g.s.dist[d]
	b := ds.rank(mix64(g.seed ^ keyDist ^ uint64(d)<<62 ^ grp))
	if ds.scatter {
		b = g.hot.at(b)
	}
	return b
}
