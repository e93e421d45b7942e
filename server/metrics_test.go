package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/server"
	"github.com/wirescope/wirescope/tools"
)

// serveMetrics serves b as the hub does, with m recording tool calls and
// HTTP requests and, when path is set, serving the metrics there behind
// the token; it returns the server's base URL (the MCP endpoint is /mcp).
func serveMetrics(t testing.TB, b tools.Backend, m *server.Metrics, path string) string {
	t.Helper()
	h, err := server.Handler(server.New(b, server.WithMetrics(m)), server.HTTPOptions{Token: token, Metrics: m, MetricsPath: path})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.ServeHTTP(ctx, l, h, server.ServeOptions{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

// families are the metric families of a scrape.
type families map[string]*dto.MetricFamily

// scrape GETs url with the bearer token tok ("" for none) and parses the
// answer, which must be 200.
func scrape(t testing.TB, url, tok string) families {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: parsing: %v", url, err)
	}
	return fams
}

// metric returns the series of family name whose labels include labels.
func (f families) metric(name string, labels ...string) (*dto.Metric, bool) {
	fam, ok := f[name]
	if !ok {
		return nil, false
	}
next:
	for _, m := range fam.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value returns the value of a counter, gauge or untyped series, or NaN
// when there is none.
func (f families) value(name string, labels ...string) float64 {
	m, ok := f.metric(name, labels...)
	switch {
	case !ok:
		return math.NaN()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

// count returns a histogram series' sample count, or -1 when there is none.
func (f families) count(name string, labels ...string) int {
	m, ok := f.metric(name, labels...)
	if !ok || m.Histogram == nil {
		return -1
	}
	return int(m.Histogram.GetSampleCount())
}

// structured decodes a tool result's structured content into v.
func structured(t testing.TB, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

// TestMetrics: a real MCP client over streamable HTTP calls tools on the
// demo capture, and the hub's /metrics (behind the token on the main
// listener) then counts each call by tool and outcome with its latency and
// answer size in bytes, the dissection exactly as dissect reported it, the index as
// it is, the capture file as a source, the PCAP export, the session and
// the HTTP requests by class; the Go and process collectors and the build
// information are there.
func TestMetrics(t *testing.T) {
	ws := openDemo(t)
	m := server.NewMetrics(ws)
	base := serveMetrics(t, ws, m, "/metrics")

	// Without the token, or with another, the metrics are refused.
	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || len(body) != 0 {
			t.Errorf("GET /metrics with %q: %s, %d body bytes", auth, resp.Status, len(body))
		}
	}

	f := scrape(t, base+"/metrics", token)
	if v := f.value("wirescope_index_documents"); v != 0 {
		t.Errorf("index documents before any dissection: %v", v)
	}
	if _, ok := f["wirescope_tool_calls_total"]; ok {
		t.Errorf("tool calls counted before any call: %v", f["wirescope_tool_calls_total"])
	}
	if v := f.value("wirescope_http_requests_total", "code", "4xx"); v != 2 {
		t.Errorf("4xx requests after two refusals: %v", v)
	}

	c, err := httpClient(t, base+"/mcp", token, true) // revision 2025-11-25: a session
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	ok := func(name string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		calls[name]++
		text, res := call(t, c, name, args)
		if res.IsError {
			t.Fatalf("%s: %s", name, text)
		}
		return res
	}
	ok("capture_status", nil)
	var dis tools.DissectInfo
	structured(t, ok("dissect", nil), &dis)
	if dis.Packets == 0 || len(dis.Calls) == 0 {
		t.Fatalf("dissect: %+v", dis)
	}
	calls["summarize_traffic"]++
	summary, res := call(t, c, "summarize_traffic", nil)
	if res.IsError || !strings.Contains(summary, "503") {
		t.Fatalf("summarize_traffic: %s", summary)
	}
	ok("search_calls", map[string]any{"query": "outcome:server_error"})
	ok("dissect", nil) // already dissected: skipped
	var pcap tools.PCAPInfo
	structured(t, ok("get_pcap", map[string]any{"max_packets": 10}), &pcap)
	// An argument the tool refuses is an error the model can fix.
	if text, res := call(t, c, "search_calls", map[string]any{"limit": "ten"}); !res.IsError {
		t.Fatalf("search_calls with a bad limit: %s", text)
	}

	f = scrape(t, base+"/metrics", token)
	for name, n := range calls {
		if v := f.value("wirescope_tool_calls_total", "tool", name, "outcome", "ok"); v != float64(n) {
			t.Errorf("%s: %v calls ok, want %d", name, v, n)
		}
		want := n
		if name == "search_calls" {
			want++ // the refused one
		}
		if got := f.count("wirescope_tool_call_duration_seconds", "tool", name); got != want {
			t.Errorf("%s: latency histogram count %d, want %d", name, got, want)
		}
		if got := f.count("wirescope_tool_answer_bytes", "tool", name); got != want {
			t.Errorf("%s: answer size histogram count %d, want %d", name, got, want)
		}
	}
	if v := f.value("wirescope_tool_calls_total", "tool", "search_calls", "outcome", "error"); v != 1 {
		t.Errorf("search_calls refused: %v errors, want 1", v)
	}
	if _, ok := f.metric("wirescope_tool_calls_total", "tool", "list_flows"); ok {
		t.Error("list_flows counted, never called")
	}
	// The size histogram holds the answer's bytes.
	if m, _ := f.metric("wirescope_tool_answer_bytes", "tool", "summarize_traffic"); m.Histogram.GetSampleSum() != float64(len(summary)) {
		t.Errorf("summarize_traffic answer: %v bytes, the client got %d", m.Histogram.GetSampleSum(), len(summary))
	}

	// Dissection: exactly what dissect reported.
	if v := f.value("wirescope_dissections_total", "outcome", "dissected"); v != 1 {
		t.Errorf("dissections: %v, want 1", v)
	}
	if v := f.value("wirescope_dissections_total", "outcome", "skipped"); v != 1 {
		t.Errorf("skipped dissections: %v, want 1", v)
	}
	if v := f.value("wirescope_dissected_packets_total"); v != float64(dis.Packets) {
		t.Errorf("dissected packets %v, dissect said %d", v, dis.Packets)
	}
	var sum uint64
	for proto, n := range dis.Calls {
		sum += n
		if v := f.value("wirescope_dissected_calls_total", "protocol", proto); v != float64(n) {
			t.Errorf("dissected %s calls %v, dissect said %d", proto, v, n)
		}
	}
	if got := len(f["wirescope_dissected_calls_total"].GetMetric()); got != len(dis.Calls) {
		t.Errorf("%d protocols counted, dissect said %d", got, len(dis.Calls))
	}
	for problem, n := range map[string]uint64{"unanswered": dis.Unanswered, "truncated": dis.Truncated, "malformed": dis.Malformed} {
		if v := f.value("wirescope_dissected_problem_calls_total", "problem", problem); v != float64(n) {
			t.Errorf("%s calls %v, dissect said %d", problem, v, n)
		}
	}
	if v := f.value("wirescope_dissected_flows_total"); v != float64(dis.Flows) {
		t.Errorf("dissected flows %v, dissect said %d", v, dis.Flows)
	}
	if got := f.count("wirescope_dissect_duration_seconds"); got != 1 {
		t.Errorf("dissect duration histogram count %d, want 1", got)
	}

	// The index as it is.
	st := ws.Index().Stats()
	if v := f.value("wirescope_index_documents"); v != float64(st.Calls) || st.Calls != sum {
		t.Errorf("index documents %v; the index holds %d, dissect found %d", v, st.Calls, sum)
	}
	if v := f.value("wirescope_index_partitions"); v != float64(st.Partitions) || v < 1 {
		t.Errorf("index partitions %v, the index has %d", v, st.Partitions)
	}
	var disk int64
	for _, p := range ws.Index().Partitions() {
		disk += p.DiskBytes
	}
	if v := f.value("wirescope_index_disk_bytes"); v != float64(disk) || disk <= 0 {
		t.Errorf("index disk bytes %v, its partitions %d", v, disk)
	}

	// The capture file is a source, up.
	status, err := ws.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(status.Sources) != 1 {
		t.Fatalf("demo: %d sources", len(status.Sources))
	}
	src := status.Sources[0]
	l := []string{"source", src.Name, "kind", "pcap"}
	if v := f.value("wirescope_source_up", l...); v != 1 {
		t.Errorf("source %s up: %v", src.Name, v)
	}
	if v := f.value("wirescope_source_packets", l...); v != float64(src.Packets) || v == 0 {
		t.Errorf("source packets %v, status says %d", v, src.Packets)
	}
	if v := f.value("wirescope_source_bytes", l...); v != float64(src.Bytes) {
		t.Errorf("source bytes %v, status says %d", v, src.Bytes)
	}
	if v := f.value("wirescope_source_drops", l...); v != 0 {
		t.Errorf("source drops %v", v)
	}
	if v := f.value("wirescope_source_last_packet_timestamp_seconds", l...); math.Abs(v-float64(src.Last.UnixNano())/1e9) > 1e-6 {
		t.Errorf("source last packet %v, status says %s", v, src.Last)
	}
	if _, ok := f.metric("wirescope_source_last_contact_timestamp_seconds"); ok {
		t.Error("a capture file has a last contact")
	}
	if f.value("wirescope_status_ok") != 1 || f.value("wirescope_sources") != 1 || f.value("wirescope_source_series_omitted") != 0 {
		t.Errorf("status ok %v, sources %v, omitted %v", f.value("wirescope_status_ok"), f.value("wirescope_sources"),
			f.value("wirescope_source_series_omitted"))
	}

	// The export.
	if v := f.value("wirescope_pcap_exports_total", "outcome", "ok"); v != 1 {
		t.Errorf("exports %v", v)
	}
	if v := f.value("wirescope_pcap_exported_packets_total"); v != float64(pcap.Packets) || v != 10 {
		t.Errorf("exported packets %v, get_pcap said %d", v, pcap.Packets)
	}
	if v := f.value("wirescope_pcap_exported_bytes_total"); v != float64(pcap.Size) {
		t.Errorf("exported bytes %v, get_pcap said %d", v, pcap.Size)
	}

	// One session; HTTP requests; build; runtime and process.
	if v := f.value("wirescope_mcp_sessions"); v != 1 {
		t.Errorf("sessions: %v, want 1", v)
	}
	if v := f.value("wirescope_http_requests_total", "code", "2xx"); v < float64(len(calls)+2) {
		t.Errorf("2xx requests: %v", v)
	}
	if v := f.value("wirescope_http_requests_total", "code", "4xx"); v != 2 {
		t.Errorf("4xx requests: %v, want 2", v)
	}
	if v := f.value("wirescope_build_info", "version", server.Version()); v != 1 {
		t.Errorf("build info: %v", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	// The session ends with a DELETE: the gauge follows. (mcp-go's
	// client sends its DELETE on Close without the headers it was given,
	// so the hub refuses it for want of the token: the test sends one.)
	req, _ := http.NewRequest(http.MethodDelete, base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", c.GetSessionId())
	req.Header.Set("Mcp-Protocol-Version", c.ProtocolVersion())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE of the session: %s", resp.Status)
	}
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, base+"/metrics", token).value("wirescope_mcp_sessions") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the closed session is still counted after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsListener: Metrics.Handler serves the same metrics without a
// token, for a listener of their own (--metrics-listen), while the MCP
// endpoint's listener, not given MetricsPath, has no /metrics at all.
func TestMetricsListener(t *testing.T) {
	ws := openDemo(t)
	m := server.NewMetrics(ws)
	base := serveMetrics(t, ws, m, "")
	prom := httptest.NewServer(m.Handler())
	defer prom.Close()

	c, err := httpClient(t, base+"/mcp", token, false)
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, c, "capture_status", nil)
	f := scrape(t, prom.URL+"/metrics", "")
	if v := f.value("wirescope_tool_calls_total", "tool", "capture_status", "outcome", "ok"); v != 1 {
		t.Errorf("capture_status calls: %v", v)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the MCP listener without MetricsPath: %s", resp.Status)
	}
	if _, err := server.Handler(server.New(ws), server.HTTPOptions{Token: token, Metrics: m, MetricsPath: "/mcp"}); err == nil {
		t.Error("metrics at the MCP endpoint's path accepted")
	}
}

// TestMetricsCancelled: a dissect the client cancels counts as cancelled,
// and its Dissect as an error, with nothing dissected counted.
func TestMetricsCancelled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 2000, Requests: 25}); err != nil {
		t.Fatal(err)
	}
	ws := openWorkspace(t, path)
	m := server.NewMetrics(ws)
	base := serveMetrics(t, ws, m, "/metrics")
	c, err := httpClient(t, base+"/mcp", token, false)
	if err != nil {
		t.Fatal(err)
	}
	progress := make(chan struct{}, 1)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "dissect",
			Meta: &mcp.Meta{ProgressToken: "cancel-me"}}})
		done <- err
	}()
	select {
	case <-progress:
	case err := <-done:
		t.Fatalf("dissect ended (%v) before any progress", err)
	case <-time.After(time.Minute):
		t.Fatal("no progress in a minute")
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled dissect returned a result")
	}
	// The server's handler ends after the client's call: wait for both
	// counts (a scrape reads collectors concurrently, so one scrape can
	// see the tool's count and not yet the Dissect's, counted just
	// before it).
	deadline := time.Now().Add(30 * time.Second)
	var f families
	for {
		f = scrape(t, base+"/metrics", token)
		if f.value("wirescope_tool_calls_total", "tool", "dissect", "outcome", "cancelled") == 1 &&
			f.value("wirescope_dissections_total", "outcome", "error") == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cancelled dissect and failed Dissect counted in 30 s: %v %v", f["wirescope_tool_calls_total"],
				f["wirescope_dissections_total"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, outcome := range []string{"ok", "error"} {
		if _, ok := f.metric("wirescope_tool_calls_total", "tool", "dissect", "outcome", outcome); ok {
			t.Errorf("the cancelled dissect counted %s too", outcome)
		}
	}
	for _, outcome := range []string{"dissected", "skipped"} {
		if v := f.value("wirescope_dissections_total", "outcome", outcome); v != 0 {
			t.Errorf("the cancelled Dissect counted %s: %v", outcome, v)
		}
	}
	if v := f.value("wirescope_dissected_packets_total"); v != 0 {
		t.Errorf("dissected packets after a cancelled dissect: %v", v)
	}
}

// capBackend is the demo workspace with the sources of a cluster of n
// agents in its status, as a hub over agents reports them: the Status of
// the real workspace with agents added, for what a capture file cannot
// show (states, last contact, names repeated or not UTF-8).
type capBackend struct {
	tools.Backend
	agents []tools.Source
	calls  *atomic.Int32 // Status calls
}

func (b capBackend) Status(ctx context.Context) (tools.Status, error) {
	b.calls.Add(1)
	st, err := b.Backend.Status(ctx)
	st.Sources = append(st.Sources, b.agents...)
	return st, err
}

// TestMetricsSources: agents' states and last contact are exported; over
// the cap the unreachable ones are kept and the rest counted as omitted;
// a repeated name or one that is not UTF-8 does not fail the scrape.
func TestMetricsSources(t *testing.T) {
	contact := time.Date(2026, 12, 4, 14, 2, 0, 0, time.UTC)
	var agents []tools.Source
	for i := range 30 {
		s := tools.Source{Name: fmt.Sprintf("node-%02d", i), Kind: "agent", State: "up", LastContact: contact.Add(time.Minute),
			Packets: uint64(i), Drops: uint64(i % 3)}
		if i%10 == 7 {
			s.State, s.LastContact = "unreachable", contact
		}
		agents = append(agents, s)
	}
	agents = append(agents, tools.Source{Name: "node-07", Kind: "agent", State: "up"}, // a name again
		tools.Source{Name: "bad\xff", Kind: "agent", State: "unreachable"})
	ws := openDemo(t)
	var calls atomic.Int32
	m := server.NewMetrics(capBackend{Backend: ws, agents: agents, calls: &calls})
	m.MaxSources = 10
	m.StatusEvery = time.Hour
	prom := httptest.NewServer(m.Handler())
	defer prom.Close()
	f := scrape(t, prom.URL, "")
	// A second scrape within StatusEvery reuses the status.
	if f2 := scrape(t, prom.URL, ""); calls.Load() != 1 || f2.value("wirescope_source_up", "source", "node-17") != 0 {
		t.Errorf("two scrapes: %d Status calls, want 1", calls.Load())
	}

	if v := f.value("wirescope_sources"); v != 33 {
		t.Errorf("sources %v, want 33 (the file and 32 agents)", v)
	}
	if v := f.value("wirescope_source_series_omitted"); v != 23 {
		t.Errorf("omitted %v, want 23", v)
	}
	if got := len(f["wirescope_source_up"].GetMetric()); got != 10 {
		t.Errorf("%d sources exported, want 10", got)
	}
	for _, name := range []string{"node-07", "node-17", "node-27", "bad\uFFFD"} {
		l := []string{"source", name, "kind", "agent"}
		if v := f.value("wirescope_source_up", l...); v != 0 {
			t.Errorf("%s up: %v, want 0", name, v)
		}
		if v := f.value("wirescope_source_state", append(l, "state", "unreachable")...); v != 1 {
			t.Errorf("%s state: %v", name, v)
		}
	}
	if v := f.value("wirescope_source_last_contact_timestamp_seconds", "source", "node-17"); v != float64(contact.Unix()) {
		t.Errorf("node-17 last contact %v, want %d", v, contact.Unix())
	}
	if v := f.value("wirescope_source_drops", "source", "node-17"); v != 2 {
		t.Errorf("node-17 drops %v", v)
	}
	// The healthy ones that fit, by name: the file ("shop…") sorts after
	// "node-…", so the six slots left hold node-00 … node-05.
	for i := range 6 {
		if v := f.value("wirescope_source_up", "source", fmt.Sprintf("node-%02d", i)); v != 1 {
			t.Errorf("node-%02d up: %v", i, v)
		}
	}
	if _, ok := f.metric("wirescope_source_up", "source", "node-06"); ok {
		t.Error("node-06 exported over the cap")
	}

	// Without the cap, the repeated name gets a series of its own; with
	// StatusEvery negative, every scrape reads the status.
	calls.Store(0)
	m = server.NewMetrics(capBackend{Backend: ws, agents: agents, calls: &calls})
	m.StatusEvery = -1
	prom2 := httptest.NewServer(m.Handler())
	defer prom2.Close()
	scrape(t, prom2.URL, "")
	f = scrape(t, prom2.URL, "")
	if calls.Load() != 2 {
		t.Errorf("two scrapes without reuse: %d Status calls, want 2", calls.Load())
	}
	if v := f.value("wirescope_source_up", "source", "node-07#2"); v != 1 {
		t.Errorf("node-07#2 up: %v", v)
	}
	if got := len(f["wirescope_source_up"].GetMetric()); got != 33 {
		t.Errorf("%d sources exported, want 33", got)
	}
}

// TestMetricsTrickleRefused: with requests counted (the answer writer
// wrapped), a client without the token trickling its body still gets 401
// at once and its connection closed (bearer.Hangup reaches the connection
// through the wrapper's Unwrap), and the refusal is counted.
func TestMetricsTrickleRefused(t *testing.T) {
	ws := openDemo(t)
	m := server.NewMetrics(ws)
	base := serveMetrics(t, ws, m, "/metrics") // body timeout 30 s: longer than the test
	stop := make(chan struct{})
	defer close(stop)
	for _, length := range []int{100_000, -1} {
		c := rawRequest(t, base+"/mcp", "Bearer wrong", length, "")
		go trickle(c, 200*time.Millisecond, length < 0, stop)
		resp := readStatus(t, c, 3*time.Second)
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("length %d: %s, close %v", length, resp.Status, resp.Close)
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("length %d: the connection is still open 3 s after the 401", length)
			}
		}
	}
	if v := scrape(t, base+"/metrics", token).value("wirescope_http_requests_total", "code", "4xx"); v != 2 {
		t.Errorf("4xx requests: %v, want 2", v)
	}
}

