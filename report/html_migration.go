package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
)

// This file is the report's section on live-migration runs.

// htmlMigration is one migration run: facts, downtime seen three ways, the workload's
// phases and the integrity checks.
type htmlMigration struct {
	ID       string
	Heading  string
	RunID    string
	Outcome  string
	Bad      bool
	Facts    []htmlFact
	Downtime []htmlBar
	Timing   []htmlFact
	Phases   []htmlPhase
	Checks   []htmlCheck
	Notes    []string
	Outside  string
}

type htmlFact struct{ Name, Value string }

// htmlBar is one downtime figure with its share of the longest, for a bar.
type htmlBar struct {
	Name, Value, Explain string
	Pct                  float64
}

type htmlPhase struct {
	Name, Span, IOs, IOPS, BW, Mean, P99, Max, Stall, Errors string
	Bad                                                      bool
}

type htmlCheck struct {
	Name, Result string
	Bad          bool
}

func migrationView(r *results.Run, n int) htmlMigration {
	m := r.Migration
	v := htmlMigration{
		ID:      fmt.Sprintf("migration-%d", n),
		Heading: fmt.Sprintf("%s · %s · %s", redactedTargetName(r), workloadLabel(r.Workload), results.Scenario(r)),
		RunID:   r.ID,
		Outcome: dash(m.Outcome),
		Bad:     m.Outcome != "completed",
	}
	accel := dash(m.Accel)
	if m.AccelNote != "" {
		accel += " (" + redactText(m.AccelNote) + ")"
	}
	guest := fmt.Sprintf("%s, %d vCPU", sizeText(m.GuestMemoryB), m.GuestCPUs)
	if m.GuestKernel != "" {
		guest = "kernel " + m.GuestKernel + ", " + guest
	}
	v.Facts = []htmlFact{
		{"Mode", dash(m.Mode)},
		{"Outcome", dash(m.Outcome)},
		{"Accelerator", accel},
		{"QEMU", dash(m.QEMU)},
		{"Guest", guest},
		{"Disk access", dash(m.Access)},
		{"Disk URL", dash(redactURL(m.DiskURL))},
		{"Migration security", dash(m.Security)},
		{"Migration link", linkText(m.Link)},
	}
	if m.StorageLink != nil {
		v.Facts = append(v.Facts, htmlFact{"Storage link", linkText(m.StorageLink)})
	}
	params := []string{}
	if m.Params.MaxBandwidthBps > 0 {
		params = append(params, "max-bandwidth "+sig3(float64(m.Params.MaxBandwidthBps)/1e6)+" MB/s")
	}
	if m.Params.DowntimeLimitMS > 0 {
		params = append(params, fmt.Sprintf("downtime-limit %d ms", m.Params.DowntimeLimitMS))
	}
	if m.Params.AtNS > 0 {
		params = append(params, "started after "+durationText(time.Duration(m.Params.AtNS)))
	}
	if m.Params.PostcopyAfterNS > 0 {
		params = append(params, "post-copy after "+durationText(time.Duration(m.Params.PostcopyAfterNS)))
	}
	if m.Params.PostcopyIterations > 0 {
		params = append(params, fmt.Sprintf("post-copy after %d iterations", m.Params.PostcopyIterations))
	}
	if len(params) == 0 {
		params = append(params, "QEMU defaults")
	}
	v.Facts = append(v.Facts, htmlFact{"Parameters", strings.Join(params, ", ")})

	stall := "longest gap between two completions of the guest's workload during the migration, timestamped on the host"
	if s := m.LongestStall; s != nil {
		stall += fmt.Sprintf(" (from %s to %s)", durationText(time.Duration(s.StartNS)), durationText(time.Duration(s.EndNS)))
	}
	if m.CheckPauseMS > 0 {
		stall += fmt.Sprintf(", less %s vmstorbench held the guest paused for its checks", msText(m.CheckPauseMS))
	}
	v.Downtime = []htmlBar{
		{Name: "QEMU downtime", Value: downtimeText(m), Explain: downtimeExplain(m)},
		{Name: "Pause seen on the host", Value: msText(m.PauseMS), Explain: "source STOP to destination RESUME"},
		{Name: "Longest workload stall", Value: msText(m.LongestStallMS), Explain: stall},
	}
	peak := max(m.QEMUDowntimeMS, m.PauseMS, m.LongestStallMS)
	for i, val := range []float64{m.QEMUDowntimeMS, m.PauseMS, m.LongestStallMS} {
		if peak > 0 && (i > 0 || m.QEMUDowntimeKnown()) {
			v.Downtime[i].Pct = math.Round(1000*val/peak) / 10
		}
	}
	v.Timing = []htmlFact{
		{"Guest boot", durationText(time.Duration(m.BootNS))},
		{"Migration", fmt.Sprintf("%s to %s", durationText(time.Duration(m.StartNS)), durationText(time.Duration(m.EndNS)))},
		{"Total time (QEMU)", msText(m.TotalTimeMS)},
		{"Setup time (QEMU)", m.RAMFigureText(msText(m.SetupTimeMS))},
		{"Transferred", m.RAMFigureText(sizeText(m.TransferredB))},
		{"Dirty syncs", m.RAMFigureText(strconv.FormatInt(m.DirtySyncCount, 10))},
	}
	if m.SwitchoverNS > 0 {
		v.Timing = append(v.Timing, htmlFact{"Post-copy switchover", durationText(time.Duration(m.SwitchoverNS))})
	}
	if m.PostcopyReqs > 0 {
		v.Timing = append(v.Timing, htmlFact{"Post-copy requests", strconv.FormatInt(m.PostcopyReqs, 10)})
	}
	completions := strconv.FormatInt(m.Completions, 10)
	if m.DroppedCompletions > 0 {
		completions += fmt.Sprintf(" (%d dropped by the guest)", m.DroppedCompletions)
	}
	v.Timing = append(v.Timing, htmlFact{"Completions seen by the host", completions})

	for _, ph := range []struct {
		name string
		p    *results.MigrationPhase
	}{{"before", m.Before}, {"during", m.During}, {"after", m.After}} {
		if ph.p != nil {
			v.Phases = append(v.Phases, phaseRow(ph.name, ph.p))
		}
	}
	v.Checks = integrityChecks(m)
	for _, note := range m.Notes {
		v.Notes = append(v.Notes, redactText(note))
	}
	if o := m.Outside; o != nil {
		var parts []string
		for _, d := range []string{"read", "write"} {
			if s := o.DirStats(d); s != nil {
				parts = append(parts, fmt.Sprintf("%s %s IOPS, %s MB/s, mean %s", d, humanCount(s.IOPS), sig3(s.BWBps/1e6), durationText(time.Duration(s.Lat.Mean))))
			}
		}
		if len(parts) == 0 {
			parts = append(parts, "no I/O recorded")
		}
		v.Outside = fmt.Sprintf("The same workload run by the host outside the VM at the same time (from %s, %s): %s.",
			durationText(time.Duration(m.OutsideStartNS)), redactedTargetName(o), strings.Join(parts, "; "))
		if !o.Complete {
			v.Outside += " INCOMPLETE: " + incompleteError(o)
		}
	}
	return v
}

