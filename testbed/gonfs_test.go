package testbed

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestGoNFS(t *testing.T) {
	dir := t.TempDir()
	g := NewGoNFS()
	eps, err := g.Start(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Stop() })
	if len(eps) != 1 || eps[0].Name != "nfs-gonfs" || g.PIDs() != nil {
		t.Fatalf("endpoints %+v, PIDs %v", eps, g.PIDs())
	}
	u, err := url.Parse(eps[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(g.Port())
	if u.Host != "127.0.0.1:"+port || u.Path != GoNFSExport+"/"+NFSFile || u.Query().Get("mountport") != port ||
		g.ExportDir() != filepath.Join(dir, "export") {
		t.Errorf("endpoint URL %s", eps[0].URL)
	}

	// A MOUNT of another path is refused (go-nfs alone would accept any path).
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if st := mountStatus(t, c, "/elsewhere"); st != 2 {
		t.Errorf("MNT /elsewhere: status %d, want MNT3ERR_NOENT (2)", st)
	}
	if st := mountStatus(t, c, GoNFSExport); st != 0 {
		t.Errorf("MNT %s: status %d, want MNT3_OK", GoNFSExport, st)
	}

	// Stop closes established connections, not only the listener.
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after Stop")
	}
	if _, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		t.Error("still accepting after Stop")
	}
	if err := g.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// mountStatus sends MOUNTPROC3_MNT for path (AUTH_NONE) and returns the mountstat3.
func mountStatus(t *testing.T, c net.Conn, path string) uint32 {
	t.Helper()
	u32 := func(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
	var msg []byte
	msg = u32(msg, 0)                                               // record mark, below
	for _, v := range []uint32{1, 0, 2, 100005, 3, 1, 0, 0, 0, 0} { // xid, CALL, rpcvers, prog, vers, MNT, cred, verf
		msg = u32(msg, v)
	}
	msg = u32(msg, uint32(len(path)))
	msg = append(msg, path...)
	msg = append(msg, make([]byte, (4-len(path)%4)%4)...)
	binary.BigEndian.PutUint32(msg, uint32(len(msg)-4)|0x80000000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])&0x7fffffff)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	// xid, REPLY, MSG_ACCEPTED, verifier (flavor, length 0), SUCCESS, mountstat3
	if len(body) < 28 {
		t.Fatalf("short reply %x", body)
	}
	return binary.BigEndian.Uint32(body[24:])
}
