package bench

import (
	"context"
	"math"
	"time"
)

// thinker pauses a worker after every `every` I/Os it completes (fio thinktime,
// thinktime_spin, thinktime_blocks). fio pauses the whole job, all of its iodepth I/Os,
// after thinktime_blocks of the job's I/Os; here each of the iodepth workers pauses after
// thinktime_blocks of its own, which is the same for iodepth=1 and, deeper, keeps the same
// share of time spent thinking per I/O issuer (in queue mode each slot pauses while the
// driver keeps the others going). The pause is not part of any I/O's latency:
// it happens between an I/O's completion and the next one's submission.
type thinker struct {
	every int64 // I/Os between pauses; 0 = never
	spin  int64 // ns spent spinning first
	total int64 // ns of the whole pause
	done  int64 // I/Os completed since the last pause
}

func newThinker(think, spin time.Duration, blocks int) thinker {
	if think <= 0 {
		return thinker{}
	}
	t := thinker{every: int64(max(blocks, 1)), total: int64(think), spin: int64(min(max(spin, 0), think))}
	return t
}

// think counts one completed I/O and pauses when it is time; false when the run ended while
// pausing.
func (wk *worker) think() bool {
	end, ok := wk.pauseAfter()
	if !ok || end == 0 {
		return ok
	}
	st, t := wk.st, &wk.thinker
	// Spin like an application busy with the data (fio thinktime_spin), then sleep.
	for spinEnd := end - t.total + t.spin; st.now() < spinEnd; {
		if st.stop.Load() {
			return false
		}
	}
	for now := st.now(); now < end; now = st.now() {
		if st.stop.Load() {
			return false
		}
		time.Sleep(min(time.Duration(end-now), 100*time.Millisecond))
	}
	return !st.stop.Load()
}

// pauseAfter counts one completed I/O and says when the pause it brings ends (run-relative
// ns; 0 when no pause is due); false when the pause would outlast the run.
func (wk *worker) pauseAfter() (int64, bool) {
	t := &wk.thinker
	if t.every == 0 {
		return 0, true
	}
	if t.done++; t.done < t.every {
		return 0, true
	}
	t.done = 0
	st := wk.st
	end := st.now() + t.total
	if st.deadlineNS > 0 && end >= st.deadlineNS {
		// The pause outlasts the run: end now rather than overrun the runtime.
		return 0, false
	}
	return end, true
}

// startDelay waits d before the run starts (fio startdelay, for the run's one job group:
// every job starts together). It is not part of the runtime. A Stop during the delay ends
// the run before its first I/O; a cancellation abandons it. false when ctx was cancelled.
func startDelay(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop:
	case <-ctx.Done():
		return false
	}
	return true
}

// poissonGap scales the limiter's mean gap cost by an exponentially distributed factor (fio
// rate_process=poisson: the I/Os of a rate-limited job arrive as a Poisson process whose
// mean rate is the rate). The k-th gap of a job depends on the seed and k only.
func (l *limiter) poissonGap(cost int64) int64 {
	k := l.draws.Add(1)
	u := (float64(mix64(l.seed^keyPoiss^k)>>11) + 1) / (1 << 53) // (0, 1]
	return int64(float64(cost) * -math.Log(u))
}
