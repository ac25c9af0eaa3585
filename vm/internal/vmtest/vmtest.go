// Package vmtest gives the vm packages' tests one guest image, built once per test binary
// (and cached across runs by content hash), and the skip-or-fail rule for missing tools:
// outside CI a missing QEMU or kernel skips, with CI=true it fails.
package vmtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/qemu"
)

var (
	once   sync.Once
	img    *guest.Image
	imgErr error
)

// CI reports whether the tests run in CI, where nothing may be skipped.
func CI() bool { return os.Getenv("CI") != "" }

// Missing skips (or, in CI, fails) a test because a tool is missing.
func Missing(t testing.TB, err error) {
	t.Helper()
	if CI() {
		t.Fatalf("CI=true and %v", err)
	}
	t.Skipf("skipping: %v", err)
}

// RequireQEMU returns the QEMU binary.
func RequireQEMU(t testing.TB) string {
	t.Helper()
	bin, err := qemu.Binary()
	if err != nil {
		Missing(t, err)
	}
	return bin
}

// Image returns the shared guest image, building it on first use.
func Image(t testing.TB) *guest.Image {
	t.Helper()
	RequireQEMU(t)
	once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cache := guest.DefaultCacheDir()
		var agentBin string
		agentBin, imgErr = guest.BuildAgent(ctx, cache, guest.AgentPackage)
		if imgErr != nil {
			return
		}
		// The kernel comes the way it comes for the demo: installed, cached, or fetched
		// with apt-get download (without apt-get that is ErrNoKernel, a skip outside CI).
		img, imgErr = guest.Build(ctx, guest.Options{
			CacheDir: cache,
			Agent:    agentBin,
			Log:      func(s string) { fmt.Fprintln(os.Stderr, s) },
		})
	})
	if imgErr != nil {
		if errors.Is(imgErr, guest.ErrNoKernel) || errors.Is(imgErr, testbed.ErrMissingBinary) {
			Missing(t, imgErr)
		}
		t.Fatalf("guest image: %v", imgErr)
	}
	return img
}

// ShortTempDir is a temporary directory with a path short enough for unix sockets (t.TempDir
// paths embed the test name), removed when the test ends.
func ShortTempDir(t testing.TB) (string, error) {
	d, err := os.MkdirTemp("", "vsb-")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d, nil
}
