package smb2

// Added in vmstorbench's patched copy (see README.md): READ data received straight into the
// caller's buffer, with the signature checked over header and data apart, and encrypted
// messages decrypted in their own buffer.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"net"
	"strings"
	"testing"

	"github.com/cloudsoda/go-smb2/internal/crypto/ccm"
	"github.com/cloudsoda/go-smb2/internal/smb2"
)

// fakeSigningServer answers every request with a READ response carrying the part of data
// asked for, signed with signer when it is not nil; tamper, when >= 0, flips a bit of that
// byte of data in the response that carries it.
func fakeSigningServer(t transport, data []byte, sessionID uint64, signer messageSigner, tamper int) {
	fakeReadServer(t, data, sessionID, signer, nil, tamper)
}

// fakeReadServer is fakeSigningServer that also encrypts each response with enc (the
// server's encrypter) when it is not nil; tamper then flips a bit of the ciphertext of that
// byte of data.
func fakeReadServer(t transport, data []byte, sessionID uint64, signer messageSigner, enc cipher.AEAD, tamper int) {
	reqBuf := make([]byte, 1<<16)
	for {
		n, err := t.ReadSize()
		if err != nil {
			return
		}
		if _, err := t.Read(reqBuf[:n]); err != nil {
			return
		}
		p := smb2.PacketCodec(reqBuf[:n])
		r := smb2.ReadRequestDecoder(p.Data())
		off := min(int(r.Offset()), len(data))
		d := data[off:min(off+int(r.Length()), len(data))]
		resp := &smb2.ReadResponse{
			PacketHeader: smb2.PacketHeader{Flags: smb2.SMB2_FLAGS_SERVER_TO_REDIR, SessionId: sessionID},
			Data:         d,
		}
		buf := make([]byte, resp.Size())
		resp.Encode(buf)
		buf[64+2] = 80 // DataOffset from the start of the header, as servers send it
		rp := smb2.PacketCodec(buf)
		rp.SetMessageId(p.MessageId())
		rp.SetCommand(smb2.SMB2_READ)
		rp.SetCreditResponse(p.CreditRequest())
		if signer != nil {
			rp.SetFlags(rp.Flags() | smb2.SMB2_FLAGS_SIGNED)
			rp.SetSignature(signer.sum(buf, true))
		}
		if enc != nil {
			es := &session{sessionId: sessionID, encrypter: enc}
			wire, err := es.encrypt(buf, make([]byte, 52+len(buf)+16))
			if err != nil {
				return
			}
			buf = wire
			if tamper >= off && tamper < off+len(d) {
				buf[52+80+tamper-off] ^= 0x04
			}
		} else if tamper >= off && tamper < off+len(d) {
			buf[80+tamper-off] ^= 0x04
		}
		if _, err := t.Write(buf); err != nil {
			return
		}
	}
}

func TestDirectRead(t *testing.T) {
	const sessionID = 0x77
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*13 + i>>11)
	}
	for _, alg := range []uint16{0xffff, SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		name := "unsigned"
		if alg != 0xffff {
			name = SigningAlgorithmName(alg)
		}
		for _, size := range []int{4096, directMinLen - directHeadLen - 1, directMinLen - directHeadLen, 300<<10 + 5, 1 << 20} {
			for _, tamper := range []int{-1, size / 2} {
				clientConn, serverConn := net.Pipe()
				c, cleanup := newBenchConn(clientConn)
				s := &session{conn: c, sessionId: sessionID}
				var server messageSigner
				if alg != 0xffff {
					c.requireSigning = true
					signer, verifier, err := newSigners(alg, []byte("0123456789abcdef"))
					if err != nil {
						t.Fatal(err)
					}
					s.signer, s.verifier = signer, verifier
					_, server, _ = newSigners(alg, []byte("0123456789abcdef"))
				}
				c.session.Store(s)
				c.useSession.Store(true)
				go fakeSigningServer(direct(serverConn), data, sessionID, server, tamper)

				f := newBenchFile(c)
				buf := make([]byte, size)
				n, err := f.readAt(buf, 0)
				cleanup()
				if direct := c.directReads.Load(); err == nil && (direct > 0) != (size >= directMinLen-directHeadLen) {
					t.Errorf("%s, %d bytes: %d responses received straight into the buffer", name, size, direct)
				}
				switch {
				case tamper >= 0 && alg != 0xffff:
					if err == nil || !strings.Contains(err.Error(), "signature verification") {
						t.Errorf("%s, %d bytes, tampered: n=%d err=%v", name, size, n, err)
					}
				case err != nil || n != size:
					t.Errorf("%s, %d bytes: n=%d err=%v", name, size, n, err)
				case tamper >= 0: // unsigned: the flipped bit arrives
					want := bytes.Clone(data[:size])
					want[tamper] ^= 0x04
					if !bytes.Equal(buf, want) {
						t.Errorf("%s, %d bytes, unsigned tampered: data differs beyond the flipped bit", name, size)
					}
				default:
					if !bytes.Equal(buf, data[:size]) {
						t.Errorf("%s, %d bytes: data read differs", name, size)
					}
				}
			}
		}
	}
}

