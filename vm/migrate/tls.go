package migrate

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vmstorbench/vmstorbench/internal/x509creds"
	"github.com/vmstorbench/vmstorbench/vm/hv"
)

// Security levels of the migration stream (hv's: the drivers take them as they are).
const (
	SecurityNone       = hv.SecurityNone
	SecurityTLS        = hv.SecurityTLS
	SecurityTLSVerify  = hv.SecurityTLSVerify
	tlsCertLifetime    = 24 * time.Hour
	tlsServerDirName   = "tls-server"
	tlsClientDirName   = "tls-client"
	tlsCertificateName = "vmstorbench migration"
	// tlsServerName is what the clients check the server certificate against: it is
	// issued for 127.0.0.1, where every stream's receiver listens.
	tlsServerName = "127.0.0.1"
)

// tlsCreds are the credential directories QEMU's tls-creds-x509 objects read: the server
// (destination) directory holds ca-cert.pem, server-cert.pem and server-key.pem; the client
// (source) directory ca-cert.pem, client-cert.pem and client-key.pem.
type tlsCreds struct {
	ServerDir, ClientDir string
}

// writeTLSCreds generates a throw-away CA and a server and a client certificate signed by
// it (ECDSA P-256, valid for a day, the server's for 127.0.0.1 and localhost) under dir.
func writeTLSCreds(dir string) (*tlsCreds, error) {
	d, err := x509creds.Write(filepath.Join(dir, tlsServerDirName), filepath.Join(dir, tlsClientDirName), tlsCertificateName, tlsCertLifetime)
	if err != nil {
		return nil, err
	}
	return &tlsCreds{ServerDir: d.ServerDir, ClientDir: d.ClientDir}, nil
}

// diskStreamTLS loads the credentials writeTLSCreds wrote under dir as Go TLS configs for
// vmstorbench's own disk stream (copy, two-phase), so that it is encrypted with the same
// certificates as QEMU's streams: the receiver, next to the destination, is the server
// (QEMU's incoming side is too), the sender the client. With verifyPeer the receiver
// requires the sender's certificate, as the destination QEMU does. The pull's NBD export of
// the source takes the server's config: there the destination QEMU is the client.
func diskStreamTLS(dir string, verifyPeer bool) (server, client *tls.Config, err error) {
	load := func(sub, name string) (tls.Certificate, *x509.CertPool, error) {
		d := filepath.Join(dir, sub)
		cert, err := tls.LoadX509KeyPair(filepath.Join(d, name+"-cert.pem"), filepath.Join(d, name+"-key.pem"))
		if err != nil {
			return cert, nil, fmt.Errorf("disk stream TLS: %w", err)
		}
		ca, err := os.ReadFile(filepath.Join(d, "ca-cert.pem"))
		if err != nil {
			return cert, nil, fmt.Errorf("disk stream TLS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return cert, nil, fmt.Errorf("disk stream TLS: no certificate in %s", filepath.Join(d, "ca-cert.pem"))
		}
		return cert, pool, nil
	}
	srvCert, srvPool, err := load(tlsServerDirName, "server")
	if err != nil {
		return nil, nil, err
	}
	cliCert, cliPool, err := load(tlsClientDirName, "client")
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{Certificates: []tls.Certificate{srvCert}, MinVersion: tls.VersionTLS12}
	if verifyPeer {
		server.ClientAuth, server.ClientCAs = tls.RequireAndVerifyClientCert, srvPool
	}
	// The sender checks the receiver's certificate, issued for 127.0.0.1, as QEMU's
	// client checks the destination's.
	client = &tls.Config{Certificates: []tls.Certificate{cliCert}, RootCAs: cliPool, ServerName: tlsServerName, MinVersion: tls.VersionTLS12}
	return server, client, nil
}
