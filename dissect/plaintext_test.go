package dissect_test

import (
	"bytes"
	stdtls "crypto/tls"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls/tlstest"
)

// plainConn writes TLS plaintext records of one connection as the agent
// does: seq counts the bytes recorded each way, a chunk cut by the cap
// keeps its whole length in the record's length and in seq.
type plainConn struct {
	client, server netip.AddrPort
	hdr            capture.PlaintextHeader
	seq            [2]uint32 // next byte, client's then server's
	wire           *synth.Conn
	emit           func(capture.Packet)
}

func newPlainConn(wire *synth.Conn, emit func(capture.Packet)) *plainConn {
	return &plainConn{client: wire.Client, server: wire.Server, seq: [2]uint32{1, 1}, wire: wire, emit: emit,
		hdr: capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3, Minor: 0, PID: 4242}}
}

// chunk records b as sent by the client (fromClient) or the server; only
// the first keep bytes are stored (keep < 0: all).
func (c *plainConn) chunk(fromClient bool, b []byte, keep int) {
	i, src, dst := 0, c.client, c.server
	if !fromClient {
		i, src, dst = 1, c.server, c.client
	}
	stored := b
	if keep >= 0 && keep < len(b) {
		stored = b[:keep]
	}
	h := c.hdr
	h.Read = !fromClient // the client process writes its bytes, reads the server's
	rec := capture.AppendPlaintext(nil, h, src, dst, c.seq[i], c.seq[1-i], stored)
	c.emit(capture.Packet{Timestamp: c.wire.T, Data: rec, Length: len(rec) + len(b) - len(stored), LinkType: capture.LinkTypeTLSPlaintext})
	c.wire.T = c.wire.T.Add(synth.Step)
	c.seq[i] += uint32(len(b))
}

// lose counts n bytes sent that no record holds (the agent's ring was full).
func (c *plainConn) lose(fromClient bool, n int) {
	if fromClient {
		c.seq[0] += uint32(n)
	} else {
		c.seq[1] += uint32(n)
	}
}

