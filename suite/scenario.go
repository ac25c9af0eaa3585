package suite

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt/lvsupport"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

// ModeHost runs the workload on the host, as 'vmstorbench run' does; every other mode runs
// it inside a VM as 'vmstorbench migrate' does.
const ModeHost = "host"

// The values 'vmstorbench migrate' takes (vm/migrate's constants; the command's tests check
// that they agree). This package does not import vm/migrate, which links a concrete backend.
var (
	MigrationModes = []string{"none", "precopy", "postcopy", "stopcopy"}
	Securities     = []string{"none", "tls", "tls-verify-peer"}
	Accesses       = []string{"auto", "native", "nbd"}
	Accels         = []string{"auto", "kvm", "tcg"}
	// StorageMethods are migrate's --storage values, MirrorCopyModes its --mirror-copy-mode.
	StorageMethods  = []string{"shared", "copy", "two-phase", "mirror", "pull"}
	MirrorCopyModes = []string{"background", "write-blocking"}
	// Hypervisors are migrate's --hypervisor values: QEMU processes vmstorbench starts, or
	// domains of libvirt daemons (source_uri, dest_uri).
	Hypervisors = []string{"qemu", "libvirt"}
)

// Defaults of a migration scenario, as 'vmstorbench migrate' has them.
const (
	DefaultDiskSize  = 32 << 20
	DefaultMemoryMiB = 256
)

// Scenario is how a workload runs: on the host, or inside a VM whose disk is on the target
// while the VM is live-migrated (the fields mirror 'vmstorbench migrate's flags; zero
// durations mean migrate's defaults).
type Scenario struct {
	Line int
	// Mode is ModeHost or one of MigrationModes ("none" runs the guest without migrating it).
	Mode string
	// Security of the migration stream: one of Securities.
	Security string
	// Link and StorageLink are the emulated links as written ("lan", "wan", or a spec such as
	// "latency=20ms,bandwidth=100mbit"), with their parsed form; "" and nil for none.
	Link, StorageLink         string
	LinkSpec, StorageLinkSpec *linkemu.Link
	At, After, Deadline       time.Duration
	DowntimeLimit             time.Duration
	PostcopyAfter             time.Duration
	PostcopyIterations        int
	// MaxBandwidth is QEMU's max-bandwidth in bytes/s (0: QEMU's default).
	MaxBandwidth int64
	DiskSize     int64
	MemoryMiB    int
	Accel        string
	Access       string
	CheckMemory  bool
	// Verify writes verifiable blocks and checks them on the destination (default true).
	Verify bool
	// Storage is how the disk reaches the destination: one of StorageMethods (default
	// "shared"). To is where it goes (migrate's --to: a directory, an image or a backend
	// URL; "" a scratch image), DiskLink the disk stream's emulated link as written ("":
	// the shape of Link), MirrorCopyMode the mirror's copy mode ("" background), NoImageCheck
	// skips the block-by-block image check at switchover (check_image: false).
	Storage                           string
	To                                string
	DiskLink                          string
	DiskLinkSpec                      *linkemu.Link
	MirrorCopyMode                    string
	NoImageCheck                      bool
	storageLine, toLine, copyModeLine int
	// Outside: while the guest runs the workload, the host runs it too against a file beside
	// the VM's image on the same backend (OutsideURL), so reports show both ("inside and
	// outside").
	Outside bool
	// Hypervisor is one of Hypervisors ("" is qemu). With "libvirt", SourceURI and DestURI
	// are the daemons' URIs ("testbed:libvirt-1" names a testbed endpoint) and Domain, if
	// set, an existing domain on the source to measure instead of a transient one.
	Hypervisor         string
	SourceURI, DestURI string
	Domain             string
	hypervisorLine     int
}

// Libvirt reports whether the scenario's guest runs under libvirt.
func (sc *Scenario) Libvirt() bool { return sc.Hypervisor == "libvirt" }

// Host reports whether the scenario runs on the host, without a VM.
func (sc *Scenario) Host() bool { return sc.Mode == ModeHost }

