package ccm

import (
	"crypto/cipher"
	"crypto/subtle"
)

// CBC-MAC implementation
type mac struct {
	ci []byte
	p  int
	c  cipher.Block
}

func newMAC(c cipher.Block) *mac {
	return &mac{
		c:  c,
		ci: make([]byte, c.BlockSize()),
	}
}

func (m *mac) Reset() {
	for i := range m.ci {
		m.ci[i] = 0
	}
	m.p = 0
}

// Write is patched in vmstorbench's copy: the input is XORed into ci a block at a time with
// subtle.XORBytes instead of byte by byte with a branch per byte; the state is the same.
func (m *mac) Write(p []byte) (n int, err error) {
	n = len(p)
	for len(p) > 0 {
		if m.p >= len(m.ci) {
			m.c.Encrypt(m.ci, m.ci)
			m.p = 0
		}
		k := subtle.XORBytes(m.ci[m.p:], m.ci[m.p:], p)
		m.p += k
		p = p[k:]
	}
	return n, nil
}

// PadZero emulates zero byte padding.
func (m *mac) PadZero() {
	if m.p != 0 {
		m.c.Encrypt(m.ci, m.ci)
		m.p = 0
	}
}

func (m *mac) Sum(in []byte) []byte {
	return append(in, m.ci...)
}

func (m *mac) Size() int { return len(m.ci) }

func (m *mac) BlockSize() int { return 16 }
