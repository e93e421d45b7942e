package tls_test

import (
	"bytes"
	stdtls "crypto/tls"
	"encoding/binary"
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls"
)

// record frames a TLS record.
func record(typ byte, body []byte) []byte {
	b := []byte{typ, 3, 3, byte(len(body) >> 8), byte(len(body))}
	return append(b, body...)
}

// handshakeMsg frames a handshake message of the length claimed.
func handshakeMsg(typ byte, claim int, body []byte) []byte {
	return append([]byte{typ, byte(claim >> 16), byte(claim >> 8), byte(claim)}, body...)
}

// hellos are a minimal ClientHello (SNI hostile.test) and ServerHello.
func hellos() (ch, sh []byte) {
	sni := []byte("hostile.test")
	ext := []byte{0, 0}
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+5))
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+3))
	ext = append(ext, 0)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)))
	ext = append(ext, sni...)
	body := []byte{3, 3}
	body = append(body, bytes.Repeat([]byte{7}, 32)...)
	body = append(body, 0, 0, 2, 0xc0, 0x2f, 1, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	ch = record(22, handshakeMsg(1, len(body), body))
	sbody := []byte{3, 3}
	sbody = append(sbody, bytes.Repeat([]byte{9}, 32)...)
	sbody = append(sbody, 0, 0xc0, 0x2f, 0)
	sh = record(22, handshakeMsg(2, len(sbody), sbody))
	return ch, sh
}

