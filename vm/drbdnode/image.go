package drbdnode

import (
	"context"
	"fmt"
	"os"

	"github.com/vmstorbench/vmstorbench/vm/guest"
)

// AgentPackage is the node agent's main package.
const AgentPackage = "./vm/internal/drbdnode"

// NodeModules are loaded after the guest's usual modules, in this order: the NIC driver,
// then the DRBD chain with libcrc32c's soft dependency (crc32c_generic) before it.
var NodeModules = []string{"virtio_net", "crc32c_generic", "libcrc32c", "lru_cache", "drbd"}

// ImageOptions say where to build the node image.
type ImageOptions struct {
	CacheDir string
	// Agent is the node agent binary; empty builds AgentPackage from the source tree.
	Agent string
	// NoDownload refuses to fetch the kernel package.
	NoDownload bool
	Log        func(string)
}

// BuildImage builds (or finds in the cache, by the hash of its inputs) the node image.
func BuildImage(ctx context.Context, o ImageOptions) (*guest.Image, error) {
	if o.CacheDir == "" {
		o.CacheDir = guest.DefaultCacheDir()
	}
	agent := o.Agent
	if agent == "" {
		// The small node agent from the source tree, else this binary when it is static
		// (vmstorbench has the node command too).
		var err error
		if agent, err = guest.AgentBinary(ctx, o.CacheDir, AgentPackage); err != nil {
			return nil, fmt.Errorf("DRBD node agent: %w", err)
		}
	}
	u, err := FindUtils(ctx, o.CacheDir, o.Log)
	if err != nil {
		return nil, err
	}
	files := []guest.File{
		{Name: "bin/drbdsetup-84", Source: u.Setup84, Mode: 0o755},
		{Name: "bin/drbdmeta", Source: u.Meta, Mode: 0o755},
	}
	for _, p := range libcFiles {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("DRBD node image: %s (drbdsetup-84 needs it): install the Debian package libc6: %w", p, err)
		}
		files = append(files, guest.File{Name: p, Source: p, Mode: 0o755})
	}
	img, err := guest.Build(ctx, guest.Options{
		CacheDir: o.CacheDir,
		Kernel:   guest.KernelOptions{Need: []string{"drbd", "virtio_net", "crc32c_generic"}, NoDownload: o.NoDownload},
		Agent:    agent,
		Log:      o.Log,
		Variant: &guest.Variant{
			Name:    "drbdnode",
			Modules: NodeModules,
			Files:   files,
			Init:    "rdinit=/bin/vmstorbench -- node --init",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("DRBD node image: %w", err)
	}
	return img, nil
}
