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

// BenchRead measures reads of bs bytes through tg as the engine drives it: through one Queue
// when tg is a backends.Queuer and qd > 1, otherwise qd goroutines calling ReadAt, at random
// block offsets or sequentially. Besides ns/op it reports IOPS and the process's CPU time per
// read (cpu-us/op), which a busy shared machine disturbs less than IOPS.
func BenchRead(b *testing.B, tg backends.Target, bs int64, qd int, random bool) {
	if q, ok := tg.(backends.Queuer); ok && qd > 1 {
		benchReadQueue(b, tg, q, bs, qd, random)
		return
	}
	BenchReadGoroutines(b, tg, bs, qd, random)
}

// BenchReadGoroutines is BenchRead with qd goroutines calling ReadAt even when tg has a
// Queue: the other way the engine can drive it (--submission goroutines).
func BenchReadGoroutines(b *testing.B, tg backends.Target, bs int64, qd int, random bool) {
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

// benchReadQueue keeps qd reads in flight on one Queue from this goroutine, each slot with
// its own buffer (as fio's io_u's and the engine's queue slots have).
func benchReadQueue(b *testing.B, tg backends.Target, q backends.Queuer, bs int64, qd int, random bool) {
	queue, err := q.NewQueue(qd)
	if err != nil {
		b.Fatal(err)
	}
	defer queue.Close()
	blocks := tg.Size() / bs
	bufs := make([][]byte, qd)
	for i := range bufs {
		bufs[i] = make([]byte, bs)
	}
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	var seq int64
	submit := func(slot int) {
		i := seq % blocks
		seq++
		if random {
			i = r.Int64N(blocks)
		}
		if err := queue.Submit(backends.IO{Off: i * bs, Buf: bufs[slot], Tag: slot}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(bs)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	inflight := 0
	for ; inflight < qd && seq < int64(b.N); inflight++ {
		submit(inflight)
	}
	done := make([]backends.Completion, 0, qd)
	for inflight > 0 {
		done = queue.Reap(done[:0], 1)
		for _, c := range done {
			inflight--
			if c.Err != nil {
				b.Fatal(c.Err)
			}
			if seq < int64(b.N) {
				submit(c.Tag)
				inflight++
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "IOPS")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-us/op")
}

// BenchReadCases runs BenchRead for the cases the comparison scripts measure against the
// reference clients: 4 KiB random at queue depth 1 and 32, 1 MiB sequential at 8. For a
// Queuer, the deeper cases run again with goroutines (NAME-goroutines), for comparison.
func BenchReadCases(b *testing.B, tg backends.Target) {
	_, queuer := tg.(backends.Queuer)
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
		if queuer && c.qd > 1 {
			b.Run(c.name+"-goroutines", func(b *testing.B) { BenchReadGoroutines(b, tg, c.bs, c.qd, c.random) })
		}
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
