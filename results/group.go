package results

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// TargetLabel is the Run.Labels key whose value, when set, names the target in reports
// instead of its URL (testbed endpoints, suite targets).
const TargetLabel = "target"

// TargetName is how reports name a run's target: its label, or its URL (stored redacted).
func TargetName(r *Run) string {
	if l := r.Labels[TargetLabel]; l != "" {
		return l
	}
	return r.Target.URL
}

// Scenario says how the workload ran: "host" for a plain run ("host degraded" on a DRBD pair
// measured although degraded), or the migration's mode,
// security and link ("precopy tls lan") for a run inside a migrating VM.
func Scenario(r *Run) string {
	m := r.Migration
	if m == nil {
		// A degraded replica (allow_degraded) is another case than a healthy one: reports
		// keep them apart and say so.
		if r.Replication != nil && r.Replication.Degraded != "" {
			return "host degraded"
		}
		return "host"
	}
	s := m.Mode + " " + m.Security
	if m.Link != nil && m.Link.Preset != "" {
		s += " " + m.Link.Preset
	}
	return s
}

// CaseKey identifies what a run measured: the same target, workload and scenario. Runs
// with equal keys are repeats of one case and may be aggregated or compared; runs with
// different keys may not.
type CaseKey struct {
	Target   string
	Workload string // canonical: the workload's JSON without its name and file name
	Scenario string
	// Job is the job-file job's name ("" for other runs): two jobs of a file with equal
	// workloads are still two jobs, not repeats of one.
	Job string
}

// KeyOf returns the case a run belongs to.
func KeyOf(r *Run) CaseKey {
	w := r.Workload
	w.Name, w.Filename = "", ""
	b, err := json.Marshal(w)
	if err != nil { // a Workload always marshals; keep a usable key regardless
		b = []byte(w.Describe())
	}
	k := CaseKey{Target: TargetName(r), Workload: string(b), Scenario: Scenario(r)}
	if r.Job != nil {
		k.Job = r.Job.Name
	}
	return k
}

// Case is one target × workload × scenario with all its runs (repeats), in the order given.
type Case struct {
	Key  CaseKey
	Runs []*Run
}

// Target, Workload and Scenario are the case's display names.
func (c *Case) Target() string { return c.Key.Target }

// Workload is the workload's one-line description (from the first run).
func (c *Case) Workload() string { return c.Runs[0].Workload.Describe() }

// WorkloadName is the workload's name (profile or job section), or its description.
func (c *Case) WorkloadName() string {
	if n := c.Runs[0].Workload.Name; n != "" {
		return n
	}
	return c.Workload()
}

func (c *Case) Scenario() string { return c.Key.Scenario }

