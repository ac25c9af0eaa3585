package guest

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KernelPackages are the Debian packages the guest kernel comes from: the versioned image
// package is resolved through the metapackage.
const (
	KernelMetaPackage = "linux-image-amd64"
	kernelPackageRe   = `^linux-image-6\.1\.0-[0-9]+-amd64$`
)

// GuestModules are the modules the guest needs: the virtio PCI transport, the disk and the
// serial port the agent talks over (the guest has no network device: every module costs
// boot time under TCG). Their dependencies are added from each module's own "depends=" list.
var GuestModules = []string{"virtio_pci", "virtio_blk", "virtio_console"}

// KeepModules are kept from a downloaded kernel package besides GuestModules: what the
// testbed's DRBD nodes load (network, the DRBD module chain; crc32c_generic is libcrc32c's
// soft dependency, which modinfo's depends= does not list).
var KeepModules = []string{"virtio_net", "crc32c_generic", "drbd"}

// Kernel is a Debian guest kernel found on this host.
type Kernel struct {
	// Version is the kernel release, e.g. "6.1.0-56-amd64".
	Version string `json:"version"`
	// BzImage is the compressed kernel (/boot/vmlinuz-...).
	BzImage string `json:"bzimage"`
	// ModulesDir is the directory holding kernel/ with the .ko files.
	ModulesDir string `json:"modules_dir"`
	// Source says where it came from ("installed", "cache", "apt-get download ...").
	Source string `json:"source"`
}

// KernelOptions say where to look for the kernel.
type KernelOptions struct {
	// Kernel is an explicit vmlinuz path; ModulesDir then defaults to /lib/modules/<version>.
	Kernel     string
	ModulesDir string
	// CacheDir holds kernels extracted from downloaded packages.
	CacheDir string
	// NoDownload keeps FindKernel from fetching the kernel package with apt-get download
	// into CacheDir when none is installed or cached. Fetching is the default so that the
	// main job works on a fresh machine without a flag the user has to know.
	NoDownload bool
	// Log receives one-line progress messages of a download (may be nil): it takes tens of
	// seconds and must not look like a hang.
	Log func(string)
	// Root prefixes /boot and /lib/modules (tests); empty means /.
	Root string
	// Need are modules beyond GuestModules the kernel must ship (the DRBD node's drbd chain):
	// installed or cached kernels without them are passed over, and a download keeps them.
	Need []string
}

// ErrNoKernel is wrapped when no guest kernel is available.
var ErrNoKernel = errors.New("no guest kernel")

// FindKernel finds the guest kernel: an explicit one, the newest installed 6.1 Debian
// kernel, one extracted earlier into the cache, or (unless NoDownload) the current package
// fetched with apt-get download and unpacked with dpkg -x into the cache.
func FindKernel(ctx context.Context, o KernelOptions) (*Kernel, error) {
	if o.Kernel != "" {
		return explicitKernel(o)
	}
	if k := newestInstalled(o.Root, o.Need); k != nil {
		return k, nil
	}
	if o.CacheDir != "" {
		if k := newestCached(o.CacheDir, o.Need); k != nil {
			return k, nil
		}
	}
	if o.NoDownload {
		return nil, fmt.Errorf("%w: install the Debian package %s (apt-get install %s), or let vmstorbench fetch it (without --download=false)", ErrNoKernel, KernelMetaPackage, KernelMetaPackage)
	}
	if o.CacheDir == "" {
		return nil, fmt.Errorf("%w: no cache directory to download %s into", ErrNoKernel, KernelMetaPackage)
	}
	// Test binaries of several packages and a demo may all start with an empty cache: one
	// downloads, the others wait and then find its kernel in the cache.
	unlock, err := lockDir(ctx, filepath.Join(o.CacheDir, "kernel"), o.Log)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	defer unlock()
	if k := newestCached(o.CacheDir, o.Need); k != nil {
		return k, nil
	}
	logf := o.Log
	if logf == nil {
		logf = func(string) {}
	}
	return fetchKernel(ctx, o.CacheDir, logf, o.Need)
}

// fetchKernel is downloadKernel; tests replace it (no network in unit tests).
var fetchKernel = downloadKernel

