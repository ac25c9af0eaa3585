package nbdexport

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// The fuzz target plays a hostile NBD client: whatever it sends during negotiation or
// transmission, the connection handler must end (the input ends with EOF), never panic and
// never read or write outside the export. `go test` runs the seeds below and
// testdata/fuzz/FuzzHandle; `go test -run '^$' -fuzz FuzzHandle ./vm/nbdexport` searches
// further.

// clientConn is a net.Conn whose client sends the fuzz input and then hangs up; what the
// server writes is kept.
type clientConn struct {
	net.Conn
	r   io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *clientConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *clientConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}
func (c *clientConn) Close() error                     { return nil }
func (c *clientConn) SetDeadline(time.Time) error      { return nil }
func (c *clientConn) SetReadDeadline(time.Time) error  { return nil }
func (c *clientConn) SetWriteDeadline(time.Time) error { return nil }
func (c *clientConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *clientConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// guardedTarget is a memory Target that records any access outside it instead of failing
// it, so that the fuzz target sees a server that asked for one.
type guardedTarget struct {
	mu       sync.Mutex
	data     []byte
	outside  []string
	accesses atomic.Int32
}

func (g *guardedTarget) access(op string, n int, off int64) bool {
	g.accesses.Add(1)
	if off < 0 || n < 0 || off > int64(len(g.data)) || int64(n) > int64(len(g.data))-off {
		g.mu.Lock()
		g.outside = append(g.outside, fmt.Sprintf("%s of %d bytes at %d", op, n, off))
		g.mu.Unlock()
		return false
	}
	return true
}

func (g *guardedTarget) ReadAt(p []byte, off int64) (int, error) {
	if !g.access("read", len(p), off) {
		return 0, io.EOF
	}
	return copy(p, g.data[off:]), nil
}

func (g *guardedTarget) WriteAt(p []byte, off int64) (int, error) {
	if !g.access("write", len(p), off) {
		return 0, io.ErrShortWrite
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return copy(g.data[off:], p), nil
}

func (g *guardedTarget) Sync() error  { return nil }
func (g *guardedTarget) Size() int64  { return int64(len(g.data)) }
func (g *guardedTarget) Close() error { return nil }

const fuzzExportSize = 64 << 10

// nbdClient builds what a client sends.
type nbdClient []byte

func (b *nbdClient) u16(v uint16) { *b = binary.BigEndian.AppendUint16(*b, v) }
func (b *nbdClient) u32(v uint32) { *b = binary.BigEndian.AppendUint32(*b, v) }
func (b *nbdClient) u64(v uint64) { *b = binary.BigEndian.AppendUint64(*b, v) }

func (b *nbdClient) option(opt uint32, data []byte) {
	b.u64(nbdproto.MagicOption)
	b.u32(opt)
	b.u32(uint32(len(data)))
	*b = append(*b, data...)
}

func (b *nbdClient) goOption(opt uint32, name string, infos ...uint16) {
	var d nbdClient
	d.u32(uint32(len(name)))
	d = append(d, name...)
	d.u16(uint16(len(infos)))
	for _, i := range infos {
		d.u16(i)
	}
	b.option(opt, d)
}

func (b *nbdClient) request(typ, flags uint16, handle, off uint64, length uint32, payload []byte) {
	b.u32(nbdproto.MagicRequest)
	b.u16(flags)
	b.u16(typ)
	b.u64(handle)
	b.u64(off)
	b.u32(length)
	*b = append(*b, payload...)
}

// fuzzSeeds are sessions as QEMU's and nbd-client's negotiation and requests look.
func fuzzSeeds() [][]byte {
	transmission := func(b *nbdClient) {
		b.request(nbdproto.CmdWrite, 0, 1, 0, 4096, bytes.Repeat([]byte{0xaa}, 4096))
		b.request(nbdproto.CmdRead, 0, 2, 0, 4096, nil)
		b.request(nbdproto.CmdWrite, nbdproto.CmdFlagFUA, 3, fuzzExportSize-512, 512, bytes.Repeat([]byte{0xbb}, 512))
		b.request(nbdproto.CmdFlush, 0, 4, 0, 0, nil)
		b.request(nbdproto.CmdRead, 0, 5, fuzzExportSize-512, 1024, nil) // past the end
		b.request(4, 0, 6, 0, 4096, nil)                                 // TRIM: not offered
		b.request(nbdproto.CmdDisc, 0, 7, 0, 0, nil)
	}
	var seeds [][]byte
	// NBD_OPT_GO, as QEMU negotiates.
	var s nbdClient
	s.u32(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	s.goOption(nbdproto.OptInfo, "disk", nbdproto.InfoBlockSize)
	s.goOption(nbdproto.OptGo, "disk", nbdproto.InfoBlockSize)
	transmission(&s)
	seeds = append(seeds, s)
	// NBD_OPT_LIST, an unknown option, then the old NBD_OPT_EXPORT_NAME with zeroes.
	s = nil
	s.u32(nbdproto.FlagFixedNewstyle)
	s.option(nbdproto.OptList, nil)
	s.option(99, []byte("x"))
	s.goOption(nbdproto.OptGo, "other")
	s.option(nbdproto.OptExportName, []byte(""))
	transmission(&s)
	seeds = append(seeds, s)
	// NBD_OPT_ABORT.
	s = nil
	s.u32(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	s.option(nbdproto.OptAbort, nil)
	seeds = append(seeds, s)
	// A write announcing more than it carries.
	s = nil
	s.u32(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	s.goOption(nbdproto.OptGo, "")
	s.request(nbdproto.CmdWrite, 0, 1, 0, 65536, []byte("short"))
	seeds = append(seeds, s)
	return seeds
}

// fuzzTLSSeeds are sessions with an export that requires TLS, as far as a client can go
// without a real handshake: options refused before STARTTLS, STARTTLS with and without data,
// the old EXPORT_NAME (which ends the connection), and a handshake that is not TLS.
func fuzzTLSSeeds() [][]byte {
	var seeds [][]byte
	var s nbdClient
	s.u32(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	s.option(nbdproto.OptList, nil)
	s.goOption(nbdproto.OptGo, "disk", nbdproto.InfoBlockSize)
	s.option(nbdproto.OptStartTLS, []byte("data"))
	s.option(nbdproto.OptStartTLS, nil)
	seeds = append(seeds, append(s, "\x16\x03\x01\x00\x05hello"...))
	s = nil
	s.u32(nbdproto.FlagFixedNewstyle)
	s.option(99, []byte("x"))
	s.option(nbdproto.OptExportName, []byte("disk"))
	s.request(nbdproto.CmdRead, 0, 1, 0, 4096, nil)
	seeds = append(seeds, s)
	s = nil
	s.u32(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	s.option(nbdproto.OptAbort, nil)
	seeds = append(seeds, s)
	return seeds
}

// FuzzHandle runs one connection of a client that sends input (on an export that is
// read-only when readOnly is set).
func FuzzHandle(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, false)
	}
	f.Add(fuzzSeeds()[0], true)
	f.Fuzz(func(t *testing.T, input []byte, readOnly bool) {
		fuzzOne(t, input, readOnly, nil)
	})
}

// FuzzHandleTLS is FuzzHandle on an export that requires TLS: before the handshake nothing
// but STARTTLS and ABORT may get anywhere, and no input may reach the export's data.
func FuzzHandleTLS(f *testing.F) {
	config := newTestCreds(f).server
	for _, s := range fuzzTLSSeeds() {
		f.Add(s)
	}
	f.Add(fuzzSeeds()[0]) // a plain session: refused
	f.Fuzz(func(t *testing.T, input []byte) {
		// The fuzzer cannot complete a handshake (the keys depend on the server's random):
		// so no request may be served.
		if _, tgt, _ := fuzzOne(t, input, false, config); tgt.accesses.Load() > 0 {
			t.Fatalf("%d accesses to the export without TLS", tgt.accesses.Load())
		}
	})
}

func fuzzOne(t *testing.T, input []byte, readOnly bool, config *tls.Config) ([]byte, *guardedTarget, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	out, tgt, err := runHandle(t, input, readOnly, config)
	runtime.ReadMemStats(&after)
	// One write of up to MaxRequest (the largest the server advertises) may be
	// announced without its payload; anything else must follow the input's size.
	if grew, limit := after.TotalAlloc-before.TotalAlloc, uint64(MaxRequest+4<<20+64*len(input)); grew > limit {
		t.Fatalf("serving %d bytes allocated %d bytes", len(input), grew)
	}
	return out, tgt, err
}

func runHandle(t *testing.T, input []byte, readOnly bool, config *tls.Config) (out []byte, tgt *guardedTarget, err error) {
	tgt = &guardedTarget{data: make([]byte, fuzzExportSize)}
	e := &Export{name: "disk", target: tgt, readOnly: readOnly, tls: config, conns: map[net.Conn]struct{}{}}
	c := &clientConn{r: bytes.NewReader(input)}
	done := make(chan error, 1)
	go func() { done <- e.handle(c) }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the connection did not end on %d bytes of input", len(input))
	}
	if len(tgt.outside) > 0 {
		t.Fatalf("the server accessed the target outside the export: %v", tgt.outside)
	}
	if readOnly && !bytes.Equal(tgt.data, make([]byte, fuzzExportSize)) {
		t.Fatal("a read-only export was written")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out = c.out.Bytes()
	if len(out) < 18 || binary.BigEndian.Uint64(out) != nbdproto.MagicNBD {
		t.Fatalf("no greeting: %q", out)
	}
	return out, tgt, err
}

// TestFuzzSeedsAreValid: the first seed negotiates and runs its requests to the clean
// disconnect, so the fuzzer starts from valid structure.
func TestFuzzSeedsAreValid(t *testing.T) {
	out, _, err := runHandle(t, fuzzSeeds()[0], false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 7 requests, all answered but the last (DISC); the read carries 4096 bytes.
	if n := bytes.Count(out, binary.BigEndian.AppendUint32(nil, nbdproto.MagicSimpleReply)); n < 6 {
		t.Fatalf("%d replies", n)
	}
}
