package libvirt

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/vmstorbench/vmstorbench/vm/hv"
)

func TestDomainXML(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
		want []string // substrings of the XML
		err  string
	}{
		{"tcg with file disk", Spec{Name: "g", Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyS0", Disk: &Disk{Source: "/d/disk.raw"}},
			[]string{`type="qemu"`, `<kernel>/k</kernel>`, `<source file="/d/disk.raw">`, `cache="none"`, `name="org.vmstorbench.agent.0"`,
				`value="memory-backend-ram,id=vsb.ram,size=262136K"`, `value="262136K"`, `<memory unit="MiB">256</memory>`}, ""},
		{"kvm, block device, no agent", Spec{Name: "g", Type: TypeKVM, Kernel: "/k", MemoryMiB: 512, CPUs: 2, NoAgentChannel: true, Disk: &Disk{Source: "/dev/sdb", Format: "qcow2"}},
			[]string{`type="kvm"`, `<source dev="/dev/sdb">`, `type="qcow2"`, `<vcpu>2</vcpu>`, `host-passthrough`}, ""},
		{"nbd", Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "nbd://127.0.0.1:10900/vm"}},
			[]string{`protocol="nbd" name="vm"`, `<host name="127.0.0.1" port="10900">`}, ""},
		{"iscsi default port", Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "iscsi://10.0.0.1/iqn.2026-12.bench:t/0"}},
			[]string{`protocol="iscsi" name="iqn.2026-12.bench:t/0"`, `port="3260"`}, ""},
		{"nfs", Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "nfs://127.0.0.1/export/vm.img"}},
			[]string{`protocol="nfs" name="/export/vm.img"`}, ""},
		{"credentials", Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "iscsi://u:s3cret@h/iqn/0"}}, nil, "not supported"},
		{"smb", Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "smb://h/share/f"}}, nil, "protocol smb"},
		{"no kernel", Spec{Name: "g"}, nil, "needs a name and a kernel"},
		{"bad type", Spec{Name: "g", Kernel: "/k", Type: "xen"}, nil, "domain type"},
	} {
		x, err := DomainXML(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, w := range c.want {
			if !strings.Contains(x, w) {
				t.Errorf("%s: XML lacks %s:\n%s", c.name, w, x)
			}
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(x); err != nil {
			t.Errorf("%s: does not parse back: %v", c.name, err)
		}
		_, hasAgent, _ := agentChannel(x, "")
		if hasAgent {
			t.Errorf("%s: a channel without a path is not reachable yet", c.name)
		}
	}
}

func TestAgentChannel(t *testing.T) {
	dom := func(ch string) string {
		return `<domain type="kvm"><name>g</name><devices>` + ch + `</devices></domain>`
	}
	for _, c := range []struct {
		name, xml, uri string
		ok             bool
		want           AgentChannel
	}{
		{"unix", dom(`<channel type="unix"><source mode="bind" path="/run/a.sock"/><target type="virtio" name="org.vmstorbench.agent.0"/></channel>`),
			"", true, AgentChannel{"unix", "/run/a.sock"}},
		{"tcp wildcard, remote daemon", dom(`<channel type="tcp"><source mode="bind" host="0.0.0.0" service="4555"/><target type="virtio" name="org.vmstorbench.agent.0"/></channel>`),
			"qemu+tcp://hv1.lab:16509/system", true, AgentChannel{"tcp", "hv1.lab:4555"}},
		{"tcp wildcard, local daemon", dom(`<channel type="tcp"><source mode="bind" host="0.0.0.0" service="4555"/><target type="virtio" name="org.vmstorbench.agent.0"/></channel>`),
			"qemu:///system", true, AgentChannel{"tcp", "127.0.0.1:4555"}},
		{"tcp named host", dom(`<channel type="tcp"><source mode="bind" host="10.1.2.3" service="4555"/><target type="virtio" name="org.vmstorbench.agent.0"/></channel>`),
			"qemu+tcp://hv1/system", true, AgentChannel{"tcp", "10.1.2.3:4555"}},
		{"other channel only", dom(`<channel type="unix"><source mode="bind" path="/run/qga.sock"/><target type="virtio" name="org.qemu.guest_agent.0"/></channel>`),
			"", false, AgentChannel{}},
		{"connect mode", dom(`<channel type="unix"><source mode="connect" path="/run/a.sock"/><target type="virtio" name="org.vmstorbench.agent.0"/></channel>`),
			"", false, AgentChannel{}},
		{"no devices", `<domain type="kvm"><name>g</name></domain>`, "", false, AgentChannel{}},
	} {
		got, ok, err := agentChannel(c.xml, c.uri)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v %v, want %+v %v", c.name, got, ok, err, c.want, c.ok)
		}
	}
	if _, _, err := agentChannel("<domain", ""); err == nil {
		t.Error("broken XML accepted")
	}
}

