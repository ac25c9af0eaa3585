package smb

import (
	"bytes"
	"encoding/binary"
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
		want    config
		wantErr string
	}{
		{url: "smb://alice@nas/vms/disk.img", want: config{addr: "nas:445", host: "nas", user: "alice", share: "vms", file: "disk.img", timeout: backends.DefaultIOTimeout}},
		{url: "smb://alice@127.0.0.1:4450/vms/a/b/disk.img?dialect=3.1.1&sign=required&domain=CORP&timeout=2s",
			want: config{addr: "127.0.0.1:4450", host: "127.0.0.1", user: "alice", domain: "CORP", share: "vms", file: "a/b/disk.img", dialect: 0x0311, sign: true, timeout: 2 * time.Second}},
		{url: "smb://alice@nas/vms/disk.img?dialect=2.1&sign=auto", want: config{addr: "nas:445", host: "nas", user: "alice", share: "vms", file: "disk.img", dialect: 0x0210, timeout: backends.DefaultIOTimeout}},
		{url: "smb://nas/vms/disk.img", wantErr: "no user"},
		{url: "smb://alice@/vms/disk.img", wantErr: "no host"},
		{url: "smb://alice@nas/vms", wantErr: "must be /share/path/file"},
		{url: "smb://alice@nas/vms/", wantErr: "must be /share/path/file"},
		{url: "smb://alice@nas/vms/dir/", wantErr: "must be /share/path/file"},
		{url: "smb://alice@nas/vms/../etc/x", wantErr: "component"},
		{url: "smb://alice@nas/vms/a//b", wantErr: "component"},
		{url: "smb://alice@nas/vms/disk.img?dialect=4.0", wantErr: "dialect"},
		{url: "smb://alice@nas/vms/disk.img?sign=maybe", wantErr: "sign"},
		{url: "smb://alice@nas/vms/disk.img?timeout=0s", wantErr: "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseConfig(u)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestRegistered(t *testing.T) {
	u, _ := url.Parse("smb://alice@nas/vms/disk.img?nosuch=1")
	if _, err := backends.Default.Lookup(u); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("unknown option accepted: %v", err)
	}
	u, _ = url.Parse("smb://alice@nas/vms/disk.img?dialect=3.0&sign=required&domain=D&password_file=/f&timeout=5s")
	if _, err := backends.Default.Lookup(u); err != nil {
		t.Fatal(err)
	}
}

func TestDialectName(t *testing.T) {
	for name, wire := range dialects {
		if got := dialectName(wire); got != name {
			t.Errorf("dialectName(%#x) = %q, want %q", wire, got, name)
		}
	}
	if got := dialectName(0x0399); got != "0x0399" {
		t.Errorf("unknown dialect shown as %q", got)
	}
}

// negotiateResponse builds a framed NEGOTIATE response with the given dialect and sizes.
func negotiateResponse(dialect uint16, maxRead, maxWrite uint32, bodyLen int) []byte {
	msg := make([]byte, negHeadLen+bodyLen)
	copy(msg, magicPlain[:])
	binary.LittleEndian.PutUint16(msg[offCommand:], cmdNegotiate)
	binary.LittleEndian.PutUint32(msg[offFlags:], flagServerToRedr)
	binary.LittleEndian.PutUint16(msg[offNegDialect:], dialect)
	binary.LittleEndian.PutUint32(msg[offNegMaxRead:], maxRead)
	binary.LittleEndian.PutUint32(msg[offNegMaxWrite:], maxWrite)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
	return append(frame, msg...)
}

func TestFrameSniffer(t *testing.T) {
	// A wildcard answer, a real one, then a short unrelated frame, delivered in every chunking.
	stream := negotiateResponse(wildcardDialect, 1, 1, 0)
	stream = append(stream, negotiateResponse(0x0311, 8<<20, 4<<20, 300)...)
	stream = append(stream, 0, 0, 0, 3, 1, 2, 3)
	for chunk := 1; chunk <= len(stream); chunk++ {
		w := newWireConn(nil)
		for i := 0; i < len(stream); i += chunk {
			w.rx.feed(stream[i:min(i+chunk, len(stream))])
		}
		got := w.stopSniffing()
		if got.dialect != 0x0311 || got.maxRead != 8<<20 || got.maxWrite != 4<<20 {
			t.Fatalf("chunk %d: got %+v", chunk, got)
		}
	}
}

func TestOutboundSecurity(t *testing.T) {
	create := func(magic [4]byte, flags uint32) []byte {
		msg := make([]byte, smb2HeaderLen+8)
		copy(msg, magic[:])
		binary.LittleEndian.PutUint16(msg[offCommand:], cmdCreate)
		binary.LittleEndian.PutUint32(msg[offFlags:], flags)
		return msg
	}
	tests := []struct {
		msg  []byte
		want string
	}{
		{create(magicPlain, 0), securityNone},
		{create(magicPlain, flagSigned), securitySigned},
		{create(magicTransform, 0), securityEncrypted},
	}
	for _, tc := range tests {
		w := newWireConn(nil)
		w.outbound([]byte{0, 0, 0, byte(len(tc.msg))}) // the length prefix is ignored
		w.outbound(tc.msg)
		if got := w.stopSniffing().createSecurity; got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	// Requests other than CREATE do not count: TREE_CONNECT is signed whatever the setting.
	w := newWireConn(nil)
	tc := create(magicPlain, flagSigned)
	binary.LittleEndian.PutUint16(tc[offCommand:], cmdTreeConnect)
	w.outbound(tc)
	if got := w.stopSniffing().createSecurity; got != "" {
		t.Errorf("tree connect counted: %q", got)
	}
}

func TestSplit(t *testing.T) {
	b := make([]byte, 10)
	var offs []int64
	done := make(chan int64, 10)
	n, err := split(b, 100, 3, func(p []byte, off int64) (int, error) {
		done <- off
		return len(p), nil
	})
	close(done)
	for o := range done {
		offs = append(offs, o)
	}
	if n != 10 || err != nil || len(offs) != 4 {
		t.Fatalf("n=%d err=%v offsets=%v", n, err, offs)
	}
}

// TestWireConnFraming checks that holding back the transport length and reading through a
// buffer keep the byte stream intact in both directions.
func TestWireConnFraming(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := newWireConn(c)
	defer w.Close()

	var want []byte
	for i, size := range []int{64, 100, 70000} {
		msg := bytes.Repeat([]byte{byte(i + 1)}, size)
		frame := binary.BigEndian.AppendUint32(nil, uint32(size))
		if n, err := w.Write(frame); n != 4 || err != nil {
			t.Fatalf("length write: %d %v", n, err)
		}
		if n, err := w.Write(msg); n != size || err != nil {
			t.Fatalf("message write: %d %v", n, err)
		}
		want = append(append(want, frame...), msg...)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("server received a different stream (%v)", err)
	}
	// And back: what the server sends arrives unchanged through the read buffer.
	go func() { _, _ = s.Write(want) }()
	got2 := make([]byte, len(want))
	if _, err := io.ReadFull(w, got2); err != nil || !bytes.Equal(got2, want) {
		t.Fatalf("client read a different stream (%v)", err)
	}
}
