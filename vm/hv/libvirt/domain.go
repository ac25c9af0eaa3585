package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// AgentChannelName is the virtio-serial port the in-guest agent talks over (the same name
// as vm/guest.AgentPortName: this package does not import the guest builder).
const AgentChannelName = "org.vmstorbench.agent.0"

// Domain types.
const (
	TypeQEMU = "qemu" // TCG: works everywhere, slowly
	TypeKVM  = "kvm"
)

// tcgRAMShortfall is what a TCG guest gets less than its memory size, for the reason
// vm/qemu's constant of the same name gives (QEMU 7.2 loses dirty pages of RAM blocks whose
// size is a multiple of 256 KiB under TCG). libvirt rounds <memory> to whole MiB, so the
// shortfall is applied on QEMU's command line (see tcgMemoryArgs).
const tcgRAMShortfall = 8 << 10

// Spec is a transient domain booted from a kernel and an initramfs.
type Spec struct {
	// Name is the domain's name; "" makes one up ("vsb-" and random hex).
	Name string
	// Type is TypeQEMU (default) or TypeKVM.
	Type      string
	MemoryMiB int
	CPUs      int
	// Kernel, Initrd and Cmdline boot the guest directly, as paths on the hypervisor's host.
	// On a local daemon Boot stages the files where the daemon's user can read them.
	Kernel, Initrd, Cmdline string
	// Firmware is the BIOS image on the hypervisor's host; "" is QEMU's qboot on a local
	// daemon when it is installed (it starts a direct kernel boot sooner than SeaBIOS), else
	// QEMU's default.
	Firmware string
	// Disk is the guest's disk (nil: none).
	Disk *Disk
	// NoAgentChannel leaves out the agent's virtio-serial channel.
	NoAgentChannel bool
	// ConsoleLog, if set, is where the guest's serial console is written (a path on the
	// hypervisor's host that its QEMU may create); on a local daemon Boot chooses one unless
	// NoConsoleLog.
	ConsoleLog   string
	NoConsoleLog bool
}

// Disk is the guest's disk as the hypervisor opens it.
type Disk struct {
	// Source is a path on the hypervisor's host (a file, or a block device under /dev) or
	// the URL of a network disk: nbd://HOST:PORT/EXPORT, iscsi://HOST:PORT/IQN/LUN or
	// nfs://HOST/PATH.
	Source string
	// Format is "raw" (default) or "qcow2".
	Format string
	// Cache is libvirt's cache mode; "" is "none" (O_DIRECT), which migration with shared
	// storage needs.
	Cache string
}

// diskXML renders d as a virtio disk vda.
func diskXML(d *Disk) (libvirtxml.DomainDisk, error) {
	format, cache := d.Format, d.Cache
	if format == "" {
		format = "raw"
	}
	if cache == "" {
		cache = "none"
	}
	out := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format, Cache: cache},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		Source: &libvirtxml.DomainDiskSource{},
	}
	src := d.Source
	if strings.HasPrefix(src, "/") {
		if strings.HasPrefix(src, "/dev/") {
			out.Source.Block = &libvirtxml.DomainDiskSourceBlock{Dev: src}
		} else {
			out.Source.File = &libvirtxml.DomainDiskSourceFile{File: src}
		}
		return out, nil
	}
	u, err := url.Parse(src)
	if err != nil || u.Host == "" {
		return out, fmt.Errorf("disk %s: want a path or nbd://, iscsi:// or nfs:// URL", Redact(src))
	}
	if u.User != nil {
		return out, fmt.Errorf("disk %s: credentials for libvirt network disks are not supported (they need a libvirt secret); use a disk without authentication", Redact(src))
	}
	host := libvirtxml.DomainDiskSourceHost{Name: u.Hostname(), Port: u.Port()}
	net := &libvirtxml.DomainDiskSourceNetwork{Protocol: u.Scheme, Hosts: []libvirtxml.DomainDiskSourceHost{host}}
	switch u.Scheme {
	case "nbd":
		net.Name = strings.TrimPrefix(u.Path, "/")
		if host.Port == "" {
			net.Hosts[0].Port = "10809"
		}
	case "iscsi":
		net.Name = strings.TrimPrefix(u.Path, "/")
		if host.Port == "" {
			net.Hosts[0].Port = "3260"
		}
	case "nfs":
		net.Name = u.Path
		net.Hosts[0].Port = ""
	default:
		return out, fmt.Errorf("disk %s: protocol %s is not supported here (want nbd, iscsi or nfs)", Redact(src), u.Scheme)
	}
	out.Source.Network = net
	return out, nil
}

