package migrate

import (
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/agent"
	"github.com/vmstorbench/vmstorbench/workloads"
)

func TestTimelineAnchorsToArrival(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := newCollector(1)
	// Batch 0 sent at guest 100 ms, arrived 1 s after t0: its records are placed relative to
	// the arrival. Batch 1 was sent after a 500 ms pause the guest clock did not see.
	c.add(&agent.Batch{Task: 1, Seq: 0, FlushNS: 100e6, Records: []agent.Record{{EndNS: 90e6}, {EndNS: 95e6}}}, t0.Add(time.Second), "source")
	c.add(&agent.Batch{Task: 1, Seq: 1, FlushNS: 110e6, Records: []agent.Record{{EndNS: 96e6}, {EndNS: 105e6}}}, t0.Add(1510*time.Millisecond), "destination")
	c.add(&agent.Batch{Task: 2, Seq: 0, FlushNS: 1, Records: []agent.Record{{EndNS: 1}}}, t0, "source") // another task: ignored
	cs, gaps := c.timeline(t0)
	if gaps != 0 {
		t.Fatalf("%d gaps", gaps)
	}
	want := []int64{990e6, 995e6, 1496e6, 1505e6}
	if len(cs) != len(want) {
		t.Fatalf("%d completions", len(cs))
	}
	for i, w := range want {
		if cs[i].T != w {
			t.Errorf("completion %d at %d, want %d", i, cs[i].T, w)
		}
	}
	if got := c.arrivals(t0); got != "2 completions from destination, the last at 1.51s; 2 completions from source, the last at 1s" {
		t.Errorf("arrivals %q", got)
	}
	st, _ := longestStall(cs, 0, 2e9, nil)
	if st == nil || st.StartNS != 995e6 || st.EndNS != 1496e6 {
		t.Fatalf("stall %+v", st)
	}
}

func TestTimelineOrderAndGaps(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newCollector(1)
	// Out of order arrival (two connections) and a missing sequence number; a batch whose
	// anchor would put a record before its predecessor is clamped to keep time monotonic.
	c.add(&agent.Batch{Task: 1, Seq: 2, FlushNS: 50, Records: []agent.Record{{EndNS: 10}}}, t0.Add(100), "source")
	c.add(&agent.Batch{Task: 1, Seq: 0, FlushNS: 10, Records: []agent.Record{{EndNS: 10}}}, t0.Add(200), "source")
	cs, gaps := c.timeline(t0)
	if gaps != 1 {
		t.Errorf("gaps %d, want 1", gaps)
	}
	if len(cs) != 2 || cs[0].T != 200 || cs[1].T != 200 {
		t.Errorf("timeline %+v", cs)
	}
	if n, _ := c.count(); n != 2 {
		t.Errorf("count %d", n)
	}
	select {
	case <-c.first:
	default:
		t.Error("first not signalled")
	}
}

func TestWindowsAndPhases(t *testing.T) {
	ms := int64(time.Millisecond)
	cs := []hostCompletion{
		{T: 10 * ms, Lat: 100, Bytes: 4096},
		{T: 20 * ms, Lat: 300, Bytes: 4096, Dir: workloads.Write},
		{T: 150 * ms, Lat: 200, Bytes: 8192, Err: true},
		{T: 450 * ms, Lat: 400, Bytes: 4096},
	}
	ws := windows(cs, 100*ms, 500*ms)
	if len(ws) != 5 {
		t.Fatalf("%d windows", len(ws))
	}
	if ws[0].IOs != 2 || ws[0].IOPS != 20 || ws[0].Bytes != 8192 || ws[0].LatMeanNS != 200 || ws[0].LatMaxNS != 300 {
		t.Errorf("window 0 %+v", ws[0])
	}
	if ws[1].IOs != 1 || ws[1].Errors != 1 || ws[2].IOs != 0 || ws[4].IOs != 1 || ws[4].TNS != 500*ms {
		t.Errorf("windows %+v", ws)
	}
	p := phaseStats(cs, 0, 200*ms)
	if p.IOs != 3 || p.LongestStallNS != 130*ms || p.IOPS != 15 || p.LatP99NS != 300 {
		t.Errorf("phase %+v", p)
	}
	// The stall to the end of the phase counts.
	if p := phaseStats(cs, 400*ms, time.Second.Nanoseconds()); p.LongestStallNS != 550*ms {
		t.Errorf("trailing stall %d", p.LongestStallNS)
	}
	if phaseStats(cs, 5, 5) != nil {
		t.Error("empty phase not nil")
	}
	// A stall that starts before the migration window and ends inside it counts whole.
	st, n := longestStall(cs, 200*ms, 300*ms, nil)
	if st == nil || st.StartNS != 150*ms || st.EndNS != 450*ms || n != 300*ms {
		t.Errorf("stall %+v, %d ns", st, n)
	}
	// vmstorbench's own check pause (a memory comparison) inside the gap is left out of
	// its length: 300 ms seen, 250 ms of it deliberate, 50 ms the migration's.
	st, n = longestStall(cs, 200*ms, 300*ms, []span{{from: 180 * ms, to: 430 * ms}})
	if st == nil || st.StartNS != 150*ms || n != 50*ms {
		t.Errorf("stall without the check pause %+v, %d ns, want 50 ms", st, n)
	}
}

func TestLatStats(t *testing.T) {
	ls := make([]int64, 0, 100)
	for i := 100; i >= 1; i-- {
		ls = append(ls, int64(i))
	}
	mean, p50, p99, max := latStats(ls)
	if mean != 50.5 || p50 != 50 || p99 != 99 || max != 100 {
		t.Errorf("mean %v p50 %d p99 %d max %d", mean, p50, p99, max)
	}
	if m, _, _, _ := latStats(nil); m != 0 {
		t.Error("empty")
	}
}
