package initiator

import (
	"bufio"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
)

// Params are the session parameters in force after login.
type Params struct {
	HeaderDigest bool
	DataDigest   bool
	// MaxRecvDataSegmentLength is what we declared: the largest data segment the target
	// may send us.
	MaxRecvDataSegmentLength int
	// MaxXmitDataSegmentLength is what the target declared (8192 when it declared nothing):
	// the largest data segment we may send, immediate data and Data-Out alike.
	MaxXmitDataSegmentLength int
	MaxBurstLength           int
	FirstBurstLength         int
	InitialR2T               bool
	ImmediateData            bool
	MaxOutstandingR2T        int
	DataPDUInOrder           bool
	DataSequenceInOrder      bool
	ErrorRecoveryLevel       int
	// TSIH is the session handle the target assigned.
	TSIH uint16
	// TargetAlias is the alias the target declared, if any.
	TargetAlias string
}

// defaultParams are RFC 7143's defaults, which apply to every key not negotiated.
func defaultParams() Params {
	return Params{
		MaxRecvDataSegmentLength: 8192,
		MaxXmitDataSegmentLength: 8192,
		MaxBurstLength:           262144,
		FirstBurstLength:         65536,
		InitialR2T:               true,
		ImmediateData:            true,
		MaxOutstandingR2T:        1,
		DataPDUInOrder:           true,
		DataSequenceInOrder:      true,
	}
}

// ourMaxRecvDataSegmentLength is what we declare: large Data-In PDUs mean fewer headers and
// fewer reads per byte.
const ourMaxRecvDataSegmentLength = 262144

// LoginError is a login the target refused (a non-zero Status-Class in a Login Response).
type LoginError struct {
	Class, Detail byte
	// TargetAddress is set on a redirection.
	TargetAddress string
	// Stage is what the login was doing ("security negotiation", "CHAP", ...).
	Stage string
	msg   string
}

func (e *LoginError) Error() string {
	s := fmt.Sprintf("iscsi: login refused during %s: %s (status 0x%02x%02x)", e.Stage, e.msg, e.Class, e.Detail)
	if e.TargetAddress != "" {
		s += "; target redirects to " + e.TargetAddress + " (redirection is not supported: use that address)"
	}
	return s
}

// NotFound reports whether the target does not know the target name.
func (e *LoginError) NotFound() bool { return e.Class == 2 && (e.Detail == 3 || e.Detail == 4) }

// AuthFailed reports whether authentication or authorization failed.
func (e *LoginError) AuthFailed() bool { return e.Class == 2 && (e.Detail == 1 || e.Detail == 2) }

func loginStatusText(class, detail byte) string {
	switch uint16(class)<<8 | uint16(detail) {
	case 0x0101:
		return "target moved temporarily"
	case 0x0102:
		return "target moved permanently"
	case 0x0200:
		return "initiator error"
	case 0x0201:
		return "authentication failed (wrong CHAP user or secret, or the target requires CHAP)"
	case 0x0202:
		return "authorization failure: this initiator may not access the target"
	case 0x0203:
		return "target name not found"
	case 0x0204:
		return "target removed"
	case 0x0205:
		return "unsupported iSCSI version"
	case 0x0206:
		return "too many connections"
	case 0x0207:
		return "missing parameter"
	case 0x0208:
		return "cannot include connection in session"
	case 0x0209:
		return "session type not supported"
	case 0x020a:
		return "session does not exist"
	case 0x020b:
		return "invalid request during login"
	case 0x0300:
		return "target error"
	case 0x0301:
		return "service unavailable"
	case 0x0302:
		return "out of resources"
	}
	return "unknown status"
}

// loginConn runs the login phase on a fresh connection, one request/response at a time.
type loginConn struct {
	w         io.Writer
	rd        pduReader
	cfg       *Config
	isid      [6]byte
	itt       uint32
	cmdSN     uint32
	expStatSN uint32
	statSeen  bool
	tsih      uint16
	stage     string
	params    Params
	// maxCmdSN and expCmdSN from the final response open the command window.
	maxCmdSN, expCmdSN uint32
	buf                []byte
}

// loginResponse is one (possibly multi-PDU) Login Response.
type loginResponse struct {
	transit  bool
	csg, nsg byte
	kvs      []kv
}

// maxLoginText bounds the text a target may send during login; the data segment limit during
// login is 8192 bytes per PDU (RFC 7143 §13.12), this bounds the sum of continued PDUs.
const maxLoginText = 64 << 10

