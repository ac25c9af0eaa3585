package workloads

import (
	"fmt"
	"slices"
	"strings"
)

// NamedProfile is a named workload for a VM-image access pattern.
type NamedProfile struct {
	Name        string
	Description string
	// Options is the profile in fio's options, as ParseOptions and fio (--opt=value) take them.
	Options  string
	Workload Workload
}

// profileBase is shared by every profile: a quick run. The CLI may override size and runtime.
const profileBase = "size=256m runtime=10 time_based"

// profileTable is read-only; it is the one place the profiles are defined, in fio's terms.
var profileTable = []struct{ name, description, options string }{
	{"vm-boot", "guest boot: random reads of 4k-64k blocks at a low queue depth",
		"rw=randread bsrange=4k-64k iodepth=4"},
	{"vm-idle", "idle guest: light rate-limited 4k random reads and writes (50 IOPS each way)",
		"rw=randrw rwmixread=50 bs=4k iodepth=1 rate_iops=50"},
	{"oltp", "database in a guest: 8k random I/O, 70% reads, queue depth 16",
		"rw=randrw rwmixread=70 bs=8k iodepth=16"},
	{"backup", "image backup or copy: 1M sequential reads, queue depth 4",
		"rw=read bs=1m iodepth=4"},
	{"log", "journal or log writer: 4k sequential writes, each followed by a sync",
		"rw=write bs=4k iodepth=1 fsync=1"},
	{"seq-read", "streaming read throughput: 1M sequential reads, queue depth 8",
		"rw=read bs=1m iodepth=8"},
	{"seq-write", "streaming write throughput: 1M sequential writes, queue depth 8",
		"rw=write bs=1m iodepth=8"},
	{"rand-read-4k", "random read IOPS: 4k random reads, queue depth 32",
		"rw=randread bs=4k iodepth=32"},
	{"rand-write-4k", "random write IOPS: 4k random writes, queue depth 32",
		"rw=randwrite bs=4k iodepth=32"},
}

// Profile returns the named profile's workload, Defaults filled in.
func Profile(name string) (Workload, error) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p.Workload, nil
		}
	}
	var names []string
	for _, p := range Profiles() {
		names = append(names, p.Name)
	}
	return Workload{}, fmt.Errorf("unknown profile %q (known: %s)", name, strings.Join(names, ", "))
}

// Profiles returns every profile, sorted by name.
func Profiles() []NamedProfile {
	var out []NamedProfile
	for _, p := range profileTable {
		opts := p.options + " " + profileBase
		w, err := ParseOptions(append(strings.Fields(opts), "name="+p.name))
		if err != nil {
			panic(fmt.Sprintf("workloads: profile %s: %v", p.name, err)) // a bug in the table; TestProfiles catches it
		}
		out = append(out, NamedProfile{Name: p.name, Description: p.description, Options: opts, Workload: w})
	}
	slices.SortFunc(out, func(a, b NamedProfile) int { return strings.Compare(a.Name, b.Name) })
	return out
}
