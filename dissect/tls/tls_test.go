package tls_test

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
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/tls"
)

// session is what the test's Emitter collects: the handshake calls, the
// plaintext each side's tunnel received, and what was noted on the flow.
type session struct {
	prototest.Recorder
	alpn       string
	tunneled   bool
	plain      [2]bytes.Buffer
	gaps       int
	ended      bool
	state      string
	notes      []string
	sessionEnd string
}

func (s *session) Tunnel(alpn string) proto.StreamParser {
	s.alpn, s.tunneled = alpn, true
	return (*sink)(s)
}
func (s *session) Encrypted(state string) { s.state = state; s.notes = append(s.notes, state) }
func (s *session) SessionEnd(how string)  { s.sessionEnd = how }

type sink session

func (k *sink) Feed(r proto.Role, b []byte, _ time.Time) {
	i := 0
	if r == proto.Server {
		i = 1
	}
	k.plain[i].Write(b)
}
func (k *sink) Gap(proto.Role, int)            { k.gaps++ }
func (k *sink) End(proto.EndReason, time.Time) { k.ended = true }

// chunk is bytes one side wrote, in order.
type chunk struct {
	role proto.Role
	b    []byte
}

// recorder is a net.Conn that records what passes through it, in the order
// written, from both sides.
type tap struct {
	net.Conn
	role proto.Role
	mu   *sync.Mutex
	log  *[]chunk
}

