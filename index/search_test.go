package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// searchFixture is an index of 4,000 calls over three hours (three
// partitions) and the calls.
func searchFixture(t *testing.T) (*Index, []*proto.Call) {
	t.Helper()
	ix, _ := openTest(t, &Options{BatchSize: 700})
	calls := genCalls(4000, 7, 3*time.Hour)
	// Out of time order, in several Adds.
	r := rand.New(rand.NewPCG(1, 1))
	shuffled := slices.Clone(calls)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for i := 0; i < len(shuffled); i += 1500 {
		mustAdd(t, ix, shuffled[i:min(i+1500, len(shuffled))])
	}
	return ix, calls
}

func words(s string) []string {
	var out []string
	forWords(s, func(w string) { out = append(out, w) })
	return out
}

func pathWords(c *proto.Call) []string {
	var out []string
	if c.Proto == "http" {
		forPathWords(c.Path, func(w string) { out = append(out, w) })
	} else {
		out = words(c.Path)
	}
	return out
}

func statusNum(c *proto.Call) (int, bool) {
	n, err := strconv.Atoi(c.Status)
	return n, err == nil
}

func TestSearchText(t *testing.T) {
	ix, calls := searchFixture(t)
	template := func(c *proto.Call) string {
		if c.Proto == "http" {
			return strings.ToLower(TemplatePath(c.Path))
		}
		return strings.ToLower(c.Path)
	}
	cases := []struct {
		text string
		want func(c *proto.Call) bool
	}{
		{"", func(*proto.Call) bool { return true }},
		{"status:500", func(c *proto.Call) bool { return c.Status == "500" }},
		{"status:>=500", func(c *proto.Call) bool { n, ok := statusNum(c); return ok && n >= 500 }},
		{"status:<300", func(c *proto.Call) bool { n, ok := statusNum(c); return ok && n < 300 }},
		{"status:NXDOMAIN", func(c *proto.Call) bool { return c.Status == "NXDOMAIN" }},
		{"NXDOMAIN", func(c *proto.Call) bool { return c.Status == "NXDOMAIN" }},
		{"outcome:server_error", func(c *proto.Call) bool { return c.Outcome() == proto.ServerError }},
		{"outcome:no_response", func(c *proto.Call) bool { return c.Outcome() == proto.NoResponse }},
		{"proto:dns", func(c *proto.Call) bool { return c.Proto == "dns" }},
		{"-proto:http", func(c *proto.Call) bool { return c.Proto != "http" }},
		{"method:post", func(c *proto.Call) bool { return c.Method == "POST" }},
		{"method:AAAA", func(c *proto.Call) bool { return c.Method == "AAAA" }},
		{"path:/api/v1/orders*", func(c *proto.Call) bool { return strings.HasPrefix(template(c), "/api/v1/orders") }},
		{"path:*.amazonaws.com", func(c *proto.Call) bool { return strings.HasSuffix(template(c), ".amazonaws.com") }},
		{"path:orders", func(c *proto.Call) bool { return slices.Contains(pathWords(c), "orders") }},
		{"path:/api/v1/orders", func(c *proto.Call) bool {
			w := pathWords(c)
			return slices.Contains(w, "api") && slices.Contains(w, "v1") && slices.Contains(w, "orders")
		}},
		{"path:/api/v2/", func(c *proto.Call) bool {
			w := pathWords(c)
			return slices.Contains(w, "api") && slices.Contains(w, "v2")
		}},
		{"sessions", func(c *proto.Call) bool {
			return slices.Contains(pathWords(c), "sessions") || slices.Contains(words(c.Error), "sessions")
		}},
		{"healthz", func(c *proto.Call) bool { return slices.Contains(pathWords(c), "healthz") }},
		{"GET", func(c *proto.Call) bool { return c.Method == "GET" }},
		{`route:"GET /healthz"`, func(c *proto.Call) bool { return Route(c) == "GET /healthz" }},
		{"route:*/status", func(c *proto.Call) bool { return strings.HasSuffix(strings.ToLower(Route(c)), "/status") }},
		{"error:reset", func(c *proto.Call) bool { return slices.Contains(words(c.Error), "reset") }},
		{`error:"connection reset"`, func(c *proto.Call) bool {
			w := words(c.Error)
			return slices.Contains(w, "connection") && slices.Contains(w, "reset")
		}},
		{"error:no*", func(c *proto.Call) bool {
			return slices.ContainsFunc(words(c.Error), func(w string) bool { return strings.HasPrefix(w, "no") })
		}},
		{"latency_ms:>100", func(c *proto.Call) bool { return c.LatencyNS > 100e6 }},
		{"latency_ms:<=2.5", func(c *proto.Call) bool { return c.LatencyNS > 0 && c.LatencyNS <= 2.5e6 }},
		{"+latency_ms:>=10 +latency_ms:<20", func(c *proto.Call) bool { return c.LatencyNS >= 10e6 && c.LatencyNS < 20e6 }},
		{"+dst.service:checkout +status:>=500", func(c *proto.Call) bool {
			n, ok := statusNum(c)
			return c.Dst.Service == "checkout" && ok && n >= 500
		}},
		{"dst.service:checkout status:404", func(c *proto.Call) bool { return c.Dst.Service == "checkout" || c.Status == "404" }},
		{"method:get +dst.namespace:payments", func(c *proto.Call) bool { return c.Dst.Namespace == "payments" }},
		{"src.pod:frontend-*", func(c *proto.Call) bool { return strings.HasPrefix(c.Src.Pod, "frontend-") }},
		{"dst.pod:/checkout-.*/", func(c *proto.Call) bool { return strings.HasPrefix(c.Dst.Pod, "checkout-") }},
		{"dst.service:chekout~1", func(c *proto.Call) bool { return c.Dst.Service == "checkout" }},
		{"dst.port:53", func(c *proto.Call) bool { return c.Dst.Port == 53 }},
		{"src.port:>=60000", func(c *proto.Call) bool { return c.Src.Port >= 60000 }},
		{"dst.node:NODE-A", func(c *proto.Call) bool { return c.Dst.Node == "node-a" }},
		{"+dst.namespace:shop -dst.service:frontend -status:200", func(c *proto.Call) bool {
			return c.Dst.Namespace == "shop" && c.Dst.Service != "frontend" && c.Status != "200"
		}},
		{"404", func(c *proto.Call) bool {
			return c.Status == "404" || slices.Contains(pathWords(c), "404") || slices.Contains(words(c.Error), "404")
		}},
	}
	ip := calls[len(calls)/2].Src.IP.String()
	cases = append(cases, struct {
		text string
		want func(c *proto.Call) bool
	}{"src.ip:" + ip, func(c *proto.Call) bool { return c.Src.IP.String() == ip }})
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			var want []*proto.Call
			for _, c := range calls {
				if tc.want(c) {
					want = append(want, c)
				}
			}
			got, total := searchAll(t, ix, Query{Text: tc.text, Limit: 1000})
			if total != uint64(len(want)) {
				t.Errorf("total %d, want %d", total, len(want))
			}
			if !slices.Equal(ids(got), ids(newestFirst(want))) {
				t.Errorf("got %d calls, want %d (or a different order)", len(got), len(want))
			}
			if len(want) == 0 && tc.text != "" {
				t.Errorf("the test is vacuous: nothing matches %q", tc.text)
			}
		})
	}
}

