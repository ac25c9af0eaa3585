package bench

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// Collection is split from analysis: a worker records each completion into its own interval
// accumulator (no locks, no sharing), hands it to the collector when an I/O completes in a
// later interval, and the collector merges intervals into the series and the run totals.
// Interval figures therefore come from that interval's completions, never from averages.

// acc accumulates one direction's completions.
type acc struct {
	ios, bytes, errs int64
	sum              int64   // ns
	sumSq            float64 // ns²
	min, max         int64
	hist             *hdr.Histogram
}

func (a *acc) record(lat, n int64) {
	a.ios++
	a.bytes += n
	a.sum += lat
	f := float64(lat)
	a.sumSq += f * f
	if lat < a.min || a.ios == 1 {
		a.min = lat
	}
	if lat > a.max {
		a.max = lat
	}
	v := lat
	if v > histMax {
		v = histMax
	} else if v < 1 {
		v = 1
	}
	_ = a.hist.RecordValue(v)
}

func (a *acc) merge(b *acc) {
	if b.ios > 0 {
		if a.ios == 0 || b.min < a.min {
			a.min = b.min
		}
		if b.max > a.max {
			a.max = b.max
		}
	}
	a.ios += b.ios
	a.bytes += b.bytes
	a.errs += b.errs
	a.sum += b.sum
	a.sumSq += b.sumSq
	a.hist.Merge(b.hist)
}

func (a *acc) reset() {
	h := a.hist
	h.Reset()
	*a = acc{hist: h}
}

// Latencies beyond the histogram's range are clamped in it while min/max/mean stay exact.
const histMax = int64(results.HistHighestNS)

var histPool = sync.Pool{New: func() any { return results.NewHistogram() }}

func newAcc() acc { return acc{hist: histPool.Get().(*hdr.Histogram)} }

func (a *acc) free() {
	if a.hist != nil {
		a.hist.Reset()
		histPool.Put(a.hist)
		a.hist = nil
	}
}

// interval is one worker's (or the merged) figures for one interval, per direction and, at
// index syncIdx, for the syncs of fsync=N (kept out of the time series).
type interval struct {
	idx int64
	dir [3]acc
}

const syncIdx = 2

func newInterval(idx int64) *interval {
	return &interval{idx: idx, dir: [3]acc{newAcc(), newAcc(), newAcc()}}
}

func (iv *interval) empty() bool {
	for i := range iv.dir {
		if iv.dir[i].ios+iv.dir[i].errs > 0 {
			return false
		}
	}
	return true
}

func (iv *interval) free() {
	for i := range iv.dir {
		iv.dir[i].free()
	}
}

// report is what a worker sends: a finished interval (may be nil) and its watermark, the
// first interval it may still record into. done marks the worker's last report.
type report struct {
	worker    int
	iv        *interval
	watermark int64
	done      bool
}

// collector merges reports from all workers.
type collector struct {
	intervalNS int64
	reports    chan report
	watermarks []int64
	pending    map[int64]*interval
	total      [3]acc
	points     []results.Point
	finalized  int64 // intervals below this are in points
	lastEndNS  atomic.Int64
	// jobOf maps a worker to its job and jobTotal holds each job's totals, when a run has
	// several jobs (nil otherwise: the run's totals are the job's). They are merged here,
	// from the reports, so that the workers' hot path does not change.
	jobOf    []int
	jobTotal [][3]acc
}

// newCollector makes the collector of a run whose worker i belongs to job jobOf[i].
func newCollector(jobOf []int, jobs int, intervalNS int64) *collector {
	workers := len(jobOf)
	c := &collector{
		intervalNS: intervalNS,
		reports:    make(chan report, 4*workers),
		watermarks: make([]int64, workers),
		pending:    map[int64]*interval{},
	}
	for d := range c.total {
		c.total[d] = newAcc()
	}
	if jobs > 1 {
		c.jobOf = jobOf
		// Their histograms are taken when a job first records into one (take): a direction
		// or sync a workload never does costs no 230 KiB histogram per job.
		c.jobTotal = make([][3]acc, jobs)
	}
	return c
}

