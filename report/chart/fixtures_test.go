package chart

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/mem"
	_ "github.com/vmstorbench/vmstorbench/backends/null"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// The documents in testdata are real runs of the engine (mem:// and null://), so that the
// charts are tested on what the engine really writes: histograms, percentiles, series.
// Regenerate them with: go test ./report/chart -run TestTestdata -update
var update = flag.Bool("update", false, "regenerate testdata/*.json with real engine runs")

// fixtureRuns are the saved documents: file name, target and workload.
var fixtureRuns = []struct {
	file, target, name, fio string
}{
	{"mem-randrw.json", "mem://", "oltp-4k-70-30", "rw=randrw rwmixread=70 bs=4k iodepth=4 size=16m runtime=600ms time_based=1"},
	{"null-randread.json", "null://", "rand-read-4k", "rw=randread bs=4k iodepth=1 size=16m runtime=400ms time_based=1"},
	{"mem-randwrite-fsync.json", "mem://", "log-write-fsync", "rw=randwrite bs=4k iodepth=1 size=16m runtime=400ms time_based=1 fsync=8"},
}

func TestTestdata(t *testing.T) {
	for _, f := range fixtureRuns {
		path := filepath.Join("testdata", f.file)
		if *update {
			w, err := workloads.ParseOptions(strings.Fields(f.fio))
			if err != nil {
				t.Fatal(err)
			}
			w.Name = f.name
			r, err := bench.Run(context.Background(), bench.Config{
				Target: f.target, Workload: w, Interval: 100 * time.Millisecond,
				Command: []string{"go", "test", "./report/chart", "-update"},
			})
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := loadFixture(t, f.file)
		if !r.Complete || r.Read == nil && r.Write == nil || len(r.Series.Points) == 0 {
			t.Errorf("%s: not a complete run with a series", f.file)
		}
		for _, d := range []string{"read", "write", "sync"} {
			if s := r.DirStats(d); s != nil && s.Lat.N > 0 && s.Lat.Histogram == "" {
				t.Errorf("%s: %s latency has no histogram", f.file, d)
			}
		}
	}
}

func loadFixture(t testing.TB, name string) *results.Run {
	t.Helper()
	r, err := results.Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// demoTargets are the endpoints the demo compares.
var demoTargets = []string{"nfs-ganesha", "nfs-go", "smb-plain", "smb-signed", "smb-encrypted", "iscsi-tgt", "iscsi-tgt-chap", "iscsi-gotgt"}

// clone deep-copies a run through JSON.
func clone(t testing.TB, r *results.Run) *results.Run {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out results.Run
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// asTarget makes a copy of a real run look like a run against another target: relabelled,
// throughput scaled by speed and latencies by 1/speed (histograms re-recorded), so that
// targets differ visibly.
func asTarget(t testing.TB, base *results.Run, name string, speed float64, repeat, repeats int) *results.Run {
	t.Helper()
	r := clone(t, base)
	r.ID = fmt.Sprintf("%s-%s-%d", name, base.ID, repeat)
	r.Labels = map[string]string{results.TargetLabel: name}
	r.Repeat, r.Repeats = repeat, repeats
	for _, s := range []*results.DirStats{r.Read, r.Write, r.Sync} {
		if s == nil {
			continue
		}
		s.IOPS *= speed
		s.BWBps *= speed
		s.Lat = scaleLatency(t, s.Lat, 1/speed)
	}
	for i := range r.Series.Points {
		for _, ps := range []*results.PointStats{r.Series.Points[i].Read, r.Series.Points[i].Write} {
			if ps != nil {
				ps.IOPS *= speed
				ps.BWBps *= speed
				ps.LatP50 = int64(float64(ps.LatP50) / speed)
				ps.LatP99 = int64(float64(ps.LatP99) / speed)
			}
		}
	}
	return r
}

func scaleLatency(t testing.TB, l results.Latency, f float64) results.Latency {
	t.Helper()
	if l.N == 0 {
		return l
	}
	h, err := results.DecodeHistogram(l.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	out := results.NewHistogram()
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			if err := out.RecordValues(max(1, int64(float64(b.To)*f)), b.Count); err != nil {
				t.Fatal(err)
			}
		}
	}
	return results.LatencyFrom(out, max(1, int64(float64(l.Min)*f)), max(1, int64(float64(l.Max)*f)))
}

// demoRuns is the demo's comparison: every demo target × the given real runs (as
// workloads), repeats each; targets get speeds from 0.3 to 1.7, and repeats vary their
// throughput by a few percent (latencies are scaled once per target: re-recording
// histograms is the slow part).
func demoRuns(t testing.TB, bases []*results.Run, repeats int) []*results.Run {
	var out []*results.Run
	for _, b := range bases {
		for i, name := range demoTargets {
			first := asTarget(t, b, name, 0.3+0.2*float64(i), 0, repeats)
			for rep := range repeats {
				r := first
				if rep > 0 {
					r = clone(t, first)
					r.ID, r.Repeat = fmt.Sprintf("%s-%d", first.ID, rep), rep
					for _, s := range []*results.DirStats{r.Read, r.Write, r.Sync} {
						if s != nil {
							s.IOPS *= 1 + 0.05*float64(rep)
							s.BWBps *= 1 + 0.05*float64(rep)
						}
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// migrationRun is a synthetic run inside a migrating VM with realistic figures: 100 ms
// windows over 12 s, a pre-copy migration from 3 s to 5 s, 40 ms QEMU downtime, a 52 ms
// pause between the source's STOP and the destination's RESUME, a 120 ms stall of the
// workload, and the same workload run outside the VM by the host.
func migrationRun(t testing.TB, mode string) *results.Run {
	t.Helper()
	base := loadFixture(t, "mem-randrw.json")
	r := clone(t, base)
	r.ID = "migration-" + mode
	r.Labels = map[string]string{results.TargetLabel: "nfs-ganesha", "scenario": "migrate-" + mode}
	ms := func(v float64) int64 { return int64(v * 1e6) }
	m := &results.Migration{
		Mode: mode, Outcome: "completed", Accel: "tcg", QEMU: "7.2.0", GuestMemoryB: 256 << 20, GuestCPUs: 1,
		Access: "nfs (QEMU libnfs)", DiskURL: "nfs://127.0.0.1:2049/export/vm.img", Security: "tls",
		Link:    &results.MigrationLink{Preset: "lan", LatencyNS: 200_000, BandwidthBps: 125_000_000},
		StartNS: ms(3000), EndNS: ms(4990), SetupTimeMS: 12,
		QEMUDowntimeMS: 40, PauseMS: 52, LongestStallMS: 120,
		LongestStall: &results.Stall{StartNS: ms(4930), EndNS: ms(5050)},
		TotalTimeMS:  1990, WindowNS: ms(100),
	}
	stop, resume := ms(4950), ms(5002)
	if mode == "postcopy" {
		// Post-copy: switched over at 4 s with a 1 ms pause, and one window with no
		// completion at all while the first pages were fetched.
		m.SwitchoverNS = ms(4000)
		stop, resume = ms(4000), ms(4001)
		m.QEMUDowntimeMS, m.PauseMS, m.LongestStallMS = 1, 1, 160
		m.LongestStall = &results.Stall{StartNS: ms(4020), EndNS: ms(4180)}
	}
	m.Events = []results.MigrationEvent{
		{TNS: ms(3000), Side: "source", Name: "MIGRATION", Detail: "setup"},
		{TNS: ms(3012), Side: "source", Name: "MIGRATION", Detail: "active"},
		{TNS: stop, Side: "source", Name: "STOP"},
		{TNS: ms(4990), Side: "source", Name: "MIGRATION", Detail: "completed"},
		{TNS: resume, Side: "destination", Name: "RESUME"},
	}
	syncs := 0
	for tt := 3000; tt < 4990; tt += 50 {
		switch tt {
		case 3000, 3900, 4500, 4850:
			syncs++
		}
		m.Samples = append(m.Samples, results.MigrationSample{TNS: ms(float64(tt)), Status: "active", DirtySyncCount: int64(syncs)})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	during := func(tns int64) bool { return tns > m.StartNS && tns <= m.EndNS+ms(100) }
	for i := range 120 {
		tns := ms(float64(100 * (i + 1)))
		iops := 2000 + 150*rng.NormFloat64()
		p50, p99 := 210e3+20e3*rng.NormFloat64(), 900e3+100e3*rng.NormFloat64()
		if during(tns) {
			iops *= 0.7
			p99 *= 3
		}
		if m.LongestStall.StartNS < tns && m.LongestStall.EndNS > tns-ms(100) {
			iops *= 0.4
			p99 = float64(ms(m.LongestStallMS))
		}
		if mode == "postcopy" && tns == ms(4100) {
			iops, p50, p99 = 0, 0, 0
		}
		ios := int64(iops / 10)
		m.Windows = append(m.Windows, results.MigrationWindow{
			TNS: tns, IOs: ios, Bytes: ios * 4096, IOPS: float64(ios) * 10, BWBps: float64(ios) * 40960,
			LatMeanNS: p50 * 1.2, LatP50NS: int64(p50), LatP99NS: int64(p99), LatMaxNS: int64(p99 * 1.5),
		})
	}
	// The host's own workload, started 0.2 s after the guest's, 100 ms intervals.
	out := clone(t, base)
	out.Labels = map[string]string{"scenario": "migrate-outside"}
	out.Workload.RampTime = 0
	out.Series = results.Series{IntervalNS: ms(100)}
	for i := range 115 {
		tns := ms(float64(100 * (i + 1)))
		iops := 3000 + 200*rng.NormFloat64()
		if during(tns + ms(200)) {
			iops *= 0.85
		}
		p50, p99 := int64(150e3+10e3*rng.NormFloat64()), int64(600e3+50e3*rng.NormFloat64())
		out.Series.Points = append(out.Series.Points, results.Point{TNS: tns,
			Read:  &results.PointStats{IOs: int64(iops * 0.07), IOPS: iops * 0.7, LatP50: p50, LatP99: p99},
			Write: &results.PointStats{IOs: int64(iops * 0.03), IOPS: iops * 0.3, LatP50: p50 * 2, LatP99: p99 * 2},
		})
	}
	m.Outside, m.OutsideStartNS = out, ms(200)
	r.Migration = m
	r.Complete = true
	return r
}

// incomplete returns a copy of r that ended early.
func incomplete(t testing.TB, r *results.Run, target string) *results.Run {
	c := asTarget(t, r, target, 1, 0, 1)
	c.Complete, c.Error = false, "read: connection reset by peer"
	return c
}

// realisticDemo is the demo's comparison with figures of the order real endpoints give:
// the 8 demo targets × a 4k random read at QD1 (~20k IOPS, ~50 µs), a 1 MiB sequential
// read (~300 IOPS, ~3 ms) and a 1 MiB sequential write (~200 IOPS, ~5 ms).
func realisticDemo(t testing.TB, repeats int) []*results.Run {
	null := loadFixture(t, "null-randread.json")
	fsync := loadFixture(t, "mem-randwrite-fsync.json")
	seqRead := clone(t, null)
	seqRead.Workload.Name, seqRead.Workload.RW = "seq-read", "read"
	seqWrite := clone(t, fsync)
	seqWrite.Workload.Name, seqWrite.Workload.RW, seqWrite.Workload.Fsync = "seq-write", "write", 0
	seqWrite.Sync = nil
	for _, r := range []*results.Run{seqRead, seqWrite} {
		r.Workload.BS[0].Min, r.Workload.BS[0].Max = 1<<20, 1<<20
		r.Workload.BS[1] = r.Workload.BS[0]
	}
	bases := []struct {
		r             *results.Run
		iops, bw, lat float64 // factors from the fixture's figures
	}{
		{null, 20e3 / 7.3e6, 20e3 / 7.3e6, 50e3 / 34},
		{seqRead, 300 / 7.3e6, 300 << 20 / 30e9, 3e6 / 34},
		{seqWrite, 200 / 1.97e6, 200 << 20 / 8e9, 5e6 / 356},
	}
	var out []*results.Run
	for _, b := range bases {
		base := clone(t, b.r)
		rescale(t, base, b.iops, b.bw, b.lat)
		for i, name := range demoTargets {
			// Targets differ by up to 6×, and the encrypting ones are slowest.
			speed := []float64{1, 0.8, 0.7, 0.5, 0.3, 1.2, 1.1, 0.9}[i]
			first := asTarget(t, base, name, speed, 0, repeats)
			for rep := range repeats {
				r := first
				if rep > 0 {
					r = clone(t, first)
					r.ID, r.Repeat = fmt.Sprintf("%s-%d", first.ID, rep), rep
					for _, s := range []*results.DirStats{r.Read, r.Write} {
						if s != nil {
							s.IOPS *= 1 + 0.06*float64(rep)
							s.BWBps *= 1 + 0.06*float64(rep)
						}
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// rescale multiplies a run's rates and latencies (histograms re-recorded).
func rescale(t testing.TB, r *results.Run, iops, bw, lat float64) {
	for _, s := range []*results.DirStats{r.Read, r.Write, r.Sync} {
		if s != nil {
			s.IOPS *= iops
			s.IOs = int64(float64(s.IOs) * iops)
			s.BWBps *= bw
			s.Lat = squashLatency(t, s.Lat, lat)
		}
	}
	for i := range r.Series.Points {
		for _, ps := range []*results.PointStats{r.Series.Points[i].Read, r.Series.Points[i].Write} {
			if ps != nil {
				ps.IOPS *= iops
				ps.IOs = max(1, int64(float64(ps.IOs)*iops))
				ps.BWBps *= bw
				ps.LatP50 = squash(ps.LatP50, lat, r.DirStats(dirName(ps == r.Series.Points[i].Read)).Lat.Percentiles["50.000000"])
				ps.LatP99 = squash(ps.LatP99, lat, r.DirStats(dirName(ps == r.Series.Points[i].Read)).Lat.Percentiles["50.000000"])
			}
		}
	}
}

// singlePoint is a 1 s run with a 1 s interval: one point in its series.
func singlePoint(t testing.TB) *results.Run {
	r := clone(t, loadFixture(t, "null-randread.json"))
	r.Series.IntervalNS = 1e9
	p := r.Series.Points[0]
	p.TNS = 1e9
	r.Series.Points = []results.Point{p}
	return r
}

func dirName(read bool) string {
	if read {
		return "read"
	}
	return "write"
}

// squash scales a latency by f around the median med, shrinking its distance to the median
// (in log terms) to the power 0.6: the in-memory fixtures have tails 10000× their median,
// real endpoints nearer 10–100×.
func squash(v int64, f float64, med int64) int64 {
	if v <= 0 || med <= 0 {
		return v
	}
	r := float64(v) / float64(med)
	return max(1, int64(f*float64(med)*math.Pow(r, 0.6)))
}

func squashLatency(t testing.TB, l results.Latency, f float64) results.Latency {
	t.Helper()
	if l.N == 0 {
		return l
	}
	med := l.Percentiles["50.000000"]
	h, err := results.DecodeHistogram(l.Histogram)
	if err != nil {
		t.Fatal(err)
	}
	out := results.NewHistogram()
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			if err := out.RecordValues(squash(b.To, f, med), b.Count); err != nil {
				t.Fatal(err)
			}
		}
	}
	return results.LatencyFrom(out, squash(l.Min, f, med), squash(l.Max, f, med))
}
