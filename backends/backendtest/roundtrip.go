package backendtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
)

// RoundTrip writes random data from 32 goroutines on one block target (more requests than
// any server here takes at once), in sizes from minBlock to 1 MiB, reads every piece back and
// compares it, then syncs. Each goroutine owns the 1 MiB slots ≡ its index (mod 32), so
// writes never overlap; tg must hold at least 32 MiB.
func RoundTrip(t testing.TB, tg backends.Target, minBlock int64) {
	t.Helper()
	const workers, perWorker = 32, 12
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 42))
			for i := 0; i < perWorker; i++ {
				sizes := []int64{minBlock, 4096, 65536, 300 * 1024, 1 << 20}
				n := sizes[r.IntN(len(sizes))]
				slot := int64(r.IntN(int(tg.Size()/(1<<20)/workers)))*workers + int64(w)
				off := slot << 20
				buf := make([]byte, n)
				_, _ = rand.NewChaCha8([32]byte{byte(w), byte(i)}).Read(buf)
				if _, err := tg.WriteAt(buf, off); err != nil {
					errs <- fmt.Errorf("write %d at %d: %w", n, off, err)
					return
				}
				got := make([]byte, n)
				if _, err := tg.ReadAt(got, off); err != nil {
					errs <- fmt.Errorf("read %d at %d: %w", n, off, err)
					return
				}
				if !bytes.Equal(got, buf) {
					errs <- fmt.Errorf("read back %d bytes at %d: data differ", n, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := tg.Sync(); err != nil {
		t.Errorf("Sync: %v", err)
	}
}
