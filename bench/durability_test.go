package bench

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// syncCounter counts Sync calls; dataSyncTarget adds DataSync.
type syncCounter struct {
	*testTarget
	syncs atomic.Int64
}

func (s *syncCounter) Sync() error { s.syncs.Add(1); return nil }

type dataSyncTarget struct {
	*syncCounter
	datasyncs atomic.Int64
}

func (d *dataSyncTarget) DataSync() error { d.datasyncs.Add(1); return nil }

func TestFsyncAndFdatasync(t *testing.T) {
	cases := []struct {
		name             string
		fsync, fdatasync int
		dataSyncer       bool
		syncs, datasyncs int64
		call             string
	}{
		{"fsync", 8, 0, true, 32, 0, "sync"},
		{"fdatasync", 0, 4, true, 0, 64, "datasync"},
		{"fdatasync without DataSync", 0, 4, false, 64, 0, "sync"},
		{"both", 8, 4, true, 32, 64, "sync+datasync"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var sc *syncCounter
			var dt *dataSyncTarget
			var syncWrites string
			r := &backends.Registry{}
			r.Register(backends.Backend{Scheme: "test", Open: func(_ context.Context, _ *url.URL, p backends.OpenParams) (backends.Target, error) {
				syncWrites = p.SyncWrites
				sc = &syncCounter{testTarget: memTarget(p.Size)}
				if c.dataSyncer {
					dt = &dataSyncTarget{syncCounter: sc}
					return dt, nil
				}
				return sc, nil
			}})
			// 256 writes on one job, with several workers sharing its write count.
			w := workloads.Workload{RW: "randwrite", Size: 1 << 20, IODepth: 4, Fsync: c.fsync, Fdatasync: c.fdatasync, SyncIO: "dsync"}
			res, err := Run(context.Background(), Config{Target: "test://", Registry: r, Workload: w})
			if err != nil {
				t.Fatal(err)
			}
			var datasyncs int64
			if dt != nil {
				datasyncs = dt.datasyncs.Load()
			}
			if sc.syncs.Load() != c.syncs || datasyncs != c.datasyncs {
				t.Errorf("%d syncs and %d datasyncs, want %d and %d", sc.syncs.Load(), datasyncs, c.syncs, c.datasyncs)
			}
			if res.Sync == nil || res.Sync.IOs != c.syncs+c.datasyncs || res.SyncCall != c.call {
				t.Errorf("result: sync %+v, call %q; want %d syncs by %q", res.Sync, res.SyncCall, c.syncs+c.datasyncs, c.call)
			}
			if syncWrites != "dsync" {
				t.Errorf("OpenParams.SyncWrites = %q, want the workload's sync=dsync", syncWrites)
			}
		})
	}
}
