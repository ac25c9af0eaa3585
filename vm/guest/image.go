// Package guest builds the small guest the migration scenarios boot: a Debian kernel
// (uncompressed to vmlinux for a fast PVH boot), and an initramfs holding busybox, the virtio
// modules and a static vmstorbench binary that runs as the in-guest agent. Images are cached
// under a directory by the hash of everything that goes into them.
package guest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// AgentPortName is the name of the virtio-serial port the agent and the host talk over.
const AgentPortName = "org.vmstorbench.agent.0"

// imageFormat changes whenever the layout or the init script changes, so old cache entries
// are not reused.
const imageFormat = "vmstorbench-guest/6"

// BootCmdline is the guest kernel command line. Everything after the console setup trims boot
// time under TCG (measured with initcall_debug and printk times): PCI interrupts routed from
// the BIOS tables rather than by the ACPI interpreter, and the interpreter itself not started
// (acpi_init: ~60 ms; the ACPI tables are still read early, for the HPET the TSC is checked
// against: without them the guest clock is jiffies, 4 ms steps); no patching of the kernel's
// lock prefixes to their uniprocessor form (noreplace-smp: ~110 ms, each is a text_poke with a
// TLB flush, which TCG pays for dearly; guest IOPS with and without it were the same within
// noise); no crypto self-tests, no W+X page walk, no IPv6, no certificate loading (modules
// load unverified), no delay-loop calibration, no security modules but capabilities (AppArmor,
// TOMOYO, IMA and the others set up file systems and hook every file operation), no zeroing of
// kernel allocations, no memory cgroup (charged for every page the guest allocates), no NUMA
// or hibernation probing, no PnP scan; no parsing of the kernel's BTF type data (only the BPF
// kfunc registrations ask for it: ~40 ms), no request_module for a TCP congestion algorithm
// (there is no modprobe to run), and no set-up of what the guest never uses: tracers, RTC,
// quota, TPM, hardware RNG, keyboard controller, VGA arbiter, MSR and perf devices, encrypted
// keys, the Intel SoC mailbox, the ACPI PM-timer clocksource, and the ACPI drivers that would
// only complain that ACPI is off. inet_init must stay (the kernel does not boot without it).
//
// The local-APIC timer is still calibrated (~110 ms of waiting on the PM timer): with
// noapictimer, which leaves the guest's ticks to the HPET, one of some 70 migrations left the
// guest's I/O stalled on the destination for over a minute. What remains, measured with printk
// times: QEMU's start and the firmware ~0.3 s, the kernel's patching of its own code
// (alternatives, return thunks) ~0.15 s, the APIC timer calibration ~0.1 s, its initcalls ~0.4
// s, freeing init memory ~0.1 s, the agent's Go start and modules ~0.15 s. The agent binary
// matters most: see AgentPackage.
const BootCmdline = "console=ttyS0 quiet panic=-1 pci=noacpi pnpacpi=off lpj=4000000 tsc=reliable no_timer_check " +
	"noreplace-smp " +
	"mitigations=off cryptomgr.notests rodata=off audit=0 nowatchdog ipv6.disable=1 lsm=capability init_on_alloc=0 " +
	"cgroup_disable=memory numa=off hibernate=no " +
	"initcall_blacklist=init_kprobe_trace,load_system_certificate_list,crypto_kdf108_init," +
	"cubictcp_register,init_trace_printk_function_export,stack_trace_init," +
	"init_blk_tracer,init_graph_tracefs,bpf_rstat_kfunc_init,init_encrypted,iosf_mbi_init," +
	"vga_arb_device_init,i8042_init,msr_init,init_ima,perf_event_sysfs_init,cmos_init,blake2s_mod_init," +
	"acpi_init,init_acpi_pm_clocksource,bpf_key_sig_kfuncs_init,kfunc_init,bpf_prog_test_run_init," +
	"bpf_tcp_ca_kfunc_init,tcp_congestion_default,trace_events_synth_init,dquot_init,add_rtc_cmos," +
	"tpm_init,hwrng_modinit,acpi_hed_driver_init,acpi_thermal_init,hpet_init,crb_acpi_driver_init,vmgenid_driver_init"

// Firmware is the firmware to boot the guest with when QEMU has it: qboot starts a direct
// kernel boot sooner than SeaBIOS (about 0.2 s less under TCG here).
func Firmware() string {
	for _, dir := range []string{"/usr/share/qemu", "/usr/share/seabios"} {
		if _, err := os.Stat(filepath.Join(dir, "qboot.rom")); err == nil {
			return "qboot.rom"
		}
	}
	return ""
}

