package backendtest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

// BenchRead measures reads of bs bytes through tg as the engine drives it: qd goroutines
// calling ReadAt on one Target, at random block offsets or sequentially. Besides ns/op it
// reports IOPS and the process's CPU time per read (cpu-us/op), which a busy shared machine
// disturbs less than IOPS.
func BenchRead(b *testing.B, tg backends.Target, bs int64, qd int, random bool) {
	blocks := tg.Size() / bs
	var next, seq atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, qd)
	b.SetBytes(bs)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for g := range qd {
		wg.Go(func() {
			buf := make([]byte, bs)
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			for next.Add(1) <= int64(b.N) {
				i := (seq.Add(1) - 1) % blocks
				if random {
					i = r.Int64N(blocks)
				}
				if _, err := tg.ReadAt(buf, i*bs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "IOPS")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchReadCases runs BenchRead for the cases the comparison scripts measure against the
// reference clients: 4 KiB random at queue depth 1 and 32, 1 MiB sequential at 8.
func BenchReadCases(b *testing.B, tg backends.Target) {
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
		b.Run(c.name, func(b *testing.B) { BenchRead(b, tg, c.bs, c.qd, c.random) })
	}
}
