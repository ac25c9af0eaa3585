package nbdexport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/nbdproto"
	"github.com/vmstorbench/vmstorbench/internal/x509creds"
	"github.com/vmstorbench/vmstorbench/testbed"
	"github.com/vmstorbench/vmstorbench/vm/internal/vmtest"
)

// testCreds are throw-away credentials in QEMU's layout, and Go TLS configs made of them:
// the server's without and with client certificates required, the client's with and
// without a certificate of its own.
type testCreds struct {
	dirs                             *x509creds.Dirs
	server, serverVerify             *tls.Config
	client, clientNoCert, clientAnon *tls.Config
}

func newTestCreds(t testing.TB) *testCreds {
	t.Helper()
	dir := t.TempDir()
	dirs, err := x509creds.Write(filepath.Join(dir, "server"), filepath.Join(dir, "client"), "nbdexport test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPair := func(d, name string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(d, name+"-cert.pem"), filepath.Join(d, name+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, err := os.ReadFile(filepath.Join(dirs.ClientDir, "ca-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate")
	}
	srv := keyPair(dirs.ServerDir, "server")
	cli := keyPair(dirs.ClientDir, "client")
	return &testCreds{
		dirs:         dirs,
		server:       &tls.Config{Certificates: []tls.Certificate{srv}, MinVersion: tls.VersionTLS12},
		serverVerify: &tls.Config{Certificates: []tls.Certificate{srv}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool},
		client:       &tls.Config{Certificates: []tls.Certificate{cli}, RootCAs: pool, ServerName: "127.0.0.1"},
		clientNoCert: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
		// A client that trusts another CA: the server's certificate must fail it.
		clientAnon: &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"},
	}
}

// startTLS sends NBD_OPT_STARTTLS and, on NBD_REP_ACK, runs the TLS handshake on the
// connection: the client talks TLS from then on.
func (tc *testClient) startTLS(config *tls.Config) error {
	tc.option(nbdproto.OptStartTLS, nil)
	typ, p, err := tc.tryOptReply()
	if err != nil {
		return err
	}
	if typ != nbdproto.RepAck {
		return &optionError{typ, string(p)}
	}
	c := tls.Client(tc.c, config)
	if err := c.Handshake(); err != nil {
		return err
	}
	tc.c, tc.r = c, bufio.NewReader(c)
	return nil
}

// expectOption sends an option and checks the type of its (first) reply.
func (tc *testClient) expectOption(opt uint32, data []byte, want uint32) {
	tc.t.Helper()
	tc.option(opt, data)
	if typ, p := tc.optReply(); typ != want {
		tc.t.Fatalf("option %d: reply %s (%q), want %s", opt, nbdproto.RepName(typ), p, nbdproto.RepName(want))
	}
}

// readBack reads the block the tests seed at offset 0 and disconnects cleanly.
func (tc *testClient) readBack(want []byte) {
	tc.t.Helper()
	tc.send(nbdproto.CmdRead, 0, 1, 0, uint32(len(want)), nil)
	if _, errno, data := tc.reply(map[uint64]int{1: len(want)}); errno != 0 || !bytes.Equal(data, want) {
		tc.t.Fatalf("read: errno %d, %d bytes, data as seeded %v", errno, len(data), bytes.Equal(data, want))
	}
	tc.send(nbdproto.CmdDisc, 0, 2, 0, 0, nil)
	if _, err := tc.r.ReadByte(); !errors.Is(err, io.EOF) {
		tc.t.Fatalf("after disconnect: %v, want EOF", err)
	}
}

func goData(name string) []byte {
	var b nbdClient
	b.goOption(nbdproto.OptGo, name)
	return b[nbdproto.OptionHeaderLen:]
}

