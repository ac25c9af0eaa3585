package results

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
)

// DefaultAlpha is the significance level of the Mann–Whitney test when CompareOptions
// leaves it zero.
const DefaultAlpha = 0.05

// minMWU is the number of repeats each side needs before the rank test decides: with
// fewer, an exact two-sided Mann–Whitney test cannot reach p < 0.05 at all (3 vs 3 repeats
// give at best p = 0.1), so non-overlapping ranges decide instead.
const minMWU = 4

// Noise says whether a change stands out from the spread of the repeats.
type Noise int

const (
	// NoEstimate: one side has a single run, so there is no spread to judge against;
	// thresholds then apply to the change as it is.
	NoEstimate Noise = iota
	// WithinNoise: the repeats of the two sides overlap; the change may be chance.
	WithinNoise
	// Significant: the repeats tell the two sides apart.
	Significant
)

// directions are the directions a threshold may name, as Run.DirStats spells them.
var directions = []string{"read", "write", "sync"}

// Threshold is one term of --fail-on: the change of a metric, in percent, that counts as a
// regression. "iops<-10%" fails when IOPS fall by more than 10 %, "write.p99>+20%" when the
// write p99 latency rises by more than 20 %.
type Threshold struct {
	// Dir restricts the threshold to "read", "write" or "sync"; "" means every direction.
	Dir    string
	Metric Metric
	// Op is "<" (fail below Percent) or ">" (fail above it).
	Op      string
	Percent float64
}

func (t Threshold) String() string {
	s := t.Metric.Name + t.Op + strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	if t.Percent > 0 {
		s = t.Metric.Name + t.Op + "+" + strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	}
	if t.Dir != "" {
		s = t.Dir + "." + s
	}
	return s
}

// Crossed reports whether a change of pct percent is beyond the threshold.
func (t Threshold) Crossed(pct float64) bool {
	if math.IsNaN(pct) {
		return false
	}
	if t.Op == "<" {
		return pct < t.Percent
	}
	return pct > t.Percent
}

// Applies reports whether the threshold checks metric m of direction dir.
func (t Threshold) Applies(dir string, m Metric) bool {
	return (t.Dir == "" || t.Dir == dir) && t.Metric.Name == m.Name
}

