package smb2

// Added in vmstorbench's patched copy (see README.md): signing with AES-128-GMAC, AES-128-CMAC
// and HMAC-SHA256 against signatures computed independently, tampering, and the negotiation
// of SMB2_SIGNING_CAPABILITIES.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudsoda/go-smb2/internal/smb2"
)

// signingKey is the 16-byte signing key (as derived by kdf) of the vectors below.
const signingKey = "8a1f3c7e5b2d94f0c6e8a1b3d5f70924"

// vectorMessage builds the message of a vector: a 64-byte SMB2 header with the given
// command, flags, MessageId and SessionId (every other field zero, signature zero), then
// bodyLen bytes i*7+3.
func vectorMessage(cmd uint16, flags uint32, msgID, sessionID uint64, bodyLen int) []byte {
	pkt := make([]byte, 64+bodyLen)
	copy(pkt, "\xfeSMB")
	binary.LittleEndian.PutUint16(pkt[4:], 64)
	binary.LittleEndian.PutUint16(pkt[12:], cmd)
	binary.LittleEndian.PutUint32(pkt[16:], flags)
	binary.LittleEndian.PutUint64(pkt[24:], msgID)
	binary.LittleEndian.PutUint64(pkt[40:], sessionID)
	for i := range bodyLen {
		pkt[64+i] = byte(i*7 + 3)
	}
	return pkt
}

// signingVectors were computed with Python's cryptography package (OpenSSL), independently
// of this code, from MS-SMB2 3.1.4.1 as written: AESGCM(key).encrypt(nonce, b"", message)
// with nonce = MessageId (8 bytes LE) + 4 bytes LE holding 1 for a server's message and 2
// for a CANCEL request; CMAC(AES(key)); HMAC-SHA256(key) truncated to 16 bytes.
var signingVectors = []struct {
	name     string
	cmd      uint16
	flags    uint32
	msgID    uint64
	bodyLen  int
	response bool
	gmac     string
	cmac     string
	hmac     string
}{
	{"read response", smb2.SMB2_READ, smb2.SMB2_FLAGS_SERVER_TO_REDIR | smb2.SMB2_FLAGS_SIGNED, 0x1d, 1000, true,
		"b37d0687e89867be99a69bcc5f35b72e", "d509e3cda6b64697cc00e9d9c79b5ad8", "a75e092f45a50fc1a0a4386156b9ba9a"},
	{"write request", smb2.SMB2_WRITE, smb2.SMB2_FLAGS_SIGNED, 0x1e, 4096 + 48, false,
		"0379ab7d2f92b79fa076820aee602c37", "1671647c6cd118cb3402c9a97f17869d", "c970d463bd5ce06cb3c9983dfdb853f3"},
	{"cancel request", smb2.SMB2_CANCEL, smb2.SMB2_FLAGS_SIGNED | smb2.SMB2_FLAGS_ASYNC_COMMAND, 0x1f, 4, false,
		"d4c9baf1e8078ed839157834e787d390", "f947b37aa80208d080ccbc1ffb183357", "58e0e0c45d55f45d94122f0ec22b71bc"},
	{"large message id response", smb2.SMB2_CREATE, smb2.SMB2_FLAGS_SERVER_TO_REDIR | smb2.SMB2_FLAGS_SIGNED, 0xfedcba9876543210, 77, true,
		"8260d998862132b109cc15fa1d3836bf", "311a961a32435e7f15cf26ed7400c9d3", "993acd6b22e30f4174826a54a8df05f2"},
}

const vectorSessionID = 0x0000400000000005

func mustSigners(t testing.TB, alg uint16) (*session, []byte) {
	t.Helper()
	key, _ := hex.DecodeString(signingKey)
	signer, verifier, err := newSigners(alg, key)
	if err != nil {
		t.Fatal(err)
	}
	return &session{signer: signer, verifier: verifier, signingAlgorithm: alg}, key
}

