package migrate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/internal/version"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// assemble builds the result document from the guest's workload result and the host's
// measurements.
func (s *scenario) assemble(mig *results.Migration, wres, readBack *agent.Result, endNS int64) *Result {
	cfg := s.cfg
	run := wres.Run
	if run == nil {
		run = &results.Run{Schema: results.SchemaVersion, ID: results.NewID(), Workload: s.workload}
	}
	run.Tool = results.Tool{Name: "vmstorbench", Version: version.String()}
	run.Start = s.t0
	run.End = s.t0.Add(time.Duration(endNS))
	run.Command, run.Profile = cfg.Command, cfg.Profile
	run.Host = bench.HostFacts()
	info := map[string]string{"access": cfg.Disk.Access, "qemu_drive": redactDrive(cfg.Disk.Drive.File), "scenario": "migration"}
	if r := mig.Replication; r != nil && r.Protocol != "" {
		info["security"] = "protocol " + r.Protocol // the replicated disk's, as its own runs report
	}
	run.Target = results.Target{URL: cfg.Disk.URL, Backend: cfg.Disk.Scheme, Info: info}
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	labels["scenario"] = "migrate-" + cfg.Mode
	labels["security"] = cfg.Security
	if cfg.Link != nil {
		labels["link"] = cfg.Link.Name
	}
	run.Labels = labels
	// The host stops the workload on purpose, gracefully: the engine's run is complete.
	run.Complete = wres.Error == ""
	run.Error = wres.Error
	mig.DroppedCompletions = wres.Dropped

	cs, gaps := s.coll.timeline(s.t0)
	if gaps > 0 {
		s.note(fmt.Sprintf("%d gaps in the completion stream's sequence numbers: some batches were lost", gaps))
	}
	mig.Completions = int64(len(cs))
	mig.Windows = windows(cs, int64(cfg.Window), endNS)
	first := int64(0)
	if len(cs) > 0 {
		first = cs[0].T
	}
	// A run can end before its migration (or disk move) starts.
	migrated := (cfg.Mode != ModeNone || cfg.Storage != StorageShared) && mig.StartNS > 0
	migEnd := mig.EndNS
	if migEnd == 0 {
		migEnd = endNS // the run ended during the migration
	}
	if !migrated {
		mig.Before = phaseStats(cs, first, endNS)
	} else {
		mig.Before = phaseStats(cs, first, mig.StartNS)
		mig.During = phaseStats(cs, mig.StartNS, migEnd)
		mig.After = phaseStats(cs, migEnd, endNS)
	}
	s.mu.Lock()
	pauses := append([]span(nil), s.checkPauses...)
	s.mu.Unlock()
	if st, n := longestStall(cs, mig.StartNS, migEnd, pauses); st != nil && migrated {
		mig.LongestStall = st
		mig.LongestStallMS = ms(time.Duration(n))
	}
	for _, p := range pauses {
		mig.CheckPauseMS += ms(time.Duration(p.to - p.from))
	}
	s.mu.Lock()
	for _, e := range s.events {
		mig.Events = append(mig.Events, results.MigrationEvent{TNS: int64(e.at.Sub(s.t0)), Side: e.side, Name: e.name, Detail: e.detail})
	}
	mig.Notes = append(mig.Notes, s.notes...)
	s.mu.Unlock()
	mig.Traffic = s.traffic()
	for _, t := range mig.Traffic {
		if t.Link == linkDisk {
			mig.DiskTransferredB = t.UpB + t.DownB
		}
	}
	if s.cpu != nil {
		mig.Cost = s.cpu.cost(cfg.WattsPerCore)
	}
	if mig.Storage == "" {
		mig.Storage = cfg.Storage
	}
	if in := mig.Integrity; in != nil {
		if readBack != nil && readBack.Run != nil {
			in.ReadBack = readBack.Run.Verify
		}
		// The engine's own verify pass ran where the guest ended (the host's stop is a
		// graceful end): it knows the generation each block was last written with.
		in.Workload = run.Verify
	}
	run.Migration = mig
	return &Result{Run: run, Migration: mig}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// redactDrive hides credentials in a drive URL (network drivers take user@host).
func redactDrive(file string) string {
	if strings.Contains(file, "://") {
		return redactURL(file)
	}
	return file
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 && len(s)-i < 400 {
		// the last few lines say most
		lines := strings.Split(s, "\n")
		if len(lines) > 4 {
			lines = lines[len(lines)-4:]
		}
		return strings.Join(lines, " | ")
	}
	if len(s) > 400 {
		return "..." + s[len(s)-400:]
	}
	if s == "" {
		return "(empty)"
	}
	return s
}

type outsideResult struct {
	run *results.Run
	err error
}

// runOutside runs the guest's workload on the host against cfg.OutsideTarget until stop is
// closed (when the host stops the guest's workload: a graceful end, with the engine's verify
// pass); ctx abandons it (the scenario failed).
func (s *scenario) runOutside(ctx context.Context, stop <-chan struct{}, w workloads.Workload) outsideResult {
	cfg := s.cfg
	run, err := bench.Run(ctx, bench.Config{
		Target: cfg.OutsideTarget, Workload: w, Interval: cfg.Window, Open: cfg.OutsideOpen, Stop: stop,
		Labels: map[string]string{"scenario": "migrate-outside"},
	})
	return outsideResult{run: run, err: err}
}
