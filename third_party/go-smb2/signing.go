package smb2

// Added in vmstorbench's patched copy (see README.md): message signing behind one interface,
// so that SMB 3.1.1 can sign with AES-128-GMAC (MS-SMB2 3.1.4.1) besides AES-128-CMAC and
// HMAC-SHA256. AES-CMAC is a serial chain of AES blocks (~1 ms per MiB at best); GMAC is GHASH
// over the message, which carry-less multiplication runs several blocks at a time, as in
// AES-GCM encryption.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"

	"github.com/cloudsoda/go-smb2/internal/crypto/cmac"
	"github.com/cloudsoda/go-smb2/internal/smb2"
)

// Signing algorithms of SMB 3.1.1 (MS-SMB2 2.2.3.1.7), for Negotiator.SigningAlgorithms.
const (
	SigningHMACSHA256 uint16 = smb2.HMAC_SHA256
	SigningAESCMAC    uint16 = smb2.AES_CMAC
	SigningAESGMAC    uint16 = smb2.AES_GMAC
)

// clientSigningAlgorithms is what the client offers for SMB 3.1.1 unless told otherwise:
// GMAC first, as smbclient does (Samba's "client smb3 signing algorithms" default).
var clientSigningAlgorithms = []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256}

// SigningAlgorithmName names a signing algorithm as Samba's smb.conf and smbstatus do.
func SigningAlgorithmName(alg uint16) string {
	switch alg {
	case SigningHMACSHA256:
		return "HMAC-SHA256"
	case SigningAESCMAC:
		return "AES-128-CMAC"
	case SigningAESGMAC:
		return "AES-128-GMAC"
	}
	return "unknown"
}

// messageSigner computes the 16-byte signature of one SMB2 message whose signature field is
// zero. A messageSigner keeps scratch state: the sending side (under conn.m) and the
// receiver goroutine each have their own.
type messageSigner interface {
	// sum returns the signature of pkt, in scratch space valid until the next call (so
	// that signing allocates nothing). response says pkt travels from server to client,
	// which GMAC's nonce must say (the other algorithms ignore it).
	sum(pkt []byte, response bool) []byte
	// sumParts is sum of head followed by data, without joining them: the receiver reads a
	// READ response's data straight into the caller's buffer and its header elsewhere.
	// len(head) is a multiple of 16.
	sumParts(head, data []byte, response bool) []byte
}

// hashSigner signs with a MAC: AES-CMAC (SMB 3.x) or HMAC-SHA256 (SMB 2.x, and 3.1.1 when
// negotiated), truncated to 16 bytes.
type hashSigner struct {
	h   hash.Hash
	out [sha256.Size]byte // Sum's output, so that signing allocates nothing
}

func newHashSigner(h hash.Hash) *hashSigner { return &hashSigner{h: h} }

func (s *hashSigner) sum(pkt []byte, _ bool) []byte {
	s.h.Reset()
	s.h.Write(pkt)
	return s.h.Sum(s.out[:0])[:16]
}

func (s *hashSigner) sumParts(head, data []byte, _ bool) []byte {
	s.h.Reset()
	s.h.Write(head)
	s.h.Write(data)
	return s.h.Sum(s.out[:0])[:16]
}

// gmacSigner signs with AES-128-GMAC: the GCM tag of an empty plaintext with the whole
// message as additional data, under a nonce made of the MessageId and the direction.
type gmacSigner struct {
	gcm   cipher.AEAD
	block cipher.Block
	nonce [12]byte
	tag   [16]byte // Seal's output, so that signing allocates nothing

	// For sumParts: the hash key H = E(K, 0^128), and H^d for the last data length d (in
	// blocks) seen, which is the same for every 1 MiB READ.
	h        gf128
	powBlks  int
	powH     gf128
	partsTag [16]byte
	j0       [16]byte // E(K, nonce || 1), here because Encrypt through the interface would make a local escape

	// fast, when the CPU has it, computes GHASH itself (ghash.go): faster than GCM's, and
	// over head and data in turn, so that sumParts needs no combining.
	fast *ghashKey
}

