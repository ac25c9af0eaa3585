package migrate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// prepareMigration has the driver start the destination, waiting for the incoming
// migration on listen (with the capabilities and parameters set on both sides), and
// connects to the destination's agent.
func (s *scenario) prepareMigration(ctx context.Context, accel, listen string) error {
	cfg := s.cfg
	p := hv.Params{
		Mode: cfg.Mode, Security: cfg.Security, TLS: s.tls,
		MaxBandwidth: cfg.MaxBandwidth, DowntimeLimit: cfg.DowntimeLimit,
		Listen: listen, Paused: cfg.CheckMemory,
		PauseBeforeSwitchover: cfg.Storage == StorageMirror || cfg.Storage == StorageTwoPhase,
	}
	m, dst, err := s.drv.Migrate(ctx, s.src.guest, s.spec("destination", accel), p)
	if dst != nil {
		s.dst = newSide("destination", dst)
		s.watchQEMU(s.dst)
	}
	if err != nil {
		return err
	}
	s.migration = m
	if s.hostOnly {
		return nil
	}
	conn, err := agent.Dial(ctx, "destination", dst.AgentSocket(), s.msgs)
	if err != nil {
		return err
	}
	s.dst.conn = conn
	return nil
}

// qemuDefaultDowntimeLimitMS is QEMU's downtime-limit when none is set.
const qemuDefaultDowntimeLimitMS = 300

func (s *scenario) sample(p *hv.Progress, at time.Time) results.MigrationSample {
	sm := results.MigrationSample{
		TNS: int64(at.Sub(s.t0)), Status: string(p.Status), TotalTimeMS: p.TotalTime.Milliseconds(), DowntimeMS: p.Downtime.Milliseconds(),
		ExpectedDowntimeMS: p.ExpectedDowntime.Milliseconds(), SetupTimeMS: p.SetupTime.Milliseconds(),
	}
	if p.HaveRAM {
		sm.TransferredB, sm.RemainingB, sm.TotalB = p.Transferred, p.Remaining, p.Total
		sm.DirtySyncCount, sm.DirtyPagesRate, sm.Mbps, sm.PostcopyRequests = p.Iterations, p.DirtyPagesRate, p.Mbps, p.PostcopyRequests
	}
	return sm
}

