package smb

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmstorbench/vmstorbench/backends"
	"github.com/vmstorbench/vmstorbench/testbed"
)

// TestIntegrationSMBSigningAlgorithms negotiates each SMB 3.1.1 signing algorithm with a
// Samba that offers only that one, and with the default Samba (GMAC first): every response
// of the hammer is verified (sign=required makes the client verify all but interim
// responses), Describe and smbstatus name the algorithm.
func TestIntegrationSMBSigningAlgorithms(t *testing.T) {
	samba := &testbed.Samba{ForcedSigning: []string{testbed.SigningGMAC, testbed.SigningCMAC, testbed.SigningHMACSHA256}}
	_, eps, password, stateDir := startSambaWith(t, samba)
	t.Setenv(PasswordEnv, password)
	for _, c := range []struct{ endpoint, dir, alg string }{
		{"smb-signed", "", testbed.SigningGMAC},
		{"smb-signed-gmac", "signing-gmac", testbed.SigningGMAC},
		{"smb-signed-cmac", "signing-cmac", testbed.SigningCMAC},
		{"smb-signed-hmac-sha256", "signing-hmac-sha256", testbed.SigningHMACSHA256},
	} {
		t.Run(c.endpoint, func(t *testing.T) {
			const size = 8 << 20 // hammer writes up to 300 KiB in each of 16 regions
			tg := openTarget(t, withFile(eps[c.endpoint].URL, "alg.img", ""), backends.OpenParams{Size: size, Write: true})
			if d := describe(tg); d["security"] != "signed" || d["signing"] != c.alg {
				t.Fatalf("Describe() = %v, want signed with %s", d, c.alg)
			}
			if view := serverView(t, filepath.Join(stateDir, c.dir)); !strings.Contains(view, "SMB3_11 - "+c.alg) {
				t.Fatalf("smbstatus: %q, want %s", view, c.alg)
			}
			hammer(t, tg, size)
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIntegrationSMBTamperedResponse flips one bit in the data of a signed READ response on
// its way from Samba: the read must fail with a signature error, not return the bytes.
func TestIntegrationSMBTamperedResponse(t *testing.T) {
	_, eps, password, _ := startSambaDir(t)
	t.Setenv(PasswordEnv, password)
	for _, name := range []string{"smb-signed", "smb-signed-cmac"} {
		t.Run(name, func(t *testing.T) {
			u, err := url.Parse(withFile(eps[name].URL, "tamper.img", ""))
			if err != nil {
				t.Fatal(err)
			}
			p := startTamperProxy(t, u.Host)
			u.Host = p.addr
			tg := openTarget(t, u.String(), backends.OpenParams{Size: 1 << 20, Write: true})
			want := bytes.Repeat([]byte("signed data "), 512<<10/12)
			if _, err := tg.WriteAt(want, 0); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(want))
			if _, err := tg.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("untampered read: %v", err)
			}
			p.armed.Store(true)
			_, err = tg.ReadAt(got, 0)
			if p.flipped.Load() != 1 {
				t.Fatalf("the proxy flipped %d responses", p.flipped.Load())
			}
			if err == nil || !strings.Contains(err.Error(), "signature verification") {
				t.Fatalf("tampered read: err = %v, want a signature verification failure", err)
			}
		})
	}
}

// tamperProxy relays one SMB connection and, once armed, flips a bit in the middle of the
// next server-to-client message larger than 64 KiB (a READ response's data).
type tamperProxy struct {
	addr    string
	armed   atomic.Bool
	flipped atomic.Int32
}

func startTamperProxy(t *testing.T, server string) *tamperProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tamperProxy{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(s, c) })
			wg.Go(func() { _ = p.relayResponses(c, s) })
		}
	})
	return p
}

func (p *tamperProxy) relayResponses(dst io.Writer, src io.Reader) error {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:]) & 0xFFFFFF
		msg := make([]byte, n)
		if _, err := io.ReadFull(src, msg); err != nil {
			return err
		}
		if n > 64<<10 && p.armed.CompareAndSwap(true, false) {
			msg[n/2] ^= 0x01
			p.flipped.Add(1)
		}
		if _, err := dst.Write(append(hdr[:], msg...)); err != nil {
			return err
		}
	}
}
