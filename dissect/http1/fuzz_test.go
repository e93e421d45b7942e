package http1_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// fuzzLimits are small limits, so that short inputs reach every limit.
var fuzzLimits = proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512}

// fuzzEmitter is a proto.Emitter that keeps what a parser produces.
type fuzzEmitter struct {
	calls    []*proto.Call
	upgrades []string
	skipped  int
}

func (c *fuzzEmitter) Emit(call *proto.Call) { c.calls = append(c.calls, call) }
func (c *fuzzEmitter) Upgrade(p string)      { c.upgrades = append(c.upgrades, p) }
func (c *fuzzEmitter) Skipped(n int)         { c.skipped += n }

// FuzzStream feeds a client's and a server's bytes to one connection's
// parser, interleaved in chunks whose sizes (and occasional capture gaps)
// derive from split. The invariant: every call the parser emits is a
// well-formed HTTP call: Proto "http", an Error whenever Status is empty,
// display bodies within MaxBodyDisplay (as text) or its base64 length, and
// JSON output that is valid and reads back to the same call.
func FuzzStream(f *testing.F) {
	for _, s := range fuzzHTTPSeeds(f) {
		f.Add(s.client, s.server, s.split)
	}
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		lim := fuzzLimits.WithDefaults()
		var out fuzzEmitter
		p := http1.Protocol{}.NewStream(&out, &lim)
		end := fuzzFeed(p, client, server, split)
		p.End(end, time.Unix(1e9, 0))
		for i, c := range out.calls {
			fuzzCheckCall(t, i, c, lim.MaxBodyDisplay)
		}
	})
}

// fuzzFeed interleaves client and server bytes into p. The split byte
// chooses the chunk sizes (its low two bits pick the largest chunk, a
// pseudo-random sequence seeded by it the actual sizes), the end reason it
// returns (bits 2-3), whether the sides alternate chunk by chunk (bit 4;
// otherwise the client sends everything first), and whether gaps occur
// (bit 7).
func fuzzFeed(p proto.StreamParser, client, server []byte, split byte) proto.EndReason {
	rng := uint32(split)*2654435761 + 1
	next := func() uint32 {
		rng ^= rng << 13
		rng ^= rng >> 17
		rng ^= rng << 5
		return rng
	}
	maxChunk := [4]uint32{1, 7, 100, 1500}[split&3]
	gaps := split&0x80 != 0
	t := time.Unix(1e9, 0)
	data := [2][]byte{client, server}
	roles := [2]proto.Role{proto.Client, proto.Server}
	interleave := split&0x10 != 0
	for side := 0; len(data[0])+len(data[1]) > 0; {
		b := data[side]
		if len(b) == 0 || (interleave && len(data[1-side]) > 0 && next()%2 == 0) {
			side = 1 - side
			continue
		}
		t = t.Add(time.Millisecond)
		if gaps && next()%8 == 0 {
			n := int(next() % 64)
			if next()%4 == 0 {
				p.Gap(roles[side], -1) // an unknown amount
			} else {
				p.Gap(roles[side], n)
			}
			data[side] = b[min(n, len(b)):]
			continue
		}
		n := min(int(1+next()%maxChunk), len(b))
		p.Feed(roles[side], b[:n], t)
		data[side] = b[n:]
	}
	return proto.EndReason(split >> 2 & 3)
}

// fuzzCheckCall asserts the invariant of FuzzStream on one emitted call.
func fuzzCheckCall(t *testing.T, i int, c *proto.Call, maxDisplay int) {
	t.Helper()
	if c.Proto != "http" {
		t.Errorf("call %d: Proto %q, want http", i, c.Proto)
	}
	if c.Status == "" && c.Error == "" {
		t.Errorf("call %d: no status and no error: %+v", i, c)
	}
	fuzzCheckBody(t, i, "request", &c.Request, maxDisplay)
	fuzzCheckBody(t, i, "response", &c.Response, maxDisplay)
	prototest.CheckJSON(t, i, c)
}

