package graphql_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/graphql"
	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// The registry is dissect's: HTTP/1 asks it what a request carries, and
// Outcome reads GraphQL's description from it.
func init() { proto.Register(http1.Protocol{}, graphql.Protocol{}) }

var t0 = time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)

type segment struct {
	r proto.Role
	b string
}

func post(path, ct, body string) segment {
	return segment{proto.Client, "POST " + path + " HTTP/1.1\r\nHost: api\r\nContent-Type: " + ct +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body}
}

func reply(status int, ct, body string) segment {
	return segment{proto.Server, "HTTP/1.1 " + strconv.Itoa(status) + " X\r\nContent-Type: " + ct +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body}
}

// chunked is a response in chunks of n bytes, gzip-compressed when gz.
func chunked(body string, n int, gz bool) segment {
	b := []byte(body)
	enc := ""
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		b, enc = buf.Bytes(), "Content-Encoding: gzip\r\n"
	}
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/graphql-response+json\r\n" + enc + "Transfer-Encoding: chunked\r\n\r\n")
	for len(b) > 0 {
		k := min(n, len(b))
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", k, b[:k])
		b = b[k:]
	}
	sb.WriteString("0\r\n\r\n")
	return segment{proto.Server, sb.String()}
}

// feed runs segments through HTTP/1's parser, each cut in pieces of at
// most step bytes, a millisecond apart.
func feed(t *testing.T, step int, lim proto.Limits, segs ...segment) []*proto.Call {
	t.Helper()
	rec := &prototest.Recorder{}
	lim = lim.WithDefaults()
	p := http1.Protocol{}.NewStream(rec, &lim)
	now := t0
	for _, s := range segs {
		for b := []byte(s.b); len(b) > 0; b = b[min(step, len(b)):] {
			now = now.Add(time.Millisecond)
			p.Feed(s.r, b[:min(step, len(b))], now)
		}
	}
	p.End(proto.EndFIN, now.Add(time.Second))
	for i, c := range rec.Calls {
		prototest.CheckJSON(t, i, c)
	}
	return rec.Calls
}

// line is what a test compares of a call.
func line(c *proto.Call) string {
	s := c.Proto + " " + c.Method + " " + c.Path + " " + c.Status + " " + c.Outcome().String()
	for _, k := range []string{"fields", "error_code", "error_count", "errors", "partial", "batch_index", "persisted_query", "status_from", "http_status"} {
		if v := c.Extra.Get(k); v != nil {
			s += fmt.Sprintf(" %s=%v", k, v)
		}
	}
	return s
}

