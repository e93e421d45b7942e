package tls_test

import (
	"bytes"
	stdtls "crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/tls"
	"github.com/wirescope/wirescope/dissect/tls/tlstest"
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

type chunk = tlstest.Chunk

func validCert(t testing.TB) (stdtls.Certificate, *x509.CertPool) { return tlstest.Cert(t) }

func exchange(t testing.TB, ccfg, scfg *stdtls.Config, requests []string) ([]chunk, []byte, error) {
	return tlstest.Exchange(t, ccfg, scfg, requests, nil)
}

// dissect feeds the recorded chunks to a TLS parser.
func dissect(t testing.TB, log []chunk, keys *tls.KeyLog) *session {
	s := &session{}
	p := tls.Protocol{Keys: keys}.NewStream(s, &proto.Limits{})
	at := time.Now()
	for i, c := range log {
		p.Feed(c.Role, c.B, at.Add(time.Duration(i)*time.Millisecond))
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