func TestSigningVectors(t *testing.T) {
	for _, alg := range []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		s, _ := mustSigners(t, alg)
		for _, v := range signingVectors {
			t.Run(SigningAlgorithmName(alg)+"/"+v.name, func(t *testing.T) {
				want, _ := hex.DecodeString(map[uint16]string{SigningAESGMAC: v.gmac, SigningAESCMAC: v.cmac, SigningHMACSHA256: v.hmac}[alg])
				pkt := vectorMessage(v.cmd, v.flags, v.msgID, vectorSessionID, v.bodyLen)
				if !v.response {
					// What the client sends: sign sets the flag and the signature in place.
					unsigned := vectorMessage(v.cmd, v.flags&^smb2.SMB2_FLAGS_SIGNED, v.msgID, vectorSessionID, v.bodyLen)
					s.sign(unsigned)
					if got := smb2.PacketCodec(unsigned).Signature(); !bytes.Equal(got, want) {
						t.Fatalf("sign: signature %x, want %x", got, want)
					}
					if !bytes.Equal(unsigned[:48], pkt[:48]) || !bytes.Equal(unsigned[64:], pkt[64:]) {
						t.Fatal("sign changed more than the flags and the signature")
					}
					return
				}
				// What the client receives: verify accepts the server's signature.
				smb2.PacketCodec(pkt).SetSignature(want)
				received := bytes.Clone(pkt)
				if !s.verify(pkt) {
					t.Fatalf("verify rejects the signature %x", want)
				}
				if !bytes.Equal(pkt, received) {
					t.Fatal("verify did not leave the message as received")
				}
			})
		}
	}
}

// TestGMACNonce spells out MS-SMB2 3.1.4.1's nonce.
func TestGMACNonce(t *testing.T) {
	for _, c := range []struct {
		cmd      uint16
		response bool
		want     string
	}{
		{smb2.SMB2_READ, false, "efcdab8967452301" + "00000000"},
		{smb2.SMB2_READ, true, "efcdab8967452301" + "01000000"},
		{smb2.SMB2_CANCEL, false, "efcdab8967452301" + "02000000"},
	} {
		pkt := vectorMessage(c.cmd, 0, 0x0123456789abcdef, 1, 0)
		var nonce [12]byte
		gmacNonce(&nonce, pkt, c.response)
		if got := hex.EncodeToString(nonce[:]); got != c.want {
			t.Errorf("command %#x response=%v: nonce %s, want %s", c.cmd, c.response, got, c.want)
		}
	}
}

// TestVerifyRejectsTampering changes one bit anywhere in a signed response (header, body,
// signature): verification must fail, and leave the message as it arrived.
func TestVerifyRejectsTampering(t *testing.T) {
	for _, alg := range []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		t.Run(SigningAlgorithmName(alg), func(t *testing.T) {
			s, key := mustSigners(t, alg)
			_, server, err := newSigners(alg, key) // the server's side, signing responses
			if err != nil {
				t.Fatal(err)
			}
			pkt := vectorMessage(smb2.SMB2_READ, smb2.SMB2_FLAGS_SERVER_TO_REDIR|smb2.SMB2_FLAGS_SIGNED, 42, vectorSessionID, 300)
			smb2.PacketCodec(pkt).SetSignature(server.sum(pkt, true))
			if !s.verify(pkt) {
				t.Fatal("genuine response rejected")
			}
			for _, at := range []int{0, 12, 16, 24, 40, 48, 63, 64, 200, len(pkt) - 1} {
				bad := bytes.Clone(pkt)
				bad[at] ^= 0x10
				received := bytes.Clone(bad)
				if s.verify(bad) {
					t.Errorf("response with byte %d changed verifies", at)
				}
				if !bytes.Equal(bad, received) {
					t.Errorf("byte %d: verify changed the rejected message", at)
				}
			}
			if s.verify(pkt[:len(pkt)-1]) || s.verify(append(bytes.Clone(pkt), 0)) {
				t.Error("truncated or extended response verifies")
			}
			if s.verify(pkt[:40]) {
				t.Error("a 40-byte message verifies")
			}
		})
	}
	t.Run("reflected request", func(t *testing.T) {
		// A client's own signed request sent back to it must not pass as a response. With
		// GMAC the direction is in the nonce; CMAC and HMAC have no such bit (the header's
		// flags differ, but an attacker reflects the request unchanged).
		s, _ := mustSigners(t, SigningAESGMAC)
		req := vectorMessage(smb2.SMB2_READ, 0, 42, vectorSessionID, 49)
		s.sign(req)
		if s.verify(req) {
			t.Fatal("GMAC: a reflected request verifies as a response")
		}
	})
}

