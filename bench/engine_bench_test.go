package bench

import (
	"context"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/file"
	_ "github.com/vmstorbench/vmstorbench/backends/null"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// The engine's per-I/O cost bounds every figure the project publishes: these benchmarks run
// b.N I/Os through the null backend (nothing but the engine) and through a page-cached file,
// and report IOPS. scripts/compare-fio.sh sets the same jobs against fio.
func benchmarkRun(b *testing.B, target string, w workloads.Workload) {
	w.IOSize = int64(b.N) * w.BS[workloads.Read].Min
	if w.Size == 0 {
		w.Size = 256 << 20
	}
	w.NoInvalidate = true // the file benchmarks measure the engine over the page cache
	b.ResetTimer()
	r, err := Run(context.Background(), Config{Target: target, Workload: w, Open: backends.OpenParams{}})
	if err != nil {
		b.Fatal(err)
	}
	var ios int64
	for _, d := range []workloads.Direction{workloads.Read, workloads.Write} {
		if s := r.Dir(d); s != nil {
			ios += s.IOs
		}
	}
	b.ReportMetric(float64(ios)/(float64(r.RuntimeNS)/1e9), "IOPS")
	b.ReportMetric(float64(r.RuntimeNS)/float64(max(ios, 1)), "ns/io")
}

func bs(n int64) [2]workloads.BlockSize {
	return [2]workloads.BlockSize{workloads.Fixed(n), workloads.Fixed(n)}
}

func BenchmarkNullRandRead4kQD1(b *testing.B) {
	benchmarkRun(b, "null://", workloads.Workload{RW: "randread", BS: bs(4096), IODepth: 1})
}

func BenchmarkNullRandRead4kQD32(b *testing.B) {
	benchmarkRun(b, "null://", workloads.Workload{RW: "randread", BS: bs(4096), IODepth: 32})
}

func BenchmarkNullRandWrite4kQD1(b *testing.B) {
	benchmarkRun(b, "null://", workloads.Workload{RW: "randwrite", BS: bs(4096), IODepth: 1, Size: 64 << 20})
}

func BenchmarkFileRandRead4k(b *testing.B) {
	benchmarkRun(b, "file://"+b.TempDir(), workloads.Workload{RW: "randread", BS: bs(4096), Size: 64 << 20})
}

func BenchmarkFileRandWrite4k(b *testing.B) {
	benchmarkRun(b, "file://"+b.TempDir(), workloads.Workload{RW: "randwrite", BS: bs(4096), Size: 64 << 20})
}
