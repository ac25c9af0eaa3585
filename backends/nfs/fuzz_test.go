package nfs

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The fuzz target plays a hostile NFS server: whatever it answers, the client must end the
// call with a result or an error, never panic, hang, write outside the caller's buffers or
// allocate in proportion to a length field rather than to the bytes that arrived. `go test`
// runs the seeds below and testdata/fuzz/FuzzReply; `go test -run '^$' -fuzz FuzzReply
// ./backends/nfs` searches further.

// replyConn is a net.Conn whose peer answers the first call with the fuzz input: reads
// block until the client has written its call (so the reply cannot arrive before the call
// is registered), then return the input and io.EOF. Writes are discarded.
type replyConn struct {
	net.Conn
	r         *bytes.Reader
	wrote     chan struct{}
	wroteOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
}

func newReplyConn(input []byte) *replyConn {
	return &replyConn{r: bytes.NewReader(input), wrote: make(chan struct{}), closed: make(chan struct{})}
}

func (c *replyConn) Read(b []byte) (int, error) {
	select {
	case <-c.wrote:
	case <-c.closed:
		return 0, net.ErrClosed
	}
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.r.Read(b)
}

func (c *replyConn) Write(b []byte) (int, error) {
	c.wroteOnce.Do(func() { close(c.wrote) })
	return len(b), nil
}

func (c *replyConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}

func (c *replyConn) SetDeadline(time.Time) error      { return nil }
func (c *replyConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replyConn) SetWriteDeadline(time.Time) error { return nil }
func (c *replyConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *replyConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// fuzzXID is the XID of the first call on a connection whose counter starts at 0.
const fuzzXID = 1

// Procedures the fuzz target calls, chosen by the input's first argument.
const (
	fuzzGetPort = iota
	fuzzMount
	fuzzExports
	fuzzGetattr
	fuzzLookup
	fuzzCreate
	fuzzSetattr
	fuzzFSInfo
	fuzzFSStat
	fuzzRead
	fuzzWrite
	fuzzCommit
	fuzzProcs
)

const (
	fuzzReadLen  = 4096
	fuzzWriteLen = 8192
)

// fuzzFattr is a fattr3 as the package decodes it.
func fuzzFattr(b *xdrBuf) {
	for range 5 { // type, mode, nlink, uid, gid
		b.u32(1)
	}
	b.u64(1 << 20) // size
	b.u64(1 << 20) // used
	b.u32(0)       // rdev
	b.u32(0)
	b.u64(7) // fsid
	b.u64(9) // fileid
	for range 6 {
		b.u32(1)
	}
}

// fuzzSeeds are well-formed replies to each procedure, some split into fragments, and a
// few rejections.
func fuzzSeeds() []struct {
	proc  uint8
	reply []byte
} {
	type seed = struct {
		proc  uint8
		reply []byte
	}
	var seeds []seed
	add := func(proc uint8, frag int, enc func(b *xdrBuf)) {
		var res xdrBuf
		enc(&res)
		seeds = append(seeds, seed{proc, acceptedReply(fuzzXID, res, frag)})
	}
	fh := bytes.Repeat([]byte{0xfe}, 32)
	add(fuzzGetPort, 0, func(b *xdrBuf) { b.u32(2049) })
	add(fuzzMount, 0, func(b *xdrBuf) { b.u32(0); b.opaque(fh); b.u32(2); b.u32(authSys); b.u32(0) })
	add(fuzzExports, 0, func(b *xdrBuf) {
		b.bool(true)
		b.str("/export")
		b.bool(true)
		b.str("*")
		b.bool(false)
		b.bool(false)
	})
	add(fuzzGetattr, 0, func(b *xdrBuf) { b.u32(0); fuzzFattr(b) })
	add(fuzzLookup, 0, func(b *xdrBuf) { b.u32(0); b.opaque(fh); b.bool(true); fuzzFattr(b); b.bool(false) })
	add(fuzzCreate, 0, func(b *xdrBuf) { b.u32(0); b.bool(true); b.opaque(fh); b.bool(false) })
	add(fuzzSetattr, 0, func(b *xdrBuf) { b.u32(0); b.bool(false); b.bool(false) })
	add(fuzzFSInfo, 0, func(b *xdrBuf) {
		b.u32(0)
		b.bool(true)
		fuzzFattr(b)
		for _, v := range []uint32{1 << 20, 1 << 20, 4096, 1 << 20, 1 << 20, 4096, 4096} {
			b.u32(v)
		}
	})
	add(fuzzFSStat, 0, func(b *xdrBuf) { b.u32(0); b.bool(false); b.u64(1 << 30); b.u64(1 << 29); b.u64(1 << 29) })
	read := func(b *xdrBuf) {
		b.u32(0)
		b.bool(true)
		fuzzFattr(b)
		b.u32(1000)
		b.bool(true)
		b.opaque(bytes.Repeat([]byte{0xab}, 1000))
	}
	add(fuzzRead, 0, read)
	add(fuzzRead, 13, read) // record marking: many fragments
	add(fuzzWrite, 0, func(b *xdrBuf) {
		b.u32(0)
		b.bool(true) // wcc_attr
		b.u64(1 << 20)
		b.u64(0)
		b.u64(0)
		b.bool(true)
		fuzzFattr(b)
		b.u32(fuzzWriteLen)
		b.u32(stableFile)
		b.u64(0x0102030405060708)
	})
	add(fuzzCommit, 0, func(b *xdrBuf) { b.u32(0); b.bool(false); b.bool(false); b.u64(42) })
	add(fuzzRead, 0, func(b *xdrBuf) { b.u32(70) }) // NFS3ERR_STALE
	// Denied: RPC version mismatch.
	var denied xdrBuf
	for _, v := range []uint32{0x80000014, fuzzXID, msgReply, msgDenied, rejectMismatch, 2, 2} {
		denied.u32(v)
	}
	seeds = append(seeds, seed{fuzzGetattr, denied})
	// An unknown XID first, then the reply.
	var res xdrBuf
	res.u32(111)
	seeds = append(seeds, seed{fuzzGetPort, append(acceptedReply(77, res, 0), acceptedReply(fuzzXID, res, 5)...)})
	return seeds
}

// FuzzReply runs one call (the procedure chosen by proc) on a connection whose server
// answers with reply: any number of records, fragments and XIDs.
func FuzzReply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.proc, s.reply)
	}
	f.Fuzz(func(t *testing.T, proc uint8, reply []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		fuzzCall(t, proc%fuzzProcs, reply)
		runtime.ReadMemStats(&after)
		// The receive buffer is 256 KiB; everything else must follow the input's size, not
		// what its length fields claim.
		if grew, limit := after.TotalAlloc-before.TotalAlloc, uint64(2<<20+64*len(reply)); grew > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(reply), grew)
		}
	})
}

