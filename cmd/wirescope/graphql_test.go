package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// graphqlRequest is one request the recorded test sends: a POST of body,
// or a GET of target when body is empty.
type graphqlRequest struct {
	target, body string
}

// gqlOperation is what the test reads, on its own, from a document: the
// operation's type, its name, or its first root field when anonymous.
var gqlOperation = regexp.MustCompile(`^\s*(?:(query|mutation|subscription)\s*(\w*)[^{]*)?\{\s*(?:\w+\s*:\s*)?(\w+)`)

// graphqlTruth says which calls an exchange tshark read should give:
// "carrier type name status" for each GraphQL operation (one per element of
// a batch), or the carrier's own call for a request that is not GraphQL.
func graphqlTruth(t *testing.T, e *exchange) []string {
	carrier := e.Proto
	var ops []map[string]any
	if e.Method == "GET" {
		u, err := url.Parse(e.Path)
		if err != nil || u.Query().Get("query") == "" {
			return []string{callKey(carrier+" "+e.Method, e.Path, e.Status)}
		}
		ops = []map[string]any{{"query": u.Query().Get("query")}}
	} else {
		var one map[string]any
		if err := json.Unmarshal(e.ReqBody, &one); err == nil {
			ops = []map[string]any{one}
		} else if err := json.Unmarshal(e.ReqBody, &ops); err != nil {
			t.Fatalf("%v: request body %q is not JSON", e, e.ReqBody)
		}
	}
	var results []map[string]any
	var one map[string]any
	if err := json.Unmarshal(e.RespBody, &one); err == nil {
		results = []map[string]any{one}
	} else {
		json.Unmarshal(e.RespBody, &results) // not JSON: no results
	}
	var out []string
	for i, op := range ops {
		doc, _ := op["query"].(string)
		m := gqlOperation.FindStringSubmatch(doc)
		if m == nil {
			return []string{callKey(carrier+" "+e.Method, e.Path, e.Status)} // not GraphQL
		}
		typ, name := m[1], m[2]
		if typ == "" {
			typ = "query"
		}
		if name == "" {
			name = m[3]
		}
		status := "error"
		if i < len(results) {
			if errs, _ := results[i]["errors"].([]any); len(errs) == 0 {
				status = "ok"
			}
		} else if e.Status[0] == '2' {
			t.Fatalf("%v: a success without a result", e)
		}
		out = append(out, callKey(carrier+" "+typ, name, status))
	}
	return out
}

