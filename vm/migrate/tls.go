package migrate

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

// Security levels of the migration stream.
const (
	SecurityNone       = "none"            // plain TCP
	SecurityTLS        = "tls"             // TLS; the source checks the destination's certificate
	SecurityTLSVerify  = "tls-verify-peer" // TLS; the destination checks the source's certificate too
	tlsObjectID        = "vsbtls0"
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
	c := &tlsCreds{ServerDir: filepath.Join(dir, tlsServerDirName), ClientDir: filepath.Join(dir, tlsClientDirName)}
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
		Subject:               pkix.Name{CommonName: tlsCertificateName + " CA"},
		NotBefore:             now,
		NotAfter:              now.Add(tlsCertLifetime),
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
			Subject:               pkix.Name{CommonName: tlsCertificateName + " " + name},
			NotBefore:             now,
			NotAfter:              now.Add(tlsCertLifetime),
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

// objects returns the -object definitions for the destination (server) and source (client).
func (c *tlsCreds) objects(verifyPeer bool) (dest, src string) {
	vp := "off"
	if verifyPeer {
		vp = "on"
	}
	dest = fmt.Sprintf("tls-creds-x509,id=%s,dir=%s,endpoint=server,verify-peer=%s", tlsObjectID, escapeComma(c.ServerDir), vp)
	// The client always checks the server's certificate against the CA.
	src = fmt.Sprintf("tls-creds-x509,id=%s,dir=%s,endpoint=client,verify-peer=on", tlsObjectID, escapeComma(c.ClientDir))
	return dest, src
}

func escapeComma(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
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
