// Package initiator is a small iSCSI initiator (RFC 7143) in pure Go: one session with one
// TCP connection, login with optional one-way CHAP, and SCSI commands pipelined by initiator
// task tag within the target's command window. It implements error recovery level 0 only:
// any protocol error, digest error or timeout ends the session and fails every command in
// flight, which is what a benchmark wants (an error, never a hang).
package initiator

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Opcodes (RFC 7143 §11.1.1). Initiator opcodes are 0x00-0x1f, target opcodes 0x20-0x3f.
const (
	opNopOut      = 0x00
	opSCSICmd     = 0x01
	opTaskMgmt    = 0x02
	opLoginReq    = 0x03
	opTextReq     = 0x04
	opDataOut     = 0x05
	opLogoutReq   = 0x06
	opNopIn       = 0x20
	opSCSIResp    = 0x21
	opTaskMgmtRsp = 0x22
	opLoginRsp    = 0x23
	opTextRsp     = 0x24
	opDataIn      = 0x25
	opLogoutRsp   = 0x26
	opR2T         = 0x31
	opAsync       = 0x32
	opReject      = 0x3f
)

// Flags in byte 0 and byte 1 of the basic header segment.
const (
	flagImmediate = 0x40 // byte 0: immediate delivery (no CmdSN advance)
	flagFinal     = 0x80 // byte 1: F
	flagRead      = 0x40 // SCSI command: R
	flagWrite     = 0x20 // SCSI command: W
	attrSimple    = 0x01 // SCSI command task attribute SIMPLE
	flagStatus    = 0x01 // Data-In: S (phase collapse: status in this PDU)
	flagUnderflow = 0x02 // Data-In / SCSI Response: U (residual underflow)
	flagOverflow  = 0x04 // Data-In / SCSI Response: O (residual overflow)
	flagTransit   = 0x80 // Login: T
	flagContinue  = 0x40 // Login / Text: C
)

