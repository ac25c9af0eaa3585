package iscsi

import (
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// BenchmarkRead measures reads through the Target as the engine drives it: qd goroutines
// calling ReadAt on one Target. It reports IOPS and MB/s, the figures libiscsi's iscsi-perf
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
		b.Run(c.name, func(b *testing.B) {
			blocks := tg.Size() / c.bs
			var next, seq atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, c.qd)
			b.SetBytes(c.bs)
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for g := 0; g < c.qd; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					buf := make([]byte, c.bs)
					r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
					for next.Add(1) <= int64(b.N) {
						i := (seq.Add(1) - 1) % blocks
						if c.random {
							i = r.Int64N(blocks)
						}
						if _, err := tg.ReadAt(buf, i*c.bs); err != nil {
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
