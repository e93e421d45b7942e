package http1_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
)

// recorder is an Emitter that keeps what the parser produces.
type recorder struct {
	calls    []*proto.Call
	upgrades []string
	skipped  int
}

func (r *recorder) Emit(c *proto.Call) { r.calls = append(r.calls, c) }
func (r *recorder) Upgrade(p string)   { r.upgrades = append(r.upgrades, p) }
func (r *recorder) Skipped(n int)      { r.skipped += n }
func (r *recorder) only(t *testing.T) *proto.Call {
	t.Helper()
	if len(r.calls) != 1 {
		t.Fatalf("%d calls, want 1: %s", len(r.calls), r.summary())
	}
	return r.calls[0]
}

func (r *recorder) summary() string {
	var b strings.Builder
	for _, c := range r.calls {
		fmt.Fprintf(&b, "\n  %s %q → %q err=%q req=%d resp=%d", c.Method, c.Path, c.Status, c.Error, c.Request.BodySize, c.Response.BodySize)
	}
	return b.String()
}

var t0 = time.Date(2026, 11, 21, 4, 30, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

type session struct {
	rec *recorder
	p   proto.StreamParser
}

func newSession(lim proto.Limits) *session {
	l := lim.WithDefaults()
	r := &recorder{}
	return &session{rec: r, p: http1.Protocol{}.NewStream(r, &l)}
}

func (s *session) cli(at int, data string) *session {
	s.p.Feed(proto.Client, []byte(data), ms(at))
	return s
}
func (s *session) srv(at int, data string) *session {
	s.p.Feed(proto.Server, []byte(data), ms(at))
	return s
}
func (s *session) end(r proto.EndReason) *session { s.p.End(r, ms(10000)); return s }

// want is what a test expects of a call.
type want struct {
	method, path, status, errPrefix string
	reqBody, respBody               int64
	body                            string // response body shown, when set
}

func (w want) check(t *testing.T, c *proto.Call) {
	t.Helper()
	if c.Method != w.method || c.Path != w.path || c.Status != w.status {
		t.Errorf("call %s %q → %q, want %s %q → %q", c.Method, c.Path, c.Status, w.method, w.path, w.status)
	}
	if (w.errPrefix == "") != (c.Error == "") || !strings.HasPrefix(c.Error, w.errPrefix) {
		t.Errorf("%s %s: error %q, want prefix %q", c.Method, c.Path, c.Error, w.errPrefix)
	}
	if c.Request.BodySize != w.reqBody || c.Response.BodySize != w.respBody {
		t.Errorf("%s %s: body sizes %d/%d, want %d/%d", c.Method, c.Path, c.Request.BodySize, c.Response.BodySize, w.reqBody, w.respBody)
	}
	if w.body != "" && c.Response.Body != w.body {
		t.Errorf("%s %s: body %q, want %q", c.Method, c.Path, c.Response.Body, w.body)
	}
	if c.Proto != "http" {
		t.Errorf("proto %q", c.Proto)
	}
}

func checkAll(t *testing.T, r *recorder, ws ...want) {
	t.Helper()
	if len(r.calls) != len(ws) {
		t.Fatalf("%d calls, want %d:%s", len(r.calls), len(ws), r.summary())
	}
	for i, w := range ws {
		w.check(t, r.calls[i])
	}
}

func TestSimpleExchange(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "GET /api/items?id=7 HTTP/1.1\r\nHost: shop\r\nUser-Agent: curl/8\r\n\r\n")
	s.srv(3, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"id\":7}")
	c := s.rec.only(t)
	want{method: "GET", path: "/api/items?id=7", status: "200", respBody: 8, body: "{\"id\":7}"}.check(t, c)
	if c.LatencyNS != int64(3*time.Millisecond) || !c.TS.Equal(ms(0)) {
		t.Errorf("latency %d ts %v", c.LatencyNS, c.TS)
	}
	if c.Request.Headers.Get("host") != "shop" || c.Response.Headers.Get("content-type") != "application/json" {
		t.Errorf("headers %v / %v", c.Request.Headers, c.Response.Headers)
	}
	if c.Extra.Get("version") != "HTTP/1.1" {
		t.Errorf("extra %v", c.Extra)
	}
}

