package drbdnode

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends/drbd/drbdstate"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// The integration tests share one pair (two TCG guests boot in ~10 s on 2 cores): it is
// started by the first test that needs it and stopped by TestMain.
var (
	pairOnce sync.Once
	pair     *Pair
	pairErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pair != nil {
		pair.Stop()
	}
	os.Exit(code)
}

func sharedPair(t *testing.T) *Pair {
	t.Helper()
	if testing.Short() {
		t.Skip("boots two TCG guests")
	}
	vmtest.RequireQEMU(t)
	pairOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		img, err := BuildImage(ctx, ImageOptions{CacheDir: guest.DefaultCacheDir(), Log: func(s string) { t.Log(s) }})
		if err != nil {
			pairErr = err
			return
		}
		dir, err := os.MkdirTemp("", "drbdpair-")
		if err != nil {
			pairErr = err
			return
		}
		sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer scancel()
		pair, pairErr = Start(sctx, Config{Dir: dir, Image: img})
		if pairErr == nil {
			t.Logf("pair ready in %v (image %s)", pair.Ready, filepath.Base(img.Dir))
		}
	})
	if pairErr != nil {
		t.Fatalf("drbd pair: %v", pairErr)
	}
	return pair
}

func call(t *testing.T, addr string, req drbdstate.Request) *drbdstate.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := drbdstate.Call(ctx, addr, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Op, err)
	}
	return r
}

func TestPairConnectedUpToDate(t *testing.T) {
	p := sharedPair(t)
	a := call(t, p.Nodes[0].Control, drbdstate.Request{Op: "state"}).State
	b := call(t, p.Nodes[1].Control, drbdstate.Request{Op: "state"}).State
	if a.Connection != "Connected" || a.Role != "Primary" || a.PeerRole != "Secondary" || a.Disk != "UpToDate" || a.PeerDisk != "UpToDate" || a.Protocol != "C" {
		t.Errorf("node a: %+v", a)
	}
	if b.Connection != "Connected" || b.Role != "Secondary" || b.Disk != "UpToDate" {
		t.Errorf("node b: %+v", b)
	}
}

func TestWriteOnAReadOnB(t *testing.T) {
	p := sharedPair(t)
	data := make([]byte, 8192)
	rand.Read(data)
	const off = 3 << 20
	call(t, p.Nodes[0].Control, drbdstate.Request{Op: "write", Offset: off, Data: data})
	got := call(t, p.Nodes[1].Control, drbdstate.Request{Op: "read", Offset: off, Length: len(data)}).Data
	if !bytes.Equal(got, data) {
		t.Fatalf("B's disk at %d does not hold what A wrote (protocol C: it must, once the write returned)", off)
	}
}

func TestProtocolSwitchOnline(t *testing.T) {
	p := sharedPair(t)
	for _, proto := range []string{"A", "B", "C"} {
		st := call(t, p.Nodes[0].Control, drbdstate.Request{Op: "protocol", Protocol: proto}).State
		if st.Protocol != proto || st.Connection != "Connected" {
			t.Errorf("after switching to %s: %+v", proto, st)
		}
	}
}

