// Package qemu starts QEMU virtual machines for the migration scenarios and drives them over
// QMP. Each VM is one qemu-system-x86_64 process started through the testbed's process
// helper: its own process group, output in a log file, stopped by PID.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vmstorbench/vmstorbench/testbed"
)

// Binary finds qemu-system-x86_64 or names the Debian package that provides it.
func Binary() (string, error) { return testbed.LookPath("qemu-system-x86_64", "qemu-system-x86") }

// Drive is the VM's disk as QEMU opens it.
type Drive struct {
	// File is what QEMU opens: a path, or a URL of one of QEMU's network block drivers
	// (nfs://, nbd://). It may be empty when Options give the protocol layer field by field
	// ("file.driver=iscsi", "file.portal=...").
	File string
	// Format is "raw" or "qcow2".
	Format string
	// Direct opens the image with O_DIRECT / no host cache (cache=none), which migration on
	// shared storage needs for a consistent view from both hosts.
	Direct bool
	// Options are extra -drive options ("file.user=bench", "file.password-secret=sec0").
	Options []string
	// Objects are -object definitions the drive needs (secrets).
	Objects []string
}

// Config describes one VM.
type Config struct {
	// Name is "source" or "destination"; it names log files and prefixes errors.
	Name string
	// Dir holds the VM's sockets and logs; it must exist and its path be short (unix
	// socket paths are limited to 107 bytes).
	Dir string
	// Binary is the QEMU binary; empty means Binary().
	Binary string
	// Accel is "tcg" or "kvm".
	Accel     string
	MemoryMiB int
	CPUs      int
	// CPU is the -cpu model; empty means "host" with KVM and QEMU's default with TCG.
	CPU string
	// Firmware is the -bios image ("qboot.rom": a minimal firmware that starts a -kernel
	// boot faster than SeaBIOS under TCG); empty means QEMU's default.
	Firmware string
	// Kernel, Initrd and Append boot the guest directly (no firmware disk boot).
	Kernel string
	Initrd string
	Append string
	Drive  *Drive
	// AgentPortName is the virtio-serial port name the in-guest agent looks for; the host
	// side is a unix socket AgentSocket() that QEMU listens on.
	AgentPortName string
	// Incoming starts the VM waiting for an incoming migration ("defer": set up later with
	// migrate-incoming).
	Incoming string
	// Paused starts the VM stopped (-S): after an incoming migration it stays paused until
	// "cont".
	Paused bool
	// Objects are extra -object definitions (TLS credentials).
	Objects []string
	// Extra are extra arguments, appended last.
	Extra []string
}

// QMPSocket is the path of the VM's QMP socket.
func (c *Config) QMPSocket() string { return filepath.Join(c.Dir, c.Name+".qmp") }

// AgentSocket is the path of the unix socket behind the agent's virtio-serial port.
func (c *Config) AgentSocket() string { return filepath.Join(c.Dir, c.Name+".agent") }

// ConsoleLog is the file the guest's serial console is written to.
func (c *Config) ConsoleLog() string { return filepath.Join(c.Dir, c.Name+".console") }

// tcgRAMShortfall is what a TCG guest gets less than MemoryMiB. QEMU 7.2 syncs the
// migration dirty bitmap of a RAM block whose size is a multiple of 256 KiB (64 pages, one
// bitmap word) on a fast path that clears the bits without re-arming TCG's write tracking:
// the vCPU's TLB entries stay writable, so what the guest writes after a sync is never
// marked dirty and pre-copy leaves stale pages on the destination. Measured here with the
// oltp workload and --check-memory: 60–211 of 65,536 pages differed in 27 of 28 runs
// with 256 MiB (the destination kernel then crashed), 0 in 19 of 19 with 8 or 64 KiB less.
// Any other size takes the page-by-page path, which resets the TLB entries. QEMU rounds
// -m up to 8 KiB, hence 8 KiB. KVM tracks dirty pages in the host kernel and gets the
// full size.
const tcgRAMShortfall = 8 << 10

