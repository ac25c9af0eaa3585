package smb2

// Added in vmstorbench's patched copy (see README.md): GHASH with VPCLMULQDQ on 512-bit
// registers (ghash_amd64.s) for AES-128-GMAC signing, about twice as fast as crypto/cipher's
// GCM with empty plaintext on a CPU that has it.

import "encoding/binary"

// ghashKey is GHASH's key H, expanded for ghashBlocksAVX512.
type ghashKey struct {
	tbl [256]byte
}

// newGHASHKey returns the key for H = E(K, 0^128), or nil when the CPU lacks AVX-512 and
// VPCLMULQDQ (the caller then uses crypto/cipher).
func newGHASHKey(h *[16]byte) *ghashKey {
	if !avx512Crypto {
		return nil
	}
	k := new(ghashKey)
	ghashInitAVX512(&k.tbl, h)
	return k
}

// update folds p into the GHASH state acc, zero-padding a last partial block: p must be a
// multiple of 16 bytes unless it is the last input before the length block.
func (k *ghashKey) update(acc *[16]byte, p []byte) {
	whole := len(p) &^ 15
	if whole > 0 {
		ghashBlocksAVX512(&k.tbl, acc, p[:whole])
	}
	if whole < len(p) {
		var last [16]byte
		copy(last[:], p[whole:])
		ghashBlocksAVX512(&k.tbl, acc, last[:])
	}
}

// gmac returns GMAC's tag for additional data of aadLen bytes already folded into acc
// (and no ciphertext): the length block, then E(K, J0) added, into tag.
func (k *ghashKey) gmac(tag, acc *[16]byte, aadLen int, ej0 *[16]byte) {
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], uint64(aadLen)*8)
	ghashBlocksAVX512(&k.tbl, acc, lens[:])
	for i := range tag {
		tag[i] = acc[i] ^ ej0[i]
	}
}