// TestNegotiateSigningCapabilities runs NEGOTIATE against a fake server: the request must
// offer GMAC, CMAC, HMAC-SHA256 in that order, and the client must take the server's choice,
// fall back to CMAC without a signing context, and refuse a choice it did not offer.
func TestNegotiateSigningCapabilities(t *testing.T) {
	cases := []struct {
		name    string
		offer   []uint16 // Negotiator.SigningAlgorithms
		reply   []uint16 // nil: no signing context in the response
		want    uint16
		wantErr string
	}{
		{name: "server picks GMAC", reply: []uint16{SigningAESGMAC}, want: SigningAESGMAC},
		{name: "server picks CMAC", reply: []uint16{SigningAESCMAC}, want: SigningAESCMAC},
		{name: "server picks HMAC-SHA256", reply: []uint16{SigningHMACSHA256}, want: SigningHMACSHA256},
		{name: "no signing context", want: SigningAESCMAC},
		{name: "client offers CMAC only", offer: []uint16{SigningAESCMAC}, reply: []uint16{SigningAESCMAC}, want: SigningAESCMAC},
		{name: "not offered", offer: []uint16{SigningAESCMAC}, reply: []uint16{SigningAESGMAC}, wantErr: "not offered"},
		{name: "unknown algorithm", reply: []uint16{7}, wantErr: "not offered"},
		{name: "two algorithms", reply: []uint16{SigningAESGMAC, SigningAESCMAC}, wantErr: "multiple signing algorithms"},
		{name: "empty list", reply: []uint16{}, wantErr: "multiple signing algorithms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clientConn, serverConn := net.Pipe()
			defer clientConn.Close()
			offered := make(chan []uint16, 1)
			go fakeNegotiateServer(direct(serverConn), c.reply, offered)
			n := Negotiator{SpecifiedDialect: smb2.SMB311, SigningAlgorithms: c.offer}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := n.negotiate(ctx, direct(clientConn), openAccount(128))
			wantOffer := c.offer
			if wantOffer == nil {
				wantOffer = []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256}
			}
			if got := <-offered; !equalUint16s(got, wantOffer) {
				t.Errorf("offered %v, want %v", got, wantOffer)
			}
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if conn.signingAlgorithmId != c.want {
				t.Fatalf("signing algorithm %#x, want %#x", conn.signingAlgorithmId, c.want)
			}
		})
	}
	t.Run("older dialects", func(t *testing.T) {
		for dialect, want := range map[uint16]uint16{smb2.SMB210: SigningHMACSHA256, smb2.SMB302: SigningAESCMAC} {
			req, err := (&Negotiator{SpecifiedDialect: dialect}).makeRequest()
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Contexts) != 0 {
				t.Errorf("dialect %#x: %d negotiate contexts", dialect, len(req.Contexts))
			}
			clientConn, serverConn := net.Pipe()
			go fakeNegotiateServerDialect(direct(serverConn), dialect, nil, make(chan []uint16, 1))
			conn, err := (&Negotiator{SpecifiedDialect: dialect}).negotiate(context.Background(), direct(clientConn), openAccount(128))
			clientConn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if conn.signingAlgorithmId != want {
				t.Errorf("dialect %#x: signing algorithm %#x, want %#x", dialect, conn.signingAlgorithmId, want)
			}
		}
	})
}

