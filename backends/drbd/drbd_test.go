package drbd

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	_ "github.com/vmstorbench/vmstorbench/backends/file"
)

const procSecondary = `version: 8.4.11 (api:1/proto:86-101)
 0: cs:Connected ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
`

// fakeDevice makes a block device node with DRBD's major (no driver behind it: opening it
// fails, which is after every check this package makes).
func fakeDevice(t *testing.T, minor uint32) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "drbd0")
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(drbdMajor, minor))); err != nil {
		t.Skipf("mknod: %v (needs root)", err)
	}
	return p
}

func writeProc(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "drbd")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefuseNotPrimary(t *testing.T) {
	dev := fakeDevice(t, 0)
	proc := writeProc(t, procSecondary)
	_, err := backends.Open(context.Background(), "drbd://"+dev+"?proc="+proc, backends.OpenParams{Write: true, AllowDestructive: true})
	if err == nil || !strings.Contains(err.Error(), "role is Secondary, not Primary") || !strings.Contains(err.Error(), "disk is Inconsistent, not UpToDate") || !strings.Contains(err.Error(), "allow_degraded=1") {
		t.Fatalf("got %v", err)
	}
	// With allow_degraded the checks pass and the device is opened (which fails here: the
	// node has no driver behind it).
	_, err = backends.Open(context.Background(), "drbd://"+dev+"?allow_degraded=1&proc="+proc, backends.OpenParams{})
	if err == nil || strings.Contains(err.Error(), "refusing") {
		t.Fatalf("allow_degraded: got %v", err)
	}
}

func TestBadInput(t *testing.T) {
	cases := map[string]string{
		"drbd:///dev/null":                           "is not a DRBD device",
		"drbd://host/dev/drbd0":                      "local device",
		"drbd:///dev/drbd0?protocol=D":               "want A, B or C",
		"drbd://?resource=r0&proc=/nonexistent/drbd": "kernel module is not loaded",
		"drbd://":                      "no device or resource",
		"drbd://?nbd=127.0.0.1:1":      "go together",
		"drbd://?allow_degraded=maybe": "want 0 or 1",
	}
	for u, want := range cases {
		_, err := backends.Open(context.Background(), u, backends.OpenParams{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", u, err, want)
		}
	}
}

// fakeAgent answers state and protocol requests as a testbed node agent does.
type fakeAgent struct {
	mu    sync.Mutex
	state drbdstate.State
	ops   []string
}

func (f *fakeAgent) serve(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := bufio.NewScanner(c)
			if sc.Scan() {
				var req drbdstate.Request
				_ = json.Unmarshal(sc.Bytes(), &req)
				f.mu.Lock()
				f.ops = append(f.ops, req.Op+req.Protocol)
				if req.Op == "protocol" {
					f.state.Protocol = req.Protocol
				}
				st := f.state
				f.mu.Unlock()
				b, _ := json.Marshal(drbdstate.Response{State: &st})
				c.Write(append(b, '\n'))
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestAgentSourceSwitchesProtocol(t *testing.T) {
	f := &fakeAgent{state: drbdstate.State{Role: "Primary", PeerRole: "Secondary", Disk: "UpToDate", PeerDisk: "UpToDate",
		Connection: "Connected", Replication: "Established", Protocol: "C", SyncPercent: -1}}
	addr := f.serve(t)
	src := agentSource{addr: addr}
	if err := src.SetProtocol(context.Background(), "B"); err != nil {
		t.Fatal(err)
	}
	st, err := src.State(context.Background())
	if err != nil || st.Protocol != "B" {
		t.Fatalf("state %+v, %v", st, err)
	}
	if strings.Join(f.ops, ",") != "protocolB,state" {
		t.Errorf("ops %v", f.ops)
	}
	// A dead agent: an error naming it, in time.
	dead := agentSource{addr: "127.0.0.1:1"}
	if _, err := dead.State(context.Background()); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("dead agent: %v", err)
	}
}

// A protocol switch happens only when needed, and never on a disconnected pair (the peer
// would keep the old protocol and refuse to reconnect).
func TestProtocolSwitchOnlyWhenConnected(t *testing.T) {
	f := &fakeAgent{state: drbdstate.State{Role: "Primary", PeerRole: "Unknown", Disk: "UpToDate", PeerDisk: "DUnknown",
		Connection: "WFConnection", Replication: "Off", Protocol: "C", SyncPercent: -1}}
	addr := f.serve(t)
	_, err := backends.Open(context.Background(), "drbd:///dev/drbd0?nbd=127.0.0.1:1&agent="+addr+"&protocol=A&allow_degraded=1", backends.OpenParams{})
	if err == nil || !strings.Contains(err.Error(), "not switching /dev/drbd0 to protocol A while it is WFConnection") {
		t.Errorf("got %v", err)
	}
	// Already at C: no switch, on to the I/O (which fails here: no NBD server).
	_, err = backends.Open(context.Background(), "drbd:///dev/drbd0?nbd=127.0.0.1:1&agent="+addr+"&protocol=C&allow_degraded=1", backends.OpenParams{})
	if err == nil || strings.Contains(err.Error(), "switch") {
		t.Errorf("got %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.ops, ",") != "state,state" {
		t.Errorf("ops %v: no protocol switch expected", f.ops)
	}
}
