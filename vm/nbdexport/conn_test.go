package nbdexport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/backends/mem"
	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// testClient speaks the client side of the protocol, as far as the tests need.
type testClient struct {
	t     *testing.T
	c     net.Conn
	r     *bufio.Reader
	size  uint64
	flags uint16
}

// dial connects and negotiates export name with NBD_OPT_GO (or the old NBD_OPT_EXPORT_NAME).
func dial(t *testing.T, e *Export, name string, oldStyle bool) (*testClient, error) {
	t.Helper()
	tc, err := connect(t, e)
	if err != nil {
		return nil, err
	}
	if oldStyle {
		return tc, tc.exportName(name)
	}
	return tc, tc.goExport(name)
}

// connect connects and reads the greeting and sends the client's flags: the client may send
// options then.
func connect(t *testing.T, e *Export) (*testClient, error) {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	tc := &testClient{t: t, c: c, r: bufio.NewReader(c)}
	var hello [18]byte
	if _, err := io.ReadFull(tc.r, hello[:]); err != nil {
		return nil, err
	}
	if binary.BigEndian.Uint64(hello[0:]) != nbdproto.MagicNBD || binary.BigEndian.Uint64(hello[8:]) != nbdproto.MagicOption {
		return nil, errors.New("bad server greeting")
	}
	tc.write(binary.BigEndian.AppendUint32(nil, nbdproto.FlagFixedNewstyle|nbdproto.FlagNoZeroes))
	return tc, nil
}

// exportName chooses the export with the old NBD_OPT_EXPORT_NAME.
func (tc *testClient) exportName(name string) error {
	tc.option(nbdproto.OptExportName, []byte(name))
	var b [10]byte
	if _, err := io.ReadFull(tc.r, b[:]); err != nil {
		return err
	}
	tc.size, tc.flags = binary.BigEndian.Uint64(b[0:]), binary.BigEndian.Uint16(b[8:])
	return nil
}

// goExport chooses the export with NBD_OPT_GO.
func (tc *testClient) goExport(name string) error {
	d := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = binary.BigEndian.AppendUint16(d, 0)
	tc.option(nbdproto.OptGo, d)
	for {
		typ, p, err := tc.tryOptReply()
		if err != nil {
			return err
		}
		switch typ {
		case nbdproto.RepInfo:
			if binary.BigEndian.Uint16(p) == nbdproto.InfoExport {
				tc.size, tc.flags = binary.BigEndian.Uint64(p[2:]), binary.BigEndian.Uint16(p[10:])
			}
		case nbdproto.RepAck:
			return nil
		default:
			return &optionError{typ, string(p)}
		}
	}
}

// optionError is an option's error reply.
type optionError struct {
	typ uint32
	msg string
}

func (e *optionError) Error() string { return fmt.Sprintf("%s: %s", nbdproto.RepName(e.typ), e.msg) }

func (tc *testClient) write(b []byte) {
	tc.t.Helper()
	if _, err := tc.c.Write(b); err != nil {
		tc.t.Fatal(err)
	}
}

func (tc *testClient) option(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, nbdproto.MagicOption)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	tc.write(append(b, data...))
}

func (tc *testClient) optReply() (uint32, []byte) {
	tc.t.Helper()
	typ, p, err := tc.tryOptReply()
	if err != nil {
		tc.t.Fatal(err)
	}
	return typ, p
}

func (tc *testClient) tryOptReply() (uint32, []byte, error) {
	var h [20]byte
	if _, err := io.ReadFull(tc.r, h[:]); err != nil {
		return 0, nil, err
	}
	if binary.BigEndian.Uint64(h[0:]) != nbdproto.MagicReply {
		return 0, nil, errors.New("bad option reply magic")
	}
	p := make([]byte, binary.BigEndian.Uint32(h[16:]))
	if _, err := io.ReadFull(tc.r, p); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(h[12:]), p, nil
}

// send sends one request (with its payload, for writes).
func (tc *testClient) send(typ, flags uint16, handle, off uint64, length uint32, payload []byte) {
	b := binary.BigEndian.AppendUint32(nil, nbdproto.MagicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, handle)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	tc.write(append(b, payload...))
}

// reply reads one simple reply; readLen says how many data bytes follow a successful reply
// to each handle (reads).
func (tc *testClient) reply(readLen map[uint64]int) (handle uint64, errno uint32, data []byte) {
	tc.t.Helper()
	var h [nbdproto.ReplyLen]byte
	if _, err := io.ReadFull(tc.r, h[:]); err != nil {
		tc.t.Fatal(err)
	}
	if binary.BigEndian.Uint32(h[0:]) != nbdproto.MagicSimpleReply {
		tc.t.Fatal("bad reply magic")
	}
	errno, handle = binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint64(h[8:])
	if n := readLen[handle]; errno == 0 && n > 0 {
		data = make([]byte, n)
		if _, err := io.ReadFull(tc.r, data); err != nil {
			tc.t.Fatal(err)
		}
	}
	return handle, errno, data
}