// Image is a built guest.
type Image struct {
	Hash string `json:"hash"`
	Dir  string `json:"dir"`
	// Kernel is what QEMU boots: the vmlinux (KernelFormat "vmlinux-pvh") or the bzImage.
	Kernel        string    `json:"kernel"`
	KernelFormat  string    `json:"kernel_format"`
	Initrd        string    `json:"initrd"`
	Cmdline       string    `json:"cmdline"`
	KernelVersion string    `json:"kernel_version"`
	KernelSource  string    `json:"kernel_source"`
	Modules       []string  `json:"modules"`
	AgentSHA256   string    `json:"agent_sha256"`
	Built         time.Time `json:"built"`
	// Cached is true when the image came from the cache (not stored).
	Cached bool `json:"-"`
}

// Options control Build.
type Options struct {
	// CacheDir holds images, extracted kernels and downloaded packages.
	CacheDir string
	// Kernel says where to find the kernel (its CacheDir defaults to CacheDir).
	Kernel KernelOptions
	// Agent is the static vmstorbench binary to run in the guest (see AgentBinary).
	Agent string
	// Busybox is a static busybox; empty means the one from busybox-static on PATH.
	Busybox string
	// Rebuild ignores a cached image.
	Rebuild bool
	// Log receives one-line progress messages (may be nil).
	Log func(string)
	// Variant, if set, builds another kind of guest from the same parts (the testbed's DRBD
	// nodes): more modules, more files, another first process.
	Variant *Variant
}

// Variant is what a guest kind adds to or changes in the standard guest.
type Variant struct {
	// Name is part of the image hash and of the image's directory name.
	Name string
	// Modules are loaded after GuestModules, each alone in its own stage and in this order
	// (their dependencies first): soft dependencies, such as libcrc32c's on a crc32c
	// implementation, are not in modinfo's depends= and must be ordered by hand.
	Modules []string
	// Files are added to the initramfs.
	Files []File
	// Init replaces the kernel arguments that start the agent (rdinit=… -- args); the
	// modules to load are listed in /lib/modules/load.order.
	Init string
}

// File is one file of a Variant: Source (a host file) or Data, at Name in the guest.
type File struct {
	Name   string
	Source string
	Data   []byte
	Mode   uint32
}