// exchange sends one Login Request (csg → nsg, transit) with kvs and returns the answer,
// following Continue bits in both directions.
func (l *loginConn) exchange(csg, nsg byte, transit bool, kvs []kv) (*loginResponse, error) {
	text := encodeText(nil, kvs)
	var rsp loginResponse
	var acc []byte
	for {
		// Send our text in pieces of at most 8192 bytes, the default MaxRecvDataSegmentLength.
		piece := text
		cont := false
		if len(piece) > 8192 {
			piece, cont = text[:8192], true
		}
		text = text[len(piece):]
		var h header
		h[0] = flagImmediate | opLoginReq
		h[1] = csg<<2 | nsg
		if transit && !cont {
			h[1] |= flagTransit
		}
		if cont {
			h[1] |= flagContinue
		}
		h.setDataLen(len(piece))
		copy(h[8:14], l.isid[:])
		h[14], h[15] = byte(l.tsih>>8), byte(l.tsih)
		h.put32(16, l.itt)
		h.put32(24, l.cmdSN)
		h.put32(28, l.expStatSN)
		out := append(append(l.buf[:0], h[:]...), piece...)
		out = append(out, make([]byte, pad4(len(piece)))...)
		l.buf = out
		if _, err := l.w.Write(out); err != nil {
			return nil, fmt.Errorf("iscsi: login: send: %w", err)
		}
		var r header
		if err := l.rd.readHeader(&r); err != nil {
			return nil, l.readErr(err)
		}
		if r.opcode() == opReject {
			return nil, fmt.Errorf("iscsi: login: target rejected the Login Request (%s)", rejectReason(r[2]))
		}
		if r.opcode() != opLoginRsp {
			return nil, protoErr("%s during login, expected a Login Response", opName(r.opcode()))
		}
		data := make([]byte, r.dataLen())
		if err := l.rd.readData(data); err != nil {
			return nil, l.readErr(err)
		}
		if r.itt() != l.itt {
			return nil, protoErr("Login Response ITT 0x%08x, expected 0x%08x", r.itt(), l.itt)
		}
		if r[3] != 0 {
			return nil, fmt.Errorf("iscsi: login: target speaks iSCSI version %d, this initiator version 0 only", r[3])
		}
		l.statSeen = true
		l.expStatSN = r.statSN() + 1
		l.expCmdSN, l.maxCmdSN = r.expCmdSN(), r.maxCmdSN()
		l.tsih = uint16(r[14])<<8 | uint16(r[15])
		acc = append(acc, data...)
		if len(acc) > maxLoginText {
			return nil, protoErr("login text longer than %d bytes", maxLoginText)
		}
		if class, detail := r[36], r[37]; class != 0 {
			kvs, _ := parseText(acc)
			addr, _ := lookup(kvs, "TargetAddress")
			return nil, &LoginError{Class: class, Detail: detail, TargetAddress: addr, Stage: l.stage, msg: loginStatusText(class, detail)}
		}
		if cont {
			continue // the target answers a continued request with an empty response
		}
		if r[1]&flagContinue != 0 {
			// The target has more text: ask for it with an empty request, T=0.
			transit = false
			continue
		}
		kvs, err := parseText(acc)
		if err != nil {
			return nil, err
		}
		rsp.kvs = kvs
		rsp.transit = r[1]&flagTransit != 0
		rsp.csg, rsp.nsg = (r[1]>>2)&3, r[1]&3
		if rsp.transit && rsp.nsg <= csg {
			return nil, protoErr("Login Response transits to stage %d from stage %d", rsp.nsg, csg)
		}
		return &rsp, nil
	}
}

func (l *loginConn) readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		hint := "unknown target name, or authentication required?"
		if l.cfg.CHAPUser != "" {
			hint = "unknown target name, or the target does not support CHAP?"
		}
		return fmt.Errorf("iscsi: login (%s): target closed the connection (%s): %w", l.stage, hint, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("iscsi: login (%s): no answer from target: %w", l.stage, err)
	}
	return fmt.Errorf("iscsi: login (%s): %w", l.stage, err)
}

