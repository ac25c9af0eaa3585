package runner

import (
	"context"

	"github.com/vmstorbench/vmstorbench/vm/guest"
)

// ImageSpec says where the guest image of migration runs comes from.
type ImageSpec struct {
	CacheDir string
	Kernel   string // vmlinuz to use instead of the newest installed Debian 6.1 kernel
	Modules  string // modules directory for Kernel
	Agent    string // static agent binary; default the agent built from the source tree
	Download bool   // fetch the Debian kernel with apt-get download when none is at hand
	Rebuild  bool
}

// BuildImage builds the guest image (or finds it in the cache); log gets its progress lines.
func BuildImage(ctx context.Context, s ImageSpec, log func(string)) (*guest.Image, error) {
	agentBin := s.Agent
	if agentBin == "" {
		var err error
		if agentBin, err = guest.AgentBinary(ctx, s.CacheDir, guest.AgentPackage); err != nil {
			return nil, err
		}
	}
	return guest.Build(ctx, guest.Options{
		CacheDir: s.CacheDir,
		Kernel:   guest.KernelOptions{Kernel: s.Kernel, ModulesDir: s.Modules, CacheDir: s.CacheDir, NoDownload: !s.Download},
		Agent:    agentBin,
		Rebuild:  s.Rebuild,
		Log:      log,
	})
}
