package nfs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// xdrBuf appends XDR (RFC 4506) items to a byte slice. Calls are encoded by hand rather than
// through reflection so that the hot path (READ, WRITE) allocates one small header and never
// copies the data.
type xdrBuf []byte

func (b *xdrBuf) u32(v uint32) { *b = binary.BigEndian.AppendUint32(*b, v) }
func (b *xdrBuf) u64(v uint64) { *b = binary.BigEndian.AppendUint64(*b, v) }

func (b *xdrBuf) bool(v bool) {
	if v {
		b.u32(1)
	} else {
		b.u32(0)
	}
}

// opaque appends variable-length opaque data: length, bytes, padding to 4 bytes.
func (b *xdrBuf) opaque(p []byte) {
	b.u32(uint32(len(p)))
	*b = append(*b, p...)
	*b = append(*b, zeroPad[:pad4(len(p))]...)
}

func (b *xdrBuf) str(s string) { b.opaque([]byte(s)) }

var zeroPad [4]byte

func pad4(n int) int { return (4 - n%4) % 4 }

// errReplyTooLong is returned when a reply claims more bytes than its record holds.
var errReplyTooLong = errors.New("malformed reply: read past the end of the RPC record")

// record reads one RPC record (RFC 5531 record marking: fragments of up to 2^31-1 bytes, the
// last one flagged) from the connection as a stream, so that READ data goes straight from
// the socket buffer into the caller's slice. It keeps socket errors apart from decoding
// errors: the former break the connection, the latter only fail one call.
type record struct {
	br *bufio.Reader
	// raw is the connection under br. A large read that finds br empty goes straight to it:
	// bufio bypasses its buffer only for reads at least as large as the buffer, and would
	// otherwise copy the rest of a 1 MiB READ's data through it.
	raw io.Reader
	// full, if set, fills a buffer from raw with one call (a blocking socket's MSG_WAITALL:
	// a large READ's data arrives with one system call and one wake-up).
	full  func(p []byte) error
	left  uint32 // bytes left in the current fragment
	last  bool   // current fragment is the record's last
	ioErr error  // first error from the connection itself
	mark  [4]byte
}

// directRead is the smallest read that bypasses an empty buffer. Smaller ones fill the
// buffer, where one system call brings in several small replies.
const directRead = 16 << 10

// begin reads the first fragment header of the next record.
func (r *record) begin() error {
	r.left, r.last = 0, false
	return r.nextFragment()
}

func (r *record) nextFragment() error {
	if _, err := io.ReadFull(r.br, r.mark[:]); err != nil {
		r.ioErr = err
		return err
	}
	v := binary.BigEndian.Uint32(r.mark[:])
	r.last = v&0x80000000 != 0
	r.left = v & 0x7fffffff
	return nil
}

func (r *record) Read(p []byte) (int, error) {
	for r.left == 0 {
		if r.last {
			return 0, errReplyTooLong
		}
		if err := r.nextFragment(); err != nil {
			return 0, err
		}
	}
	if uint32(len(p)) > r.left {
		p = p[:r.left]
	}
	var n int
	var err error
	switch {
	case r.raw != nil && len(p) >= directRead && r.br.Buffered() == 0 && r.full != nil:
		if err = r.full(p); err == nil {
			n = len(p)
		}
	case r.raw != nil && len(p) >= directRead && r.br.Buffered() == 0:
		n, err = r.raw.Read(p)
	default:
		n, err = r.br.Read(p)
	}
	r.left -= uint32(n)
	if err != nil {
		r.ioErr = err
	}
	return n, err
}

// whole reports whether the next record is in the buffer, all of it: reading it does not
// block.
func (r *record) whole() bool {
	n := r.br.Buffered()
	if n < 4 {
		return false
	}
	h, _ := r.br.Peek(4)
	v := binary.BigEndian.Uint32(h)
	return v&0x80000000 != 0 && uint64(v&0x7fffffff)+4 <= uint64(n)
}

// discard skips what is left of the record.
func (r *record) discard() error {
	for {
		if r.left > 0 {
			n, err := r.br.Discard(int(r.left))
			r.left -= uint32(n)
			if err != nil {
				r.ioErr = err
				return err
			}
		}
		if r.last {
			return nil
		}
		if err := r.nextFragment(); err != nil {
			return err
		}
	}
}

// decoder reads XDR items; the first error sticks and later reads return zero values, so a
// procedure's decoder reads its whole reply and checks err once.
type decoder struct {
	r   io.Reader
	err error
	buf [8]byte
}

func (d *decoder) fill(n int) []byte {
	if d.err != nil {
		return nil
	}
	if _, err := io.ReadFull(d.r, d.buf[:n]); err != nil {
		d.err = err
		return nil
	}
	return d.buf[:n]
}

func (d *decoder) u32() uint32 {
	b := d.fill(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (d *decoder) u64() uint64 {
	b := d.fill(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (d *decoder) bool() bool { return d.u32() != 0 }

// skip discards n bytes.
func (d *decoder) skip(n int) {
	if d.err != nil || n == 0 {
		return
	}
	if _, err := io.CopyN(io.Discard, d.r, int64(n)); err != nil {
		d.err = err
	}
}

// opaque reads variable-length opaque data of at most max bytes.
func (d *decoder) opaque(max int) []byte {
	n := d.u32()
	if d.err != nil {
		return nil
	}
	if int64(n) > int64(max) {
		d.err = fmt.Errorf("malformed reply: opaque of %d bytes, at most %d expected", n, max)
		return nil
	}
	p := make([]byte, n)
	d.into(p)
	return p
}

// into reads len(p) bytes of opaque payload (without length) and its padding.
func (d *decoder) into(p []byte) {
	if d.err != nil {
		return
	}
	if _, err := io.ReadFull(d.r, p); err != nil {
		d.err = err
		return
	}
	d.skip(pad4(len(p)))
}

func (d *decoder) str(max int) string { return string(d.opaque(max)) }

// fail records a decoding error unless one is already recorded.
func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}