func TestSearchFilter(t *testing.T) {
	ix, calls := searchFixture(t)
	var sample *proto.Call
	for _, c := range calls {
		if c.Proto == "http" && c.Src.Pod != "" {
			sample = c
			break
		}
	}
	filters := []Filter{
		{Namespace: "payments"},
		{Namespace: "PAYMENTS"},
		{Pod: sample.Dst.Pod},
		{Workload: "coredns"},
		{Service: "checkout"},
		{Node: "node-c"},
		{IP: sample.Src.IP.String()},
		{Port: 53},
		{Port: sample.Src.Port},
		{Protocol: "dns"},
		{Protocol: "HTTP", Namespace: "identity"},
		{Service: "checkout", Node: "node-b"},
		{Namespace: "shop", Port: 8080},
		{Namespace: "no-such-namespace"},
	}
	for _, f := range filters {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			var want []*proto.Call
			for _, c := range calls {
				if matchFilter(c, f) {
					want = append(want, c)
				}
			}
			got, total := searchAll(t, ix, Query{Filter: f, Limit: 500})
			if total != uint64(len(want)) || !slices.Equal(ids(got), ids(newestFirst(want))) {
				t.Errorf("got %d calls (total %d), want %d", len(got), total, len(want))
			}
			if len(want) == 0 && f.Namespace != "no-such-namespace" {
				t.Errorf("vacuous filter")
			}
		})
	}
}

