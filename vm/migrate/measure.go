package migrate

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// The host's view of the guest's I/O. The agent sends a batch of completions every 10 ms;
// each record carries its completion time on the agent's clock and each batch the agent's
// clock when it was sent. The host maps a record to host time as
//
//	arrival of its batch - (batch send time - record completion time)   (guest clock)
//
// so only the distance within one batch (at most one flush interval) is measured with the
// guest's clock, and everything else with the host's. While the guest is paused its clock
// stops, so I/O that completed just before a pause but was sent after it is placed after
// the pause: stalls are exact to about one flush interval.

// hostCompletion is one I/O completion on the host's timeline.
type hostCompletion struct {
	T     int64 // ns since the scenario's time zero
	Lat   int64
	Bytes int64
	Dir   workloads.Direction
	Err   bool
}

type arrivedBatch struct {
	at    time.Time
	batch *agent.Batch
}

// collector receives the agent's batches for one task.
type collector struct {
	mu      sync.Mutex
	task    int
	batches []arrivedBatch
	n       int64
	dropped uint32
	first   chan struct{}
	gotAny  bool
	// recent counts completions per arrival, for the live display.
	recentT []time.Time
	recentN []int
	// byFrom counts completions per connection and lastAt is the last arrival on each, for
	// diagnosing a guest that stops answering.
	byFrom map[string]int64
	lastAt map[string]time.Time
}

func newCollector(task int) *collector {
	return &collector{task: task, first: make(chan struct{}), byFrom: map[string]int64{}, lastAt: map[string]time.Time{}}
}

func (c *collector) add(b *agent.Batch, at time.Time, from string) {
	if b.Task != c.task {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byFrom[from] += int64(len(b.Records))
	c.lastAt[from] = at
	c.batches = append(c.batches, arrivedBatch{at: at, batch: b})
	c.n += int64(len(b.Records))
	if b.Dropped > c.dropped {
		c.dropped = b.Dropped
	}
	if !c.gotAny && len(b.Records) > 0 {
		c.gotAny = true
		close(c.first)
	}
	c.recentT = append(c.recentT, at)
	c.recentN = append(c.recentN, len(b.Records))
	// keep about the last two seconds
	for len(c.recentT) > 0 && at.Sub(c.recentT[0]) > 2*time.Second {
		c.recentT, c.recentN = c.recentT[1:], c.recentN[1:]
	}
}

// rate is the completions per second over the last second, for the live display.
func (c *collector) rate(now time.Time) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for i, t := range c.recentT {
		if now.Sub(t) <= time.Second {
			n += c.recentN[i]
		}
	}
	return float64(n)
}

func (c *collector) count() (int64, uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.dropped
}

// timeline maps every record to host time (ns since t0), in completion order.
func (c *collector) timeline(t0 time.Time) (out []hostCompletion, seqGaps int) {
	c.mu.Lock()
	bs := append([]arrivedBatch(nil), c.batches...)
	c.mu.Unlock()
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].batch.Seq < bs[j].batch.Seq })
	var prev int64 = -1 << 62
	for i, ab := range bs {
		if i > 0 && ab.batch.Seq != bs[i-1].batch.Seq+1 {
			seqGaps++
		}
		at := int64(ab.at.Sub(t0))
		for _, r := range ab.batch.Records {
			t := at - (ab.batch.FlushNS - r.EndNS)
			if t > at {
				t = at
			}
			if t < prev {
				t = prev
			}
			prev = t
			out = append(out, hostCompletion{T: t, Lat: r.LatNS, Bytes: int64(r.Bytes), Dir: r.Dir, Err: r.Err})
		}
	}
	return out, seqGaps
}

// windows cuts the timeline into fixed windows from 0 to end.
func windows(cs []hostCompletion, width, end int64) []results.MigrationWindow {
	if width <= 0 || end <= 0 {
		return nil
	}
	n := int((end + width - 1) / width)
	out := make([]results.MigrationWindow, n)
	lats := make([][]int64, n)
	for i := range out {
		out[i].TNS = int64(i+1) * width
	}
	for _, c := range cs {
		if c.T < 0 || c.T >= end {
			continue
		}
		i := int(c.T / width)
		w := &out[i]
		w.IOs++
		w.Bytes += c.Bytes
		if c.Err {
			w.Errors++
		}
		lats[i] = append(lats[i], c.Lat)
	}
	secs := float64(width) / 1e9
	for i := range out {
		w := &out[i]
		w.IOPS = float64(w.IOs) / secs
		w.BWBps = float64(w.Bytes) / secs
		w.LatMeanNS, w.LatP50NS, w.LatP99NS, w.LatMaxNS = latStats(lats[i])
	}
	return out
}

// latStats returns mean, p50, p99 and max of ls (sorted in place).
func latStats(ls []int64) (mean float64, p50, p99, max int64) {
	if len(ls) == 0 {
		return 0, 0, 0, 0
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	var sum float64
	for _, l := range ls {
		sum += float64(l)
	}
	pct := func(p float64) int64 {
		i := int(p/100*float64(len(ls))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(ls) {
			i = len(ls) - 1
		}
		return ls[i]
	}
	return sum / float64(len(ls)), pct(50), pct(99), ls[len(ls)-1]
}

// phaseStats summarises the completions in [start, end).
func phaseStats(cs []hostCompletion, start, end int64) *results.MigrationPhase {
	if end <= start {
		return nil
	}
	p := &results.MigrationPhase{StartNS: start, EndNS: end}
	var lats []int64
	last := start
	for _, c := range cs {
		if c.T < start || c.T >= end {
			continue
		}
		p.IOs++
		p.Bytes += c.Bytes
		if c.Err {
			p.Errors++
		}
		lats = append(lats, c.Lat)
		if g := c.T - last; g > p.LongestStallNS {
			p.LongestStallNS = g
		}
		last = c.T
	}
	if g := end - last; g > p.LongestStallNS {
		p.LongestStallNS = g
	}
	secs := float64(end-start) / 1e9
	p.IOPS = float64(p.IOs) / secs
	p.BWBps = float64(p.Bytes) / secs
	p.LatMeanNS, _, p.LatP99NS, p.LatMaxNS = latStats(lats)
	return p
}

// span is an interval in ns since the scenario's time zero.
type span struct{ from, to int64 }

// longestStall is the longest gap between consecutive completions that overlaps
// [from, to]: a stall that began before the migration ended counts whole. A gap's length
// leaves out its overlap with deliberate pauses (vmstorbench's checks, not the migration's
// doing); the gap returned is whole, with that length.
func longestStall(cs []hostCompletion, from, to int64, deliberate []span) (*results.Stall, int64) {
	var best *results.Stall
	bestLen := int64(-1)
	for i := 1; i < len(cs); i++ {
		a, b := cs[i-1].T, cs[i].T
		if b < from || a > to {
			continue
		}
		n := b - a
		for _, p := range deliberate {
			if o := min(b, p.to) - max(a, p.from); o > 0 {
				n -= o
			}
		}
		if n > bestLen {
			best, bestLen = &results.Stall{StartNS: a, EndNS: b}, n
		}
	}
	return best, bestLen
}

// arrivals describes what arrived from each connection, relative to t0.
func (c *collector) arrivals(t0 time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for from, n := range c.byFrom {
		parts = append(parts, fmt.Sprintf("%d completions from %s, the last at %s", n, from, c.lastAt[from].Sub(t0).Round(time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
