package migrate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/results"
	"github.com/vmstorbench/vmstorbench/vm/hv"
	"github.com/vmstorbench/vmstorbench/vm/linkemu"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses: fields count from the last ')'.
	line := "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0"
	got, err := parseStatCPU(line)
	if err != nil || got != 3.25 {
		t.Fatalf("parseStatCPU = %v, %v; want 3.25 s (325 ticks)", got, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Error("a short line was accepted")
	}
	self, err := cpuSeconds(os.Getpid())
	if err != nil || self < 0 {
		t.Fatalf("own CPU time: %v, %v", self, err)
	}
}

// scratchDisk is a local image of size bytes filled with random data.
func scratchDisk(t *testing.T, size int64, random bool) *Disk {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img")
	b := make([]byte, size)
	if random {
		rand.Read(b)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return &Disk{path: path, Size: size, Drive: hv.Disk{File: path, Format: "raw"}}
}

// TestBlockCopyAndDeltas copies an image through a counting link, changes two blocks of
// the source, sends the deltas (only those two blocks may cross), and compares; in the
// clear and over TLS, where a tap on the link must not see the image's known pattern.
func TestBlockCopyAndDeltas(t *testing.T) {
	for _, sec := range []string{SecurityNone, SecurityTLS, SecurityTLSVerify} {
		t.Run(sec, func(t *testing.T) { testBlockCopyAndDeltas(t, sec) })
	}
}

func testBlockCopyAndDeltas(t *testing.T, security string) {
	const size = 4 << 20
	src, dst := scratchDisk(t, size, true), scratchDisk(t, size, false)
	pattern := []byte("vmstorbench plaintext pattern 0123456789")
	if f, err := os.OpenFile(src.path, os.O_WRONLY, 0); err == nil {
		f.WriteAt(pattern, 1<<20)
		f.Close()
	}
	var srvTLS, cliTLS *tls.Config
	if security != SecurityNone {
		dir := t.TempDir()
		if _, err := writeTLSCreds(dir); err != nil {
			t.Fatal(err)
		}
		var err error
		if srvTLS, cliTLS, err = diskStreamTLS(dir, security == SecurityTLSVerify); err != nil {
			t.Fatal(err)
		}
	}
	in, err := dst.openData(true)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	srv, err := startBlockServer(in, size, srvTLS)
	if err != nil {
		t.Fatal(err)
	}
	tap := startTap(t, srv.Addr())
	p, err := linkemu.Start(linkemu.Link{Name: "t"}, tap.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	out, err := src.openData(false)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx := context.Background()
	bc, err := dialBlockClient(ctx, p.Addr(), cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.sendAll(out, size, nil); err != nil {
		t.Fatal(err)
	}
	bc.Close()
	ic, err := compareImages(out, in, size)
	if err != nil || ic.DifferingBlocks != 0 || ic.Blocks != size/4096 {
		t.Fatalf("after the copy: %+v, %v", ic, err)
	}
	if seen := tap.contains(pattern); seen != (security == SecurityNone) {
		t.Errorf("security %s: the link carried the image's plaintext: %v", security, seen)
	}
	// Change two blocks of the source, in different delta blocks.
	f, _ := os.OpenFile(src.path, os.O_WRONLY, 0)
	f.WriteAt([]byte("changed"), 4096)
	f.WriteAt([]byte("changed"), 3<<20)
	f.Close()
	ic, _ = compareImages(out, in, size)
	if ic.DifferingBlocks != 2 || ic.Differing[0] != 4096 || ic.Differing[1] != 3<<20 {
		t.Fatalf("the image check missed the changed blocks: %+v", ic)
	}
	up0, down0 := p.Bytes()
	bc, err = dialBlockClient(ctx, p.Addr(), cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	blk := deltaBlockSize(size)
	blocks, n, err := bc.sendDeltas(out, size, blk)
	bc.Close()
	if err != nil || blocks != 2 || n != int64(2*blk) {
		t.Fatalf("deltas: %d blocks, %d bytes, %v; want 2 blocks of %d", blocks, n, err, blk)
	}
	// Back: the checksums and the flush's one-byte answer (TLS adds its handshake and
	// records, so the exact count holds in the clear only).
	if up, down := p.Bytes(); security == SecurityNone && (up-up0 > n+100 || down-down0 != int64(size/blk*32)+1) {
		t.Errorf("link carried %d bytes out (deltas %d) and %d back (want %d of checksums + 1)", up-up0, n, down-down0, size/blk*32)
	}
	if ic, _ := compareImages(out, in, size); ic.DifferingBlocks != 0 {
		t.Fatalf("after the deltas: %+v", ic)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("receiver: %v", err)
	}
}

// tap is a TCP relay that keeps every byte it passes, either way.
type tap struct {
	addr string
	mu   sync.Mutex
	seen []byte // towards upstream
	back []byte // from upstream
}

func startTap(t *testing.T, upstream string) *tap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tp := &tap{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", upstream, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			go tp.relay(u, c, &tp.back)
			go tp.relay(c, u, &tp.seen)
		}
	}()
	return tp
}

// relay copies from to to, keeping what passes in *keep, and closes to when from ends.
func (tp *tap) relay(from, to net.Conn, keep *[]byte) {
	buf := make([]byte, 64<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			tp.mu.Lock()
			*keep = append(*keep, buf[:n]...)
			tp.mu.Unlock()
			if _, werr := to.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	to.Close()
}

// contains reports whether p crossed the tap in the clear, either way.
func (tp *tap) contains(p []byte) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Contains(tp.seen, p) || bytes.Contains(tp.back, p)
}

// bytesBack is how many bytes the tap has passed from upstream.
func (tp *tap) bytesBack() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.back)
}

