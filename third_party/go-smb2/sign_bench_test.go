package smb2

// Added in vmstorbench's patched copy (see README.md): the client's cost of signing a 1 MiB
// WRITE request and of verifying a 1 MiB READ response, per signing algorithm.

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"testing"

	"github.com/cloudsoda/go-smb2/internal/crypto/cmac"
	"github.com/cloudsoda/go-smb2/internal/smb2"
)

func BenchmarkSign1MiB(b *testing.B) {
	key := make([]byte, 16)
	ciph, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	algorithms := []struct {
		name string
		new  func() hash.Hash
	}{
		{"AES-CMAC", func() hash.Hash { return cmac.New(ciph) }},               // SMB 3.x
		{"HMAC-SHA256", func() hash.Hash { return hmac.New(sha256.New, key) }}, // SMB 2.x
	}
	for _, alg := range algorithms {
		s := &session{signer: alg.new(), verifier: alg.new()}
		// A WRITE request: 64-byte header, 48-byte body, 1 MiB of data.
		pkt := make([]byte, 64+48+1<<20)
		p := smb2.PacketCodec(pkt)
		b.Run(alg.name+"/sign", func(b *testing.B) {
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				p.SetSignature(zero[:]) // as encoded by makeRequestResponse
				s.sign(pkt)
			}
		})
		b.Run(alg.name+"/verify", func(b *testing.B) {
			p.SetSignature(zero[:])
			s.sign(pkt)
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if !s.verify(pkt) {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}