// TestTLSNegotiation runs clients against an export without TLS, one that requires it and
// one that requires client certificates too. Export.Err must name why a connection was
// refused, and stay empty where none was.
func TestTLSNegotiation(t *testing.T) {
	creds := newTestCreds(t)
	seed := bytes.Repeat([]byte("tls!"), 10<<10) // 40 KiB: a reply of several TLS records
	// tlsSession is a client with a certificate: STARTTLS, GO, a read, disconnect.
	tlsSession := func(t *testing.T, tc *testClient) {
		if err := tc.startTLS(creds.client); err != nil {
			t.Fatal(err)
		}
		if err := tc.goExport("disk"); err != nil {
			t.Fatal(err)
		}
		tc.readBack(seed)
	}
	cases := []struct {
		name    string
		server  *tls.Config
		run     func(t *testing.T, tc *testClient)
		wantErr string // in Export.Err ("" for none)
	}{
		{"plain export still works, STARTTLS unsupported", nil, func(t *testing.T, tc *testClient) {
			tc.expectOption(nbdproto.OptStartTLS, nil, nbdproto.RepErrUnsup)
			if err := tc.goExport("disk"); err != nil {
				t.Fatal(err)
			}
			tc.readBack(seed)
		}, ""},
		{"STARTTLS, then GO and a read over TLS", creds.server, tlsSession, ""},
		{"options before STARTTLS refused with TLS_REQD", creds.server, func(t *testing.T, tc *testClient) {
			tc.expectOption(nbdproto.OptList, nil, nbdproto.RepErrTLSReqd)
			tc.expectOption(nbdproto.OptInfo, goData("disk"), nbdproto.RepErrTLSReqd)
			tc.expectOption(99, []byte("x"), nbdproto.RepErrTLSReqd)
			err := tc.goExport("disk")
			var oe *optionError
			if !errors.As(err, &oe) || oe.typ != nbdproto.RepErrTLSReqd {
				t.Fatalf("GO without TLS: %v, want NBD_REP_ERR_TLS_REQD", err)
			}
			// Haggling goes on: TLS now, then the export.
			if err := tc.startTLS(creds.client); err != nil {
				t.Fatal(err)
			}
			tc.expectOption(nbdproto.OptStartTLS, nil, nbdproto.RepErrInvalid) // TLS is up already
			tc.expectOption(nbdproto.OptList, nil, nbdproto.RepServer)
			if _, p := tc.optReply(); len(p) != 0 { // the LIST's closing ACK
				t.Fatalf("LIST: ack with %q", p)
			}
			if err := tc.goExport("disk"); err != nil {
				t.Fatal(err)
			}
			tc.readBack(seed)
		}, ""},
		{"STARTTLS with data is invalid", creds.server, func(t *testing.T, tc *testClient) {
			tc.expectOption(nbdproto.OptStartTLS, []byte("junk"), nbdproto.RepErrInvalid)
			if err := tc.startTLS(creds.client); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"EXPORT_NAME without TLS ends the connection", creds.server, func(t *testing.T, tc *testClient) {
			if err := tc.exportName("disk"); !errors.Is(err, io.EOF) {
				t.Fatalf("EXPORT_NAME without TLS: %v, want the server to hang up", err)
			}
		}, "NBD_OPT_EXPORT_NAME without TLS"},
		{"ABORT before STARTTLS is answered", creds.server, func(t *testing.T, tc *testClient) {
			tc.expectOption(nbdproto.OptAbort, nil, nbdproto.RepAck)
		}, ""},
		{"client that distrusts the server's certificate", creds.server, func(t *testing.T, tc *testClient) {
			if err := tc.startTLS(creds.clientAnon); err == nil {
				t.Fatal("handshake succeeded with a certificate from an unknown CA")
			}
			// The server hangs up once it has read the client's alert.
			_, _ = io.Copy(io.Discard, tc.c)
		}, "TLS handshake"},
		{"verify-peer: client certificate accepted", creds.serverVerify, tlsSession, ""},
		{"verify-peer: client without certificate refused", creds.serverVerify, func(t *testing.T, tc *testClient) {
			// Under TLS 1.3 the client's side of the handshake completes before the server
			// checks its certificate: the refusal shows on the next exchange at the latest.
			err := tc.startTLS(creds.clientNoCert)
			if err == nil {
				err = tc.goExport("disk")
			}
			if err == nil {
				t.Fatal("a client without a certificate got the export")
			}
		}, "certificate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGateTarget(t, 1<<20, 1)
			if _, err := g.Target.WriteAt(seed, 0); err != nil {
				t.Fatal(err)
			}
			e, err := Serve(g, "disk", true, WithTLS(c.server))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			tc, err := connect(t, e)
			if err != nil {
				t.Fatal(err)
			}
			c.run(t, tc)
			tc.c.Close()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			got := e.Err()
			switch {
			case c.wantErr == "" && got != nil:
				t.Fatalf("export errors: %v", got)
			case c.wantErr != "" && (got == nil || !strings.Contains(got.Error(), c.wantErr)):
				t.Fatalf("export errors %v, want one about %q", got, c.wantErr)
			}
		})
	}
}

// TestIntegrationQEMUTLS has QEMU's NBD client (qemu-io, with an x509 tls-creds object as
// the destination QEMU of a pull has) read through the TLS export, with and without client
// certificates required; without tls-creds QEMU must be refused.
func TestIntegrationQEMUTLS(t *testing.T) {
	qemuIO, err := testbed.LookPath("qemu-io", "qemu-utils")
	if err != nil {
		vmtest.Missing(t, err)
	}
	creds := newTestCreds(t)
	for _, c := range []struct {
		name    string
		server  *tls.Config
		useTLS  bool
		wantErr string // in qemu-io's output ("" for success)
	}{
		{"tls", creds.server, true, ""},
		{"tls-verify-peer", creds.serverVerify, true, ""},
		{"no tls-creds", creds.server, false, "TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := newGateTarget(t, 1<<20, 1)
			if _, err := g.Target.WriteAt(bytes.Repeat([]byte{0x5a}, 65536), 0); err != nil {
				t.Fatal(err)
			}
			e, err := Serve(g, "disk", true, WithTLS(c.server))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			host, port, _ := strings.Cut(e.Addr(), ":")
			opts := "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=" + host + ",file.server.port=" + port + ",file.export=disk"
			args := []string{"--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + strings.ReplaceAll(creds.dirs.ClientDir, ",", ",,")}
			if c.useTLS {
				opts += ",file.tls-creds=tls0,file.tls-hostname=127.0.0.1"
			}
			args = append(args, "-r", "--image-opts", "-c", "read -P 0x5a 0 65536", opts)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, qemuIO, args...).CombinedOutput()
			failed := err != nil || strings.Contains(string(out), "Pattern verification failed") || strings.Contains(string(out), "rror")
			if c.wantErr == "" && failed {
				t.Fatalf("qemu-io: %v\n%s", err, out)
			}
			if c.wantErr != "" && (!failed || !strings.Contains(string(out), c.wantErr)) {
				t.Fatalf("qemu-io without TLS: %v, want a refusal naming %s:\n%s", err, c.wantErr, out)
			}
			t.Logf("qemu-io: %s", strings.TrimSpace(string(out)))
		})
	}
}
