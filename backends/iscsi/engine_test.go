package iscsi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// TestIntegrationISCSIEngine runs the engine with verify=crc32c on every testbed endpoint:
// random writes at iodepth 16 from two jobs (two sessions on one LUN), every block read back
// and checked.
func TestIntegrationISCSIEngine(t *testing.T) {
	eps := startServer(t, testbed.NewTgt())
	for name, ep := range startServer(t, testbed.NewGotgt()) {
		eps[name] = ep
	}
	for _, name := range []string{"iscsi-tgt", "iscsi-tgt-chap", "iscsi-gotgt"} {
		ep := eps[name]
		t.Run(name, func(t *testing.T) {
			for k, v := range ep.Env {
				t.Setenv(k, v)
			}
			w := workloads.Workload{RW: workloads.RandWrite, BS: [2]workloads.BlockSize{workloads.Fixed(16 << 10), workloads.Fixed(16 << 10)},
				Size: 8 << 20, IOSize: 8 << 20, IODepth: 16, NumJobs: 2, Direct: true, Verify: "crc32c"}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := bench.Run(ctx, bench.Config{Target: ep.URL, Workload: w, Open: backends.OpenParams{AllowDestructive: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Complete || res.Verify == nil || res.Verify.Checked == 0 || res.Verify.Mismatches != 0 {
				t.Fatalf("complete=%v verify=%+v", res.Complete, res.Verify)
			}
			t.Logf("verify %+v, writes %d", *res.Verify, res.Write.IOs)
			if info := res.Target.Info; info["security"] != ep.Security || info["access"] != "userspace" {
				t.Errorf("target info %v, want security %s", info, ep.Security)
			}
			for _, secret := range ep.Env {
				if strings.Contains(res.Target.URL, secret) {
					t.Fatal("secret in the result")
				}
			}
		})
	}
	t.Run("write refused without allow-destructive", func(t *testing.T) {
		w := workloads.Workload{RW: workloads.RandWrite, Size: 1 << 20}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := bench.Run(ctx, bench.Config{Target: eps["iscsi-tgt"].URL, Workload: w})
		if err == nil || !strings.Contains(err.Error(), "--allow-destructive") {
			t.Fatalf("error %v, want a refusal naming --allow-destructive", err)
		}
	})
}

// TestIntegrationISCSISyncWrites: fio's sync=sync sends every WRITE(16) with FUA, which
// tgt and gotgt accept; fdatasync=N runs as SYNCHRONIZE CACHE.
func TestIntegrationISCSISyncWrites(t *testing.T) {
	eps := startServer(t, testbed.NewTgt())
	for k, v := range eps["iscsi-tgt"].Env {
		t.Setenv(k, v)
	}
	w := workloads.Workload{RW: workloads.RandWrite, Size: 1 << 20, IODepth: 4, Direct: true, SyncIO: "sync", Fdatasync: 32, Verify: "crc32c"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Target: eps["iscsi-tgt"].URL, Workload: w, Open: backends.OpenParams{AllowDestructive: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Verify.Mismatches != 0 || res.Target.Info["sync"] != "fua" {
		t.Fatalf("complete=%v verify=%+v info=%v", res.Complete, res.Verify, res.Target.Info)
	}
	if res.Sync == nil || res.Sync.IOs != 8 || res.SyncCall != "sync" {
		t.Fatalf("sync %+v by %q, want 8 SYNCHRONIZE CACHE as \"sync\"", res.Sync, res.SyncCall)
	}
}