func TestMigrateOptions(t *testing.T) {
	for _, c := range []struct {
		name  string
		o     MigrateOptions
		flags golibvirt.DomainMigrateFlags
		err   string
	}{
		{"live", MigrateOptions{Live: true}, golibvirt.MigrateLive, ""},
		{"stop-and-copy", MigrateOptions{}, 0, ""},
		{"postcopy tls", MigrateOptions{Live: true, Postcopy: true, TLS: true}, golibvirt.MigrateLive | golibvirt.MigratePostcopy | golibvirt.MigrateTLS, ""},
		{"p2p tunnelled", MigrateOptions{Live: true, PeerToPeer: true, Tunnelled: true}, golibvirt.MigrateLive | golibvirt.MigratePeer2peer | golibvirt.MigrateTunnelled, ""},
		{"copy disk unsafe", MigrateOptions{Live: true, NonSharedDisk: true, Unsafe: true}, golibvirt.MigrateLive | golibvirt.MigrateNonSharedDisk | golibvirt.MigrateUnsafe, ""},
		{"offline", MigrateOptions{Offline: true}, golibvirt.MigrateOffline | golibvirt.MigratePersistDest, ""},
		{"tunnelled without p2p", MigrateOptions{Live: true, Tunnelled: true}, 0, "peer-to-peer"},
		{"tunnelled tls", MigrateOptions{Live: true, PeerToPeer: true, Tunnelled: true, TLS: true}, 0, "TLS"},
		{"offline live", MigrateOptions{Offline: true, Live: true}, 0, "offline"},
		{"postcopy stop-and-copy", MigrateOptions{Postcopy: true}, 0, "live"},
		{"both disks", MigrateOptions{Live: true, NonSharedDisk: true, NonSharedInc: true}, 0, "not both"},
		{"tunnelled with URI", MigrateOptions{Live: true, PeerToPeer: true, Tunnelled: true, MigrationURI: "tcp://h"}, 0, "no migration URI"},
		{"mirror into another image", MigrateOptions{Live: true, NonSharedDisk: true, DestDisks: map[string]string{"vda": "/d/b.img"}}, golibvirt.MigrateLive | golibvirt.MigrateNonSharedDisk, ""},
		{"destination image without copying", MigrateOptions{Live: true, DestDisks: map[string]string{"vda": "/d/b.img"}}, 0, "non-shared disk"},
	} {
		err := c.o.Validate()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || c.o.Flags() != c.flags {
			t.Errorf("%s: flags %b %v, want %b", c.name, c.o.Flags(), err, c.flags)
		}
	}
	p := MigrateOptions{MigrationURI: "tcp://127.0.0.1", BandwidthMiBps: 100, TLSDestination: "hv2"}.params()
	p = withString(p, "migrate_uri", "tcp://127.0.0.1:49350")
	got := map[string]any{}
	for _, x := range p {
		got[x.Field] = x.Value.I
	}
	if len(p) != 3 || got["migrate_uri"] != "tcp://127.0.0.1:49350" || got["bandwidth"] != uint64(100) || got["tls.destination"] != "hv2" {
		t.Errorf("params %+v", p)
	}
}

// TestMirrorMapping: --storage mirror under libvirt is VIR_MIGRATE_NON_SHARED_DISK (not
// _INC) with the disk named in VIR_MIGRATE_PARAM_MIGRATE_DISKS and the destination's
// domain XML (VIR_MIGRATE_PARAM_DEST_XML) pointing it at the destination's image.
func TestMirrorMapping(t *testing.T) {
	d := &Driver{cfg: DriverConfig{NonSharedDisk: true}, destDisk: &destImage{Path: "/dst/b.img"}}
	o := d.migrateOptions(hv.Params{Mode: hv.ModePrecopy})
	if o.Flags() != golibvirt.MigrateLive|golibvirt.MigrateNonSharedDisk || o.NonSharedInc || o.Unsafe {
		t.Errorf("flags %b (%v)", o.Flags(), o.Names())
	}
	var disks []string
	for _, p := range o.params() {
		if p.Field == golibvirt.MigrateParamMigrateDisks {
			disks = append(disks, p.Value.I.(string))
		}
	}
	if fmt.Sprint(disks) != "[vda]" {
		t.Errorf("migrate_disks %v", disks)
	}
	x, err := DomainXML(Spec{Name: "g", Kernel: "/k", Disk: &Disk{Source: "/src/a.img"}})
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	if err := setDiskSources(&dom, o.DestDisks); err != nil {
		t.Fatal(err)
	}
	if got := dom.Devices.Disks[0].Source.File.File; got != "/dst/b.img" {
		t.Errorf("destination XML's disk %s", got)
	}
	if err := setDiskSources(&dom, map[string]string{"vdb": "/x"}); err == nil || !strings.Contains(err.Error(), "no file disk vdb") {
		t.Errorf("a disk the domain lacks: %v", err)
	}
	// Shared storage: no disk named, no destination XML of its own.
	if o := (&Driver{}).migrateOptions(hv.Params{}); o.NonSharedDisk || len(o.DestDisks) > 0 {
		t.Errorf("shared: %+v", o)
	}
}