// run consumes reports until every worker has sent its last one or stop closes.
func (c *collector) run(workers int, stop <-chan struct{}) {
	remaining := workers
	for remaining > 0 {
		select {
		case r := <-c.reports:
			c.take(r)
			if r.done {
				remaining--
			}
		case <-stop:
			// Workers stuck in I/O past the grace period: drain what arrived and give up.
			for {
				select {
				case r := <-c.reports:
					c.take(r)
				default:
					c.finalize(math.MaxInt64)
					return
				}
			}
		}
	}
	c.finalize(math.MaxInt64)
}

func (c *collector) take(r report) {
	if r.iv != nil {
		p := c.pending[r.iv.idx]
		if p == nil {
			p = newInterval(r.iv.idx)
			c.pending[r.iv.idx] = p
		}
		for d := range p.dir {
			p.dir[d].merge(&r.iv.dir[d])
		}
		if c.jobTotal != nil {
			jt := &c.jobTotal[c.jobOf[r.worker]]
			for d := range jt {
				if b := &r.iv.dir[d]; b.ios+b.errs > 0 {
					if jt[d].hist == nil {
						jt[d] = newAcc()
					}
					jt[d].merge(b)
				}
			}
		}
		r.iv.free()
	}
	c.watermarks[r.worker] = r.watermark
	low := int64(math.MaxInt64)
	for _, w := range c.watermarks {
		low = min(low, w)
	}
	c.finalize(low)
}

// finalize turns pending intervals below upTo into points and folds them into the totals.
func (c *collector) finalize(upTo int64) {
	if len(c.pending) == 0 {
		return
	}
	idxs := make([]int64, 0, len(c.pending))
	for i := range c.pending {
		if i < upTo {
			idxs = append(idxs, i)
		}
	}
	sort.Slice(idxs, func(a, b int) bool { return idxs[a] < idxs[b] })
	for _, i := range idxs {
		iv := c.pending[i]
		delete(c.pending, i)
		// Intervals with no completions at all still get a point, so stalls show as zeros.
		for j := c.finalized; j < i; j++ {
			c.points = append(c.points, results.Point{TNS: (j + 1) * c.intervalNS, Read: &results.PointStats{}, Write: &results.PointStats{}})
		}
		pt := results.Point{TNS: (i + 1) * c.intervalNS}
		pt.Read = pointStats(&iv.dir[workloads.Read], c.intervalNS)
		pt.Write = pointStats(&iv.dir[workloads.Write], c.intervalNS)
		c.points = append(c.points, pt)
		c.finalized = i + 1
		for d := range iv.dir {
			c.total[d].merge(&iv.dir[d])
		}
		iv.free()
	}
}

func pointStats(a *acc, intervalNS int64) *results.PointStats {
	ps := &results.PointStats{IOs: a.ios, Bytes: a.bytes}
	secs := float64(intervalNS) / 1e9
	ps.IOPS = float64(a.ios) / secs
	ps.BWBps = float64(a.bytes) / secs
	if a.ios > 0 {
		ps.LatMean = float64(a.sum) / float64(a.ios)
		ps.LatP50 = a.hist.ValueAtPercentile(50)
		ps.LatP99 = a.hist.ValueAtPercentile(99)
		ps.LatMax = a.max
	}
	return ps
}

// dirStats builds a direction's summary over runtimeNS.
func dirStats(a *acc, runtimeNS int64) *results.DirStats {
	ds := &results.DirStats{IOs: a.ios, Bytes: a.bytes, Errors: a.errs}
	if runtimeNS > 0 {
		ds.IOPS = float64(a.ios) / (float64(runtimeNS) / 1e9)
		ds.BWBps = float64(a.bytes) / (float64(runtimeNS) / 1e9)
	}
	ds.Lat = latency(a)
	return ds
}

// latency summarises a direction: percentiles and the encoded histogram from the HDR
// histogram, mean and standard deviation exact from the sums.
func latency(a *acc) results.Latency {
	if a.ios == 0 {
		return results.Latency{}
	}
	l := results.LatencyFrom(a.hist, a.min, a.max)
	l.Mean = float64(a.sum) / float64(a.ios)
	l.Stddev = 0
	if v := a.sumSq/float64(a.ios) - l.Mean*l.Mean; v > 0 {
		// fio reports the sample standard deviation.
		l.Stddev = math.Sqrt(v * float64(a.ios) / math.Max(1, float64(a.ios-1)))
	}
	return l
}
