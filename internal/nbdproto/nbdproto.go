// Package nbdproto holds the wire format of the NBD protocol shared by vmstorbench's NBD
// server (vm/nbdexport) and its NBD client (backends/nbd): constants, and the encoding and
// decoding of the fixed-size messages. Reference: github.com/NetworkBlockDevice/nbd,
// doc/proto.md (fixed newstyle negotiation, simple replies).
//
// Decoders never panic: they check lengths and magics and return errors for what a hostile
// peer may send.
package nbdproto

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Handshake.
const (
	MagicNBD    = 0x4e42444d41474943 // "NBDMAGIC"
	MagicOption = 0x49484156454F5054 // "IHAVEOPT"
	MagicReply  = 0x3e889045565a9    // option replies

	// Handshake flags (server) and client flags.
	FlagFixedNewstyle = 1 << 0
	FlagNoZeroes      = 1 << 1

	// HelloLen is the server's greeting: NBDMAGIC, IHAVEOPT, handshake flags.
	HelloLen = 18
	// OptionHeaderLen is a client option's header: IHAVEOPT, option, data length.
	OptionHeaderLen = 16
	// OptionReplyHeaderLen is an option reply's header: magic, option, type, length.
	OptionReplyHeaderLen = 20
	// MaxOptionBytes bounds the data of one option or option reply either side takes.
	MaxOptionBytes = 64 << 10
)

// Options the client may send.
const (
	OptExportName = 1
	OptAbort      = 2
	OptList       = 3
	OptStartTLS   = 5
	OptInfo       = 6
	OptGo         = 7
)

// Option reply types. Error replies have bit 31 set.
const (
	RepAck              = 1
	RepServer           = 2
	RepInfo             = 3
	RepFlagError        = 1 << 31
	RepErrUnsup         = RepFlagError | 1
	RepErrPolicy        = RepFlagError | 2
	RepErrInvalid       = RepFlagError | 3
	RepErrPlatform      = RepFlagError | 4
	RepErrTLSReqd       = RepFlagError | 5
	RepErrUnknown       = RepFlagError | 6
	RepErrShutdown      = RepFlagError | 7
	RepErrBlockSizeReqd = RepFlagError | 8
	RepErrTooBig        = RepFlagError | 9
)

// Information types of NBD_REP_INFO.
const (
	InfoExport      = 0
	InfoName        = 1
	InfoDescription = 2
	InfoBlockSize   = 3
)

// Transmission flags.
const (
	TFlagHasFlags     = 1 << 0
	TFlagReadOnly     = 1 << 1
	TFlagSendFlush    = 1 << 2
	TFlagSendFUA      = 1 << 3
	TFlagRotational   = 1 << 4
	TFlagSendTrim     = 1 << 5
	TFlagCanMultiConn = 1 << 8
)

// Requests and replies.
const (
	MagicRequest         = 0x25609513
	MagicSimpleReply     = 0x67446698
	MagicStructuredReply = 0x668e33ef
	RequestLen           = 28
	ReplyLen             = 16

	CmdRead  = 0
	CmdWrite = 1
	CmdDisc  = 2
	CmdFlush = 3

	CmdFlagFUA = 1 << 0

	// DefaultMaxPayload is the largest request a client sends when the server states no
	// limit (the protocol's recommendation).
	DefaultMaxPayload = 32 << 20
)

// Error values in replies (Linux errno numbers, as the protocol defines them).
const (
	ErrPerm     = 1
	ErrIO       = 5
	ErrNoMem    = 12
	ErrInvalid  = 22
	ErrNoSpace  = 28
	ErrOverflow = 75
	ErrNotSup   = 95
	ErrShutdown = 108
)

// ErrnoName names an error value of a reply ("EIO"), or gives its number.
func ErrnoName(e uint32) string {
	switch e {
	case ErrPerm:
		return "EPERM"
	case ErrIO:
		return "EIO"
	case ErrNoMem:
		return "ENOMEM"
	case ErrInvalid:
		return "EINVAL"
	case ErrNoSpace:
		return "ENOSPC"
	case ErrOverflow:
		return "EOVERFLOW"
	case ErrNotSup:
		return "ENOTSUP"
	case ErrShutdown:
		return "ESHUTDOWN"
	}
	return fmt.Sprintf("error %d", e)
}