// DefaultCacheDir is $VMSTORBENCH_CACHE, else the user's cache directory + vmstorbench/vm.
func DefaultCacheDir() string {
	if d := os.Getenv("VMSTORBENCH_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "vmstorbench", "vm")
}

// keepImages is how many images the cache keeps; older ones are removed after a build.
const keepImages = 4

// Build returns the guest image for opts, from the cache when everything that goes into it
// is unchanged.
func Build(ctx context.Context, o Options) (*Image, error) {
	logf := func(format string, a ...any) {
		if o.Log != nil {
			o.Log(fmt.Sprintf(format, a...))
		}
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.Kernel.CacheDir == "" {
		o.Kernel.CacheDir = o.CacheDir
	}
	if o.Kernel.Log == nil {
		o.Kernel.Log = o.Log
	}
	if o.Agent == "" {
		return nil, errors.New("guest image: no agent binary")
	}
	if err := requireStatic(o.Agent, "agent"); err != nil {
		return nil, err
	}
	bb := o.Busybox
	if bb == "" {
		p, err := exec.LookPath("busybox")
		if err != nil {
			return nil, errors.New("guest image: busybox not found: install the Debian package busybox-static")
		}
		bb = p
	}
	if err := requireStatic(bb, "busybox (install busybox-static)"); err != nil {
		return nil, err
	}
	k, err := FindKernel(ctx, o.Kernel)
	if err != nil {
		return nil, err
	}
	mods, err := resolveModules(k.ModulesDir, GuestModules)
	if err != nil {
		return nil, err
	}
	init := agentInit
	var extraStages [][]string
	if v := o.Variant; v != nil {
		init = v.Init
		have := map[string]bool{}
		for _, m := range mods {
			have[m.Name] = true
		}
		for _, want := range v.Modules {
			more, err := resolveModules(k.ModulesDir, []string{want})
			if err != nil {
				return nil, err
			}
			for _, m := range more {
				if !have[m.Name] {
					have[m.Name] = true
					mods = append(mods, m)
					extraStages = append(extraStages, []string{m.Name})
				}
			}
		}
	}

	// The image hash covers every input.
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s %s\n%s\n%s\n", imageFormat, BootCmdline, init, initScript(), k.Version)
	if v := o.Variant; v != nil {
		fmt.Fprintf(h, "variant %s\n", v.Name)
		for _, f := range v.Files {
			sum := fmt.Sprintf("%x", sha256.Sum256(f.Data))
			if f.Source != "" {
				if sum, err = fileSHA256(f.Source); err != nil {
					return nil, fmt.Errorf("guest image: %w", err)
				}
			}
			fmt.Fprintf(h, "file %s %o %s\n", f.Name, f.Mode, sum)
		}
	}
	bzSum, err := fileSHA256(k.BzImage)
	if err != nil {
		return nil, err
	}
	agentSum, err := fileSHA256(o.Agent)
	if err != nil {
		return nil, err
	}
	bbSum, err := fileSHA256(bb)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h, "kernel %s\nagent %s\nbusybox %s\n", bzSum, agentSum, bbSum)
	var modNames []string
	for _, m := range mods {
		s, err := fileSHA256(m.Path)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "module %s %s\n", m.Name, s)
		modNames = append(modNames, m.Name)
	}
	hash := hex.EncodeToString(h.Sum(nil))[:20]
	dir := filepath.Join(o.CacheDir, "images", hash)
	if o.Variant != nil {
		dir = filepath.Join(o.CacheDir, "images", o.Variant.Name+"-"+hash)
	}
	if !o.Rebuild {
		if img, err := loadImage(dir); err == nil {
			img.Cached = true
			now := time.Now()
			_ = os.Chtimes(dir, now, now) // most recently used: kept by the pruning
			return img, nil
		}
	}

	// The vmlinux depends only on the bzImage: cache it by its hash.
	kernelPath, kernelFormat := k.BzImage, "bzImage"
	vmlinux := filepath.Join(o.CacheDir, "vmlinux", bzSum[:20]+".vmlinux")
	if _, err := os.Stat(vmlinux); err != nil {
		logf("extracting vmlinux from %s", k.BzImage)
		if err := os.MkdirAll(filepath.Dir(vmlinux), 0o755); err != nil {
			return nil, err
		}
		if err := extractVmlinux(ctx, k.BzImage, vmlinux); err != nil {
			logf("%v; booting the bzImage (about twice as slow)", err)
			vmlinux = ""
		}
	}
	if vmlinux != "" {
		kernelPath, kernelFormat = vmlinux, "vmlinux-pvh"
	}

	logf("building initramfs: busybox, %d modules, agent", len(mods))
	if err := os.MkdirAll(filepath.Join(o.CacheDir, "images"), 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Join(o.CacheDir, "images"), ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	entries := []cpioEntry{
		{Name: "init", Mode: 0o755, Data: []byte(initScript())},
		{Name: "bin/busybox", Mode: 0o755, Source: bb},
		{Name: "bin/vmstorbench", Mode: 0o755, Source: o.Agent},
		{Name: "dev/console", Mode: 0o600, CharDev: &[2]uint32{5, 1}},
		{Name: "proc", Mode: 0o755, Dir: true},
		{Name: "sys", Mode: 0o755, Dir: true},
		{Name: "tmp", Mode: 0o1777, Dir: true},
	}
	var loadOrder strings.Builder
	inExtra := map[string]bool{}
	for _, st := range extraStages {
		inExtra[st[0]] = true
	}
	var base []Module
	for _, m := range mods {
		if !inExtra[m.Name] {
			base = append(base, m)
		}
	}
	for _, st := range append(loadStages(base), extraStages...) {
		loadOrder.WriteString(strings.Join(st, " ") + "\n")
	}
	if v := o.Variant; v != nil {
		for _, f := range v.Files {
			entries = append(entries, cpioEntry{Name: strings.TrimPrefix(f.Name, "/"), Mode: f.Mode, Source: f.Source, Data: f.Data})
		}
	}
	entries = append(entries, cpioEntry{Name: "lib/modules/load.order", Mode: 0o644, Data: []byte(loadOrder.String())})
	for _, m := range mods {
		b, err := os.ReadFile(m.Path)
		if err != nil {
			return nil, err
		}
		entries = append(entries, cpioEntry{Name: "lib/modules/" + m.Name + ".ko", Mode: 0o644, Data: stripModuleSignature(b)})
	}
	f, err := os.Create(filepath.Join(stage, "initrd.cpio"))
	if err != nil {
		return nil, err
	}
	err = writeCPIO(f, entries)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	img := &Image{
		Hash: hash, Dir: dir, Kernel: kernelPath, KernelFormat: kernelFormat,
		Initrd: filepath.Join(dir, "initrd.cpio"), Cmdline: BootCmdline + " " + init,
		KernelVersion: k.Version, KernelSource: k.Source, Modules: modNames,
		AgentSHA256: agentSum, Built: time.Now().UTC(),
	}
	b, _ := json.MarshalIndent(img, "", "  ")
	if err := os.WriteFile(filepath.Join(stage, "image.json"), b, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(stage, dir); err != nil {
		// Another process built the same image at the same time: use theirs.
		if existing, lerr := loadImage(dir); lerr == nil {
			return existing, nil
		}
		return nil, fmt.Errorf("guest image: %w", err)
	}
	// Each kind of image is pruned on its own: building a DRBD node image must not push the
	// migration guests' images out of a cache several users share, nor the other way round.
	pruneImages(filepath.Join(o.CacheDir, "images"), keepImages, imageKind(filepath.Base(dir)))
	return img, nil
}

func loadImage(dir string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, "image.json"))
	if err != nil {
		return nil, err
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return nil, err
	}
	img.Dir = dir
	img.Initrd = filepath.Join(dir, "initrd.cpio")
	for _, p := range []string{img.Kernel, img.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return nil, err
		}
	}
	return &img, nil
}