// TestBlockCopyLinkDies stops the link in the middle of a copy over a slow link: the
// sender must fail within seconds.
func TestBlockCopyLinkDies(t *testing.T) {
	const size = 8 << 20
	src, dst := scratchDisk(t, size, true), scratchDisk(t, size, false)
	in, _ := dst.openData(true)
	defer in.Close()
	srv, err := startBlockServer(in, size, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := linkemu.Start(linkemu.Link{Name: "slow", Bandwidth: 1_000_000}, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := src.openData(false)
	defer out.Close()
	bc, err := dialBlockClient(context.Background(), p.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	time.AfterFunc(500*time.Millisecond, p.Stop)
	start := time.Now()
	err = bc.sendAll(out, size, nil)
	if err == nil {
		t.Fatal("the copy succeeded through a link that was stopped")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the copy failed only after %s", d)
	}
}

func TestStorageRefusals(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Storage: StoragePull, Mode: ModeStopcopy}, "pull"},
		{Config{Storage: StorageCopy, Mode: ModePostcopy}, "post-copy"},
		{Config{Storage: StorageCopy, Mode: ModeNone}, "needs a migration"},
		{Config{Storage: "rsync"}, "must be one of"},
		{Config{To: "/tmp"}, "--to"},
		{Config{Storage: StorageMirror, Mode: ModePostcopy, CheckMemory: true}, "post-copy"},
		{Config{WattsPerCore: -1}, "watts"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want an error about %q", c.cfg, err, c.want)
		}
	}
	for _, ok := range []Config{{Storage: StorageTwoPhase, Mode: ModeStopcopy}, {Storage: StorageMirror, Mode: ModeNone}, {Storage: StoragePull, Mode: ModePostcopy}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s with %s refused: %v", ok.Storage, ok.Mode, err)
		}
	}
}

// TestDestinationChecks: the destination may not be the source, nor smaller or larger, and
// nothing is written to it when refused.
func TestDestinationChecks(t *testing.T) {
	const size = 1 << 20
	src := scratchDisk(t, size, true)
	before, _ := os.ReadFile(src.path)
	small := filepath.Join(t.TempDir(), "small.img")
	os.WriteFile(small, make([]byte, size/2), 0o644)
	for _, c := range []struct {
		to, want string
	}{
		{"file://" + src.path, "source image itself"},
		{"file://" + small, "too small"},
		{"file:///nonexistent-dir/sub/x.img", "nonexistent-dir"},
	} {
		s := &scenario{cfg: &Config{Disk: src, Storage: StorageCopy, To: c.to, ToOptions: DiskOptions{AllowDestructive: true}, Logf: t.Logf}}
		err := s.prepareStorage(context.Background(), &results.Migration{})
		if cerr := s.runCleanups(); cerr != nil {
			t.Error(cerr)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--to %s: %v; want an error about %q", c.to, err, c.want)
		}
	}
	after, _ := os.ReadFile(src.path)
	if string(before) != string(after) {
		t.Error("the source image changed")
	}
	if b, _ := os.ReadFile(small); len(b) != size/2 {
		t.Errorf("the refused destination was changed: %d bytes", len(b))
	}
	// A directory gets a new image of the source's size, removed afterwards.
	dir := t.TempDir()
	s := &scenario{cfg: &Config{Disk: src, Storage: StorageMirror, To: "file://" + dir, Logf: t.Logf}}
	if err := s.prepareStorage(context.Background(), &results.Migration{}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.dst0.imageLen(); err != nil || n != size {
		t.Errorf("new destination image: %d bytes, %v", n, err)
	}
	if err := s.runCleanups(); err != nil {
		t.Error(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("left in the destination directory: %v", left)
	}
}
