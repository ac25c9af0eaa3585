// Package lvsupport holds the rules of what the libvirt driver can run of a migration's
// storage and checking options, for both places that read those options: the migrate
// command (flags) and the suite parser (scenario keys).
//
// It is a package of its own, not a function of vm/hv/libvirt, because the suite parser
// imports it: package suite links no VM code (vm/hv/libvirt brings go-libvirt, libvirtxml
// and an SSH client), and this package imports only backends, which suite already
// imports. The values it compares (storage methods, modes, accesses) are vm/migrate's; it
// does not import vm/migrate for the same reason, and the command's tests check that the
// rules agree with what it accepts.
package lvsupport

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/vmstorbench/vmstorbench/backends"
)

// Option names a migration option as the suite's key does ("mirror_copy_mode"); the
// command's flag is the same with '-' ("--mirror-copy-mode").
type Option string

// The options the rules look at.
const (
	Storage        Option = "storage"
	Target         Option = "target"
	Access         Option = "access"
	To             Option = "to"
	Mode           Option = "mode"
	Domain         Option = "domain"
	Link           Option = "link"
	DiskLink       Option = "disk_link"
	MirrorCopyMode Option = "mirror_copy_mode"
	CheckMemory    Option = "check_memory"
)

// Spelling writes an option, with its value or none (""), as the caller's user writes it.
type Spelling func(o Option, value string) string

// Flags spells options as the command's flags: "--storage mirror", "--disk-link".
func Flags(o Option, value string) string {
	s := "--" + strings.ReplaceAll(string(o), "_", "-")
	if value != "" {
		s += " " + value
	}
	return s
}

// Keys spells options as a suite's scenario keys: "storage: mirror", "disk_link"; the
// target, which is not a scenario's key but one of the suite's targets, as "target URL".
func Keys(o Option, value string) string {
	switch {
	case value == "":
		return string(o)
	case o == Target:
		return string(o) + " " + value
	}
	return string(o) + ": " + value
}

// Choices are a migration's options the libvirt driver may not run.
type Choices struct {
	// Storage is the storage method ("" is shared), MirrorCopyMode the mirror's copy mode
	// ("" is background).
	Storage, MirrorCopyMode string
	// Target is the URL of the VM's disk; "" when not known yet (a suite's testbed
	// endpoint, resolved when the suite runs: it is checked then). Access is how QEMU
	// opens it ("" is auto).
	Target, Access string
	// To is where the disk goes ("" a scratch image), Mode the migration mode.
	To, Mode string
	// Domain is an existing domain to measure ("" vmstorbench's guest).
	Domain string
	// Link and DiskLink say whether an emulated link is put in front of the migration
	// stream and the disk stream.
	Link, DiskLink bool
	CheckMemory    bool
}

// Error is a choice the libvirt driver cannot run: Option is the option that makes it
// impossible (where the caller shows it: a suite's key line), the message is one line
// with the options spelled as the caller's Spelling writes them.
type Error struct {
	Option Option
	msg    string
}

func (e *Error) Error() string { return e.msg }

// Check refuses, with one *Error, what the libvirt driver cannot do: the storage methods
// libvirt has no equivalent of (copy, two-phase, pull), what its mirror
// (VIR_MIGRATE_NON_SHARED_DISK, a local image file copied into another inside libvirt's
// migration job) cannot do, and the memory check (guest RAM read over QMP). It returns nil
// for what it can run.
func Check(c Choices, sp Spelling) error {
	fail := func(o Option, format string, args ...any) error {
		return &Error{Option: o, msg: fmt.Sprintf(format, args...)}
	}
	mirror := sp(Storage, "mirror")
	switch c.Storage {
	case "", "shared":
	case "copy":
		return fail(Storage, "%s: libvirt has no equivalent (it copies a disk only while the guest runs, as %s): use %s or shared", sp(Storage, "copy"), mirror, mirror)
	case "two-phase":
		return fail(Storage, "%s: libvirt has no equivalent (no checksummed delta pass): use %s or shared", sp(Storage, "two-phase"), mirror)
	case "pull":
		return fail(Storage, "%s: libvirt has no equivalent (it does not start the destination on the source's image over NBD): use %s or shared", sp(Storage, "pull"), mirror)
	case "mirror":
		if err := checkMirror(c, sp, fail); err != nil {
			return err
		}
	default:
		return fail(Storage, "%s: not a storage method libvirt runs: use %s or shared", sp(Storage, c.Storage), mirror)
	}
	if c.CheckMemory {
		return fail(CheckMemory, "%s reads guest RAM over QMP, which the libvirt driver does not offer", sp(CheckMemory, ""))
	}
	return nil
}

// checkMirror refuses what the storage method mirror cannot do under libvirt, which
// mirrors the disk itself inside its migration job (VIR_MIGRATE_NON_SHARED_DISK).
func checkMirror(c Choices, sp Spelling, fail func(Option, string, ...any) error) error {
	mirror := sp(Storage, "mirror")
	switch {
	case c.Domain != "":
		return fail(Domain, "%s with %s: copying an existing domain's disks is not supported (on one machine they would be copied onto themselves): let vmstorbench boot its guest", mirror, sp(Domain, ""))
	case c.Target != "" && !strings.HasPrefix(c.Target, "file://"):
		return fail(Target, "%s under libvirt copies a local image file, not %s: give %s (or an image) with %s or auto", mirror, shown(c.Target), sp(Target, "file://DIR"), sp(Access, "native"))
	case c.Access == "nbd":
		return fail(Access, "%s under libvirt copies a local image file, which %s serves over NBD: use %s or auto", mirror, sp(Access, "nbd"), sp(Access, "native"))
	case c.To != "" && !strings.HasPrefix(c.To, "file:///"):
		return fail(To, "%s: under libvirt the disk is copied into a file on the destination's host: give its path as file:///PATH (a directory for a new image, or an image of the source's size)", sp(To, shown(c.To)))
	case c.Mode == "none":
		return fail(Mode, "%s with %s moves only the disk, with QEMU's block jobs, which the libvirt driver does not drive: migrate the guest (%s, postcopy or stopcopy)", mirror, sp(Mode, "none"), sp(Mode, "precopy"))
	case c.Link || c.DiskLink:
		o := Link
		if !c.Link {
			o = DiskLink
		}
		return fail(o, "%s under libvirt: the disk goes straight from the source's QEMU to the NBD server libvirt starts on the destination, which an emulated link (%s, %s) cannot be put in front of", mirror, sp(Link, ""), sp(DiskLink, ""))
	case c.MirrorCopyMode != "" && c.MirrorCopyMode != "background":
		return fail(MirrorCopyMode, "%s is not mapped to libvirt (VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES): use background", sp(MirrorCopyMode, c.MirrorCopyMode))
	}
	return nil
}

// shown is a URL or path as messages may show it: without its password.
func shown(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme == "" {
		return s // a path: nothing to redact (backends.Redact would give it an empty scheme)
	}
	return backends.RedactString(s)
}
