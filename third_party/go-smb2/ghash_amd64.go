//go:build amd64 && !purego

package smb2

// Added in vmstorbench's patched copy (see README.md); the loop is in ghash_amd64.s.

func ghashAVX512Supported() bool

//go:noescape
func ghashInitAVX512(tbl *[256]byte, h *[16]byte)

//go:noescape
func ghashBlocksAVX512(tbl *[256]byte, acc *[16]byte, data []byte)

var ghashAVX512 = ghashAVX512Supported()
