package smb2

// Added in vmstorbench's patched copy (see README.md): the AVX-512 GHASH against
// crypto/cipher's GCM, which computes the same GMAC tag by other code.

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// gmacSignerPair returns a signer using the AVX-512 GHASH and one with it switched off
// (crypto/cipher's GCM, and sumParts' combination of two GMACs), under one key.
func gmacSignerPair(t testing.TB) (fast, std *gmacSigner) {
	t.Helper()
	if !avx512Crypto {
		t.Skip("CPU without AVX-512 VPCLMULQDQ: GMAC signing uses crypto/cipher only")
	}
	key := make([]byte, 16)
	rand.Read(key)
	fast, err := newGMACSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	std, err = newGMACSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	std.fast = nil
	return fast, std
}

func TestGHASHAVX512MatchesGCM(t *testing.T) {
	fast, std := gmacSignerPair(t)
	msg := make([]byte, 1<<20+64+48+17)
	rand.Read(msg)
	var lengths []int
	for n := 64; n <= 64+700; n++ { // every length around the 16-block loop and the tail
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4096+64+48, 65536+112, 1<<20+112, 1<<20+64+48+17)
	for _, n := range lengths {
		pkt := msg[:n]
		for _, response := range []bool{false, true} {
			want := append([]byte(nil), std.sum(pkt, response)...)
			if got := fast.sum(pkt, response); !bytes.Equal(got, want) {
				t.Fatalf("sum of %d bytes (response %v): %x, crypto/cipher %x", n, response, got, want)
			}
			head, data := pkt[:64], pkt[64:]
			if got := fast.sumParts(head, data, response); !bytes.Equal(got, want) {
				t.Fatalf("sumParts of 64+%d bytes (response %v): %x, crypto/cipher %x", len(data), response, got, want)
			}
		}
	}
}

// BenchmarkGMAC1MiB is the GMAC of a 1 MiB READ response (64-byte header, then 16-byte body
// and data, as verifyParts sees it) with the AVX-512 GHASH and with crypto/cipher's GCM.
func BenchmarkGMAC1MiB(b *testing.B) {
	fast, std := gmacSignerPair(b)
	head := make([]byte, 64)
	data := make([]byte, 16+1<<20)
	for _, c := range []struct {
		name string
		s    *gmacSigner
	}{{"avx512", fast}, {"crypto-cipher", std}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(head) + len(data)))
			b.ReportAllocs()
			for b.Loop() {
				c.s.sumParts(head, data, true)
			}
		})
	}
}
