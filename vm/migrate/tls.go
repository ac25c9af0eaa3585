package migrate

import (
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