// Name is the scenario as reports name it (results.Scenario): "host", "precopy none",
// "postcopy tls wan", "precopy none lan mirror", "precopy tls libvirt".
func (sc *Scenario) Name() string {
	if sc.Host() {
		return ModeHost
	}
	link := ""
	if sc.LinkSpec != nil {
		link = sc.LinkSpec.Name
	}
	name := results.ScenarioName(sc.Mode, sc.Security, link, sc.Storage, sc.MirrorCopyMode)
	if sc.Libvirt() {
		name = results.UnderLibvirt(name)
	}
	return name
}

var scenarioKeys = []string{"mode", "security", "link", "storage_link", "at", "after", "deadline",
	"downtime_limit", "postcopy_after", "postcopy_iterations", "max_bandwidth", "disk_size", "memory",
	"accel", "access", "check_memory", "verify", "outside", "storage", "to", "disk_link", "mirror_copy_mode",
	"check_image", "hypervisor", "source_uri", "dest_uri", "domain"}

func (d *decoder) scenario(n *yaml.Node) *Scenario {
	n = resolve(n)
	before := len(d.errs)
	sc := &Scenario{Line: n.Line, Security: "none", DiskSize: DefaultDiskSize, MemoryMiB: DefaultMemoryMiB,
		Accel: "auto", Access: "auto", Verify: true}
	modes := append([]string{ModeHost}, MigrationModes...)
	if n.Kind == yaml.ScalarNode {
		sc.Mode = d.oneOf(field{key: "scenario", line: n.Line, val: n}, modes)
		if len(d.errs) > before {
			return nil
		}
		return sc
	}
	var vmOnly []field // keys that make no sense for a host run
	for _, f := range d.fields(n, "scenario") {
		if f.key != "mode" {
			vmOnly = append(vmOnly, f)
		}
		switch f.key {
		case "mode":
			sc.Mode = d.oneOf(f, modes)
		case "security":
			sc.Security = d.oneOf(f, Securities)
		case "link", "storage_link", "disk_link":
			s := d.str(f)
			if s == "" {
				continue
			}
			l, err := linkemu.Parse(s)
			if err != nil {
				d.errorf(f.line, "%s: %v", f.key, err)
				continue
			}
			switch f.key {
			case "link":
				sc.Link, sc.LinkSpec = s, &l
			case "storage_link":
				sc.StorageLink, sc.StorageLinkSpec = s, &l
			default:
				sc.DiskLink, sc.DiskLinkSpec = s, &l
			}
		case "at":
			sc.At = d.duration(f)
		case "after":
			sc.After = d.duration(f)
		case "deadline":
			sc.Deadline = d.duration(f)
		case "downtime_limit":
			sc.DowntimeLimit = d.duration(f)
		case "postcopy_after":
			sc.PostcopyAfter = d.duration(f)
		case "postcopy_iterations":
			sc.PostcopyIterations = d.integer(f, 1, 1000)
		case "max_bandwidth":
			sc.MaxBandwidth = d.size(f)
		case "disk_size":
			sc.DiskSize = d.size(f)
		case "memory":
			sc.MemoryMiB = d.integer(f, 64, 65536)
		case "accel":
			sc.Accel = d.oneOf(f, Accels)
		case "access":
			sc.Access = d.oneOf(f, Accesses)
		case "check_memory":
			sc.CheckMemory = d.boolean(f)
		case "verify":
			sc.Verify = d.boolean(f)
		case "outside":
			sc.Outside = d.boolean(f)
		case "storage":
			sc.Storage = d.oneOf(f, StorageMethods)
			sc.storageLine = f.line
		case "to":
			sc.To = d.str(f)
			sc.toLine = f.line
		case "mirror_copy_mode":
			sc.MirrorCopyMode = d.oneOf(f, MirrorCopyModes)
			sc.copyModeLine = f.line
		case "check_image":
			sc.NoImageCheck = !d.boolean(f)
		case "hypervisor":
			sc.Hypervisor = d.oneOf(f, Hypervisors)
			sc.hypervisorLine = f.line
		case "source_uri":
			sc.SourceURI = d.str(f)
		case "dest_uri":
			sc.DestURI = d.str(f)
		case "domain":
			sc.Domain = d.str(f)
		default:
			d.unknown(f, "scenario", scenarioKeys)
		}
	}
	switch {
	case len(d.errs) > before:
		return nil
	case sc.Mode == "":
		d.errorf(sc.Line, "scenario: no mode: (%s)", joinOr(modes))
		return nil
	case sc.Host() && len(vmOnly) > 0:
		d.errorf(vmOnly[0].line, "scenario: %s applies to runs in a VM; a host scenario takes only mode:", vmOnly[0].key)
		return nil
	case sc.Mode != "postcopy" && (sc.PostcopyAfter > 0 || sc.PostcopyIterations > 0):
		d.errorf(sc.Line, "scenario: postcopy_after and postcopy_iterations need mode: postcopy")
		return nil
	case sc.Mode == "postcopy" && sc.CheckMemory:
		d.errorf(sc.Line, "scenario: check_memory needs the destination paused until the end, which post-copy cannot do: use precopy or stopcopy")
		return nil
	case !d.storageOK(sc):
		return nil
	case !d.hypervisorOK(sc):
		return nil
	}
	if sc.Storage == "" {
		sc.Storage = "shared"
	}
	if sc.Storage == "mirror" && sc.MirrorCopyMode == "" {
		sc.MirrorCopyMode = "background"
	}
	return sc
}