// login performs security and operational negotiation up to the full feature phase.
func (l *loginConn) login() error {
	l.params = defaultParams()
	first := []kv{
		{"InitiatorName", l.cfg.InitiatorName},
		{"SessionType", "Normal"},
		{"TargetName", l.cfg.TargetName},
	}
	var rsp *loginResponse
	var err error
	var declared []kv
	if l.cfg.CHAPUser == "" {
		l.stage = "security negotiation"
		rsp, err = l.exchange(0, 1, true, append(first, kv{"AuthMethod", "None"}))
		if err != nil {
			return err
		}
		if m, ok := lookup(rsp.kvs, "AuthMethod"); ok && m != "None" {
			return fmt.Errorf("iscsi: login: target requires authentication (AuthMethod answer %q): set chap_user= and the CHAP secret", m)
		}
		declared = append(declared, rsp.kvs...)
		for i := 0; !(rsp.transit && rsp.nsg >= 1); i++ {
			if i == 4 {
				return protoErr("target does not leave security negotiation")
			}
			if rsp, err = l.exchange(0, 1, true, nil); err != nil {
				return err
			}
			declared = append(declared, rsp.kvs...)
		}
	} else {
		if rsp, err = l.chap(first); err != nil {
			return err
		}
		declared = append(declared, rsp.kvs...)
	}
	if rsp.nsg == 3 {
		// The target skipped operational negotiation: defaults apply.
		return l.apply(nil, declared)
	}
	l.stage = "operational negotiation"
	offers := l.offers()
	rsp, err = l.exchange(1, 3, true, offers)
	if err != nil {
		return err
	}
	all := append(declared, rsp.kvs...)
	for i := 0; ; i++ {
		answers, err := l.negotiate(offers, rsp.kvs)
		if err != nil {
			return err
		}
		if rsp.transit && rsp.nsg == 3 && len(answers) == 0 {
			break
		}
		if i == 8 {
			return protoErr("operational negotiation does not end")
		}
		if rsp, err = l.exchange(1, 3, true, answers); err != nil {
			return err
		}
		all = append(all, rsp.kvs...)
	}
	return l.apply(offers, all)
}

// chap runs one-way CHAP with MD5 in the security stage (RFC 7143 §12.1.3).
func (l *loginConn) chap(first []kv) (*loginResponse, error) {
	l.stage = "CHAP authentication"
	rsp, err := l.exchange(0, 1, false, append(first, kv{"AuthMethod", "CHAP"}))
	if err != nil {
		return nil, err
	}
	if m, _ := lookup(rsp.kvs, "AuthMethod"); m != "CHAP" {
		return nil, fmt.Errorf("iscsi: login: target refused CHAP (AuthMethod answer %q): it may not require authentication; drop chap_user=", m)
	}
	if rsp, err = l.exchange(0, 1, false, []kv{{"CHAP_A", "5"}}); err != nil {
		return nil, err
	}
	if a, _ := lookup(rsp.kvs, "CHAP_A"); a != "5" {
		return nil, fmt.Errorf("iscsi: login: target chose CHAP algorithm %q, only MD5 (5) is supported", a)
	}
	idStr, _ := lookup(rsp.kvs, "CHAP_I")
	id, err := strconv.ParseUint(idStr, 10, 8)
	if err != nil {
		return nil, protoErr("bad CHAP_I %q", truncate(idStr, 20))
	}
	chStr, _ := lookup(rsp.kvs, "CHAP_C")
	challenge, err := decodeBinary(chStr)
	if err != nil || len(challenge) == 0 || len(challenge) > 1024 {
		return nil, protoErr("bad CHAP_C challenge")
	}
	resp := chapMD5(byte(id), []byte(l.cfg.CHAPSecret), challenge)
	rsp, err = l.exchange(0, 1, true, []kv{
		{"CHAP_N", l.cfg.CHAPUser},
		{"CHAP_R", "0x" + hex.EncodeToString(resp)},
	})
	if err != nil {
		var le *LoginError
		if errors.As(err, &le) && le.AuthFailed() {
			le.msg = fmt.Sprintf("CHAP authentication failed for user %q (wrong user or secret)", l.cfg.CHAPUser)
		}
		return nil, err
	}
	for i := 0; !(rsp.transit && rsp.nsg >= 1); i++ {
		if i == 4 {
			return nil, protoErr("target does not leave security negotiation after CHAP")
		}
		if rsp, err = l.exchange(0, 1, true, nil); err != nil {
			return nil, err
		}
	}
	return rsp, nil
}

// chapMD5 is the CHAP response: MD5(identifier || secret || challenge) (RFC 1994).
func chapMD5(id byte, secret, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write(secret)
	h.Write(challenge)
	return h.Sum(nil)
}