// imageKind is the variant part of an image directory's name ("drbdnode-<hash>"), "" for
// the standard guest ("<hash>").
func imageKind(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		return name[:i]
	}
	return ""
}

// pruneGrace is how long an image stays after its last use whatever keep says: another
// process (a suite, a test binary built from another tree) may be booting it right now, and
// a pruned image fails its boots mid-suite.
const pruneGrace = time.Hour

// pruneImages removes all but the keep most recently used images of kind, sparing any
// used within pruneGrace.
func pruneImages(dir string, keep int, kind string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type aged struct {
		path string
		t    time.Time
	}
	var imgs []aged
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || imageKind(e.Name()) != kind {
			continue
		}
		if info, err := e.Info(); err == nil {
			imgs = append(imgs, aged{filepath.Join(dir, e.Name()), info.ModTime()})
		}
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].t.After(imgs[j].t) })
	for i := keep; i < len(imgs); i++ {
		if time.Since(imgs[i].t) > pruneGrace {
			_ = os.RemoveAll(imgs[i].path)
		}
	}
}

// agentInit starts the agent as the guest's first process (the kernel passes what follows
// "--" to it): no shell, no mount processes. /init, the same steps as a busybox script,
// stays in the image for booting by hand (rdinit=/init) and debugging.
const agentInit = "rdinit=/bin/vmstorbench -- agent --init --port " + AgentPortName + " --modules /lib/modules/load.order"

// initScript is the guest's /init: mount the kernel filesystems and run the agent, which
// loads the modules itself (one process instead of one insmod per module: forks are slow
// under TCG). If the agent ends, the guest powers off.
func initScript() string {
	return `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/vmstorbench agent --port ` + AgentPortName + ` --modules /lib/modules/load.order
echo "vmstorbench agent exited with status $?"
/bin/busybox poweroff -f
`
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// IsStatic reports whether path is an ELF executable without a program interpreter, i.e.
// one that runs in a guest that has no C library.
func IsStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return f.Machine == elf.EM_X86_64, nil
}

func requireStatic(path, what string) error {
	ok, err := IsStatic(path)
	if err != nil {
		return fmt.Errorf("guest image: %s %s: %w", what, path, err)
	}
	if !ok {
		return fmt.Errorf("guest image: %s %s is not a static x86-64 executable", what, path)
	}
	return nil
}

// moduleSigMagic ends a signed kernel module.
const moduleSigMagic = "~Module signature appended~\n"

// stripModuleSignature removes a module's appended signature. The guest has no keys to check
// it against (certificate loading is skipped to boot faster), but the kernel would still
// parse the signature and hash the whole module under TCG before finding that out; an
// unsigned module loads at once (the kernel notes it is "tainted", which is harmless here).
func stripModuleSignature(b []byte) []byte {
	// struct module_signature: algo, hash, id_type, signer_len, key_id_len, pad[3] (8 bytes),
	// then sig_len (big-endian uint32), then the magic.
	const sigInfoLen = 12
	if !bytes.HasSuffix(b, []byte(moduleSigMagic)) || len(b) < len(moduleSigMagic)+sigInfoLen {
		return b
	}
	end := len(b) - len(moduleSigMagic)
	info := b[end-sigInfoLen : end]
	sigLen := int(binary.BigEndian.Uint32(info[8:]))
	start := end - sigInfoLen - sigLen
	if sigLen <= 0 || start < 0 {
		return b
	}
	return b[:start]
}