const (
	bhsLen      = 48
	digestLen   = 4
	reservedTag = 0xffffffff // "no tag" value for ITT and TTT
	// maxAHSLen is the largest additional header segment: TotalAHSLength is one byte of words.
	maxAHSLen = 255 * 4
	// maxSegment is the largest DataSegmentLength the 24-bit field can express.
	maxSegment = 1<<24 - 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32c is the iSCSI digest: CRC32C over the bytes, sent little-endian (RFC 7143 §13.1).
func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is one basic header segment.
type header [bhsLen]byte

func (h *header) opcode() byte { return h[0] & 0x3f }
func (h *header) flags() byte  { return h[1] }
func (h *header) ahsLen() int  { return int(h[4]) * 4 }
func (h *header) dataLen() int { return int(h[5])<<16 | int(h[6])<<8 | int(h[7]) }
func (h *header) setDataLen(n int) {
	h[4] = 0
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}
func (h *header) u32(off int) uint32       { return binary.BigEndian.Uint32(h[off:]) }
func (h *header) put32(off int, v uint32)  { binary.BigEndian.PutUint32(h[off:], v) }
func (h *header) put64(off int, v uint64)  { binary.BigEndian.PutUint64(h[off:], v) }
func (h *header) itt() uint32              { return h.u32(16) }
func (h *header) ttt() uint32              { return h.u32(20) }
func (h *header) statSN() uint32           { return h.u32(24) }
func (h *header) expCmdSN() uint32         { return h.u32(28) }
func (h *header) maxCmdSN() uint32         { return h.u32(32) }
func (h *header) lunBytes() (b [8]byte)    { copy(b[:], h[8:16]); return b }
func (h *header) setLUNBytes(b [8]byte)    { copy(h[8:16], b[:]) }
func (h *header) clear()                   { *h = header{} }
func (h *header) String() string           { return fmt.Sprintf("%s ITT 0x%08x", opName(h.opcode()), h.itt()) }
func (h *header) setLUN(lun uint64)        { h.setLUNBytes(encodeLUN(lun)) }
func pad4(n int) int                       { return (4 - n&3) & 3 }
func putDigest(b []byte, sum uint32)       { binary.LittleEndian.PutUint32(b, sum) }
func getDigest(b []byte) uint32            { return binary.LittleEndian.Uint32(b) }
func serialLess(a, b uint32) bool          { return a != b && int32(a-b) < 0 }
func serialLessEq(a, b uint32) bool        { return int32(a-b) <= 0 }
func be32(b []byte) uint32                 { return binary.BigEndian.Uint32(b) }
func errorf(format string, a ...any) error { return fmt.Errorf("iscsi: "+format, a...) }

// encodeLUN returns the 8-byte LUN field for lun (SAM single-level addressing): peripheral
// device addressing for 0-255, flat space addressing up to 16383.
func encodeLUN(lun uint64) (b [8]byte) {
	if lun < 256 {
		b[1] = byte(lun)
	} else {
		b[0] = 0x40 | byte(lun>>8)&0x3f
		b[1] = byte(lun)
	}
	return b
}

// decodeLUN is the inverse of encodeLUN for the forms it produces; ok is false for others.
func decodeLUN(b []byte) (lun uint64, ok bool) {
	if len(b) < 8 {
		return 0, false
	}
	for _, x := range b[2:8] {
		if x != 0 {
			return 0, false
		}
	}
	switch b[0] >> 6 {
	case 0:
		return uint64(b[1]), b[0] == 0
	case 1:
		return uint64(b[0]&0x3f)<<8 | uint64(b[1]), true
	}
	return 0, false
}

// protocolError is a PDU from the target that breaks the protocol; it ends the session.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "iscsi: protocol error from target: " + e.msg }

func protoErr(format string, a ...any) error { return &protocolError{fmt.Sprintf(format, a...)} }

// DigestError is a header or data digest that does not match the bytes received.
type DigestError struct {
	Header    bool
	Got, Want uint32
}

func (e *DigestError) Error() string {
	what := "data"
	if e.Header {
		what = "header"
	}
	return fmt.Sprintf("iscsi: %s digest mismatch from target (got 0x%08x, computed 0x%08x)", what, e.Got, e.Want)
}

// fullReader is implemented by transports that can fill a buffer in one call.
type fullReader interface{ ReadFull(p []byte) error }

// readFull fills b from r, in one call if r can.
func readFull(r io.Reader, b []byte) error {
	if fr, ok := r.(fullReader); ok {
		return fr.ReadFull(b)
	}
	_, err := io.ReadFull(r, b)
	return err
}

// directReadMin is the data segment size from which readData bypasses the buffer.
const directReadMin = 16 << 10

// pduReader reads PDUs from the target. It owns small scratch buffers so that reading a PDU
// allocates nothing.
type pduReader struct {
	r io.Reader
	// buffered and direct, when set, are r's buffer and the unbuffered reader under it: large
	// data segments are read straight into their destination instead of through the buffer.
	buffered   buffered
	direct     io.Reader
	big        bool // the last data segment was large: see src
	hdrDigest  bool
	dataDigest bool
	maxData    int // largest data segment accepted (our MaxRecvDataSegmentLength)
	ahs        [maxAHSLen + digestLen]byte
	tail       [8]byte // padding and data digest
}

// readHeader reads the next BHS into h, skips any AHS and checks the header digest. The
// caller then consumes exactly h.dataLen() bytes of data with readData or discardData.
func (p *pduReader) readHeader(h *header) error {
	src := p.src()
	if err := readFull(src, h[:]); err != nil {
		return err
	}
	if h[0]&0x80 != 0 {
		return protoErr("reserved bit set in header byte 0 (0x%02x)", h[0])
	}
	n := h.ahsLen()
	extra := n
	if p.hdrDigest {
		extra += digestLen
	}
	if extra > 0 {
		if err := readFull(src, p.ahs[:extra]); err != nil {
			return unexpectedEOF(err)
		}
	}
	if p.hdrDigest {
		sum := crc32.Update(crc32c(h[:]), castagnoli, p.ahs[:n])
		if got := getDigest(p.ahs[n:]); got != sum {
			return &DigestError{Header: true, Got: got, Want: sum}
		}
	}
	if d := h.dataLen(); d > p.maxData {
		return protoErr("%s carries a %d-byte data segment, more than the %d bytes negotiated (MaxRecvDataSegmentLength)", h, d, p.maxData)
	}
	p.big = h.dataLen() >= directReadMin
	return nil
}

// src is where the next bytes come from. Normally the buffer, so that one read system call
// fetches many small PDUs. After a large data segment, while the buffer is empty, it is the
// socket itself, read for exact sizes: a large Data-In is then read with one read of its
// header and one or two straight into the caller's memory, never copied through the buffer.
func (p *pduReader) src() io.Reader {
	if p.big && p.direct != nil && p.buffered.Buffered() == 0 {
		return p.direct
	}
	return p.r
}

// readData reads the data segment of length len(dst) (which must be the header's
// DataSegmentLength), its padding and its digest.
func (p *pduReader) readData(dst []byte) error {
	if p.direct != nil && len(dst) >= directReadMin {
		// Take what the buffer holds, then read the rest without copying it through the
		// buffer (a 1 MiB read would otherwise copy up to half of it twice).
		n := 0
		if b := p.buffered.Buffered(); b > 0 {
			n, _ = p.r.Read(dst[:min(b, len(dst))])
		}
		if err := readFull(p.direct, dst[n:]); err != nil {
			return unexpectedEOF(err)
		}
	} else if _, err := io.ReadFull(p.r, dst); err != nil {
		return unexpectedEOF(err)
	}
	return p.readTail(len(dst), func() uint32 { return crc32c(dst) })
}

// readTail consumes the padding and data digest that follow a data segment of length n whose
// CRC (without padding) sum computes.
func (p *pduReader) readTail(n int, sum func() uint32) error {
	padding := pad4(n)
	k := padding
	if p.dataDigest && n > 0 {
		k += digestLen
	}
	if k == 0 {
		return nil
	}
	if err := readFull(p.src(), p.tail[:k]); err != nil {
		return unexpectedEOF(err)
	}
	if p.dataDigest && n > 0 {
		want := crc32.Update(sum(), castagnoli, p.tail[:padding])
		if got := getDigest(p.tail[padding:]); got != want {
			return &DigestError{Got: got, Want: want}
		}
	}
	return nil
}

// discardData skips a data segment of n bytes we have no use for, checking its digest.
func (p *pduReader) discardData(n int) error {
	var sum uint32
	var buf [512]byte
	for left := n; left > 0; {
		k := min(left, len(buf))
		if _, err := io.ReadFull(p.r, buf[:k]); err != nil {
			return unexpectedEOF(err)
		}
		sum = crc32.Update(sum, castagnoli, buf[:k])
		left -= k
	}
	return p.readTail(n, func() uint32 { return sum })
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func opName(op byte) string {
	switch op {
	case opNopOut:
		return "NOP-Out"
	case opSCSICmd:
		return "SCSI Command"
	case opTaskMgmt:
		return "Task Management Request"
	case opLoginReq:
		return "Login Request"
	case opTextReq:
		return "Text Request"
	case opDataOut:
		return "Data-Out"
	case opLogoutReq:
		return "Logout Request"
	case opNopIn:
		return "NOP-In"
	case opSCSIResp:
		return "SCSI Response"
	case opTaskMgmtRsp:
		return "Task Management Response"
	case opLoginRsp:
		return "Login Response"
	case opTextRsp:
		return "Text Response"
	case opDataIn:
		return "Data-In"
	case opLogoutRsp:
		return "Logout Response"
	case opR2T:
		return "R2T"
	case opAsync:
		return "Asynchronous Message"
	case opReject:
		return "Reject"
	}
	return fmt.Sprintf("opcode 0x%02x", op)
}

// rejectReason names the reason codes of a Reject PDU (RFC 7143 §11.17.1).
func rejectReason(r byte) string {
	switch r {
	case 0x02:
		return "data (payload) digest error"
	case 0x03:
		return "SNACK reject"
	case 0x04:
		return "protocol error"
	case 0x05:
		return "command not supported"
	case 0x06:
		return "immediate command reject (too many immediate commands)"
	case 0x07:
		return "task in progress"
	case 0x08:
		return "invalid data ACK"
	case 0x09:
		return "invalid PDU field"
	case 0x0a:
		return "long operation reject (out of resources)"
	case 0x0c:
		return "waiting for logout"
	}
	return "unknown reason"
}

func crc32cUpdate(sum uint32, b []byte) uint32 { return crc32.Update(sum, castagnoli, b) }