// tlsSession is a real TLS 1.3 session's bytes (Go's client and server),
// its handshake naming tls.test.
func tlsSession(t *testing.T) []tlstest.Chunk {
	t.Helper()
	cert, pool := tlstest.Cert(t)
	ccfg := &stdtls.Config{RootCAs: pool, ServerName: "tls.test", MinVersion: stdtls.VersionTLS13, NextProtos: []string{"h2", "http/1.1"}}
	scfg := &stdtls.Config{Certificates: []stdtls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	log, _, err := tlstest.Exchange(t, ccfg, scfg, []string{"GET /hidden HTTP/1.1\r\nHost: tls.test\r\n\r\n"}, []string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// callLine is what a test compares of a call.
func callLine(c *dissect.Call) string {
	s := fmt.Sprintf("%s %s→%s %s %s %s", c.Proto, netip.AddrPortFrom(c.Src.IP, c.Src.Port), netip.AddrPortFrom(c.Dst.IP, c.Dst.Port), c.Method, c.Path, c.Status)
	if c.Error != "" {
		s += " [" + c.Error + "]"
	}
	return s
}

// http1Exchange plays HTTP/1.1 on side: several requests, one split in
// the middle of its headers, a response cut by the agent's cap, a response
// whose chunk was lost, and a request after them. send(fromClient, b,
// keep) is a chunk, lose(fromClient, n) a lost one.
func http1Exchange(send func(bool, []byte, int), lose func(bool, int)) {
	send(true, []byte("GET /a HTTP/1.1\r\nHost: shop\r\n\r\n"), -1)
	send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), -1)
	post := "POST /b HTTP/1.1\r\nHost: shop\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
	send(true, []byte(post[:25]), -1) // cut in the middle of Host
	send(true, []byte(post[25:]), -1)
	send(false, []byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), -1)
	send(true, []byte("GET /c HTTP/1.1\r\nHost: shop\r\n\r\n"), -1)
	big := "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + strings.Repeat("x", 200)
	send(false, []byte(big), 60) // the cap kept 60 bytes
	send(true, []byte("GET /d HTTP/1.1\r\nHost: shop\r\n\r\n"), -1)
	send(false, []byte("HTTP/1.1 204 No Content\r\n\r\n"), -1)
	send(true, []byte("GET /e HTTP/1.1\r\nHost: shop\r\n\r\n"), -1)
	lose(false, len("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
	send(true, []byte("GET /f HTTP/1.1\r\nHost: shop\r\n\r\n"), -1)
	send(false, []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), -1)
}

// TestPlaintextHTTP1: a TLS connection's packets (a real TLS 1.3 session)
// interleaved with plaintext records of the same endpoints carrying
// HTTP/1.1. The calls are the handshake's and those the same bytes give as
// cleartext TCP (the same gaps and cuts); one flow, read as decrypted by
// the library, with every call counted.
func TestPlaintextHTTP1(t *testing.T) {
	session := tlsSession(t)
	h := newHarness(dissect.Options{})
	n := map[layers.LinkType]uint64{}
	emit := func(p capture.Packet) {
		n[p.LinkType]++
		h.emit(p)
	}
	wire := synth.NewConn("10.0.0.2:51500", "10.0.0.9:443", start, emit)
	pc := newPlainConn(wire, emit)
	wire.Handshake()
	half := len(session) / 2
	for _, ch := range session[:half] {
		wire.Send(ch.Role == proto.Client, ch.B)
	}
	// The plaintext comes while the session's records do.
	sent := 0
	http1Exchange(func(fromClient bool, b []byte, keep int) {
		pc.chunk(fromClient, b, keep)
		if sent < len(session)-half {
			ch := session[half+sent]
			wire.Send(ch.Role == proto.Client, ch.B)
			sent++
		}
	}, pc.lose)
	for _, ch := range session[half+sent:] {
		wire.Send(ch.Role == proto.Client, ch.B)
	}
	wire.Close()
	st := h.finish()

	// The same bytes as cleartext TCP on the same endpoints.
	clear := newHarness(dissect.Options{})
	cc := clear.conn("10.0.0.2:51500", "10.0.0.9:443")
	cc.Handshake()
	http1Exchange(func(fromClient bool, b []byte, keep int) {
		if keep >= 0 {
			cc.Send(fromClient, b[:keep])
			cc.Skip(fromClient, len(b)-keep)
			return
		}
		cc.Send(fromClient, b)
	}, func(fromClient bool, n int) { cc.Skip(fromClient, n) })
	cc.Close()
	clear.finish()

	var got, want []string
	for _, c := range h.calls {
		got = append(got, callLine(c))
	}
	for _, c := range clear.calls {
		want = append(want, callLine(c))
	}
	want = append(want, "tls 10.0.0.2:51500→10.0.0.9:443 handshake tls.test TLS1.3")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant (cleartext TCP's and the handshake):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("calls:\n%s", strings.Join(got, "\n"))
	// What the cleartext gives, spelled out: the cut response truncated,
	// the lost one a gap.
	for _, w := range []string{
		"http 10.0.0.2:51500→10.0.0.9:443 GET /a 200",
		"http 10.0.0.2:51500→10.0.0.9:443 POST /b 201",
		"http 10.0.0.2:51500→10.0.0.9:443 GET /d 204",
		"http 10.0.0.2:51500→10.0.0.9:443 GET /f 404",
		"http 10.0.0.2:51500→10.0.0.9:443 GET /e  [truncated: response lost in a capture gap]",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("no call %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	var cut *dissect.Call
	for _, c := range h.calls {
		if c.Path == "/c" {
			cut = c
		}
	}
	if cut == nil || cut.Status != "200" || !strings.HasPrefix(cut.Error, "truncated") {
		t.Errorf("the cut response's call: %+v", cut)
	}
	if len(h.flows) != 1 {
		t.Fatalf("%d flows: %+v", len(h.flows), h.flows)
	}
	f := h.flows[0]
	if f.Proto != "tls" || !f.Encrypted || f.Decryption != "decrypted: OpenSSL 3.0 uprobe" || f.Inner != "http" ||
		f.Calls != uint64(len(got)) || f.Src.Port != 51500 || f.State != "closed" || f.MidStream {
		t.Errorf("flow %+v", f)
	}
	// The flow counts the packets only; the statistics count what the
	// plaintext lacked (the cut and the lost response).
	if f.Packets[0]+f.Packets[1] != n[layers.LinkTypeEthernet] || n[capture.LinkTypeTLSPlaintext] != 12 {
		t.Errorf("flow packets %v, the wire sent %d (and %d records)", f.Packets, n[layers.LinkTypeEthernet], n[capture.LinkTypeTLSPlaintext])
	}
	lost := uint64(len("HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n") + 200 - 60 + len("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"))
	if st.MissingBytes != lost || st.Flows["tcp"] != 1 || st.Packets != n[layers.LinkTypeEthernet]+n[capture.LinkTypeTLSPlaintext] {
		t.Errorf("stats: missing %d (want %d) flows %v packets %d", st.MissingBytes, lost, st.Flows, st.Packets)
	}
}

// h2Frames returns the client's and the server's HTTP/2 bytes of one GET
// (preface, SETTINGS, HEADERS; SETTINGS, HEADERS, DATA).
func h2Frames(t testing.TB, path string) (client, server []byte) {
	var cb, sb bytes.Buffer
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	cb.WriteString(http2.ClientPreface)
	cf := http2.NewFramer(&cb, nil)
	if err := cf.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "shop"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := cf.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	hb.Reset()
	sf := http2.NewFramer(&sb, nil)
	if err := sf.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	senc := hpack.NewEncoder(&hb)
	senc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	senc.WriteField(hpack.HeaderField{Name: "content-type", Value: "application/json"})
	if err := sf.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := sf.WriteData(1, true, []byte(`{"items":[]}`)); err != nil {
		t.Fatal(err)
	}
	return cb.Bytes(), sb.Bytes()
}

// TestPlaintextHTTP2: HTTP/2 in plaintext records (the preface split over
// two chunks, HEADERS, DATA) beside a TLS session's packets: the HTTP/2
// call, the handshake call, the flow decrypted by Go's crypto/tls with
// inner protocol http2.
func TestPlaintextHTTP2(t *testing.T) {
	session := tlsSession(t)
	h := newHarness(dissect.Options{})
	wire := h.conn("[2001:db8::2]:40000", "[2001:db8::9]:8443")
	pc := newPlainConn(wire, h.emit)
	pc.hdr = capture.PlaintextHeader{Library: capture.LibGoTLS, Major: 1, Minor: 26}
	wire.Handshake()
	for _, ch := range session[:3] {
		wire.Send(ch.Role == proto.Client, ch.B)
	}
	cl, sv := h2Frames(t, "/h2/items")
	pc.chunk(true, cl[:10], -1)
	pc.chunk(true, cl[10:], -1)
	for _, ch := range session[3:] {
		wire.Send(ch.Role == proto.Client, ch.B)
	}
	pc.chunk(false, sv, -1)
	wire.Close()
	h.finish()
	var got []string
	for _, c := range h.calls {
		got = append(got, callLine(c))
	}
	slices.Sort(got)
	want := []string{
		"http2 [2001:db8::2]:40000→[2001:db8::9]:8443 GET /h2/items 200",
		"tls [2001:db8::2]:40000→[2001:db8::9]:8443 handshake tls.test TLS1.3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if len(h.flows) != 1 || h.flows[0].Decryption != "decrypted: Go 1.26 crypto/tls uprobe" || h.flows[0].Inner != "http2" || h.flows[0].Calls != 2 {
		t.Fatalf("flows %+v", h.flows)
	}
}

// TestPlaintextAlone: plaintext records whose connection's packets the
// dissection does not hold (another window, a filter) report a flow of
// their own, read as decrypted; the client is the side whose first bytes
// are a request, though it listens on the lower port. A stream that starts
// at 1 again is a new connection on the same endpoints.
func TestPlaintextAlone(t *testing.T) {
	h := newHarness(dissect.Options{})
	wire := synth.NewConn("10.0.0.2:80", "10.0.0.9:9000", start, func(capture.Packet) {}) // its packets are not seen
	pc := newPlainConn(wire, h.emit)
	pc.hdr = capture.PlaintextHeader{Library: capture.LibBoringSSL}
	pc.chunk(true, []byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n"), -1)
	pc.chunk(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), -1)
	pc.seq = [2]uint32{1, 1}
	pc.chunk(true, []byte("GET /y HTTP/1.1\r\nHost: a\r\n\r\n"), -1)
	pc.chunk(false, []byte("HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n"), -1)
	h.finish()
	var got []string
	for _, c := range h.calls {
		got = append(got, callLine(c))
	}
	want := []string{"http 10.0.0.2:80→10.0.0.9:9000 GET /x 200", "http 10.0.0.2:80→10.0.0.9:9000 GET /y 302"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if len(h.flows) != 2 {
		t.Fatalf("flows %+v", h.flows)
	}
	for _, f := range h.flows {
		if f.Proto != "tls" || f.Inner != "http" || !f.Encrypted || f.Decryption != "decrypted: BoringSSL uprobe" || f.Calls != 1 ||
			f.Src.Port != 80 || !f.MidStream || f.Packets != [2]uint64{1, 1} {
			t.Errorf("flow %+v", f)
		}
	}
}

// writeTLSPlaintext writes two captures, as an agent's store holds them:
// the packets of conns TLS connections (Ethernet) and the plaintext records
// of most of them (link type 147), HTTP/1.1 or HTTP/2, some cut, some
// lost, over six minutes (some left idle past the idle timeout).
func writeTLSPlaintext(t *testing.T, conns int) []string {
	session := tlsSession(t)
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var pkts []capture.Packet
	add := func(p capture.Packet) { pkts = append(pkts, p) }
	for i := range conns {
		begin := t0.Add(time.Duration(i) * 280 * time.Second / time.Duration(conns))
		c := synth.NewConn(fmt.Sprintf("10.0.%d.2:%d", i%4, 40000+i), fmt.Sprintf("10.1.0.%d:443", 1+i%3), begin, add)
		pc := newPlainConn(c, add)
		c.Handshake()
		for _, ch := range session[:3] {
			c.Send(ch.Role == proto.Client, ch.B)
		}
		switch i % 3 {
		case 0:
			http1Exchange(func(fromClient bool, b []byte, keep int) {
				pc.chunk(fromClient, b, keep)
				c.T = c.T.Add(100 * time.Millisecond)
			}, pc.lose)
		case 1:
			cl, sv := h2Frames(t, fmt.Sprintf("/h2/%d", i))
			pc.chunk(true, cl[:20], -1)
			pc.chunk(true, cl[20:], -1)
			pc.chunk(false, sv, -1)
		case 2:
			// No plaintext: the process's library was not probed.
		}
		for _, ch := range session[3:] {
			c.Send(ch.Role == proto.Client, ch.B)
		}
		if i%4 != 2 {
			c.Close()
		}
	}
	slices.SortStableFunc(pkts, func(a, b capture.Packet) int { return a.Timestamp.Compare(b.Timestamp) })
	var paths []string
	for _, lt := range []layers.LinkType{layers.LinkTypeEthernet, capture.LinkTypeTLSPlaintext} {
		var buf bytes.Buffer
		w := pcapgo.NewWriterNanos(&buf)
		w.WriteFileHeader(65535, lt)
		for _, p := range pkts {
			if p.LinkType == lt {
				w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}, p.Data)
			}
		}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("tls%d-lt%d.pcap", conns, lt))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

// TestPlaintextCaptures: the two captures writeTLSPlaintext writes (as a
// store's segments: one of packets, one of records, merged by time) give
// the same lines twice (TestParallelMatchesEngine compares them with
// Parallel's); the records' calls and decrypted flows are in them, and the
// connections without plaintext read as TLS without keys.
func TestPlaintextCaptures(t *testing.T) {
	paths := writeTLSPlaintext(t, 30)
	a, b := sequential(t, paths...), sequential(t, paths...)
	if !slices.Equal(a.lines, b.lines) {
		t.Fatal("two runs differ")
	}
	count := func(sub string) int {
		n := 0
		for _, l := range a.lines {
			if strings.Contains(l, sub) {
				n++
			}
		}
		return n
	}
	t.Logf("%s\n%s", a.lines[0], a.lines[len(a.lines)-1])
	both := func(x, y string) int {
		n := 0
		for _, l := range a.lines {
			if strings.Contains(l, x) && strings.Contains(l, y) {
				n++
			}
		}
		return n
	}
	if n := both(`"kind":"flow"`, `"decryption":"decrypted: OpenSSL 3.0 uprobe"`); n != 20 {
		t.Errorf("%d decrypted flows, want 20", n)
	}
	// Each connection's handshake record says what its flow says: read by
	// the uprobe (though the handshake ended before the first plaintext),
	// or not, without a key log.
	if n := both(`"method":"handshake"`, `"decryption":"decrypted: OpenSSL 3.0 uprobe"`); n != 20 {
		t.Errorf("%d handshake records read by the uprobe, want 20", n)
	}
	if n := both(`"method":"handshake"`, `"decryption":"no key log"`); n != 10 {
		t.Errorf("%d handshake records without a key log, want 10", n)
	}
	if n := count(`"kind":"flow","id":"`); n != 30 {
		t.Errorf("%d flows", n)
	}
	if n := count(`"inner":"http`); n != 20 {
		t.Errorf("%d flows with an inner protocol, want 20", n)
	}
	if n := count(`"kind":"flow"`); n != 30 {
		t.Errorf("%d flows, want 30", n)
	}
	if n := count(`"proto":"http2"`); n != 10 {
		t.Errorf("%d HTTP/2 calls, want 10", n)
	}
	if n := count(`"path":"/f"`); n != 10 {
		t.Errorf("%d calls of /f, want 10", n)
	}
}

// TestPlaintextHostile: records that lie (sequence numbers far ahead and
// behind, a record claiming more than it holds) and more plaintext streams
// than MaxFlows: no panic, gaps counted, the streams over the bound ended
// early and counted, every stream's flow reported once.
func TestPlaintextHostile(t *testing.T) {
	h := newHarness(dissect.Options{MaxFlows: 64})
	hdr := capture.PlaintextHeader{Library: capture.LibOpenSSL}
	at := start
	send := func(src, dst string, seq uint32, b []byte, length int) {
		rec := capture.AppendPlaintext(nil, hdr, netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst), seq, 1, b)
		h.emit(capture.Packet{Timestamp: at, Data: rec, Length: len(rec) + length - len(b), LinkType: capture.LinkTypeTLSPlaintext})
		at = at.Add(time.Millisecond)
	}
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	send("10.0.0.2:40000", "10.0.0.9:443", 1, req, len(req))
	send("10.0.0.2:40000", "10.0.0.9:443", 1<<31, req, len(req)) // 2 GiB ahead
	send("10.0.0.2:40000", "10.0.0.9:443", 5, req, len(req))     // behind: old bytes
	send("10.0.0.2:40000", "10.0.0.9:443", 1<<31+uint32(len(req)), req, 1<<30)
	for i := range 500 {
		send(fmt.Sprintf("10.0.%d.%d:40001", i/200, i%200+1), "10.0.0.9:443", 1, req, len(req))
	}
	st := h.finish()
	if st.Evicted == 0 || len(h.flows) != 501 || st.MissingBytes < 1<<31 {
		t.Errorf("evicted %d, %d flows, missing %d", st.Evicted, len(h.flows), st.MissingBytes)
	}
	for _, c := range h.calls {
		if c.Proto != "http" || c.Path != "/" {
			t.Errorf("call %s", callLine(c))
		}
	}
	if len(h.calls) < 501 {
		t.Errorf("%d calls", len(h.calls))
	}
}
