package suiterun

import (
	"testing"

	"github.com/vmstorbench/vmstorbench/results"
)

// The progress line says "unknown" for a downtime the hypervisor did not give, not 0 ms.
func TestRunOutcomeDowntime(t *testing.T) {
	for _, c := range []struct {
		name string
		m    results.Migration
		want string
	}{
		{"measured", results.Migration{Outcome: "completed", QEMUDowntimeMS: 42}, "migration completed, downtime 42 ms"},
		{"unknown", results.Migration{Outcome: "completed", QEMUDowntimeUnknown: "no completed job"}, "migration completed, downtime unknown"},
	} {
		if got := RunOutcome(&results.Run{Migration: &c.m}, nil); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