// gateTarget holds every read until `want` reads are in the backend at once (or its
// timeout passes), counts syncs and the most I/Os seen in flight.
type gateTarget struct {
	*mem.Target
	want     int32
	inFlight atomic.Int32
	peak     atomic.Int32
	syncs    atomic.Int32
	gate     chan struct{}
	once     sync.Once
	failAt   int64 // a read or write at this offset fails (-1: none)
}

func newGateTarget(t *testing.T, size int64, want int32) *gateTarget {
	m, err := mem.New(size)
	if err != nil {
		t.Fatal(err)
	}
	return &gateTarget{Target: m, want: want, gate: make(chan struct{}), failAt: -1}
}

func (g *gateTarget) enter() func() {
	n := g.inFlight.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	return func() { g.inFlight.Add(-1) }
}

func (g *gateTarget) ReadAt(b []byte, off int64) (int, error) {
	defer g.enter()()
	if off == g.failAt {
		return 0, errors.New("injected read error")
	}
	if g.inFlight.Load() >= g.want {
		g.once.Do(func() { close(g.gate) })
	}
	select {
	case <-g.gate:
	case <-time.After(5 * time.Second):
	}
	return g.Target.ReadAt(b, off)
}

func (g *gateTarget) WriteAt(b []byte, off int64) (int, error) {
	defer g.enter()()
	if off == g.failAt {
		return 0, errors.New("injected write error")
	}
	return g.Target.WriteAt(b, off)
}

func (g *gateTarget) Sync() error { g.syncs.Add(1); return g.Target.Sync() }

var _ backends.Target = (*gateTarget)(nil)

// TestConcurrentRequests sends ConnWorkers reads at once on one connection: the backend must
// see them all in flight together (it holds each read until it does), and every reply must
// carry its own handle and data.
func TestConcurrentRequests(t *testing.T) {
	const n = ConnWorkers
	g := newGateTarget(t, 1<<20, n)
	for i := 0; i < n; i++ {
		if _, err := g.Target.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), int64(i)*4096); err != nil {
			t.Fatal(err)
		}
	}
	e, err := Serve(g, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tc, err := dial(t, e, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	lens := map[uint64]int{}
	for i := 0; i < n; i++ {
		h := uint64(1000 + i)
		lens[h] = 4096
		tc.send(nbdproto.CmdRead, 0, h, uint64(i)*4096, 4096, nil)
	}
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		h, errno, data := tc.reply(lens)
		if errno != 0 || seen[h] || h < 1000 || h >= 1000+n {
			t.Fatalf("reply handle %d errno %d (seen %v)", h, errno, seen[h])
		}
		seen[h] = true
		if want := bytes.Repeat([]byte{byte(h - 1000 + 1)}, 4096); !bytes.Equal(data, want) {
			t.Fatalf("handle %d: wrong data", h)
		}
	}
	if p := g.peak.Load(); p < n {
		t.Fatalf("at most %d requests were in the backend at once, want %d", p, n)
	}
}

