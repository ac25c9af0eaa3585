package drbdstate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProc(t *testing.T) {
	cases := []struct {
		file string
		want State
	}{
		{"proc84-syncsource.txt", State{Version: "8.4.11", Minor: 0, Role: "Primary", PeerRole: "Secondary",
			Connection: "Connected", Replication: "SyncSource", Disk: "UpToDate", PeerDisk: "Inconsistent", Protocol: "C",
			OutOfSyncBytes: 51160 * 1024, SyncPercent: 21.9, SentBytes: 14336 * 1024, ReadBytes: 15360 * 1024}},
		{"proc84-standalone.txt", State{Version: "8.4.11", Minor: 0, Role: "Primary", PeerRole: "Unknown",
			Connection: "WFConnection", Replication: "Off", Disk: "UpToDate", PeerDisk: "DUnknown", Protocol: "B",
			OutOfSyncBytes: 4096 * 1024, SyncPercent: -1, SentBytes: 4096 * 1024, WrittenBytes: 8192 * 1024, ReadBytes: 2080 * 1024}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			v, sts, err := ParseProc(read(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if v != "8.4.11" || len(sts) != 1 {
				t.Fatalf("version %q, %d states (want 1: minor 1 is unconfigured)", v, len(sts))
			}
			if sts[0] != c.want {
				t.Errorf("got  %+v\nwant %+v", sts[0], c.want)
			}
		})
	}
}

func TestProcNotDRBD(t *testing.T) {
	for _, in := range []string{"", "hello\nworld\n", "Linux version 6.1"} {
		if _, _, err := ParseProc([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseStatusJSON(t *testing.T) {
	sts, err := ParseStatusJSON(read(t, "status9.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := State{Resource: "r0", Minor: 0, Role: "Primary", PeerRole: "Secondary", Connection: "Connected",
		Replication: "SyncSource", Disk: "UpToDate", PeerDisk: "Inconsistent", OutOfSyncBytes: 4096 * 1024,
		SyncPercent: 93.75, SentBytes: 2048 * 1024, WrittenBytes: 2048 * 1024, ReadBytes: 1040 * 1024, SizeBytes: 65500 * 1024}
	if len(sts) != 1 || sts[0] != want {
		t.Fatalf("got  %+v\nwant %+v", sts, want)
	}
	if !sts[0].Resyncing() || sts[0].Healthy() != nil {
		t.Errorf("resyncing %v healthy %v", sts[0].Resyncing(), sts[0].Healthy())
	}
}

func TestEvents2(t *testing.T) {
	b := read(t, "events2.txt")
	// The initial dump alone ("exists" lines up to "exists -").
	head := string(b[:strings.Index(string(b), "exists -")])
	st, err := ParseEvents2([]byte(head), "r0")
	if err != nil {
		t.Fatal(err)
	}
	want := State{Resource: "r0", Minor: 0, Role: "Primary", PeerRole: "Secondary", Connection: "Connected",
		Replication: "Established", Disk: "UpToDate", PeerDisk: "UpToDate", SyncPercent: -1,
		SentBytes: 2048 * 1024, WrittenBytes: 2048 * 1024, ReadBytes: 1040 * 1024, SizeBytes: 65500 * 1024}
	if st != want {
		t.Fatalf("got  %+v\nwant %+v", st, want)
	}
	if st.Healthy() != nil || st.Degraded() != "" {
		t.Errorf("healthy %v degraded %q", st.Healthy(), st.Degraded())
	}
	// The whole stream: the peer went away.
	st, err = ParseEvents2(b, "r0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Connection != "Connecting" || st.PeerDisk != "DUnknown" || st.SentBytes != 6144*1024 || st.Connected() {
		t.Errorf("after the disconnect: %+v", st)
	}
	if d := st.Degraded(); !strings.Contains(d, "not connected") {
		t.Errorf("degraded %q", d)
	}
	if _, err := ParseEvents2(b, "r9"); err == nil {
		t.Error("r9: no error")
	}
	if _, err := ParseEvents2([]byte("bogus line here\n"), "r0"); err == nil {
		t.Error("bogus: no error")
	}
}

func TestHealthy(t *testing.T) {
	st := New()
	st.Role, st.Disk = "Secondary", "Inconsistent"
	err := st.Healthy()
	if err == nil || !strings.Contains(err.Error(), "role is Secondary, not Primary") || !strings.Contains(err.Error(), "disk is Inconsistent, not UpToDate") {
		t.Errorf("got %v", err)
	}
}

func TestParseShowSynthetic(t *testing.T) {
	in := `resource r0 {
    options {
    }
    net {
        protocol		B; # comment
        cram-hmac-alg "sha1";
        allow-two-primaries	yes;
    }
    _remote_host {
        address			ipv4 169.254.0.2:7789;
    }
    _this_host {
        address			ipv4 169.254.0.1:7789;
        volume 0 {
            device			minor 0;
            disk			"/dev/vda";
            meta-disk			internal;
        }
    }
}
`
	cfgs, err := ParseShow([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Resource: "r0", Protocol: "B", Minor: 0, Disk: "/dev/vda", LocalAddr: "169.254.0.1:7789", RemoteAddr: "169.254.0.2:7789", TwoPrimaries: true}
	if len(cfgs) != 1 || !reflect.DeepEqual(cfgs[0], want) {
		t.Fatalf("got %+v want %+v", cfgs, want)
	}
	for _, bad := range []string{"resource r0 {", "}", "resource {", `resource r0 { disk "x`} {
		if _, err := ParseShow([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Captured from the testbed's nodes (DRBD 8.4.11 in Debian's 6.1 kernel, drbd-utils 9.22's
// drbdsetup-84): node a Primary, node b Secondary, after an 8 KiB write on a.
func TestRealCaptures(t *testing.T) {
	for _, c := range []struct {
		node, role, peer, proto string
		sent, recv              int64
	}{
		{"a", "Primary", "Secondary", "C", 8 << 10, 0},
		{"b", "Secondary", "Primary", "C", 0, 8 << 10},
	} {
		_, sts, err := ParseProc(read(t, "node-"+c.node+"-proc.txt"))
		if err != nil || len(sts) != 1 {
			t.Fatalf("node %s proc: %v %+v", c.node, err, sts)
		}
		want := State{Version: "8.4.11", Minor: 0, Role: c.role, PeerRole: c.peer, Connection: "Connected", Replication: "Established",
			Disk: "UpToDate", PeerDisk: "UpToDate", Protocol: c.proto, SyncPercent: -1, SentBytes: c.sent, ReceivedBytes: c.recv}
		got := sts[0]
		got.WrittenBytes = 0
		if got != want {
			t.Errorf("node %s proc:\ngot  %+v\nwant %+v", c.node, got, want)
		}
		ev, err := ParseEvents2(read(t, "node-"+c.node+"-events2.txt"), "r0")
		if err != nil {
			t.Fatal(err)
		}
		want.Version, want.Resource, want.SizeBytes, ev.WrittenBytes = "", "r0", 65496<<10, 0
		want.Protocol = "" // events2 does not say
		if ev != want {
			t.Errorf("node %s events2:\ngot  %+v\nwant %+v", c.node, ev, want)
		}
		cfgs, err := ParseShow(read(t, "node-"+c.node+"-show.txt"))
		if err != nil || len(cfgs) != 1 || cfgs[0].Protocol != "C" || cfgs[0].Disk != "/dev/vda" || cfgs[0].Minor != 0 {
			t.Errorf("node %s show: %v %+v", c.node, err, cfgs)
		}
	}
	cfgs, err := ParseShow(read(t, "node-a-show-protocol-a.txt"))
	if err != nil || len(cfgs) != 1 || cfgs[0].Protocol != "A" {
		t.Errorf("show with protocol A: %v %+v", err, cfgs)
	}
	_, sts, err := ParseProc(read(t, "node-a-proc-protocol-a.txt"))
	if err != nil || len(sts) != 1 || sts[0].Protocol != "A" {
		t.Errorf("proc with protocol A: %v %+v", err, sts)
	}
}

// DRBD 9's show: the resource name quoted, addresses in path sections, connections by peer
// node id (written from drbd-utils 9's documented layout).
func TestParseShow9(t *testing.T) {
	cfgs, err := ParseShow(read(t, "show9.txt"))
	if err != nil || len(cfgs) != 1 {
		t.Fatalf("%v %+v", err, cfgs)
	}
	c := cfgs[0]
	if c.Resource != "r0" || c.Protocol != "A" || c.Minor != 1 || c.Disk != "/dev/sdb" || c.LocalAddr != "10.0.0.1:7789" ||
		c.RemoteAddr != "10.0.0.2:7789" || strings.Join(c.PeerNodeIDs, ",") != "1,2" {
		t.Errorf("got %+v", c)
	}
}
