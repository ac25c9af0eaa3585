package smb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/bench"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// TestIntegrationSMBEngine runs the engine with verify=crc32c on each security level:
// random writes at iodepth 16 from two jobs, every block read back and checked.
func TestIntegrationSMBEngine(t *testing.T) {
	_, eps, password := startSamba(t)
	t.Setenv(PasswordEnv, password)
	for _, name := range []string{"smb", "smb-signed", "smb-encrypted"} {
		t.Run(name, func(t *testing.T) {
			ep := eps[name]
			w := workloads.Workload{RW: workloads.RandWrite, BS: [2]workloads.BlockSize{workloads.Fixed(16 << 10), workloads.Fixed(16 << 10)},
				Size: 8 << 20, IOSize: 8 << 20, IODepth: 16, NumJobs: 2, Verify: "crc32c"}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := bench.Run(ctx, bench.Config{Target: ep.URL, Workload: w})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Complete || res.Verify == nil || res.Verify.Checked == 0 || res.Verify.Mismatches != 0 {
				t.Fatalf("complete=%v verify=%+v", res.Complete, res.Verify)
			}
			t.Logf("verify %+v, writes %d", *res.Verify, res.Write.IOs)
			if info := res.Target.Info; info["security"] != ep.Security || info["dialect"] != "3.1.1" {
				t.Fatalf("target info %v, want security %s", info, ep.Security)
			}
			if strings.Contains(res.Target.URL, password) {
				t.Fatal("password in the result")
			}
		})
	}
	t.Run("randread on a new file", func(t *testing.T) {
		w := workloads.Workload{RW: workloads.RandRead, BS: [2]workloads.BlockSize{workloads.Fixed(4096), workloads.Fixed(4096)},
			Size: 4 << 20, IODepth: 16}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := bench.Run(ctx, bench.Config{Target: withFile(eps["smb"].URL, "randread.img", ""), Workload: w})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete || res.Read == nil || res.Read.IOs != 1024 {
			t.Fatalf("complete=%v read=%+v", res.Complete, res.Read)
		}
	})
}

// TestIntegrationSMBSyncWrites: fio's sync=dsync opens the file write-through and
// fdatasync=N runs as FLUSH (SMB has no data-only flush).
func TestIntegrationSMBSyncWrites(t *testing.T) {
	_, eps, password := startSamba(t)
	t.Setenv(PasswordEnv, password)
	w := workloads.Workload{RW: workloads.RandWrite, Size: 1 << 20, IODepth: 4, SyncIO: "dsync", Fdatasync: 16, Verify: "md5"}
	if err := w.Defaults().Validate(); err != nil {
		w.Verify = "crc32c" // md5 once workloads.Validate accepts it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bench.Run(ctx, bench.Config{Target: eps["smb"].URL, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Verify.Mismatches != 0 || res.Target.Info["sync"] != "write-through" {
		t.Fatalf("complete=%v verify=%+v info=%v", res.Complete, res.Verify, res.Target.Info)
	}
	if res.Sync == nil || res.Sync.IOs != 16 || res.SyncCall != "sync" {
		t.Fatalf("sync %+v by %q, want 16 FLUSHes as \"sync\"", res.Sync, res.SyncCall)
	}
}
