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
// security, link and storage method ("precopy tls lan", "precopy none wan mirror") for a
// run inside a migrating VM.
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
	link := ""
	if m.Link != nil {
		link = m.Link.Preset
	}
	name := ScenarioName(m.Mode, m.Security, link, m.Storage, m.MirrorCopyMode)
	if m.Libvirt != nil {
		name = UnderLibvirt(name)
	}
	return name
}

// UnderLibvirt is the name of a scenario run under libvirt: another case than the same
// scenario with QEMU processes vmstorbench starts ("precopy none libvirt").
func UnderLibvirt(scenario string) string { return scenario + " libvirt" }

// ScenarioName names a migration scenario: mode and security, the link preset when there
// is one, the storage method unless it is shared (as in results older than the field),
// and a mirror's copy mode unless it is the default background.
func ScenarioName(mode, security, link, storage, mirrorCopyMode string) string {
	s := mode + " " + security
	if link != "" {
		s += " " + link
	}
	if storage != "" && storage != StorageShared {
		s += " " + storage
		if storage == "mirror" && mirrorCopyMode != "" && mirrorCopyMode != "background" {
			s += " " + mirrorCopyMode
		}
	}
	return s
}

// StorageShared is Migration.Storage for both QEMUs opening one image (also when empty).
const StorageShared = "shared"