// TestHostile: a 16 MB handshake message claim, a million tiny records and
// records longer than TLS allows keep the parser's memory bounded and end
// in a record that says what happened.
func TestHostile(t *testing.T) {
	ch, sh := hellos()
	at := time.Unix(1e9, 0)
	t.Run("16 MB certificate claim", func(t *testing.T) {
		s := &session{}
		p := tls.Protocol{}.NewStream(s, &proto.Limits{})
		p.Feed(proto.Client, ch, at)
		p.Feed(proto.Server, sh, at)
		claim := 16<<20 - 1
		first := handshakeMsg(11, claim, make([]byte, 16000))
		p.Feed(proto.Server, record(22, first), at)
		chunk := record(22, make([]byte, 16384))
		most := 0
		for sent := 16000; sent < claim; sent += 16384 {
			n := min(16384, claim-sent)
			p.Feed(proto.Server, chunk[:5+n], at)
			if n < 16384 {
				binary.BigEndian.PutUint16(chunk[3:], uint16(n))
				p.Feed(proto.Server, chunk[:5+n], at)
			}
			most = max(most, p.(proto.Buffering).Buffered())
		}
		p.Feed(proto.Server, record(20, []byte{1}), at)
		p.Feed(proto.Client, record(20, []byte{1}), at)
		p.End(proto.EndFIN, at)
		if most > 64<<10 {
			t.Errorf("the parser held %d bytes", most)
		}
		if len(s.Calls) != 1 || s.Calls[0].Path != "hostile.test" || s.Calls[0].Status != "TLS1.2" || s.Calls[0].Extra.Get("handshake_bytes_skipped") == nil {
			t.Fatalf("calls %+v", s.Calls)
		}
	})
	t.Run("a million tiny records", func(t *testing.T) {
		s := &session{}
		p := tls.Protocol{}.NewStream(s, &proto.Limits{})
		// The ClientHello one byte a record.
		hs := ch[5:]
		var buf []byte
		for _, b := range hs {
			buf = append(buf, record(22, []byte{b})...)
		}
		p.Feed(proto.Client, buf, at)
		p.Feed(proto.Server, sh, at)
		tiny := bytes.Repeat(record(23, []byte{0}), 1000)
		most := 0
		for range 1000 {
			p.Feed(proto.Client, tiny, at)
			p.Feed(proto.Server, tiny, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		p.End(proto.EndFIN, at)
		if most > 64<<10 {
			t.Errorf("the parser held %d bytes", most)
		}
		if len(s.Calls) != 1 || s.Calls[0].Path != "hostile.test" || s.Calls[0].Status != "TLS1.2" {
			t.Fatalf("calls %+v", s.Calls)
		}
	})
	t.Run("a record longer than TLS allows", func(t *testing.T) {
		s := &session{}
		p := tls.Protocol{}.NewStream(s, &proto.Limits{})
		p.Feed(proto.Client, ch, at)
		p.Feed(proto.Server, []byte{22, 3, 3, 0xff, 0xff}, at)
		p.Feed(proto.Server, make([]byte, 70000), at)
		p.End(proto.EndFIN, at)
		if len(s.Calls) != 1 || s.Calls[0].Status != "" || s.Calls[0].Error != "no response: no ServerHello" {
			t.Fatalf("calls %+v", s.Calls)
		}
	})
}

// TestBadRecordMAC: a record changed in transit fails authentication: the
// plaintext parser hears of a gap, the flow of the bad MAC, and the records
// after it are still decrypted.
func TestBadRecordMAC(t *testing.T) {
	cert, pool := validCert(t)
	for _, v := range []uint16{stdtls.VersionTLS12, stdtls.VersionTLS13} {
		ccfg := &stdtls.Config{RootCAs: pool, ServerName: "tls.test", MinVersion: v, MaxVersion: v}
		scfg := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, MinVersion: v, MaxVersion: v}
		log, keylog, err := exchange(t, ccfg, scfg, []string{"one", "two", "three"})
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := tls.ParseKeyLog(bytes.NewReader(keylog))
		// The client's application records, in order: flip a bit in the
		// second one's ciphertext.
		seen := 0
		for _, c := range log {
			if c.Role == proto.Client && len(c.B) > 5 && c.B[0] == 23 && len(c.B) < 100 {
				seen++
				if seen == 2 {
					c.B[len(c.B)-3] ^= 1
				}
			}
		}
		s := dissect(t, log, keys)
		if got := s.plain[0].String(); got != "onethree" {
			t.Errorf("TLS %x: client plaintext %q, want the bad record's left out", v, got)
		}
		if s.gaps != 1 || s.sessionEnd == "" || !bytes.Contains([]byte(s.sessionEnd), []byte("bad record MAC")) {
			t.Errorf("TLS %x: gaps %d, session end %q", v, s.gaps, s.sessionEnd)
		}
	}
}

// json reports whether c encodes as valid JSON.
func json(c *proto.Call) bool { return stdjson.Valid(c.AppendJSON(nil)) }

// TestSSLv2Hello: a ClientHello in SSLv2 form (old clients offering SSLv2
// compatibility), answered by a TLS ServerHello, is a handshake call with
// its suites in JA3 and the hello's form noted.
func TestSSLv2Hello(t *testing.T) {
	challenge := bytes.Repeat([]byte{5}, 16)
	body := []byte{1, 3, 1, 0, 6, 0, 0, 0, 16, 0, 0, 0x2f, 0x01, 0x00, 0x80}
	body = append(body, challenge...)
	hello := append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
	if v, r := (tls.Protocol{}).DetectStream(hello, 50000, 443); v != proto.Yes || r != proto.Client {
		t.Fatalf("detected %v %v", v, r)
	}
	sbody := []byte{3, 1}
	sbody = append(sbody, bytes.Repeat([]byte{9}, 32)...)
	sbody = append(sbody, 0, 0x00, 0x2f, 0)
	s := &session{}
	keys, _ := tls.ParseKeyLog(strings.NewReader(""))
	p := tls.Protocol{Keys: keys}.NewStream(s, &proto.Limits{})
	at := time.Unix(1e9, 0)
	p.Feed(proto.Client, hello, at)
	p.Feed(proto.Server, append([]byte{22, 3, 1, 0, byte(4 + len(sbody))}, handshakeMsg(2, len(sbody), sbody)...), at)
	p.Feed(proto.Server, record(20, []byte{1}), at)
	p.Feed(proto.Client, record(20, []byte{1}), at)
	p.End(proto.EndFIN, at)
	if len(s.Calls) != 1 || s.Calls[0].Status != "TLS1.0" || s.Calls[0].Extra.Get("sslv2_hello") != true || s.Calls[0].Extra.Get("ja3") == "" {
		t.Fatalf("calls %+v", s.Calls)
	}
	if st := s.state; !strings.Contains(st, "TLS 1.0 and 1.1 are not decrypted") {
		t.Errorf("flow %q", st)
	}
}
