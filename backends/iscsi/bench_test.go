package iscsi

import (
	"os"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/backendtest"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// BenchmarkRead measures reads through the Target as the engine drives it: one Queue (the
// Target is a backends.Queuer) at queue depth > 1, ReadAt at 1; the deeper cases also with
// goroutines calling ReadAt (NAME-goroutines). It reports IOPS and MB/s, the figures libiscsi's iscsi-perf
// prints, so that scripts/compare-iscsi.sh can set them side by side, and the process's CPU
// time per read (cpu-us/op), which a busy shared machine disturbs less than IOPS. The LUN is
// $VMSTORBENCH_ISCSI_BENCH_URL when set (its CHAP secret, if any, in $VMSTORBENCH_ISCSI_SECRET),
// else a tgt testbed started for the benchmark.
func BenchmarkRead(b *testing.B) {
	raw := os.Getenv("VMSTORBENCH_ISCSI_BENCH_URL")
	ep := testbed.Endpoint{URL: raw}
	if raw == "" {
		ep = startServer(b, testbed.NewTgt())["iscsi-tgt"]
	}
	tg, err := openEndpoint(b, ep, "", backends.OpenParams{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	backendtest.BenchReadCases(b, tg)
}