func fuzzCall(t *testing.T, proc uint8, reply []byte) error {
	conn := newReplyConn(reply)
	c := newRPCConn(conn, authSysCred(1000, 1000), 10*time.Second)
	c.xid.Store(fuzzXID - 1)
	defer c.close()
	fh := []byte{1, 2, 3, 4}
	dl := time.Now().Add(10 * time.Second)
	start := time.Now()
	var err error
	switch proc {
	case fuzzGetPort:
		var port int
		port, err = getPort(c, nfsProg, nfsVers, dl)
		if port < 0 || port > 1<<32-1 {
			t.Fatalf("port %d", port)
		}
	case fuzzMount:
		var root []byte
		root, err = mount(c, "/export", dl)
		if len(root) > maxFH {
			t.Fatalf("mount: file handle of %d bytes", len(root))
		}
	case fuzzExports:
		var list []string
		list, err = exports(c, dl)
		if len(list) > 1000 || len(list)*4 > len(reply) {
			t.Fatalf("exports: %d names from %d bytes", len(list), len(reply))
		}
		for _, s := range list {
			if len(s) > maxPath {
				t.Fatalf("exports: name of %d bytes", len(s))
			}
		}
	case fuzzGetattr:
		_, err = getattr(c, fh, dl)
	case fuzzLookup:
		var got []byte
		got, _, err = lookup(c, fh, "name", dl)
		if len(got) > maxFH {
			t.Fatalf("lookup: file handle of %d bytes", len(got))
		}
	case fuzzCreate:
		// A reply without a handle makes create look the name up: a second call that gets
		// no reply (the input is used up), so it fails fast on the broken connection.
		var got []byte
		got, err = create(c, fh, "name", 0o644, dl)
		if len(got) > maxFH {
			t.Fatalf("create: file handle of %d bytes", len(got))
		}
	case fuzzSetattr:
		err = truncate(c, fh, 1<<20, dl)
	case fuzzFSInfo:
		_, err = fsinfo(c, fh, dl)
	case fuzzFSStat:
		_, err = fsstat(c, fh, dl)
	case fuzzRead:
		// The buffer sits inside a larger one with guard bytes on both sides: a decoder
		// writing outside dst would change them.
		const guard = 64
		buf := bytes.Repeat([]byte{0x5a}, guard+fuzzReadLen+guard)
		dst := buf[guard : guard+fuzzReadLen : guard+fuzzReadLen]
		var n int
		n, _, err = read(c, fh, 0, dst)
		if n < 0 || n > len(dst) || (err == nil && n > len(reply)) {
			t.Fatalf("read: %d bytes into %d from a reply of %d", n, len(dst), len(reply))
		}
		for i, b := range append(buf[:guard:guard], buf[guard+fuzzReadLen:]...) {
			if b != 0x5a {
				t.Fatalf("read wrote outside its buffer (guard byte %d)", i)
			}
		}
	case fuzzWrite:
		var n int
		n, _, _, err = write(c, fh, 0, make([]byte, fuzzWriteLen), stableUnst)
		if n < 0 || n > fuzzWriteLen {
			t.Fatalf("write: server took %d bytes of %d", n, fuzzWriteLen)
		}
	case fuzzCommit:
		_, err = commit(c, fh)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("call took %s on a reply of %d bytes", d, len(reply))
	}
	return err
}