// DomainXML renders spec as libvirt domain XML.
func DomainXML(spec Spec) (string, error) {
	if spec.Name == "" || spec.Kernel == "" {
		return "", errors.New("libvirt: a transient domain needs a name and a kernel")
	}
	typ := spec.Type
	if typ == "" {
		typ = TypeQEMU
	}
	if typ != TypeQEMU && typ != TypeKVM {
		return "", fmt.Errorf("libvirt: domain type %q (want %s or %s)", typ, TypeQEMU, TypeKVM)
	}
	mem := spec.MemoryMiB
	if mem <= 0 {
		mem = 256
	}
	cpus := spec.CPUs
	if cpus <= 0 {
		cpus = 1
	}
	zero := uint(0)
	d := libvirtxml.Domain{
		Type:   typ,
		Name:   spec.Name,
		Memory: &libvirtxml.DomainMemory{Value: uint(mem), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(cpus)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  spec.Kernel,
			Initrd:  spec.Initrd,
			Cmdline: spec.Cmdline,
		},
		// ACPI tables give the guest its HPET, against which the kernel checks the TSC;
		// without them its clock ticks in 4 ms steps (see vm/guest.BootCmdline).
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			MemBalloon:  &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if typ == TypeKVM {
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	}
	if spec.Firmware != "" {
		d.OS.Loader = &libvirtxml.DomainLoader{Type: "rom", Path: spec.Firmware}
	}
	if spec.Disk != nil {
		disk, err := diskXML(spec.Disk)
		if err != nil {
			return "", fmt.Errorf("libvirt: %w", err)
		}
		d.Devices.Disks = append(d.Devices.Disks, disk)
	}
	if !spec.NoAgentChannel {
		d.Devices.Controllers = append(d.Devices.Controllers, libvirtxml.DomainController{Type: "virtio-serial", Index: &zero})
		// No path: libvirt makes one up per host (under its channel directory), so source
		// and destination on one machine do not collide; ReadAgentChannel reads it back.
		d.Devices.Channels = append(d.Devices.Channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: AgentChannelName}},
		})
	}
	if spec.ConsoleLog != "" {
		d.Devices.Serials = []libvirtxml.DomainSerial{{
			Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: spec.ConsoleLog}},
			Target: &libvirtxml.DomainSerialTarget{Port: &zero},
		}}
	}
	if typ == TypeQEMU {
		d.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{Args: tcgMemoryArgs(int64(mem) << 20)}
	}
	// The same trims of the boot ACPI table as vm/qemu (no PCI or memory hot-plug): about
	// 50 ms less under TCG, and both sides get the same machine.
	for _, g := range []string{"PIIX4_PM.acpi-root-pci-hotplug=off", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off", "PIIX4_PM.memory-hotplug-support=off"} {
		if d.QEMUCommandline == nil {
			d.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{}
		}
		d.QEMUCommandline.Args = append(d.QEMUCommandline.Args, libvirtxml.DomainQEMUCommandlineArg{Value: "-global"}, libvirtxml.DomainQEMUCommandlineArg{Value: g})
	}
	return d.Marshal()
}