// lockDir takes an exclusive flock on dir/.lock (creating dir), waiting for another holder
// while ctx allows; the kernel releases it when its holder dies.
func lockDir(ctx context.Context, dir string, log func(string)) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("cache lock %s: %w", path, err)
		}
		if !said && log != nil {
			log("guest kernel: another vmstorbench is fetching it into " + dir + ", waiting")
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the cache lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func explicitKernel(o KernelOptions) (*Kernel, error) {
	if _, err := os.Stat(o.Kernel); err != nil {
		return nil, fmt.Errorf("guest kernel: %w", err)
	}
	ver := strings.TrimPrefix(filepath.Base(o.Kernel), "vmlinuz-")
	mods := o.ModulesDir
	if mods == "" {
		mods = filepath.Join(o.Root, "/lib/modules", ver)
	}
	if _, err := os.Stat(filepath.Join(mods, "kernel")); err != nil {
		return nil, fmt.Errorf("guest kernel %s: modules directory %s: %w (give --modules)", o.Kernel, mods, err)
	}
	return &Kernel{Version: ver, BzImage: o.Kernel, ModulesDir: mods, Source: "given"}, nil
}

var kernelVersionRe = regexp.MustCompile(`^6\.1\.0-([0-9]+)-amd64$`)

// hasModules reports whether every module in need is under the kernel's modules directory.
func hasModules(k *Kernel, need []string) bool {
	if len(need) == 0 {
		return true
	}
	_, err := resolveModules(k.ModulesDir, need)
	return err == nil
}

// newestInstalled looks for /boot/vmlinuz-6.1.0-N-amd64 with its modules (and need).
func newestInstalled(root string, need []string) *Kernel {
	matches, _ := filepath.Glob(filepath.Join(root, "/boot/vmlinuz-6.1.0-*-amd64"))
	var found []*Kernel
	for _, m := range matches {
		ver := strings.TrimPrefix(filepath.Base(m), "vmlinuz-")
		if !kernelVersionRe.MatchString(ver) {
			continue
		}
		mods := filepath.Join(root, "/lib/modules", ver)
		if _, err := os.Stat(filepath.Join(mods, "kernel")); err != nil {
			continue
		}
		k := &Kernel{Version: ver, BzImage: m, ModulesDir: mods, Source: "installed"}
		if hasModules(k, need) {
			found = append(found, k)
		}
	}
	return newest(found)
}

// newestCached looks in CacheDir/kernel/<package>/ for kernels extracted earlier.
func newestCached(cache string, need []string) *Kernel {
	dirs, _ := filepath.Glob(filepath.Join(cache, "kernel", "linux-image-*"))
	var found []*Kernel
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "version"))
		if err != nil {
			continue
		}
		ver := strings.TrimSpace(string(b))
		k := &Kernel{Version: ver, BzImage: filepath.Join(d, "vmlinuz"), ModulesDir: filepath.Join(d, "modules"), Source: "cache (" + filepath.Base(d) + ")"}
		if _, err := os.Stat(k.BzImage); err == nil && hasModules(k, need) {
			found = append(found, k)
		}
	}
	return newest(found)
}

