// Command agentcompare prints what running a job inside the guest costs against running it
// on the host: for vmstorbench result documents of the same job run by the in-guest agent
// (vmstorbench migrate --mode none --json) and by vmstorbench on the host (vmstorbench run
// --json), their steady IOPS, median latency and the ratio guest / host. Each side may list
// several documents (rounds, comma-separated): the best round of each is compared, since
// interference only ever makes a run slower.
//
// Steady IOPS is the median of the per-interval IOPS without the first two intervals (under
// TCG the guest translates the engine's code on its first I/Os) and the last (partial).
//
//	agentcompare GUEST.json[,GUEST2.json...] HOST.json[,HOST2.json...]
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/vmstorbench/vmstorbench/results"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: agentcompare GUEST.json[,...] HOST.json[,...]")
		os.Exit(2)
	}
	guest, err := best(os.Args[1])
	if err != nil {
		fail(err)
	}
	host, err := best(os.Args[2])
	if err != nil {
		fail(err)
	}
	w := host.run.Workload
	fmt.Printf("job %s: rw=%s rwmixread=%d bs=%s iodepth=%d direct=%v, best of %d rounds\n",
		w.Name, w.RW, w.RWMixRead, w.BS[0], w.IODepth, w.Direct, host.rounds)
	accel := "?"
	if m := guest.run.Migration; m != nil {
		accel = m.Accel
	}
	fmt.Printf("%-22s %12s %12s\n", "", "steady IOPS", "p50 latency")
	fmt.Printf("%-22s %12.0f %12s\n", "host", host.iops, host.p50)
	fmt.Printf("%-22s %12.0f %12s\n", "guest agent ("+accel+")", guest.iops, guest.p50)
	fmt.Printf("ratio guest / host: %.3f (the guest reaches %.1f%% of the host's IOPS)\n", guest.iops/host.iops, 100*guest.iops/host.iops)
}

type side struct {
	run    *results.Run
	iops   float64
	p50    string
	rounds int
}

// best returns the round with the highest steady IOPS among the comma-separated documents.
func best(list string) (side, error) {
	var b side
	files := strings.Split(list, ",")
	for _, f := range files {
		r, err := load(f)
		if err != nil {
			return b, err
		}
		if iops := steady(r); iops > b.iops || b.run == nil {
			b = side{run: r, iops: iops, p50: p50(r)}
		}
	}
	b.rounds = len(files)
	if b.iops == 0 {
		return b, fmt.Errorf("%s: no steady I/O (run too short? it needs more than 3 intervals)", list)
	}
	return b, nil
}

// load reads a result document: one object, or the first of an array.
func load(path string) (*results.Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r results.Run
	if err := json.Unmarshal(b, &r); err == nil {
		return &r, nil
	}
	var rs []*results.Run
	if err := json.Unmarshal(b, &rs); err != nil || len(rs) == 0 {
		return nil, errors.Join(fmt.Errorf("%s: not a vmstorbench result document", path), err)
	}
	return rs[0], nil
}

func steady(r *results.Run) float64 {
	pts := r.Series.Points
	var v []float64
	for i := 2; i < len(pts)-1; i++ {
		x := 0.0
		for _, d := range []*results.PointStats{pts[i].Read, pts[i].Write} {
			if d != nil {
				x += d.IOPS
			}
		}
		v = append(v, x)
	}
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

// p50 is the median latency of the run's reads (or writes, for a write-only job).
func p50(r *results.Run) string {
	for _, d := range []*results.DirStats{r.Read, r.Write} {
		if d != nil && d.Lat.N > 0 {
			if ns, ok := d.Lat.Percentiles["50.000000"]; ok {
				return fmt.Sprintf("%.1f µs", float64(ns)/1e3)
			}
		}
	}
	return "-"
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "agentcompare:", err)
	os.Exit(1)
}