// tcgMemoryArgs give the guest mem less tcgRAMShortfall: libvirt backs guest RAM with a
// memory-backend object ("pc.ram") of whole MiB; these arguments add a backend of the
// smaller size and make the machine use it and -m agree (QEMU takes the last -machine
// memory-backend and -m given). The unused pc.ram is never touched, so it costs no host
// memory, and it is not migrated (only mapped backends are).
func tcgMemoryArgs(mem int64) []libvirtxml.DomainQEMUCommandlineArg {
	k := strconv.FormatInt((mem-tcgRAMShortfall)>>10, 10) + "K"
	var out []libvirtxml.DomainQEMUCommandlineArg
	for _, a := range []string{"-object", "memory-backend-ram,id=vsb.ram,size=" + k, "-machine", "memory-backend=vsb.ram", "-m", k} {
		out = append(out, libvirtxml.DomainQEMUCommandlineArg{Value: a})
	}
	return out
}

// Domain is a domain on one daemon.
type Domain struct {
	Conn *Conn
	Name string
	// Transient is true for domains this package started (Destroy removes them).
	Transient bool
	d         golibvirt.Domain
	// stage is the directory Boot staged the image in ("" for none); Destroy removes it.
	stage *stageDir
	// console is the guest's console file on this machine ("" when unknown).
	console string
}

func randomName() string {
	// Short: libvirt puts the name into the agent channel's socket path (108 bytes at most).
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "vsb-" + hex.EncodeToString(b)
}

// Boot starts spec as a transient domain (it disappears when destroyed). On a local daemon
// the kernel and initramfs are staged first into a directory the daemon's user can read, and
// the console goes to a file there. On any error nothing is left running.
func (c *Conn) Boot(ctx context.Context, spec Spec) (_ *Domain, err error) {
	if spec.Name == "" {
		spec.Name = randomName()
	}
	var st *stageDir
	if c.local {
		if st, err = stage(spec.Kernel, spec.Initrd); err != nil {
			return nil, fmt.Errorf("libvirt: stage the guest image: %w", err)
		}
		defer func() {
			if err != nil {
				st.remove()
			}
		}()
		spec.Kernel, spec.Initrd = st.files[0], st.files[1]
		if spec.ConsoleLog == "" && !spec.NoConsoleLog {
			spec.ConsoleLog = st.consolePath(spec.Name + ".console")
		}
		if spec.Firmware == "" {
			spec.Firmware = localQboot()
		}
		if spec.Firmware != "" && !readableByAll(spec.Firmware) {
			spec.Firmware = ""
		}
	}
	x, err := DomainXML(spec)
	if err != nil {
		return nil, err
	}
	dom := &Domain{Conn: c, Name: spec.Name, Transient: true, stage: st}
	if st != nil {
		dom.console = spec.ConsoleLog
	}
	// Starting QEMU under load takes seconds: allow more than one call's usual time.
	err = c.call(ctx, 2*DefaultCallTimeout, "start domain "+spec.Name, func() error {
		var err error
		dom.d, err = c.l.DomainCreateXML(x, 0)
		return err
	})
	if err != nil {
		// A deadline that passed while libvirt was starting it may leave it running.
		if !errors.As(err, new(*Error)) {
			dom.destroyQuietly()
		}
		return nil, err
	}
	return dom, nil
}

// Lookup finds an existing domain by name.
func (c *Conn) Lookup(ctx context.Context, name string) (*Domain, error) {
	dom := &Domain{Conn: c, Name: name}
	err := c.call(ctx, 0, "look up domain "+name, func() error {
		var err error
		dom.d, err = c.l.DomainLookupByName(name)
		return err
	})
	if IsCode(err, golibvirt.ErrNoDomain) {
		return nil, fmt.Errorf("libvirt %s: no domain named %q", c.Redacted, name)
	}
	if err != nil {
		return nil, err
	}
	return dom, nil
}

// XML is the domain's live XML; flags as virDomainGetXMLDesc.
func (d *Domain) XML(ctx context.Context, flags golibvirt.DomainXMLFlags) (string, error) {
	var x string
	err := d.Conn.call(ctx, 0, "XML of "+d.Name, func() error {
		var err error
		x, err = d.Conn.l.DomainGetXMLDesc(d.d, flags)
		return err
	})
	return x, err
}

// AgentChannel is where the host side of a domain's agent channel is.
type AgentChannel struct {
	// Network is "unix" or "tcp"; Address is what to dial.
	Network, Address string
}

