package nbd

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// BenchmarkRead measures 4 KiB random reads through the Target as the engine drives it: qd
// goroutines calling ReadAt on one Target. It reports IOPS and the process's CPU time per
// read (cpu-us/op), which a busy shared machine disturbs less than IOPS. The export is
// $VMSTORBENCH_NBD_BENCH_URL when set, else a qemu-nbd testbed started for the benchmark.
func BenchmarkRead(b *testing.B) {
	raw := os.Getenv("VMSTORBENCH_NBD_BENCH_URL")
	if raw == "" {
		_, ep := startQemuNBD(b, false)
		raw = ep.URL
	}
	tg := mustOpen(b, raw, backends.OpenParams{Read: true})
	for _, qd := range []int{1, 16} {
		b.Run(fmt.Sprintf("4k-rand-qd%d", qd), func(b *testing.B) {
			const bs = 4096
			blocks := tg.Size() / bs
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, qd)
			b.SetBytes(bs)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for g := 0; g < qd; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					buf := make([]byte, bs)
					r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
					for next.Add(1) <= int64(b.N) {
						if _, err := tg.ReadAt(buf, r.Int64N(blocks)*bs); err != nil {
							errs <- err
							return
						}
					}
				}(g)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "IOPS")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
