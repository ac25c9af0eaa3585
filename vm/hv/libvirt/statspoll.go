package libvirt

import (
	"context"
	"sync"
	"time"
)

// StatsSample is one answer to virDomainGetJobStats: the figures, or the error, and when the
// query was sent and answered (the figures are libvirt's at some moment in between).
type StatsSample struct {
	Stats JobStats
	Err   error
	Asked time.Time
	At    time.Time
}

// PollPolicy says how often a StatsPoller asks libvirt.
type PollPolicy struct {
	// Every is the least time between the starts of two queries; one query is in flight at
	// most, so a slow answer delays the next.
	Every time.Duration
	// NearEnd, when set, stops the queries once the last figures say the RAM left would be
	// sent within NearEnd at the last rate: each query on an active migration takes a
	// libvirt job and QEMU's monitor, and the migration's own last monitor commands (its
	// completion, the final figures) wait behind it. Resume asks again after that long if
	// the migration has not ended (the estimate was wrong: the guest dirtied more).
	NearEnd, Resume time.Duration
}

// StatsPoller asks the source for its migration job's statistics in the background, by its
// policy, until the migration ends; Next hands out each answer once.
type StatsPoller struct {
	m      *Migration
	policy PollPolicy

	mu      sync.Mutex
	last    StatsSample
	seq     int
	changed chan struct{} // closed and replaced at each new sample
	stopped chan struct{}
	quiet   int // queries left out near the end (the number of quiet spells)
}

// PollStats starts a StatsPoller on m; it stops when m ends or ctx does.
func (m *Migration) PollStats(ctx context.Context, policy PollPolicy) *StatsPoller {
	p := &StatsPoller{m: m, policy: policy, changed: make(chan struct{}), stopped: make(chan struct{})}
	go p.run(ctx)
	return p
}

func (p *StatsPoller) run(ctx context.Context) {
	defer close(p.stopped)
	// The first query one interval after the start, as a ticker would: at once, it would
	// only find the job being set up.
	next := time.Now().Add(p.policy.Every)
	for {
		if !p.wait(ctx, next) {
			return
		}
		asked := time.Now()
		next = asked.Add(p.policy.Every)
		// Not cancelled with ctx: a call cut short closes the connection (Conn.call), and the
		// migration's end is no reason to lose it.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		js, err := p.m.Stats(qctx)
		cancel()
		s := StatsSample{Stats: js, Err: err, Asked: asked, At: time.Now()}
		p.mu.Lock()
		p.last, p.seq = s, p.seq+1
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		if err == nil && p.policy.nearEnd(js) {
			p.mu.Lock()
			p.quiet++
			p.mu.Unlock()
			next = s.At.Add(p.policy.Resume)
		}
	}
}

// wait waits until t; false when the migration or ctx ended first.
func (p *StatsPoller) wait(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-p.m.Done():
			return false
		case <-ctx.Done():
			return false
		default:
			return true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-p.m.Done():
		return false
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// nearEnd reports whether js says the RAM left goes within NearEnd at the last rate.
func (pp PollPolicy) nearEnd(js JobStats) bool {
	if pp.NearEnd <= 0 || js.Type != "unbounded" || !js.Has["memory_remaining"] || js.MemoryBPS == 0 || js.Iterations < 1 {
		return false
	}
	left := time.Duration(float64(js.MemoryRemaining) / float64(js.MemoryBPS) * float64(time.Second))
	return left < pp.NearEnd
}

// Next waits for an answer newer than the one numbered after (0: any), and returns it with
// its number; ok is false when the migration ended (or the poller stopped) first.
func (p *StatsPoller) Next(ctx context.Context, after int) (s StatsSample, seq int, ok bool, err error) {
	for {
		p.mu.Lock()
		s, seq, ch := p.last, p.seq, p.changed
		p.mu.Unlock()
		if seq > after {
			return s, seq, true, nil
		}
		select {
		case <-ch:
		case <-p.stopped:
			return StatsSample{}, seq, false, nil
		case <-p.m.Done():
			return StatsSample{}, seq, false, nil
		case <-ctx.Done():
			return StatsSample{}, seq, false, ctx.Err()
		}
	}
}

// Quiet is how many times the poller stopped asking near the end.
func (p *StatsPoller) Quiet() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.quiet
}
