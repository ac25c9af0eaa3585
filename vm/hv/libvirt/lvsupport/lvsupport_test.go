package lvsupport

import (
	"errors"
	"strings"
	"testing"
)

// TestCheck: what the libvirt driver runs, and each refusal as one line naming the option
// that makes it impossible, spelled as flags or as a suite's keys, without the password of
// a URL it shows.
func TestCheck(t *testing.T) {
	mirror := Choices{Storage: "mirror", Target: "file:///var/tmp", Access: "auto", Mode: "precopy"}
	with := func(f func(*Choices)) Choices { c := mirror; f(&c); return c }
	for _, tc := range []struct {
		name      string
		c         Choices
		opt       Option
		flag, key string // "" = accepted
	}{
		{"shared", Choices{Target: "nfs://h/x", Access: "nbd", Mode: "none", Link: true}, "", "", ""},
		{"mirror", with(func(c *Choices) { c.To = "file:///srv/b"; c.MirrorCopyMode = "background" }), "", "", ""},
		{"mirror, target not known yet", with(func(c *Choices) { c.Target = "" }), "", "", ""},
		{"copy", Choices{Storage: "copy"}, Storage, "--storage copy: libvirt has no equivalent", "storage: copy: libvirt has no equivalent"},
		{"two-phase", Choices{Storage: "two-phase"}, Storage, "--storage two-phase: libvirt", "storage: two-phase: libvirt"},
		{"pull", Choices{Storage: "pull"}, Storage, "--storage pull: libvirt", "storage: pull: libvirt"},
		{"memory check", Choices{CheckMemory: true}, CheckMemory, "--check-memory reads guest RAM", "check_memory reads guest RAM"},
		{"mirror with the memory check", with(func(c *Choices) { c.CheckMemory = true }), CheckMemory, "--check-memory", "check_memory"},
		{"mirror of a domain", with(func(c *Choices) { c.Domain = "web1" }), Domain, "--storage mirror with --domain:", "storage: mirror with domain:"},
		{"mirror of nfs", with(func(c *Choices) { c.Target = "nfs://u:secret@h/x" }), Target, "local image file, not nfs://u@h/x: give --target file://DIR", "local image file, not nfs://u@h/x: give target file://DIR"},
		{"mirror over nbd", with(func(c *Choices) { c.Access = "nbd" }), Access, "which --access nbd serves over NBD: use --access native", "which access: nbd serves over NBD: use access: native"},
		{"mirror to a backend", with(func(c *Choices) { c.To = "smb://u:secret@h/s/x" }), To, "--to smb://u@h/s/x: under libvirt", "to: smb://u@h/s/x: under libvirt"},
		{"mirror to a bare path", with(func(c *Choices) { c.To = "/srv/b" }), To, "--to /srv/b: under libvirt", "to: /srv/b: under libvirt"},
		{"mirror without migration", with(func(c *Choices) { c.Mode = "none" }), Mode, "with --mode none moves only the disk", "with mode: none moves only the disk"},
		{"mirror over a link", with(func(c *Choices) { c.Link = true }), Link, "(--link, --disk-link)", "(link, disk_link)"},
		{"mirror over a disk link", with(func(c *Choices) { c.DiskLink = true }), DiskLink, "(--link, --disk-link)", "(link, disk_link)"},
		{"mirror write-blocking", with(func(c *Choices) { c.MirrorCopyMode = "write-blocking" }), MirrorCopyMode, "--mirror-copy-mode write-blocking is not mapped", "mirror_copy_mode: write-blocking is not mapped"},
	} {
		for _, sp := range []struct {
			spell Spelling
			want  string
		}{{Flags, tc.flag}, {Keys, tc.key}} {
			err := Check(tc.c, sp.spell)
			if sp.want == "" {
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Option != tc.opt || !strings.Contains(err.Error(), sp.want) || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: %v (option %v), want %q about %s", tc.name, err, e, sp.want, tc.opt)
			}
		}
	}
}