// ParseThresholds parses a comma-separated list of thresholds such as
// "iops<-10%,read.p99>+20%,downtime>+20%": an optional direction and a dot (not for a
// migration metric), a metric (see Metrics and MigrationMetrics), < or >, and a signed
// percentage. An empty string is no thresholds. Errors name the bad term.
func ParseThresholds(s string) ([]Threshold, error) {
	var out []Threshold
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		t, err := parseThreshold(term)
		if err != nil {
			return nil, fmt.Errorf("threshold %q: %w", term, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func parseThreshold(term string) (Threshold, error) {
	i := strings.IndexAny(term, "<>")
	if i < 0 {
		return Threshold{}, errors.New("want METRIC<PERCENT% or METRIC>PERCENT%, e.g. iops<-10% or write.p99>+20%")
	}
	t := Threshold{Op: term[i : i+1]}
	name, limit := strings.TrimSpace(term[:i]), strings.TrimSpace(term[i+1:])
	if strings.HasPrefix(limit, "=") {
		return Threshold{}, fmt.Errorf("use %s, not %s= (a change equal to the limit never fails)", t.Op, t.Op)
	}
	migrationPrefix := false
	if dir, rest, ok := strings.Cut(name, "."); ok && slices.Contains(directions, strings.ToLower(dir)) {
		t.Dir, name = strings.ToLower(dir), rest
	} else if ok && strings.EqualFold(dir, MigrationDir) {
		name, migrationPrefix = rest, true // "migration.downtime" is "downtime"
	}
	if name == "" {
		return Threshold{}, errors.New("no metric before " + t.Op)
	}
	m, err := MetricByName(name)
	if err != nil {
		return Threshold{}, err
	}
	if migrationPrefix && !m.Migration {
		return Threshold{}, fmt.Errorf("%s is not a figure of the migration (those are %s)", m.Name, strings.Join(metricNames(MigrationMetrics), ", "))
	}
	if m.Migration && t.Dir != "" {
		return Threshold{}, fmt.Errorf("%s is a figure of the migration, not of %ss: write %s%s...", m.Name, t.Dir, m.Name, t.Op)
	}
	t.Metric = m
	num, ok := strings.CutSuffix(limit, "%")
	if !ok {
		return Threshold{}, fmt.Errorf("the limit %q needs a %% sign: it is a relative change, e.g. %s%s-10%%", limit, name, t.Op)
	}
	t.Percent, err = strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(t.Percent) || math.IsInf(t.Percent, 0) {
		return Threshold{}, fmt.Errorf("the limit %q is not a number of percent", limit)
	}
	return t, nil
}

// CompareOptions configure Compare.
type CompareOptions struct {
	// Thresholds turn changes into pass/fail checks; none means report only.
	Thresholds []Threshold
	// Alpha is the significance level of the Mann–Whitney test (DefaultAlpha when 0).
	Alpha float64
	// MatchTargets compares runs of different targets: each side must then have measured
	// one target, and cases are matched by workload and scenario alone (e.g. the NAS moved
	// to a new address, or old storage against new).
	MatchTargets bool
}

// Comparison is a candidate set of runs against a base set, case by case.
type Comparison struct {
	Alpha      float64
	Thresholds []Threshold
	// Cases are in the order the base first ran them.
	Cases []*CaseChange
	// Excluded are the runs that are not good runs (incomplete, or with verify
	// mismatches), which count towards no figure.
	Excluded []ExcludedRun
	// Unused are the thresholds that matched no metric of any case (a direction no case
	// recorded, say): they checked nothing.
	Unused []Threshold
	// BaseRuns and CandRuns count the runs given on each side, complete or not.
	BaseRuns, CandRuns int
}

// ExcludedRun is a run left out of a comparison: incomplete, or its verify found
// mismatches (Status says which).
type ExcludedRun struct {
	Side   string // "base" or "candidate"
	Case   string // the case's display name
	ID     string
	Status Status
	Error  string // Run.Problem
}

// CaseChange is one case (target × workload × scenario) on both sides.
type CaseChange struct {
	Base, Cand *Case
	// Changes are one per direction and metric that either side recorded, in the order
	// read, write, sync and then Metrics.
	Changes []*Change
	// Rejected are failed checks that hold whatever the figures: one per candidate run
	// whose verify found mismatches (a candidate that corrupts data fails, however fast).
	Rejected []Check
}

// Target is the case's target for display (label or redacted URL); "A → B" when
// MatchTargets matched different targets.
func (cc *CaseChange) Target() string {
	b, c := displayTarget(cc.Base.Runs[0]), displayTarget(cc.Cand.Runs[0])
	if b == c {
		return b
	}
	return b + " → " + c
}

// Workload is the workload's description, with the scenario when it is not a plain run.
func (cc *CaseChange) Workload() string {
	s := cc.Base.Workload()
	if sc := cc.Base.Scenario(); sc != "host" {
		s += " [" + sc + "]"
	}
	return s
}

// Name is how messages name the case: "target: workload".
func (cc *CaseChange) Name() string { return cc.Target() + ": " + cc.Workload() }

// Change is one metric of one direction of a case: the medians of both sides, the
// relative change and whether it stands out from the noise.
type Change struct {
	Dir    string
	Metric Metric
	// Base and Cand summarise the complete runs; HasBase/HasCand are false when a side has
	// no complete run with the metric (Percent is then NaN).
	Base, Cand       Summary
	HasBase, HasCand bool
	// Percent is (candidate median − base median) / base median × 100; ±Inf when the base
	// median is 0 and the candidate's is not.
	Percent float64
	Noise   Noise
	// Test is how Noise was decided: "ranges" (do the min–max ranges overlap) or
	// "mann-whitney"; "" for NoEstimate.
	Test string
	// P is the two-sided Mann–Whitney p-value; NaN when the test did not decide.
	P      float64
	Checks []Check
}

// Check is one threshold applied to one Change.
type Check struct {
	Threshold Threshold
	// Failed is true when the change crossed the threshold and is not within noise, or
	// when a side has no data to check.
	Failed bool
	// Reason explains a failure, or a crossing that was forgiven as noise; "" otherwise.
	Reason string
}

// Better and Worse say which way the change goes for this metric (throughput up or latency
// down is better), whatever its significance.
func (ch *Change) Better() bool {
	return ch.HasBase && ch.HasCand && ch.Percent != 0 && (ch.Percent > 0) == ch.Metric.HigherIsBetter
}

func (ch *Change) Worse() bool {
	return ch.HasBase && ch.HasCand && ch.Percent != 0 && (ch.Percent > 0) != ch.Metric.HigherIsBetter
}

// Failed reports whether any of the change's checks failed.
func (ch *Change) Failed() bool {
	for _, k := range ch.Checks {
		if k.Failed {
			return true
		}
	}
	return false
}

// Verdict says in words what the change is: "within noise (ranges overlap)", "worse
// (p=0.008)", "single run, no noise estimate", "no complete runs in candidate".
func (ch *Change) Verdict() string {
	switch {
	case !ch.HasBase && !ch.HasCand:
		return "no data"
	case !ch.HasBase:
		return "no complete runs in base"
	case !ch.HasCand:
		return "no complete runs in candidate"
	}
	how := ""
	switch ch.Test {
	case "ranges":
		how = "ranges overlap"
		if ch.Noise == Significant {
			how = "ranges apart"
		}
	case "mann-whitney":
		how = "p=" + formatP(ch.P)
	}
	switch ch.Noise {
	case NoEstimate:
		return "single run, no noise estimate"
	case WithinNoise:
		return "within noise (" + how + ")"
	}
	switch {
	case ch.Better():
		return "better (" + how + ")"
	case ch.Worse():
		return "worse (" + how + ")"
	}
	return "different (" + how + ")"
}

func formatP(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'g', 2, 64)
}

// Regressed reports whether any threshold check failed.
func (c *Comparison) Regressed() bool { return len(c.Failures()) > 0 }

// Failure is a failed check with the change and case it belongs to.
type Failure struct {
	Case   *CaseChange
	Change *Change
	Check  Check
}

// Failures lists the failed checks, in report order: per case, its rejected candidate runs
// (Change nil) first.
func (c *Comparison) Failures() []Failure {
	var out []Failure
	for _, cc := range c.Cases {
		for _, k := range cc.Rejected {
			out = append(out, Failure{cc, nil, k})
		}
		for _, ch := range cc.Changes {
			for _, k := range ch.Checks {
				if k.Failed {
					out = append(out, Failure{cc, ch, k})
				}
			}
		}
	}
	return out
}

// CheckCount is the number of checks made: threshold checks and rejected candidate runs.
func (c *Comparison) CheckCount() int {
	n := 0
	for _, cc := range c.Cases {
		n += len(cc.Rejected)
		for _, ch := range cc.Changes {
			n += len(ch.Checks)
		}
	}
	return n
}

// Compare compares candidate runs with base runs case by case: per direction and metric,
// the candidate's median against the base's, whether the repeats tell them apart, and the
// thresholds. Both sides must have measured the same cases (targets, workloads,
// scenarios); otherwise it refuses with an error naming the cases that differ. Runs that
// are not good runs (Run.OK) are left out and listed in Excluded; a candidate run whose
// verify found mismatches also fails the comparison (CaseChange.Rejected), with or without
// thresholds.
func Compare(base, cand []*Run, opt CompareOptions) (*Comparison, error) {
	if len(base) == 0 || len(cand) == 0 {
		return nil, errors.New("compare: need runs on both sides (base has " + strconv.Itoa(len(base)) +
			", candidate " + strconv.Itoa(len(cand)) + ")")
	}
	alpha := opt.Alpha
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	if !(alpha > 0 && alpha < 1) {
		return nil, fmt.Errorf("compare: alpha %v is not between 0 and 1", opt.Alpha)
	}
	pairs, err := matchCases(Group(base), Group(cand), opt.MatchTargets)
	if err != nil {
		return nil, err
	}
	c := &Comparison{Alpha: alpha, Thresholds: opt.Thresholds, BaseRuns: len(base), CandRuns: len(cand)}
	used := make([]bool, len(opt.Thresholds))
	for _, cc := range pairs {
		c.Cases = append(c.Cases, cc)
		for _, side := range []struct {
			name string
			c    *Case
		}{{"base", cc.Base}, {"candidate", cc.Cand}} {
			for _, r := range side.c.NotOK() {
				c.Excluded = append(c.Excluded, ExcludedRun{Side: side.name, Case: cc.Name(), ID: r.ID, Status: r.Outcome(), Error: r.Problem()})
				if side.name == "candidate" && r.Outcome() == StatusVerifyFailed {
					cc.Rejected = append(cc.Rejected, Check{Failed: true,
						Reason: fmt.Sprintf("candidate run %s failed verify, whatever its speed: %s", r.ID, r.Verify.Problem())})
				}
			}
		}
		type dirMetrics struct {
			dir     string
			metrics []Metric
		}
		var todo []dirMetrics
		for _, dir := range unionDirs(cc.Base.Dirs(), cc.Cand.Dirs()) {
			todo = append(todo, dirMetrics{dir, Metrics})
		}
		todo = append(todo, dirMetrics{MigrationDir, MigrationMetrics}) // none without migrations
		for _, dm := range todo {
			for _, m := range dm.metrics {
				ch := compareMetric(cc.Base.Values(dm.dir, m), cc.Cand.Values(dm.dir, m), alpha)
				if ch == nil {
					continue
				}
				ch.Dir, ch.Metric = dm.dir, m
				for i, t := range opt.Thresholds {
					if t.Applies(dm.dir, m) {
						used[i] = true
						ch.Checks = append(ch.Checks, check(ch, t))
					}
				}
				cc.Changes = append(cc.Changes, ch)
			}
		}
	}
	// List the base's runs first, each side in run order.
	slices.SortStableFunc(c.Excluded, func(a, b ExcludedRun) int { return strings.Compare(a.Side, b.Side) })
	for i, t := range opt.Thresholds {
		if !used[i] {
			c.Unused = append(c.Unused, t)
		}
	}
	return c, nil
}

// compareMetric compares the values of one metric; nil when neither side has any.
func compareMetric(b, c []float64, alpha float64) *Change {
	ch := &Change{Percent: math.NaN(), P: math.NaN()}
	ch.Base, ch.HasBase = Summarize(b)
	ch.Cand, ch.HasCand = Summarize(c)
	if !ch.HasBase && !ch.HasCand {
		return nil
	}
	if !ch.HasBase || !ch.HasCand {
		return ch
	}
	ch.Percent = percentChange(ch.Base.Median, ch.Cand.Median)
	switch {
	case len(b) < 2 || len(c) < 2:
		ch.Noise = NoEstimate
	case len(b) >= minMWU && len(c) >= minMWU:
		ch.Test, ch.P = "mann-whitney", MannWhitneyP(b, c)
		ch.Noise = WithinNoise
		if ch.P < alpha {
			ch.Noise = Significant
		}
	default:
		ch.Test, ch.Noise = "ranges", WithinNoise
		if ch.Base.Max < ch.Cand.Min || ch.Cand.Max < ch.Base.Min {
			ch.Noise = Significant
		}
	}
	return ch
}

func percentChange(base, cand float64) float64 {
	if base == 0 {
		switch {
		case cand == 0:
			return 0
		case cand > 0:
			return math.Inf(1)
		}
		return math.Inf(-1)
	}
	return (cand - base) / math.Abs(base) * 100
}

func check(ch *Change, t Threshold) Check {
	k := Check{Threshold: t}
	switch {
	case !ch.HasBase || !ch.HasCand:
		k.Failed = true
		k.Reason = "cannot check " + t.String() + ": " + ch.Verdict()
	case t.Crossed(ch.Percent) && ch.Noise == WithinNoise:
		k.Reason = fmt.Sprintf("%s %s crosses %s but is %s", ch.Dir, ch.Metric.Name, t, ch.Verdict())
	case t.Crossed(ch.Percent):
		k.Failed = true
		k.Reason = fmt.Sprintf("%s %s changed %s, beyond %s: %s", ch.Dir, ch.Metric.Name, FormatPercent(ch.Percent), t, ch.Verdict())
	}
	return k
}

// FormatPercent renders a change as "+12.3%", "-0.4%", "+∞%".
func FormatPercent(p float64) string {
	switch {
	case math.IsNaN(p):
		return "n/a"
	case math.IsInf(p, 1):
		return "+∞%"
	case math.IsInf(p, -1):
		return "-∞%"
	}
	digits := 1
	if math.Abs(p) >= 100 {
		digits = 0
	}
	s := strconv.FormatFloat(p, 'f', digits, 64)
	if !strings.HasPrefix(s, "-") {
		s = "+" + s
	}
	if s == "-0.0" || s == "-0" {
		s = "+" + s[1:]
	}
	return s + "%"
}

func unionDirs(a, b []string) []string {
	var out []string
	for _, d := range directions {
		if slices.Contains(a, d) || slices.Contains(b, d) {
			out = append(out, d)
		}
	}
	return out
}

// displayTarget names a run's target for people: its label, or its URL redacted again (a
// hand-edited document must not leak a password into a report).
func displayTarget(r *Run) string {
	if l := r.Labels[TargetLabel]; l != "" {
		return l
	}
	return backends.RedactString(r.Target.URL)
}

// matchCases pairs the cases of both sides, in base order, or explains which differ.
func matchCases(base, cand []*Case, anyTarget bool) ([]*CaseChange, error) {
	key := func(c *Case) CaseKey { return c.Key }
	if anyTarget {
		for i, cases := range [][]*Case{base, cand} {
			if ts := targetsOf(cases); len(ts) > 1 {
				return nil, fmt.Errorf("compare: --match-targets needs one target on each side; the %s has %d: %s",
					[]string{"base", "candidate"}[i], len(ts), strings.Join(ts, ", "))
			}
		}
		key = func(c *Case) CaseKey { k := c.Key; k.Target = ""; return k }
	}
	byKey := map[CaseKey]*Case{}
	for _, c := range cand {
		byKey[key(c)] = c
	}
	var pairs []*CaseChange
	var onlyBase []*Case
	matched := map[CaseKey]bool{}
	for _, b := range base {
		if c := byKey[key(b)]; c != nil {
			pairs = append(pairs, &CaseChange{Base: b, Cand: c})
			matched[key(b)] = true
		} else {
			onlyBase = append(onlyBase, b)
		}
	}
	var onlyCand []*Case
	for _, c := range cand {
		if !matched[key(c)] {
			onlyCand = append(onlyCand, c)
		}
	}
	if len(onlyBase) == 0 && len(onlyCand) == 0 {
		return pairs, nil
	}
	return nil, mismatchError(onlyBase, onlyCand, anyTarget)
}

func targetsOf(cases []*Case) []string {
	var ts []string
	for _, c := range cases {
		if t := displayTarget(c.Runs[0]); !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	return ts
}

// mismatchError names the cases only one side measured. A base case and a candidate case
// on the same target and scenario are most likely one workload run with different options:
// the error then names the options that differ, since their descriptions may be equal.
func mismatchError(onlyBase, onlyCand []*Case, anyTarget bool) error {
	var parts []string
	paired := map[*Case]bool{}
	for _, b := range onlyBase {
		for _, c := range onlyCand {
			if paired[c] || b.Key.Scenario != c.Key.Scenario || (!anyTarget && b.Key.Target != c.Key.Target) {
				continue
			}
			paired[b], paired[c] = true, true
			parts = append(parts, fmt.Sprintf("%s: workload differs in %s", caseName(b), workloadDiff(b.Key.Workload, c.Key.Workload)))
			break
		}
	}
	list := func(label string, cases []*Case) {
		var names []string
		for _, c := range cases {
			if !paired[c] {
				names = append(names, caseName(c))
			}
		}
		if len(names) > 3 {
			names = append(names[:3], fmt.Sprintf("and %d more", len(names)-3))
		}
		if len(names) > 0 {
			parts = append(parts, label+" "+strings.Join(names, "; "))
		}
	}
	list("only in base:", onlyBase)
	list("only in candidate:", onlyCand)
	hint := ""
	if !anyTarget && len(onlyBase) > 0 && len(onlyCand) > 0 && len(paired) == 0 {
		hint = " (different targets? --match-targets compares one target with another)"
	}
	return fmt.Errorf("compare: base and candidate did not measure the same cases, refusing to compare them: %s%s",
		strings.Join(parts, "; "), hint)
}

func caseName(c *Case) string {
	s := displayTarget(c.Runs[0]) + " " + c.Workload()
	if sc := c.Scenario(); sc != "host" {
		s += " [" + sc + "]"
	}
	return s
}

// workloadDiff names the workload options (JSON fields) that differ: "runtime_ns 1000000000
// vs 2000000000".
func workloadDiff(a, b string) string {
	var ma, mb map[string]any
	if json.Unmarshal([]byte(a), &ma) != nil || json.Unmarshal([]byte(b), &mb) != nil {
		return "its options"
	}
	var keys []string
	for k := range ma {
		keys = append(keys, k)
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var diffs []string
	for _, k := range keys {
		ja, _ := json.Marshal(ma[k])
		jb, _ := json.Marshal(mb[k])
		if string(ja) != string(jb) {
			diffs = append(diffs, fmt.Sprintf("%s %s vs %s", k, ja, jb))
		}
	}
	if len(diffs) == 0 {
		return "its options"
	}
	return strings.Join(diffs, ", ")
}
