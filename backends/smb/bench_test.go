package smb

import (
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/workloads/units"
)

// BenchmarkSMB measures sequential 1 MiB reads and writes and 4 KiB random reads with N
// requests in flight on one Target. It runs against $VMSTORBENCH_SMB_BENCH_URL (password
// from $VMSTORBENCH_SMB_PASSWORD as usual) or, when unset, a Samba testbed of its own
// ($VMSTORBENCH_SMB_BENCH_ENDPOINT picks smb, smb-signed or smb-encrypted).
// $VMSTORBENCH_SMB_BENCH_SIZE sets the file size (default 256m). scripts/compare-smb.sh
// runs it next to smbclient.
func BenchmarkSMB(b *testing.B) {
	rawURL := os.Getenv("VMSTORBENCH_SMB_BENCH_URL")
	if rawURL == "" {
		_, eps, password := startSamba(b)
		b.Setenv(PasswordEnv, password)
		name := os.Getenv("VMSTORBENCH_SMB_BENCH_ENDPOINT")
		if name == "" {
			name = "smb"
		}
		ep, ok := eps[name]
		if !ok {
			b.Fatalf("no endpoint %q", name)
		}
		rawURL = withFile(ep.URL, "bench.img", "")
	}
	size := int64(256 << 20)
	if s := os.Getenv("VMSTORBENCH_SMB_BENCH_SIZE"); s != "" {
		var err error
		if size, err = units.ParseSize(s); err != nil {
			b.Fatal(err)
		}
	}
	tg := openTarget(b, rawURL, backends.OpenParams{Size: size, Write: true, AllowDestructive: true})
	// Lay the file out once so that reads read data, not holes.
	runRequests(b, tg, 8, 1<<20, size, int(size>>20), true, false)

	for _, depth := range []int{1, 4, 8, 16} {
		b.Run("seqwrite/inflight="+strconv.Itoa(depth), func(b *testing.B) {
			runRequests(b, tg, depth, 1<<20, size, b.N, true, false)
		})
		b.Run("seqread/inflight="+strconv.Itoa(depth), func(b *testing.B) {
			runRequests(b, tg, depth, 1<<20, size, b.N, false, false)
		})
	}
	for _, depth := range []int{1, 16} {
		b.Run("randread4k/inflight="+strconv.Itoa(depth), func(b *testing.B) {
			runRequests(b, tg, depth, 4096, size, b.N, false, true)
		})
	}
}

// runRequests issues ops requests of bs bytes from depth goroutines, sequentially through
// the file (wrapping) or at random aligned offsets.
func runRequests(b *testing.B, tg backends.Target, depth, bs int, size int64, ops int, write, random bool) {
	b.Helper()
	b.SetBytes(int64(bs))
	blocks := size / int64(bs)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	cpu0 := cpuTime()
	b.ResetTimer()
	for w := range depth {
		wg.Go(func() {
			buf := make([]byte, bs)
			for i := range buf {
				buf[i] = byte(i + w)
			}
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				i := next.Add(1) - 1
				if i >= int64(ops) {
					return
				}
				blk := i % blocks
				if random {
					blk = rng.Int64N(blocks)
				}
				var err error
				if write {
					_, err = tg.WriteAt(buf, blk*int64(bs))
				} else {
					_, err = tg.ReadAt(buf, blk*int64(bs))
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	// Client CPU per request: unlike throughput, it hardly depends on what else the machine
	// is running.
	b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(ops), "cpu-µs/op")
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if random {
		b.ReportMetric(float64(ops)/b.Elapsed().Seconds(), "IOPS")
	}
}

// cpuTime is this process's user+system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
