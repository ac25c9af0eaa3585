package results

import "testing"

// A migration whose hypervisor gave no final figures (libvirt after most post-copy
// migrations) renders them as unknown and leaves them out of medians and compare.
func TestUnknownMigrationFigures(t *testing.T) {
	unknownDowntime := func(r *Run) {
		r.Migration.QEMUDowntimeMS, r.Migration.QEMUDowntimeUnknown = 0, "libvirt recorded no completed job"
	}
	lastPoll := func(r *Run) {
		unknownDowntime(r)
		r.Migration.RAMFigures, r.Migration.Traffic = RAMFiguresLastPoll, nil
	}
	noRAM := func(r *Run) {
		unknownDowntime(r)
		r.Migration.RAMFigures, r.Migration.Traffic = RAMFiguresUnknown, nil
	}
	partialCost := func(r *Run) {
		r.Migration.Cost.Unmeasured = map[string]string{CostSource: "no CPU time"}
	}
	for _, c := range []struct {
		name     string
		edit     func(*Run)
		downtime string
		setup    string
		values   map[string]bool // metric: has a value
	}{
		{"measured", func(*Run) {}, "40 ms", "15 ms",
			map[string]bool{"downtime": true, "setup": true, "ram_bytes": true, "cpu_s": true, "joules": true}},
		{"downtime unknown", unknownDowntime, "unknown", "15 ms",
			map[string]bool{"downtime": false, "pause": true, "setup": true, "ram_bytes": true}},
		{"RAM figures from the last poll", lastPoll, "unknown", "15 ms (last poll: lower bound)",
			map[string]bool{"downtime": false, "setup": true, "ram_bytes": false}},
		{"RAM figures unknown", noRAM, "unknown", "unknown",
			map[string]bool{"downtime": false, "setup": false, "ram_bytes": false, "total": true}},
		{"a process unmeasured", partialCost, "40 ms", "15 ms",
			map[string]bool{"cpu_s": false, "joules": false, "downtime": true}},
	} {
		r := migRun("shared", "lan", 40)
		c.edit(r)
		m := r.Migration
		if got := m.QEMUDowntimeText(); got != c.downtime {
			t.Errorf("%s: downtime %q, want %q", c.name, got, c.downtime)
		}
		if got := m.RAMFigureText("15 ms"); got != c.setup {
			t.Errorf("%s: setup %q, want %q", c.name, got, c.setup)
		}
		for name, want := range c.values {
			if _, ok := metricOf(t, name).OfRun(r, ""); ok != want {
				t.Errorf("%s: %s has a value: %v, want %v", c.name, name, ok, want)
			}
		}
	}
	// The median skips the unknown downtime instead of counting 0 ms.
	runs := migRuns("shared", "lan", 40, 50, 60)
	unknownDowntime(runs[0])
	if got := MetricValues(runs, "", metricOf(t, "downtime")); len(got) != 2 || got[0] != 50e6 {
		t.Errorf("downtime values %v, want the two known", got)
	}
}

func TestCostCPUText(t *testing.T) {
	c := &MigrationCost{SourceCPUS: 0, DestinationCPUS: 1.234, Unmeasured: map[string]string{CostSource: "gone"}}
	for _, tt := range []struct {
		name string
		v    float64
		want string
	}{{CostSource, c.SourceCPUS, "unmeasured"}, {CostDestination, c.DestinationCPUS, "1.23"}, {CostHelpers, 0, "0.00"}} {
		if got := c.CPUText(tt.name, tt.v); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
