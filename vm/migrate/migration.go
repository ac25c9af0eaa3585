package migrate

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
)

// setupMigration sets capabilities and parameters on both sides and starts listening.
func (s *scenario) setupMigration(ctx context.Context, incoming string) error {
	cfg := s.cfg
	caps := []map[string]any{{"capability": "events", "state": true}}
	if cfg.Mode == ModePostcopy {
		caps = append(caps, map[string]any{"capability": "postcopy-ram", "state": true})
	}
	srcParams := map[string]any{}
	dstParams := map[string]any{}
	if cfg.MaxBandwidth > 0 {
		srcParams["max-bandwidth"] = cfg.MaxBandwidth
	}
	if cfg.DowntimeLimit > 0 {
		srcParams["downtime-limit"] = cfg.DowntimeLimit.Milliseconds()
	}
	if cfg.Security != SecurityNone {
		srcParams["tls-creds"] = tlsObjectID
		srcParams["tls-hostname"] = "127.0.0.1"
		dstParams["tls-creds"] = tlsObjectID
	}
	for _, sd := range []struct {
		side   *side
		params map[string]any
	}{{s.src, srcParams}, {s.dst, dstParams}} {
		q := sd.side.vm.QMP
		if err := q.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil); err != nil {
			return err
		}
		if len(sd.params) > 0 {
			if err := q.Execute(ctx, "migrate-set-parameters", sd.params, nil); err != nil {
				return err
			}
		}
	}
	if cfg.Storage == StorageMirror || cfg.Storage == StorageTwoPhase {
		// The disk's last writes move with the VM stopped and before the destination takes
		// over: QEMU waits in "pre-switchover" until migrate-continue (as libvirt does it).
		caps := []map[string]any{{"capability": "pause-before-switchover", "state": true}}
		if err := s.src.vm.QMP.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": caps}, nil); err != nil {
			return fmt.Errorf("migrate: pause-before-switchover: %w", err)
		}
	}
	return s.dst.vm.QMP.Execute(ctx, "migrate-incoming", map[string]any{"uri": incoming}, nil)
}

// qemuDefaultDowntimeLimitMS is QEMU's downtime-limit when none is set.
const qemuDefaultDowntimeLimitMS = 300

// migrateInfo is query-migrate's reply.
type migrateInfo struct {
	Status           string `json:"status"`
	TotalTime        int64  `json:"total-time"`
	Downtime         int64  `json:"downtime"`
	ExpectedDowntime int64  `json:"expected-downtime"`
	SetupTime        int64  `json:"setup-time"`
	ErrorDesc        string `json:"error-desc"`
	RAM              *struct {
		Transferred      int64   `json:"transferred"`
		Remaining        int64   `json:"remaining"`
		Total            int64   `json:"total"`
		DirtySyncCount   int64   `json:"dirty-sync-count"`
		DirtyPagesRate   int64   `json:"dirty-pages-rate"`
		Mbps             float64 `json:"mbps"`
		PostcopyRequests int64   `json:"postcopy-requests"`
	} `json:"ram"`
}

func (s *scenario) sample(info *migrateInfo, at time.Time) results.MigrationSample {
	sm := results.MigrationSample{
		TNS: int64(at.Sub(s.t0)), Status: info.Status, TotalTimeMS: info.TotalTime, DowntimeMS: info.Downtime,
		ExpectedDowntimeMS: info.ExpectedDowntime, SetupTimeMS: info.SetupTime,
	}
	if r := info.RAM; r != nil {
		sm.TransferredB, sm.RemainingB, sm.TotalB = r.Transferred, r.Remaining, r.Total
		sm.DirtySyncCount, sm.DirtyPagesRate, sm.Mbps, sm.PostcopyRequests = r.DirtySyncCount, r.DirtyPagesRate, r.Mbps, r.PostcopyRequests
	}
	return sm
}