// TestDirectReadEncrypted: AES-128-GCM READ responses of 32 KiB and more land straight in
// the caller's buffer when the CPU has the VAES/AVX-512 GCM, the data decrypted there only
// after the whole message is authenticated; a flipped bit of ciphertext fails the read.
// Smaller ones, and AES-128-CCM, take the ordinary path (decrypted in the pooled buffer).
func TestDirectReadEncrypted(t *testing.T) {
	const sessionID = 0x78
	key := []byte("0123456789abcdef")
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	for _, cipherName := range []string{"AES-128-GCM", "AES-128-CCM"} {
		for _, size := range []int{4096, directMinLen - directHeadLen - 1, directMinLen - directHeadLen, 300<<10 + 5, 1 << 20} {
			for _, tamper := range []int{-1, 0, size / 2, size - 1} {
				if tamper >= 0 && (cipherName != "AES-128-GCM" || !avx512Crypto || size < directMinLen-directHeadLen) {
					// The ordinary path logs a message that fails to decrypt and drops it,
					// leaving its request waiting (upstream's behaviour).
					continue
				}
				clientConn, serverConn := net.Pipe()
				c, cleanup := newBenchConn(clientConn)
				s := &session{conn: c, sessionId: sessionID}
				var server cipher.AEAD
				if cipherName == "AES-128-GCM" {
					s.decrypter = newGCMAES128(key)
					if s.decrypter == nil {
						s.decrypter = newGCM(key)
					}
					server = newGCM(key) // crypto/cipher's, independent of the client's
				} else {
					s.decrypter, server = newCCM(key), newCCM(key)
				}
				c.session.Store(s)
				c.useSession.Store(true)
				go fakeReadServer(direct(serverConn), data, sessionID, nil, server, tamper)

				f := newBenchFile(c)
				buf := make([]byte, size)
				n, err := f.readAt(buf, 0)
				cleanup()
				_, fast := s.decrypter.(*gcmAES128)
				if direct := c.directReads.Load(); err == nil && (direct > 0) != (fast && size >= directMinLen-directHeadLen) {
					t.Errorf("%s, %d bytes: %d responses received straight into the buffer", cipherName, size, direct)
				}
				switch {
				case tamper >= 0:
					if err == nil {
						t.Errorf("%s, %d bytes, ciphertext bit flipped at %d: read succeeded", cipherName, size, tamper)
					}
				case err != nil || n != size:
					t.Errorf("%s, %d bytes: n=%d err=%v", cipherName, size, n, err)
				case !bytes.Equal(buf, data[:size]):
					t.Errorf("%s, %d bytes: data read differs", cipherName, size)
				}
			}
		}
	}
}

// TestDecryptInPlace decrypts a transform message in its own buffer, as the receiver does
// now, and checks it against the copying decrypt, and that a flipped bit or an empty
// message is refused.
func TestDecryptInPlace(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, ccm := range []bool{false, true} {
		s := &session{sessionId: 9}
		var err error
		if ccm {
			s.encrypter, s.decrypter = newCCM(key), newCCM(key)
		} else {
			s.encrypter, s.decrypter = newGCM(key), newGCM(key)
		}
		msg := vectorMessage(smb2.SMB2_READ, smb2.SMB2_FLAGS_SERVER_TO_REDIR, 5, 9, 70000)
		c := make([]byte, 52+len(msg)+16)
		wire, err := s.encrypt(msg, c)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(wire), len(wire)+16)
		copy(buf, wire)
		want, err := s.decrypt(bytes.Clone(buf), make([]byte, len(buf)+16))
		if err != nil || !bytes.Equal(want, msg) {
			t.Fatalf("ccm=%v: decrypt: %v", ccm, err)
		}
		got, err := s.decryptInPlace(buf)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("ccm=%v: decryptInPlace: %v", ccm, err)
		}
		copy(buf, wire)
		buf[len(buf)-100] ^= 1
		if _, err := s.decryptInPlace(buf); err == nil {
			t.Fatalf("ccm=%v: tampered message decrypts", ccm)
		}
	}
	c := &conn{}
	s := &session{conn: c, sessionId: 9, decrypter: newCCM(key)}
	c.session.Store(s)
	empty := make([]byte, 52, 52+16)
	tc := smb2.TransformCodec(empty)
	tc.SetProtocolId()
	tc.SetFlags(smb2.Encrypted)
	tc.SetSessionId(9)
	if _, _, err, _ := c.tryDecrypt(empty); err == nil {
		t.Fatal("empty encrypted message accepted")
	}
}

func newCCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	a, err := ccm.NewCCMWithNonceAndTagSizes(block, 11, 16)
	if err != nil {
		panic(err)
	}
	return a
}

// fakeWriteServer checks each WRITE request it gets (signature with verifier when not nil,
// data against want at the request's offset) and answers with a WRITE response counting
// the bytes (signed with verifier too), or closes the connection on a mismatch, recording
// it in bad.
func fakeWriteServer(t transport, want []byte, sessionID uint64, verifier messageSigner, bad chan<- string) {
	defer t.Close()
	buf := make([]byte, 2<<20)
	for {
		n, err := t.ReadSize()
		if err != nil {
			return
		}
		if _, err := t.Read(buf[:n]); err != nil {
			return
		}
		req := buf[:n]
		p := smb2.PacketCodec(req)
		if verifier != nil {
			got := bytes.Clone(p.Signature())
			p.SetSignature(zero[:])
			if !bytes.Equal(verifier.sum(req, false), got) || p.Flags()&smb2.SMB2_FLAGS_SIGNED == 0 {
				bad <- "bad signature"
				return
			}
		}
		w := smb2.WriteRequestDecoder(p.Data())
		off, length := int(w.Offset()), int(w.Length())
		if int(w.DataOffset())+length != n || !bytes.Equal(req[w.DataOffset():], want[off:off+length]) {
			bad <- "data differs"
			return
		}
		res := make([]byte, 64+16)
		rp := smb2.PacketCodec(res)
		rp.SetProtocolId()
		rp.SetStructureSize()
		rp.SetCommand(smb2.SMB2_WRITE)
		rp.SetFlags(smb2.SMB2_FLAGS_SERVER_TO_REDIR)
		rp.SetMessageId(p.MessageId())
		rp.SetSessionId(sessionID)
		rp.SetCreditResponse(p.CreditRequest())
		binary.LittleEndian.PutUint16(res[64:], 17)
		binary.LittleEndian.PutUint32(res[68:], uint32(length))
		if verifier != nil {
			rp.SetFlags(rp.Flags() | smb2.SMB2_FLAGS_SIGNED)
			rp.SetSignature(verifier.sum(res, true))
		}
		if _, err := t.Write(res); err != nil {
			return
		}
	}
}

// TestWriteParts writes 4 KiB to 1 MiB, unsigned and signed with each algorithm: large
// WRITEs go out as header plus the caller's buffer, and the server must see the same
// message (data and signature) as when it was one buffer.
func TestWriteParts(t *testing.T) {
	const sessionID = 0x78
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>9)
	}
	for _, alg := range []uint16{0xffff, SigningAESGMAC, SigningAESCMAC, SigningHMACSHA256} {
		name := "unsigned"
		if alg != 0xffff {
			name = SigningAlgorithmName(alg)
		}
		for _, size := range []int{4096, directMinLen - 1, directMinLen, 300<<10 + 5, 1 << 20} {
			clientConn, serverConn := net.Pipe()
			c, cleanup := newBenchConn(clientConn)
			s := &session{conn: c, sessionId: sessionID}
			var server messageSigner
			if alg != 0xffff {
				c.requireSigning = true
				signer, verifier, err := newSigners(alg, []byte("0123456789abcdef"))
				if err != nil {
					t.Fatal(err)
				}
				s.signer, s.verifier = signer, verifier
				server, _, _ = newSigners(alg, []byte("0123456789abcdef"))
			}
			c.session.Store(s)
			c.useSession.Store(true)
			bad := make(chan string, 1)
			go fakeWriteServer(direct(serverConn), data, sessionID, server, bad)
			f := newBenchFile(c)
			n, err := f.writeAt(data[:size], 0)
			cleanup()
			if direct := c.directWrites.Load(); (direct > 0) != (size >= directMinLen) {
				t.Errorf("%s, %d bytes: %d requests sent from the caller's buffer", name, size, direct)
			}
			select {
			case b := <-bad:
				t.Errorf("%s, %d bytes: server: %s", name, size, b)
			default:
				if err != nil || n != size {
					t.Errorf("%s, %d bytes: n=%d err=%v", name, size, n, err)
				}
			}
		}
	}
}