// TestCaptures parses what the nodes' kernel and drbdsetup-84 print; with
// VMSTORBENCH_UPDATE_CAPTURES=1 it saves them as the parsers' test data.
func TestCaptures(t *testing.T) {
	p := sharedPair(t)
	for i, n := range p.Nodes {
		raw := call(t, n.Control, drbdstate.Request{Op: "capture"}).Raw
		_, sts, err := drbdstate.ParseProc([]byte(raw["proc"]))
		if err != nil || len(sts) != 1 || sts[0].Connection != "Connected" {
			t.Errorf("node %s /proc/drbd: %v %+v\n%s", n.Name, err, sts, raw["proc"])
		}
		cfgs, err := drbdstate.ParseShow([]byte(raw["show"]))
		if err != nil || len(cfgs) != 1 || cfgs[0].Protocol == "" || cfgs[0].LocalAddr != addrs[i]+":7789" || cfgs[0].RemoteAddr != addrs[1-i]+":7789" {
			t.Errorf("node %s show: %v %+v\n%s", n.Name, err, cfgs, raw["show"])
		}
		if raw["events2"] != "" {
			st, err := drbdstate.ParseEvents2([]byte(raw["events2"]), "r0")
			if err != nil || st.Connection != "Connected" {
				t.Errorf("node %s events2: %v %+v\n%s", n.Name, err, st, raw["events2"])
			}
		} else {
			t.Logf("node %s: no events2 output: %s", n.Name, raw["events2.error"])
		}
		if i == 0 {
			// A non-default protocol is the one show prints.
			call(t, n.Control, drbdstate.Request{Op: "protocol", Protocol: "A"})
			rawA := call(t, n.Control, drbdstate.Request{Op: "capture"}).Raw
			call(t, n.Control, drbdstate.Request{Op: "protocol", Protocol: "C"})
			if cfgs, err := drbdstate.ParseShow([]byte(rawA["show"])); err != nil || len(cfgs) != 1 || cfgs[0].Protocol != "A" {
				t.Errorf("node a show with protocol A: %v %+v\n%s", err, cfgs, rawA["show"])
			}
			raw["show-protocol-a"], raw["proc-protocol-a"] = rawA["show"], rawA["proc"]
		}
		if os.Getenv("VMSTORBENCH_UPDATE_CAPTURES") != "" {
			for k, v := range raw {
				if v == "" || filepath.Ext(k) == ".error" {
					continue
				}
				name := filepath.Join("..", "..", "backends", "drbd", "drbdstate", "testdata", "node-"+n.Name+"-"+k+".txt")
				if err := os.WriteFile(name, []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestNBDExportFromHost writes through node A's NBD export with QEMU's own NBD client (what
// a VM's disk would use) and reads the bytes back from node B's disk.
func TestNBDExportFromHost(t *testing.T) {
	p := sharedPair(t)
	qio, err := exec.LookPath("qemu-io")
	if err != nil {
		vmtest.Missing(t, err)
	}
	url := "nbd://" + p.Nodes[0].NBD + "/drbd0"
	out, err := exec.Command(qio, "-f", "raw", "-t", "none", "-c", "write -P 0x5a 5M 64k", url).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io write: %v: %s", err, out)
	}
	got := call(t, p.Nodes[1].Control, drbdstate.Request{Op: "read", Offset: 5 << 20, Length: 64 << 10}).Data
	if !bytes.Equal(got, bytes.Repeat([]byte{0x5a}, 64<<10)) {
		t.Fatal("node B's disk does not hold what was written through node A's export")
	}
}

// TestBackendInNode runs the drbd:// backend inside the nodes, where it reads a real DRBD as
// on any DRBD 8.4 host: /proc/drbd for the state, drbdsetup-84 show and net-options for the
// protocol; on the Secondary it refuses with the reason.
func TestBackendInNode(t *testing.T) {
	p := sharedPair(t)
	for _, proto := range []string{"B", "C"} {
		r := call(t, p.Nodes[0].Control, drbdstate.Request{Op: "run", URL: "drbd:///dev/drbd0?resource=r0&protocol=" + proto, RuntimeMS: 1000})
		var res results.Run
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatal(err)
		}
		rep := res.Replication
		if rep == nil || rep.Protocol != proto || rep.Source != "/proc/drbd" || rep.Start.Role != "Primary" || rep.End.Protocol != proto || len(rep.Samples) < 4 {
			t.Fatalf("protocol %s: %+v", proto, rep)
		}
		if res.Write == nil || rep.SentBytes < res.Write.Bytes || res.Target.Info["security"] != "protocol "+proto || res.Target.Info["drbd_version"] != "8.4.11" {
			t.Errorf("protocol %s: sent %d for %+v, info %v", proto, rep.SentBytes, res.Write, res.Target.Info)
		}
		t.Logf("in node a, protocol %s: %.0f IOPS, mean %.2f ms, %.2f GiB sent per GiB written", proto, res.Write.IOPS, res.Write.Lat.Mean/1e6, rep.SentPerGiBWritten/(1<<30))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := drbdstate.Call(ctx, p.Nodes[1].Control, drbdstate.Request{Op: "run", URL: "drbd:///dev/drbd0", RuntimeMS: 500})
	if err == nil || !strings.Contains(err.Error(), "role is Secondary, not Primary") {
		t.Errorf("on the secondary: %v", err)
	}
}