// TestRepliesOutOfOrder: a slow read does not hold back the write sent after it.
func TestRepliesOutOfOrder(t *testing.T) {
	g := newGateTarget(t, 1<<20, 2) // the read waits for a second read that never comes
	e, err := Serve(g, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tc, err := dial(t, e, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	tc.send(nbdproto.CmdRead, 0, 1, 0, 4096, nil)
	tc.send(nbdproto.CmdWrite, 0, 2, 4096, 4096, bytes.Repeat([]byte{7}, 4096))
	lens := map[uint64]int{1: 4096}
	if h, errno, _ := tc.reply(lens); h != 2 || errno != 0 {
		t.Fatalf("first reply: handle %d errno %d, want the write's (2)", h, errno)
	}
	g.once.Do(func() { close(g.gate) }) // now let the read finish
	if h, errno, _ := tc.reply(lens); h != 1 || errno != 0 {
		t.Fatalf("second reply: handle %d errno %d, want the read's (1)", h, errno)
	}
}

// TestCommands covers flush, FUA, errors and disconnect, each on a fresh export.
func TestCommands(t *testing.T) {
	block := bytes.Repeat([]byte{0x5a}, 4096)
	cases := []struct {
		name     string
		readOnly bool
		failAt   int64 // the backend fails I/O at this offset (0: never)
		run      func(tc *testClient)
		want     []uint32 // errno of each reply, by handle 1..n
		syncs    int32
	}{
		{"flush", false, 0, func(tc *testClient) {
			tc.send(nbdproto.CmdWrite, 0, 1, 0, 4096, block)
			tc.send(nbdproto.CmdFlush, 0, 2, 0, 0, nil)
		}, []uint32{0, 0}, 1},
		{"fua write", false, 0, func(tc *testClient) {
			tc.send(nbdproto.CmdWrite, nbdproto.CmdFlagFUA, 1, 0, 4096, block)
		}, []uint32{0}, 1},
		{"beyond the end", false, 0, func(tc *testClient) {
			tc.send(nbdproto.CmdWrite, 0, 1, 1<<20, 4096, block)
			tc.send(nbdproto.CmdRead, 0, 2, 1<<20-512, 4096, nil)
			tc.send(nbdproto.CmdRead, 0, 3, 0, 0, nil)
		}, []uint32{nbdproto.ErrNoSpace, nbdproto.ErrInvalid, nbdproto.ErrInvalid}, 0},
		{"read-only", true, 0, func(tc *testClient) {
			tc.send(nbdproto.CmdWrite, 0, 1, 0, 4096, block)
		}, []uint32{nbdproto.ErrPerm}, 0},
		{"backend error, connection goes on", false, 8192, func(tc *testClient) {
			tc.send(nbdproto.CmdWrite, 0, 1, 8192, 4096, block)
			tc.send(nbdproto.CmdWrite, 0, 2, 0, 4096, block)
		}, []uint32{nbdproto.ErrIO, 0}, 0},
		{"unknown command", false, 0, func(tc *testClient) {
			tc.send(4 /* TRIM, not offered */, 0, 1, 0, 4096, nil)
		}, []uint32{nbdproto.ErrInvalid}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGateTarget(t, 1<<20, 1)
			if c.failAt != 0 {
				g.failAt = c.failAt
			}
			e, err := Serve(g, "disk", c.readOnly)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			tc, err := dial(t, e, "disk", false)
			if err != nil {
				t.Fatal(err)
			}
			wantFlags := uint16(nbdproto.TFlagHasFlags | nbdproto.TFlagSendFlush | nbdproto.TFlagSendFUA | nbdproto.TFlagCanMultiConn)
			if c.readOnly {
				wantFlags |= nbdproto.TFlagReadOnly
			}
			if tc.flags != wantFlags || tc.size != 1<<20 {
				t.Fatalf("flags %#x size %d, want %#x %d", tc.flags, tc.size, wantFlags, 1<<20)
			}
			c.run(tc)
			got := make([]uint32, len(c.want))
			for range c.want {
				h, errno, _ := tc.reply(nil)
				if h < 1 || int(h) > len(c.want) {
					t.Fatalf("reply for unknown handle %d", h)
				}
				got[h-1] = errno
			}
			for i := range c.want {
				if got[i] != c.want[i] {
					t.Fatalf("errnos %v, want %v", got, c.want)
				}
			}
			if s := g.syncs.Load(); s != c.syncs {
				t.Fatalf("%d syncs, want %d", s, c.syncs)
			}
			// Disconnect: the server syncs a writable export and hangs up.
			tc.send(nbdproto.CmdDisc, 0, 99, 0, 0, nil)
			if _, err := tc.r.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("after disconnect: %v, want EOF", err)
			}
			if want := c.syncs + map[bool]int32{false: 1, true: 0}[c.readOnly]; g.syncs.Load() != want {
				t.Fatalf("%d syncs after disconnect, want %d", g.syncs.Load(), want)
			}
		})
	}
}

// TestNegotiation: export names (the default export is the empty name), the old
// NBD_OPT_EXPORT_NAME, and a name the server does not have.
func TestNegotiation(t *testing.T) {
	g := newGateTarget(t, 1<<20, 1)
	e, err := Serve(g, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, c := range []struct {
		name     string
		oldStyle bool
		ok       bool
	}{
		{"disk", false, true}, {"", false, true}, {"disk", true, true}, {"other", false, false},
	} {
		tc, err := dial(t, e, c.name, c.oldStyle)
		if (err == nil) != c.ok {
			t.Fatalf("name %q (old style %v): err %v, want ok %v", c.name, c.oldStyle, err, c.ok)
		}
		if err == nil && tc.size != 1<<20 {
			t.Fatalf("size %d", tc.size)
		}
	}
}

// TestOnError: a backend error reaches the OnError hook as it happens (a migration run names
// the storage from it), besides being answered EIO and kept for Err.
func TestOnError(t *testing.T) {
	g := newGateTarget(t, 1<<20, 1)
	g.failAt = 8192
	e, err := Serve(g, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	heard := make(chan error, 4)
	e.OnError(func(err error) { heard <- err })
	tc, err := dial(t, e, "disk", false)
	if err != nil {
		t.Fatal(err)
	}
	tc.send(nbdproto.CmdWrite, 0, 1, 8192, 4096, bytes.Repeat([]byte{1}, 4096))
	if _, errno, _ := tc.reply(nil); errno != nbdproto.ErrIO {
		t.Fatalf("errno %d, want EIO", errno)
	}
	select {
	case err := <-heard:
		if !strings.Contains(err.Error(), "injected write error") {
			t.Errorf("hook heard %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hook heard nothing")
	}
}