// Complete returns the good runs (Run.OK: complete, and no verify mismatch); only they
// count towards figures. A run whose verify found mismatches is left out like an
// incomplete one, whatever its speed.
func (c *Case) Complete() []*Run {
	var out []*Run
	for _, r := range c.Runs {
		if r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// NotOK returns the runs that are not good runs (incomplete or with verify mismatches).
func (c *Case) NotOK() []*Run {
	var out []*Run
	for _, r := range c.Runs {
		if !r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// Dirs lists the directions any run of the case recorded, in the order read, write, sync.
func (c *Case) Dirs() []string {
	var out []string
	for _, d := range []string{"read", "write", "sync"} {
		for _, r := range c.Runs {
			if r.DirStats(d) != nil {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// Values returns metric m of direction dir for every complete run that has it.
func (c *Case) Values(dir string, m Metric) []float64 {
	var out []float64
	for _, r := range c.Complete() {
		if s := r.DirStats(dir); s != nil {
			if v, ok := m.Of(s); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// Summary is the spread of a metric over repeats.
func (c *Case) Summary(dir string, m Metric) (Summary, bool) {
	return Summarize(c.Values(dir, m))
}

// Group sorts runs into cases, in order of first appearance.
func Group(runs []*Run) []*Case {
	var cases []*Case
	index := map[CaseKey]*Case{}
	for _, r := range runs {
		k := KeyOf(r)
		c := index[k]
		if c == nil {
			c = &Case{Key: k}
			index[k] = c
			cases = append(cases, c)
		}
		c.Runs = append(c.Runs, r)
	}
	return cases
}

// DirStats returns the stats of "read", "write" or "sync".
func (r *Run) DirStats(dir string) *DirStats {
	switch dir {
	case "read":
		return r.Read
	case "write":
		return r.Write
	case "sync":
		return r.Sync
	}
	return nil
}

// Metric is one figure of a direction's stats that reports plot and compare checks.
type Metric struct {
	// Name is how users spell it: iops, bw, mean, p50, p99, p99.9, max.
	Name string
	// Label and Unit are for axes and tables; Scale converts the stored base unit
	// (I/O/s, B/s, ns) to Unit.
	Label string
	Unit  string
	Scale float64
	// HigherIsBetter is true for throughput, false for latency.
	HigherIsBetter bool
	of             func(*DirStats) (float64, bool)
}

// Of returns the metric's value in base units (I/O/s, B/s, ns).
func (m Metric) Of(s *DirStats) (float64, bool) { return m.of(s) }

func latMetric(name, label string, f func(Latency) (float64, bool)) Metric {
	return Metric{Name: name, Label: label, Unit: "µs", Scale: 1e-3, of: func(s *DirStats) (float64, bool) {
		if s.Lat.N == 0 {
			return 0, false
		}
		return f(s.Lat)
	}}
}

func pctMetric(name string, p float64) Metric {
	return latMetric(name, name+" latency", func(l Latency) (float64, bool) {
		v, ok := l.Percentiles[PercentileKey(p)]
		return float64(v), ok
	})
}

// Metrics are the metrics reports and comparisons know, by Name.
var Metrics = []Metric{
	{Name: "iops", Label: "IOPS", Unit: "IOPS", Scale: 1, HigherIsBetter: true,
		of: func(s *DirStats) (float64, bool) { return s.IOPS, s.IOs > 0 || s.IOPS > 0 }},
	{Name: "bw", Label: "Throughput", Unit: "MB/s", Scale: 1e-6, HigherIsBetter: true,
		of: func(s *DirStats) (float64, bool) { return s.BWBps, s.IOs > 0 || s.BWBps > 0 }},
	latMetric("mean", "mean latency", func(l Latency) (float64, bool) { return l.Mean, true }),
	pctMetric("p50", 50),
	pctMetric("p99", 99),
	pctMetric("p99.9", 99.9),
	latMetric("max", "max latency", func(l Latency) (float64, bool) { return float64(l.Max), true }),
}

// MetricByName finds a metric ("iops", "p99", ...; "lat" is "mean").
func MetricByName(name string) (Metric, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "lat" {
		name = "mean"
	}
	for _, m := range Metrics {
		if m.Name == name {
			return m, nil
		}
	}
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = m.Name
	}
	return Metric{}, fmt.Errorf("unknown metric %q (metrics: %s)", name, strings.Join(names, ", "))
}

// Summary is the median and range of a metric over repeats.
type Summary struct {
	N      int
	Median float64
	Min    float64
	Max    float64
	Values []float64 // sorted
}

// Spread is the range as a fraction of the median ((max-min)/median; 0 for one value).
func (s Summary) Spread() float64 {
	if s.N < 2 || s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / math.Abs(s.Median)
}

// HalfRange is half the range as a fraction of the median: the "±" of a repeated figure.
func (s Summary) HalfRange() float64 { return s.Spread() / 2 }

// Summarize returns the summary of xs; false when there are none.
func Summarize(xs []float64) (Summary, bool) {
	if len(xs) == 0 {
		return Summary{}, false
	}
	v := slices.Clone(xs)
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Summary{N: n, Median: med, Min: v[0], Max: v[n-1], Values: v}, true
}
