package nfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		url     string
		want    func(c config) bool
		wantErr string
	}{
		{url: "nfs://host/export/vm.img", want: func(c config) bool {
			return c.host == "host" && c.nfsPort == 0 && c.mountPort == 0 && c.path == "/export/vm.img" &&
				c.export == "" && c.stable == stableFile && c.create && c.timeout == backends.DefaultIOTimeout
		}},
		{url: "nfs://127.0.0.1:2049/a/b/?mountport=20048&stable=unstable&uid=1000&gid=100&timeout=5s&create=never", want: func(c config) bool {
			return c.nfsPort == 2049 && c.mountPort == 20048 && c.path == "/a/b" && c.stable == stableUnst &&
				c.uid == 1000 && c.gid == 100 && c.timeout == 5*time.Second && !c.create
		}},
		{url: "nfs://[::1]:2049/srv/nfs/vm.img?export=srv/nfs/", want: func(c config) bool {
			return c.host == "::1" && c.export == "/srv/nfs"
		}},
		{url: "nfs://host/e/f?rsize=64k&wsize=1m", want: func(c config) bool { return c.rsize == 64<<10 && c.wsize == 1<<20 }},
		{url: "nfs://host/e/f?rsize=100", wantErr: "must be 512 bytes"},
		{url: "nfs://host/e/f?wsize=1g", wantErr: "must be 512 bytes"},
		{url: "nfs:///export/f", wantErr: "no host"},
		{url: "nfs://host", wantErr: "no path"},
		{url: "nfs://host:0/e/f", wantErr: "bad port"},
		{url: "nfs://host/e/../f", wantErr: ". or .."},
		{url: "nfs://host/e/f?mountport=x", wantErr: "not an integer"},
		{url: "nfs://host/e/f?mountport=70000", wantErr: "not a port"},
		{url: "nfs://host/e/f?stable=sync", wantErr: "must be one of"},
		{url: "nfs://host/e/f?create=always", wantErr: "must be one of"},
		{url: "nfs://host/e/f?export=/other", wantErr: "not a leading part"},
		{url: "nfs://host/export2/f?export=/export", wantErr: "not a leading part"},
		{url: "nfs://host/e/f?uid=-1", wantErr: "out of range"},
		{url: "nfs://host/e/f?timeout=0s", wantErr: "positive"},
		{url: "nfs://host/e/?name=a/b", wantErr: "plain file name"},
		{url: "nfs://user@host/e/f", wantErr: "uid="},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseConfig(u)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// TestRegistryRejectsUnknownOption: options are declared as data and the registry checks them.
func TestRegistryRejectsUnknownOption(t *testing.T) {
	_, err := backends.Open(t.Context(), "nfs://127.0.0.1/e/f?vers=4", backends.OpenParams{})
	if err == nil || !strings.Contains(err.Error(), "unknown option") {
		t.Fatalf("err = %v", err)
	}
}

// fio's sync= and stable=unstable contradict each other: refused before any network call.
func TestSyncWritesRefuseUnstable(t *testing.T) {
	_, err := backends.Open(t.Context(), "nfs://127.0.0.1:1/e/f?mountport=1&stable=unstable", backends.OpenParams{Write: true, SyncWrites: "dsync"})
	if err == nil || !strings.Contains(err.Error(), "sync=dsync") || !strings.Contains(err.Error(), "stable=unstable") {
		t.Fatalf("err = %v, want sync= refused with stable=unstable", err)
	}
}

// fakeFile answers transfer's pieces from a byte slice, at most limit bytes per call, like a
// server that returns short reads.
type fakeFile struct {
	data  []byte
	limit int
}

func (f *fakeFile) read(b []byte, off int64) (int, bool, error) {
	if off >= int64(len(f.data)) {
		return 0, true, nil
	}
	n := copy(b[:min(len(b), f.limit)], f.data[off:])
	return n, off+int64(n) >= int64(len(f.data)), nil
}

func TestTransfer(t *testing.T) {
	data := make([]byte, 10000)
	for i := range data {
		data[i] = byte(i * 13)
	}
	tests := []struct {
		name        string
		limit, max  int
		off, length int
		wantN       int
		wantErr     error
	}{
		{"one piece", 1 << 20, 4096, 0, 4096, 4096, nil},
		{"split", 1 << 20, 1000, 5, 3500, 3500, nil},
		{"short reads", 300, 1000, 0, 2500, 2500, nil},
		{"to the end", 1 << 20, 1000, 9000, 1000, 1000, nil},
		{"past the end", 1 << 20, 1000, 8500, 3000, 1500, io.EOF},
		{"past the end, short reads", 700, 1000, 7000, 5000, 3000, io.EOF},
		{"at the end", 1 << 20, 1000, 10000, 10, 0, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeFile{data: data, limit: tt.limit}
			buf := make([]byte, tt.length)
			n, err := transfer(buf, int64(tt.off), tt.max, func(b []byte, off int64) (int, bool, error) {
				if len(b) > tt.max {
					t.Errorf("piece of %d bytes, max %d", len(b), tt.max)
				}
				return f.read(b, off)
			})
			if n != tt.wantN || err != tt.wantErr {
				t.Fatalf("n, err = %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
			if string(buf[:n]) != string(data[tt.off:tt.off+n]) {
				t.Fatal("wrong data")
			}
		})
	}
	t.Run("no progress", func(t *testing.T) {
		_, err := transfer(make([]byte, 5000), 0, 1000, func(b []byte, off int64) (int, bool, error) { return 0, false, nil })
		if !errors.Is(err, errNoProgress) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("error in a piece", func(t *testing.T) {
		boom := errors.New("boom")
		n, err := transfer(make([]byte, 5000), 0, 1000, func(b []byte, off int64) (int, bool, error) {
			if off >= 2000 {
				return 0, false, boom
			}
			return len(b), false, nil
		})
		if n != 2000 || err != boom {
			t.Fatalf("n, err = %d, %v", n, err)
		}
	})
}

// commitServer answers every COMMIT with verifier verf.
func commitServer(t *testing.T, verf [8]byte) string {
	return scriptedServer(t, func(c net.Conn, r *bufio.Reader) {
		for {
			req, err := readRequest(r)
			if err != nil {
				return
			}
			if proc := binary.BigEndian.Uint32(req.body[20:]); proc != 21 {
				t.Errorf("procedure %d, want COMMIT (21)", proc)
				return
			}
			var res xdrBuf
			res.u32(0)      // NFS3_OK
			res.bool(false) // wcc before
			res.bool(false) // wcc after
			res = append(res, verf[:]...)
			c.Write(acceptedReply(req.xid, res, 0))
		}
	})
}

// TestSyncVerifier: Sync fails when the unstable writes it commits were answered with a
// verifier other than the COMMIT's (the server restarted in between).
func TestSyncVerifier(t *testing.T) {
	a, b := [8]byte{1}, [8]byte{2}
	tests := []struct {
		name    string
		writes  [][8]byte
		commit  [8]byte
		wantErr bool
	}{
		{"no writes", nil, a, false},
		{"same verifier", [][8]byte{a, a, a}, a, false},
		{"commit differs", [][8]byte{a, a}, b, true},
		{"writes differ", [][8]byte{a, b}, b, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := &target{c: dialScripted(t, commitServer(t, tt.commit), 5*time.Second), stable: stableUnst, where: "test"}
			for _, v := range tt.writes {
				tg.noteVerf(v)
			}
			err := tg.Sync()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Sync() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "verifier changed") {
				t.Errorf("error does not say why: %v", err)
			}
			// The writes were reported once; the next Sync starts afresh.
			if err := tg.Sync(); err != nil {
				t.Errorf("second Sync() = %v", err)
			}
		})
	}
}