// hypervisorOK refuses libvirt's keys without hypervisor: libvirt, and what the libvirt
// driver cannot do (libvirtOK).
func (d *decoder) hypervisorOK(sc *Scenario) bool {
	line := sc.hypervisorLine
	if line == 0 {
		line = sc.Line
	}
	switch {
	case !sc.Libvirt() && (sc.SourceURI != "" || sc.DestURI != "" || sc.Domain != ""):
		d.errorf(sc.Line, "scenario: source_uri, dest_uri and domain name libvirt daemons and domains: they need hypervisor: libvirt")
	case sc.Libvirt() && (sc.SourceURI == "" || sc.DestURI == ""):
		d.errorf(line, "scenario: hypervisor: libvirt needs source_uri and dest_uri (the two daemons, e.g. testbed:libvirt-1 and testbed:libvirt-2)")
	case sc.Libvirt():
		// The targets are checked with the suite's (checkLibvirtTargets), testbed endpoints
		// when the suite runs.
		return d.libvirtOK(sc, "")
	default:
		return true
	}
	return false
}

// LibvirtChoices are the scenario's options the libvirt driver's rules look at, with the
// VM's disk on target ("" when not known yet).
func (sc *Scenario) LibvirtChoices(target string) lvsupport.Choices {
	return lvsupport.Choices{
		Storage: sc.Storage, MirrorCopyMode: sc.MirrorCopyMode, Target: target, Access: sc.Access, To: sc.To, Mode: sc.Mode,
		Domain: sc.Domain, Link: sc.Link != "", DiskLink: sc.DiskLink != "", CheckMemory: sc.CheckMemory,
	}
}

// libvirtOK reports what the libvirt driver cannot run of a scenario with hypervisor:
// libvirt on target (lvsupport's rules, as migrate has them), at the line of the key
// that makes it impossible where the scenario has it, else at hypervisor:'s.
func (d *decoder) libvirtOK(sc *Scenario, target string) bool {
	err := lvsupport.Check(sc.LibvirtChoices(target), lvsupport.Keys)
	if err == nil {
		return true
	}
	line := sc.hypervisorLine
	var lerr *lvsupport.Error
	if errors.As(err, &lerr) {
		switch lerr.Option {
		case lvsupport.Storage:
			line = sc.storageLine
		case lvsupport.To:
			line = sc.toLine
		case lvsupport.MirrorCopyMode:
			line = sc.copyModeLine
		}
	}
	if line == 0 {
		line = sc.Line
	}
	d.errorf(line, "scenario: %v", err)
	return false
}