// ReadAgentChannel finds the agent's virtio-serial channel (named AgentChannelName) in the
// domain's live XML; ok is false when the domain has none, or none the host can reach
// (another channel backend than a listening unix socket or TCP port).
func (d *Domain) ReadAgentChannel(ctx context.Context) (AgentChannel, bool, error) {
	x, err := d.XML(ctx, 0)
	if err != nil {
		return AgentChannel{}, false, err
	}
	ch, ok, err := agentChannel(x, d.Conn.uri)
	if err != nil {
		return ch, false, fmt.Errorf("libvirt %s: domain %s: %w", d.Conn.Redacted, d.Name, err)
	}
	return ch, ok, nil
}

// agentChannel reads the agent channel from domain XML x; a TCP channel bound to a wildcard
// or loopback address is reached at the host of uri (the daemon's).
func agentChannel(x, uri string) (AgentChannel, bool, error) {
	var dx libvirtxml.Domain
	if err := dx.Unmarshal(x); err != nil {
		return AgentChannel{}, false, fmt.Errorf("parse domain XML: %w", err)
	}
	if dx.Devices == nil {
		return AgentChannel{}, false, nil
	}
	for _, c := range dx.Devices.Channels {
		if c.Target == nil || c.Target.VirtIO == nil || c.Target.VirtIO.Name != AgentChannelName || c.Source == nil {
			continue
		}
		switch {
		case c.Source.UNIX != nil && c.Source.UNIX.Path != "" && c.Source.UNIX.Mode != "connect":
			return AgentChannel{Network: "unix", Address: c.Source.UNIX.Path}, true, nil
		case c.Source.TCP != nil && c.Source.TCP.Mode != "connect" && c.Source.TCP.Service != "":
			host := c.Source.TCP.Host
			if ip := net.ParseIP(host); host == "" || (ip != nil && (ip.IsUnspecified() || ip.IsLoopback())) {
				if u, err := url.Parse(uri); err == nil && u.Hostname() != "" {
					host = u.Hostname()
				} else if host == "" || ip.IsUnspecified() {
					host = "127.0.0.1"
				}
			}
			return AgentChannel{Network: "tcp", Address: net.JoinHostPort(host, c.Source.TCP.Service)}, true, nil
		}
	}
	return AgentChannel{}, false, nil
}

// State is the domain's state as libvirt names it ("running", "paused", "shutoff", …) with
// the reason code.
func (d *Domain) State(ctx context.Context) (string, int32, error) {
	var st, reason int32
	err := d.Conn.call(ctx, 0, "state of "+d.Name, func() error {
		var err error
		st, reason, err = d.Conn.l.DomainGetState(d.d, 0)
		return err
	})
	if err != nil {
		return "", 0, err
	}
	return stateName(golibvirt.DomainState(st)), reason, nil
}

func stateName(s golibvirt.DomainState) string {
	switch s {
	case golibvirt.DomainRunning:
		return "running"
	case golibvirt.DomainBlocked:
		return "blocked"
	case golibvirt.DomainPaused:
		return "paused"
	case golibvirt.DomainShutdown:
		return "shutdown"
	case golibvirt.DomainShutoff:
		return "shutoff"
	case golibvirt.DomainCrashed:
		return "crashed"
	case golibvirt.DomainPmsuspended:
		return "pmsuspended"
	}
	return "nostate"
}

// Pause suspends the domain's vCPUs; Resume continues them.
func (d *Domain) Pause(ctx context.Context) error {
	return d.Conn.call(ctx, 0, "suspend "+d.Name, func() error { return d.Conn.l.DomainSuspend(d.d) })
}

// Resume continues a paused domain.
func (d *Domain) Resume(ctx context.Context) error {
	return d.Conn.call(ctx, 0, "resume "+d.Name, func() error { return d.Conn.l.DomainResume(d.d) })
}

