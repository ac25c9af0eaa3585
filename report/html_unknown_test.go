package report

import (
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// The migration section shows the figures the hypervisor did not give as unknown, not 0.
func TestMigrationViewUnknownFigures(t *testing.T) {
	for _, c := range []struct {
		name                     string
		unknown, ram             string
		downtime, explain, setup string
		transferred, syncs       string
		downtimePct, pausePct    float64
	}{
		{"measured", "", "", "12.5 ms", "QEMU's own figure (query-migrate)", "3.00 ms", "270 MiB", "4", 30.3, 100},
		{"downtime unknown, RAM from the last poll", "no completed job", results.RAMFiguresLastPoll, "unknown", "unknown: no completed job",
			"3.00 ms (last poll: lower bound)", "270 MiB (last poll: lower bound)", "4 (last poll: lower bound)", 0, 100},
		{"all unknown", "no completed job", results.RAMFiguresUnknown, "unknown", "unknown: no completed job", "unknown", "unknown", "unknown", 0, 100},
	} {
		m := &results.Migration{Mode: "postcopy", Outcome: "completed", QEMUDowntimeMS: 12.5, PauseMS: 41.2, LongestStallMS: 20,
			SetupTimeMS: 3, TransferredB: 270 << 20, DirtySyncCount: 4, QEMUDowntimeUnknown: c.unknown, RAMFigures: c.ram}
		v := migrationView(&results.Run{Migration: m}, 1)
		if d := v.Downtime[0]; d.Value != c.downtime || d.Explain != c.explain || d.Pct != c.downtimePct {
			t.Errorf("%s: QEMU downtime %+v, want %q %q %v%%", c.name, d, c.downtime, c.explain, c.downtimePct)
		}
		if p := v.Downtime[1]; p.Pct != c.pausePct {
			t.Errorf("%s: pause bar %v%%, want %v%%", c.name, p.Pct, c.pausePct)
		}
		got := map[string]string{}
		for _, f := range v.Timing {
			got[f.Name] = f.Value
		}
		for name, want := range map[string]string{"Setup time (QEMU)": c.setup, "Transferred": c.transferred, "Dirty syncs": c.syncs} {
			if got[name] != want {
				t.Errorf("%s: %s %q, want %q", c.name, name, got[name], want)
			}
		}
	}
}