// TestPrepareDestImage: a new sparse image of the source's size that every user may open,
// the source's own file refused (also through another name), an existing image only of
// the same size and with allowDestructive, a remote destination only with a path.
func TestPrepareDestImage(t *testing.T) {
	dir := t.TempDir()
	// Every directory above the images searchable, as for a daemon of another user.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, make([]byte, 8192), 0o666); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.img")
	if err := os.Link(src, link); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.img")
	if err := os.WriteFile(other, make([]byte, 4096), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want         string
		local, destructive bool
		err                string
	}{
		{"scratch", "", true, false, ""},
		{"in a directory", dir, true, false, ""},
		{"the source", src, true, true, "the source image itself"},
		{"the source by another name", link, true, true, "the source image itself"},
		{"another size", other, true, true, "4096 bytes, the source 8192"},
		{"missing", filepath.Join(dir, "nope", "x.img"), true, false, "no such file"},
		{"remote without a path", "", false, false, "on another host"},
		{"remote", "/srv/vm.img", false, false, ""},
	} {
		img, err := prepareDestImage(src, c.want, c.local, c.destructive, false)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.local {
			st, err := os.Stat(img.Path)
			if err != nil || st.Size() != 8192 || st.Mode().Perm() != 0o666 || img.Path == src {
				t.Errorf("%s: %s %+v %v", c.name, img.Path, st, err)
			}
		}
		if err := img.close(); err != nil {
			t.Errorf("%s: remove: %v", c.name, err)
		}
		if c.local {
			if _, err := os.Stat(img.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %s left after close: %v", c.name, img.Path, err)
			}
		}
	}
	// The same size needs --allow-destructive.
	same := filepath.Join(dir, "same.img")
	if err := os.WriteFile(same, make([]byte, 8192), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(same, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	if _, err := prepareDestImage(src, same, true, false, false); err == nil || !strings.Contains(err.Error(), "--allow-destructive") {
		t.Errorf("existing image: %v", err)
	}
	if img, err := prepareDestImage(src, same, true, true, false); err != nil || img.Path != same || img.close() != nil {
		t.Errorf("existing image, destructive: %+v %v", img, err)
	}
	if _, err := os.Stat(same); err != nil {
		t.Errorf("a given image must stay: %v", err)
	}
}

func TestParseJobStats(t *testing.T) {
	ull := func(f string, v uint64) golibvirt.TypedParam {
		return golibvirt.TypedParam{Field: f, Value: *golibvirt.NewTypedParamValueUllong(v)}
	}
	js := parseJobStats(3, []golibvirt.TypedParam{
		ull("time_elapsed", 10400), ull("downtime", 464), ull("setup_time", 12), ull("data_total", 300),
		ull("data_processed", 200), ull("data_remaining", 0), ull("memory_iteration", 4), ull("memory_dirty_rate", 77),
		{Field: "operation", Value: *golibvirt.NewTypedParamValueInt(2)},
		{Field: "errmsg", Value: *golibvirt.NewTypedParamValueString("boom")},
	})
	if js.Type != "completed" || js.Elapsed != 10400*time.Millisecond || js.Downtime != 464*time.Millisecond ||
		js.Setup != 12*time.Millisecond || js.DataTotal != 300 || js.DataProcessed != 200 || js.Iterations != 4 ||
		js.DirtyRate != 77 || js.ErrMsg != "boom" || !js.Has["data_remaining"] || js.Has["disk_total"] {
		t.Errorf("%+v", js)
	}
	if parseJobStats(9, nil).Type != "unknown" || parseJobStats(2, nil).Type != "unbounded" {
		t.Error("job types")
	}
}

func TestVersionString(t *testing.T) {
	if v := versionString(9000000); v != "9.0.0" {
		t.Error(v)
	}
	if v := versionString(7002011); v != "7.2.11" {
		t.Error(v)
	}
}

func TestProgressAndNames(t *testing.T) {
	p := progress(JobStats{Type: "completed", Elapsed: 9 * time.Second, Downtime: 80 * time.Millisecond, Setup: time.Second,
		MemoryTotal: 300, MemoryProcessed: 200, MemoryRemaining: 100, MemoryBPS: 1e6, Iterations: 3, Has: map[string]bool{"memory_total": true}})
	if !p.HaveRAM || p.TotalTime != 9*time.Second || p.Downtime != 80*time.Millisecond || p.Transferred != 200 ||
		p.Remaining != 100 || p.Total != 300 || p.Iterations != 3 || p.Mbps != 8 {
		t.Errorf("progress %+v", p)
	}
	if p := progress(JobStats{Type: "none", Has: map[string]bool{}}); p.HaveRAM {
		t.Errorf("no RAM figures reported, but %+v", p)
	}
	o := MigrateOptions{Live: true, PeerToPeer: true, Tunnelled: true, Unsafe: true}
	if n := strings.Join(o.Names(), ","); n != "live,peer-to-peer,tunnelled,unsafe" {
		t.Errorf("names %s", n)
	}
}

// TestRefusedClientCert: only a TLS connection that the daemon closed (or alerted) counts as
// the daemon refusing the client's certificate.
func TestRefusedClientCert(t *testing.T) {
	for _, c := range []struct {
		uri  string
		err  error
		want bool
	}{
		{"qemu+tls://h/system", fmt.Errorf("connect: %w", io.EOF), true},
		{"qemu://h/system", fmt.Errorf("connect: %w", syscall.ECONNRESET), true},
		{"qemu+tls://h/system", tls.AlertError(42), true},
		{"qemu+tls://h/system", errors.New("connection to the daemon lost during the call"), true},
		{"qemu+tls://h/system", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), false},
		{"qemu+tcp://h/system", fmt.Errorf("connect: %w", io.EOF), false},
		{"qemu+unix:///session?socket=/s", fmt.Errorf("connect: %w", io.EOF), false},
		{"qemu:///system", fmt.Errorf("connect: %w", io.EOF), false},
	} {
		u, err := url.Parse(c.uri)
		if err != nil {
			t.Fatal(err)
		}
		if got := refusedClientCert(u, c.err); got != c.want {
			t.Errorf("%s, %v: %v, want %v", c.uri, c.err, got, c.want)
		}
	}
}

// TestNoFinalFigures: why the destination's completed job gave no figures.
func TestNoFinalFigures(t *testing.T) {
	for _, c := range []struct {
		js   JobStats
		err  error
		want string
	}{
		{JobStats{Type: "none"}, nil, `libvirt recorded no completed job on the destination (job type "none")`},
		{JobStats{}, errors.New("connection reset"), "libvirt's completed job could not be read: connection reset"},
	} {
		if got := noFinalFigures(c.js, c.err); got != c.want {
			t.Errorf("%q, want %q", got, c.want)
		}
	}
}

// TestSourceCPUTime: the source's CPU time recorded before Confirm is given only once the
// migration has completed; a peer-to-peer migration or a failed read says why it has none.
func TestSourceCPUTime(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name    string
		m       *Migration
		want    time.Duration
		ok      bool
		errWith string
	}{
		{"running", &Migration{}, 0, false, ""},
		{"completed", &Migration{ended: now, sourceCPU: 2 * time.Second}, 2 * time.Second, true, ""},
		{"failed: the source still runs", &Migration{ended: now, err: errors.New("refused")}, 0, false, ""},
		{"read failed", &Migration{ended: now, sourceCPUErr: errors.New("timeout")}, 0, false, "before Confirm: timeout"},
		{"peer-to-peer", &Migration{ended: now, opts: MigrateOptions{PeerToPeer: true}}, 0, false, "peer-to-peer"},
	} {
		c.m.Source = &Domain{Name: "vsb-1"}
		d, ok, err := c.m.SourceCPUTime()
		if d != c.want || ok != c.ok || (c.errWith == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.errWith)) {
			t.Errorf("%s: %s %v %v", c.name, d, ok, err)
		}
	}
}