// migrate runs the migration to its end and records it in mig.
func (s *scenario) migrate(ctx context.Context, mig *results.Migration, uri string) error {
	cfg := s.cfg
	srcQ := s.src.vm.QMP
	start := time.Now()
	mig.StartNS = int64(start.Sub(s.t0))
	s.cpu = newCPUMeter(map[string]int{"source": s.src.vm.PID(), "destination": s.dst.vm.PID(), "helpers": os.Getpid()})
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
	if err := srcQ.Execute(ctx, "migrate", map[string]any{"uri": uri}, nil); err != nil {
		return s.src.check(err)
	}
	switched, cancelRequested, deadlineNoted := false, false, false
	var last migrateInfo
	tick := time.NewTicker(queryMigrateEvery)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, queryMigrateTimeout)
		var info migrateInfo
		err := srcQ.Execute(qctx, "query-migrate", nil, &info)
		cancel()
		now := time.Now()
		if err != nil {
			return fmt.Errorf("migrate: %w", s.src.check(err))
		}
		mig.Samples = append(mig.Samples, s.sample(&info, now))
		last = info
		pct := -1.0
		if r := info.RAM; r != nil && r.Total > 0 {
			pct = 100 * float64(r.Total-r.Remaining) / float64(r.Total)
		}
		detail := info.Status
		if switched {
			detail = "post-copy"
		}
		s.progress("migrating", pct, detail)
		done := false
		switch info.Status {
		case "completed":
			mig.Outcome = OutcomeCompleted
			// From now on the destination's QEMU is the one whose exit ends the run.
			s.setGuestOn("destination")
			done = true
		case "failed":
			mig.Outcome = OutcomeFailed
			// QEMU reports the failure a moment before the process exit that caused it
			// (a destination killed) is reaped: wait briefly for that evidence, then name
			// the first cause.
			s.settle(time.Second)
			desc := info.ErrorDesc
			if desc == "" {
				desc = "QEMU gave no reason"
			}
			s.addFault(fault{at: now, component: compMigration, what: "failed", reason: desc, secondary: true})
			mig.Failure = s.cause()
			s.note("migration failed: " + mig.Failure)
			done = true
		case "cancelled":
			mig.Outcome = OutcomeCancelled
			if !cancelRequested {
				s.note("migration was cancelled (not by vmstorbench)")
			}
			done = true
		case "pre-switchover":
			// The VM is stopped, its disk still active: move the disk's last writes, check
			// the images, then let the destination take over.
			if preSwitchover.IsZero() {
				preSwitchover = now
				if err := s.atSwitchover(ctx, mig); err != nil {
					return err
				}
				if err := srcQ.Execute(ctx, "migrate-continue", map[string]any{"state": "pre-switchover"}, nil); err != nil {
					return fmt.Errorf("migrate: migrate-continue: %w", s.src.check(err))
				}
			}
		}
		if done {
			break
		}
		if cfg.Mode == ModePostcopy && !switched && info.Status == "active" {
			iters := int64(0)
			if info.RAM != nil {
				iters = info.RAM.DirtySyncCount
			}
			if (cfg.PostcopyAfter > 0 && now.Sub(start) >= cfg.PostcopyAfter) ||
				(cfg.PostcopyIterations > 0 && iters >= int64(cfg.PostcopyIterations)) {
				if err := srcQ.Execute(ctx, "migrate-start-postcopy", nil, nil); err != nil {
					return err
				}
				switched = true
				mig.SwitchoverNS = int64(time.Since(s.t0))
			}
		}
		if now.After(deadline) && !cancelRequested && !deadlineNoted {
			if strings.HasPrefix(info.Status, "postcopy") || switched {
				s.note(fmt.Sprintf("deadline %s passed during post-copy, which cannot be cancelled without losing the guest", cfg.Deadline))
				deadlineNoted = true
			} else {
				s.note(fmt.Sprintf("migration not converged after the %s deadline: cancelled, the guest keeps running on the source", cfg.Deadline))
				mig.Failure = fmt.Sprintf("migration not converged within the %s deadline: cancelled by vmstorbench", cfg.Deadline)
				// The destination ends itself when its incoming stream is cut: expected.
				s.dst.stopping.Store(true)
				if err := srcQ.Execute(ctx, "migrate_cancel", nil, nil); err != nil {
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
			_ = srcQ.Execute(cctx, "migrate_cancel", nil, nil)
			cancel()
			return context.Cause(ctx)
		}
	}
	end := time.Now()
	if mig.Outcome == OutcomeCompleted && last.TotalTime == 0 {
		// QEMU sets "completed" a moment before it computes total-time and downtime: a
		// query in between reports zeros. Ask again.
		for i := 0; i < 50 && last.TotalTime == 0; i++ {
			time.Sleep(10 * time.Millisecond)
			var info migrateInfo
			if err := srcQ.Execute(ctx, "query-migrate", nil, &info); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			last = info
		}
		mig.Samples = append(mig.Samples, s.sample(&last, time.Now()))
	}

	mig.TotalTimeMS = float64(last.TotalTime)
	mig.QEMUDowntimeMS = float64(last.Downtime)
	if mig.Outcome == OutcomeCompleted && cfg.Mode != ModeStopcopy {
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
	mig.SetupTimeMS = float64(last.SetupTime)
	if r := last.RAM; r != nil {
		mig.TransferredB, mig.DirtySyncCount, mig.PostcopyReqs = r.Transferred, r.DirtySyncCount, r.PostcopyRequests
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
		if err := s.waitStatus(ctx, s.dst, time.Minute, func(st string) bool { return st != "inmigrate" }, "has loaded the incoming migration"); err != nil {
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
		if st, err := s.dst.vm.Status(ctx); err == nil && st != "running" {
			if err := s.dst.vm.QMP.Execute(ctx, "cont", nil, nil); err != nil {
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
		if st, err := s.src.vm.Status(ctx); err == nil && st != "running" {
			if err := s.src.vm.QMP.Execute(ctx, "cont", nil, nil); err != nil {
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

// waitRunning waits until sd's guest runs.
func (s *scenario) waitRunning(ctx context.Context, sd *side) error {
	return s.waitStatus(ctx, sd, 10*time.Second, func(st string) bool { return st == "running" }, "runs")
}

// waitStatus polls sd's run state until done accepts it; the error after timeout says what
// was awaited ("waiting until the destination QEMU runs: still \"paused\" after 10s").
func (s *scenario) waitStatus(ctx context.Context, sd *side, timeout time.Duration, done func(string) bool, what string) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := sd.vm.Status(ctx)
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