// decodeBinary decodes an iSCSI binary value: 0x-prefixed hex or 0b-prefixed base64.
func decodeBinary(s string) ([]byte, error) {
	if len(s) < 3 {
		return nil, errors.New("too short")
	}
	body := s[2:]
	switch s[:2] {
	case "0x", "0X":
		if len(body)%2 == 1 {
			body = "0" + body
		}
		return hex.DecodeString(body)
	case "0b", "0B":
		return base64.StdEncoding.DecodeString(body)
	}
	return nil, errors.New("not 0x or 0b encoded")
}

// Negotiation semantics of the keys we use (RFC 7143 §13).
type keyKind int

const (
	kindList keyKind = iota
	kindAnd
	kindOr
	kindMin
	kindMax
	kindDeclarative
)

var keyKinds = map[string]keyKind{
	"HeaderDigest":             kindList,
	"DataDigest":               kindList,
	"MaxConnections":           kindMin,
	"InitialR2T":               kindOr,
	"ImmediateData":            kindAnd,
	"MaxRecvDataSegmentLength": kindDeclarative,
	"MaxBurstLength":           kindMin,
	"FirstBurstLength":         kindMin,
	"DefaultTime2Wait":         kindMax,
	"DefaultTime2Retain":       kindMin,
	"MaxOutstandingR2T":        kindMin,
	"DataPDUInOrder":           kindOr,
	"DataSequenceInOrder":      kindOr,
	"ErrorRecoveryLevel":       kindMin,
	"IFMarker":                 kindAnd,
	"OFMarker":                 kindAnd,
}

func digestName(on bool) string {
	if on {
		return "CRC32C"
	}
	return "None"
}

// offers are the operational keys we propose. Numbers are our limits; the target answers
// with the smaller (or larger) of its own and ours.
func (l *loginConn) offers() []kv {
	return []kv{
		{"HeaderDigest", digestName(l.cfg.HeaderDigest)},
		{"DataDigest", digestName(l.cfg.DataDigest)},
		{"MaxConnections", "1"},
		{"InitialR2T", "No"},
		{"ImmediateData", "Yes"},
		{"MaxRecvDataSegmentLength", strconv.Itoa(ourMaxRecvDataSegmentLength)},
		{"MaxBurstLength", "16776192"},
		{"FirstBurstLength", "16776192"},
		{"DefaultTime2Wait", "0"},
		{"DefaultTime2Retain", "0"},
		{"MaxOutstandingR2T", "16"},
		{"DataPDUInOrder", "Yes"},
		{"DataSequenceInOrder", "Yes"},
		{"ErrorRecoveryLevel", "0"},
	}
}

// negotiate checks the target's answers to our offers and returns our answers to keys the
// target offered on its own.
func (l *loginConn) negotiate(offers, got []kv) ([]kv, error) {
	var answers []kv
	for _, p := range got {
		if _, offered := lookup(offers, p.key); offered {
			continue // checked in apply
		}
		kind, known := keyKinds[p.key]
		switch {
		case p.key == "MaxRecvDataSegmentLength" || isDeclarativeTargetKey(p.key):
			// declarations need no answer
		case !known:
			answers = append(answers, kv{p.key, "NotUnderstood"})
		case p.key == "HeaderDigest" || p.key == "DataDigest":
			want := digestName(l.cfg.HeaderDigest)
			if p.key == "DataDigest" {
				want = digestName(l.cfg.DataDigest)
			}
			if !listHas(p.value, want) {
				return nil, fmt.Errorf("iscsi: login: target offers %s=%s, we need %s", p.key, p.value, want)
			}
			answers = append(answers, kv{p.key, want})
		case p.key == "IFMarker" || p.key == "OFMarker":
			answers = append(answers, kv{p.key, "No"})
		default:
			ours, _ := lookup(l.offers(), p.key)
			v, err := result(kind, ours, p.value)
			if err != nil {
				return nil, fmt.Errorf("iscsi: login: target offers %s=%q: %v", p.key, truncate(p.value, 40), err)
			}
			answers = append(answers, kv{p.key, v})
		}
	}
	return answers, nil
}

func isDeclarativeTargetKey(k string) bool {
	switch k {
	case "TargetAlias", "TargetPortalGroupTag", "TargetAddress", "TargetName":
		return true
	}
	return false
}

func listHas(list, v string) bool {
	for _, x := range strings.Split(list, ",") {
		if x == v {
			return true
		}
	}
	return false
}

