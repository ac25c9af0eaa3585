//go:build !amd64 || purego

package smb2

// Added in vmstorbench's patched copy (see README.md): without the amd64 loop, GMAC signing
// uses crypto/cipher's GCM.

const avx512Crypto = false

func ghashInitAVX512(*[256]byte, *[16]byte) { panic("smb2: no AVX-512 GHASH") }

func ghashBlocksAVX512(*[256]byte, *[16]byte, []byte) { panic("smb2: no AVX-512 GHASH") }

func aes128ExpandKey(*[176]byte, *[16]byte) { panic("smb2: no AVX-512 AES") }

func aes128EncryptBlock(*[176]byte, *[16]byte, *[16]byte) { panic("smb2: no AVX-512 AES") }

func aes128CTRAVX512(*[176]byte, *[16]byte, []byte, []byte) { panic("smb2: no AVX-512 AES") }
