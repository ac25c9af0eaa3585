package drbdnode

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// TestLatencyFigures measures, in node A, 4 KiB QD1 O_DIRECT writes on the raw reference
// disk and on DRBD with protocols C, B and A, and the replication link's own request/reply
// time (the control), for the link joined directly and through the UDP relay at 0 and +10 ms
// one way. It starts three pairs in turn (~2 min): set VMSTORBENCH_DRBD_PERF=1.
func TestLatencyFigures(t *testing.T) {
	if os.Getenv("VMSTORBENCH_DRBD_PERF") == "" {
		t.Skip("set VMSTORBENCH_DRBD_PERF=1 (starts three DRBD pairs, ~2 min)")
	}
	vmtest.RequireQEMU(t)
	if pair != nil {
		t.Skip("the shared pair runs: run this test alone (-run TestLatencyFigures), no more than two node guests at once")
	}
	ctx := context.Background()
	img, err := BuildImage(ctx, ImageOptions{CacheDir: guest.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	runtime := 4000
	if v := os.Getenv("VMSTORBENCH_DRBD_PERF_MS"); v != "" {
		fmt.Sscan(v, &runtime)
	}
	var rows []string
	for _, c := range []struct {
		name string
		link *linkemu.Link
	}{
		{"direct UDP", nil},
		{"relay +0 ms", &linkemu.Link{Name: "relay0"}},
		{"relay +10 ms", &linkemu.Link{Name: "relay10", Latency: 10 * time.Millisecond}},
	} {
		if only := os.Getenv("VMSTORBENCH_DRBD_PERF_ONLY"); only != "" && !strings.Contains(c.name, only) {
			continue
		}
		dir := t.TempDir()
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		p, err := Start(sctx, Config{Dir: dir, Image: img, Link: c.link})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		a := p.Nodes[0].Control
		get := func(req drbdstate.Request) map[string]float64 {
			cctx, cancel := context.WithTimeout(ctx, time.Duration(runtime)*time.Millisecond+30*time.Second)
			defer cancel()
			r, err := drbdstate.Call(cctx, a, req)
			if err != nil {
				p.Stop()
				t.Fatal(err)
			}
			return r.Figures
		}
		ms := func(f map[string]float64) string {
			return fmt.Sprintf("%.2f / %.2f ms (%.0f IOPS)", f["p50_ns"]/1e6, f["mean_ns"]/1e6, f["iops"])
		}
		cells := []string{c.name, fmt.Sprintf("%.1f s", p.Ready.Seconds())}
		cells = append(cells, ms(get(drbdstate.Request{Op: "bench", Device: "raw", RuntimeMS: runtime})))
		for _, proto := range []string{"C", "B", "A"} {
			get(drbdstate.Request{Op: "protocol", Protocol: proto})
			cells = append(cells, ms(get(drbdstate.Request{Op: "bench", Device: "drbd", RuntimeMS: runtime})))
		}
		get(drbdstate.Request{Op: "protocol", Protocol: "C"})
		// From the host through node A's export, as a VM's disk would see the pair: direct=0
		// (plain writes) and direct=1 (FUA on every write: a DRBD flush on both nodes).
		for _, direct := range []bool{false, true} {
			w := randWrite(time.Duration(runtime) * time.Millisecond)
			w.Direct = direct
			res, err := runOn(ctx, endpoint(t, p, "drbd-c"), w)
			if err != nil {
				p.Stop()
				t.Fatal(err)
			}
			cells = append(cells, fmt.Sprintf("%.2f / %.2f ms", float64(res.Write.Lat.Percentiles["50.000000"])/1e6, res.Write.Lat.Mean/1e6))
		}
		for _, n := range []int{1, 4096} {
			f := get(drbdstate.Request{Op: "probe", Count: 200, Length: n})
			cells = append(cells, fmt.Sprintf("%.2f ms", f["p50_ns"]/1e6))
		}
		if p.Relay != nil {
			st := p.Relay.Stats()
			cells = append(cells, fmt.Sprintf("%d/%d fwd, %d dropped, max datagram %d/%d B, max queued %d/%d B", st.Forwarded[0], st.Forwarded[1],
				st.Dropped[0]+st.Dropped[1], st.MaxDatagram[0], st.MaxDatagram[1], st.MaxQueued[0], st.MaxQueued[1]))
		} else {
			cells = append(cells, "-")
		}
		p.Stop()
		rows = append(rows, "| "+strings.Join(cells, " | ")+" |")
		t.Log(rows[len(rows)-1])
	}
	t.Log("\n| link | ready | raw disk p50 / mean | C | B | A | host C direct=0 | host C direct=1 | probe 1 B p50 | probe 4 KiB p50 | relay |\n|---|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(rows, "\n"))
}
