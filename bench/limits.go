package bench

import (
	"fmt"
	"math"

	"github.com/vmstorbench/vmstorbench/workloads"
)

// How much a job does, as fio decides it (backend.c: do_io, keep_running, io_bytes_exceeded;
// fio 3.33). A job runs rounds ("loops"); a round issues I/O until the job has issued
// io_size*loops bytes (or number_ios*loops I/Os) in all, or until its pass over the region
// is over: a sequential block no longer fits, or the random map has drawn every block. Each
// of the loops rounds starts afresh at the region's start; after them, rounds go on only
// while io_size was given and at least one maximum-size block of io_size is left to do.
//
// So a block size that does not divide the region never counts I/O beyond it:
// fio --size=16m --bs=3000 --rw=read (or write, randread, randwrite, randrw) does 5592 I/Os,
// 16,776,000 bytes; with --io_size=20m, 6991 I/Os (a second pass); with --loops=3, 16776.
// A non-uniform distribution or blockalign turns the random map off: no pass ends and the
// job does ceil(size/bs) I/Os (5593). rw=rw, whose directions each have their own position,
// also does 5593.

// ioLimits is when a job that is not time_based ends.
type ioLimits struct {
	ios   uint64 // I/Os per job; 0 = no limit
	bytes int64  // bytes per job; 0 = no limit
	// trim shrinks the I/O that crosses bytes so that the job ends exactly there (variable
	// block sizes: fio's random map and end-of-region check do the same).
	trim bool
}

func planLimits(w *workloads.Workload, s *genSpec) (ioLimits, error) {
	var lim ioLimits
	if w.Loops < 0 || w.NumberIOs < 0 {
		return lim, fmt.Errorf("loops=%d, number_ios=%d: must not be negative", w.Loops, w.NumberIOs)
	}
	switch w.RateProcess {
	case "", "linear", "poisson":
	default:
		return lim, fmt.Errorf("rate_process=%q: must be linear or poisson", w.RateProcess)
	}
	if w.TimeBased {
		// A time-based job runs for its runtime: fio ignores loops and number_ios then
		// (--time_based --runtime=1 --number_ios=100 does 3 million I/Os).
		return lim, nil
	}
	loops := uint64(max(w.Loops, 1))
	if w.NumberIOs > 0 {
		lim.ios = satMul(uint64(w.NumberIOs), loops)
	}
	size, sizeGiven := w.IOSize, w.IOSize > 0
	if !sizeGiven {
		size = s.region
	}
	all := satMul(uint64(size), loops) // bytes the rounds may issue in all
	if bs := s.sameBS; bs > 0 {
		capIOs := ceilDiv(all, uint64(bs))
		if lim.ios > 0 {
			capIOs = min(capIOs, lim.ios)
		}
		lim.ios = fioRounds(s.passIOs, capIOs, loops, uint64(size), uint64(bs), uint64(bs), sizeGiven)
		return lim, nil
	}
	// Variable sizes: count in units of the smallest size.
	unit := int64(math.MaxInt64)
	for d := range s.dirs {
		if s.dirs[d] {
			unit = min(unit, s.bs[d].min)
		}
	}
	capUnits := ceilDiv(all, uint64(unit))
	pass := uint64(s.passBytes / unit)
	total := fioRounds(pass, capUnits, loops, uint64(size), uint64(unit), uint64(s.maxBS), sizeGiven)
	if pass > 0 && total%pass == 0 {
		// The job ends at the end of a pass, where fio's last I/O shrinks to fit.
		lim.bytes, lim.trim = int64(total)*unit, true
	} else {
		// It ends within a pass, when it has issued enough: the last I/O may cross it.
		lim.bytes = int64(min(all, math.MaxInt64))
	}
	return lim, nil
}

// fioRounds is how many I/Os (of unit bytes) a job does when a pass over the region holds
// pass of them (0: a pass never ends) and the rounds stop at capIOs: loops rounds, then, if
// io_size was given, more while io_size - done >= maxBS (fio's keep_running).
func fioRounds(pass, capIOs, loops, size, unit, maxBS uint64, sizeGiven bool) uint64 {
	if pass == 0 {
		return capIOs
	}
	total := min(satMul(pass, loops), capIOs)
	if sizeGiven && total < capIOs {
		done := satMul(total, unit)
		if size >= maxBS && size-maxBS >= done {
			more := (size-maxBS-done)/satMul(pass, unit) + 1
			total = min(satAdd(total, satMul(more, pass)), capIOs)
		}
	}
	return total
}

func satMul(a, b uint64) uint64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func ceilDiv(a, b uint64) uint64 { return a/b + min(a%b, 1) }

// budget charges the I/O p to the job's byte limit: false when the job has done enough. With
// trim, the I/O that crosses the limit shrinks to end exactly there.
func (wk *worker) budget(p *plan) bool {
	st := wk.st
	if p.n == 0 {
		return false // the generator ended the job (seqPasses)
	}
	prev := wk.job.issued.Add(p.n) - p.n
	if prev >= st.limitBytes {
		return false
	}
	if st.trimBytes && prev+p.n > st.limitBytes {
		unit := wk.gen.s.bs[p.dir].min
		p.n = (st.limitBytes - prev) / unit * unit
		return p.n > 0
	}
	return true
}

// checkVerify refuses what the verify block map cannot follow: it tracks blocks of one fixed
// size, so every I/O must be one whole aligned block.
func checkVerify(w *workloads.Workload, s *genSpec) error {
	if w.Verify == "" {
		return nil
	}
	bs := w.BS[workloads.Read].Min
	for d := range s.dirs {
		if !s.dirs[d] {
			continue
		}
		if !s.bs[d].fixed() || s.bs[d].min != bs {
			return fmt.Errorf("verify=%s: needs one fixed block size (bssplit, bsrange)", w.Verify)
		}
		if s.random && s.align[d]%bs != 0 {
			return fmt.Errorf("verify=%s: blockalign=%d is not a multiple of bs=%d", w.Verify, s.align[d], bs)
		}
	}
	if !s.random && s.hole%bs != 0 {
		return fmt.Errorf("verify=%s: the rw offset modifier %d is not a multiple of bs=%d", w.Verify, s.hole, bs)
	}
	return nil
}
