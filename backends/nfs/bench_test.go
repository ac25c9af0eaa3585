package nfs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/signal"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// Benchmarks against NFS-Ganesha. scripts/compare-nfs.sh runs them next to libnfs's nfs-cp
// on the same export: it starts Ganesha with this package's test binary (see TestMain) and
// passes the endpoint in $VMSTORBENCH_NFS_URL; without it each benchmark starts its own.

const benchURLEnv = "VMSTORBENCH_NFS_URL"

// benchServerURL returns the endpoint URL (naming testbed.NFSFile) of the Ganesha to use.
func benchServerURL(b *testing.B) *url.URL {
	b.Helper()
	raw := os.Getenv(benchURLEnv)
	if raw == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		g := testbed.NewGanesha()
		eps, err := g.Start(ctx, b.TempDir())
		if err != nil {
			b.Skip(err)
		}
		b.Cleanup(func() { g.Stop() })
		raw = eps[0].URL
	}
	u, err := url.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func benchURL(u *url.URL, file string, opts string) string {
	c := *u
	c.Path = path.Join(path.Dir(c.Path), file)
	if opts != "" {
		c.RawQuery += "&" + opts
	}
	return c.String()
}

func benchOpen(b *testing.B, rawURL string, p backends.OpenParams) backends.Target {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t, err := backends.Open(ctx, rawURL, p)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// seqSize is what nfs-cp copies in compare-nfs.sh.
const seqSize = 256 << 20

// sequential moves size bytes through op in 1 MiB requests with depth in flight, in order.
func sequential(size int64, depth int, op func(p []byte, off int64) (int, error)) error {
	const bs = 1 << 20
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range depth {
		wg.Go(func() {
			buf := make([]byte, bs)
			for i := range buf {
				buf[i] = byte(i * 31)
			}
			for {
				off := next.Add(bs) - bs
				if off >= size || first.Load() != nil {
					return
				}
				if _, err := op(buf[:min(bs, size-off)], off); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// BenchmarkSeqRead reads a 256 MiB file (in the server's page cache) with 1 MiB requests.
func BenchmarkSeqRead(b *testing.B) {
	u := benchServerURL(b)
	t := benchOpen(b, benchURL(u, "seqread.img", ""), backends.OpenParams{Size: seqSize, Read: true})
	defer t.Close()
	for _, depth := range []int{1, 4} {
		b.Run(fmt.Sprintf("qd%d", depth), func(b *testing.B) {
			b.SetBytes(seqSize)
			cpu0 := cpuTime()
			for b.Loop() {
				if err := sequential(seqSize, depth, t.ReadAt); err != nil {
					b.Fatal(err)
				}
			}
			reportCPUPerGiB(b, cpuTime()-cpu0, int64(b.N)*seqSize)
		})
	}
}

// BenchmarkSeqWrite writes a new 256 MiB file with 1 MiB requests: UNSTABLE writes and one
// COMMIT at the end (what nfs-cp does), and FILE_SYNC writes.
func BenchmarkSeqWrite(b *testing.B) {
	u := benchServerURL(b)
	for _, stable := range []string{"unstable", "filesync"} {
		for _, depth := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/qd%d", stable, depth), func(b *testing.B) {
				b.SetBytes(seqSize)
				var cpu int64 // over the timed part only, like the time
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					t := benchOpen(b, benchURL(u, fmt.Sprintf("seqwrite%d.img", i), "stable="+stable), backends.OpenParams{Size: seqSize, Write: true})
					b.StartTimer()
					cpu0 := cpuTime()
					err := sequential(seqSize, depth, t.WriteAt)
					if err == nil {
						err = t.Sync()
					}
					cpu += cpuTime() - cpu0
					b.StopTimer()
					if cerr := t.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				reportCPUPerGiB(b, cpu, int64(b.N)*seqSize)
			})
		}
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

// reportCPUPerGiB reports the client's CPU seconds per GiB moved (cpu-s/GiB), the figure
// scripts/compare-nfs.sh sets against nfs-cp's.
func reportCPUPerGiB(b *testing.B, cpuNS, bytes int64) {
	if bytes > 0 {
		b.ReportMetric(float64(cpuNS)/1e9/(float64(bytes)/(1<<30)), "cpu-s/GiB")
	}
}

// BenchmarkRandRead4k reads 4 KiB blocks at random offsets of a 64 MiB file with 1 and 16
// requests in flight on one connection; the IOPS metric is the figure to compare.
func BenchmarkRandRead4k(b *testing.B) {
	const size = 64 << 20
	u := benchServerURL(b)
	t := benchOpen(b, benchURL(u, "randread.img", ""), backends.OpenParams{Size: size, Read: true})
	defer t.Close()
	for _, depth := range []int{1, 16} {
		b.Run(fmt.Sprintf("qd%d", depth), func(b *testing.B) {
			var ops atomic.Int64
			ops.Store(int64(b.N))
			start := time.Now()
			var wg sync.WaitGroup
			for w := range depth {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					buf := make([]byte, 4096)
					for ops.Add(-1) >= 0 {
						if _, err := t.ReadAt(buf, rng.Int64N(size/4096)*4096); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "IOPS")
		})
	}
}

// TestMain doubles as the Ganesha server of scripts/compare-nfs.sh: with
// VMSTORBENCH_GANESHA_DIR set, the test binary starts Ganesha there, prints the endpoint URL
// on a line "URL <url>" and serves until SIGTERM or SIGINT instead of running tests.
func TestMain(m *testing.M) {
	if dir := os.Getenv("VMSTORBENCH_GANESHA_DIR"); dir != "" {
		if err := serveGanesha(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveGanesha(dir string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	g := testbed.NewGanesha()
	start, cancel := context.WithTimeout(ctx, 30*time.Second)
	eps, err := g.Start(start, dir)
	cancel()
	if err != nil {
		return err
	}
	fmt.Printf("URL %s\n", eps[0].URL)
	<-ctx.Done()
	return g.Stop()
}