// TestOverHTTP1: the ways clients send operations and servers answer them,
// on one keep-alive connection cut at every step size.
func TestOverHTTP1(t *testing.T) {
	big := strings.Repeat(`{"id":"1","title":"a \"quoted\" } title"},`, 3000) // 130 KB of data walked over
	segs := []segment{
		post("/graphql", "application/json", `{"query":"query Hello($n: String!) { hello(name: $n) }","operationName":"Hello","variables":{"n":"x"}}`),
		reply(200, "application/json", `{"data":{"hello":"Hello x"}}`),
		// Errors under 200: a resolver failed, data is partial.
		post("/graphql", "application/json; charset=utf-8", `{"query":"{ books { id } broken }"}`),
		reply(200, "application/json", `{"errors":[{"message":"the broken resolver failed","path":["broken"]}],"data":{"books":[],"broken":null}}`),
		// A code the client causes; the errors after a large data.
		post("/api/graphql", "application/json", `{"query":"mutation AddBook { addBook(title: \"\") { id } }"}`),
		reply(200, "application/json", `{"data":{"list":[`+big+`{}]},"errors":[{"message":"title is empty","extensions":{"code":"BAD_USER_INPUT"},"path":["addBook"]}]}`),
		// GET with the document in the query string.
		{proto.Client, "GET /graphql?query=%7B%20books%20%7B%20title%20%7D%20%7D HTTP/1.1\r\nHost: api\r\n\r\n"},
		chunked(`{"data":{"books":[`+big+`{}]}}`, 1000, true),
		// application/graphql: the body is the document.
		post("/graphql", "application/graphql", "subscription OnBook { bookAdded { id } }"),
		reply(400, "text/plain", "subscriptions need a WebSocket"),
		// A batch: one call per operation, matched by position.
		post("/graphql", "application/json", `[{"query":"{ a }"},{"query":"query B { b }"},{"operationName":"C","extensions":{"persistedQuery":{"version":1,"sha256Hash":"5d1e"}}}]`),
		reply(200, "application/json", `[{"data":{"a":1}},{"errors":[{"message":"no","extensions":{"code":"FORBIDDEN"}}],"data":null},{"errors":[{"message":"PersistedQueryNotFound","extensions":{"code":"PERSISTED_QUERY_NOT_FOUND"}}]}]`),
		// JSON with a "query" that is not GraphQL stays HTTP.
		post("/_search", "application/json", `{"query":"title:go AND year:2024"}`),
		reply(200, "application/json", `{"hits":[]}`),
		// A JSON API without "query": its response is not read.
		post("/api/orders", "application/json", `{"item":42,"errors":[]}`),
		reply(201, "application/json", `{"errors":[{"message":"not GraphQL's"}]}`),
		// A gateway failure without a GraphQL body.
		post("/graphql", "application/json", `{"query":"{ books { id } }"}`),
		reply(502, "text/html", "<html>bad gateway</html>"),
	}
	want := []string{
		"graphql query Hello ok ok fields=[hello] http_status=200",
		"graphql query books error server_error fields=[books broken] error_count=1 errors=[the broken resolver failed at broken] partial=true http_status=200",
		"graphql mutation AddBook error client_error fields=[addBook] error_code=BAD_USER_INPUT error_count=1 errors=[title is empty (BAD_USER_INPUT) at addBook] partial=true http_status=200",
		"graphql query books ok ok fields=[books] http_status=200",
		"graphql subscription OnBook error client_error fields=[bookAdded] status_from=the response is not a GraphQL result http_status=400",
		"graphql query a ok ok fields=[a] batch_index=0 http_status=200",
		"graphql query B error client_error fields=[b] error_code=FORBIDDEN error_count=1 errors=[no (FORBIDDEN)] batch_index=1 http_status=200",
		"graphql persisted C error client_error error_code=PERSISTED_QUERY_NOT_FOUND error_count=1 errors=[PersistedQueryNotFound (PERSISTED_QUERY_NOT_FOUND)] batch_index=2 persisted_query=5d1e http_status=200",
		"http POST /_search 200 ok",
		"http POST /api/orders 201 ok",
		"graphql query books error server_error fields=[books] status_from=the response is not a GraphQL result http_status=502",
	}
	for _, step := range []int{1, 2, 3, 7, 64, 1500, 1 << 20} {
		for _, summary := range []bool{false, true} {
			calls := feed(t, step, proto.Limits{Summary: summary}, segs...)
			var got []string
			for _, c := range calls {
				got = append(got, line(c))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d summary %v:\n%s\nwant\n%s", step, summary, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if c := calls[1]; c.LatencyNS <= 0 || c.Response.BodySize == 0 || c.Extra.Get("version") != "HTTP/1.1" {
				t.Fatalf("step %d: the carrier's latency, sizes and version were lost: %d %d %v", step, c.LatencyNS, c.Response.BodySize, c.Extra)
			}
			if b := calls[5]; !b.TS.Equal(calls[6].TS) || b.LatencyNS != calls[7].LatencyNS {
				t.Fatalf("step %d: a batch's calls differ in time", step)
			}
		}
	}
}

