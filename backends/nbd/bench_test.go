package nbd

import (
	"os"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/backendtest"
)

// BenchmarkRead measures reads through the Target as the engine drives it: qd goroutines
// calling ReadAt on one Target, in the cases scripts/compare-nbd.sh compares. It reports IOPS
// and the process's CPU time per read (cpu-us/op), which a busy shared machine disturbs less
// than IOPS. The export is
// $VMSTORBENCH_NBD_BENCH_URL when set, else a qemu-nbd testbed started for the benchmark.
func BenchmarkRead(b *testing.B) {
	raw := os.Getenv("VMSTORBENCH_NBD_BENCH_URL")
	if raw == "" {
		_, ep := startQemuNBD(b, false)
		raw = ep.URL
	}
	tg := mustOpen(b, raw, backends.OpenParams{Read: true})
	backendtest.BenchReadCases(b, tg)
}