// checkLibvirtTargets checks every libvirt scenario against each target the file names by
// URL (a mirror copies a local image file only); testbed endpoints are checked when the
// suite runs and they are resolved.
func (s *Suite) checkLibvirtTargets(d *decoder) {
	for _, sc := range s.Scenarios {
		if !sc.Libvirt() {
			continue
		}
		for _, t := range s.Targets {
			if _, isTestbed := t.TestbedName(); isTestbed {
				continue
			}
			if !d.libvirtOK(sc, t.URL) {
				break // one line per scenario
			}
		}
	}
}

// storageOK refuses the storage options migrate would refuse (vm/migrate's checkStorage),
// at the line of the key that makes the combination impossible.
func (d *decoder) storageOK(sc *Scenario) bool {
	line := sc.storageLine
	if line == 0 {
		line = sc.Line
	}
	moves := sc.Storage != "" && sc.Storage != "shared"
	switch {
	case sc.To != "" && !moves:
		d.errorf(sc.toLine, "scenario: to: names where the disk goes: it needs storage: copy, two-phase, mirror or pull (shared storage does not move the disk)")
	case sc.DiskLink != "" && !moves:
		d.errorf(sc.Line, "scenario: disk_link shapes the disk stream: it needs storage: copy, two-phase, mirror or pull")
	case sc.MirrorCopyMode != "" && sc.Storage != "mirror":
		d.errorf(sc.copyModeLine, "scenario: mirror_copy_mode applies to storage: mirror")
	case sc.Mode == "none" && moves && sc.Storage != "mirror":
		d.errorf(line, "scenario: storage: %s moves the disk with the VM: it needs a migration (mode: precopy, postcopy or stopcopy); mode: none moves only the disk, with storage: mirror", sc.Storage)
	case sc.Storage == "pull" && sc.Mode == "stopcopy":
		d.errorf(line, "scenario: storage: pull starts the destination at once and fetches the disk afterwards, which stop-and-copy defeats: use mode: precopy or postcopy")
	case sc.Storage == "copy" && sc.Mode == "postcopy":
		d.errorf(line, "scenario: storage: copy stops the VM for the whole copy: post-copy has nothing to gain there; use mode: precopy or stopcopy")
	default:
		return true
	}
	return false
}

func joinOr(s []string) string {
	if len(s) < 2 {
		return s[0]
	}
	out := ""
	for i, v := range s {
		switch {
		case i == 0:
		case i == len(s)-1:
			out += " or "
		default:
			out += ", "
		}
		out += v
	}
	return out
}

// checkScenarioCases refuses two scenarios that reports would take for one (reports tell
// scenarios apart by mode, security, link name and storage method only).
func (s *Suite) checkScenarioCases(d *decoder) {
	seen := map[string]*Scenario{}
	for _, sc := range s.Scenarios {
		if first, dup := seen[sc.Name()]; dup {
			d.errorf(sc.Line, "scenario %q is the same case as the one on line %d (reports tell scenarios apart by mode, security, link and storage method): change or drop one", sc.Name(), first.Line)
			continue
		}
		seen[sc.Name()] = sc
	}
}

// Migrates reports whether any scenario runs in a VM (the guest image is then needed).
func (s *Suite) Migrates() bool {
	for _, sc := range s.Scenarios {
		if !sc.Host() {
			return true
		}
	}
	return false
}

// OutsideFile is the bench file the host's outside workload uses beside the VM's image.
const OutsideFile = "vmstorbench-outside.img"

// OutsideURL is where the host runs the outside workload for a VM whose image is at target:
// a file beside the image on the same backend (created and removed by the run), or the same
// directory when target names one. Block targets (iSCSI) have no "beside": give the VM a
// file-backed target or run the host workload separately against another LUN.
func OutsideURL(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("outside: %w", err)
	}
	switch u.Scheme {
	case "file", "nfs", "smb":
	default:
		return "", fmt.Errorf("outside: %s targets have no file beside the VM's image: use a file, nfs or smb target", u.Scheme)
	}
	if strings.HasSuffix(u.Path, "/") {
		return u.String(), nil // a directory: the backend creates its own bench file in it
	}
	u.Path = path.Join(path.Dir(u.Path), OutsideFile)
	u.RawPath = ""
	return u.String(), nil
}
