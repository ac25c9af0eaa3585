package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	for _, o := range w.FioOptions() {
		fmt.Fprintf(&b, "%s=%s\n", o.Name, o.Value)
	}
	return b.String()
}
