package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// This file is the report's workloads section: each distinct workload as a fio job section.

// htmlWorkload is one workload definition and where it ran.
type htmlWorkload struct {
	ID     string
	Name   string
	Job    string // the fio job section
	UsedBy string
}

// workloadIndex maps a run to the anchor of its workload definition.
type workloadIndex struct {
	defs []htmlWorkload
	ids  map[string]string // results.KeyOf(r).Workload → anchor
}

func (x workloadIndex) id(r *results.Run) string { return x.ids[results.KeyOf(r).Workload] }

// distinctWorkloads lists each workload once (runs that differ only in the workload's name
// share it), in order of first appearance.
func distinctWorkloads(cases []*results.Case) workloadIndex {
	x := workloadIndex{ids: map[string]string{}}
	targets := map[string][]string{}
	var order []string
	names := map[string]string{}
	runs := map[string]int{}
	for _, c := range cases {
		k := c.Key.Workload
		if _, seen := x.ids[k]; !seen {
			x.ids[k] = fmt.Sprintf("wl-%d", len(order)+1)
			order = append(order, k)
			names[k] = c.WorkloadName()
		}
		t := redactedTargetName(c.Runs[0])
		if !slices.Contains(targets[k], t) {
			targets[k] = append(targets[k], t)
		}
		runs[k] += len(c.Runs)
	}
	first := map[string]workloads.Workload{}
	for _, c := range cases {
		if _, ok := first[c.Key.Workload]; !ok {
			first[c.Key.Workload] = c.Runs[0].Workload
		}
	}
	for _, k := range order {
		x.defs = append(x.defs, htmlWorkload{
			ID: x.ids[k], Name: names[k], Job: FioJob(first[k]),
			UsedBy: runCount(runs[k]) + " on " + strings.Join(targets[k], ", "),
		})
	}
	return x
}

// runCount says "1 run", "3 runs".
func runCount(n int) string {
	if n == 1 {
		return "1 run"
	}
	return strconv.Itoa(n) + " runs"
}

// FioJob writes w as a fio job section that vmstorbench (and, for these options, fio) reads
// back as the same workload: sizes in fio's kb_base=1024 units (4k is 4096 bytes), every
// option that differs from the default, and randseed always, so the run can be repeated.
func FioJob(w workloads.Workload) string {
	var b strings.Builder
	name := strings.Map(func(c rune) rune {
		if c == '[' || c == ']' || c < ' ' {
			return '_'
		}
		return c
	}, w.Name)
	if strings.TrimSpace(name) == "" {
		name = "job"
	}
	fmt.Fprintf(&b, "[%s]\n", name)
	opt := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	opt("rw", w.RW)
	if w.IsMixed() {
		opt("rwmixread", strconv.Itoa(w.RWMixRead))
	}
	bs := w.BS
	switch {
	case bs[0].Min == bs[0].Max && bs[1].Min == bs[1].Max && bs[0] == bs[1]:
		opt("bs", fioSize(bs[0].Min))
	case bs[0].Min == bs[0].Max && bs[1].Min == bs[1].Max:
		opt("bs", fioSize(bs[0].Min)+","+fioSize(bs[1].Min))
	case bs[0] == bs[1]:
		opt("bsrange", fioSize(bs[0].Min)+"-"+fioSize(bs[0].Max))
	default:
		opt("bsrange", fioSize(bs[0].Min)+"-"+fioSize(bs[0].Max)+","+fioSize(bs[1].Min)+"-"+fioSize(bs[1].Max))
	}
	opt("size", fioSize(w.Size))
	if w.Offset > 0 {
		opt("offset", fioSize(w.Offset))
	}
	if w.IOSize > 0 {
		opt("io_size", fioSize(w.IOSize))
	}
	opt("iodepth", strconv.Itoa(w.IODepth))
	opt("numjobs", strconv.Itoa(w.NumJobs))
	if w.Runtime > 0 {
		opt("runtime", fioDuration(w.Runtime))
	}
	if w.TimeBased {
		b.WriteString("time_based\n")
	}
	if w.RampTime > 0 {
		opt("ramp_time", fioDuration(w.RampTime))
	}
	if w.Rate != [2]int64{} {
		opt("rate", perDir(w.Rate, fioSize))
	}
	if w.RateIOPS != [2]int64{} {
		// plain numbers: rate_iops takes size suffixes, so 1k would be 1024
		opt("rate_iops", perDir(w.RateIOPS, func(n int64) string { return strconv.FormatInt(n, 10) }))
	}
	if w.RandSeed != 0 {
		opt("randseed", strconv.FormatUint(w.RandSeed, 10))
	}
	if w.Direct {
		opt("direct", "1")
	}
	if w.Fsync > 0 {
		opt("fsync", strconv.Itoa(w.Fsync))
	}
	if w.Verify != "" {
		opt("verify", w.Verify)
	}
	return b.String()
}

func perDir(v [2]int64, f func(int64) string) string {
	if v[0] == v[1] {
		return f(v[0])
	}
	return f(v[0]) + "," + f(v[1])
}

// fioSize renders n bytes in fio's kb_base=1024 units, exactly: 4k, 1m, 4097.
func fioSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// fioDuration renders d exactly in the largest fio time unit that divides it.
func fioDuration(d time.Duration) string {
	for _, u := range []struct {
		suffix string
		d      time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}
