// Package progress draws what a running benchmark tells through runner.Hooks: one rewritten
// terminal line (I/O figures, bench-file layout, a migration's phase), or plain lines for a
// log. The CLI and the suite runner show the same lines with it.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/runner"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// ClearLine erases the terminal line a Line or Phases drew.
const ClearLine = "\r\033[K"

// Line shows elapsed time, IOPS and MB/s on one terminal line.
type Line struct {
	w        io.Writer
	label    string
	last     bench.Progress
	lastTime time.Time
}

// NewLine is a line for workload name running against target (already redacted).
func NewLine(w io.Writer, target, name string) *Line {
	return &Line{w: w, label: name + " @ " + target, lastTime: time.Now()}
}

// Update redraws the line with the rates since the last update.
func (p *Line) Update(pr bench.Progress) {
	now := time.Now()
	secs := now.Sub(p.lastTime).Seconds()
	if secs <= 0 {
		return
	}
	var parts []string
	for d, name := range []string{"read", "write"} {
		ios := pr.IOs[d] - p.last.IOs[d]
		bytes := pr.Bytes[d] - p.last.Bytes[d]
		if pr.IOs[d] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s IOPS %.1f MB/s", name, HumanCount(float64(ios)/secs), float64(bytes)/secs/1e6))
	}
	fmt.Fprintf(p.w, ClearLine+"%s  %s %5.1fs  %s", p.label, pr.Phase, pr.Elapsed.Seconds(), strings.Join(parts, "  "))
	p.last, p.lastTime = pr, now
}

// Done clears the line.
func (p *Line) Done() { fmt.Fprint(p.w, ClearLine) }

// Wave adds up the progress of jobs that run concurrently onto one line; bench calls each
// job's Progress from that job's own goroutine.
type Wave struct {
	mu     sync.Mutex
	line   *Line
	last   []bench.Progress // latest of each job, cumulative
	shown  time.Time
	primed bool
}

// NewWave is the line of n concurrent jobs.
func NewWave(line *Line, n int) *Wave {
	return &Wave{line: line, last: make([]bench.Progress, n)}
}

// waveEvery spaces the line's updates: the jobs report at their own moments, and a rate
// taken between two of them milliseconds apart would jump.
const waveEvery = 400 * time.Millisecond

// Job is the Progress hook of the wave's k-th job.
func (w *Wave) Job(k int) func(bench.Progress) {
	return func(p bench.Progress) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.last[k] = p
		if w.primed && time.Since(w.shown) < waveEvery {
			return
		}
		w.primed, w.shown = true, time.Now()
		sum := bench.Progress{Phase: p.Phase}
		for _, q := range w.last {
			sum.Elapsed = max(sum.Elapsed, q.Elapsed)
			for d := range sum.IOs {
				sum.IOs[d] += q.IOs[d]
				sum.Bytes[d] += q.Bytes[d]
			}
		}
		w.line.Update(sum)
	}
}

// Layout shows bench-file layout as fio does ("laying out 1.0 GiB: 42%") on a terminal,
// and one line when it is over otherwise.
type Layout struct {
	w          io.Writer
	tty        bool
	start      time.Time
	lastShown  time.Time
	lastPct    int64
	done, size int64
	end        time.Time // when the last byte was laid out
}

// NewLayout is a layout line on w: a rewritten line when tty, one line at Finish otherwise.
func NewLayout(w io.Writer, tty bool) *Layout {
	return &Layout{w: w, tty: tty}
}

// Update is the Layout hook.
func (l *Layout) Update(done, total int64) {
	if l.start.IsZero() {
		// From the first report, not from when the job was planned: a job of a set may
		// wait for a stonewall before it lays anything out.
		l.start = time.Now()
	}
	l.done, l.size = done, total
	if done == total {
		l.end = time.Now()
	}
	if !l.tty || total <= 0 {
		return
	}
	pct := 100 * done / total
	now := time.Now()
	if pct == l.lastPct && now.Sub(l.lastShown) < 250*time.Millisecond {
		return
	}
	l.lastPct, l.lastShown = pct, now
	fmt.Fprintf(l.w, ClearLine+"laying out %s: %d%%", backends.HumanBytes(total), pct)
}

// Finish clears the terminal line, or tells a log what layout wrote and how long it took.
func (l *Layout) Finish() {
	if l.size == 0 {
		return
	}
	if l.tty {
		fmt.Fprint(l.w, ClearLine)
		return
	}
	if l.done < l.size {
		fmt.Fprintf(l.w, "layout stopped after %s of %s\n", backends.HumanBytes(l.done), backends.HumanBytes(l.size))
		return
	}
	fmt.Fprintf(l.w, "laid out %s in %.1f s\n", backends.HumanBytes(l.size), l.end.Sub(l.start).Seconds())
}

// Phases shows a migration's live phase: one rewritten line on a terminal (live), a line
// per phase change otherwise.
func Phases(w io.Writer, live bool, mode string, start time.Time) func(migrate.Status) {
	last := ""
	return func(s migrate.Status) {
		line := s.Phase
		if s.Phase == "migrating" && s.Percent >= 0 {
			line = fmt.Sprintf("migrating %3.0f%%", s.Percent)
		}
		if s.Detail != "" {
			line += " (" + s.Detail + ")"
		}
		if live {
			io_ := ""
			if s.IOPS > 0 {
				io_ = "  guest " + HumanCount(s.IOPS) + " IOPS"
			}
			fmt.Fprintf(w, ClearLine+"%s %5.1fs  %s%s", mode, time.Since(start).Seconds(), line, io_)
			return
		}
		if s.Phase != last {
			fmt.Fprintf(w, "%s %5.1fs  %s\n", mode, time.Since(start).Seconds(), s.Phase)
			last = s.Phase
		}
	}
}

// HumanCount is a count in at most four digits and a k or M.
func HumanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// HostHooks are the hooks of a host run drawn on w: the I/O line when live, the layout
// (a terminal line when live, else a line at the end) when layout. done ends both.
func HostHooks(w io.Writer, target, name string, live, layout bool) (h runner.Hooks, done func()) {
	var line *Line
	if live {
		line = NewLine(w, target, name)
		h.Progress = line.Update
	}
	var l *Layout
	if layout {
		l = NewLayout(w, live)
		h.Layout = l.Update
	}
	return h, func() {
		if line != nil {
			line.Done()
		}
		if l != nil {
			l.Finish()
		}
	}
}
