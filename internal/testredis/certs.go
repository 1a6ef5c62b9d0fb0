package testredis

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are the PEM files of a TLS server made for a test: a CA, a server
// certificate for 127.0.0.1 and localhost signed by it, and a client
// certificate signed by it.
type Certs struct {
	CA         string // the CA's certificate
	ServerCert string
	ServerKey  string
	ClientCert string
	ClientKey  string
}

// Query returns the matchmaker URL query that trusts the CA and presents
// the client certificate: "tls_ca=…&tls_cert=…&tls_key=…".
func (c *Certs) Query() string {
	return url.Values{"tls_ca": {c.CA}, "tls_cert": {c.ClientCert}, "tls_key": {c.ClientKey}}.Encode()
}

// clientConfig is the TLS configuration of the package's own connections.
func (c *Certs) clientConfig() *tls.Config {
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(c.CA); err == nil {
		pool.AppendCertsFromPEM(pem)
	}
	cert, _ := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// makeCerts writes a CA, a server and a client certificate into dir.
func makeCerts(t testing.TB, dir string) *Certs {
	t.Helper()
	c := &Certs{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "relay test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testredis: CA certificate: %v", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	writePEM(t, c.CA, "CERTIFICATE", caDER)

	leaf := func(serial int64, name string, usage x509.ExtKeyUsage, certPath, keyPath string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("testredis: %s certificate: %v", name, err)
		}
		writePEM(t, certPath, "CERTIFICATE", der)
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("testredis: %s key: %v", name, err)
		}
		writePEM(t, keyPath, "PRIVATE KEY", kder)
	}
	leaf(2, "redis server", x509.ExtKeyUsageServerAuth, c.ServerCert, c.ServerKey)
	leaf(3, "relay client", x509.ExtKeyUsageClientAuth, c.ClientCert, c.ClientKey)
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testredis: key: %v", err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testredis: write %s: %v", path, err)
	}
}
