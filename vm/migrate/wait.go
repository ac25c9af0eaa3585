package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

// waitFirstIO waits for the first completion of the workload.
func (s *scenario) waitFirstIO(ctx context.Context) error {
	t := time.NewTimer(firstIOTimeout)
	defer t.Stop()
	for {
		select {
		case <-s.coll.first:
			return nil
		case m := <-s.results:
			if m.Result.Task == taskWorkload {
				return fmt.Errorf("migrate: the workload ended in the guest before any I/O: %s", m.Result.Error)
			}
		case <-t.C:
			return fmt.Errorf("migrate: no I/O from the guest %s after starting the workload; console: %s", firstIOTimeout, lastLine(s.src.console()))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// brokenGrace is how long a guest whose kernel reported a failure on its console still
// gets to deliver a result: a kernel that has oopsed rarely recovers, and waiting the
// whole timeout for it only delays the error.
const brokenGrace = 3 * time.Second

// waitResult waits for task's result from the agent on sd. A guest that is in the engine's
// verify pass when timeout expires gets readBackTimeout more: the pass reads back every
// block the workload wrote, which takes time on a slow disk. One whose console shows a
// kernel failure gets brokenGrace.
func (s *scenario) waitResult(ctx context.Context, task int, timeout time.Duration, sd *side) (*agent.Result, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	extended := false
	var brokenSince time.Time
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	// A guest whose disk does no I/O at all for hangTimeout while a task runs is hung (the
	// issue saw a read-back stall 60 s after a failed migration): say so with what QEMU
	// shows, instead of waiting out a timeout sized for slow storage.
	lastOps, lastChange, lastSample := int64(-1), time.Now(), time.Time{}
	for {
		select {
		case m := <-s.results:
			if m.Result.Task == task {
				return m.Result, nil
			}
		case <-poll.C:
			if time.Since(lastSample) >= hangSample {
				lastSample = time.Now()
				if n, err := diskOps(ctx, sd); err == nil {
					if n != lastOps {
						lastOps, lastChange = n, time.Now()
					} else if time.Since(lastChange) > hangTimeout {
						st, _ := sd.guest.State(ctx)
						err := fmt.Errorf("guest on the %s: hung: its disk did no I/O for %s while task %d ran (guest phase %q, QEMU status %s, %d I/Os since QEMU started); console: %s",
							sd.name, hangTimeout, task, s.phase(), st, n, lastLine(sd.console()))
						s.addFault(fault{at: lastChange, component: compGuest, side: sd.name, what: "hung", reason: fmt.Sprintf("no disk I/O for %s", hangTimeout), secondary: true})
						return nil, err
					}
				}
			}
			if sd.guest.Exited() {
				return nil, fmt.Errorf("migrate: %s QEMU exited: %s; console: %s", sd.name, sd.guest.Log(), lastLine(sd.console()))
			}
			if st, err := sd.guest.State(ctx); err == nil && st.Stopped() {
				return nil, fmt.Errorf("migrate: the guest on the %s stopped (%s); console: %s", sd.name, st, lastLine(sd.console()))
			}
			if brokenSince.IsZero() {
				if guestBroken(sd.guest.ConsoleTail(64<<10)) != "" {
					brokenSince = time.Now()
				}
			} else if time.Since(brokenSince) > brokenGrace {
				return nil, fmt.Errorf("migrate: the guest kernel on the %s failed and its agent sent no result for %s; console: %s", sd.name, brokenGrace, lastLine(sd.console()))
			}
		case <-t.C:
			if !extended && s.phase() == "verify" {
				extended = true
				timeout += readBackTimeout
				t.Reset(readBackTimeout)
				continue
			}
			return nil, fmt.Errorf("migrate: no result from the guest's agent on the %s after %s (guest crashed?); console: %s", sd.name, timeout, lastLine(sd.console()))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// How often waitResult samples the guest's disk, and how long without any I/O is a hang.
const (
	hangSample  = time.Second
	hangTimeout = 15 * time.Second
)

// diskOps is the guest's disk operations so far (the hypervisor's block statistics).
func diskOps(ctx context.Context, sd *side) (int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := sd.guest.BlockStats(qctx)
	return st.ReadOps + st.WriteOps + st.FlushOps, err
}

// sleep waits d, calling tick every 200 ms (live display).
func (s *scenario) sleep(ctx context.Context, d time.Duration, tick func()) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		tick()
		select {
		case <-time.After(min(left, 200*time.Millisecond)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pump receives every agent message.
func (s *scenario) pump(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.msgs:
			switch {
			case m.Err != nil:
				s.mu.Lock()
				s.connEnded[m.From] = m.Err
				s.mu.Unlock()
			case m.Hello != nil:
				select {
				case s.hellos <- m:
				default:
				}
			case m.Batch != nil:
				s.coll.add(m.Batch, m.At, m.From)
			case m.Phase != nil:
				s.mu.Lock()
				s.guestPhase = m.Phase.Phase
				s.mu.Unlock()
			case m.Result != nil:
				if m.Result.Task == taskWorkload && m.Result.Error != "" {
					// Evidence, not a cause: the guest's I/O failing says the disk failed,
					// which the storage's own evidence names better when there is any.
					s.addFault(fault{at: m.At, component: compGuest, side: strings.SplitN(m.From, "-", 2)[0], what: "workload ended with an error", reason: m.Result.Error, secondary: true})
				}
				select {
				case s.results <- m:
				default:
					s.cfg.Logf("dropped a result from %s: nobody waiting", m.From)
				}
			case m.Log != "":
				s.cfg.Logf("guest %s: %s", m.From, m.Log)
			}
		}
	}
}

// eventSink records a side's hypervisor events with their arrival time.
func (s *scenario) eventSink(name string) func(hv.Event) {
	return func(ev hv.Event) {
		// The mirror runs on the source, the pull on the destination (QEMU block jobs).
		if strings.HasPrefix(ev.Name, "BLOCK_JOB_") {
			s.onJobEvent(qemu.Event{Name: ev.Name, Data: ev.Data, Received: ev.Received})
		}
		if ev.Name == "BLOCK_IO_ERROR" {
			s.blockIOError(name, ev)
		}
		if ev.Name == "MIGRATION" && name == "source" {
			s.onMigrationEvent(ev)
		}
		detail := ""
		if len(ev.Data) > 0 {
			var st struct {
				Status string `json:"status"`
				Reason string `json:"reason"`
			}
			if json.Unmarshal(ev.Data, &st) == nil && (st.Status != "" || st.Reason != "") {
				detail = st.Status + st.Reason
			} else {
				detail = string(ev.Data)
				if len(detail) > 200 {
					detail = detail[:200]
				}
			}
		}
		s.mu.Lock()
		s.events = append(s.events, timedEvent{at: ev.Received, side: name, name: ev.Name, detail: detail})
		s.mu.Unlock()
	}
}

// event finds the first event after t (detail "" matches any).
func (s *scenario) event(side, name, detail string, after time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.side == side && e.name == name && (detail == "" || e.detail == detail) && !e.at.Before(after) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// lastEvent finds the last event after t.
func (s *scenario) lastEvent(side, name string, after time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found time.Time
	ok := false
	for _, e := range s.events {
		if e.side == side && e.name == name && !e.at.Before(after) {
			found, ok = e.at, true
		}
	}
	return found, ok
}

func (s *scenario) phase() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guestPhase
}

func (s *scenario) note(n string) {
	s.mu.Lock()
	s.notes = append(s.notes, n)
	s.mu.Unlock()
	s.cfg.Logf("%s", n)
}

func (s *scenario) progress(phase string, pct float64, detail string) {
	if s.cfg.Progress == nil {
		return
	}
	st := Status{Phase: phase, Percent: pct, Detail: detail}
	if s.coll != nil {
		st.IOPS = s.coll.rate(time.Now())
	}
	s.cfg.Progress(st)
}
