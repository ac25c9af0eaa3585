package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the Go module whose source AgentBinary can build from.
const ModulePath = "github.com/vmstorbench/vmstorbench"

// AgentPackage is the in-guest agent alone: `vmstorbench agent` with only the file backend
// linked in (the guest's disk is always a local block device). Under TCG every instruction
// the guest runs for the first time is translated, so the agent's start costs what its
// binary initialises: the whole command (all backends, reports, link emulation) took 1.5 s
// from exec to its first line where this package takes 0.3 s, and its 3.5 times larger
// initramfs (19 MiB) 0.4 s more to unpack.
const AgentPackage = "./vm/internal/guestagent"

// AgentBinary returns a static binary to run as the in-guest agent: pkg (AgentPackage for
// the fastest boot) built with CGO_ENABLED=0 from the module source found at or above the
// working directory, into the cache; without that source or a Go toolchain, this executable
// when it is static (it has the agent command too).
func AgentBinary(ctx context.Context, cacheDir, pkg string) (string, error) {
	bin, err := BuildAgent(ctx, cacheDir, pkg)
	if err == nil {
		return bin, nil
	}
	if self, serr := os.Executable(); serr == nil {
		if ok, _ := IsStatic(self); ok {
			return self, nil
		}
	}
	return "", fmt.Errorf("this vmstorbench binary is dynamically linked and cannot run in the guest, and building a static agent failed: %w (rebuild vmstorbench with CGO_ENABLED=0, or pass --agent PATH)", err)
}

// BuildAgent builds pkg statically (CGO_ENABLED=0, stripped) from the module source at or
// above the working directory and returns the binary's path in cacheDir/agent. Go's build
// cache makes repeated builds cheap.
func BuildAgent(ctx context.Context, cacheDir, pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("no go toolchain on PATH")
	}
	dir := filepath.Join(cacheDir, "agent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.CommandContext(ctx, gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", pkg, err, lastLines(out, 5))
	}
	sum, err := fileSHA256(tmp.Name())
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, "vmstorbench-"+sum[:16])
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", err
	}
	pruneFiles(dir, "vmstorbench-", keepImages)
	return final, nil
}

// moduleRoot finds the directory of this module's go.mod at or above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" && f[1] == ModulePath {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s source tree at or above the working directory", ModulePath)
		}
		dir = parent
	}
}

// pruneFiles removes all but the keep newest files named prefix* in dir.
func pruneFiles(dir, prefix string, keep int) {
	ents, _ := os.ReadDir(dir)
	type aged struct {
		path string
		mod  int64
	}
	var fs []aged
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			if info, err := e.Info(); err == nil {
				fs = append(fs, aged{filepath.Join(dir, e.Name()), info.ModTime().UnixNano()})
			}
		}
	}
	for len(fs) > keep {
		oldest := 0
		for i := range fs {
			if fs[i].mod < fs[oldest].mod {
				oldest = i
			}
		}
		_ = os.Remove(fs[oldest].path)
		fs = append(fs[:oldest], fs[oldest+1:]...)
	}
}