// TestMetricsSameAnswers: with metrics, the tools see an instrumented
// backend; clients must see the same tools and answers as without (a tool
// that looked for an optional interface on the backend, without
// unwrapping it, would lose it and fail here).
func TestMetricsSameAnswers(t *testing.T) {
	ws := openDemo(t)
	mustCall(t, connect(t, ws), "dissect", nil)
	plain := connect(t, ws)
	c, err := client.NewInProcessClient(server.New(ws, server.WithMetrics(server.NewMetrics(ws))))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "wirescope-test", Version: "0"}}}); err != nil {
		t.Fatal(err)
	}
	list := func(c *client.Client) string {
		tl, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tl.Tools)
		return string(b)
	}
	if a, b := list(plain), list(c); a != b || len(a) < 1000 {
		t.Errorf("tools/list differs with metrics:\n%s\n%s", a, b)
	}
	for _, tc := range []struct {
		name string
		args map[string]any
	}{
		{"capture_status", nil}, {"list_flows", nil}, {"summarize_traffic", nil},
		{"search_calls", map[string]any{"query": "outcome:server_error"}}, {"service_map", nil}, {"list_workloads", nil},
	} {
		if a, b := mustCall(t, plain, tc.name, tc.args), mustCall(t, c, tc.name, tc.args); a != b {
			t.Errorf("%s differs with metrics:\n%s\n---\n%s", tc.name, a, b)
		}
	}
}