// RAMBytes is the guest RAM QEMU is started with: MemoryMiB (256 if unset), less
// tcgRAMShortfall under TCG.
func (c *Config) RAMBytes() int64 {
	mem := int64(c.MemoryMiB)
	if mem <= 0 {
		mem = 256
	}
	if c.Accel == "kvm" {
		return mem << 20
	}
	return mem<<20 - tcgRAMShortfall
}

// Args builds QEMU's command line (without the binary).
func (c *Config) Args() ([]string, error) {
	if c.Name == "" || c.Dir == "" {
		return nil, errors.New("qemu: config needs a name and a directory")
	}
	for _, p := range []string{c.QMPSocket(), c.AgentSocket()} {
		if len(p) > 107 {
			return nil, fmt.Errorf("qemu: socket path %s is longer than 107 bytes: use a shorter directory", p)
		}
	}
	accel := c.Accel
	if accel == "" {
		accel = "tcg"
	}
	cpus := c.CPUs
	if cpus <= 0 {
		cpus = 1
	}
	a := []string{
		"-name", "vmstorbench-" + c.Name,
		"-machine", "pc",
		// No hot-plug: the ACPI table the guest interprets at boot shrinks to half (about
		// 50 ms less under TCG). Source and destination get the same machine.
		"-global", "PIIX4_PM.acpi-root-pci-hotplug=off",
		"-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off",
		"-global", "PIIX4_PM.memory-hotplug-support=off",
		"-accel", accel,
		"-m", strconv.FormatInt(c.RAMBytes()>>10, 10) + "K",
		"-smp", strconv.Itoa(cpus),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-qmp", "unix:" + c.QMPSocket() + ",server=on,wait=off",
		"-serial", "file:" + c.ConsoleLog(),
	}
	switch {
	case c.CPU != "":
		a = append(a, "-cpu", c.CPU)
	case accel == "kvm":
		a = append(a, "-cpu", "host")
	}
	if c.Firmware != "" {
		a = append(a, "-bios", c.Firmware)
	}
	if c.Kernel != "" {
		a = append(a, "-kernel", c.Kernel)
		if c.Initrd != "" {
			a = append(a, "-initrd", c.Initrd)
		}
		if c.Append != "" {
			a = append(a, "-append", c.Append)
		}
	}
	if d := c.Drive; d != nil {
		format := d.Format
		if format == "" {
			format = "raw"
		}
		spec := "if=none,id=disk0,format=" + format
		if d.File != "" {
			spec += ",file=" + escapeOpt(d.File)
		}
		if d.Direct {
			spec += ",cache=none"
		}
		for _, o := range d.Options {
			spec += "," + o
		}
		for _, o := range d.Objects {
			a = append(a, "-object", o)
		}
		a = append(a, "-drive", spec, "-device", "virtio-blk-pci,drive=disk0,id=vd0")
	}
	if c.AgentPortName != "" {
		a = append(a,
			"-device", "virtio-serial-pci,id=vser0",
			"-chardev", "socket,id=agent0,path="+escapeOpt(c.AgentSocket())+",server=on,wait=off",
			"-device", "virtserialport,bus=vser0.0,chardev=agent0,name="+c.AgentPortName)
	}
	for _, o := range c.Objects {
		a = append(a, "-object", o)
	}
	if c.Incoming != "" {
		a = append(a, "-incoming", c.Incoming)
	}
	if c.Paused {
		a = append(a, "-S")
	}
	return append(a, c.Extra...), nil
}

