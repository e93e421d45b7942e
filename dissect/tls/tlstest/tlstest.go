// Package tlstest runs real TLS sessions (Go's crypto/tls client and
// server over a pipe) and records what went over the wire, with the key
// log the client wrote, for the tests of the TLS dissector and the engine.
package tlstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	stdtls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Chunk is bytes one side wrote, in order.
type Chunk struct {
	Role proto.Role
	B    []byte
}

// recorder is a net.Conn that records what passes through it, in the order
// written, from both sides.
type tap struct {
	net.Conn
	role proto.Role
	mu   *sync.Mutex
	log  *[]Chunk
}

func (t tap) Write(b []byte) (int, error) {
	t.mu.Lock()
	*t.log = append(*t.log, Chunk{t.role, bytes.Clone(b)})
	t.mu.Unlock()
	return t.Conn.Write(b)
}

var certOnce struct {
	sync.Once
	cert stdtls.Certificate
	pool *x509.CertPool
}

// testCert is a self-signed certificate for tls.test, valid from notBefore
// to notAfter.
func testCert(t testing.TB, notBefore, notAfter time.Time) (stdtls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tls.test", Organization: []string{"wirescope tests"}},
		DNSNames: []string{"tls.test", "www.tls.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 31)},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return stdtls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func Cert(t testing.TB) (stdtls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		certOnce.cert, certOnce.pool = testCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	})
	return certOnce.cert, certOnce.pool
}

// Exchange runs a real crypto/tls client and server over a pipe: the
// client sends the requests while the server answers each with its
// response (responses nil: the request upper-cased). It returns what went
// over the wire, in order, and the key log the client wrote.
func Exchange(t testing.TB, ccfg, scfg *stdtls.Config, requests, responses []string) ([]Chunk, []byte, error) {
	if responses == nil {
		for _, r := range requests {
			responses = append(responses, strings.ToUpper(r))
		}
	}
	var mu sync.Mutex
	var log []Chunk
	var keys bytes.Buffer
	a, b := net.Pipe()
	ccfg = ccfg.Clone()
	ccfg.KeyLogWriter = &keys
	cl := stdtls.Client(tap{a, proto.Client, &mu, &log}, ccfg)
	sv := stdtls.Server(tap{b, proto.Server, &mu, &log}, scfg)
	done := make(chan error, 1)
	go func() {
		// The server's close_notify is written before done says so: the
		// log is read after.
		done <- func() error {
			defer sv.Close()
			for i, r := range requests {
				if _, err := io.ReadFull(sv, make([]byte, len(r))); err != nil {
					return err
				}
				if _, err := sv.Write([]byte(responses[i])); err != nil {
					return err
				}
			}
			_, err := io.Copy(io.Discard, sv)
			return err
		}()
	}()
	// The client writes while it reads: a pipe holds nothing.
	wrote := make(chan error, 1)
	total := 0
	for _, r := range responses {
		total += len(r)
	}
	go func() {
		for _, r := range requests {
			if _, err := cl.Write([]byte(r)); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	_, cerr := io.ReadFull(cl, make([]byte, total))
	if err := <-wrote; cerr == nil {
		cerr = err
	}
	if cerr == nil {
		cerr = cl.Handshake()
	}
	cl.Close()
	serr := <-done
	if cerr == nil {
		cerr = serr
	}
	mu.Lock()
	defer mu.Unlock()
	return log, keys.Bytes(), cerr
}