// result computes the outcome of a negotiation from our value and the target's.
func result(kind keyKind, ours, theirs string) (string, error) {
	switch kind {
	case kindAnd, kindOr:
		if theirs != "Yes" && theirs != "No" {
			return "", errors.New("not Yes or No")
		}
		a, b := ours == "Yes", theirs == "Yes"
		r := a && b
		if kind == kindOr {
			r = a || b
		}
		if r {
			return "Yes", nil
		}
		return "No", nil
	case kindMin, kindMax:
		a, err1 := strconv.ParseUint(ours, 10, 32)
		b, err2 := strconv.ParseUint(theirs, 10, 32)
		if err1 != nil || err2 != nil {
			return "", errors.New("not a number")
		}
		if (kind == kindMin) == (b < a) {
			a = b
		}
		return strconv.FormatUint(a, 10), nil
	}
	return theirs, nil
}

// apply sets l.params from our offers and every key the target sent.
func (l *loginConn) apply(offers, got []kv) error {
	p := &l.params
	p.MaxRecvDataSegmentLength = 8192
	if v, ok := lookup(offers, "MaxRecvDataSegmentLength"); ok {
		p.MaxRecvDataSegmentLength, _ = strconv.Atoi(v)
	}
	if v, ok := lookup(got, "MaxRecvDataSegmentLength"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 512 || n > maxSegment {
			return protoErr("target declares MaxRecvDataSegmentLength=%q", truncate(v, 20))
		}
		p.MaxXmitDataSegmentLength = n
	}
	if v, ok := lookup(got, "TargetAlias"); ok {
		p.TargetAlias = v
	}
	for _, o := range offers {
		kind := keyKinds[o.key]
		if kind == kindDeclarative {
			continue
		}
		theirs, answered := lookup(got, o.key)
		var value string
		switch {
		case !answered, theirs == "Irrelevant", theirs == "NotUnderstood", theirs == "Reject":
			if (o.key == "HeaderDigest" || o.key == "DataDigest") && o.value != "None" {
				if !answered {
					theirs = "none"
				}
				return fmt.Errorf("iscsi: login: target does not accept %s=%s (answer %q)", o.key, o.value, theirs)
			}
			continue // the default applies
		case kind == kindList:
			if theirs != o.value {
				return fmt.Errorf("iscsi: login: target does not accept %s=%s (it answered %s)", o.key, o.value, truncate(theirs, 40))
			}
			value = theirs
		default:
			r, err := result(kind, o.value, theirs)
			if err != nil {
				return protoErr("answer %s=%q: %v", o.key, truncate(theirs, 40), err)
			}
			value = r
		}
		n, _ := strconv.Atoi(value)
		yes := value == "Yes"
		switch o.key {
		case "HeaderDigest":
			p.HeaderDigest = value == "CRC32C"
		case "DataDigest":
			p.DataDigest = value == "CRC32C"
		case "InitialR2T":
			p.InitialR2T = yes
		case "ImmediateData":
			p.ImmediateData = yes
		case "MaxBurstLength":
			p.MaxBurstLength = n
		case "FirstBurstLength":
			p.FirstBurstLength = n
		case "MaxOutstandingR2T":
			p.MaxOutstandingR2T = n
		case "DataPDUInOrder":
			p.DataPDUInOrder = yes
		case "DataSequenceInOrder":
			p.DataSequenceInOrder = yes
		case "ErrorRecoveryLevel":
			p.ErrorRecoveryLevel = n
		}
	}
	if p.ErrorRecoveryLevel != 0 {
		return fmt.Errorf("iscsi: login: target insists on ErrorRecoveryLevel=%d; only 0 is supported", p.ErrorRecoveryLevel)
	}
	if p.MaxBurstLength < 512 || p.MaxBurstLength > maxSegment {
		return protoErr("MaxBurstLength %d out of range", p.MaxBurstLength)
	}
	if p.FirstBurstLength < 512 || p.FirstBurstLength > p.MaxBurstLength {
		p.FirstBurstLength = min(max(p.FirstBurstLength, 512), p.MaxBurstLength)
	}
	if p.MaxOutstandingR2T < 1 || p.MaxOutstandingR2T > 65535 {
		return protoErr("MaxOutstandingR2T %d out of range", p.MaxOutstandingR2T)
	}
	p.TSIH = l.tsih
	return nil
}

// newLoginConn prepares a login that writes to w and reads from br (which the session keeps
// reading from afterwards).
func newLoginConn(w io.Writer, br *bufio.Reader, cfg *Config, isid [6]byte) *loginConn {
	l := &loginConn{w: w, cfg: cfg, isid: isid, itt: 0, cmdSN: 1}
	// During login both sides may send data segments of 8192 bytes (RFC 7143 §13.12); accept
	// more from lenient targets, bounded.
	l.rd = pduReader{r: br, maxData: 65536}
	return l
}