func TestKeepAliveAndPipelining(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
	s.srv(5, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
	s.srv(6, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
	s.cli(10, "GET /d HTTP/1.1\r\n\r\n")
	s.srv(12, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/a", status: "200", respBody: 1},
		want{method: "GET", path: "/b", status: "404"},
		want{method: "POST", path: "/c", status: "201", reqBody: 3, respBody: 2},
		want{method: "GET", path: "/d", status: "200"},
	)
}

func TestSplitEverywhere(t *testing.T) {
	// The same exchange delivered one byte at a time must give the same call.
	req := "POST /split HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n"
	resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	s := newSession(proto.Limits{})
	for i := range len(req) {
		s.cli(i, req[i:i+1])
	}
	for i := range len(resp) {
		s.srv(1000+i, resp[i:i+1])
	}
	c := s.rec.only(t)
	want{method: "POST", path: "/split", status: "200", reqBody: 9, respBody: 3, body: "abc"}.check(t, c)
	if c.Request.Body != "wikipedia" {
		t.Errorf("request body %q", c.Request.Body)
	}
	if tr, _ := c.Extra.Get("request_trailers").(map[string]string); tr["x-trailer"] != "yes" {
		t.Errorf("trailers %v", c.Extra)
	}
	// Latency runs from the request's last byte to the response's first.
	if c.LatencyNS != int64((1000-(len(req)-1))*int(time.Millisecond)) {
		t.Errorf("latency %v", time.Duration(c.LatencyNS))
	}
}

func TestBodyDelimitedByClose(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "GET /old HTTP/1.0\r\n\r\n").srv(1, "HTTP/1.0 200 OK\r\n\r\nhello ").srv(2, "world").end(proto.EndFIN)
	want{method: "GET", path: "/old", status: "200", respBody: 11, body: "hello world"}.check(t, s.rec.only(t))

	// Without the server's close the body may be incomplete.
	s = newSession(proto.Limits{})
	s.cli(0, "GET /old HTTP/1.0\r\n\r\n").srv(1, "HTTP/1.0 200 OK\r\n\r\nhello").end(proto.EndCapture)
	want{method: "GET", path: "/old", status: "200", respBody: 5, errPrefix: "truncated"}.check(t, s.rec.only(t))
}

func TestNoBodyResponses(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "HEAD /big HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\nGET /cached HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\nGET /after HTTP/1.1\r\n\r\n")
	// HEAD's Content-Length and 304's describe a body that is not sent.
	s.srv(1, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
	s.srv(2, "HTTP/1.1 204 No Content\r\n\r\n")
	s.srv(3, "HTTP/1.1 304 Not Modified\r\nContent-Length: 500\r\n\r\n")
	s.srv(4, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	checkAll(t, s.rec,
		want{method: "HEAD", path: "/big", status: "200"},
		want{method: "GET", path: "/nothing", status: "204"},
		want{method: "GET", path: "/cached", status: "304"},
		want{method: "GET", path: "/after", status: "200", respBody: 2},
	)
}

func TestContinue(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "PUT /file HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	s.srv(1, "HTTP/1.1 100 Continue\r\n\r\n")
	s.cli(2, "data")
	s.srv(7, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	c := s.rec.only(t)
	want{method: "PUT", path: "/file", status: "201", reqBody: 4}.check(t, c)
	if in, _ := c.Extra.Get("interim").([]int); len(in) != 1 || in[0] != 100 {
		t.Errorf("interim %v", c.Extra.Get("interim"))
	}
	if c.LatencyNS != int64(5*time.Millisecond) {
		t.Errorf("latency %v, want from the body's end to the final response", time.Duration(c.LatencyNS))
	}
}

func TestUpgrade(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "GET /chat HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	s.srv(1, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello")
	s.cli(2, "\x81\x85\x00\x00\x00\x00hello")
	s.end(proto.EndFIN)
	c := s.rec.only(t)
	want{method: "GET", path: "/chat", status: "101"}.check(t, c)
	if len(s.rec.upgrades) != 1 || s.rec.upgrades[0] != "websocket" || c.Extra.Get("upgrade") != "websocket" {
		t.Errorf("upgrades %v extra %v", s.rec.upgrades, c.Extra)
	}

	// An upgrade the server declines: what the client sent meanwhile is HTTP.
	s = newSession(proto.Limits{})
	s.cli(0, "GET /a HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n")
	s.cli(1, "GET /b HTTP/1.1\r\n\r\n")
	s.srv(2, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA")
	s.srv(3, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB")
	checkAll(t, s.rec, want{method: "GET", path: "/a", status: "200", respBody: 1}, want{method: "GET", path: "/b", status: "200", respBody: 1})
	if len(s.rec.upgrades) != 0 {
		t.Errorf("upgrades %v", s.rec.upgrades)
	}

	// CONNECT opens a tunnel.
	s = newSession(proto.Limits{})
	s.cli(0, "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n")
	s.srv(1, "HTTP/1.1 200 Connection Established\r\n\r\n")
	s.cli(2, "\x16\x03\x01\x02\x00binary tls")
	s.srv(3, "\x16\x03\x03\x00\x10more")
	s.end(proto.EndFIN)
	want{method: "CONNECT", path: "db.internal:5432", status: "200"}.check(t, s.rec.only(t))
	if len(s.rec.upgrades) != 1 || s.rec.upgrades[0] != "tunnel" {
		t.Errorf("upgrades %v", s.rec.upgrades)
	}
}

func compress(t *testing.T, enc, text string) string {
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		w = zlib.NewWriter(&b)
	case "raw-deflate":
		w, _ = flate.NewWriter(&b, 5)
	}
	w.Write([]byte(text))
	w.Close()
	return b.String()
}

func TestContentEncoding(t *testing.T) {
	text := strings.Repeat("the quick brown fox ", 50)
	for _, enc := range []string{"gzip", "deflate", "raw-deflate"} {
		body := compress(t, enc, text)
		name := enc
		if enc == "raw-deflate" {
			name = "deflate"
		}
		s := newSession(proto.Limits{MaxBodyDisplay: 100})
		s.cli(0, "GET /t HTTP/1.1\r\n\r\n")
		s.srv(1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s", name, len(body), body))
		c := s.rec.only(t)
		if c.Response.Body != text[:100] || !c.Response.BodyTruncated || c.Response.BodySize != int64(len(body)) {
			t.Errorf("%s: body %q truncated=%v size %d", enc, c.Response.Body, c.Response.BodyTruncated, c.Response.BodySize)
		}
	}
	// A gzip bomb: 100 MB of zeros compress to ~100 KB; decoding for display
	// stops at the display limit.
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zero := make([]byte, 1<<20)
	for range 100 {
		zw.Write(zero)
	}
	zw.Close()
	s := newSession(proto.Limits{MaxBodyDisplay: 64, MaxBodyCapture: 1 << 20})
	s.cli(0, "GET /bomb HTTP/1.1\r\n\r\n")
	s.srv(1, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", b.Len())+b.String())
	c := s.rec.only(t)
	if c.Response.BodyEncoding != "base64" || !c.Response.BodyTruncated || len(c.Response.Body) > 4*64/3+4 {
		t.Errorf("bomb: encoding %q truncated %v shown %d bytes", c.Response.BodyEncoding, c.Response.BodyTruncated, len(c.Response.Body))
	}
}

func TestBinaryBody(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "GET /img HTTP/1.1\r\n\r\n").srv(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\x89PNG")
	c := s.rec.only(t)
	if c.Response.BodyEncoding != "base64" || c.Response.Body != "iVBORw==" {
		t.Errorf("body %q encoding %q", c.Response.Body, c.Response.BodyEncoding)
	}
}

func TestLimits(t *testing.T) {
	// A header block over the limit: the call keeps its start line and is
	// marked truncated; the bytes dropped are counted; the next request is
	// parsed.
	s := newSession(proto.Limits{MaxHeaderBytes: 1024})
	s.cli(0, "GET /huge HTTP/1.1\r\nX-Big: "+strings.Repeat("a", 5000)+"\r\n\r\n")
	s.cli(1, "GET /next HTTP/1.1\r\n\r\n")
	s.srv(2, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
	s.srv(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/huge", status: "431", errPrefix: "truncated: header block larger than 1024"},
		want{method: "GET", path: "/next", status: "200"},
	)
	if s.rec.skipped < 4000 {
		t.Errorf("skipped %d bytes", s.rec.skipped)
	}

	// Too many requests waiting: the oldest is given up on.
	s = newSession(proto.Limits{MaxPending: 3})
	for i := range 5 {
		s.cli(i, fmt.Sprintf("GET /%d HTTP/1.1\r\n\r\n", i))
	}
	if len(s.rec.calls) != 2 || !strings.HasPrefix(s.rec.calls[0].Error, "truncated: more than 3") {
		t.Errorf("calls:%s", s.rec.summary())
	}

	// The request given up on is the one whose response is being read:
	// it is emitted once, and the response's end pairs with no request.
	s = newSession(proto.Limits{MaxPending: 2})
	s.cli(0, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
	s.srv(1, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
	s.cli(2, "GET /c HTTP/1.1\r\n\r\n")
	s.srv(3, "cd")
	s.end(proto.EndFIN)
	checkAll(t, s.rec,
		want{method: "GET", path: "/a", errPrefix: "truncated: more than 2"},
		want{status: "200", errPrefix: "no request", respBody: 4},
		want{method: "GET", path: "/b", errPrefix: "no response"},
		want{method: "GET", path: "/c", errPrefix: "no response"},
	)
}

// TestEndlessLists sends what a hostile peer could repeat forever: trailer
// lines after a chunked body, and interim responses before a final one.
// What a call keeps stays bounded.
func TestEndlessLists(t *testing.T) {
	s := newSession(proto.Limits{MaxHeaderBytes: 1024})
	s.cli(0, "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
	for i := range 500 {
		s.cli(1, fmt.Sprintf("X-Trailer-%d: value\r\n", i))
	}
	s.cli(2, "\r\nGET /next HTTP/1.1\r\n\r\n")
	s.srv(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "POST", path: "/t", status: "200", errPrefix: "truncated: trailers larger than 1024 bytes"},
		want{method: "GET", path: "/next", status: "204"},
	)

	s = newSession(proto.Limits{})
	s.cli(0, "GET /x HTTP/1.1\r\n\r\n")
	for range 1000 {
		s.srv(1, "HTTP/1.1 102 Processing\r\n\r\n")
	}
	s.srv(2, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	c := s.rec.only(t)
	if in, _ := c.Extra.Get("interim").([]int); len(in) != 16 || c.Extra.Get("interim_more") != 984 {
		t.Errorf("interim %d recorded, %v more", len(in), c.Extra.Get("interim_more"))
	}
}

func TestMalformed(t *testing.T) {
	s := newSession(proto.Limits{})
	s.cli(0, "POST /x HTTP/1.1\r\nContent-Length: 12abc\r\n\r\nhello")
	s.srv(1, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	want{method: "POST", path: "/x", status: "400", errPrefix: "malformed: bad content-length"}.check(t, s.rec.only(t))

	s = newSession(proto.Limits{})
	s.cli(0, "GET /x HTTP/1.1\r\n\r\n")
	s.srv(1, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n")
	want{method: "GET", path: "/x", status: "200", errPrefix: "malformed: bad chunk size"}.check(t, s.rec.only(t))

	for _, line := range []string{"HTTP/1.1 2OO OK", "HTTP/1.1 000 Zero", "HTTP/1.1 20", "HTTP/1.1 2000 Too long", "HTTP/ 200 OK"} {
		s = newSession(proto.Limits{})
		s.cli(0, "GET /x HTTP/1.1\r\n\r\n")
		s.srv(1, line+"\r\n\r\n")
		want{method: "GET", path: "/x", errPrefix: "malformed: bad status line"}.check(t, s.rec.only(t))
	}
}

func TestLenientSyntax(t *testing.T) {
	s := newSession(proto.Limits{})
	// Bare LF line ends, folded and repeated headers, blank lines between
	// messages, request lines without a version or with spaces.
	s.cli(0, "GET /lf HTTP/1.1\nHost: a\nX-A: 1\n  continued\nX-A: 2\n\n\r\n\r\nOPTIONS\r\n\r\nGET /a b HTTP/1.1\r\n\r\n")
	s.srv(1, "HTTP/1.1 200 OK\nContent-Length: 0\n\n")
	s.srv(2, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	s.srv(3, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/lf", status: "200"},
		want{method: "OPTIONS", path: "", status: "400"},
		want{method: "GET", path: "/a b", status: "400"},
	)
	if got := s.rec.calls[0].Request.Headers.Get("x-a"); got != "1 continued, 2" {
		t.Errorf("folded header %q", got)
	}
}

func TestGaps(t *testing.T) {
	// A gap inside a body of known length: the call is truncated and the
	// next exchange is still parsed.
	s := newSession(proto.Limits{})
	s.cli(0, "GET /a HTTP/1.1\r\n\r\n").srv(1, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123")
	s.p.Gap(proto.Server, 4)
	s.srv(2, "89")
	s.cli(3, "GET /b HTTP/1.1\r\n\r\n").srv(4, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/a", status: "200", respBody: 10, errPrefix: "truncated: 4 body bytes missing"},
		want{method: "GET", path: "/b", status: "200"},
	)
	if s.rec.calls[0].Extra.Get("missing_bytes") != int64(4) {
		t.Errorf("extra %v", s.rec.calls[0].Extra)
	}

	// A gap inside a request's headers: the request keeps what its start
	// line said and pairs with its response; the parser picks up at the
	// next request.
	s = newSession(proto.Limits{})
	s.cli(0, "GET /lost HTT")
	s.p.Gap(proto.Client, 20)
	s.srv(1, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
	s.cli(2, "GET /next HTTP/1.1\r\n\r\n").srv(3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/lost HTT", status: "500", errPrefix: "truncated: 20 bytes missing"},
		want{method: "GET", path: "/next", status: "200"},
	)

	// A response that began before the oldest waiting request was sent
	// cannot answer it: its own request was not captured.
	s = newSession(proto.Limits{})
	s.p.Gap(proto.Client, -1)
	s.cli(5, "GET /later HTTP/1.1\r\n\r\n")
	s.srv(4, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
	s.srv(6, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{status: "503", errPrefix: "no request"},
		want{method: "GET", path: "/later", status: "200"},
	)

	// A response lost in a gap at a message boundary: when the next
	// response comes, the request it overtook is given up on.
	s = newSession(proto.Limits{})
	s.cli(0, "GET /one HTTP/1.1\r\n\r\n")
	s.p.Gap(proto.Server, 200)
	s.cli(5, "GET /two HTTP/1.1\r\n\r\n").srv(6, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "GET", path: "/one", errPrefix: "truncated: response lost in a capture gap"},
		want{method: "GET", path: "/two", status: "200"},
	)
}

func TestResyncGluedMethod(t *testing.T) {
	// A gap of unknown size inside a body; the next segment carries the
	// body's last bytes and the next request.
	s := newSession(proto.Limits{})
	s.cli(0, "POST /x HTTP/1.1\r\nContent-Length: 300\r\n\r\n")
	s.p.Gap(proto.Client, -1)
	s.cli(1, "bbbbbbbbbbbbbbbbbbbbGET /y HTTP/1.1\r\n\r\n")
	s.srv(2, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	s.srv(3, "HTTP/1.1 204 No Content\r\n\r\n")
	checkAll(t, s.rec,
		want{method: "POST", path: "/x", status: "200", errPrefix: "truncated"},
		want{method: "GET", path: "/y", status: "204"},
	)
}

func TestEnds(t *testing.T) {
	for _, c := range []struct {
		reason proto.EndReason
		err    string
	}{
		{proto.EndFIN, "no response"},
		{proto.EndRST, "no response: connection reset"},
		{proto.EndCapture, "no response: capture ended"},
		{proto.EndIdle, "no response: connection idle"},
	} {
		s := newSession(proto.Limits{})
		s.cli(0, "GET /slow HTTP/1.1\r\n\r\n").end(c.reason)
		got := s.rec.only(t)
		if got.Error != c.err || got.Status != "" || got.Method != "GET" {
			t.Errorf("%v: %s %q error %q", c.reason, got.Method, got.Status, got.Error)
		}
	}
	// A request cut by the end of the capture is truncated, not unanswered.
	s := newSession(proto.Limits{})
	s.cli(0, "POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial").end(proto.EndCapture)
	want{method: "POST", path: "/up", reqBody: 7, errPrefix: "truncated: connection capture-end during the request"}.check(t, s.rec.only(t))
}

func TestMidStreamStart(t *testing.T) {
	// The capture starts inside a response body: the parser waits for the
	// next message on each side.
	s := newSession(proto.Limits{})
	s.p.Gap(proto.Server, -1)
	s.srv(0, "tail of an earlier body")
	s.cli(1, "GET /x HTTP/1.1\r\n\r\n").srv(2, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	want{method: "GET", path: "/x", status: "200"}.check(t, s.rec.only(t))
}

func TestDetect(t *testing.T) {
	p := http1.Protocol{}
	for _, c := range []struct {
		in   string
		v    proto.Verdict
		role proto.Role
	}{
		{"GET / HTTP/1.1\r\n", proto.Yes, proto.Client},
		{"PROPFIND /dav/ HTTP/1.1\r\n", proto.Yes, proto.Client},
		{"BREW /pot HTTP/1.1\r\n", proto.Yes, proto.Client},
		{"DELETE /x", proto.Yes, proto.Client},
		{"GE", proto.Maybe, proto.RoleUnknown},
		{"HTTP/1.1 200 OK\r\n", proto.Yes, proto.Server},
		{"HTTP/1.0 404", proto.Yes, proto.Server},
		{"HTTP/1", proto.Maybe, proto.RoleUnknown},
		{"HTTP/2.0 200 OK\r\n", proto.No, proto.RoleUnknown},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", proto.No, proto.RoleUnknown},
		{"SSH-2.0-OpenSSH_9.2\r\n", proto.No, proto.RoleUnknown},
		{"*1\r\n$4\r\nPING\r\n", proto.No, proto.RoleUnknown},
		{strings.Repeat("O", 100) + " HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", proto.No, proto.RoleUnknown},
	} {
		v, r := p.DetectStream([]byte(c.in), 50000, 80)
		if v != c.v || r != c.role {
			t.Errorf("%q: %v %v, want %v %v", c.in, v, r, c.v, c.role)
		}
	}
}

// TestSummary runs exchanges whose framing depends on headers in every
// spelling through summary mode: the calls are the same, without headers
// or bodies.
func TestSummary(t *testing.T) {
	s := newSession(proto.Limits{Summary: true})
	s.cli(0, "POST /a HTTP/1.1\r\nHost: x\r\ncontent-LENGTH : 3\r\n\r\nabc")
	s.srv(1, "HTTP/1.1 200 OK\r\nServer: y\r\nTRANSFER-ENCODING: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	s.cli(2, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
	s.srv(3, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00")
	checkAll(t, s.rec,
		want{method: "POST", path: "/a", status: "200", reqBody: 3, respBody: 5},
		want{method: "GET", path: "/ws", status: "101"},
	)
	for _, c := range s.rec.calls {
		if c.Request.Body != "" || c.Response.Body != "" || len(c.Request.Headers) != 0 || len(c.Response.Headers) != 0 {
			t.Errorf("%s %s keeps headers or bodies: %+v %+v", c.Method, c.Path, c.Request, c.Response)
		}
	}
	if len(s.rec.upgrades) != 1 {
		t.Errorf("upgrade not seen: %v", s.rec.upgrades)
	}
}
