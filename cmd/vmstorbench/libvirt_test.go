package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/hv/libvirt"
)

// TestIntegrationMigrateLibvirt runs `migrate --hypervisor libvirt` end to end on the
// testbed's libvirt pair: vmstorbench's guest as a transient domain on daemon 1, its disk
// served over vmstorbench's NBD export (network disks are shared storage to libvirt), the
// verified workload inside, a live migration to daemon 2, the read-back there. The result
// says libvirt, with the daemons' versions and the completed job. Then an existing domain
// without the agent channel, measured from the host side only. Nothing is left defined.
func TestIntegrationMigrateLibvirt(t *testing.T) {
	requireQEMU(t)
	if os.Geteuid() != 0 {
		missing(t, errors.New("the libvirt pair needs root"))
	}
	pair := testbed.NewLibvirtPair()
	pair.TLS = true // eps[2:4]: clients authenticated by certificate
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logDir := t.TempDir()
	eps, err := pair.Start(ctx, logDir)
	if err != nil {
		if errors.Is(err, testbed.ErrMissingBinary) {
			missing(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A daemon that went away mid-test (once in CI: "connection refused" from daemon 1
		// after the mirror runs) leaves its reason only in its log, which the temporary
		// directory's removal would take with it.
		if t.Failed() {
			for _, name := range []string{"libvirtd-1.log", "libvirtd-2.log"} {
				t.Logf("%s, last 4 KiB:\n%s", name, testbed.TailLog(filepath.Join(logDir, name), 4096))
			}
		}
		pair.Stop()
	})
	libvirtRefusals(t, eps)
	resDir := t.TempDir()
	stdout, stderr, err := runCLI(t, "migrate", "--hypervisor", "libvirt", "--source-uri", eps[0].URL, "--dest-uri", eps[1].URL,
		"--target", "file://"+t.TempDir(), "--access", "nbd", "--accel", "tcg", "--at", "1s", "--after", "1s", "--disk-size", "8m",
		"--results", resDir, "--quiet")
	if err != nil {
		t.Fatalf("exit %d: %v\n%s\n%s", exitCode(err), err, stdout, stderr)
	}
	r := oneResult(t, resDir)
	m := r.Migration
	if !r.Complete || m == nil || m.Outcome != "completed" || m.Hypervisor != "libvirt" || m.GuestOn != "destination" {
		t.Fatalf("run complete %v, migration %+v", r.Complete, m)
	}
	lv := m.Libvirt
	if lv == nil || lv.Measured != results.MeasuredAgent || lv.LibvirtVersion == "" || lv.DestURI != eps[1].URL || lv.Job == nil || lv.Job.DowntimeMS <= 0 {
		t.Errorf("libvirt section %+v", lv)
	}
	if v := m.Integrity; v == nil || v.ReadBack == nil || v.ReadBack.Checked == 0 || v.ReadBack.Mismatches != 0 || r.Verify == nil || r.Verify.Mismatches != 0 {
		t.Errorf("integrity %+v, verify %+v", m.Integrity, r.Verify)
	}
	if len(m.Samples) == 0 || m.PauseMS <= 0 {
		t.Errorf("%d job-stats samples, pause %.0f ms", len(m.Samples), m.PauseMS)
	}
	// Both QEMUs' CPU time, read through libvirt (virDomainGetInfo); the source's just
	// before Confirm ended it.
	if c := m.Cost; c == nil || c.SourceCPUS <= 0 || c.DestinationCPUS <= 0 || len(c.Unmeasured) > 0 {
		t.Errorf("cost %+v", c)
	}
	if results.Scenario(r) != "precopy none libvirt" {
		t.Errorf("scenario %q", results.Scenario(r))
	}
	libvirtMirror(t, eps)
	libvirtSuiteMirror(t, eps)
	// An existing domain without the agent channel: measured from the host side only, and
	// left running (on the destination) as vmstorbench found it.
	imgOut, _, err := runCLI(t, "vm", "image", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var img guest.Image
	if err := json.Unmarshal([]byte(imgOut), &img); err != nil {
		t.Fatal(err)
	}
	src, err := libvirt.Connect(ctx, eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// PID 1 sleeps: no agent, nothing that powers the guest off. No console file either: a
	// domain vmstorbench did not define keeps its XML, and this file would be one both
	// daemons of this machine open.
	cmdline := img.Cmdline[:strings.Index(img.Cmdline, "rdinit=")] + "rdinit=/bin/busybox -- sleep 100000"
	dom, err := src.Boot(ctx, libvirt.Spec{Name: "vsb-noagent", Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: cmdline, NoAgentChannel: true, NoConsoleLog: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dom.Destroy(context.Background())
	dst, err := libvirt.Connect(ctx, eps[1].URL)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()

	// The destination refuses the migration: another domain of that name runs there. One
	// line, a non-zero exit, the domain still running on the source.
	blocker, err := dst.Boot(ctx, libvirt.Spec{Name: "vsb-noagent", Kernel: img.Kernel, Initrd: img.Initrd, Cmdline: cmdline, NoAgentChannel: true, NoConsoleLog: true})
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runCLI(t, "migrate", "--hypervisor", "libvirt", "--source-uri", eps[0].URL, "--dest-uri", eps[1].URL,
		"--domain", "vsb-noagent", "--target", "file://"+t.TempDir(), "--access", "nbd", "--at", "1s", "--after", "1s", "--disk-size", "8m",
		"--results", t.TempDir(), "--quiet")
	cause := causeLines(stderr)
	t.Logf("destination refusing: exit %d: %s", exitCode(err), strings.Join(cause, " | "))
	if exitCode(err) == 0 || len(cause) != 1 || !strings.Contains(cause[0], "already") {
		t.Errorf("destination refusing: exit %d, %v\n%s", exitCode(err), err, stderr)
	}
	if st, _, err := dom.State(ctx); err != nil || st != "running" {
		t.Errorf("source after the refused migration: %s %v", st, err)
	}
	if err := blocker.Destroy(ctx); err != nil {
		t.Fatal(err)
	}

	hostDir := t.TempDir()
	if _, stderr, err := runCLI(t, "migrate", "--hypervisor", "libvirt", "--source-uri", eps[0].URL, "--dest-uri", eps[1].URL,
		"--domain", "vsb-noagent", "--target", "file://"+t.TempDir(), "--access", "nbd", "--at", "1s", "--after", "1s", "--disk-size", "8m",
		"--results", hostDir, "--quiet"); err != nil {
		t.Fatalf("host side only: exit %d: %v\n%s", exitCode(err), err, stderr)
	}
	if hm := oneResult(t, hostDir).Migration; hm == nil || hm.Outcome != "completed" || hm.Libvirt == nil || hm.Libvirt.Measured != results.MeasuredHostOnly || hm.Libvirt.Domain != "vsb-noagent" || hm.GuestMemoryB != 256<<20 {
		t.Errorf("host-side-only run: %+v", hm)
	}
	moved, err := dst.Lookup(ctx, "vsb-noagent")
	if err != nil {
		t.Fatalf("the domain is not on the destination: %v", err)
	}
	if st, _, err := moved.State(ctx); err != nil || st != "running" {
		t.Errorf("domain on the destination: %s %v", st, err)
	}
	if err := moved.Destroy(ctx); err != nil {
		t.Error(err)
	}

	// Nothing left on either daemon.
	for _, e := range eps {
		c, err := libvirt.Connect(ctx, e.URL)
		if err != nil {
			t.Fatal(err)
		}
		names, err := c.ActiveDomains(ctx)
		c.Close()
		if err != nil || len(names) > 0 {
			t.Errorf("%s: domains left: %v %v", e.Name, names, err)
		}
	}
}

// libvirtMirror runs `migrate --hypervisor libvirt --storage mirror` with a local file
// disk: libvirt copies it into another image (VIR_MIGRATE_NON_SHARED_DISK, the disk path
// changed in the destination's XML) while the verified workload runs. The data reads back
// on the destination, libvirt counted the disk's bytes, and the source's file was not
// written after the migration ended: the destination wrote its own.
func libvirtMirror(t *testing.T, eps []testbed.Endpoint) {
	t.Helper()
	srcDir, dstDir := t.TempDir(), t.TempDir()
	// The daemons' QEMUs run as their own users: every directory above the images searchable.
	for _, d := range []string{filepath.Dir(srcDir), srcDir, dstDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	resDir := t.TempDir()
	stdout, stderr, err := runCLI(t, "migrate", "--hypervisor", "libvirt", "--source-uri", eps[0].URL, "--dest-uri", eps[1].URL,
		"--target", "file://"+srcDir, "--access", "native", "--storage", "mirror", "--to", "file://"+dstDir, "--keep",
		"--accel", "tcg", "--at", "1s", "--after", "1s", "--disk-size", "8m", "--results", resDir, "--quiet")
	if err != nil {
		t.Fatalf("mirror: exit %d: %v\n%s\n%s", exitCode(err), err, stdout, stderr)
	}
	r := oneResult(t, resDir)
	m := r.Migration
	if m == nil || m.Outcome != "completed" || m.Hypervisor != "libvirt" || m.Storage != "mirror" || m.DiskTransferredB <= 0 {
		t.Fatalf("mirror: %+v", m)
	}
	if v := m.Integrity; v == nil || v.ReadBack == nil || v.ReadBack.Checked == 0 || v.ReadBack.Mismatches != 0 || r.Verify == nil || r.Verify.Checked == 0 || r.Verify.Mismatches != 0 {
		t.Errorf("mirror: integrity %+v, verify %+v", m.Integrity, r.Verify)
	}
	if ic := m.ImageCheck; ic == nil || ic.When != "not compared" || ic.Error == "" {
		t.Errorf("mirror: image check %+v", ic)
	}
	if lv := m.Libvirt; lv == nil || !slices.Contains(lv.Flags, "non-shared-disk") || slices.Contains(lv.Flags, "unsafe") {
		t.Errorf("mirror: libvirt %+v", lv)
	}
	if results.Scenario(r) != "precopy none mirror libvirt" {
		t.Errorf("mirror: scenario %q", results.Scenario(r))
	}
	srcImgs, _ := filepath.Glob(filepath.Join(srcDir, "*.img"))
	if len(srcImgs) != 1 || filepath.Dir(m.DestinationDisk) != dstDir {
		t.Fatalf("mirror: source images %v, destination %s", srcImgs, m.DestinationDisk)
	}
	src, err := os.Stat(srcImgs[0])
	if err != nil {
		t.Fatal(err)
	}
	dst, err := os.Stat(m.DestinationDisk)
	if err != nil {
		t.Fatal(err)
	}
	// The guest ran on the destination (workload, read-back) after the migration ended: only
	// its image may have been written since.
	end := r.Start.Add(time.Duration(m.EndNS))
	t.Logf("mirror: disk %d bytes by libvirt, migration %.0f ms, pause %.0f ms; source image written %s before the end, destination %s after",
		m.DiskTransferredB, m.MigrationTimeMS, m.PauseMS, end.Sub(src.ModTime()), dst.ModTime().Sub(end))
	if os.SameFile(src, dst) || src.Size() != dst.Size() || src.ModTime().After(end) || !dst.ModTime().After(end) {
		t.Errorf("mirror: source %s (%d bytes, modified %s), destination %s (%d bytes, modified %s), migration ended %s",
			srcImgs[0], src.Size(), src.ModTime(), m.DestinationDisk, dst.Size(), dst.ModTime(), end)
	}
}

// libvirtSuiteMirror runs a suite scenario with hypervisor: libvirt and storage: mirror:
// the suite runner hands the storage method and to: to the same runner path as migrate's
// flags, so libvirt copies the file target's image into one in to:'s directory.
func libvirtSuiteMirror(t *testing.T, eps []testbed.Endpoint) {
	t.Helper()
	dir, srcDir, dstDir := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Dir(srcDir), srcDir, dstDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "lvmirror.yaml")
	text := "name: lvmirror\ntargets: ['file://" + srcDir + "']\nworkloads: [oltp]\nscenarios:\n" +
		"  - mode: precopy\n    hypervisor: libvirt\n    source_uri: '" + eps[0].URL + "'\n    dest_uri: '" + eps[1].URL + "'\n" +
		"    storage: mirror\n    to: 'file://" + dstDir + "'\n    access: native\n    accel: tcg\n    at: 1s\n    after: 1s\n    disk_size: 8m\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	start := time.Now()
	stdout, stderr, err := runCLI(t, "suite", "run", path, "--out", out, "--quiet")
	if err != nil {
		t.Fatalf("suite: exit %d: %v\n%s\n%s", exitCode(err), err, stdout, stderr)
	}
	r := oneResult(t, out)
	m := r.Migration
	t.Logf("suite mirror: %s, disk %d bytes by libvirt, pause %.0f ms", time.Since(start).Round(time.Second), m.DiskTransferredB, m.PauseMS)
	if m.Outcome != "completed" || m.Hypervisor != "libvirt" || m.Storage != "mirror" || m.DiskTransferredB <= 0 || filepath.Dir(m.DestinationDisk) != dstDir {
		t.Fatalf("suite mirror: %+v", m)
	}
	if v := m.Integrity; v == nil || v.ReadBack == nil || v.ReadBack.Checked == 0 || v.ReadBack.Mismatches != 0 || r.Verify == nil || r.Verify.Mismatches != 0 {
		t.Errorf("suite mirror: integrity %+v, verify %+v", m.Integrity, r.Verify)
	}
	if results.Scenario(r) != "precopy none mirror libvirt" || r.Labels["suite"] != "lvmirror" {
		t.Errorf("suite mirror: scenario %q, labels %v", results.Scenario(r), r.Labels)
	}
	// Not kept: the destination image was made in to:'s directory and removed after the run.
	if left, _ := filepath.Glob(filepath.Join(dstDir, "*")); len(left) > 0 {
		t.Errorf("suite mirror: left in to:'s directory: %v", left)
	}
}

// libvirtRefusals: a daemon that cannot be reached, one that refuses this client's
// certificate, a domain that does not exist — each ends migrate with one line and a
// non-zero exit before anything is defined (the caller checks that nothing is left).
func libvirtRefusals(t *testing.T, eps []testbed.Endpoint) {
	t.Helper()
	foreign, err := testbed.LibvirtForeignClient(eps[3].URL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src, dst, want string
		extra                []string
	}{
		{"unreachable", "qemu+unix:///session?socket=/nonexistent/libvirt-sock", eps[1].URL, "no such file", nil},
		{"wrong credentials", eps[0].URL, foreign, "did not accept this client's certificate", nil},
		{"unknown domain", eps[0].URL, eps[1].URL, `no domain named "no-such-domain"`, []string{"--domain", "no-such-domain"}},
	} {
		args := append([]string{"migrate", "--hypervisor", "libvirt", "--source-uri", c.src, "--dest-uri", c.dst,
			"--target", "file://" + t.TempDir(), "--access", "nbd", "--accel", "tcg", "--disk-size", "8m", "--results", t.TempDir(), "--quiet"}, c.extra...)
		// The cause is told on stderr, one line; the error returned says how many runs failed.
		_, stderr, err := runCLI(t, args...)
		cause := causeLines(stderr)
		t.Logf("%s: exit %d: %s", c.name, exitCode(err), strings.Join(cause, " | "))
		if exitCode(err) == 0 || len(cause) != 1 || !strings.Contains(cause[0], c.want) {
			t.Errorf("%s: exit %d, %v\n%s", c.name, exitCode(err), err, stderr)
		}
	}
}

// causeLines are the lines of stderr where migrate tells why a run failed.
func causeLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "vmstorbench: migrate: ") {
			out = append(out, line)
		}
	}
	return out
}

// oneResult loads the one result document saved in dir.
func oneResult(t *testing.T, dir string) *results.Run {
	t.Helper()
	runs, err := results.LoadAll(dir)
	if err != nil || len(runs) != 1 {
		t.Fatalf("results in %s: %d, %v", dir, len(runs), err)
	}
	return runs[0]
}

// TestLibvirtStorageMethods: --storage mirror is libvirt's non-shared-disk migration of a
// local file; the other methods, and what mirror cannot do under libvirt, are refused with
// one line each before anything starts.
func TestLibvirtStorageMethods(t *testing.T) {
	for _, c := range []struct {
		name string
		o    migrateOptions
		want string // "" = accepted
	}{
		{"mirror", migrateOptions{storage: "mirror", target: "file:///var/tmp", access: "auto", mode: "precopy"}, ""},
		{"copy", migrateOptions{storage: "copy", target: "file:///var/tmp"}, "--storage copy: libvirt has no equivalent"},
		{"two-phase", migrateOptions{storage: "two-phase", target: "file:///var/tmp"}, "--storage two-phase: libvirt has no equivalent"},
		{"pull", migrateOptions{storage: "pull", target: "file:///var/tmp"}, "--storage pull: libvirt has no equivalent"},
		{"mirror over nbd", migrateOptions{storage: "mirror", target: "file:///var/tmp", access: "nbd"}, "local image file"},
		{"mirror of nfs", migrateOptions{storage: "mirror", target: "nfs://h/x"}, "local image file"},
		{"mirror without migration", migrateOptions{storage: "mirror", target: "file:///var/tmp", mode: "none"}, "--mode none"},
		{"mirror to a backend", migrateOptions{storage: "mirror", target: "file:///var/tmp", to: "nfs://u:secret@h/x"}, "file:///PATH"},
		{"mirror over a link", migrateOptions{storage: "mirror", target: "file:///var/tmp", link: "lan"}, "emulated link"},
		{"mirror write-blocking", migrateOptions{storage: "mirror", target: "file:///var/tmp", mirrorCopyMode: "write-blocking"}, "not mapped to libvirt"},
		{"mirror of a domain", migrateOptions{storage: "mirror", target: "file:///var/tmp", lv: libvirtFlags{domain: "web1"}}, "--domain"},
		{"mirror over a disk link", migrateOptions{storage: "mirror", target: "file:///var/tmp", diskLink: "wan"}, "(--link, --disk-link)"},
		{"mirror with the memory check", migrateOptions{storage: "mirror", target: "file:///var/tmp", checkMemory: true}, "--check-memory reads guest RAM"},
		{"memory check", migrateOptions{target: "file:///var/tmp", checkMemory: true}, "--check-memory reads guest RAM"},
	} {
		c.o.lv.hypervisor, c.o.lv.sourceURI, c.o.lv.destURI = "libvirt", "qemu:///system", "qemu+tcp://hv2/system"
		cfg, err := c.o.lv.config(&c.o, t.TempDir())
		switch {
		case c.want == "" && (err != nil || cfg == nil):
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.ContainsAny(err.Error(), "\n") || strings.Contains(err.Error(), "secret")):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
