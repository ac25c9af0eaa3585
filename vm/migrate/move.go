package migrate

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
)

// moveDisk moves the running VM's disk to the destination image without migrating the VM
// (--mode none --storage mirror: "from NAS A to NAS B"): the source QEMU mirrors its disk
// straight into the destination image, and once the mirror is ready the job completes with
// a pivot, after which QEMU uses the new image. To compare the images at the pivot the VM
// is stopped for it (a pause the move itself would not need: --check-image=false leaves it
// out).
func (s *scenario) moveDisk(ctx context.Context, mig *results.Migration) error {
	cfg := s.cfg
	if s.dstDrive.Auth != nil || s.dstDrive.File == "" {
		return fmt.Errorf("migrate: moving the disk needs a destination QEMU opens by name (a path or URL), not %s", s.dst0.Access)
	}
	start := time.Now()
	mig.StartNS = int64(start.Sub(s.t0))
	s.cpu = newCPUMeter(map[string]int{"source": s.src.vm.PID(), "helpers": os.Getpid()})
	s.mirrorTarget = s.dstDrive.File
	ok, err := s.mirrorUntilReady(ctx, mig, start.Add(cfg.Deadline))
	if err != nil || !ok {
		if !ok && err == nil {
			s.abandon(mig)
			mig.EndNS = int64(time.Since(s.t0))
		}
		return err
	}
	q := s.src.vm.QMP
	var stopAt time.Time
	if !cfg.NoImageCheck {
		if err := s.stopSource(ctx); err != nil {
			return err
		}
		stopAt = time.Now()
	}
	pivot := time.Now()
	if err := q.Execute(ctx, "block-job-complete", map[string]any{"device": mirrorJobID}, nil); err != nil {
		return fmt.Errorf("migrate: completing the mirror: %w", s.src.check(err))
	}
	if err := s.waitJobEnd(ctx, mirrorJobID); err != nil {
		return err
	}
	s.mirrorDone = true
	s.span(mig, "disk-pivot", pivot, time.Now(), 0)
	if !cfg.NoImageCheck {
		if err := s.checkImages(ctx, mig); err != nil {
			return err
		}
		if err := q.Execute(ctx, "cont", nil, nil); err != nil {
			return fmt.Errorf("migrate: cont after the disk move: %w", s.src.check(err))
		}
		s.srcStopped = false
		if err := s.waitRunning(ctx, s.src); err != nil {
			return err
		}
		resume := time.Now()
		s.span(mig, "downtime", stopAt, resume, 0)
		pause := resume.Sub(stopAt)
		mig.PauseMS = ms(pause)
		check := time.Duration(0)
		if mig.ImageCheck != nil {
			check = time.Duration(mig.ImageCheck.PauseNS)
		}
		mig.DisruptionMS = max(ms(pause-check), 0)
	}
	end := time.Now()
	mig.EndNS = int64(end.Sub(s.t0))
	mig.MigrationTimeMS = ms(end.Sub(start))
	mig.GuestOn = "source, on the destination image"
	s.cpu.sample()
	return nil
}

// waitJobEnd waits for the source's block job id to end and returns its error, if any.
func (s *scenario) waitJobEnd(ctx context.Context, id string) error {
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for {
		select {
		case ev := <-s.jobEvents:
			if ev.Device != id || (ev.name != "BLOCK_JOB_COMPLETED" && ev.name != "BLOCK_JOB_CANCELLED") {
				continue
			}
			if ev.Error != "" || ev.name == "BLOCK_JOB_CANCELLED" {
				return fmt.Errorf("migrate: block job %s ended: %s", id, orUnknown(ev.Error))
			}
			return nil
		case <-timeout.C:
			return fmt.Errorf("migrate: block job %s did not end within a minute", id)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
