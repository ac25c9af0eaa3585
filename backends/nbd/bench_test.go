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
	for _, c := range []struct {
		name   string
		bs     int64
		qd     int
		random bool
	}{
		{"4k-rand-qd1", 4096, 1, true},
		{"4k-rand-qd32", 4096, 32, true},
		{"1m-seq-qd8", 1 << 20, 8, false},
	} {
		b.Run(c.name, func(b *testing.B) { backendtest.BenchRead(b, tg, c.bs, c.qd, c.random) })
	}
}