// TestCutAndLost: a response cut by the capture, a gap in a request, no
// response at all, a document longer than what is kept.
func TestCutAndLost(t *testing.T) {
	lim := proto.DefaultLimits
	q := graphql.Protocol{}
	json := proto.Headers{{Name: "content-type", Value: "application/json"}}
	finish := func(cr proto.Carriage, status string) *proto.Call {
		c := &proto.Call{Proto: "http2", Method: "POST", Path: "/graphql", Status: status, TS: t0}
		out := cr.Finish(c)
		if len(out) != 1 {
			t.Fatalf("%d calls", len(out))
		}
		prototest.CheckJSON(t, 0, out[0])
		return out[0]
	}
	// The response lost bytes before its result ended, no errors read.
	cr := q.Carry("http2", "POST", "/graphql", json, &lim)
	cr.Body(proto.Client, []byte(`{"query":"{ a }"}`))
	cr.Headers(proto.Server, proto.Headers{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/json"}})
	cr.Body(proto.Server, []byte(`{"data":{"a":`))
	cr.Gap(proto.Server)
	cr.Body(proto.Server, []byte(`1}}`))
	if c := finish(cr, "200"); c.Proto != "graphql" || c.Status != "ok" || c.Extra.Get("result_cut") != true {
		t.Errorf("cut result: %s", line(c))
	}
	cr = q.Carry("http2", "POST", "/graphql", json, &lim)
	cr.Body(proto.Client, []byte(`{"query":"{ a }"}`))
	cr.Body(proto.Server, []byte(`{"err`))
	cr.Gap(proto.Server)
	if c := finish(cr, "200"); c.Status != "" || c.Outcome() != proto.Incomplete || c.Extra.Get("status_from") == nil {
		t.Errorf("result lost: %s", line(c))
	}
	// No response: the carrier's error stands, the operation is named.
	cr = q.Carry("http", "POST", "/graphql", json, &lim)
	cr.Body(proto.Client, []byte(`{"query":"mutation M { m }"}`))
	c := &proto.Call{Proto: "http", Method: "POST", Path: "/graphql", Error: "no response: connection reset", TS: t0}
	if c = cr.Finish(c)[0]; c.Method != "mutation" || c.Path != "M" || c.Status != "" || c.Outcome() != proto.NoResponse {
		t.Errorf("unanswered: %s %q", line(c), c.Error)
	}
	// A document longer than kept: its start names the operation.
	cr = q.Carry("http", "POST", "/graphql", json, &lim)
	cr.Body(proto.Client, []byte(`{"query":"query Long { a `+strings.Repeat("b ", 40000)+`}"}`))
	if c := finish(cr, "200"); c.Method != "query" || c.Path != "Long" || c.Extra.Get("document_cut") != true {
		t.Errorf("long document: %s %v", line(c), c.Extra)
	}
	// A request body lost to a gap before its query: not known to be
	// GraphQL, the call stays HTTP's.
	cr = q.Carry("http", "POST", "/graphql", json, &lim)
	cr.Body(proto.Client, []byte(`{"variables":{`))
	cr.Gap(proto.Client)
	if c := finish(cr, "200"); c.Proto != "http2" {
		t.Errorf("unknown request taken for GraphQL: %s", line(c))
	}
	// Requests that are not GraphQL's at all.
	for _, r := range []struct{ carrier, method, target, ct string }{
		{"http", "GET", "/graphql", ""},
		{"http", "GET", "/search?query=title:go", ""},
		{"http", "POST", "/upload", "multipart/form-data; boundary=x"},
		{"http", "PUT", "/graphql", "application/json"},
		{"kafka", "POST", "/graphql", "application/json"},
	} {
		if q.Carry(r.carrier, r.method, r.target, proto.Headers{{Name: "content-type", Value: r.ct}}, &lim) != nil {
			t.Errorf("%s %s %s %s taken for GraphQL", r.carrier, r.method, r.target, r.ct)
		}
	}
}

// TestBounded: a response of 50 MB, a batch of 10,000 operations and an
// errors array of 100,000 entries keep a carriage's memory small.
func TestBounded(t *testing.T) {
	lim := proto.DefaultLimits
	cr := graphql.Protocol{}.Carry("http", "POST", "/graphql", proto.Headers{{Name: "content-type", Value: "application/json"}}, &lim)
	// 10,001 operations of 2 KB each: 20 MB of documents.
	ops := strings.Repeat(`{"query":"{ a `+strings.Repeat("b ", 1000)+`}"},`, 10000)
	cr.Body(proto.Client, []byte("["+ops+`{"query":"{ z }"}]`))
	if n := cr.(proto.CarriedBuffering).Buffered(); n > 512<<10 {
		t.Fatalf("%d bytes kept of a 10 MB batch", n)
	}
	cr.Body(proto.Server, []byte(`[{"errors":[`))
	e := []byte(strings.Repeat(`{"message":"x"},`, 1000))
	for range 100 {
		cr.Body(proto.Server, e)
	}
	cr.Body(proto.Server, []byte(`{"message":"y"}],"data":{"a":"`))
	chunk := bytes.Repeat([]byte("d"), 1<<20)
	for range 50 {
		cr.Body(proto.Server, chunk)
	}
	cr.Body(proto.Server, []byte(`"}}]`))
	if n := cr.(proto.CarriedBuffering).Buffered(); n > 1<<20 {
		t.Fatalf("%d bytes kept", n)
	}
	out := cr.Finish(&proto.Call{Proto: "http", Method: "POST", Path: "/graphql", Status: "200", TS: t0})
	// What fits in the scanner's 256 KiB, the rest counted.
	last := out[len(out)-1]
	if len(out) < 100 || len(out) > 140 || last.Extra.Get("batch_not_read") != int64(10001-len(out)) || out[0].Extra.Get("batch_size") != int64(10001) {
		t.Fatalf("%d calls from a batch of 10,001: the last %v", len(out), last.Extra)
	}
	if c := out[0]; c.Status != "error" || c.Extra.Get("error_count_at_least") != true || len(c.Extra.Get("errors").([]string)) != 5 {
		t.Fatalf("first: %s %v", line(c), c.Extra)
	}
	// The last operation read is whole or cut, but named.
	if c := last; c.Method != "query" || c.Path != "a" {
		t.Fatalf("last: %s", line(c))
	}
}

// FuzzCarriage feeds arbitrary request and response bodies, split
// anywhere, with gaps: no panic, calls that read back, and a batch never
// more than its bound.
func FuzzCarriage(f *testing.F) {
	f.Add([]byte(`{"query":"query Q { a }","operationName":"Q"}`), []byte(`{"errors":[{"message":"m","extensions":{"code":1}}]}`), byte(3), "200")
	f.Add([]byte(`[{"query":"{ a }"},{"query":"mutation { b }"}]`), []byte(`[{"data":null},{"data":{}}]`), byte(0x85), "500")
	f.Add([]byte(`{"query":"\"\"\"`), []byte(`[`), byte(1), "")
	f.Fuzz(func(t *testing.T, req, resp []byte, split byte, status string) {
		lim := proto.Limits{MaxBodyCapture: 4096}.WithDefaults()
		cr := graphql.Protocol{}.Carry("http2", "POST", "/graphql", proto.Headers{{Name: "content-type", Value: "application/json"}}, &lim)
		step := int(split&0x3f) + 1
		for _, s := range []struct {
			r proto.Role
			b []byte
		}{{proto.Client, req}, {proto.Server, resp}} {
			for b := s.b; len(b) > 0; b = b[min(step, len(b)):] {
				cr.Body(s.r, b[:min(step, len(b))])
				if split&0x80 != 0 && len(b)%5 == 0 {
					cr.Gap(s.r)
				}
			}
		}
		out := cr.Finish(&proto.Call{Proto: "http2", Method: "POST", Path: "/graphql", Status: status, TS: t0})
		if len(out) == 0 || len(out) > 256 {
			t.Fatalf("%d calls", len(out))
		}
		for i, c := range out {
			prototest.CheckJSON(t, i, c)
			if c.Proto == "graphql" && (c.Method == "" || c.Status != "" && c.Status != "ok" && c.Status != "error") {
				t.Fatalf("call %d: %s", i, line(c))
			}
		}
	})
}

// TestDeclineAllocs: every HTTP request is asked; one that is not
// GraphQL's costs no allocation.
func TestDeclineAllocs(t *testing.T) {
	lim := proto.DefaultLimits
	h := proto.Headers{{Name: "content-type", Value: "text/plain"}}
	for _, r := range [][2]string{{"GET", "/index.html"}, {"GET", "/search?q=go"}, {"POST", "/upload"}, {"HEAD", "/"}} {
		if n := testing.AllocsPerRun(100, func() {
			if (graphql.Protocol{}).Carry("http", r[0], r[1], h, &lim) != nil {
				t.Fatalf("%s %s taken", r[0], r[1])
			}
		}); n != 0 {
			t.Errorf("%s %s declined with %v allocations", r[0], r[1], n)
		}
	}
}