func TestSearchTimeWindow(t *testing.T) {
	ix, calls := searchFixture(t)
	r := rand.New(rand.NewPCG(5, 5))
	windows := [][2]time.Time{
		{day0, day0.Add(time.Hour)},                              // one whole partition
		{day0.Add(59 * time.Minute), day0.Add(61 * time.Minute)}, // across a boundary
		{day0.Add(90 * time.Minute), time.Time{}},                // open end
		{time.Time{}, day0.Add(30*time.Minute + 123456789)},      // open start, mid-minute
		{day0.Add(-time.Hour), day0.Add(-time.Minute)},           // before everything
		{calls[100].TS, calls[100].TS.Add(1)},                    // one nanosecond
		{calls[2000].TS.Add(-time.Second), calls[2000].TS.Add(time.Second)},
	}
	for range 8 {
		a := day0.Add(time.Duration(r.Int64N(int64(3 * time.Hour))))
		windows = append(windows, [2]time.Time{a, a.Add(time.Duration(r.Int64N(int64(40 * time.Minute))))})
	}
	for _, w := range windows {
		for _, text := range []string{"", "proto:http", "latency_ms:>3"} {
			var want []*proto.Call
			for _, c := range calls {
				if inWindow(c, w[0], w[1]) && (text != "proto:http" || c.Proto == "http") &&
					(text != "latency_ms:>3" || c.LatencyNS > 3e6) {
					want = append(want, c)
				}
			}
			got, total := searchAll(t, ix, Query{From: w[0], To: w[1], Text: text, Limit: 400})
			if total != uint64(len(want)) || !slices.Equal(ids(got), ids(newestFirst(want))) {
				t.Errorf("window %v–%v %q: got %d calls (total %d), want %d", w[0], w[1], text, len(got), total, len(want))
			}
		}
	}
}

func TestPagination(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 500})
	calls := genCalls(3000, 11, 2*time.Hour)
	// Calls sharing a time, to exercise the tie-break on ID.
	for i := 1; i < len(calls); i += 7 {
		calls[i].TS = calls[i-1].TS
	}
	mustAdd(t, ix, calls)
	want := newestFirst(calls)
	for _, limit := range []int{3, 37, 50, 1000, 2999, 3000, 5000} {
		got, total := searchAll(t, ix, Query{Limit: limit})
		if total != 3000 || !slices.Equal(ids(got), ids(want)) {
			t.Errorf("limit %d: %d calls (total %d), not every call once in order", limit, len(got), total)
		}
	}
	// A narrowed search pages the same way.
	var wantHTTP []*proto.Call
	for _, c := range want {
		if c.Proto == "http" && matchFilter(c, Filter{Namespace: "shop"}) {
			wantHTTP = append(wantHTTP, c)
		}
	}
	got, total := searchAll(t, ix, Query{Text: "+proto:http", Filter: Filter{Namespace: "shop"}, Limit: 41})
	if total != uint64(len(wantHTTP)) || !slices.Equal(ids(got), ids(wantHTTP)) {
		t.Errorf("narrowed: %d calls (total %d), want %d", len(got), total, len(wantHTTP))
	}
	var wantDNS []*proto.Call
	for _, c := range want {
		if c.Proto == "dns" && c.Status != "NOERROR" {
			wantDNS = append(wantDNS, c)
		}
	}
	got, total = searchAll(t, ix, Query{Text: "+proto:dns -status:noerror", Limit: 1})
	if total != uint64(len(wantDNS)) || !slices.Equal(ids(got), ids(wantDNS)) || len(wantDNS) == 0 {
		t.Errorf("one by one: %d calls (total %d), want %d", len(got), total, len(wantDNS))
	}
	// The default page.
	res, err := ix.Search(context.Background(), Query{})
	if err != nil || len(res.Calls) != DefaultLimit || res.Next == "" {
		t.Errorf("default page: %d calls, next %q, err %v", len(res.Calls), res.Next, err)
	}
}

