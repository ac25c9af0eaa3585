// Package x509creds generates throw-away x509 credentials in the directory layout QEMU's
// tls-creds-x509 objects read (ca-cert.pem, server-cert.pem, server-key.pem for a server;
// ca-cert.pem, client-cert.pem, client-key.pem for a client): for TLS live migration
// (vm/migrate) and the testbed's TLS NBD export.
package x509creds

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Dirs are the two credential directories.
type Dirs struct {
	ServerDir, ClientDir string
}

// Write generates a throw-away CA and a server and a client certificate signed by it (ECDSA
// P-256, valid for lifetime, the server's for 127.0.0.1 and localhost) into serverDir and
// clientDir (created), named after commonName.
func Write(serverDir, clientDir, commonName string, lifetime time.Duration) (*Dirs, error) {
	c := &Dirs{ServerDir: serverDir, ClientDir: clientDir}
	for _, d := range []string{c.ServerDir, c.ClientDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	now := time.Now().Add(-time.Minute)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName + " CA"},
		NotBefore:             now,
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("tls: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("tls: CA certificate: %w", err)
	}
	for _, d := range []string{c.ServerDir, c.ClientDir} {
		if err := writePEM(filepath.Join(d, "ca-cert.pem"), "CERTIFICATE", caDER, 0o644); err != nil {
			return nil, err
		}
	}
	leaf := func(dir, name string, usage x509.ExtKeyUsage, server bool) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("tls: %s key: %w", name, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: commonName + " " + name},
			NotBefore:             now,
			NotAfter:              now.Add(lifetime),
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("tls: %s certificate: %w", name, err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("tls: %s key: %w", name, err)
		}
		if err := writePEM(filepath.Join(dir, name+"-cert.pem"), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, name+"-key.pem"), "PRIVATE KEY", keyDER, 0o600)
	}
	if err := leaf(c.ServerDir, "server", x509.ExtKeyUsageServerAuth, true); err != nil {
		return nil, err
	}
	if err := leaf(c.ClientDir, "client", x509.ExtKeyUsageClientAuth, false); err != nil {
		return nil, err
	}
	return c, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}