func phaseRow(name string, p *results.MigrationPhase) htmlPhase {
	return htmlPhase{
		Name:   name,
		Span:   durationText(time.Duration(p.EndNS - p.StartNS)),
		IOs:    strconv.FormatInt(p.IOs, 10),
		IOPS:   humanCount(p.IOPS),
		BW:     sig3(p.BWBps / 1e6),
		Mean:   durationText(time.Duration(p.LatMeanNS)),
		P99:    durationText(time.Duration(p.LatP99NS)),
		Max:    durationText(time.Duration(p.LatMaxNS)),
		Stall:  durationText(time.Duration(p.LongestStallNS)),
		Errors: strconv.FormatInt(p.Errors, 10),
		Bad:    p.Errors > 0,
	}
}

// integrityChecks says what was checked after the migration and what it found; a check
// that did not run says so, since "no mismatches" must never be read into a missing check.
func integrityChecks(m *results.Migration) []htmlCheck {
	verify := func(v *results.Verify) (string, bool) {
		if v == nil {
			return "not run", true
		}
		s := fmt.Sprintf("%d blocks checked (%s), %d mismatches", v.Checked, dash(v.Algorithm), v.Mismatches)
		for i, mm := range v.First {
			if i == 3 {
				break
			}
			s += fmt.Sprintf("; job %d offset %d: %s", mm.Job, mm.Offset, mm.Reason)
		}
		return s, v.Mismatches > 0 || v.Checked == 0
	}
	var out []htmlCheck
	if in := m.Integrity; in != nil {
		rb, rbBad := verify(in.ReadBack)
		out = append(out, htmlCheck{"Read-back on the " + dash(in.Where), rb, rbBad})
		wl, wlBad := verify(in.Workload)
		out = append(out, htmlCheck{"Workload's verify pass", wl, wlBad})
		if in.Note != "" {
			out = append(out, htmlCheck{"Integrity note", redactText(in.Note), false})
		}
	} else {
		out = append(out, htmlCheck{"Disk integrity", "not checked", true})
	}
	if mc := m.Memory; mc != nil {
		out = append(out, htmlCheck{"Guest memory, source vs destination",
			fmt.Sprintf("%d of %d pages (%s each) differ; the check paused the guest %s", mc.DifferingPages, mc.Pages,
				sizeText(mc.PageSize), durationText(time.Duration(mc.PauseNS))), mc.DifferingPages > 0})
	}
	return out
}

func linkText(l *results.MigrationLink) string {
	if l == nil {
		return "direct (loopback)"
	}
	s := l.Preset
	if s == "" {
		s = "custom"
	}
	s += fmt.Sprintf(": latency %s", durationText(time.Duration(l.LatencyNS)))
	if l.JitterNS > 0 {
		s += " ± " + durationText(time.Duration(l.JitterNS))
	}
	if l.BandwidthBps > 0 {
		s += ", " + sig3(float64(l.BandwidthBps)/1e6) + " MB/s"
	}
	return s
}

// downtimeExplain says where QEMU's downtime comes from, and whether it broke the limit.
// downtimeText is QEMU's downtime, or "unknown" when the hypervisor gave none.
func downtimeText(m *results.Migration) string {
	if !m.QEMUDowntimeKnown() {
		return "unknown"
	}
	return msText(m.QEMUDowntimeMS)
}

func downtimeExplain(m *results.Migration) string {
	if !m.QEMUDowntimeKnown() {
		return "unknown: " + m.QEMUDowntimeUnknown
	}
	if m.DowntimeLimitExceeded {
		return "QEMU's own figure (query-migrate), ABOVE the downtime-limit in force"
	}
	return "QEMU's own figure (query-migrate)"
}