func equalUint16s(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func fakeNegotiateServer(t transport, reply []uint16, offered chan<- []uint16) {
	fakeNegotiateServerDialect(t, smb2.SMB311, reply, offered)
}

// fakeNegotiateServerDialect answers one NEGOTIATE request with dialect, a SHA-512 preauth
// context and (when reply is not nil) a signing context listing reply, and sends what the
// request offered in its signing context (nil without one) to offered.
func fakeNegotiateServerDialect(t transport, dialect uint16, reply []uint16, offered chan<- []uint16) {
	defer t.Close()
	n, err := t.ReadSize()
	if err != nil {
		offered <- nil
		return
	}
	req := make([]byte, n)
	if _, err := t.Read(req); err != nil {
		offered <- nil
		return
	}
	var got []uint16
	if off := int(binary.LittleEndian.Uint32(req[64+28:])); off > 0 && off < len(req) {
		list := req[off:]
		for range binary.LittleEndian.Uint16(req[64+32:]) {
			ctx := smb2.NegotiateContextDecoder(list)
			if ctx.IsInvalid() {
				break
			}
			if ctx.ContextType() == smb2.SMB2_SIGNING_CAPABILITIES {
				got = smb2.SigningContextDataDecoder(ctx.Data()).SigningAlgorithms()
			}
			if ctx.Next() >= len(list) {
				break
			}
			list = list[ctx.Next():]
		}
	}
	offered <- got

	res := &smb2.NegotiateResponse{
		PacketHeader:    smb2.PacketHeader{Flags: smb2.SMB2_FLAGS_SERVER_TO_REDIR, MessageId: smb2.PacketCodec(req).MessageId(), CreditRequestResponse: 1},
		DialectRevision: dialect,
		MaxTransactSize: 1 << 20, MaxReadSize: 1 << 20, MaxWriteSize: 1 << 20,
		SystemTime: &smb2.Filetime{}, ServerStartTime: &smb2.Filetime{},
	}
	if dialect == smb2.SMB311 {
		res.Contexts = append(res.Contexts, &smb2.HashContext{HashAlgorithms: []uint16{smb2.SHA512}, HashSalt: make([]byte, 32)})
		if reply != nil {
			res.Contexts = append(res.Contexts, &smb2.SigningContext{SigningAlgorithms: reply})
		}
	}
	pkt := make([]byte, res.Size())
	res.Encode(pkt)
	_, _ = t.Write(pkt)
}

// TestSumParts checks that signing a message given as two parts (the way the receiver
// verifies a READ response whose data went straight to the caller's buffer) gives the
// signature of the joined message, for every algorithm and data lengths around block and
// power-of-two boundaries.
func TestSumParts(t *testing.T) {
	for _, alg := range []uint16{SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		s, _ := mustSigners(t, alg)
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 1000, 4096, 65535, 65536 + 7, 1 << 20} {
			for _, response := range []bool{true, false} {
				pkt := vectorMessage(smb2.SMB2_READ, smb2.SMB2_FLAGS_SERVER_TO_REDIR|smb2.SMB2_FLAGS_SIGNED, uint64(n)+3, vectorSessionID, 16+n)
				want := bytes.Clone(s.verifier.sum(pkt, response))
				// Twice: the second time H^d comes from the cache.
				for range 2 {
					if got := s.verifier.sumParts(pkt[:80], pkt[80:], response); !bytes.Equal(got, want) {
						t.Fatalf("%s, %d bytes of data, response=%v: sumParts %x, sum %x", SigningAlgorithmName(alg), n, response, got, want)
					}
				}
			}
		}
	}
}

func TestGF128(t *testing.T) {
	one := gf128{hi: 1 << 63}
	x := gf128{0x0123456789abcdef, 0xfedcba9876543210}
	if x.mul(one) != x || one.mul(x) != x {
		t.Fatal("1 is not the identity")
	}
	y := gf128{0x66e94bd4ef8a2c3b, 0x884cfa59ca342b2e}
	if x.mul(y) != y.mul(x) {
		t.Fatal("multiplication does not commute")
	}
	if gfPow(y, 5) != y.mul(y).mul(y).mul(y).mul(y) || gfPow(y, 0) != one {
		t.Fatal("gfPow")
	}
}
