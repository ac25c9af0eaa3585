package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// The summary prints what the hypervisor did not give, or what could not be measured, as
// such: never as 0.
func TestPrintMigrationUnknownFigures(t *testing.T) {
	cost := func(unmeasured map[string]string) *results.MigrationCost {
		return &results.MigrationCost{WallNS: 6.7e9, SourceCPUS: 0.2, DestinationCPUS: 1.98, HelpersCPUS: 0.24, TotalCPUS: 2.42,
			WattsPerCore: 3.5, EnergyEstimateJ: 8.47, Unmeasured: unmeasured}
	}
	for _, c := range []struct {
		name      string
		m         results.Migration
		want, not []string
	}{
		{"measured", results.Migration{QEMUDowntimeMS: 42, SetupTimeMS: 570, TransferredB: 67.4e6, DirtySyncCount: 3, Cost: cost(nil)},
			[]string{"QEMU 42 ms", "setup 570 ms", "transferred 67.4 MB", "iterations 3", "source QEMU 0.20, destination QEMU 1.98, vmstorbench 0.24"},
			[]string{"unknown", "unmeasured", "measured processes only"}},
		{"last poll", results.Migration{QEMUDowntimeUnknown: "no completed job", RAMFigures: results.RAMFiguresLastPoll, SetupTimeMS: 809, TransferredB: 69.5e6, DirtySyncCount: 2, Cost: cost(nil)},
			[]string{"QEMU unknown", "setup 809 ms (last poll: lower bound)", "transferred 69.5 MB (last poll: lower bound)", "iterations 2 (last poll: lower bound)"},
			[]string{"QEMU 0 ms"}},
		{"nothing", results.Migration{QEMUDowntimeUnknown: "no completed job", RAMFigures: results.RAMFiguresUnknown},
			[]string{"QEMU unknown", "setup unknown", "transferred unknown", "iterations unknown"}, []string{"QEMU 0 ms", "setup 0 ms", "0.0 MB"}},
		{"source unmeasured", results.Migration{Cost: cost(map[string]string{results.CostSource: "gone"})},
			[]string{"source QEMU unmeasured, destination QEMU 1.98", "(measured processes only)"}, []string{"source QEMU 0.20"}},
	} {
		c.m.Mode, c.m.Outcome = "postcopy", "completed"
		var buf bytes.Buffer
		printMigration(&buf, &results.Run{Migration: &c.m, Target: results.Target{URL: "file:///tmp/x"}})
		out := buf.String()
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in\n%s", c.name, w, out)
			}
		}
		for _, n := range c.not {
			if strings.Contains(out, n) {
				t.Errorf("%s: %q in\n%s", c.name, n, out)
			}
		}
	}
}