func newest(ks []*Kernel) *Kernel {
	if len(ks) == 0 {
		return nil
	}
	abi := func(k *Kernel) int {
		m := kernelVersionRe.FindStringSubmatch(k.Version)
		if m == nil {
			return -1
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	sort.Slice(ks, func(i, j int) bool { return abi(ks[i]) > abi(ks[j]) })
	return ks[0]
}

// downloadKernel resolves the metapackage to the versioned kernel package, downloads it with
// apt-get, unpacks it with dpkg -x into a scratch directory and keeps only the kernel and the
// modules the guest needs under CacheDir/kernel/<package>.
func downloadKernel(ctx context.Context, cache string, log func(string), need []string) (*Kernel, error) {
	start := time.Now()
	for _, tool := range []string{"apt-cache", "apt-get", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s not found: install %s on a Debian host", ErrNoKernel, tool, KernelMetaPackage)
		}
	}
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", KernelMetaPackage).Output()
	if err != nil {
		return nil, fmt.Errorf("%w: apt-cache depends %s: %v (run apt-get update)", ErrNoKernel, KernelMetaPackage, err)
	}
	pkg := ""
	re := regexp.MustCompile(kernelPackageRe)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Depends:" && re.MatchString(f[1]) {
			pkg = f[1]
		}
	}
	if pkg == "" {
		return nil, fmt.Errorf("%w: %s does not depend on a linux-image-6.1.0-N-amd64 package here", ErrNoKernel, KernelMetaPackage)
	}
	size := ""
	if b, err := exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", pkg).Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Size: "); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					size = fmt.Sprintf(", %.0f MB", float64(n)/1e6)
				}
			}
		}
	}
	log(fmt.Sprintf("guest kernel: none installed or cached: apt-get download %s (%s%s, once) into %s …", pkg, KernelMetaPackage, size, filepath.Join(cache, "kernel")))
	if err := os.MkdirAll(filepath.Join(cache, "kernel"), 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	scratch, err := os.MkdirTemp(filepath.Join(cache, "kernel"), ".download-")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKernel, err)
	}
	defer os.RemoveAll(scratch)
	// apt-get download drops privileges to _apt when it can; a scratch directory it cannot
	// write only costs a warning.
	_ = os.Chmod(scratch, 0o755)
	cmd := exec.CommandContext(ctx, "apt-get", "-q", "download", pkg)
	cmd.Dir = scratch
	if b, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if bytes.Contains(b, []byte("404")) {
			// Debian replaces the versioned kernel package on the mirror; old lists name
			// one that is gone.
			hint = " (the package lists are out of date: run apt-get update)"
		}
		return nil, fmt.Errorf("%w: apt-get download %s: %v: %s%s", ErrNoKernel, pkg, err, lastLines(b, 3), hint)
	}
	debs, _ := filepath.Glob(filepath.Join(scratch, pkg+"_*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("%w: apt-get download %s left %d packages", ErrNoKernel, pkg, len(debs))
	}
	root := filepath.Join(scratch, "root")
	if b, err := exec.CommandContext(ctx, "dpkg", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: dpkg -x %s: %v: %s", ErrNoKernel, filepath.Base(debs[0]), err, lastLines(b, 3))
	}
	k := newestInstalled(root, nil)
	if k == nil {
		return nil, fmt.Errorf("%w: %s holds no vmlinuz-6.1.0-*-amd64 with modules", ErrNoKernel, pkg)
	}
	// Keep the modules of every guest kind (the DRBD node's too), so that one download
	// serves them all.
	keep := append(append(append([]string{}, GuestModules...), KeepModules...), need...)
	mods, err := resolveModules(k.ModulesDir, keep)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoKernel, pkg, err)
	}
	final := filepath.Join(cache, "kernel", pkg)
	stage := filepath.Join(scratch, "keep")
	if err := copyFile(k.BzImage, filepath.Join(stage, "vmlinuz"), 0o644); err != nil {
		return nil, err
	}
	for _, m := range mods {
		rel, _ := filepath.Rel(k.ModulesDir, m.Path)
		if err := copyFile(m.Path, filepath.Join(stage, "modules", rel), 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "version"), []byte(k.Version+"\n"), 0o644); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(final)
	if err := os.Rename(stage, final); err != nil {
		return nil, fmt.Errorf("guest kernel: %w", err)
	}
	log(fmt.Sprintf("guest kernel: %s kept in %s (%.1f s)", k.Version, final, time.Since(start).Seconds()))
	return &Kernel{Version: k.Version, BzImage: filepath.Join(final, "vmlinuz"), ModulesDir: filepath.Join(final, "modules"),
		Source: "apt-get download " + pkg}, nil
}

// Module is one kernel module file with its dependencies.
type Module struct {
	Name    string
	Path    string
	Depends []string
}

// resolveModules finds the named modules under dir and everything they depend on (from each
// module's .modinfo "depends=" entry, which is what depmod reads too, so modules.dep is not
// needed), and returns them in an order in which each one's dependencies come first.
func resolveModules(dir string, want []string) ([]Module, error) {
	paths := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".ko") {
			name := strings.ReplaceAll(strings.TrimSuffix(d.Name(), ".ko"), "-", "_")
			paths[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kernel modules %s: %w", dir, err)
	}
	var order []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("kernel modules: dependency cycle at %s", name)
		case 2:
			return nil
		}
		p, ok := paths[name]
		if !ok {
			if from == "" {
				return fmt.Errorf("kernel modules: %s.ko not found under %s (is it built in or compressed?)", name, dir)
			}
			return fmt.Errorf("kernel modules: %s (needed by %s) not found under %s", name, from, dir)
		}
		state[name] = 1
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, Module{Name: name, Path: p, Depends: deps})
		return nil
	}
	for _, w := range want {
		if err := visit(w, ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("kernel module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("kernel module %s: .modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, strings.ReplaceAll(d, "-", "_"))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// loadStages groups modules (in dependency order, as resolveModules returns them) into
// stages: each module's dependencies are in earlier stages, so the modules of one stage can
// be loaded at the same time.
func loadStages(mods []Module) [][]string {
	stage := map[string]int{}
	var stages [][]string
	for _, m := range mods {
		n := 0
		for _, d := range m.Depends {
			n = max(n, stage[d]+1)
		}
		stage[m.Name] = n
		for len(stages) <= n {
			stages = append(stages, nil)
		}
		stages[n] = append(stages[n], m.Name)
	}
	return stages
}
