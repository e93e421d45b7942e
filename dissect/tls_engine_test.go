package dissect_test

import (
	"bytes"
	stdtls "crypto/tls"
	"slices"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls"
	"github.com/wirescope/wirescope/dissect/tls/tlstest"
)

// TestTLSThroughEngine: real TLS sessions (Go's client and server) carried
// in small, reordered TCP segments on port 443, so that the ClientHello
// spans segments: with the key log the HTTP/1.1 calls inside come out as
// the connection's, by ALPN (TLS 1.3) and by detection (TLS 1.2, no ALPN),
// the flow says "decrypted" and "http"; without it, the handshake alone and
// the flow says why. Plain HTTP on 443 stays HTTP.
func TestTLSThroughEngine(t *testing.T) {
	cert, pool := tlstest.Cert(t)
	reqs := []string{"GET /a HTTP/1.1\r\nHost: tls.test\r\n\r\n", "POST /b HTTP/1.1\r\nHost: tls.test\r\nContent-Length: 2\r\n\r\nhi"}
	resps := []string{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"}
	for _, c := range []struct {
		name    string
		version uint16
		alpn    []string
		status  string
	}{
		{"TLS 1.3, ALPN http/1.1", stdtls.VersionTLS13, []string{"http/1.1"}, "TLS1.3"},
		{"TLS 1.2, no ALPN", stdtls.VersionTLS12, nil, "TLS1.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ccfg := &stdtls.Config{RootCAs: pool, ServerName: "tls.test", MinVersion: c.version, MaxVersion: c.version, NextProtos: c.alpn}
			scfg := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, MinVersion: c.version, MaxVersion: c.version, NextProtos: c.alpn}
			log, keylog, err := tlstest.Exchange(t, ccfg, scfg, reqs, resps)
			if err != nil {
				t.Fatal(err)
			}
			keys, _ := tls.ParseKeyLog(bytes.NewReader(keylog))
			for _, withKeys := range []bool{true, false} {
				opts := dissect.Options{}
				if withKeys {
					opts.Protocols = tls.WithKeys(dissect.All(), keys)
				}
				h := newHarness(opts)
				conn := h.conn("10.0.0.2:51500", "10.0.0.9:443")
				conn.MSS = 100
				conn.Handshake()
				for _, ch := range log {
					conn.SendReordered(ch.Role == proto.Client, ch.B)
				}
				conn.Close()
				h.finish()
				var got []string
				for _, call := range h.calls {
					got = append(got, call.Proto+" "+call.Method+" "+call.Path+" "+call.Status)
				}
				want := []string{"tls handshake tls.test " + c.status}
				if withKeys {
					want = append(want, "http GET /a 200", "http POST /b 503")
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("keys %v: calls %q, want %q", withKeys, got, want)
				}
				if len(h.flows) != 1 {
					t.Fatalf("flows %+v", h.flows)
				}
				f := h.flows[0]
				wantState, wantInner := "no key log", ""
				if withKeys {
					wantState, wantInner = "decrypted", "http"
				}
				// The client's close_notify is encrypted: read with the keys only.
				closed := strings.HasPrefix(f.SessionEnd, "close_notify from client")
				if f.Proto != "tls" || !f.Encrypted || f.Decryption != wantState || f.Inner != wantInner || f.Calls != uint64(len(want)) ||
					closed != withKeys {
					t.Errorf("keys %v: flow proto %s encrypted %v decryption %q inner %q calls %d session end %q", withKeys,
						f.Proto, f.Encrypted, f.Decryption, f.Inner, f.Calls, f.SessionEnd)
				}
			}
		})
	}
	t.Run("plain HTTP on 443", func(t *testing.T) {
		h := newHarness(dissect.Options{})
		conn := h.conn("10.0.0.2:51501", "10.0.0.9:443")
		conn.Handshake()
		conn.Send(true, []byte(req))
		conn.Send(false, []byte(resp))
		conn.Close()
		h.finish()
		if len(h.calls) != 1 || h.calls[0].Proto != "http" || h.flows[0].Encrypted {
			t.Errorf("calls %+v flows %+v", h.calls, h.flows)
		}
	})
}
