package nbd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
)

// The fuzz targets feed arbitrary bytes as what a hostile server sends. Whatever arrives,
// the client must end with an error or go on, never panic, hang, or write outside the
// buffers of the requests in flight. `go test` runs the seed corpus (the f.Add seeds and
// testdata/fuzz); search further with
//   go test -run '^$' -fuzz FuzzReplies ./backends/nbd
//   go test -run '^$' -fuzz FuzzHandshake ./backends/nbd

// fuzzConn is a net.Conn that reads the fuzz input and discards what is written.
type fuzzConn struct {
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

// Wire pieces for seeds.
func hello(flags uint16) []byte {
	b := make([]byte, nbdproto.HelloLen)
	nbdproto.PutHello(b, flags)
	return b
}

func optReply(opt, typ uint32, p []byte) []byte {
	return nbdproto.AppendOptionReply(nil, opt, typ, p)
}

func reply(errno uint32, handle uint64, data []byte) []byte {
	b := make([]byte, nbdproto.ReplyLen)
	nbdproto.PutSimpleReply(b, errno, handle)
	return append(b, data...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func handshakeSeeds() [][]byte {
	fixed := uint16(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	exp := nbdproto.AppendInfoExport(nil, 1<<20, nbdproto.TFlagHasFlags|nbdproto.TFlagSendFlush|nbdproto.TFlagSendFUA)
	bs := nbdproto.AppendInfoBlockSize(nil, 512, 4096, 32<<20)
	return [][]byte{
		// qemu-nbd-like: export info, block sizes, ACK.
		cat(hello(fixed), optReply(nbdproto.OptGo, nbdproto.RepInfo, exp), optReply(nbdproto.OptGo, nbdproto.RepInfo, bs), optReply(nbdproto.OptGo, nbdproto.RepAck, nil)),
		// Unknown export, with a message.
		cat(hello(fixed), optReply(nbdproto.OptGo, nbdproto.RepErrUnknown, []byte("no such export\x00\xff"))),
		// No NBD_OPT_GO: fall back to NBD_OPT_EXPORT_NAME (with the 124 zero bytes).
		cat(hello(nbdproto.FlagFixedNewstyle), optReply(nbdproto.OptGo, nbdproto.RepErrUnsup, nil), make([]byte, 10+124)),
		// Hostile: invalid block sizes, a huge option reply length, a reply to another option.
		cat(hello(fixed), optReply(nbdproto.OptGo, nbdproto.RepInfo, nbdproto.AppendInfoBlockSize(nil, 3, 1, 0))),
		cat(hello(fixed), binary.BigEndian.AppendUint64(nil, nbdproto.MagicReply), []byte{0, 0, 0, 7, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff}),
		cat(hello(fixed), optReply(nbdproto.OptList, nbdproto.RepAck, nil)),
		// ACK without the export's size; oldstyle greeting; plain newstyle.
		cat(hello(fixed), optReply(nbdproto.OptGo, nbdproto.RepAck, nil)),
		cat(binary.BigEndian.AppendUint64(nil, nbdproto.MagicNBD), binary.BigEndian.AppendUint64(nil, 0x00420281861253), make([]byte, 8+4+124)),
		hello(0),
	}
}

// FuzzHandshake runs the negotiation over the input, with and without TLS asked for.
func FuzzHandshake(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add(s, false)
	}
	fixed := uint16(nbdproto.FlagFixedNewstyle | nbdproto.FlagNoZeroes)
	f.Add(cat(hello(fixed), optReply(nbdproto.OptStartTLS, nbdproto.RepErrPolicy, []byte("no TLS here"))), true)
	f.Add(cat(hello(fixed), optReply(nbdproto.OptStartTLS, nbdproto.RepAck, nil), []byte("\x16\x03\x01garbage")), true)
	f.Fuzz(func(t *testing.T, wire []byte, useTLS bool) {
		hc := handshakeConfig{export: "vm"}
		if useTLS {
			hc.tls = &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, info, err := handshake(ctx, &fuzzConn{r: bytes.NewReader(wire)}, hc, 5*time.Second)
		if err == nil && info.MinBlock != 0 && (info.MinBlock&(info.MinBlock-1) != 0 || info.MaxPayload < info.MinBlock) {
			t.Errorf("accepted invalid block sizes %+v", info)
		}
	})
}

// Handles of the requests FuzzReplies keeps in flight: slot | generation<<32, generation 1
// for a slot's first use.
const (
	fuzzReadHandle  = 1<<32 | 0
	fuzzWriteHandle = 1<<32 | 1
	fuzzFlushHandle = 1<<32 | 2
)

// FuzzReplies reads replies from the input with a 4 KiB read, a write (an async client's)
// and a flush in flight, until the input fails the connection; every request must then have
// exactly one result.
func FuzzReplies(f *testing.F) {
	data := bytes.Repeat([]byte{0xab}, 4096)
	for _, s := range [][]byte{
		cat(reply(0, fuzzWriteHandle, nil), reply(0, fuzzReadHandle, data), reply(0, fuzzFlushHandle, nil)),
		cat(reply(nbdproto.ErrIO, fuzzReadHandle, nil), reply(nbdproto.ErrPerm, fuzzWriteHandle, nil)),
		cat(reply(0, fuzzReadHandle, data[:100])),                           // payload cut short
		cat(reply(0, fuzzFlushHandle, nil), reply(0, fuzzFlushHandle, nil)), // answered twice
		cat(reply(0, 2<<32|0, nil)),    // stale generation
		cat(reply(0, 1<<32|4000, nil)), // slot out of range
		binary.BigEndian.AppendUint32(nil, nbdproto.MagicStructuredReply),
		[]byte("garbage that is no reply at all"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		c := newConn(&fuzzConn{r: bytes.NewReader(wire)}, time.Hour)
		defer c.close()
		buf := make([]byte, 4096+64)
		guard := buf[4096:]
		calls := []struct {
			idx int
			typ uint16
			buf []byte
		}{{0, nbdproto.CmdRead, buf[:4096]}, {1, nbdproto.CmdWrite, nil}, {2, nbdproto.CmdFlush, nil}}
		a := c.newAsync()
		for range calls { // the slots in flight leave the free list (slots 0, 1, 2 in order)
			<-c.free
		}
		c.mu.Lock()
		for _, x := range calls {
			cl := c.calls[x.idx]
			var owner *async
			if x.typ == nbdproto.CmdWrite {
				owner = a
			}
			if _, err := c.activateLocked(cl, x.typ, x.buf, owner); err != nil { // generation 1
				t.Fatal(err)
			}
			if owner != nil {
				cl.tag = 42
			}
		}
		if !c.tok.Take() {
			t.Fatal("the read token is held with nothing in flight")
		}
		c.mu.Unlock()
		var err error
		for err == nil {
			_, err = c.readOne()
		}
		c.fail(err)
		c.mu.Lock()
		if len(a.done) != 1 || a.done[0].tag != 42 || a.Active() != 0 {
			t.Fatalf("the async client's write: results %+v, %d in flight", a.done, a.Active())
		}
		c.mu.Unlock()
		for _, x := range calls {
			if x.typ == nbdproto.CmdWrite {
				continue
			}
			cl := c.calls[x.idx]
			if ok, _ := cl.TryResult(); !ok {
				t.Fatalf("request in slot %d got no result", x.idx)
			}
			if ok, _ := cl.TryResult(); ok {
				t.Fatalf("request in slot %d got two results", x.idx)
			}
		}
		for _, b := range guard {
			if b != 0 {
				t.Fatal("the client wrote past the read's buffer")
			}
		}
	})
}