// TestGraphQLRecorded records real GraphQL — test/grpcapps' graphql-server
// (graph-gophers/graphql-go with its relay handler) over HTTP/1.1, over
// cleartext HTTP/2 with prior knowledge, and after an Upgrade: h2c, queried
// with curl: named and anonymous queries, a mutation, a resolver that fails
// (errors under HTTP 200, with data), a query the schema refuses, a GET
// with ?query=, a batch the relay handler refuses with 400, and a JSON POST
// that is not GraphQL — and checks `wirescope dissect` against tshark's
// reading of the capture: each exchange's operations (type, name or first
// root field, ok or error from the response's errors) as the test reads
// them from tshark's request and response bodies, the HTTP status and
// stream id kept, and the request that is not GraphQL left to HTTP.
func TestGraphQLRecorded(t *testing.T) {
	needRecording(t, "curl")
	ctx := clientsContext(t, 4*time.Minute)
	bin := buildTestApps(t, ctx, "./graphql-server")

	const ip = "127.0.0.23"
	h1, h1Port := freeAddr(t, ip)
	h2, h2Port := freeAddr(t, ip)
	startServer(t, "listening on", h1, filepath.Join(bin, "graphql-server"), "-http1", h1, "-h2c", h2)
	stop := startCapture(t, h1Port, h2Port)

	requests := []graphqlRequest{
		{"/graphql", `{"query":"query Hello($n: String!) { hello(name: $n) }","operationName":"Hello","variables":{"n":"wirescope"}}`},
		{"/graphql", `{"query":"{ books { id title } }"}`},
		{"/graphql", `{"query":"mutation AddBook($t: String!) { addBook(title: $t) { id title } }","variables":{"t":"Network Forensics"}}`},
		{"/graphql", `{"query":"{ books { id } broken }"}`},
		{"/graphql", `{"query":"query Bad { nosuch }"}`},
		{"/graphql?query=" + url.QueryEscape(`{ hello(name: "get") }`), ""},
		{"/graphql", `[{"query":"{ books { id } }"},{"query":"query B { hello(name: \"b\") }"}]`},
		{"/search", `{"query":"title:go AND year:2024"}`},
	}
	for _, server := range []struct {
		addr string
		flag string
	}{{h1, "--http1.1"}, {h2, "--http2-prior-knowledge"}} {
		for _, r := range requests {
			args := []string{"-sS", "-o", "/dev/null", server.flag, "http://" + server.addr + r.target}
			if r.body != "" {
				args = append(args, "-H", "Content-Type: application/json", "--data-binary", r.body)
			}
			runClient(t, ctx, "curl", args...)
		}
	}
	// curl asks for h2c with an Upgrade on a GET: the query is answered
	// on stream 1 of the upgraded connection.
	runClient(t, ctx, "curl", "-sS", "-o", "/dev/null", "--http2",
		"http://"+h2+"/graphql?query="+url.QueryEscape(`query Up { books { title } }`))
	pcap := stop()

	truth := tsharkExchanges(t, pcap, map[string]string{h1Port: "http", h2Port: "http"})
	var want []string
	upgrades := 0
	for _, e := range truth {
		if e.Status == "101" {
			upgrades++
			want = append(want, callKey("http "+e.Method, e.Path, e.Status)) // HTTP/1's call; stream 1 answers
			continue
		}
		want = append(want, graphqlTruth(t, e)...)
	}
	t.Logf("tshark: %d exchanges, %d calls expected", len(truth), len(want))
	// Each request, and the upgrade's two halves: HTTP/1.1's 101 and
	// HTTP/2's stream 1.
	if len(truth) != 2*len(requests)+2 || upgrades != 1 {
		t.Fatalf("tshark reads %d exchanges (%d upgraded), want %d (1): %v", len(truth), upgrades, 2*len(requests)+2, truth)
	}
	// What the test expects of the server must hold in tshark's reading,
	// or the comparison below proves little.
	for _, w := range []string{"http query Hello ok", "http2 query books error", "http mutation AddBook ok",
		"http2 query Bad error", "http query hello ok", "http2 query B error", "http2 POST /search 200", "http2 query Up ok"} {
		if !slices.Contains(want, w) {
			t.Fatalf("tshark's reading lacks %q: %q", w, want)
		}
	}

	stdout, _, err := runCmd(t, "dissect", pcap)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range parseCalls(t, stdout) {
		carrier := "http"
		if c.Extra.Get("stream_id") != nil {
			carrier = "http2"
		}
		switch c.Proto {
		case "graphql":
			got = append(got, callKey(carrier+" "+c.Method, c.Path, c.Status))
			hs, err := strconv.Atoi(fmt.Sprint(c.Extra.Get("http_status")))
			if err != nil || hs < 200 {
				t.Errorf("%s %s: http_status %v", c.Method, c.Path, c.Extra.Get("http_status"))
			}
			if c.Status == "error" && (c.Extra.Get("errors") == nil) != (hs == 400) {
				t.Errorf("%s %s: errors %v under HTTP %d", c.Method, c.Path, c.Extra.Get("errors"), hs)
			}
			if c.Path == "books" && c.Status == "error" && hs == 200 && c.Extra.Get("partial") != true {
				t.Errorf("the failing resolver's call is not marked partial: %v", c.Extra)
			}
		case "http", "http2":
			got = append(got, callKey(c.Proto+" "+c.Method, c.Path, c.Status))
		default:
			t.Errorf("call of %s: %s %s", c.Proto, c.Method, c.Path)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\ntshark's reading:\n%s\nonly in wirescope's: %q\nonly in tshark's: %q",
			strings.Join(got, "\n"), strings.Join(want, "\n"), missing(got, want), missing(want, got))
	}
}