func newGMACSigner(key []byte) (*gmacSigner, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block) // 12-byte nonce, 16-byte tag
	if err != nil {
		return nil, err
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	return &gmacSigner{gcm: gcm, block: block, h: gfLoad(h[:]), powBlks: -1, fast: newGHASHKey(&h)}, nil
}

// fastSum is sumParts (or sum, with data nil) with s.fast.
func (s *gmacSigner) fastSum(head, data []byte, response bool) []byte {
	gmacNonce(&s.nonce, head, response)
	s.j0 = [16]byte{15: 1}
	copy(s.j0[:], s.nonce[:])
	s.block.Encrypt(s.j0[:], s.j0[:])
	var acc [16]byte
	s.fast.update(&acc, head)
	s.fast.update(&acc, data)
	s.fast.gmac(&s.tag, &acc, len(head)+len(data), &s.j0)
	return s.tag[:]
}

// Nonce bits after the MessageId (MS-SMB2 3.1.4.1): the least significant bit is set when the
// sender is the server, the next one for an SMB2 CANCEL request; the other 30 bits are zero.
const (
	gmacNonceServer = 0x1
	gmacNonceCancel = 0x2
)

// gmacNonce fills nonce for pkt. The direction comes from the caller, not from the header's
// SMB2_FLAGS_SERVER_TO_REDIR: a client verifies responses only, and deriving the bit from
// the header would let a client's own signed request, reflected back at it, verify as a
// response.
func gmacNonce(nonce *[12]byte, pkt []byte, response bool) {
	p := smb2.PacketCodec(pkt)
	binary.LittleEndian.PutUint64(nonce[:8], p.MessageId())
	var bits uint32
	if response {
		bits |= gmacNonceServer
	}
	if p.Command() == smb2.SMB2_CANCEL {
		bits |= gmacNonceCancel
	}
	binary.LittleEndian.PutUint32(nonce[8:], bits)
}

func (s *gmacSigner) sum(pkt []byte, response bool) []byte {
	if s.fast != nil {
		return s.fastSum(pkt, nil, response)
	}
	gmacNonce(&s.nonce, pkt, response)
	return s.gcm.Seal(s.tag[:0], s.nonce[:], nil, pkt)
}

// sumParts computes GMAC(head || data) from two GMACs the standard library computes at full
// speed, GMAC(head) and GMAC(data) under the same nonce, because GHASH is linear. With
// E0 = E(K, nonce || 1), T(X) = E0 + S(X) and S(X) = Y(X)·H + L(X)·H, where Y(X) is the
// GHASH chain over X's blocks and L(X) the length block (bit length of X, then 0 for the
// empty ciphertext); for head of a whole blocks and data of d blocks (zero padded),
// Y(head||data) = Y(head)·H^d + Y(data). So (+ is XOR, · multiplication in GF(2^128)):
//
//	T(head||data) = T(data) + (T(head) + E0 + L(head)·H)·H^d + (L(data) + L(head||data))·H
func (s *gmacSigner) sumParts(head, data []byte, response bool) []byte {
	if len(head)%16 != 0 {
		panic("smb2: gmacSigner.sumParts: head not a multiple of 16 bytes") // a bug, not input
	}
	if len(data) == 0 {
		return s.sum(head, response)
	}
	if s.fast != nil {
		return s.fastSum(head, data, response)
	}
	gmacNonce(&s.nonce, head, response)
	s.j0 = [16]byte{15: 1}
	copy(s.j0[:], s.nonce[:])
	j0 := s.j0[:]
	s.block.Encrypt(j0, j0) // E0
	tHead := gfLoad(s.gcm.Seal(s.tag[:0], s.nonce[:], nil, head))
	tData := gfLoad(s.gcm.Seal(s.tag[:0], s.nonce[:], nil, data))
	blocks := (len(data) + 15) / 16
	if blocks != s.powBlks {
		s.powH, s.powBlks = gfPow(s.h, blocks), blocks
	}
	lenHead := gf128{hi: uint64(len(head)) * 8}
	lenData := gf128{hi: uint64(len(data)) * 8}
	lenAll := gf128{hi: uint64(len(head)+len(data)) * 8}
	x := tHead.xor(gfLoad(j0[:])).xor(lenHead.mul(s.h)).mul(s.powH)
	t := tData.xor(x).xor(lenData.xor(lenAll).mul(s.h))
	t.store(s.partsTag[:])
	return s.partsTag[:]
}