// RepName names an option reply type.
func RepName(t uint32) string {
	switch t {
	case RepAck:
		return "NBD_REP_ACK"
	case RepServer:
		return "NBD_REP_SERVER"
	case RepInfo:
		return "NBD_REP_INFO"
	case RepErrUnsup:
		return "NBD_REP_ERR_UNSUP (option not supported)"
	case RepErrPolicy:
		return "NBD_REP_ERR_POLICY (refused by server policy)"
	case RepErrInvalid:
		return "NBD_REP_ERR_INVALID (invalid request)"
	case RepErrPlatform:
		return "NBD_REP_ERR_PLATFORM (not supported on the server's platform)"
	case RepErrTLSReqd:
		return "NBD_REP_ERR_TLS_REQD (the server requires TLS)"
	case RepErrUnknown:
		return "NBD_REP_ERR_UNKNOWN (no such export)"
	case RepErrShutdown:
		return "NBD_REP_ERR_SHUTDOWN (server shutting down)"
	case RepErrBlockSizeReqd:
		return "NBD_REP_ERR_BLOCK_SIZE_REQD"
	case RepErrTooBig:
		return "NBD_REP_ERR_TOO_BIG"
	}
	return fmt.Sprintf("option reply type %#x", t)
}

// Request is one transmission-phase request header.
type Request struct {
	Flags  uint16
	Type   uint16
	Handle uint64
	Offset uint64
	Length uint32
}

// Put encodes r into b, which must hold RequestLen bytes.
func (r Request) Put(b []byte) {
	_ = b[RequestLen-1]
	binary.BigEndian.PutUint32(b[0:], MagicRequest)
	binary.BigEndian.PutUint16(b[4:], r.Flags)
	binary.BigEndian.PutUint16(b[6:], r.Type)
	binary.BigEndian.PutUint64(b[8:], r.Handle)
	binary.BigEndian.PutUint64(b[16:], r.Offset)
	binary.BigEndian.PutUint32(b[24:], r.Length)
}

// ErrBadRequestMagic is the error of ParseRequest on a header without the request magic.
var ErrBadRequestMagic = errors.New("bad request magic")

// ParseRequest decodes a request header.
func ParseRequest(b []byte) (Request, error) {
	if len(b) < RequestLen {
		return Request{}, fmt.Errorf("request header of %d bytes", len(b))
	}
	if binary.BigEndian.Uint32(b[0:]) != MagicRequest {
		return Request{}, ErrBadRequestMagic
	}
	return Request{
		Flags: binary.BigEndian.Uint16(b[4:]), Type: binary.BigEndian.Uint16(b[6:]),
		Handle: binary.BigEndian.Uint64(b[8:]), Offset: binary.BigEndian.Uint64(b[16:]),
		Length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// PutSimpleReply encodes a simple reply header into b, which must hold ReplyLen bytes.
func PutSimpleReply(b []byte, errno uint32, handle uint64) {
	_ = b[ReplyLen-1]
	binary.BigEndian.PutUint32(b[0:], MagicSimpleReply)
	binary.BigEndian.PutUint32(b[4:], errno)
	binary.BigEndian.PutUint64(b[8:], handle)
}

// ParseSimpleReply decodes a simple reply header. A structured reply (which the client
// never negotiates) and any other magic are errors.
func ParseSimpleReply(b []byte) (errno uint32, handle uint64, err error) {
	if len(b) < ReplyLen {
		return 0, 0, fmt.Errorf("reply header of %d bytes", len(b))
	}
	switch m := binary.BigEndian.Uint32(b[0:]); m {
	case MagicSimpleReply:
	case MagicStructuredReply:
		return 0, 0, errors.New("server sent a structured reply, which was not negotiated")
	default:
		return 0, 0, fmt.Errorf("bad reply magic %#08x", m)
	}
	return binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:]), nil
}

// AppendOption appends a client option (header and data) to b.
func AppendOption(b []byte, opt uint32, data []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, MagicOption)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

// ParseOptionHeader decodes a client option's header: the option and its data length.
func ParseOptionHeader(b []byte) (opt, length uint32, err error) {
	if len(b) < OptionHeaderLen {
		return 0, 0, fmt.Errorf("option header of %d bytes", len(b))
	}
	if binary.BigEndian.Uint64(b[0:]) != MagicOption {
		return 0, 0, errors.New("bad option magic")
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]), nil
}

// AppendOptionReply appends an option reply (header and payload) to b.
func AppendOptionReply(b []byte, opt, typ uint32, payload []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, MagicReply)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, typ)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

// ParseOptionReplyHeader decodes an option reply's header.
func ParseOptionReplyHeader(b []byte) (opt, typ, length uint32, err error) {
	if len(b) < OptionReplyHeaderLen {
		return 0, 0, 0, fmt.Errorf("option reply header of %d bytes", len(b))
	}
	if m := binary.BigEndian.Uint64(b[0:]); m != MagicReply {
		return 0, 0, 0, fmt.Errorf("bad option reply magic %#x", m)
	}
	return binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]), binary.BigEndian.Uint32(b[16:]), nil
}

// AppendInfoRequest appends the data of NBD_OPT_INFO/GO: the export name and the
// information types asked for.
func AppendInfoRequest(b []byte, name string, infos ...uint16) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

