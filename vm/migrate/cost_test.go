package migrate

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// A process whose CPU time cannot be had at either end is named as unmeasured, its figure
// left out of the total, and the energy estimate says it covers the others only.
func TestCPUMeterUnmeasured(t *testing.T) {
	// counter reads v[0] at the start, v[1] at the end; err fails the read given.
	counter := func(v [2]float64, failAt int) cpuProbe {
		n := 0
		return func() (float64, error) {
			n++
			if n == failAt {
				return 0, errors.New("domain not found")
			}
			return v[min(n, 2)-1], nil
		}
	}
	for _, c := range []struct {
		name       string
		source     cpuProbe
		wantSource float64
		unmeasured string // the reason's start, "" for measured
	}{
		{"measured", counter([2]float64{1, 3.5}, 0), 2.5, ""},
		{"no probe", nil, 0, "its hypervisor reports neither"},
		{"gone at the start", counter([2]float64{1, 3}, 1), 0, "at the start: domain not found"},
		{"gone at the end", counter([2]float64{1, 3}, 2), 0, "at the end: domain not found"},
		{"backwards", counter([2]float64{3, 1}, 0), 0, "its CPU time went backwards"},
	} {
		m := startCPUMeter(map[string]cpuProbe{results.CostSource: c.source,
			results.CostDestination: counter([2]float64{0.5, 1}, 0)})
		m.sample()
		cost := m.cost(2)
		why, unmeasured := cost.Unmeasured[results.CostSource]
		if c.unmeasured == "" {
			if unmeasured || strings.Contains(cost.EnergyEstimateOf, "measured processes only") {
				t.Errorf("%s: unmeasured %q, basis %q", c.name, why, cost.EnergyEstimateOf)
			}
		} else if !strings.HasPrefix(why, c.unmeasured) || !strings.HasSuffix(cost.EnergyEstimateOf, "covers the measured processes only, not: source") {
			t.Errorf("%s: unmeasured %q, want %q…; basis %q", c.name, why, c.unmeasured, cost.EnergyEstimateOf)
		}
		if cost.SourceCPUS != c.wantSource || cost.DestinationCPUS != 0.5 || cost.TotalCPUS != c.wantSource+0.5 || cost.EnergyEstimateJ != 2*cost.TotalCPUS {
			t.Errorf("%s: cost %+v", c.name, cost)
		}
	}
}

// Without the hypervisor's final figures QEMU's downtime is unknown and the RAM figures are
// the last poll's, or unknown when no poll had them.
func TestWithoutFinalFigures(t *testing.T) {
	final := hv.Progress{Status: hv.StatusCompleted, TotalTime: 3 * time.Second, NoFinalFigures: "libvirt recorded no completed job"}
	poll := hv.Progress{Status: hv.StatusPostcopy, TotalTime: time.Second, SetupTime: 800 * time.Millisecond, HaveRAM: true,
		Transferred: 69e6, Iterations: 2, PostcopyRequests: 14}
	for _, c := range []struct {
		name    string
		lastRAM hv.Progress
		want    hv.Progress
		ram     string
		noteHas string
	}{
		{"last poll", poll, hv.Progress{Status: hv.StatusPostcopy, TotalTime: 3 * time.Second, SetupTime: 800 * time.Millisecond, HaveRAM: true,
			Transferred: 69e6, Iterations: 2, PostcopyRequests: 14}, results.RAMFiguresLastPoll, "last poll's, 250 ms before"},
		{"no poll had RAM figures", hv.Progress{}, final, results.RAMFiguresUnknown, "RAM figures are unknown"},
	} {
		s := &scenario{cfg: &Config{Logf: t.Logf}}
		mig := &results.Migration{QEMUDowntimeMS: 7}
		got := s.withoutFinalFigures(mig, final, c.lastRAM, 250*time.Millisecond)
		if got != c.want || mig.RAMFigures != c.ram || mig.QEMUDowntimeKnown() || mig.QEMUDowntimeMS != 0 {
			t.Errorf("%s: progress %+v, RAM figures %q, downtime %v %q", c.name, got, mig.RAMFigures, mig.QEMUDowntimeMS, mig.QEMUDowntimeUnknown)
		}
		if len(s.notes) != 1 || !strings.Contains(s.notes[0], c.noteHas) || !strings.Contains(s.notes[0], "QEMU's downtime") {
			t.Errorf("%s: notes %q", c.name, s.notes)
		}
	}
}

// A process started for the run and reaped before the end (the mirror's qemu-nbd) counts
// with the helpers, its whole rusage.
func TestCPUMeterExitedProcess(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	m := startCPUMeter(map[string]cpuProbe{results.CostHelpers: func() (float64, error) { return 1, nil }})
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	burnt := (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	if burnt <= 0 {
		t.Fatalf("the child used no CPU time (%v)", burnt)
	}
	m.addExited(results.CostHelpers, cmd.ProcessState)
	m.addExited(results.CostHelpers, nil) // a process never reaped adds nothing
	if c := m.cost(3.5); c.HelpersCPUS != burnt || c.TotalCPUS != burnt || len(c.Unmeasured) != 0 {
		t.Errorf("helpers %v s, total %v s, want the child's %v s; unmeasured %v", c.HelpersCPUS, c.TotalCPUS, burnt, c.Unmeasured)
	}
}
