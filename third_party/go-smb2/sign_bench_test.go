package smb2

// Added in vmstorbench's patched copy (see README.md): the client's cost of signing a 1 MiB
// WRITE request and of verifying a 1 MiB READ response, per signing algorithm.

import (
	"testing"

	"github.com/cloudsoda/go-smb2/internal/smb2"
)

func BenchmarkSign1MiB(b *testing.B) {
	key := make([]byte, 16)
	for _, alg := range []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		signer, verifier, err := newSigners(alg, key)
		if err != nil {
			b.Fatal(err)
		}
		s := &session{signer: signer, verifier: verifier}
		// A WRITE request: 64-byte header, 48-byte body, 1 MiB of data.
		pkt := make([]byte, 64+48+1<<20)
		p := smb2.PacketCodec(pkt)
		name := SigningAlgorithmName(alg)
		b.Run(name+"/sign", func(b *testing.B) {
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				s.sign(pkt)
			}
		})
		b.Run(name+"/verify", func(b *testing.B) {
			// verify checks a response: sign it as the server would.
			p.SetFlags(smb2.SMB2_FLAGS_SERVER_TO_REDIR | smb2.SMB2_FLAGS_SIGNED)
			p.SetSignature(zero[:])
			p.SetSignature(s.verifier.sum(pkt, true))
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			for b.Loop() {
				if !s.verify(pkt) {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}
