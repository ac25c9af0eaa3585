package guest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFetch replaces the apt-get download (no network in unit tests): it counts its calls and
// leaves a kernel in the cache the way downloadKernel does.
func fakeFetch(t *testing.T, calls *atomic.Int32, err error) {
	t.Helper()
	old := fetchKernel
	t.Cleanup(func() { fetchKernel = old })
	fetchKernel = func(_ context.Context, cache string, log func(string), _ []string) (*Kernel, error) {
		calls.Add(1)
		log("guest kernel: fake download")
		if err != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond) // long enough for a concurrent caller to wait on the lock
		writeCachedKernel(t, cache, "6.1.0-9-amd64")
		return &Kernel{Version: "6.1.0-9-amd64", Source: "apt-get download fake"}, nil
	}
}

func writeCachedKernel(t *testing.T, cache, ver string) {
	t.Helper()
	d := filepath.Join(cache, "kernel", "linux-image-"+ver)
	if err := os.MkdirAll(filepath.Join(d, "modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"version": ver + "\n", "vmlinuz": "kernel"} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindKernelDownloadDecision(t *testing.T) {
	ctx := context.Background()
	// Root is an empty directory: the host's own /boot never decides.
	empty := func() KernelOptions { return KernelOptions{Root: t.TempDir(), CacheDir: t.TempDir()} }

	t.Run("nothing installed or cached: fetched without a flag", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		var logged []string
		o.Log = func(s string) { logged = append(logged, s) }
		k, err := FindKernel(ctx, o)
		if err != nil || k.Version != "6.1.0-9-amd64" || calls.Load() != 1 {
			t.Fatalf("kernel %+v, err %v, %d fetches", k, err, calls.Load())
		}
		if len(logged) == 0 {
			t.Error("no progress line for the download")
		}
		// The second time it comes from the cache.
		k, err = FindKernel(ctx, o)
		if err != nil || calls.Load() != 1 || !strings.HasPrefix(k.Source, "cache") {
			t.Fatalf("second call: kernel %+v, err %v, %d fetches", k, err, calls.Load())
		}
	})
	t.Run("cached: not fetched", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		writeCachedKernel(t, o.CacheDir, "6.1.0-7-amd64")
		k, err := FindKernel(ctx, o)
		if err != nil || k.Version != "6.1.0-7-amd64" || calls.Load() != 0 {
			t.Fatalf("kernel %+v, err %v, %d fetches", k, err, calls.Load())
		}
	})
	t.Run("installed: not fetched", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		os.MkdirAll(filepath.Join(o.Root, "boot"), 0o755)
		os.WriteFile(filepath.Join(o.Root, "boot", "vmlinuz-6.1.0-5-amd64"), []byte("k"), 0o644)
		os.MkdirAll(filepath.Join(o.Root, "lib/modules/6.1.0-5-amd64/kernel"), 0o755)
		k, err := FindKernel(ctx, o)
		if err != nil || k.Source != "installed" || calls.Load() != 0 {
			t.Fatalf("kernel %+v, err %v, %d fetches", k, err, calls.Load())
		}
	})
	t.Run("NoDownload: an error naming the package", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		o.NoDownload = true
		_, err := FindKernel(ctx, o)
		if !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), KernelMetaPackage) || calls.Load() != 0 {
			t.Fatalf("err %v, %d fetches", err, calls.Load())
		}
	})
	t.Run("no cache directory: an error, not a download to nowhere", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		o.CacheDir = ""
		if _, err := FindKernel(ctx, o); !errors.Is(err, ErrNoKernel) || calls.Load() != 0 {
			t.Fatalf("err %v, %d fetches", err, calls.Load())
		}
	})
	t.Run("download error returned", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, errors.New("mirror down"))
		if _, err := FindKernel(ctx, empty()); err == nil || !strings.Contains(err.Error(), "mirror down") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("concurrent callers: one download", func(t *testing.T) {
		var calls atomic.Int32
		fakeFetch(t, &calls, nil)
		o := empty()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = FindKernel(ctx, o)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if calls.Load() != 1 {
			t.Fatalf("%d downloads, want 1", calls.Load())
		}
	})
}
