package smb2

// Added in vmstorbench's patched copy (see README.md): the VAES/AVX-512 AES-128-GCM against
// crypto/cipher's.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

func gcmPair(t testing.TB) (fast, std cipher.AEAD) {
	t.Helper()
	key := make([]byte, 16)
	rand.Read(key)
	fast = newGCMAES128(key)
	if fast == nil {
		t.Skip("CPU without AVX-512 VAES and VPCLMULQDQ: encryption uses crypto/cipher only")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	std, err = cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return fast, std
}

func TestGCMAES128MatchesCryptoCipher(t *testing.T) {
	fast, std := gcmPair(t)
	msg := make([]byte, 1<<20+80+17)
	rand.Read(msg)
	nonce := make([]byte, 12)
	aad := make([]byte, 32) // an SMB2 TRANSFORM_HEADER's authenticated part
	var lengths []int
	for n := 0; n <= 600; n++ { // around the 256-byte loop and the tail
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 4096+80, 65536+80, 1<<20+80, len(msg))
	for _, n := range lengths {
		rand.Read(nonce)
		rand.Read(aad)
		pt := msg[:n]
		want := std.Seal(nil, nonce, pt, aad)
		got := fast.Seal(nil, nonce, pt, aad)
		if !bytes.Equal(got, want) {
			t.Fatalf("Seal of %d bytes differs from crypto/cipher's", n)
		}
		// In place, as the receiver decrypts.
		buf := append([]byte(nil), want...)
		opened, err := fast.Open(buf[:0], nonce, buf, aad)
		if err != nil || !bytes.Equal(opened, pt) {
			t.Fatalf("Open of %d bytes: err %v, plaintext equal %v", n, err, bytes.Equal(opened, pt))
		}
		for _, flip := range []int{0, len(want) / 2, len(want) - 1} {
			bad := append([]byte(nil), want...)
			bad[flip] ^= 0x10
			if _, err := fast.Open(nil, nonce, bad, aad); err == nil {
				t.Fatalf("Open of %d bytes accepted a flipped bit at %d", n, flip)
			}
		}
		badAAD := append([]byte(nil), aad...)
		badAAD[5] ^= 1
		if _, err := fast.Open(nil, nonce, want, badAAD); err == nil {
			t.Fatalf("Open of %d bytes accepted altered additional data", n)
		}
	}
	if _, err := fast.Open(nil, nonce, make([]byte, 15), aad); err == nil {
		t.Fatal("Open accepted a message shorter than the tag")
	}
}

// TestGCMAES128CounterWraps: GCM's counter is the last 32 bits of the block and wraps
// without carrying into the nonce, in the 16-block loop and in the tail.
func TestGCMAES128CounterWraps(t *testing.T) {
	fast, _ := gcmPair(t)
	g := fast.(*gcmAES128)
	src := make([]byte, 4096+48)
	for _, start := range []uint32{0xffffffff - 5, 0xffffffff - 200, 0xffffffff} {
		var ctr, ref [16]byte
		ctr[3], ctr[11] = 7, 9
		ctr[12], ctr[13], ctr[14], ctr[15] = byte(start>>24), byte(start>>16), byte(start>>8), byte(start)
		ref = ctr
		got := make([]byte, len(src))
		g.xorKeyStream(&ctr, got, src)
		for i := 0; i < len(src); i += 16 {
			var ks [16]byte
			aes128EncryptBlock(&g.rk, &ks, &ref)
			if !bytes.Equal(got[i:i+16], ks[:]) {
				t.Fatalf("start %#x: block %d differs", start, i/16)
			}
			for j := 15; j >= 12; j-- { // inc32
				ref[j]++
				if ref[j] != 0 {
					break
				}
			}
		}
	}
}

// BenchmarkGCM1MiB seals and opens (in place) a 1 MiB READ response's worth of SMB2
// message with the VAES/AVX-512 GCM and with crypto/cipher's.
func BenchmarkGCM1MiB(b *testing.B) {
	fast, std := gcmPair(b)
	nonce := make([]byte, 12)
	aad := make([]byte, 32)
	pt := make([]byte, 1<<20+80)
	for _, c := range []struct {
		name string
		aead cipher.AEAD
	}{{"avx512", fast}, {"crypto-cipher", std}} {
		sealed := c.aead.Seal(nil, nonce, pt, aad)
		buf := make([]byte, len(sealed))
		b.Run(c.name+"/seal", func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				c.aead.Seal(buf[:0], nonce, pt, aad)
			}
		})
		b.Run(c.name+"/open", func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.aead.Open(buf[:0], nonce, sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
