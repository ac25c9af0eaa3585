//go:build amd64 && !purego

package smb2

// Added in vmstorbench's patched copy (see README.md); the loop is in ghash_amd64.s.

func avx512CryptoSupported() bool

//go:noescape
func ghashInitAVX512(tbl *[256]byte, h *[16]byte)

//go:noescape
func ghashBlocksAVX512(tbl *[256]byte, acc *[16]byte, data []byte)

var avx512Crypto = avx512CryptoSupported()

//go:noescape
func aes128ExpandKey(rk *[176]byte, key *[16]byte)

//go:noescape
func aes128EncryptBlock(rk *[176]byte, dst, src *[16]byte)

//go:noescape
func aes128CTRAVX512(rk *[176]byte, ctr *[16]byte, dst, src []byte)
