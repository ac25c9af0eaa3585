package drbdnode

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// This file sorts before pair_test.go, so its test runs before the shared pair starts.

// TestFailedStartLeavesNothing gives a pair too little time to come up: Start fails with
// the state it reached and no QEMU of it is left running.
func TestFailedStartLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("boots two TCG guests")
	}
	vmtest.RequireQEMU(t)
	if pair != nil {
		t.Skip("the shared pair runs: no more than two node guests at once")
	}
	img, err := BuildImage(context.Background(), ImageOptions{CacheDir: guest.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	p, err := Start(ctx, Config{Dir: dir, Image: img})
	if err == nil {
		p.Stop()
		t.Fatal("a pair came up in 1.5 s")
	}
	t.Logf("start with 1.5 s to go: %.200s", err)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, c := range procs {
		if b, err := os.ReadFile(c); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("left running: %s: %s", c, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}
