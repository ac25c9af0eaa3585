package migrate

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// DefaultWattsPerCore is the power assumed for one logical CPU kept busy: Cloud Carbon
// Footprint's "average maximum watts (100% CPU utilization)" per vCPU for AWS, 3.5 W
// (cloudcarbonfootprint.org, methodology, Appendix I: energy coefficients, derived from
// SPECpower_ssj2008 results). /proc counts CPU time per logical CPU, as a vCPU is one.
const DefaultWattsPerCore = 3.5

// EnergyBasis says where the energy estimate comes from, in every result that has one.
const EnergyBasis = "estimate: CPU-seconds from /proc/PID/stat (under libvirt: virDomainGetInfo's cpuTime) × watts per busy core (default 3.5 W: Cloud Carbon Footprint's AWS max watts per vCPU); no power meter read"

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture this runs on (the kernel converts to it whatever its own HZ is).
const clockTicks = 100

// cpuSeconds returns the user + system CPU time of process pid from /proc/pid/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) from a /proc/PID/stat line. The
// command name (field 2) is in parentheses and may hold spaces and parentheses itself, so
// fields are counted from the last ')'.
func parseStatCPU(stat string) (float64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: no command name", truncate(stat, 80))
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, f[11]; stime f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name", len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: cpu time %q: %w", s, err)
		}
		ticks += n
	}
	return float64(ticks) / clockTicks, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// cpuProbe reads one process's CPU-seconds so far.
type cpuProbe func() (float64, error)

// cpuTimeTimeout bounds asking a hypervisor (over the network) for a guest's CPU time.
const cpuTimeTimeout = 5 * time.Second

// pidProbe reads process pid's CPU time from /proc.
func pidProbe(pid int) cpuProbe { return func() (float64, error) { return cpuSeconds(pid) } }

// guestCPUProbe reads the CPU time of g's hypervisor process: from /proc when it runs on
// this host (hv.Processes), else as its hypervisor reports it (hv.CPUTimer: libvirt, whose
// QEMU may run on another host); nil when the driver offers neither.
func guestCPUProbe(g hv.Guest) cpuProbe {
	if p, ok := g.(hv.Processes); ok && p.PID() > 0 {
		return pidProbe(p.PID())
	}
	if t, ok := g.(hv.CPUTimer); ok {
		return func() (float64, error) {
			ctx, cancel := context.WithTimeout(context.Background(), cpuTimeTimeout)
			defer cancel()
			d, err := t.CPUTime(ctx)
			return d.Seconds(), err
		}
	}
	return nil
}

// cpuMeter samples the CPU time of the run's processes at the start of a migration and
// again at its end: each QEMU must be sampled before it is stopped (its /proc entry goes
// with it), so end is called per process as it becomes final. A process it cannot sample
// at either end is unmeasured, with the reason, never counted as 0.
type cpuMeter struct {
	start      time.Time
	probes     map[string]cpuProbe
	at0, at1   map[string]float64
	wall       time.Duration
	unmeasured map[string]string
	// exited adds the CPU time of processes started for the run that ended before the
	// meter's end (read from their rusage when they were reaped), by name.
	exited map[string]float64
}

// addExited adds an ended process's whole CPU time (its rusage) to name's figure: a process
// vmstorbench started for the run and stopped before the end (the mirror's qemu-nbd), whose
// /proc entry is gone by then.
func (m *cpuMeter) addExited(name string, st *os.ProcessState) {
	if m == nil || st == nil {
		return
	}
	if m.exited == nil {
		m.exited = map[string]float64{}
	}
	m.exited[name] += (st.UserTime() + st.SystemTime()).Seconds()
}

// newCPUMeter samples processes by pid now: names are results.CostSource, CostDestination
// and CostHelpers (this process).
func newCPUMeter(pids map[string]int) *cpuMeter {
	probes := map[string]cpuProbe{}
	for name, pid := range pids {
		probes[name] = pidProbe(pid)
	}
	return startCPUMeter(probes)
}

// startCPUMeter samples now; a nil probe is a process whose CPU time cannot be read.
func startCPUMeter(probes map[string]cpuProbe) *cpuMeter {
	m := &cpuMeter{start: time.Now(), probes: probes, at0: map[string]float64{}, at1: map[string]float64{}, unmeasured: map[string]string{}}
	for name, probe := range probes {
		if probe == nil {
			m.unmeasured[name] = "its hypervisor reports neither its process nor its CPU time"
			continue
		}
		if v, err := probe(); err == nil {
			m.at0[name] = v
		} else {
			m.unmeasured[name] = "at the start: " + err.Error()
		}
	}
	return m
}

// sample takes the end value of every process not sampled yet (the first call also fixes
// the interval's end): call it when the migration is over, before any QEMU is stopped.
func (m *cpuMeter) sample() {
	if m == nil {
		return
	}
	if m.wall == 0 {
		m.wall = time.Since(m.start)
	}
	for name, probe := range m.probes {
		if _, done := m.at1[name]; done {
			continue
		}
		if _, failed := m.unmeasured[name]; failed {
			// Not read at the start, or its end was missed: a later value would measure
			// another interval.
			continue
		}
		if v, err := probe(); err == nil {
			m.at1[name] = v
		} else {
			m.unmeasured[name] = "at the end: " + err.Error()
		}
	}
}

// cost is the result: CPU-seconds per process and the energy estimate, which covers the
// measured processes only.
func (m *cpuMeter) cost(wattsPerCore float64) *results.MigrationCost {
	if m == nil {
		return nil
	}
	m.sample()
	d := func(name string) float64 {
		a, ok0 := m.at0[name]
		b, ok1 := m.at1[name]
		if !ok0 || !ok1 {
			return 0
		}
		if b < a {
			m.unmeasured[name] = fmt.Sprintf("its CPU time went backwards (%.2f s to %.2f s)", a, b)
			return 0
		}
		return b - a + m.exited[name]
	}
	c := &results.MigrationCost{
		WallNS: int64(m.wall), SourceCPUS: d(results.CostSource), DestinationCPUS: d(results.CostDestination), HelpersCPUS: d(results.CostHelpers),
		WattsPerCore: wattsPerCore, EnergyEstimateOf: EnergyBasis,
	}
	c.TotalCPUS = c.SourceCPUS + c.DestinationCPUS + c.HelpersCPUS
	c.EnergyEstimateJ = c.TotalCPUS * wattsPerCore
	if len(m.unmeasured) > 0 {
		c.Unmeasured = maps.Clone(m.unmeasured)
		c.EnergyEstimateOf += "; covers the measured processes only, not: " + strings.Join(slices.Sorted(maps.Keys(m.unmeasured)), ", ")
	}
	return c
}
