package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/migrate"
)

// BenchmarkAgentOverhead measures what running the workload in the guest costs: the same
// job (4 KiB random writes and reads, O_DIRECT, on a file-backed disk) run by the agent in
// the guest with streaming, without streaming, and by the engine on the host against an
// image of the same size. It only reports (figures on a shared machine are not pass/fail
// material), and takes about a minute:
//
//	go test ./vm/migrate -run XXX -bench AgentOverhead -benchtime 1x
//
// scripts/compare-agent.sh measures the guest against the host with the command itself.
func BenchmarkAgentOverhead(b *testing.B) {
	for range b.N {
		agentOverhead(b)
	}
}

func agentOverhead(b *testing.B) {
	const runFor = 6 * time.Second
	w := testWorkload()
	// steady is the median per-second IOPS after the first two seconds (TCG translates the
	// engine's code on its first I/Os, which makes the first second slow).
	steady := func(r *results.Run) float64 {
		var v []float64
		for i, p := range r.Series.Points {
			if i < 2 || i == len(r.Series.Points)-1 {
				continue
			}
			x := 0.0
			for _, d := range []*results.PointStats{p.Read, p.Write} {
				if d != nil {
					x += d.IOPS
				}
			}
			v = append(v, x)
		}
		sort.Float64s(v)
		if len(v) == 0 {
			return 0
		}
		return v[len(v)/2]
	}
	guest := func(noStream bool, flush time.Duration) float64 {
		res := runScenario(b, func(c *migrate.Config) {
			c.Mode, c.At, c.After, c.NoStream, c.Workload, c.NoVerify = migrate.ModeNone, runFor, time.Millisecond, noStream, w, true
			c.FlushEvery = flush
		})
		return steady(res.Run)
	}
	var streamed, quiet, slow []float64
	for i := 0; i < 2; i++ { // alternate, so that a change in the machine's load hits all
		quiet = append(quiet, guest(true, 0))
		streamed = append(streamed, guest(false, 0))
		slow = append(slow, guest(false, 100*time.Millisecond))
	}

	img := filepath.Join(b.TempDir(), "host.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 8<<20); err != nil { // the size of runScenario's disk
		b.Fatal(err)
	}
	hw := w
	hw.Direct, hw.TimeBased, hw.Runtime = true, true, runFor
	r, err := bench.Run(context.Background(), bench.Config{Target: "file://" + img, Workload: hw, Open: backends.OpenParams{AllowDestructive: true}})
	if err != nil {
		b.Fatal(err)
	}
	host := steady(r)
	q, s := (quiet[0]+quiet[1])/2, (streamed[0]+streamed[1])/2
	sl := (slow[0] + slow[1]) / 2
	b.Logf("steady IOPS: host %.0f; guest without streaming %v (mean %.0f, %.1f%% of host); guest streaming every completion every 10 ms %v (mean %.0f: streaming costs %.1f%%), every 100 ms %v (mean %.0f: %.1f%%)",
		host, quiet, q, 100*q/host, streamed, s, 100*(1-s/q), slow, sl, 100*(1-sl/q))
	b.ReportMetric(host, "host-IOPS")
	b.ReportMetric(q, "guest-IOPS")
	b.ReportMetric(s, "guest-streaming-IOPS")
}