func (t tap) Write(b []byte) (int, error) {
	t.mu.Lock()
	*t.log = append(*t.log, chunk{t.role, bytes.Clone(b)})
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

func validCert(t testing.TB) (stdtls.Certificate, *x509.CertPool) {
	certOnce.Do(func() {
		certOnce.cert, certOnce.pool = testCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	})
	return certOnce.cert, certOnce.pool
}

// exchange runs a real crypto/tls client and server over a pipe: the
// client sends each request and reads the server's answer (the request
// upper-cased). It returns what went over the wire, in order, and the key
// log the client wrote.
func exchange(t testing.TB, ccfg, scfg *stdtls.Config, requests []string) ([]chunk, []byte, error) {
	var mu sync.Mutex
	var log []chunk
	var keys bytes.Buffer
	a, b := net.Pipe()
	ccfg = ccfg.Clone()
	ccfg.KeyLogWriter = &keys
	cl := stdtls.Client(tap{a, proto.Client, &mu, &log}, ccfg)
	sv := stdtls.Server(tap{b, proto.Server, &mu, &log}, scfg)
	done := make(chan error, 1)
	go func() {
		defer sv.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := sv.Read(buf)
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
			if _, err := sv.Write(bytes.ToUpper(buf[:n])); err != nil {
				done <- err
				return
			}
		}
	}()
	// The client writes while it reads: a pipe holds nothing, and the
	// server answers as it reads.
	wrote := make(chan error, 1)
	total := 0
	for _, r := range requests {
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
	cl.Close()
	serr := <-done
	if cerr == nil {
		cerr = serr
	}
	return log, keys.Bytes(), cerr
}

// dissect feeds the recorded chunks to a TLS parser.
func dissect(t testing.TB, log []chunk, keys *tls.KeyLog) *session {
	s := &session{}
	p := tls.Protocol{Keys: keys}.NewStream(s, &proto.Limits{})
	at := time.Now()
	for i, c := range log {
		p.Feed(c.role, c.b, at.Add(time.Duration(i)*time.Millisecond))
	}
	p.End(proto.EndFIN, at.Add(time.Hour))
	for i, c := range s.Calls {
		prototest.CheckJSON(t, i, c)
	}
	return s
}

// TestDecrypt: sessions between Go's own TLS client and server, every
// version and suite wirescope decrypts, give one handshake call with what
// the hello said and exactly the plaintext the applications exchanged.
func TestDecrypt(t *testing.T) {
	cert, pool := validCert(t)
	requests := []string{"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n", strings.Repeat("x", 40000), "last"}
	var want [2]string
	for _, r := range requests {
		want[0] += r
		want[1] += strings.ToUpper(r)
	}
	cases := []struct {
		name    string
		version uint16
		suite   uint16 // TLS 1.2
		status  string
		cipher  string
	}{
		{"1.3 AES-128-GCM", stdtls.VersionTLS13, 0, "TLS1.3", "TLS_AES_128_GCM_SHA256"},
		{"1.2 ECDHE-ECDSA AES-128-GCM", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "TLS1.2", ""},
		{"1.2 ECDHE-ECDSA AES-256-GCM", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "TLS1.2", ""},
		{"1.2 ECDHE-ECDSA ChaCha20-Poly1305", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "TLS1.2", ""},
		{"1.2 ECDHE-ECDSA AES-128-CBC-SHA", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "TLS1.2", ""},
		{"1.2 ECDHE-ECDSA AES-256-CBC-SHA", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "TLS1.2", ""},
		{"1.2 ECDHE-ECDSA AES-128-CBC-SHA256", stdtls.VersionTLS12, stdtls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, "TLS1.2", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ccfg := &stdtls.Config{RootCAs: pool, ServerName: "tls.test", MinVersion: c.version, MaxVersion: c.version, NextProtos: []string{"http/1.1"}}
			scfg := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, MinVersion: c.version, MaxVersion: c.version, NextProtos: []string{"http/1.1"}}
			if c.suite != 0 {
				ccfg.CipherSuites = []uint16{c.suite}
				scfg.CipherSuites = []uint16{c.suite}
				c.cipher = stdtls.CipherSuiteName(c.suite)
			}
			log, keylog, err := exchange(t, ccfg, scfg, requests)
			if err != nil {
				t.Fatal(err)
			}
			keys, err := tls.ParseKeyLog(bytes.NewReader(keylog))
			if err != nil {
				t.Fatal(err)
			}
			s := dissect(t, log, keys)
			if len(s.Calls) != 1 {
				t.Fatalf("%d calls, want the handshake's", len(s.Calls))
			}
			h := s.Calls[0]
			if h.Proto != "tls" || h.Method != "handshake" || h.Path != "tls.test" || h.Status != c.status || h.Error != "" {
				t.Errorf("handshake %s %s %q %q, want handshake tls.test %s", h.Proto, h.Method, h.Path, h.Status+" "+h.Error, c.status)
			}
			if got := h.Extra.Get("cipher"); got != c.cipher {
				t.Errorf("cipher %v, want %s", got, c.cipher)
			}
			if got := h.Extra.Get("alpn"); got != "http/1.1" || s.alpn != "http/1.1" {
				t.Errorf("ALPN %v (tunnel %q), want http/1.1", got, s.alpn)
			}
			if c.version == stdtls.VersionTLS12 {
				if h.Extra.Get("cert_subject") != "CN=tls.test,O=wirescope tests" || h.Extra.Get("cert_expired") != nil {
					t.Errorf("certificate: %v expired %v", h.Extra.Get("cert_subject"), h.Extra.Get("cert_expired"))
				}
			} else if h.Extra.Get("cert_subject") != "CN=tls.test,O=wirescope tests" {
				// TLS 1.3 sends it encrypted: read once decrypted.
				t.Errorf("TLS 1.3 certificate (decrypted): %v", h.Extra.Get("cert_subject"))
			}
			if got := s.plain[0].String(); got != want[0] {
				t.Errorf("client plaintext: %d bytes, want %d", len(got), len(want[0]))
			}
			if got := s.plain[1].String(); got != want[1] {
				t.Errorf("server plaintext: %d bytes, want %d", len(got), len(want[1]))
			}
			if s.state != "decrypted" || !s.ended || s.gaps != 0 {
				t.Errorf("flow %q, tunnel ended %v, gaps %d", s.state, s.ended, s.gaps)
			}
			if !strings.HasPrefix(s.sessionEnd, "close_notify from client") {
				t.Errorf("session end %q, want the client's close_notify", s.sessionEnd)
			}

			// Without the key log: the same handshake, nothing inside.
			s = dissect(t, log, nil)
			if len(s.Calls) != 1 || s.Calls[0].Status != c.status || s.Calls[0].Path != "tls.test" || s.tunneled || s.state != "no key log" {
				t.Errorf("without keys: %d calls, tunnel %v, flow %q", len(s.Calls), s.tunneled, s.state)
			}
			// With another session's keys: no key for this one.
			other, _ := tls.ParseKeyLog(strings.NewReader("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n"))
			s = dissect(t, log, other)
			if len(s.Calls) != 1 || s.Calls[0].Status != c.status || s.tunneled || s.state != "no key for this session" {
				t.Errorf("another session's keys: %d calls, tunnel %v, flow %q", len(s.Calls), s.tunneled, s.state)
			}
		})
	}
}
