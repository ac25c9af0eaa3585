// Package drbdnode runs the testbed's two-node DRBD pair: two small TCG guests ("nodes")
// booted from a node image (the Debian 6.1 kernel and its DRBD 8.4 module chain, drbd-utils'
// drbdsetup-84 and drbdmeta with the C library they need, and the node agent), joined by a
// replication link of QEMU UDP socket netdevs through the link emulator's UDP relay. Node A
// is Primary and exports /dev/drbd0 to the host over NBD; both answer state requests.
package drbdnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// UtilsPackage is the Debian package drbdsetup-84 and drbdmeta come from.
const UtilsPackage = "drbd-utils"

// Utils are the DRBD tools the node image carries.
type Utils struct {
	Setup84 string // drbdsetup-84
	Meta    string // drbdmeta
	Source  string
}

// FindUtils returns drbd-utils' drbdsetup-84 and drbdmeta: installed on this host, cached,
// or fetched with apt-get download into cacheDir/drbd-utils.
func FindUtils(ctx context.Context, cacheDir string, log func(string)) (*Utils, error) {
	if u := installedUtils(); u != nil {
		return u, nil
	}
	if u := cachedUtils(cacheDir); u != nil {
		return u, nil
	}
	for _, tool := range []string{"apt-get", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("DRBD node image: %s not found: install the Debian package %s", tool, UtilsPackage)
		}
	}
	base := filepath.Join(cacheDir, "drbd-utils")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("DRBD node image: %w", err)
	}
	scratch, err := os.MkdirTemp(base, ".download-")
	if err != nil {
		return nil, fmt.Errorf("DRBD node image: %w", err)
	}
	defer os.RemoveAll(scratch)
	_ = os.Chmod(scratch, 0o755) // apt-get download drops to _apt when it can
	if log != nil {
		log("DRBD node image: apt-get download " + UtilsPackage + " (0.7 MB, once)")
	}
	cmd := exec.CommandContext(ctx, "apt-get", "-q", "download", UtilsPackage)
	cmd.Dir = scratch
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("DRBD node image needs the Debian package %s: apt-get download %s: %v: %s", UtilsPackage, UtilsPackage, err, lastLine(out))
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, UtilsPackage+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("DRBD node image: apt-get download %s left %d packages", UtilsPackage, len(debs))
	}
	root := filepath.Join(scratch, "root")
	if out, err := exec.CommandContext(ctx, "dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("DRBD node image: dpkg -x %s: %v: %s", filepath.Base(debs[0]), err, lastLine(out))
	}
	keep := filepath.Join(scratch, "keep")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		return nil, err
	}
	for name, src := range map[string]string{"drbdsetup-84": "lib/drbd/drbdsetup-84", "drbdmeta": "sbin/drbdmeta"} {
		b, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			return nil, fmt.Errorf("DRBD node image: %s has no %s: %w", filepath.Base(debs[0]), src, err)
		}
		if err := os.WriteFile(filepath.Join(keep, name), b, 0o755); err != nil {
			return nil, err
		}
	}
	final := filepath.Join(base, strings.TrimSuffix(filepath.Base(debs[0]), ".deb"))
	if err := os.Rename(keep, final); err != nil && !errors.Is(err, os.ErrExist) {
		if u := cachedUtils(cacheDir); u != nil {
			return u, nil // another process unpacked it first
		}
		return nil, fmt.Errorf("DRBD node image: %w", err)
	}
	return &Utils{Setup84: filepath.Join(final, "drbdsetup-84"), Meta: filepath.Join(final, "drbdmeta"), Source: "apt-get download " + UtilsPackage}, nil
}

func installedUtils() *Utils {
	u := &Utils{Setup84: "/lib/drbd/drbdsetup-84", Meta: "/sbin/drbdmeta", Source: "installed"}
	for _, p := range []string{u.Setup84, u.Meta} {
		if _, err := os.Stat(p); err != nil {
			return nil
		}
	}
	return u
}

func cachedUtils(cacheDir string) *Utils {
	dirs, _ := filepath.Glob(filepath.Join(cacheDir, "drbd-utils", UtilsPackage+"_*"))
	for i := len(dirs) - 1; i >= 0; i-- {
		u := &Utils{Setup84: filepath.Join(dirs[i], "drbdsetup-84"), Meta: filepath.Join(dirs[i], "drbdmeta"), Source: "cache"}
		if _, err := os.Stat(u.Setup84); err == nil {
			if _, err := os.Stat(u.Meta); err == nil {
				return u
			}
		}
	}
	return nil
}

// libcFiles are what drbdsetup-84 and drbdmeta need (neither is static); copied from this
// host (Debian 12's libc6, the same the tools are built against).
var libcFiles = []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}

func lastLine(b []byte) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return string(lines[len(lines)-1])
}
