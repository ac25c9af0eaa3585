package drbdnode

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/all"
	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// needNBD skips until the nbd:// client backend is linked in (the testbed's DRBD endpoints
// reach node A's device through its NBD export).
func needNBD(t *testing.T) {
	t.Helper()
	if _, err := backends.Default.Lookup(&url.URL{Scheme: "nbd"}); err != nil {
		t.Skipf("no nbd backend: %v", err)
	}
}

func endpoint(t *testing.T, p *Pair, name string) string {
	t.Helper()
	for _, e := range Endpoints(p) {
		if e.Name == name {
			return e.URL
		}
	}
	t.Fatalf("no endpoint %s", name)
	return ""
}

func randWrite(runtime time.Duration) workloads.Workload {
	return workloads.Workload{RW: "randwrite", Size: 16 << 20, Direct: true, IODepth: 1, TimeBased: true, Runtime: runtime,
		BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)}}
}

func runOn(ctx context.Context, target string, w workloads.Workload) (*results.Run, error) {
	return bench.Run(ctx, bench.Config{Target: target, Workload: w, Interval: 250 * time.Millisecond})
}

// TestRunProtocolSwitch measures the pair from the host (through node A's NBD export, as a
// VM's disk would reach it) with protocol A, then C: each result carries node A's DRBD state
// with its protocol and the replication traffic.
func TestRunProtocolSwitch(t *testing.T) {
	needNBD(t)
	p := sharedPair(t)
	ctx := context.Background()
	lat := map[string]float64{}
	for _, proto := range []string{"a", "c"} {
		res, err := runOn(ctx, endpoint(t, p, "drbd-"+proto), randWrite(2*time.Second))
		if err != nil {
			t.Fatalf("drbd-%s: %v", proto, err)
		}
		rep := res.Replication
		want := map[string]string{"a": "A", "c": "C"}[proto]
		if rep == nil || rep.Protocol != want || rep.Start == nil || rep.Start.Connection != "Connected" || rep.End.Protocol != want {
			t.Fatalf("drbd-%s: replication %+v", proto, rep)
		}
		if res.Target.Info["security"] != "protocol "+want || res.Target.Info["drbd_role"] != "Primary/Secondary" {
			t.Errorf("drbd-%s: info %v", proto, res.Target.Info)
		}
		if rep.SentBytes < res.Write.Bytes || rep.SentPerGiBWritten < 1<<30 {
			t.Errorf("drbd-%s: %d bytes sent to the peer for %d written", proto, rep.SentBytes, res.Write.Bytes)
		}
		if rep.Degraded != "" || len(rep.Events) != 0 {
			t.Errorf("drbd-%s: degraded %q, events %+v", proto, rep.Degraded, rep.Events)
		}
		lat[proto] = res.Write.Lat.Mean
		t.Logf("drbd-%s: %.0f IOPS, mean %.2f ms, %d samples", proto, res.Write.IOPS, res.Write.Lat.Mean/1e6, len(rep.Samples))
	}
	// No timing assertion (the latency figures live in TestLatencyFigures): with direct=1
	// every write carries FUA, a DRBD flush that waits for the peer whatever the protocol.
	t.Logf("mean write latency: protocol A %.2f ms, C %.2f ms", lat["a"]/1e6, lat["c"]/1e6)
}

// TestZPeerDies breaks the shared pair, so it runs after the others: the peer's QEMU is
// killed during a run in node A (the drbd backend reading the node's own DRBD), which goes
// on on the primary once DRBD gives up on the peer, and records the disconnect and its time.
func TestZPeerDies(t *testing.T) {
	p := sharedPair(t)
	// The run opens the device (a drbdsetup-84 show, slow under TCG) before it measures.
	go func() {
		time.Sleep(3 * time.Second)
		syscall.Kill(p.Nodes[1].VM.PID(), syscall.SIGKILL)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	r, err := drbdstate.Call(ctx, p.Nodes[0].Control, drbdstate.Request{Op: "run", URL: "drbd:///dev/drbd0?resource=r0", RuntimeMS: 16000})
	if err != nil {
		t.Fatalf("run with the peer killed: %v", err)
	}
	var res results.Run
	if err := json.Unmarshal(r.Result, &res); err != nil {
		t.Fatal(err)
	}
	rep := res.Replication
	at := rep.Disconnected()
	if !res.Complete || at < 0 || rep.End.Connection == "Connected" || rep.End.Role != "Primary" {
		t.Fatalf("peer killed: complete %v, disconnect at %v, end %+v, events %+v", res.Complete, time.Duration(at), rep.End, rep.Events)
	}
	var after int64
	for _, pt := range res.Series.Points {
		if pt.TNS > at && pt.Write != nil {
			after += pt.Write.IOs
		}
	}
	if os.Getenv("VMSTORBENCH_DRBD_DEBUG") != "" {
		for _, pt := range res.Series.Points {
			if pt.Write != nil {
				t.Logf("t=%v writes %d max %.1f ms", time.Duration(pt.TNS), pt.Write.IOs, float64(pt.Write.LatMax)/1e6)
			}
		}
		for _, s := range rep.Samples {
			t.Logf("sample t=%v %s %s/%s %s", time.Duration(s.TNS), s.Connection, s.Role, s.PeerRole, s.Error)
		}
	}
	if after == 0 {
		t.Errorf("no writes after the disconnect at %v: the primary should stay writable", time.Duration(at))
	}
	t.Logf("peer killed: disconnect seen at %v, %d writes after it, longest write %.1f s, events %+v",
		time.Duration(at).Round(time.Millisecond), after, float64(res.Write.Lat.Max)/1e9, rep.Events)
}

// TestZZPrimaryDies kills node A's QEMU during a run from the host: the run ends with an
// error within seconds and a partial result with the I/O done and the state read.
func TestZZPrimaryDies(t *testing.T) {
	needNBD(t)
	p := sharedPair(t)
	if p.Nodes[0].VM.Exited() {
		t.Fatal("node a is gone already")
	}
	go func() {
		time.Sleep(time.Second)
		syscall.Kill(p.Nodes[0].VM.PID(), syscall.SIGKILL)
	}()
	start := time.Now()
	// The peer is gone (TestZPeerDies): the pair is degraded, measured anyway.
	res, err := runOn(context.Background(), endpoint(t, p, "drbd-c")+"&allow_degraded=1", randWrite(30*time.Second))
	took := time.Since(start)
	if err == nil || res == nil || res.Complete {
		t.Fatalf("primary killed: err %v, result %v", err, res != nil)
	}
	if took > 15*time.Second {
		t.Errorf("primary killed at 1 s: the run took %v to end", took)
	}
	if res.Write == nil || res.Write.IOs == 0 || res.Replication == nil {
		t.Errorf("partial result without its I/O or state: %+v", res.Replication)
	}
	if p.Nodes[1].VM.Exited() && res.Labels["degraded"] == "" {
		t.Errorf("the peer is gone but the result is not labelled degraded: %v", res.Labels)
	}
	t.Logf("primary killed: run ended after %v: %v", took.Round(time.Millisecond), err)
}