// escapeOpt escapes commas for QEMU's option syntax (a literal comma is written twice).
func escapeOpt(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// VM is a running QEMU process with its QMP connection.
type VM struct {
	Config  Config
	Proc    *testbed.Process
	QMP     *QMP
	Started time.Time
}

// Start starts QEMU and connects to its QMP socket. events receives QMP events (may be nil).
func Start(ctx context.Context, cfg Config, events func(Event)) (*VM, error) {
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	args, err := cfg.Args()
	if err != nil {
		return nil, err
	}
	for _, p := range []string{cfg.QMPSocket(), cfg.AgentSocket()} {
		_ = os.Remove(p)
	}
	started := time.Now()
	proc, err := testbed.StartProcess(cfg.Dir, "qemu-"+cfg.Name, nil, append([]string{bin}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("qemu %s: %w", cfg.Name, err)
	}
	vm := &VM{Config: cfg, Proc: proc, Started: started}
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Watch for QEMU exiting (bad arguments, missing files) while QMP connects.
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-qctx.Done():
				return
			case <-t.C:
				if proc.Exited() {
					cancel()
					return
				}
			}
		}
	}()
	q, err := DialQMP(qctx, cfg.Name, cfg.QMPSocket(), events)
	if err != nil {
		if proc.Exited() {
			err = fmt.Errorf("qemu %s exited at start: %s", cfg.Name, strings.TrimSpace(testbed.TailLog(proc.LogPath, 600)))
		}
		_ = vm.Stop()
		return nil, err
	}
	vm.QMP = q
	return vm, nil
}

// PID is QEMU's process ID.
func (vm *VM) PID() int { return vm.Proc.PID() }

// Exited reports whether QEMU has ended.
func (vm *VM) Exited() bool { return vm.Proc.Exited() }

// Done is closed when QEMU has ended (for whatever reason).
func (vm *VM) Done() <-chan struct{} { return vm.Proc.Done() }

// ExitReason says how QEMU ended ("signal: killed", "exit status 1", "exit status 0"), ""
// while it runs.
func (vm *VM) ExitReason() string {
	if !vm.Proc.Exited() {
		return ""
	}
	if err := vm.Proc.ExitErr(); err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// Log returns the tail of QEMU's own log (its stderr), for error messages.
func (vm *VM) Log() string { return strings.TrimSpace(testbed.TailLog(vm.Proc.LogPath, 800)) }

// Console returns the tail of the guest's serial console.
func (vm *VM) Console() string { return vm.ConsoleTail(2000) }

// ConsoleTail returns the last n bytes of the guest's serial console.
func (vm *VM) ConsoleTail(n int64) string {
	return strings.TrimSpace(testbed.TailLog(vm.Config.ConsoleLog(), n))
}

// Status returns QEMU's run state ("running", "paused", "inmigrate", "postmigrate",
// "internal-error", ...).
func (vm *VM) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := vm.QMP.Execute(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// Stop ends QEMU: "quit" over QMP, then SIGTERM/SIGKILL by PID, and removes its sockets.
// It is safe to call more than once and on a VM whose start failed.
func (vm *VM) Stop() error {
	if vm == nil {
		return nil
	}
	if vm.QMP != nil && !vm.Proc.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = vm.QMP.Execute(ctx, "quit", nil, nil)
		cancel()
		deadline := time.Now().Add(2 * time.Second)
		for !vm.Proc.Exited() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	err := vm.Proc.Stop(3 * time.Second)
	if vm.QMP != nil {
		vm.QMP.Close()
	}
	for _, p := range []string{vm.Config.QMPSocket(), vm.Config.AgentSocket()} {
		_ = os.Remove(p)
	}
	return err
}

// Kill ends QEMU without asking: SIGTERM, SIGKILL after grace. For a QEMU that cannot
// answer "quit" (stuck on a storage server that is gone), where Stop would wait for QMP first.
func (vm *VM) Kill(grace time.Duration) error {
	if vm == nil {
		return nil
	}
	err := vm.Proc.Stop(grace)
	if vm.QMP != nil {
		vm.QMP.Close()
	}
	for _, p := range []string{vm.Config.QMPSocket(), vm.Config.AgentSocket()} {
		_ = os.Remove(p)
	}
	return err
}

// Version returns QEMU's version string ("7.2.x"), for the result document.
func Version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	for i, w := range f {
		if w == "version" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return strings.TrimSpace(line)
}
