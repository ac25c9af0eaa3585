package bench

import (
	"context"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// replTarget is a mem target whose "peer" disconnects after a few samples and whose
// state reads then fail once (a node that did not answer).
type replTarget struct {
	*testTarget
	n atomic.Int64
}

func (r *replTarget) ReplicationInfo() results.Replication {
	return results.Replication{Kind: "drbd", Resource: "r0", Protocol: "C"}
}

func (r *replTarget) SampleReplication(ctx context.Context) (results.ReplicationState, error) {
	n := r.n.Add(1)
	st := results.ReplicationState{Role: "Primary", PeerRole: "Secondary", Connection: "Connected", Disk: "UpToDate",
		PeerDisk: "UpToDate", Protocol: "C", SyncPercent: -1, SentBytes: n << 20}
	switch {
	case n == 4:
		return results.ReplicationState{}, errors.New("node agent: timeout")
	case n > 4:
		st.Connection, st.PeerRole, st.PeerDisk = "WFConnection", "Unknown", "DUnknown"
	}
	return st, nil
}

func TestReplicationSampled(t *testing.T) {
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		return &replTarget{testTarget: memTarget(p.Size)}, nil
	}})
	w := workloads.Workload{RW: "randwrite", Size: 1 << 20, Runtime: 300 * time.Millisecond, TimeBased: true, RateIOPS: [2]int64{0, 2000}}
	res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w, Interval: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Replication
	if rep == nil || rep.Kind != "drbd" || rep.Protocol != "C" {
		t.Fatalf("replication %+v", rep)
	}
	if len(rep.Samples) < 4 {
		t.Fatalf("%d samples in 300 ms at 40 ms", len(rep.Samples))
	}
	if rep.Start == nil || rep.End == nil || rep.SentBytes != rep.End.SentBytes-rep.Start.SentBytes || rep.SentBytes <= 0 {
		t.Errorf("summary start %+v end %+v sent %d", rep.Start, rep.End, rep.SentBytes)
	}
	if rep.SentPerGiBWritten <= 0 {
		t.Errorf("sent per GiB written %v (written %d)", rep.SentPerGiBWritten, res.Write.Bytes)
	}
	if d := rep.Disconnected(); d < 0 {
		t.Errorf("no disconnect recorded: %+v", rep.Events)
	}
	var sawErr bool
	for _, e := range rep.Events {
		sawErr = sawErr || e.What == "error"
	}
	if !sawErr {
		t.Errorf("failed sample not recorded as an event: %+v", rep.Events)
	}
}

func TestNoReplicationForPlainTargets(t *testing.T) {
	reg, _ := registry(t, memTarget)
	res, err := Run(context.Background(), Config{Target: "test://", Registry: reg, Workload: workloads.Workload{RW: "read", Size: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replication != nil {
		t.Errorf("replication on a mem target: %+v", res.Replication)
	}
}

// syncReplTarget replicates synchronously, like DRBD protocol C: every byte written has been
// sent by the time WriteAt returns, and the state read is slow, like a node agent's.
type syncReplTarget struct {
	*testTarget
	sent atomic.Int64
}

func (r *syncReplTarget) WriteAt(p []byte, off int64) (int, error) {
	n, err := r.testTarget.WriteAt(p, off)
	r.sent.Add(int64(n))
	return n, err
}

func (r *syncReplTarget) ReplicationInfo() results.Replication {
	return results.Replication{Kind: "drbd", Resource: "r0", Protocol: "C"}
}

func (r *syncReplTarget) SampleReplication(ctx context.Context) (results.ReplicationState, error) {
	time.Sleep(5 * time.Millisecond) // the request's way to the node
	sent := r.sent.Load()
	return results.ReplicationState{Role: "Primary", Connection: "Connected", Disk: "UpToDate", Protocol: "C", SyncPercent: -1, SentBytes: sent}, nil
}

// TestReplicationBaselineBeforeIO: the first sample is the baseline, so it must be read
// before any write is issued; otherwise a synchronous protocol reports fewer bytes sent than
// written (seen in CI: 724,992 sent for 729,088 written).
func TestReplicationBaselineBeforeIO(t *testing.T) {
	r := &backends.Registry{}
	r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
		return &syncReplTarget{testTarget: memTarget(p.Size)}, nil
	}})
	for i := 0; i < 5; i++ {
		w := workloads.Workload{RW: "randwrite", Size: 1 << 20, Runtime: 50 * time.Millisecond, TimeBased: true}
		res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w, Interval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if rep := res.Replication; rep == nil || rep.Start == nil || rep.Start.SentBytes != 0 || rep.SentBytes < res.Write.Bytes {
			t.Fatalf("run %d: baseline %+v, sent %d for %d written", i, rep.Start, rep.SentBytes, res.Write.Bytes)
		}
	}
}