// ParseInfoRequest returns the export name and information types of NBD_OPT_INFO/GO data.
func ParseInfoRequest(d []byte) (name string, infos []uint16, ok bool) {
	if len(d) < 4 {
		return "", nil, false
	}
	n := uint64(binary.BigEndian.Uint32(d))
	if n > uint64(len(d))-4-2 || len(d) < 6 {
		return "", nil, false
	}
	name = string(d[4 : 4+n])
	rest := d[4+n:]
	reqs := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+2*reqs {
		return "", nil, false
	}
	for i := 0; i < reqs; i++ {
		infos = append(infos, binary.BigEndian.Uint16(rest[2+2*i:]))
	}
	return name, infos, true
}

// ExportInfo is what NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE say about an export.
type ExportInfo struct {
	Size  uint64
	Flags uint16
	// Block size constraints; zero when the server sent none.
	MinBlock, PreferredBlock, MaxPayload uint32
}

// AppendInfoExport appends the payload of NBD_REP_INFO for NBD_INFO_EXPORT.
func AppendInfoExport(b []byte, size uint64, flags uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, InfoExport)
	b = binary.BigEndian.AppendUint64(b, size)
	return binary.BigEndian.AppendUint16(b, flags)
}

// AppendInfoBlockSize appends the payload of NBD_REP_INFO for NBD_INFO_BLOCK_SIZE.
func AppendInfoBlockSize(b []byte, min, preferred, max uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, InfoBlockSize)
	b = binary.BigEndian.AppendUint32(b, min)
	b = binary.BigEndian.AppendUint32(b, preferred)
	return binary.BigEndian.AppendUint32(b, max)
}

// ParseInfo applies the payload of one NBD_REP_INFO to e. Information types it does not
// know are ignored, as the protocol asks; known ones of the wrong length are errors.
func (e *ExportInfo) ParseInfo(p []byte) error {
	if len(p) < 2 {
		return fmt.Errorf("NBD_REP_INFO of %d bytes", len(p))
	}
	switch t := binary.BigEndian.Uint16(p); t {
	case InfoExport:
		if len(p) != 12 {
			return fmt.Errorf("NBD_INFO_EXPORT of %d bytes, want 12", len(p))
		}
		e.Size, e.Flags = binary.BigEndian.Uint64(p[2:]), binary.BigEndian.Uint16(p[10:])
	case InfoBlockSize:
		if len(p) != 14 {
			return fmt.Errorf("NBD_INFO_BLOCK_SIZE of %d bytes, want 14", len(p))
		}
		minB, pref, maxP := binary.BigEndian.Uint32(p[2:]), binary.BigEndian.Uint32(p[6:]), binary.BigEndian.Uint32(p[10:])
		// The protocol: powers of two, min ≤ 64 KiB, min ≤ preferred, preferred ≥ 512,
		// max a multiple of min (or 0xffffffff).
		if minB == 0 || minB&(minB-1) != 0 || minB > 64<<10 || pref < minB || pref&(pref-1) != 0 || maxP < minB || (maxP != 0xffffffff && maxP%minB != 0) {
			return fmt.Errorf("invalid block sizes from server: minimum %d, preferred %d, maximum %d", minB, pref, maxP)
		}
		e.MinBlock, e.PreferredBlock, e.MaxPayload = minB, pref, maxP
	}
	return nil
}

// PutHello encodes the server's greeting (fixed newstyle) into b, which must hold HelloLen
// bytes.
func PutHello(b []byte, flags uint16) {
	_ = b[HelloLen-1]
	binary.BigEndian.PutUint64(b[0:], MagicNBD)
	binary.BigEndian.PutUint64(b[8:], MagicOption)
	binary.BigEndian.PutUint16(b[16:], flags)
}

// ParseHello decodes the server's greeting and returns its handshake flags. Oldstyle
// servers (NBDMAGIC then 0x00420281861253) are refused with an error that says so.
func ParseHello(b []byte) (uint16, error) {
	if len(b) < HelloLen {
		return 0, fmt.Errorf("greeting of %d bytes", len(b))
	}
	if binary.BigEndian.Uint64(b[0:]) != MagicNBD {
		return 0, errors.New("the server did not greet with NBDMAGIC: not an NBD server")
	}
	if m := binary.BigEndian.Uint64(b[8:]); m != MagicOption {
		if m == magicOldstyle {
			return 0, errors.New("the server speaks the oldstyle handshake, which has no export names; only (fixed) newstyle is supported")
		}
		return 0, fmt.Errorf("bad greeting magic %#x", m)
	}
	return binary.BigEndian.Uint16(b[16:]), nil
}

const magicOldstyle = 0x00420281861253
