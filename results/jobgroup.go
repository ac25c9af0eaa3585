package results

import (
	"errors"
	"fmt"
	"strings"
)

// ReportUnits splits runs into what fio reports as one job each, in order: a run whose job
// has group_reporting joins the unit before it when that unit is the same set and reporting
// group (fio sums a group_reporting job into the statistics of the job before it in its
// group); every other run is a unit of its own.
func ReportUnits(runs []*Run) [][]*Run {
	var units [][]*Run
	for _, r := range runs {
		if n := len(units); n > 0 && r.Job != nil && r.Job.GroupReporting && sameGroup(units[n-1][0], r) {
			units[n-1] = append(units[n-1], r)
			continue
		}
		units = append(units, []*Run{r})
	}
	return units
}

func sameGroup(a, b *Run) bool {
	return a.Job != nil && b.Job != nil && a.Job.Set == b.Job.Set && a.Job.Group == b.Job.Group
}

// GroupReported returns runs with each report unit (ReportUnits) of several runs replaced by
// their sum (MergeGroup), for reports that show one row per job, or per group with
// group_reporting.
func GroupReported(runs []*Run) ([]*Run, error) {
	var out []*Run
	for _, u := range ReportUnits(runs) {
		r, err := MergeGroup(u)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// MergeGroup sums runs that ran concurrently (the jobs of one reporting group) into one run,
// as fio's group_reporting does: I/Os, bytes and errors add up, rates are the totals over
// the longest measured time, latency distributions merge through their histograms, the
// time series add up interval by interval, and the per-job figures of all runs are kept.
// The rest (workload, target, job name) is the first run's. One run is returned as it is.
func MergeGroup(runs []*Run) (*Run, error) {
	switch len(runs) {
	case 0:
		return nil, errors.New("results: merge group: no runs")
	case 1:
		return runs[0], nil
	}
	m := *runs[0]
	m.Jobs = nil
	m.Complete = true
	var ids, errs []string
	for _, r := range runs {
		ids = append(ids, r.ID)
		if r.Start.Before(m.Start) {
			m.Start = r.Start
		}
		if r.End.After(m.End) {
			m.End = r.End
		}
		m.RuntimeNS = max(m.RuntimeNS, r.RuntimeNS)
		m.Complete = m.Complete && r.Complete
		if r.Error != "" {
			errs = append(errs, r.Error)
		}
		// CPU use is the process's over each run's time: the runs overlapped, so the
		// largest is the closest to the group's.
		if r.CPU.UserNS+r.CPU.SysNS > m.CPU.UserNS+m.CPU.SysNS {
			m.CPU = r.CPU
		}
		if len(r.Jobs) > 0 {
			m.Jobs = append(m.Jobs, r.Jobs...)
		} else {
			m.Jobs = append(m.Jobs, JobStats{Read: r.Read, Write: r.Write, Sync: r.Sync})
		}
	}
	for i := range m.Jobs {
		m.Jobs[i].Index = i
	}
	m.ID = strings.Join(ids, "+")
	m.Error = strings.Join(errs, "; ")
	var err error
	pick := func(f func(*Run) *DirStats) []*DirStats {
		out := make([]*DirStats, len(runs))
		for i, r := range runs {
			out[i] = f(r)
		}
		return out
	}
	if m.Read, err = SumDirStats(pick(func(r *Run) *DirStats { return r.Read }), m.RuntimeNS); err != nil {
		return nil, fmt.Errorf("results: merge group %s read: %w", m.ID, err)
	}
	if m.Write, err = SumDirStats(pick(func(r *Run) *DirStats { return r.Write }), m.RuntimeNS); err != nil {
		return nil, fmt.Errorf("results: merge group %s write: %w", m.ID, err)
	}
	if m.Sync, err = SumDirStats(pick(func(r *Run) *DirStats { return r.Sync }), m.RuntimeNS); err != nil {
		return nil, fmt.Errorf("results: merge group %s sync: %w", m.ID, err)
	}
	m.Series = sumSeries(runs)
	m.Verify = sumVerify(runs)
	return &m, nil
}

// SumDirStats sums one direction of jobs that ran at the same time: counts add up, rates are
// the totals over runtimeNS, latencies merge (MergeLatency). nil entries are skipped; the
// result is nil when all are.
func SumDirStats(ds []*DirStats, runtimeNS int64) (*DirStats, error) {
	var out *DirStats
	var lats []Latency
	for _, d := range ds {
		if d == nil {
			continue
		}
		if out == nil {
			out = &DirStats{}
		}
		out.IOs += d.IOs
		out.Bytes += d.Bytes
		out.Errors += d.Errors
		lats = append(lats, d.Lat)
	}
	if out == nil {
		return nil, nil
	}
	if runtimeNS > 0 {
		secs := float64(runtimeNS) / 1e9
		out.IOPS, out.BWBps = float64(out.IOs)/secs, float64(out.Bytes)/secs
	}
	l, err := MergeLatency(lats)
	if err != nil {
		return nil, err
	}
	out.Lat = l
	return out, nil
}

// sumSeries adds the runs' time series point by point. The runs of a group start together
// (but for startdelay), so point i of each covers nearly the same time; the result is as
// long as the longest series. Latency figures of a point are the largest of the runs'
// (p50/p99/max) and the I/O-weighted mean, since the points keep no histograms.
func sumSeries(runs []*Run) Series {
	s := Series{IntervalNS: runs[0].Series.IntervalNS}
	for _, r := range runs {
		for i, p := range r.Series.Points {
			if i == len(s.Points) {
				s.Points = append(s.Points, Point{TNS: p.TNS})
			}
			q := &s.Points[i]
			q.TNS = max(q.TNS, p.TNS)
			q.Read = addPoint(q.Read, p.Read)
			q.Write = addPoint(q.Write, p.Write)
		}
	}
	return s
}

func addPoint(a, b *PointStats) *PointStats {
	if b == nil {
		return a
	}
	if a == nil {
		c := *b
		return &c
	}
	if n := a.IOs + b.IOs; n > 0 {
		a.LatMean = (a.LatMean*float64(a.IOs) + b.LatMean*float64(b.IOs)) / float64(n)
	}
	a.IOs += b.IOs
	a.Bytes += b.Bytes
	a.IOPS += b.IOPS
	a.BWBps += b.BWBps
	a.LatP50 = max(a.LatP50, b.LatP50)
	a.LatP99 = max(a.LatP99, b.LatP99)
	a.LatMax = max(a.LatMax, b.LatMax)
	return a
}

func sumVerify(runs []*Run) *Verify {
	var v *Verify
	for _, r := range runs {
		if r.Verify == nil {
			continue
		}
		if v == nil {
			v = &Verify{Algorithm: r.Verify.Algorithm}
		}
		v.Checked += r.Verify.Checked
		v.Mismatches += r.Verify.Mismatches
		v.First = append(v.First, r.Verify.First...)
	}
	return v
}
