package guest_test

import (
	"context"
	"slices"
	"testing"

	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// TestIntegrationImage checks the shared test image built from the real Debian kernel: the
// kernel was uncompressed for a PVH boot, the modules are in dependency order, and building
// again comes from the cache.
func TestIntegrationImage(t *testing.T) {
	img := vmtest.Image(t)
	if img.KernelFormat != "vmlinux-pvh" {
		t.Errorf("kernel format %s: the fast PVH boot is not used", img.KernelFormat)
	}
	before := func(a, b string) {
		i, j := slices.Index(img.Modules, a), slices.Index(img.Modules, b)
		if i < 0 || j < 0 || i > j {
			t.Errorf("module %s must be loaded before %s: %v", a, b, img.Modules)
		}
	}
	before("virtio_ring", "virtio")
	before("virtio", "virtio_pci")
	before("virtio", "virtio_blk")
	before("virtio", "virtio_console")
	if slices.Contains(img.Modules, "virtio_net") {
		t.Errorf("modules %v: the guest has no network device, virtio_net only costs boot time", img.Modules)
	}
	again, err := guest.Build(context.Background(), guest.Options{CacheDir: guest.DefaultCacheDir(), Agent: agentOf(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Hash != img.Hash {
		t.Errorf("second build: cached %v, hash %s vs %s", again.Cached, again.Hash, img.Hash)
	}
}

// agentOf rebuilds the test agent (a cache hit for Go's build cache).
func agentOf(t *testing.T) string {
	t.Helper()
	p, err := guest.BuildAgent(context.Background(), guest.DefaultCacheDir(), guest.AgentPackage)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
