package migrate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/vmstorbench/vmstorbench/backends/file"
	_ "github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/guest"
	"github.com/vmstorbench/vmstorbench/workloads"
)

// TestTLSCreds checks the generated credentials the way QEMU uses them: the client verifies
// the server as 127.0.0.1 against the CA, and the server verifies the client certificate.
func TestTLSCreds(t *testing.T) {
	c, err := writeTLSCreds(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca-cert.pem", "server-cert.pem", "server-key.pem"} {
		if _, err := os.Stat(filepath.Join(c.ServerDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := os.Stat(filepath.Join(c.ClientDir, "client-key.pem")); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("client key mode %v", st)
	}
	load := func(dir, name string) (tls.Certificate, *x509.CertPool) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(filepath.Join(dir, "ca-cert.pem"))
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatal("bad CA")
		}
		return cert, pool
	}
	srvCert, srvPool := load(c.ServerDir, "server")
	cliCert, cliPool := load(c.ClientDir, "client")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: srvPool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		s, err := ln.Accept()
		if err == nil {
			io.Copy(s, s)
			s.Close()
		}
	}()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: cliPool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	conn.Write([]byte("x"))
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestComparePages(t *testing.T) {
	dir := t.TempDir()
	a, b := make([]byte, 5*4096), make([]byte, 5*4096)
	b[4096+7] = 1
	b[4*4096] = 9
	os.WriteFile(filepath.Join(dir, "a"), a, 0o644)
	os.WriteFile(filepath.Join(dir, "b"), b, 0o644)
	mc, err := comparePages(filepath.Join(dir, "a"), filepath.Join(dir, "b"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if mc.Pages != 5 || mc.DifferingPages != 2 || len(mc.FirstAddresses) != 2 || mc.FirstAddresses[0] != 4096 || mc.FirstAddresses[1] != 4*4096 {
		t.Fatalf("%+v", mc)
	}
	os.WriteFile(filepath.Join(dir, "c"), a[:4096], 0o644)
	if _, err := comparePages(filepath.Join(dir, "a"), filepath.Join(dir, "c"), 4096); err == nil {
		t.Error("dumps of different length compared equal")
	}
}

func TestGuestWorkload(t *testing.T) {
	c := &Config{At: time.Second, After: time.Second, Deadline: time.Second}
	c.Workload = workloads.Workload{RW: workloads.RandMixed, BS: [2]workloads.BlockSize{workloads.Fixed(8192), workloads.Fixed(8192)}, Size: 1 << 30, RampTime: time.Second}
	w, note, err := c.guestWorkload(64 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if w.Size != 64<<20 || !w.Direct || !w.TimeBased || w.RampTime != 0 || w.Verify != "crc32c" || note != "" || w.Runtime < 3*time.Second {
		t.Errorf("workload %+v note %q", w, note)
	}
	c.Workload.BS = [2]workloads.BlockSize{{Min: 4096, Max: 65536}, {Min: 4096, Max: 65536}}
	if w, note, err = c.guestWorkload(64 << 20); err != nil || w.Verify != "" || !strings.Contains(note, "not checked") {
		t.Errorf("variable block size: verify %q note %q err %v", w.Verify, note, err)
	}
	c.Workload = workloads.Workload{RW: workloads.RandRead}
	if _, note, _ = c.guestWorkload(64 << 20); !strings.Contains(note, "only reads") {
		t.Errorf("read-only note %q", note)
	}
	c.Workload = workloads.Workload{RW: workloads.RandRead, Offset: 128 << 20}
	if _, _, err := c.guestWorkload(64 << 20); err == nil {
		t.Error("offset beyond the disk accepted")
	}
}

func TestConfigDefaults(t *testing.T) {
	ok := Config{Image: nil}
	if err := ok.defaults(); err == nil {
		t.Error("no image accepted")
	}
	for name, mutate := range map[string]func(*Config){
		"mode":     func(c *Config) { c.Mode = "teleport" },
		"security": func(c *Config) { c.Security = "rot13" },
		"accel":    func(c *Config) { c.Accel = "hvf" },
		"postcopy memory check": func(c *Config) {
			c.Mode, c.CheckMemory = ModePostcopy, true
		},
	} {
		c := Config{Image: new(guest.Image), Disk: &Disk{}}
		mutate(&c)
		if err := c.defaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := Config{Image: new(guest.Image), Disk: &Disk{}, Mode: ModePostcopy}
	if err := c.defaults(); err != nil || c.PostcopyIterations != 1 || c.At != 3*time.Second || c.Deadline != time.Minute {
		t.Errorf("defaults %+v %v", c, err)
	}
}

func TestOpenDiskFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, err := OpenDisk(ctx, "file://"+dir, DiskOptions{Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.Drive.File)
	if err != nil || st.Size() != 1<<20 || d.Access != "file" || !d.Drive.Direct {
		t.Fatalf("scratch image %+v %v", d, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Drive.File); !os.IsNotExist(err) {
		t.Fatal("scratch image left behind")
	}
	existing := filepath.Join(dir, "vm.img")
	os.WriteFile(existing, make([]byte, 4096), 0o644)
	if _, err := OpenDisk(ctx, "file://"+existing, DiskOptions{Size: 1 << 20}); err == nil || !strings.Contains(err.Error(), "allow-destructive") {
		t.Fatalf("existing image without --allow-destructive: %v", err)
	}
	d, err = OpenDisk(ctx, "file://"+existing, DiskOptions{Size: 1 << 20, AllowDestructive: true})
	if err != nil || d.Size != 4096 {
		t.Fatalf("existing small image: %+v %v", d, err)
	}
	d.Close()
	d, err = OpenDisk(ctx, "file://"+existing, DiskOptions{Size: 1024, AllowDestructive: true})
	if err != nil || d.Size != 1024 {
		t.Fatalf("existing image: %+v %v", d, err)
	}
	d.Close()
	if _, err := os.Stat(existing); err != nil {
		t.Fatal("an existing image was removed")
	}
	if _, err := OpenDisk(ctx, "file://"+dir, DiskOptions{Size: 1 << 20, Access: "carrier-pigeon"}); err == nil {
		t.Error("bad access accepted")
	}
	if _, err := OpenDisk(ctx, "mem://", DiskOptions{Size: 1 << 20, Access: AccessNative}); err == nil || !strings.Contains(err.Error(), "no native driver") {
		t.Errorf("native access to a backend QEMU cannot reach: %v", err)
	}
	d, err = OpenDisk(ctx, "mem://", DiskOptions{Size: 1 << 20})
	if err != nil || d.Access != "nbd-export (mem)" || !strings.HasPrefix(d.Drive.File, "nbd://127.0.0.1:") {
		t.Fatalf("mem disk through the NBD export: %+v %v", d, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDisk(ctx, "nosuch://x", DiskOptions{Size: 1 << 20}); err == nil {
		t.Error("unknown backend accepted")
	}
}

func TestKVMProbeCache(t *testing.T) {
	dir := t.TempDir()
	if p := loadKVMProbe(dir, "7.2.0"); p != nil {
		t.Fatal("probe found in an empty cache")
	}
	saveKVMProbe(dir, "7.2.0", false, "no agent after 4s")
	p := loadKVMProbe(dir, "7.2.0")
	if p == nil || p.Usable || p.Reason != "no agent after 4s" {
		t.Fatalf("probe %+v", p)
	}
	// Another QEMU (or host kernel) may behave differently: check again.
	if p := loadKVMProbe(dir, "8.0.0"); p != nil {
		t.Fatal("a probe of another QEMU version was used")
	}
	if p := loadKVMProbe("", "7.2.0"); p != nil {
		t.Fatal("probe without a cache directory")
	}
}

func TestResultSave(t *testing.T) {
	r := &Result{Run: &results.Run{ID: "0123456789abcdef", Target: results.Target{Backend: "file"}}, Migration: &results.Migration{Mode: ModePrecopy, Outcome: OutcomeCompleted}}
	path, err := r.Save(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	back, err := results.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Migration == nil || back.Migration.Outcome != OutcomeCompleted {
		t.Fatalf("migration section lost: %+v", back.Migration)
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"migration":{"mode":"precopy"`) {
		t.Fatalf("JSON %s %v", b, err)
	}
}
