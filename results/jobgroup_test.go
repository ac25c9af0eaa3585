package results

import (
	"math"
	"testing"
	"time"
)

func TestMergeGroupSumsConcurrentJobs(t *testing.T) {
	runs := jobFileRuns()
	c, d := runs[2], runs[3]
	d.RuntimeNS = int64(3 * time.Second) // the longer job sets the group's time
	d.Start, d.End = c.Start.Add(time.Second), c.End.Add(time.Second)
	m, err := MergeGroup([]*Run{c, d})
	if err != nil {
		t.Fatal(err)
	}
	if m.Read.IOs != 1200 || m.Read.Lat.N != 1200 || m.Read.Bytes != 1200*4096 || math.Abs(m.Read.IOPS-400) > 1e-9 {
		t.Errorf("read %+v", m.Read)
	}
	if m.Read.Lat.Min != 20_000 || m.Read.Lat.Max != 900_000 || m.RuntimeNS != d.RuntimeNS {
		t.Errorf("lat %d..%d runtime %d", m.Read.Lat.Min, m.Read.Lat.Max, m.RuntimeNS)
	}
	if !m.Start.Equal(c.Start) || !m.End.Equal(d.End) || m.Job.Name != "c" || len(m.Jobs) != 2 || m.Jobs[1].Index != 1 || m.Jobs[1].Read.IOs != 700 {
		t.Errorf("merged run: start %s end %s job %+v jobs %+v", m.Start, m.End, m.Job, m.Jobs)
	}
	if p := m.Series.Points[0].Read; p.IOs != 2*c.Series.Points[0].Read.IOs {
		t.Errorf("series point %+v", p)
	}
	if c.Read.IOs != 500 || len(c.Jobs) != 0 {
		t.Error("MergeGroup changed its input")
	}
}

func TestReportUnits(t *testing.T) {
	runs := jobFileRuns()
	other := *runs[3]
	other.Job = &JobInfo{Name: "d", Set: "s2", Group: 1, Index: 3, GroupReporting: true}
	units := ReportUnits(append(runs, &other))
	var sizes []int
	for _, u := range units {
		sizes = append(sizes, len(u))
	}
	// a, b, c+d, and d of another execution of the file.
	if len(sizes) != 4 || sizes[2] != 2 || sizes[3] != 1 {
		t.Errorf("unit sizes %v", sizes)
	}
	got, err := GroupReported(runs)
	if err != nil || len(got) != 3 || got[0] != runs[0] || got[2].Read.IOs != 1200 {
		t.Errorf("GroupReported: %v, %d runs", err, len(got))
	}
}