// fuzzCheckBody checks a display body against what Message.SetBody promises:
// at most max bytes as text, or at most max bytes encoded as base64.
func fuzzCheckBody(t *testing.T, i int, which string, m *proto.Message, max int) {
	t.Helper()
	if m.BodySize < 0 {
		t.Errorf("call %d: %s body size %d", i, which, m.BodySize)
	}
	switch m.BodyEncoding {
	case "":
		if len(m.Body) > max {
			t.Errorf("call %d: %s body of %d bytes, display limit %d", i, which, len(m.Body), max)
		}
	case "base64":
		if len(m.Body) > base64.StdEncoding.EncodedLen(max) {
			t.Errorf("call %d: %s base64 body of %d bytes, want at most %d", i, which, len(m.Body), base64.StdEncoding.EncodedLen(max))
		}
		raw, err := base64.StdEncoding.DecodeString(m.Body)
		if err != nil || len(raw) > max {
			t.Errorf("call %d: %s base64 body decodes to %d bytes (%v), display limit %d", i, which, len(raw), err, max)
		}
	default:
		t.Errorf("call %d: %s body encoding %q", i, which, m.BodyEncoding)
	}
}

type fuzzHTTPSeed struct {
	name           string
	client, server []byte
	split          byte
}

// fuzzHTTPSeeds are conversations covering the parser's framing rules, each
// with a split that delivers it in small chunks.
func fuzzHTTPSeeds(tb testing.TB) []fuzzHTTPSeed {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(bytes.Repeat([]byte(`{"items":[1,2,3],"ok":true}`), 60)); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	s := func(b ...string) []byte { return []byte(strings.Join(b, "")) }
	return []fuzzHTTPSeed{
		{"get", s("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
			s("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>"), 0x02},
		{"post json", s("POST /api/v1/items HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"name\":\"thing\"}"),
			s("HTTP/1.1 201 Created\r\nLocation: /api/v1/items/7\r\nContent-Length: 0\r\n\r\n"), 0x01},
		{"chunked with trailers", s("GET /stream HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n"),
			s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status\r\n\r\n",
				"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message: ok\r\n\r\n"), 0x01},
		{"chunked request", s("PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
			s("HTTP/1.1 204 No Content\r\n\r\n"), 0x02},
		{"pipelined", s("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"),
			s("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
				"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), 0x13},
		{"100-continue", s("POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"),
			s("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0x00},
		{"head", s("HEAD /file.iso HTTP/1.1\r\nHost: x\r\n\r\n"),
			s("HTTP/1.1 200 OK\r\nContent-Length: 734003200\r\nContent-Type: application/octet-stream\r\n\r\n"), 0x02},
		{"101 upgrade", s("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"),
			s("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello"), 0x02},
		{"gzip body", s("GET /data.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"),
			append(s("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: application/json\r\nContent-Length: ", strconv.Itoa(gz.Len()), "\r\n\r\n"), gz.Bytes()...), 0x03},
		{"until close, binary", s("GET /bin HTTP/1.0\r\n\r\n"),
			s("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\x02\xff\xfe\xe2\x82"), 0x02},
		{"connect", s("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x00\x05hello"),
			s("HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x02hi"), 0x01},
		{"gaps", s("POST /x HTTP/1.1\r\nContent-Length: 300\r\n\r\n", string(bytes.Repeat([]byte("b"), 300)), "GET /y HTTP/1.1\r\n\r\n"),
			s("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n", string(bytes.Repeat([]byte("c"), 100)), "\r\n0\r\n\r\nHTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), 0xe2},
		{"oversized header", s("GET /", strings.Repeat("a", 5000), " HTTP/1.1\r\nX-Pad: ", strings.Repeat("b", 100), "\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"),
			s("HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nX-Big: ", strings.Repeat("c", 5000), "\r\n\r\n"), 0x03},
		{"malformed", s("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), s("HTTP/1.1 2OO OK\r\n\r\n"), 0x0e},
	}
}

// TestFuzzSeeds checks that each seed conversation yields calls (so the seeds
// reach the parser's paths rather than being rejected early).
func TestFuzzSeeds(t *testing.T) {
	for _, s := range fuzzHTTPSeeds(t) {
		lim := fuzzLimits.WithDefaults()
		var out fuzzEmitter
		p := http1.Protocol{}.NewStream(&out, &lim)
		p.End(fuzzFeed(p, s.client, s.server, s.split), time.Unix(1e9, 0))
		if len(out.calls) == 0 {
			t.Errorf("%s: no calls", s.name)
		}
		for i, c := range out.calls {
			fuzzCheckCall(t, i, c, lim.MaxBodyDisplay)
			t.Logf("%s: %s %.40q -> %s %q", s.name, c.Method, c.Path, c.Status, c.Error)
		}
	}
}
