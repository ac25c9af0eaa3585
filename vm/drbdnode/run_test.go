package drbdnode

import (
	"context"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/all"
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
// with its protocol, the replication traffic, and C's writes wait for the peer.
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
	if lat["c"] <= lat["a"] {
		t.Errorf("protocol C (%.2f ms) not slower than A (%.2f ms)", lat["c"]/1e6, lat["a"]/1e6)
	}
}

// TestZNodesDie runs last (it breaks the shared pair): the peer's QEMU is killed during a
// run, which goes on on the primary and records the disconnect; then the primary's, which
// ends the next run with an error within seconds and a partial result.
func TestZNodesDie(t *testing.T) {
	needNBD(t)
	p := sharedPair(t)
	ctx := context.Background()
	go func() {
		time.Sleep(1500 * time.Millisecond)
		syscall.Kill(p.Nodes[1].VM.PID(), syscall.SIGKILL)
	}()
	res, err := runOn(ctx, endpoint(t, p, "drbd-c"), randWrite(12*time.Second))
	if err != nil {
		t.Fatalf("run with the peer killed: %v", err)
	}
	rep := res.Replication
	at := rep.Disconnected()
	if at < time.Second.Nanoseconds() || rep.End.Connection == "Connected" || rep.End.Role != "Primary" {
		t.Fatalf("peer killed at 1.5 s: disconnect at %v, end state %+v, events %+v", time.Duration(at), rep.End, rep.Events)
	}
	var after int64
	for _, pt := range res.Series.Points {
		if pt.TNS > at && pt.Write != nil {
			after += pt.Write.IOs
		}
	}
	if after == 0 {
		t.Errorf("no writes after the disconnect at %v: the primary should stay writable", time.Duration(at))
	}
	t.Logf("disconnect seen at %v, %d writes after it, events %+v", time.Duration(at), after, rep.Events)

	// The primary dies: the run ends with an error in seconds and a partial result.
	go func() {
		time.Sleep(time.Second)
		syscall.Kill(p.Nodes[0].VM.PID(), syscall.SIGKILL)
	}()
	start := time.Now()
	res, err = runOn(ctx, endpoint(t, p, "drbd-c")+"&allow_degraded=1", randWrite(30*time.Second))
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
	t.Logf("primary killed: run ended after %v: %v", took.Round(time.Millisecond), err)
}