// TestInstrumentedBackend: the backend the tools see unwraps to the one
// given, so an optional interface (Holder) is still found through Unwrap.
func TestInstrumentedBackend(t *testing.T) {
	ws := openDemo(t)
	wrapped := server.InstrumentBackend(ws, server.NewMetrics(ws))
	if wrapped == tools.Backend(ws) {
		t.Fatal("not wrapped")
	}
	if server.Unwrap(wrapped) != tools.Backend(ws) || server.Unwrap(ws) != tools.Backend(ws) {
		t.Error("Unwrap does not return the workspace")
	}
	if server.InstrumentBackend(ws, nil) != tools.Backend(ws) {
		t.Error("wrapped without metrics")
	}
}

// BenchmarkScrape measures a scrape of a hub holding a dissected capture
// of 2,000 connections (50,000 calls): the index's size and the capture
// status (every flow walked) read afresh each time, as at the first scrape
// after StatusEvery.
func BenchmarkScrape(b *testing.B) {
	path := filepath.Join(b.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 2000, Requests: 25}); err != nil {
		b.Fatal(err)
	}
	ws := openWorkspace(b, path)
	mustCall(b, connect(b, ws), "dissect", nil)
	m := server.NewMetrics(ws)
	m.StatusEvery = -1
	h := m.Handler()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkToolOverhead measures what recording adds to a tool call:
// capture_status on the demo through an in-process client, with and
// without metrics (counters, histograms, the answer's size).
func BenchmarkToolOverhead(b *testing.B) {
	ws := openDemo(b)
	for _, with := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", with), func(b *testing.B) {
			var opts []server.Option
			if with {
				opts = append(opts, server.WithMetrics(server.NewMetrics(ws)))
			}
			c, err := client.NewInProcessClient(server.New(ws, opts...))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if err := c.Start(ctx); err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
				ClientInfo: mcp.Implementation{Name: "bench", Version: "0"}}}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				mustCall(b, c, "capture_status", nil)
			}
		})
	}
}