func TestGet(t *testing.T) {
	ix, _ := openTest(t, nil)
	calls := genCalls(500, 3, time.Hour)
	mustAdd(t, ix, calls)
	for _, c := range calls[:50] {
		got, err := ix.Get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.AppendJSON(nil)) != string(c.AppendJSON(nil)) {
			t.Errorf("get %s:\n got %s\nwant %s", c.ID, got.AppendJSON(nil), c.AppendJSON(nil))
		}
	}
	if _, err := ix.Get("no-such-call"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
}

func TestAddIdempotent(t *testing.T) {
	ix, _ := openTest(t, nil)
	calls := genCalls(800, 4, 2*time.Hour)
	mustAdd(t, ix, calls[:500])
	mustAdd(t, ix, calls)                           // 500 again, 300 new
	mustAdd(t, ix, append(calls[:10:10], calls...)) // duplicates within one Add
	if st := ix.Stats(); st.Calls != 800 {
		t.Errorf("stats: %d calls, want 800", st.Calls)
	}
	_, total := searchAll(t, ix, Query{Limit: 1000})
	if total != 800 {
		t.Errorf("search total %d, want 800", total)
	}
	sum, err := ix.Summarize(context.Background(), SummaryQuery{})
	if err != nil || sum.Calls != 800 {
		t.Errorf("summary: %d calls, err %v; want 800", sum.Calls, err)
	}
	if err := ix.Add(context.Background(), []*proto.Call{{Proto: "http"}}); err == nil {
		t.Error("a call without an ID was accepted")
	}
}

func TestBadQuery(t *testing.T) {
	ix, calls := searchFixture(t)
	_ = calls
	for _, text := range []string{
		`status:"500`,                   // unterminated quote
		"dst.service:checkout AND x",    // Lucene operator
		"a OR b",                        // Lucene operator
		"NOT status:200",                // Lucene operator
		"service:checkout",              // unknown field
		"_minute:0",                     // internal field
		"latency_ms:slow",               // not a number
		"latency_ms:fast*",              // wildcard on a number
		"src.pod:>3",                    // range on a text field
		`path:/[/`,                      // bad regular expression
		"ts:>\"2026-11-20T00:00:00Z\"",  // date range
		"status:",                       // no value
		"dst.service:checkout^boost^2x", // bad boost
	} {
		_, err := ix.Search(context.Background(), Query{Text: text})
		if !errors.Is(err, ErrBadQuery) {
			t.Errorf("%q: %v, want ErrBadQuery", text, err)
		} else {
			t.Logf("%q: %v", text, err)
		}
	}
	if _, err := ix.Search(context.Background(), Query{Cursor: "garbage"}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("bad cursor: %v, want ErrBadQuery", err)
	}
	if _, err := ix.Summarize(context.Background(), SummaryQuery{GroupBy: "colour"}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("bad group: %v, want ErrBadQuery", err)
	}
	// Words that look like operators are fine inside quotes and in
	// lower case.
	for _, text := range []string{`error:"AND"`, "and", "path:/api/or"} {
		if _, err := ix.Search(context.Background(), Query{Text: text}); err != nil {
			t.Errorf("%q: %v", text, err)
		}
	}
}
