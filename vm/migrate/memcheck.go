package migrate

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// maxReportedPages bounds the differing page addresses kept in the result.
const maxReportedPages = 32

// checkMemory saves guest RAM on both sides (the source stopped after the migration, the
// destination loaded and still paused) with the driver's memory dump (QEMU: pmemsave) and
// compares it page by page.
func (s *scenario) checkMemory(ctx context.Context) (*results.MemoryCheck, error) {
	start := time.Now()
	size := s.src.guest.RAMBytes()
	paths := []string{filepath.Join(s.dir, "source.mem"), filepath.Join(s.dir, "destination.mem")}
	defer func() {
		for _, p := range paths {
			os.Remove(p)
		}
	}()
	errs := make(chan error, 2)
	for i, sd := range []*side{s.src, s.dst} {
		dumper, ok := sd.guest.(hv.MemoryDumper)
		if !ok {
			return nil, hv.Unsupported(s.drv, "--check-memory")
		}
		go func() {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			errs <- dumper.DumpMemory(qctx, paths[i], size)
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	mc, err := comparePages(paths[0], paths[1], 4096)
	if mc != nil {
		mc.PauseNS = int64(time.Since(start))
		s.addCheckPause(start, time.Now())
	}
	return mc, err
}

// comparePages compares two memory dumps page by page.
func comparePages(a, b string, page int64) (*results.MemoryCheck, error) {
	fa, err := os.Open(a)
	if err != nil {
		return nil, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return nil, err
	}
	defer fb.Close()
	ra, rb := bufio.NewReaderSize(fa, 1<<20), bufio.NewReaderSize(fb, 1<<20)
	pa, pb := make([]byte, page), make([]byte, page)
	mc := &results.MemoryCheck{PageSize: page}
	for addr := int64(0); ; addr += page {
		na, ea := io.ReadFull(ra, pa)
		nb, eb := io.ReadFull(rb, pb)
		if na == 0 && nb == 0 {
			break
		}
		if na != nb {
			return mc, fmt.Errorf("memory dumps differ in length at %#x", addr)
		}
		mc.Pages++
		if !bytes.Equal(pa[:na], pb[:nb]) {
			mc.DifferingPages++
			if len(mc.FirstAddresses) < maxReportedPages {
				mc.FirstAddresses = append(mc.FirstAddresses, addr)
			}
		}
		if ea != nil || eb != nil {
			break
		}
	}
	return mc, nil
}

func redactURL(s string) string { return backends.RedactString(s) }