// gf128 is an element of GCM's GF(2^128), the block's bytes read big-endian: bit 0 of the
// spec's bit string (the coefficient of x^0) is the top bit of hi.
type gf128 struct{ hi, lo uint64 }

func gfLoad(b []byte) gf128 {
	return gf128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func (x gf128) store(b []byte) {
	binary.BigEndian.PutUint64(b[:8], x.hi)
	binary.BigEndian.PutUint64(b[8:16], x.lo)
}

func (x gf128) xor(y gf128) gf128 { return gf128{x.hi ^ y.hi, x.lo ^ y.lo} }

// mul is NIST SP 800-38D's Algorithm 1, bit by bit: a few hundred nanoseconds, spent once or
// twice per message by sumParts.
func (x gf128) mul(y gf128) gf128 {
	var z gf128
	v := y
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = x.hi >> (63 - i) & 1
		} else {
			bit = x.lo >> (127 - i) & 1
		}
		mask := -bit
		z.hi ^= v.hi & mask
		z.lo ^= v.lo & mask
		carry := v.lo & 1
		v.lo = v.lo>>1 | v.hi<<63
		v.hi >>= 1
		v.hi ^= 0xe1 << 56 & -carry
	}
	return z
}

// gfPow is h^n by squaring and multiplying.
func gfPow(h gf128, n int) gf128 {
	r := gf128{hi: 1 << 63} // the polynomial 1
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			r = r.mul(h)
		}
		h = h.mul(h)
	}
	return r
}

// newSigners returns the signer and the verifier for alg with key (the session key for SMB
// 2.x, the derived signing key for SMB 3.x).
func newSigners(alg uint16, key []byte) (signer, verifier messageSigner, err error) {
	switch alg {
	case SigningHMACSHA256:
		return newHashSigner(hmac.New(sha256.New, key)), newHashSigner(hmac.New(sha256.New, key)), nil
	case SigningAESCMAC:
		ciph, err := aes.NewCipher(key)
		if err != nil {
			return nil, nil, err
		}
		return newHashSigner(cmac.New(ciph)), newHashSigner(cmac.New(ciph)), nil
	case SigningAESGMAC:
		s, err := newGMACSigner(key)
		if err != nil {
			return nil, nil, err
		}
		v, err := newGMACSigner(key)
		if err != nil {
			return nil, nil, err
		}
		return s, v, nil
	}
	return nil, nil, &InternalError{"unknown signing algorithm"}
}

// sign signs an outgoing request in place.
func (s *session) sign(pkt []byte) []byte {
	p := smb2.PacketCodec(pkt)
	p.SetFlags(p.Flags() | smb2.SMB2_FLAGS_SIGNED)
	p.SetSignature(zero[:]) // MS-SMB2 3.1.4.1: the field is zero while hashing
	p.SetSignature(s.signer.sum(pkt, false))
	return pkt
}

// signParts signs a request held as head (a multiple of 16 bytes) and data, in head.
func (s *session) signParts(head, data []byte) {
	p := smb2.PacketCodec(head)
	p.SetFlags(p.Flags() | smb2.SMB2_FLAGS_SIGNED)
	p.SetSignature(zero[:])
	p.SetSignature(s.signer.sumParts(head, data, false))
}

// verify checks the signature of a response in place. The message is left as received.
func (s *session) verify(pkt []byte) bool {
	if s.verifier == nil || len(pkt) < 64 {
		return false
	}
	p := smb2.PacketCodec(pkt)
	var got [16]byte
	copy(got[:], p.Signature())
	p.SetSignature(zero[:])
	want := s.verifier.sum(pkt, true)
	p.SetSignature(got[:])
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// verifyParts is verify for a message held as head (a multiple of 16 bytes) and data.
func (s *session) verifyParts(head, data []byte) bool {
	if s.verifier == nil || len(head) < 64 {
		return false
	}
	p := smb2.PacketCodec(head)
	var got [16]byte
	copy(got[:], p.Signature())
	p.SetSignature(zero[:])
	want := s.verifier.sumParts(head, data, true)
	p.SetSignature(got[:])
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
