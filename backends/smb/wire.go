package smb

import (
	"bufio"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"

	smb2 "github.com/cloudsoda/go-smb2"
)

// go-smb2 does not export what it negotiated (dialect, maximum I/O sizes) nor whether it
// signs or encrypts. wireConn learns it from the bytes on the wire while the Target is being
// opened: the NEGOTIATE response gives dialect and sizes, and the CREATE request of the bench
// file shows whether requests go out plain, signed or encrypted. Once Open has finished,
// sniffing is switched off and wireConn is a plain net.Conn (one atomic load per call).

// SMB2 header layout (MS-SMB2 2.2.1) and the fields read from it.
const (
	smb2HeaderLen    = 64
	offCommand       = 12
	offFlags         = 16
	flagServerToRedr = 0x1
	flagSigned       = 0x8
	cmdNegotiate     = 0x0
	cmdTreeConnect   = 0x3
	cmdCreate        = 0x5
	wildcardDialect  = 0x02FF
	// NEGOTIATE response body: StructureSize(2) SecurityMode(2) DialectRevision(2) ...
	// MaxTransactSize at 28, MaxReadSize at 32, MaxWriteSize at 36.
	offNegDialect  = smb2HeaderLen + 4
	offNegMaxRead  = smb2HeaderLen + 32
	offNegMaxWrite = smb2HeaderLen + 36
	negHeadLen     = smb2HeaderLen + 40
)

var (
	magicPlain     = [4]byte{0xFE, 'S', 'M', 'B'}
	magicTransform = [4]byte{0xFD, 'S', 'M', 'B'}
)

// security levels as reported by Describe.
const (
	securityNone      = "none"
	securitySigned    = "signed"
	securityEncrypted = "encrypted"
)

// negotiated is what wireConn observed.
type negotiated struct {
	dialect  uint16
	maxRead  uint32
	maxWrite uint32
	// createSecurity is how the CREATE request for the bench file was protected.
	createSecurity string
}

// wireConn also saves system calls and TCP segments. go-smb2 writes each request as two
// writes, the 4-byte length then the message: with TCP_NODELAY that is two segments and two
// wake-ups of the server per request, so wireConn holds the length back and sends both with
// one writev (a large WRITE comes through WriteBuffers, already as one vector). And it reads through a buffer, so that a small response (or several) arrive
// in one read instead of two per response; reads larger than the buffer bypass it.
type wireConn struct {
	net.Conn
	r        *bufio.Reader
	pending  [4]byte // transport length held back by Write
	havePend bool
	vec      [2][]byte // backing array of the writev, so a write allocates nothing

	sniffing atomic.Bool

	mu  sync.Mutex // guards rx and got while sniffing
	rx  frameSniffer
	got negotiated
}

// readBuffer is the receive buffer; 1 MiB READ responses bypass it.
const readBuffer = 64 << 10

func newWireConn(c net.Conn) *wireConn {
	w := &wireConn{Conn: c}
	if c != nil {
		w.r = bufio.NewReaderSize(c, readBuffer)
	}
	w.rx.head = make([]byte, 0, negHeadLen)
	w.rx.onHead = w.inbound
	w.sniffing.Store(true)
	return w
}

// stopSniffing ends observation and returns what was seen.
func (w *wireConn) stopSniffing() negotiated {
	w.sniffing.Store(false)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got
}

// Read is called by go-smb2's receiver goroutine only.
func (w *wireConn) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 && w.sniffing.Load() {
		w.mu.Lock()
		w.rx.feed(p[:n])
		w.mu.Unlock()
	}
	return n, err
}

// Write is called by go-smb2's sender goroutine only, with the 4-byte transport length and
// then the SMB2 message (at least 64 bytes) of each request.
func (w *wireConn) Write(p []byte) (int, error) {
	if len(p) == len(w.pending) && !w.havePend {
		copy(w.pending[:], p)
		w.havePend = true
		return len(p), nil
	}
	if w.sniffing.Load() {
		w.outbound(p)
	}
	if !w.havePend {
		return w.Conn.Write(p)
	}
	w.havePend = false
	bufs := net.Buffers(append(w.vec[:0], w.pending[:], p))
	n, err := bufs.WriteTo(w.Conn) // writev
	w.vec = [2][]byte{}            // drop the reference to p
	return max(int(n)-len(w.pending), 0), err
}

// WriteBuffers is go-smb2's BuffersWriter (the patched copy): a large WRITE comes as the
// transport length, the encoded header and the caller's data, written with one writev.
func (w *wireConn) WriteBuffers(bufs *net.Buffers) (int64, error) {
	if w.sniffing.Load() && len(*bufs) > 1 {
		w.outbound((*bufs)[1])
	}
	return bufs.WriteTo(w.Conn)
}

func (w *wireConn) outbound(msg []byte) {
	if len(msg) < smb2HeaderLen {
		return
	}
	var magic [4]byte
	copy(magic[:], msg)
	security := ""
	switch magic {
	case magicTransform:
		security = securityEncrypted
	case magicPlain:
		if binary.LittleEndian.Uint16(msg[offCommand:]) != cmdCreate {
			return
		}
		security = securityNone
		if binary.LittleEndian.Uint32(msg[offFlags:])&flagSigned != 0 {
			security = securitySigned
		}
	default:
		return
	}
	w.mu.Lock()
	w.got.createSecurity = security
	w.mu.Unlock()
}

// inbound is called with the first bytes of each received frame.
func (w *wireConn) inbound(head []byte) {
	if len(head) < negHeadLen || [4]byte(head[:4]) != magicPlain {
		return
	}
	if binary.LittleEndian.Uint16(head[offCommand:]) != cmdNegotiate ||
		binary.LittleEndian.Uint32(head[offFlags:])&flagServerToRedr == 0 {
		return
	}
	d := binary.LittleEndian.Uint16(head[offNegDialect:])
	if d == wildcardDialect {
		return // the client negotiates again with SMB 2.1
	}
	w.got.dialect = d
	w.got.maxRead = binary.LittleEndian.Uint32(head[offNegMaxRead:])
	w.got.maxWrite = binary.LittleEndian.Uint32(head[offNegMaxWrite:])
}

// frameSniffer follows the direct-TCP framing (4-byte big-endian length, then the message)
// of a byte stream cut at arbitrary points, and hands the first cap(head) bytes of each
// message to onHead.
type frameSniffer struct {
	lenBuf [4]byte
	lenN   int
	remain int // bytes of the current message not yet seen
	head   []byte
	onHead func([]byte)
}

func (s *frameSniffer) feed(b []byte) {
	for len(b) > 0 {
		if s.remain == 0 {
			n := copy(s.lenBuf[s.lenN:], b)
			s.lenN += n
			b = b[n:]
			if s.lenN == len(s.lenBuf) {
				s.lenN = 0
				s.remain = int(binary.BigEndian.Uint32(s.lenBuf[:]) & 0xFFFFFF)
				s.head = s.head[:0]
			}
			continue
		}
		n := min(len(b), s.remain)
		if room := cap(s.head) - len(s.head); room > 0 {
			s.head = append(s.head, b[:min(n, room)]...)
			if len(s.head) == cap(s.head) || n == s.remain {
				s.onHead(s.head)
			}
		}
		s.remain -= n
		b = b[n:]
	}
}

// wireConn must keep go-smb2's large WRITEs at one system call.
var _ smb2.BuffersWriter = (*wireConn)(nil)