// Destroy stops the domain at once (a transient domain is then gone) and removes what Boot
// staged. A domain that is already gone is not an error.
func (d *Domain) Destroy(ctx context.Context) error {
	err := d.Conn.call(ctx, 0, "destroy "+d.Name, func() error { return d.Conn.l.DomainDestroy(d.d) })
	if IsCode(err, golibvirt.ErrNoDomain) || IsCode(err, golibvirt.ErrOperationInvalid) {
		err = nil
	}
	if err == nil && d.stage != nil {
		d.stage.remove()
		d.stage = nil
	}
	return err
}

func (d *Domain) destroyQuietly() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The Conn may be broken by the deadline that brought us here: try a fresh one.
	c := d.Conn
	if c.isBroken() {
		nc, err := Connect(ctx, c.uri)
		if err != nil {
			return
		}
		defer nc.Close()
		c = nc
	}
	if dom, err := c.Lookup(ctx, d.Name); err == nil {
		dom.stage = d.stage
		_ = dom.Destroy(ctx)
	}
}

func (c *Conn) isBroken() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken != nil
}

// Info is a domain's size and the CPU time it has used.
type Info struct {
	// MemoryBytes is the memory the domain has now; VCPUs its virtual CPUs.
	MemoryBytes int64
	VCPUs       int
	// CPUTime is the CPU time (user + system) of the domain's whole QEMU process, all its
	// threads (the qemu driver reads the process's /proc stat on its host), 0 for a
	// domain that is not running.
	CPUTime time.Duration
}

// Info reads the domain's memory, vCPUs and CPU time (virDomainGetInfo).
func (d *Domain) Info(ctx context.Context) (Info, error) {
	var mem, cpu uint64
	var vcpus uint16
	err := d.Conn.call(ctx, 0, "info of "+d.Name, func() error {
		var err error
		_, _, mem, vcpus, cpu, err = d.Conn.l.DomainGetInfo(d.d)
		return err
	})
	return Info{MemoryBytes: int64(mem) << 10, VCPUs: int(vcpus), CPUTime: time.Duration(cpu)}, err
}

// BlockStats are a domain's disk operation counts (all its disks).
type BlockStats struct {
	ReadOps, WriteOps, FlushOps int64
}

// BlockStats reads the operation counts of all the domain's disks.
func (d *Domain) BlockStats(ctx context.Context) (BlockStats, error) {
	var params []golibvirt.TypedParam
	err := d.Conn.call(ctx, 0, "block stats of "+d.Name, func() error {
		var err error
		// An empty disk name sums all disks.
		params, _, err = d.Conn.l.DomainBlockStatsFlags(d.d, "", 16, 0)
		return err
	})
	var b BlockStats
	for _, p := range params {
		v := int64(paramUint(p.Value.I))
		switch p.Field {
		case "rd_operations":
			b.ReadOps = v
		case "wr_operations":
			b.WriteOps = v
		case "flush_operations":
			b.FlushOps = v
		}
	}
	return b, err
}

// ActiveDomains lists the names of the daemon's running domains.
func (c *Conn) ActiveDomains(ctx context.Context) ([]string, error) {
	var names []string
	err := c.call(ctx, 0, "list domains", func() error {
		doms, _, err := c.l.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
		for _, d := range doms {
			names = append(names, d.Name)
		}
		return err
	})
	return names, err
}

// ConsoleLog is the console file of a domain Boot started on a local daemon, or migrated
// from one to another ("" otherwise).
func (d *Domain) ConsoleLog() string { return d.console }

// localQboot is the path of QEMU's qboot firmware on this machine ("" when not installed).
func localQboot() string {
	for _, p := range []string{"/usr/share/qemu/qboot.rom", "/usr/share/seabios/qboot.rom"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// openableByAll reports whether any user can read and write the file p (every directory
// above it searchable).
func openableByAll(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().Perm()&0o006 == 0o006 && readableByAll(p)
}

// readableByAll reports whether any user can read p (every directory above it searchable).
func readableByAll(p string) bool {
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm()&0o004 == 0 {
		return false
	}
	for dir := path.Dir(p); ; dir = path.Dir(dir) {
		st, err := os.Stat(dir)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" || dir == "." {
			return true
		}
	}
}
