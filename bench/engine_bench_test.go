package bench

import (
	"context"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	_ "github.com/vmstorbench/vmstorbench/backends/file"
	_ "github.com/vmstorbench/vmstorbench/backends/mem"
	_ "github.com/vmstorbench/vmstorbench/backends/null"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// The engine's per-I/O cost bounds every figure the project publishes: these benchmarks run
// b.N I/Os through the null backend (nothing but the engine) and through a page-cached file,
// and report IOPS. scripts/compare-fio.sh sets the same jobs against fio.
func benchmarkRun(b *testing.B, target string, w workloads.Workload) {
	benchmarkRunMode(b, target, w, SubmissionAuto)
}

// benchmarkRunMode is benchmarkRun with the submission mode given; it also reports the
// process's CPU time per I/O (user+system over the run), which is what the modes differ in.
func benchmarkRunMode(b *testing.B, target string, w workloads.Workload, submission string) {
	w.IOSize = int64(b.N) * w.BS[workloads.Read].Min
	if w.Size == 0 {
		w.Size = 256 << 20
	}
	w.NoInvalidate = true // the file benchmarks measure the engine over the page cache
	b.ResetTimer()
	r, err := Run(context.Background(), Config{Target: target, Workload: w, Open: backends.OpenParams{}, Submission: submission})
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
	b.ReportMetric(float64(r.CPU.UserNS+r.CPU.SysNS)/float64(max(ios, 1)), "cpu-ns/io")
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

// mem:// has a Queue: its QD32 reads run once through it (one goroutine per job) and once on
// 32 goroutines, so the engine's CPU per I/O of the two submission modes can be compared
// with the copies and no network.
func BenchmarkMemRandRead4kQD32Queue(b *testing.B) {
	benchmarkRunMode(b, "mem://", workloads.Workload{RW: "randread", BS: bs(4096), IODepth: 32, Size: 64 << 20}, SubmissionQueue)
}

func BenchmarkMemRandRead4kQD32Goroutines(b *testing.B) {
	benchmarkRunMode(b, "mem://", workloads.Workload{RW: "randread", BS: bs(4096), IODepth: 32, Size: 64 << 20}, SubmissionGoroutines)
}