// TestFuzzSeedsAreValid: the seeds are replies the client accepts (the last three are a
// status error, a rejection and a stray reply before the real one), so the fuzzer starts
// from valid structure.
func TestFuzzSeedsAreValid(t *testing.T) {
	seeds := fuzzSeeds()
	for i, s := range seeds {
		err := fuzzCall(t, s.proc, s.reply)
		switch wantErr := i == len(seeds)-3 || i == len(seeds)-2; {
		case wantErr && err == nil:
			t.Errorf("seed %d (proc %d): accepted", i, s.proc)
		case !wantErr && err != nil:
			t.Errorf("seed %d (proc %d): %v", i, s.proc, err)
		}
	}
}

// TestReplyCutShort: a READ or WRITE reply that ends before its last field fails with
// nothing transferred. WRITE used to return the reply's count even then: a hostile count
// (found by FuzzReply) made WriteAt report more bytes than it was given.
func TestReplyCutShort(t *testing.T) {
	var wr xdrBuf
	wr.u32(0)       // NFS3_OK
	wr.bool(false)  // no wcc_attr
	wr.bool(false)  // no post_op_attr
	wr.u32(1 << 30) // count, far above the 8 KiB written
	wr.u32(2)       // FILE_SYNC
	wr.u32(0xdead)  // half a verifier
	var rd xdrBuf
	rd.u32(0)
	rd.bool(false)
	rd.u32(1000)
	rd.bool(false)
	rd.opaque(make([]byte, 1000))
	rd = rd[:len(rd)-100]
	for _, tc := range []struct {
		name string
		op   func(c *rpcConn) (int, error)
	}{
		{"write", func(c *rpcConn) (int, error) {
			n, _, _, err := write(c, []byte{1}, 0, make([]byte, fuzzWriteLen), stableFile)
			return n, err
		}},
		{"read", func(c *rpcConn) (int, error) {
			n, _, err := read(c, []byte{1}, 0, make([]byte, fuzzReadLen))
			return n, err
		}},
	} {
		res := wr
		if tc.name == "read" {
			res = rd
		}
		c := newRPCConn(newReplyConn(acceptedReply(fuzzXID, res, 0)), authNone, 5*time.Second)
		c.xid.Store(fuzzXID - 1)
		n, err := tc.op(c)
		c.close()
		if err == nil || n != 0 {
			t.Errorf("%s: %d bytes, err %v; want 0 and an error", tc.name, n, err)
		}
	}
}
