package initiator

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/socktransport"
)

// The fuzz targets feed arbitrary bytes as what a target sends. Whatever arrives, the
// initiator must end with an error or keep going, never panic, hang or write outside the
// buffers of the commands in flight. `go test` runs the seed corpus in testdata/fuzz; run
// `go test -run '^$' -fuzz FuzzSessionReader ./backends/iscsi/initiator` to search further.

// fuzzConn is a net.Conn that reads the fuzz input and discards what is written.
type fuzzConn struct {
	net.Conn
	r io.Reader
}

func (c *fuzzConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *fuzzConn) Close() error                       { return nil }
func (c *fuzzConn) SetDeadline(t time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(t time.Time) error { return nil }
func (c *fuzzConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }

// Fuzz ITTs: the session hands out slot | generation<<16, generation 1 for fresh slots.
const (
	fuzzReadITT  = 0x00010000
	fuzzWriteITT = 0x00010001
	fuzzPingITT  = 0x00010002
)

// FuzzSessionReader runs the session's reader over the input with a read (4 KiB), a write
// (8 KiB) and a ping in flight.
func FuzzSessionReader(f *testing.F) {
	for _, seed := range readerSeeds() {
		f.Add(seed.wire, seed.hd, seed.dd)
	}
	f.Fuzz(func(t *testing.T, wire []byte, hd, dd bool) { runReader(t, wire, hd, dd) })
}

// runReader runs the reader over wire and returns the final event of the read, the write and
// the ping, checking that each got exactly one.
func runReader(t *testing.T, wire []byte, hd, dd bool) (finals [3]event) {
	p := defaultParams()
	p.MaxRecvDataSegmentLength = 8192
	p.MaxOutstandingR2T = 2
	p.HeaderDigest, p.DataDigest = hd, dd
	conn := &fuzzConn{r: bytes.NewReader(wire)}
	s := newSession(socktransport.NewConn(conn), bufio.NewReaderSize(conn, 4096), Config{Timeout: time.Hour, PingInterval: time.Hour}, p)
	read, _ := s.acquire(kindCommand, time.Hour, []byte{opRead16})
	read.buf = make([]byte, 4096)
	write, _ := s.acquire(kindCommand, time.Hour, []byte{opWrite16})
	write.buf, write.write = make([]byte, 8192), true
	ping, _ := s.acquire(kindPing, time.Hour, nil)
	if read.itt != fuzzReadITT || write.itt != fuzzWriteITT || ping.itt != fuzzPingITT {
		t.Fatalf("ITTs %#x %#x %#x", read.itt, write.itt, ping.itt)
	}
	done := make(chan struct{})
	go func() {
		s.rtoken.Lock()
		held := s.readUntil(nil, nil) // returns early if the input completed every task
		s.fail(errors.New("end of fuzz input"))
		s.drain()
		if held {
			s.rtoken.Unlock()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reader did not end at the end of the input")
	}
	for i, tk := range []*task{read, write, ping} {
		n := 0
		for len(tk.ev) > 0 {
			if ev := <-tk.ev; ev.final {
				finals[i] = ev
				n++
			}
		}
		if n != 1 {
			t.Fatalf("task %#x got %d final events", tk.itt, n)
		}
	}
	return finals
}

// TestFuzzSeeds checks that the main seeds take the paths they are named after, so that the
// fuzzer starts from deep inside the protocol rather than from the first error.
func TestFuzzSeeds(t *testing.T) {
	seeds := readerSeeds()
	finals := runReader(t, seeds[0].wire, false, false)
	for i, f := range finals {
		if f.err != nil {
			t.Errorf("read-write-ping: task %d failed: %v", i, f.err)
		}
	}
	if f := runReader(t, seeds[3].wire, true, true); f[0].err != nil {
		t.Errorf("digests: %v", f[0].err)
	}
	login := loginSeeds()
	for i, chap := range []bool{false, true} {
		cfg := &Config{TargetName: "iqn.t:x", InitiatorName: "iqn.t:i"}
		if chap {
			cfg.CHAPUser, cfg.CHAPSecret = "u", "secret-secret"
		}
		conn := &fuzzConn{r: bytes.NewReader(login[i])}
		if err := newLoginConn(conn, bufio.NewReader(conn), cfg, [6]byte{0x80}).login(); err != nil {
			t.Errorf("login seed %d: %v", i, err)
		}
	}
}

// FuzzLogin runs the login over the input as the target's answers.
func FuzzLogin(f *testing.F) {
	for _, seed := range loginSeeds() {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, wire []byte, chap bool) {
		cfg := &Config{TargetName: "iqn.t:x", InitiatorName: "iqn.t:i"}
		if chap {
			cfg.CHAPUser, cfg.CHAPSecret = "u", "secret-secret"
		}
		conn := &fuzzConn{r: bytes.NewReader(wire)}
		l := newLoginConn(conn, bufio.NewReader(conn), cfg, [6]byte{0x80})
		if err := l.login(); err == nil {
			p := l.params
			if p.MaxXmitDataSegmentLength < 512 || p.MaxBurstLength < 512 || p.FirstBurstLength > p.MaxBurstLength || p.MaxOutstandingR2T < 1 {
				t.Fatalf("login accepted unusable parameters %+v", p)
			}
		}
	})
}

// seed builders

type readerSeed struct {
	name   string
	wire   []byte
	hd, dd bool
}

func target(op byte, flags byte, itt uint32, mod func(h *header)) header {
	var h header
	h[0], h[1] = op, flags
	h.put32(16, itt)
	h.put32(20, reservedTag)
	h.put32(28, 1)
	h.put32(32, 64)
	if mod != nil {
		mod(&h)
	}
	return h
}

func readerSeeds() []readerSeed {
	dataIn := func(off uint32, n int, flags byte) []byte {
		h := target(opDataIn, flags, fuzzReadITT, func(h *header) { h.put32(40, off) })
		return pdu(h, bytes.Repeat([]byte{0xab}, n), false, false)
	}
	sense := append([]byte{0, 18, 0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0}, 0)
	r2t := func(off, n uint32) []byte {
		return pdu(target(opR2T, flagFinal, fuzzWriteITT, func(h *header) { h.put32(20, 7); h.put32(40, off); h.put32(44, n) }), nil, false, false)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	nopReply := pdu(target(opNopIn, flagFinal, fuzzPingITT, nil), nil, false, false)
	writeDone := pdu(target(opSCSIResp, flagFinal, fuzzWriteITT, nil), nil, false, false)
	readDone := cat(dataIn(0, 2048, 0), dataIn(2048, 2048, flagFinal|flagStatus))
	digested := target(opDataIn, flagFinal|flagStatus, fuzzReadITT, nil)
	reject := pdu(target(opReject, flagFinal, reservedTag, func(h *header) { h[2] = 9 }), make([]byte, 48), false, false)
	return []readerSeed{
		{"read-write-ping", cat(readDone, r2t(0, 4096), r2t(4096, 4096), writeDone, nopReply), false, false},
		{"check-condition", pdu(target(opSCSIResp, flagFinal, fuzzReadITT, func(h *header) { h[3] = StatusCheckCondition }), sense, false, false), false, false},
		{"underflow", pdu(target(opSCSIResp, flagFinal|flagUnderflow, fuzzReadITT, func(h *header) { h.put32(44, 4096) }), nil, false, false), false, false},
		{"digests", pdu(digested, make([]byte, 4096), true, true), true, true},
		{"overrun", dataIn(4000, 512, 0), false, false},
		{"r2t-flood", cat(r2t(0, 512), r2t(512, 512), r2t(1024, 512)), false, false},
		{"target-nop", pdu(target(opNopIn, flagFinal, reservedTag, func(h *header) { h.put32(20, 5) }), []byte("ping"), false, false), false, false},
		{"async", pdu(target(opAsync, flagFinal, reservedTag, func(h *header) { h[36] = 0 }), sense, false, false), false, false},
		{"reject", reject, false, false},
		{"logout-response", pdu(target(opLogoutRsp, flagFinal, fuzzPingITT, nil), nil, false, false), false, false},
		{"huge-segment", pdu(target(opNopIn, flagFinal, reservedTag, nil), make([]byte, 9000), false, false), false, false},
		{"truncated", readDone[:70], false, false},
		{"window", pdu(target(opNopIn, flagFinal, fuzzPingITT, func(h *header) { h.put32(28, 100); h.put32(32, 50) }), nil, false, false), false, false},
	}
}

func loginSeeds() [][]byte {
	rsp := func(flags byte, class, detail byte, text string) []byte {
		var h header
		h[0], h[1] = opLoginRsp, flags
		h[36], h[37] = class, detail
		h.put32(28, 1)
		h.put32(32, 64)
		return pdu(h, []byte(text), false, false)
	}
	sec := rsp(flagTransit|0<<2|1, 0, 0, "AuthMethod=None\x00TargetPortalGroupTag=1\x00")
	op := rsp(flagTransit|1<<2|3, 0, 0, "HeaderDigest=None\x00DataDigest=None\x00InitialR2T=Yes\x00ImmediateData=Yes\x00MaxBurstLength=262144\x00FirstBurstLength=65536\x00MaxOutstandingR2T=1\x00ErrorRecoveryLevel=0\x00MaxRecvDataSegmentLength=8192\x00")
	chap1 := rsp(0|0<<2|1, 0, 0, "AuthMethod=CHAP\x00")
	chap2 := rsp(0|0<<2|1, 0, 0, "CHAP_A=5\x00CHAP_I=7\x00CHAP_C=0x0102030405060708\x00")
	chap3 := rsp(flagTransit|0<<2|1, 0, 0, "")
	return [][]byte{
		append(append([]byte(nil), sec...), op...),
		append(append(append(append([]byte(nil), chap1...), chap2...), chap3...), op...),
		rsp(0, 2, 1, ""),
		rsp(0, 2, 3, ""),
		rsp(0, 1, 1, "TargetAddress=10.0.0.1:3260,1\x00"),
		rsp(flagContinue|1, 0, 0, "Auth"),
		rsp(flagTransit|0<<2|0, 0, 0, "AuthMethod=None\x00"),
	}
}

// TestFuzzSeedsCurrent checks that the corpus files in testdata/fuzz are the seeds above
// (the fuzzers start from them), and with VMSTORBENCH_WRITE_FUZZ_SEEDS=1 rewrites them after
// the builders change.
func TestFuzzSeedsCurrent(t *testing.T) {
	regenerate := os.Getenv("VMSTORBENCH_WRITE_FUZZ_SEEDS") == "1"
	write := func(fuzzer, name string, values ...any) {
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", v)
			}
		}
		path := filepath.Join(dir, name)
		if !regenerate {
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b.Bytes()) {
				t.Errorf("%s is not the current seed (%v): regenerate with VMSTORBENCH_WRITE_FUZZ_SEEDS=1", path, err)
			}
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range readerSeeds() {
		write("FuzzSessionReader", s.name, s.wire, s.hd, s.dd)
	}
	for i, s := range loginSeeds() {
		write("FuzzLogin", fmt.Sprintf("seed-%d", i), s, i == 1)
	}
}