// migrate runs the migration to its end and records it in mig.
func (s *scenario) migrate(ctx context.Context, mig *results.Migration, uri string) error {
	cfg := s.cfg
	m := s.migration
	start := time.Now()
	mig.StartNS = int64(start.Sub(s.t0))
	s.cpu = startCPUMeter(map[string]cpuProbe{results.CostSource: guestCPUProbe(s.src.guest),
		results.CostDestination: guestCPUProbe(s.dst.guest), results.CostHelpers: pidProbe(os.Getpid())})
	deadline := start.Add(cfg.Deadline)
	// The disk first, for the methods that move it before RAM.
	if ok, err := s.beforeRAM(ctx, mig, deadline); err != nil {
		return err
	} else if !ok {
		s.abandon(mig)
		mig.EndNS = int64(time.Since(s.t0))
		s.cpu.sample()
		return nil
	}
	if cfg.Mode == ModeStopcopy {
		if err := s.stopSource(ctx); err != nil {
			return err
		}
	}
	ramStart := time.Now()
	var preSwitchover time.Time
	s.progress("migrating", 0, "")
	if err := m.Start(ctx, uri); err != nil {
		return s.src.check(err)
	}
	switched, cancelRequested, deadlineNoted := false, false, false
	var last, lastRAM hv.Progress // lastRAM: the last poll with RAM figures, at lastRAMAt
	var lastRAMAt time.Time
	tick := time.NewTicker(queryMigrateEvery)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, queryMigrateTimeout)
		info, err := m.Poll(qctx)
		cancel()
		now := time.Now()
		if err != nil {
			return fmt.Errorf("migrate: %w", s.src.check(err))
		}
		mig.Samples = append(mig.Samples, s.sample(&info, now))
		last = info
		if info.HaveRAM {
			lastRAM, lastRAMAt = info, now
		}
		pct := -1.0
		if info.HaveRAM && info.Total > 0 {
			pct = 100 * float64(info.Total-info.Remaining) / float64(info.Total)
		}
		detail := string(info.Status)
		if switched {
			detail = "post-copy"
		}
		s.progress("migrating", pct, detail)
		done := false
		switch info.Status {
		case hv.StatusCompleted:
			mig.Outcome = OutcomeCompleted
			// From now on the destination's QEMU is the one whose exit ends the run.
			s.setGuestOn("destination")
			done = true
		case hv.StatusFailed:
			mig.Outcome = OutcomeFailed
			// QEMU reports the failure a moment before the process exit that caused it
			// (a destination killed) is reaped: wait briefly for that evidence, then name
			// the first cause.
			s.settle(time.Second)
			desc := info.Error
			if desc == "" {
				desc = "QEMU gave no reason"
			}
			s.addFault(fault{at: now, component: compMigration, what: "failed", reason: desc, secondary: true})
			mig.Failure = s.cause()
			s.note("migration failed: " + mig.Failure)
			done = true
		case hv.StatusCancelled:
			mig.Outcome = OutcomeCancelled
			if !cancelRequested {
				s.note("migration was cancelled (not by vmstorbench)")
			}
			done = true
		case hv.StatusPreSwitchover:
			// The VM is stopped, its disk still active: move the disk's last writes, check
			// the images, then let the destination take over.
			if preSwitchover.IsZero() {
				preSwitchover = now
				if err := s.atSwitchover(ctx, mig); err != nil {
					return err
				}
				sw, ok := m.(hv.Switchover)
				if !ok {
					return hv.Unsupported(s.drv, "pausing before the switchover")
				}
				if err := sw.ContinueSwitchover(ctx); err != nil {
					return fmt.Errorf("migrate: migrate-continue: %w", s.src.check(err))
				}
			}
		}
		if done {
			break
		}
		if cfg.Mode == ModePostcopy && !switched && info.Status == hv.StatusActive {
			iters := int64(0)
			if info.HaveRAM {
				iters = info.Iterations
			}
			if (cfg.PostcopyAfter > 0 && now.Sub(start) >= cfg.PostcopyAfter) ||
				(cfg.PostcopyIterations > 0 && iters >= int64(cfg.PostcopyIterations)) {
				if err := m.StartPostcopy(ctx); err != nil {
					return err
				}
				switched = true
				mig.SwitchoverNS = int64(time.Since(s.t0))
			}
		}
		if now.After(deadline) && !cancelRequested && !deadlineNoted {
			if strings.HasPrefix(string(info.Status), "postcopy") || switched {
				s.note(fmt.Sprintf("deadline %s passed during post-copy, which cannot be cancelled without losing the guest", cfg.Deadline))
				deadlineNoted = true
			} else {
				s.note(fmt.Sprintf("migration not converged after the %s deadline: cancelled, the guest keeps running on the source", cfg.Deadline))
				mig.Failure = fmt.Sprintf("migration not converged within the %s deadline: cancelled by vmstorbench", cfg.Deadline)
				// The destination ends itself when its incoming stream is cut: expected.
				s.dst.stopping.Store(true)
				if err := m.Cancel(ctx); err != nil {
					return err
				}
				cancelRequested = true
			}
		}
		select {
		case <-tick.C:
		case <-s.switchover: // pre-switchover: query now (storage.go)
		case <-ctx.Done():
			// Interrupted, or a fault (fault.go) ended the run: a source stuck on a dead
			// server may not answer, so do not wait long for it.
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = m.Cancel(cctx)
			cancel()
			return context.Cause(ctx)
		}
	}
	end := time.Now()
	if mig.Outcome == OutcomeCompleted && last.TotalTime.Milliseconds() == 0 {
		// QEMU sets "completed" a moment before it computes total-time and downtime: a
		// query in between reports zeros. Ask again.
		for i := 0; i < 50 && last.TotalTime.Milliseconds() == 0; i++ {
			time.Sleep(10 * time.Millisecond)
			info, err := m.Poll(ctx)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			last = info
		}
		mig.Samples = append(mig.Samples, s.sample(&last, time.Now()))
	}

	mig.TotalTimeMS = float64(last.TotalTime.Milliseconds())
	mig.QEMUDowntimeMS = float64(last.Downtime.Milliseconds())
	if last.NoFinalFigures != "" {
		last = s.withoutFinalFigures(mig, last, lastRAM, end.Sub(lastRAMAt))
	}
	if mig.Outcome == OutcomeCompleted && cfg.Mode != ModeStopcopy && mig.QEMUDowntimeKnown() {
		// The limit QEMU was asked to keep (its default when none was set): stop-and-copy
		// has none, vmstorbench stops the guest itself.
		limit := float64(qemuDefaultDowntimeLimitMS)
		if cfg.DowntimeLimit > 0 {
			limit = float64(cfg.DowntimeLimit.Milliseconds())
		}
		if mig.QEMUDowntimeMS > limit {
			mig.DowntimeLimitExceeded = true
			s.note(fmt.Sprintf("QEMU's downtime %.0f ms exceeded the downtime-limit of %.0f ms", mig.QEMUDowntimeMS, limit))
		}
	}
	mig.SetupTimeMS = float64(last.SetupTime.Milliseconds())
	if last.HaveRAM {
		mig.TransferredB, mig.DirtySyncCount, mig.PostcopyReqs = last.Transferred, last.Iterations, last.PostcopyRequests
	}
	if ev, ok := s.event("source", "MIGRATION", mig.Outcome, start); ok && ev.Before(end) {
		end = ev
	}

	switch mig.Outcome {
	case OutcomeCompleted:
		// The source reports "completed" once it has sent the last byte, which an emulated
		// link may still be carrying: compare memory and continue the destination only once
		// it has loaded everything (a "cont" while it loads is lost when the stream says
		// "paused").
		if err := s.waitStatus(ctx, s.dst, time.Minute, func(st hv.State) bool { return st != hv.StateInMigrate }, "has loaded the incoming migration"); err != nil {
			return err
		}
		s.stopDiskExport(ctx)
		if cfg.CheckMemory {
			s.progress("migrating", 100, "comparing guest memory")
			mc, err := s.checkMemory(ctx)
			if err != nil {
				s.note("memory check failed: " + err.Error())
			}
			mig.Memory = mc
		}
		// The destination stays paused when the source was stopped (stop-and-copy) or when
		// it was started with -S (memory check): continue it.
		if st, err := s.dst.guest.State(ctx); err == nil && st != hv.StateRunning {
			if err := s.dst.guest.Continue(ctx); err != nil {
				return fmt.Errorf("migrate: cont on the destination: %w", s.dst.check(err))
			}
			end = time.Now()
		}
		if err := s.waitRunning(ctx, s.dst); err != nil {
			return err
		}
		stop, okStop := s.lastEvent("source", "STOP", start.Add(-time.Second))
		resume, okResume := s.event("destination", "RESUME", "", start)
		if okStop && okResume && resume.After(stop) {
			mig.PauseMS = ms(resume.Sub(stop))
			s.span(mig, "downtime", stop, resume, 0)
			checks := time.Duration(0)
			if mig.Memory != nil {
				checks += time.Duration(mig.Memory.PauseNS)
			}
			if mig.ImageCheck != nil {
				checks += time.Duration(mig.ImageCheck.PauseNS)
			}
			mig.DisruptionMS = max(ms(resume.Sub(stop)-checks), 0)
		}
		// RAM: pre-copy while the guest ran (until QEMU stopped it or post-copy began), or
		// all of it with the guest stopped (stop-and-copy, copy).
		ramEnd := end
		if okStop && stop.After(ramStart) {
			ramEnd = stop
		}
		switch {
		case s.srcStopped:
			s.span(mig, "ram-copy", ramStart, end, mig.TransferredB)
		case switched:
			s.span(mig, "ram-precopy", ramStart, start.Add(time.Duration(mig.SwitchoverNS-mig.StartNS)), 0)
			if okResume {
				s.span(mig, "postcopy", resume, end, 0)
			}
		default:
			s.span(mig, "ram-precopy", ramStart, ramEnd, 0)
		}
		if cfg.Storage == StoragePull {
			// The guest runs on the destination; the migration ends when it no longer
			// needs the source's disk.
			if err := s.pullDisk(ctx, mig); err != nil {
				return err
			}
			end = time.Now()
		}
		mig.MigrationTimeMS = ms(end.Sub(start))
	default:
		s.abandon(mig)
		// The guest stays on the source: make sure it runs (stop-and-copy stopped it).
		if st, err := s.src.guest.State(ctx); err == nil && st != hv.StateRunning {
			if err := s.src.guest.Continue(ctx); err != nil {
				return fmt.Errorf("migrate: cont on the source after the %s migration: %w", mig.Outcome, err)
			}
		}
		if err := s.waitRunning(ctx, s.src); err != nil {
			return err
		}
	}
	mig.EndNS = int64(end.Sub(s.t0))
	s.cpu.sample()
	return nil
}