// StorageOf is a migration's storage method, "shared" for results older than the field.
func StorageOf(m *Migration) string {
	if m == nil || m.Storage == "" {
		return StorageShared
	}
	return m.Storage
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

// Values returns metric m of direction dir for every complete run that has it. A migration
// metric (Metric.Migration) has no direction: dir is ignored.
func (c *Case) Values(dir string, m Metric) []float64 {
	return MetricValues(c.Complete(), dir, m)
}

// MetricValues returns metric m of direction dir (ignored for a migration metric) for every
// run of runs that has it.
func MetricValues(runs []*Run, dir string, m Metric) []float64 {
	var out []float64
	for _, r := range runs {
		if v, ok := m.OfRun(r, dir); ok {
			out = append(out, v)
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

// Metric is one figure that reports plot and compare checks: of a direction's stats
// (iops, latency...), or of a run's migration (downtime, bytes, CPU-seconds...).
type Metric struct {
	// Name is how users spell it: iops, bw, mean, p50, p99, p99.9, max; downtime, pause,
	// stall, ... (MigrationMetrics).
	Name string
	// Label and Unit are for axes and tables; Scale converts the stored base unit
	// (I/O/s, B/s, ns, bytes, CPU-seconds, joules) to Unit.
	Label string
	Unit  string
	Scale float64
	// HigherIsBetter is true for throughput, false for latency, times, bytes and cost.
	HigherIsBetter bool
	// Migration is true for a figure of the run's migration (Run.Migration), which belongs
	// to no direction: compare reports it under the pseudo-direction MigrationDir.
	Migration bool
	of        func(*DirStats) (float64, bool)
	ofMig     func(*Migration) (float64, bool)
}

// MigrationDir is the direction compare and reports give migration metrics.
const MigrationDir = "migration"

// Of returns a direction metric's value in base units (I/O/s, B/s, ns); a migration
// metric has none in a direction's stats.
func (m Metric) Of(s *DirStats) (float64, bool) {
	if m.of == nil || s == nil {
		return 0, false
	}
	return m.of(s)
}

// OfRun returns the metric's value for a run: of direction dir's stats, or for a migration
// metric of the run's migration (dir ignored).
func (m Metric) OfRun(r *Run, dir string) (float64, bool) {
	if m.Migration {
		if r.Migration == nil || m.ofMig == nil {
			return 0, false
		}
		return m.ofMig(r.Migration)
	}
	return m.Of(r.DirStats(dir))
}

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

// msMetric is a migration duration stored in milliseconds; base unit ns, shown in ms.
func msMetric(name, label string, f func(*Migration) (float64, bool)) Metric {
	return Metric{Name: name, Label: label, Unit: "ms", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			v, ok := f(m)
			return v * 1e6, ok
		}}
}

// migrated reports whether a migration ran to completion (mode none migrates nothing).
func migrated(m *Migration) bool { return m.Outcome == "completed" && m.Mode != "none" }

// moved reports whether the run moved the VM or its disk to completion, and recorded the
// storage-method figures (results older than them have no migration time).
func moved(m *Migration) bool { return m.Outcome == "completed" && m.MigrationTimeMS > 0 }

// linkBytes is what the named links carried, both ways; false when none was counted.
func linkBytes(m *Migration, links ...string) (float64, bool) {
	n, ok := int64(0), false
	for _, t := range m.Traffic {
		if slices.Contains(links, t.Link) {
			n, ok = n+t.UpB+t.DownB, true
		}
	}
	return float64(n), ok
}

// ramBytes is the migration stream's bytes: counted on the link, else QEMU's own figure.
func ramBytes(m *Migration) (float64, bool) {
	if v, ok := linkBytes(m, "ram"); ok {
		return v, true
	}
	// A count from the last poll (RAMFigures) misses the end of the stream.
	return float64(m.TransferredB), m.TransferredB > 0 && m.RAMFigures == ""
}

// MigrationMetrics are the figures of a live migration (Run.Migration), one definition for
// the migration tables, charts and compare. Durations are in ns, bytes in bytes. Figures of
// the switchover (downtime, pause, stall, total, setup) need a completed migration; the
// storage method's (disruption, migration_time) a completed move recorded with them.
var MigrationMetrics = []Metric{
	// An unknown downtime is left out of medians and compare, not counted as 0 ms.
	msMetric("downtime", "QEMU downtime", func(m *Migration) (float64, bool) {
		return m.QEMUDowntimeMS, migrated(m) && m.QEMUDowntimeKnown()
	}),
	msMetric("pause", "host-seen pause", func(m *Migration) (float64, bool) { return m.PauseMS, migrated(m) }),
	msMetric("stall", "longest workload stall", func(m *Migration) (float64, bool) { return m.LongestStallMS, migrated(m) }),
	msMetric("total", "QEMU total time", func(m *Migration) (float64, bool) { return m.TotalTimeMS, migrated(m) }),
	msMetric("setup", "QEMU setup time", func(m *Migration) (float64, bool) {
		return m.SetupTimeMS, migrated(m) && m.RAMFigures != RAMFiguresUnknown
	}),
	msMetric("disruption", "disruption time", func(m *Migration) (float64, bool) { return m.DisruptionMS, moved(m) }),
	msMetric("migration_time", "migration time", func(m *Migration) (float64, bool) { return m.MigrationTimeMS, moved(m) }),
	{Name: "ram_bytes", Label: "RAM link bytes", Unit: "MB", Scale: 1e-6, Migration: true, ofMig: ramBytes},
	{Name: "disk_bytes", Label: "disk link bytes", Unit: "MB", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			if StorageOf(m) == StorageShared {
				return 0, false
			}
			return linkBytes(m, "disk")
		}},
	{Name: "storage_bytes", Label: "storage link bytes", Unit: "MB", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) { return linkBytes(m, "storage") }},
	{Name: "replication_bytes", Label: "replication bytes during the migration", Unit: "MB", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			if m.Replication == nil || m.Replication.DuringB < 0 {
				return 0, false
			}
			return float64(m.Replication.DuringB), true
		}},
	{Name: "replication_run_bytes", Label: "replication bytes over the run", Unit: "MB", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			r := m.Replication
			if r == nil || r.BeforeB < 0 || r.DuringB < 0 || r.AfterB < 0 {
				return 0, false
			}
			return float64(r.BeforeB + r.DuringB + r.AfterB), true
		}},
	{Name: "wire_bytes", Label: "bytes on the wire", Unit: "MB", Scale: 1e-6, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			ram, ok := ramBytes(m)
			disk, _ := linkBytes(m, "disk")
			return ram + disk, ok
		}},
	{Name: "cpu_s", Label: "CPU-seconds", Unit: "s", Scale: 1, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			// A total missing a process (Unmeasured) does not compare with whole ones.
			if m.Cost == nil || len(m.Cost.Unmeasured) > 0 {
				return 0, false
			}
			return m.Cost.TotalCPUS, true
		}},
	{Name: "joules", Label: "energy estimate", Unit: "J", Scale: 1, Migration: true,
		ofMig: func(m *Migration) (float64, bool) {
			// A total missing a process (Unmeasured) does not compare with whole ones.
			if m.Cost == nil || len(m.Cost.Unmeasured) > 0 {
				return 0, false
			}
			return m.Cost.EnergyEstimateJ, true
		}},
}

// AllMetrics are the direction metrics and then the migration metrics.
var AllMetrics = append(slices.Clip(Metrics), MigrationMetrics...)

// metricAliases are other spellings MetricByName accepts.
var metricAliases = map[string]string{"lat": "mean", "qemu_downtime": "downtime", "longest_stall": "stall",
	"energy": "joules", "cpu": "cpu_s"}

// MetricByName finds a metric ("iops", "p99", "downtime", ...; "lat" is "mean").
func MetricByName(name string) (Metric, error) {
	name = strings.ToLower(strings.TrimSpace(name))
	if a, ok := metricAliases[name]; ok {
		name = a
	}
	for _, m := range AllMetrics {
		if m.Name == name {
			return m, nil
		}
	}
	return Metric{}, fmt.Errorf("unknown metric %q (metrics: %s)", name, strings.Join(metricNames(AllMetrics), ", "))
}

func metricNames(ms []Metric) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
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
