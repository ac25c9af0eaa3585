package cmac

// Added in vmstorbench's patched copy (see third_party/go-smb2/README.md): RFC 4493 vectors
// written in one piece, Write-in-pieces equivalence against a one-shot reference, and the
// cost of signing a 1 MiB message.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newAES(t testing.TB, key []byte) cipher.Block {
	t.Helper()
	c, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRFC4493 checks the four AES-128 examples of RFC 4493 section 4, each message written
// at once into a fresh and into a reset hash.
func TestRFC4493(t *testing.T) {
	key := mustHex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := mustHex(t, "6bc1bee22e409f96e93d7e117393172a"+
		"ae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52ef"+
		"f69f2445df4f9b17ad2b417be66c3710")
	tests := []struct {
		name string
		len  int
		mac  string
	}{
		{"example 1, empty", 0, "bb1d6929e95937287fa37d129b756746"},
		{"example 2, 16 bytes", 16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{"example 3, 40 bytes", 40, "dfa66747de9ae63030ca32611497c827"},
		{"example 4, 64 bytes", 64, "51f0bebf7e3b9d92fc49741779363cfe"},
	}
	c := newAES(t, key)
	reused := New(c)
	_, _ = reused.Write(msg) // state to be discarded by Reset
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := mustHex(t, tt.mac)
			h := New(c)
			_, _ = h.Write(msg[:tt.len])
			if got := h.Sum(nil); !bytes.Equal(got, want) {
				t.Errorf("new hash: got %x, want %x", got, want)
			}
			reused.Reset()
			_, _ = reused.Write(msg[:tt.len])
			if got := reused.Sum(nil); !bytes.Equal(got, want) {
				t.Errorf("reset hash: got %x, want %x", got, want)
			}
			if got := referenceCMAC(c, msg[:tt.len]); !bytes.Equal(got, want) {
				t.Errorf("reference: got %x, want %x", got, want)
			}
		})
	}
}

// referenceCMAC is AES-CMAC straight from RFC 4493 section 2.4, over the whole message at
// once, written independently of the package's code.
func referenceCMAC(c cipher.Block, m []byte) []byte {
	const bs = 16
	dbl := func(in []byte) []byte { // multiplication by x in GF(2^128), RFC 4493 2.3
		out := make([]byte, bs)
		for i := range bs {
			out[i] = in[i] << 1
			if i+1 < bs {
				out[i] |= in[i+1] >> 7
			}
		}
		if in[0]&0x80 != 0 {
			out[bs-1] ^= 0x87
		}
		return out
	}
	l := make([]byte, bs)
	c.Encrypt(l, l)
	k1 := dbl(l)
	k2 := dbl(k1)

	n := (len(m) + bs - 1) / bs
	complete := n > 0 && len(m)%bs == 0
	if n == 0 {
		n = 1
	}
	last := make([]byte, bs)
	tail := m[(n-1)*bs:]
	if complete {
		for i := range bs {
			last[i] = tail[i] ^ k1[i]
		}
	} else {
		copy(last, tail)
		last[len(tail)] = 0x80
		for i := range bs {
			last[i] ^= k2[i]
		}
	}
	x := make([]byte, bs)
	for i := 0; i < n-1; i++ {
		for j := range bs {
			x[j] ^= m[i*bs+j]
		}
		c.Encrypt(x, x)
	}
	for j := range bs {
		x[j] ^= last[j]
	}
	c.Encrypt(x, x)
	return x
}

// TestWriteInPieces checks the hash.Hash contract: writing a message in pieces, with Sum
// called between them, gives the MAC of the whole message, for random lengths (around
// block boundaries and up to 1 MiB) and random split points.
func TestWriteInPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(4493, 1))
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	c := newAES(t, key)
	buf := make([]byte, 1<<20+64)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lengths := []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64, 65, 1 << 20, 1<<20 + 64, 1<<20 + 33}
	for range 300 {
		lengths = append(lengths, rng.IntN(600))
	}
	for range 20 {
		lengths = append(lengths, rng.IntN(len(buf)+1))
	}
	h := New(c)
	for _, n := range lengths {
		msg := buf[:n]
		want := referenceCMAC(c, msg)

		h.Reset()
		_, _ = h.Write(msg)
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("len %d in one write: got %x, want %x", n, got, want)
		}

		// Random cut points, some of them repeated (empty writes).
		cuts := []int{0, n}
		for range rng.IntN(8) {
			cuts = append(cuts, rng.IntN(n+1))
		}
		slices.Sort(cuts)
		h.Reset()
		for i := 1; i < len(cuts); i++ {
			piece := msg[cuts[i-1]:cuts[i]]
			if k, err := h.Write(piece); k != len(piece) || err != nil {
				t.Fatalf("Write(%d bytes) = %d, %v", len(piece), k, err)
			}
			// Sum must not disturb the state.
			if got := h.Sum(nil); !bytes.Equal(got, referenceCMAC(c, msg[:cuts[i]])) {
				t.Fatalf("len %d, prefix %d (cuts %v): intermediate Sum wrong", n, cuts[i], cuts)
			}
		}
		if got := h.Sum([]byte("prefix")); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("len %d, cuts %v: got %x, want %x", n, cuts, got, want)
		}
	}
}

// BenchmarkSign1MiB is the MAC of one 1 MiB SMB WRITE or READ message (header + data) as
// session.sign and session.verify compute it: Reset, one Write, Sum.
func BenchmarkSign1MiB(b *testing.B) {
	h := New(newAES(b, make([]byte, 16)))
	msg := make([]byte, 64+48+1<<20)
	sig := make([]byte, 0, 16)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		h.Reset()
		_, _ = h.Write(msg)
		sig = h.Sum(sig[:0])
	}
}