// withoutFinalFigures records that the hypervisor gave no final figures for a completed
// migration (final.NoFinalFigures): QEMU's downtime is unknown, and the RAM figures are
// the last poll's (lastRAM, a lower bound up to that poll, before before the end) or
// unknown. It returns the progress the figures are to be taken from.
func (s *scenario) withoutFinalFigures(mig *results.Migration, final, lastRAM hv.Progress, before time.Duration) hv.Progress {
	mig.QEMUDowntimeMS, mig.QEMUDowntimeUnknown = 0, final.NoFinalFigures
	if !lastRAM.HaveRAM {
		mig.RAMFigures = results.RAMFiguresUnknown
		s.note(final.NoFinalFigures + ": QEMU's downtime, setup time and RAM figures are unknown; the total time is vmstorbench's")
		return final
	}
	mig.RAMFigures = results.RAMFiguresLastPoll
	s.note(fmt.Sprintf("%s: QEMU's downtime is unknown; setup time, transferred bytes and iterations are the last poll's, %d ms before vmstorbench saw the end (lower bounds); the total time is vmstorbench's", final.NoFinalFigures, before.Milliseconds()))
	lastRAM.TotalTime = final.TotalTime
	return lastRAM
}

// waitRunning waits until sd's guest runs.
func (s *scenario) waitRunning(ctx context.Context, sd *side) error {
	return s.waitStatus(ctx, sd, 10*time.Second, func(st hv.State) bool { return st == hv.StateRunning }, "runs")
}

// waitStatus polls sd's run state until done accepts it; the error after timeout says what
// was awaited ("waiting until the destination QEMU runs: still \"paused\" after 10s").
func (s *scenario) waitStatus(ctx context.Context, sd *side, timeout time.Duration, done func(hv.State) bool, what string) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := sd.guest.State(ctx)
		if err != nil {
			return sd.check(err)
		}
		if done(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("migrate: waiting until the %s QEMU %s: still %q after %s", sd.name, what, st, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
