package smb2

// Added in vmstorbench's patched copy (see README.md): AES-128-GCM for SMB 3.1.1
// encryption with VAES counter mode and the AVX-512 GHASH (ghash_amd64.s). crypto/cipher's
// GCM runs AES-NI and PCLMULQDQ on 128-bit registers, one pass; this is two passes on
// 512-bit registers (GHASH over the ciphertext, then counter mode), and Open checks the tag
// before it writes any plaintext.

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

const gcmTagSize = 16

var errGCMOpen = errors.New("smb2: message authentication failed")

// gcmAES128 is a cipher.AEAD (12-byte nonce, 16-byte tag). It holds only the expanded keys,
// so it is safe for concurrent use.
type gcmAES128 struct {
	rk [176]byte
	gh ghashKey
}

// newGCMAES128 returns AES-128-GCM with a 12-byte nonce for key, or nil when the CPU lacks
// what ghash_amd64.s needs or key is not 16 bytes (the caller then uses crypto/cipher).
func newGCMAES128(key []byte) cipher.AEAD {
	if !avx512Crypto || len(key) != 16 {
		return nil
	}
	g := new(gcmAES128)
	aes128ExpandKey(&g.rk, (*[16]byte)(key))
	var h [16]byte
	aes128EncryptBlock(&g.rk, &h, &h)
	ghashInitAVX512(&g.gh.tbl, &h)
	return g
}

func (g *gcmAES128) NonceSize() int { return 12 }
func (g *gcmAES128) Overhead() int  { return gcmTagSize }

// counters returns J0 (nonce || 1) and the first counter block (nonce || 2).
func gcmCounters(nonce []byte) (j0, ctr [16]byte) {
	if len(nonce) != 12 {
		panic("smb2: GCM nonce must be 12 bytes")
	}
	copy(j0[:], nonce)
	j0[15] = 1
	ctr = j0
	ctr[15] = 2
	return j0, ctr
}

// xorKeyStream is counter mode from ctr over src into dst (len(dst) >= len(src)).
func (g *gcmAES128) xorKeyStream(ctr *[16]byte, dst, src []byte) {
	bulk := len(src) &^ 255
	aes128CTRAVX512(&g.rk, ctr, dst[:bulk], src[:bulk])
	for i := bulk; i < len(src); i += 16 {
		var ks [16]byte
		aes128EncryptBlock(&g.rk, &ks, ctr)
		binary.BigEndian.PutUint32(ctr[12:], binary.BigEndian.Uint32(ctr[12:])+1)
		subtle.XORBytes(dst[i:], src[i:], ks[:])
	}
}

// tag computes GCM's tag over aad and the ciphertext head followed by c, without joining
// them (the receiver holds a READ response's head and data apart); len(head) is a multiple
// of 16.
func (g *gcmAES128) tag(out *[16]byte, j0 *[16]byte, aad, head, c []byte) {
	var acc, lens, ej0 [16]byte
	g.gh.update(&acc, aad)
	g.gh.update(&acc, head)
	g.gh.update(&acc, c)
	binary.BigEndian.PutUint64(lens[:8], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(lens[8:], uint64(len(head)+len(c))*8)
	ghashBlocksAVX512(&g.gh.tbl, &acc, lens[:])
	aes128EncryptBlock(&g.rk, &ej0, j0)
	subtle.XORBytes(out[:], acc[:], ej0[:])
}

func (g *gcmAES128) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	j0, ctr := gcmCounters(nonce)
	ret, out := sliceForAppend(dst, len(plaintext)+gcmTagSize)
	c := out[:len(plaintext)]
	g.xorKeyStream(&ctr, c, plaintext)
	var t [16]byte
	g.tag(&t, &j0, additionalData, nil, c)
	copy(out[len(plaintext):], t[:])
	return ret
}

func (g *gcmAES128) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < gcmTagSize {
		return nil, errGCMOpen
	}
	j0, ctr := gcmCounters(nonce)
	c, got := ciphertext[:len(ciphertext)-gcmTagSize], ciphertext[len(ciphertext)-gcmTagSize:]
	var want [16]byte
	g.tag(&want, &j0, additionalData, nil, c)
	if subtle.ConstantTimeCompare(want[:], got) != 1 {
		return nil, errGCMOpen
	}
	ret, out := sliceForAppend(dst, len(c))
	g.xorKeyStream(&ctr, out, c)
	return ret, nil
}

// sliceForAppend extends in by n bytes (reallocating if needed) and returns the whole and
// the new part, as crypto/cipher does.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
