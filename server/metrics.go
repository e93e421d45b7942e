package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wirescope/wirescope/tools"
)

// Defaults of Metrics.
const (
	// DefaultMaxSources bounds the capture sources (files, agents) exported
	// per scrape, so that a cluster of many nodes cannot grow the series
	// without bound; those left out are counted in
	// wirescope_source_series_omitted.
	DefaultMaxSources = 1000
	// DefaultStatusTimeout bounds the Backend.Status call a scrape makes
	// (a hub over agents asks them).
	DefaultStatusTimeout = 3 * time.Second
	// DefaultStatusEvery is how long a scrape reuses the capture status
	// an earlier one read: Backend.Status walks every flow of a
	// workspace, and a hub over agents asks each of them, so scraping
	// faster (or a client hammering an unauthenticated metrics listener)
	// must not multiply that work.
	DefaultStatusEvery = 5 * time.Second
)

// maxLabelBytes bounds a label value taken from data (a source's name).
const maxLabelBytes = 256

// Metrics are the hub's Prometheus metrics: tool calls, dissection and PCAP
// exports, the index's size, the capture sources and their state, HTTP
// requests and MCP sessions, build information, and the Go runtime's and
// the process's. Give it to New (WithMetrics) to record tool calls and
// dissection, and to Handler (HTTPOptions.Metrics) to count requests and
// sessions; Handler serves the scrape endpoint. Its registry is its own,
// not Prometheus's global one.
type Metrics struct {
	// MaxSources bounds the sources exported per scrape (the unhealthy
	// ones first); 0 means DefaultMaxSources. Set it before the first
	// scrape.
	MaxSources int
	// StatusTimeout bounds the Backend.Status call of a scrape; 0 means
	// DefaultStatusTimeout. Set it before the first scrape.
	StatusTimeout time.Duration
	// StatusEvery is how long the capture status read by a scrape is
	// reused by the next ones; 0 means DefaultStatusEvery, negative
	// never. The index's size is read at every scrape.
	StatusEvery time.Duration

	reg *prometheus.Registry

	toolCalls   *prometheus.CounterVec
	toolSeconds *prometheus.HistogramVec
	toolBytes   *prometheus.HistogramVec

	dissections     *prometheus.CounterVec
	dissectWindows  prometheus.Counter
	dissectPackets  prometheus.Counter
	dissectCalls    *prometheus.CounterVec
	dissectProblems *prometheus.CounterVec
	dissectFlows    prometheus.Counter
	dissectMerged   prometheus.Counter
	dissectSeconds  prometheus.Histogram

	exports        *prometheus.CounterVec
	exportPackets  prometheus.Counter
	exportBytes    prometheus.Counter
	httpRequests   *prometheus.CounterVec
	sessionsMu     sync.Mutex
	sessionCounts  []func() int
	backendMetrics *backendCollector
}

// Outcomes of a tool call, the values of wirescope_tool_calls_total's
// outcome label.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomeCancelled = "cancelled"
)

// NewMetrics returns the metrics of a hub serving b. b may be nil: then
// only what does not read the backend (tool calls, HTTP, build, runtime)
// is exported.
func NewMetrics(b tools.Backend) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.toolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_tool_calls_total",
		Help: "MCP tool calls finished, by tool and outcome (ok; error: a Go error or an answer with isError, such as bad arguments; cancelled: the client cancelled or went away)."},
		[]string{"tool", "outcome"})
	m.toolSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wirescope_tool_call_duration_seconds",
		Help:    "Time to answer an MCP tool call, by tool, including on-demand dissection and waiting for a growing capture to be read again.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}},
		[]string{"tool"})
	// Bytes, not tokens: counting o200k_base tokens costs about 2.5 µs
	// a token (0.5 ms for capture_status's answer, 80 ms for one of
	// 32,000 tokens), on top of the tool's own counting; English text
	// and the tools' tables run 3 to 4 bytes a token.
	m.toolBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "wirescope_tool_answer_bytes",
		Help:    "Size of a tool call's text answer in bytes (max_tokens bounds it in tokens, about 3 to 4 bytes each), by tool.",
		Buckets: prometheus.ExponentialBuckets(256, 2, 11)}, // 256 B … 256 KiB
		[]string{"tool"})
	m.dissections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_dissections_total",
		Help: "Backend.Dissect calls (the dissect tool, and tools dissecting a window on demand), by outcome: dissected (at least one window), skipped (all already dissected), error."},
		[]string{"outcome"})
	m.dissectWindows = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_dissected_windows_total",
		Help: "Time windows dissected."})
	m.dissectPackets = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_dissected_packets_total",
		Help: "Packets in the windows dissected."})
	m.dissectCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_dissected_calls_total",
		Help: "Calls dissected and indexed, by protocol; its rate is the indexing rate."}, []string{"protocol"})
	m.dissectProblems = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_dissected_problem_calls_total",
		Help: "Calls dissected with a problem: unanswered (no response), truncated (capture gaps), malformed."}, []string{"problem"})
	m.dissectMerged = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_dissected_calls_merged_total",
		Help: "Calls captured on two nodes (the client's and the server's) and counted once."})
	m.dissectFlows = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_dissected_flows_total",
		Help: "Flows seen in the windows dissected."})
	m.dissectSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "wirescope_dissect_duration_seconds",
		Help:    "Time a Backend.Dissect call that dissected at least one window took.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}})
	m.exports = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_pcap_exports_total",
		Help: "PCAP files written for get_pcap, by outcome (ok, error)."}, []string{"outcome"})
	m.exportPackets = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_pcap_exported_packets_total",
		Help: "Packets written to PCAP files for get_pcap."})
	m.exportBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "wirescope_pcap_exported_bytes_total",
		Help: "Bytes of the PCAP files written for get_pcap."})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wirescope_http_requests_total",
		Help: "HTTP requests the MCP endpoint answered, by status class (2xx, 4xx: 401 without the token among them, …)."},
		[]string{"code"})
	sessions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "wirescope_mcp_sessions",
		Help: "MCP sessions open (protocol revision 2025-11-25; 2026-07-28 has none)."}, m.openSessions)
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "wirescope_build_info",
		Help: "Always 1; the labels say which wirescope runs.", ConstLabels: prometheus.Labels{"version": Version()}})
	build.Set(1)
	m.reg.MustRegister(m.toolCalls, m.toolSeconds, m.toolBytes, m.dissections, m.dissectWindows, m.dissectPackets,
		m.dissectCalls, m.dissectProblems, m.dissectFlows, m.dissectMerged, m.dissectSeconds, m.exports, m.exportPackets, m.exportBytes,
		m.httpRequests, sessions, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Series that are 0 until something happens exist from the start, so
	// that rate() and absent() work on a hub that has done nothing yet.
	for _, o := range []string{"dissected", "skipped", "error"} {
		m.dissections.WithLabelValues(o)
	}
	for _, p := range []string{"unanswered", "truncated", "malformed"} {
		m.dissectProblems.WithLabelValues(p)
	}
	for _, o := range []string{OutcomeOK, OutcomeError} {
		m.exports.WithLabelValues(o)
	}
	if b != nil {
		m.backendMetrics = &backendCollector{m: m, b: b}
		m.reg.MustRegister(m.backendMetrics)
	}
	return m
}

// Handler serves the metrics in Prometheus's text and OpenMetrics formats,
// without authentication: wrap it, or serve it on a listener only
// Prometheus reaches (HTTPOptions.MetricsPath serves it behind the token).
// At most 4 scrapes run at once; a scrape that cannot gather a metric
// serves the others rather than failing with a 500.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, Timeout: 30 * time.Second})
}

// Registry is the registry the metrics are in, for adding more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServerOptions returns the mcp-go options that record tool calls. New
// with WithMetrics uses them, and instruments dissection as well; use
// ServerOptions only for an MCPServer made otherwise.
func (m *Metrics) ServerOptions() []mcpserver.ServerOption {
	return []mcpserver.ServerOption{mcpserver.WithToolHandlerMiddleware(m.recordTool)}
}

// recordTool records a tool call's outcome, time and answer size.
func (m *Metrics) recordTool(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		start := time.Now()
		res, err := next(ctx, req)
		name := req.Params.Name // a registered tool: mcp-go refuses others before handlers run
		m.toolSeconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
		outcome := OutcomeOK
		if err != nil || (res != nil && res.IsError) {
			outcome = OutcomeError
			if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) {
				outcome = OutcomeCancelled
			}
		}
		m.toolCalls.WithLabelValues(name, outcome).Inc()
		if err == nil && res != nil {
			n := 0
			for _, c := range res.Content {
				if t, ok := c.(mcp.TextContent); ok {
					n += len(t.Text)
				}
			}
			m.toolBytes.WithLabelValues(name).Observe(float64(n))
		}
		return res, err
	}
}

// InstrumentBackend returns b with its Dissect and WritePCAP calls
// recorded in m. The result is a tools.Backend and nothing more: New
// gives it to the tools only and keeps b for its own type assertions
// (Holder), and the result's Unwrap returns b, for code that looks for
// another interface on a backend (see Unwrap).
func InstrumentBackend(b tools.Backend, m *Metrics) tools.Backend {
	if m == nil {
		return b
	}
	return &instrumented{Backend: b, m: m}
}

// Unwrap returns the backend InstrumentBackend wrapped, or b itself.
// Check a backend for an optional interface on Unwrap(b).
func Unwrap(b tools.Backend) tools.Backend {
	for {
		u, ok := b.(interface{ Unwrap() tools.Backend })
		if !ok {
			return b
		}
		b = u.Unwrap()
	}
}

type instrumented struct {
	tools.Backend
	m *Metrics
}

func (i *instrumented) Unwrap() tools.Backend { return i.Backend }

func (i *instrumented) Dissect(ctx context.Context, from, to time.Time, progress func(done, total uint64)) (tools.DissectResult, error) {
	res, err := i.Backend.Dissect(ctx, from, to, progress)
	i.m.recordDissect(res, err)
	return res, err
}

func (i *instrumented) WritePCAP(ctx context.Context, from, to time.Time, f tools.Filter, maxPackets int) (tools.PCAPFile, error) {
	file, err := i.Backend.WritePCAP(ctx, from, to, f, maxPackets)
	if err != nil {
		i.m.exports.WithLabelValues(OutcomeError).Inc()
		return file, err
	}
	i.m.exports.WithLabelValues(OutcomeOK).Inc()
	i.m.exportPackets.Add(float64(file.Packets))
	i.m.exportBytes.Add(float64(max(file.Size, 0)))
	return file, nil
}

// recordDissect counts what a Dissect call did. A failed call counts as an
// error only: what it got through is not committed.
func (m *Metrics) recordDissect(res tools.DissectResult, err error) {
	switch {
	case err != nil:
		m.dissections.WithLabelValues("error").Inc()
		return
	case len(res.Dissected) == 0:
		m.dissections.WithLabelValues("skipped").Inc()
		return
	}
	m.dissections.WithLabelValues("dissected").Inc()
	m.dissectWindows.Add(float64(len(res.Dissected)))
	m.dissectPackets.Add(float64(res.Packets))
	for proto, n := range res.Calls {
		m.dissectCalls.WithLabelValues(proto).Add(float64(n))
	}
	m.dissectProblems.WithLabelValues("unanswered").Add(float64(res.Unanswered))
	m.dissectProblems.WithLabelValues("truncated").Add(float64(res.Truncated))
	m.dissectProblems.WithLabelValues("malformed").Add(float64(res.Malformed))
	m.dissectFlows.Add(float64(res.Flows))
	m.dissectMerged.Add(float64(res.Merged))
	m.dissectSeconds.Observe(res.Took.Seconds())
}

// addSessions adds a count of open sessions to wirescope_mcp_sessions.
func (m *Metrics) addSessions(count func() int) {
	m.sessionsMu.Lock()
	m.sessionCounts = append(m.sessionCounts, count)
	m.sessionsMu.Unlock()
}

func (m *Metrics) openSessions() float64 {
	m.sessionsMu.Lock()
	counts := slices.Clone(m.sessionCounts)
	m.sessionsMu.Unlock()
	n := 0
	for _, c := range counts {
		n += c()
	}
	return float64(n)
}

// countRequests counts the answers of h by status class.
func (m *Metrics) countRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			code := sw.code
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			m.httpRequests.WithLabelValues(statusClass(code)).Inc()
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusClass returns "2xx" for 200 and so on.
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return fmt.Sprintf("%dxx", code/100)
}

// statusWriter notes the status an answer gets. Unwrap gives
// http.ResponseController (read deadlines, flushing) the writer beneath.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush serves SSE answers, which mcp-go flushes through http.Flusher.
func (s *statusWriter) Flush() {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// backendCollector reads the backend at scrape time: the index's size and
// the capture sources with their state. It does not Hold a Holder: a
// scrape must not make a growing capture be read again (a tool call does),
// and Status and Index are safe on a workspace being swapped out (its
// closed index reports no partitions).
type backendCollector struct {
	m *Metrics
	b tools.Backend
	// mu serializes scrapes' Status calls: a hub over agents asks each.
	mu sync.Mutex
	// The last status read, when, and how long it took.
	st   tools.Status
	err  error
	at   time.Time
	took time.Duration
}

// status returns the backend's status, read again when the last one is
// older than StatusEvery.
func (c *backendCollector) status() (tools.Status, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	every := c.m.StatusEvery
	if every == 0 {
		every = DefaultStatusEvery
	}
	if !c.at.IsZero() && time.Since(c.at) < every {
		return c.st, c.took, c.err
	}
	timeout := c.m.StatusTimeout
	if timeout <= 0 {
		timeout = DefaultStatusTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	c.st, c.err = c.b.Status(ctx)
	c.at = time.Now()
	c.took = c.at.Sub(start)
	return c.st, c.took, c.err
}

var (
	indexDocsDesc = prometheus.NewDesc("wirescope_index_documents",
		"Calls the index holds (all partitions); 0 before the first dissection.", nil, nil)
	indexBytesDesc = prometheus.NewDesc("wirescope_index_disk_bytes",
		"Bytes the index's files take on disk (call stores, Bleve indexes, aggregates).", nil, nil)
	indexPartsDesc = prometheus.NewDesc("wirescope_index_partitions",
		"Time partitions of the index.", nil, nil)
	statusOKDesc = prometheus.NewDesc("wirescope_status_ok",
		"1 when the capture status (Backend.Status) could be read in time, else 0 and no source series.", nil, nil)
	statusSecondsDesc = prometheus.NewDesc("wirescope_status_duration_seconds",
		"Time the last Backend.Status call took (scrapes reuse its answer for a few seconds).", nil, nil)
	sourcesDesc = prometheus.NewDesc("wirescope_sources",
		"Capture sources (files, agents) the hub reads, exported or not.", nil, nil)
	omittedDesc = prometheus.NewDesc("wirescope_source_series_omitted",
		"Sources left out of this scrape's wirescope_source_* series over the cap (healthy ones are left out first).", nil, nil)
	sourceLabels  = []string{"source", "kind"}
	sourceUpDesc  = prometheus.NewDesc("wirescope_source_up", "1 when the source answers (state up, or a file), else 0.", sourceLabels, nil)
	sourceStateDs = prometheus.NewDesc("wirescope_source_state", "Always 1; the state label is the source's state (up, unreachable, …; \"\" for a file).",
		append(slices.Clone(sourceLabels), "state"), nil)
	sourceContactDesc = prometheus.NewDesc("wirescope_source_last_contact_timestamp_seconds",
		"When the source last answered (absent for files and sources never reached).", sourceLabels, nil)
	sourcePacketsDesc = prometheus.NewDesc("wirescope_source_packets", "Packets the source holds.", sourceLabels, nil)
	sourceBytesDesc   = prometheus.NewDesc("wirescope_source_bytes", "Bytes of packets the source holds.", sourceLabels, nil)
	sourceDropsDesc   = prometheus.NewDesc("wirescope_source_drops", "Packets the source's capture lost (0 for files: unknown).", sourceLabels, nil)
	sourceFirstDesc   = prometheus.NewDesc("wirescope_source_first_packet_timestamp_seconds",
		"Time of the oldest packet the source holds (absent when it holds none).", sourceLabels, nil)
	sourceLastDesc = prometheus.NewDesc("wirescope_source_last_packet_timestamp_seconds",
		"Time of the newest packet the source holds (absent when it holds none).", sourceLabels, nil)
)

func (c *backendCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{indexDocsDesc, indexBytesDesc, indexPartsDesc, statusOKDesc, statusSecondsDesc,
		sourcesDesc, omittedDesc, sourceUpDesc, sourceStateDs, sourceContactDesc, sourcePacketsDesc, sourceBytesDesc,
		sourceDropsDesc, sourceFirstDesc, sourceLastDesc} {
		ch <- d
	}
}

func (c *backendCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var docs, bytes uint64
	var parts int
	if ix := c.b.Index(); ix != nil {
		for _, p := range ix.Partitions() {
			docs += p.Calls
			bytes += uint64(max(p.DiskBytes, 0))
			parts++
		}
	}
	gauge(indexDocsDesc, float64(docs))
	gauge(indexBytesDesc, float64(bytes))
	gauge(indexPartsDesc, float64(parts))

	st, took, err := c.status()
	gauge(statusSecondsDesc, took.Seconds())
	if err != nil {
		gauge(statusOKDesc, 0)
		return
	}
	gauge(statusOKDesc, 1)
	limit := c.m.MaxSources
	if limit <= 0 {
		limit = DefaultMaxSources
	}
	srcs, omitted := pickSources(st.Sources, limit)
	gauge(sourcesDesc, float64(len(st.Sources)))
	gauge(omittedDesc, float64(omitted))
	for _, s := range srcs {
		l := []string{s.name, labelValue(s.Kind)}
		up := 0.0
		if sourceUp(s.Source) {
			up = 1
		}
		gauge(sourceUpDesc, up, l...)
		gauge(sourceStateDs, 1, append(l, labelValue(s.State))...)
		gauge(sourcePacketsDesc, float64(s.Packets), l...)
		gauge(sourceBytesDesc, float64(s.Bytes), l...)
		gauge(sourceDropsDesc, float64(s.Drops), l...)
		if !s.LastContact.IsZero() {
			gauge(sourceContactDesc, unixSeconds(s.LastContact), l...)
		}
		if !s.First.IsZero() {
			gauge(sourceFirstDesc, unixSeconds(s.First), l...)
		}
		if !s.Last.IsZero() {
			gauge(sourceLastDesc, unixSeconds(s.Last), l...)
		}
	}
}

// sourceUp reports whether a source answers: its state is up, or it has
// none (a capture file).
func sourceUp(s tools.Source) bool { return s.State == "" || s.State == "up" }

type namedSource struct {
	tools.Source
	name string // the source label: unique, valid UTF-8, bounded
}

// pickSources returns at most limit sources to export, the ones not up
// first, then by name, each with a unique label value (a name seen again
// gets "#2", "#3", …: two series with the same labels would fail the
// scrape), and how many it left out.
func pickSources(srcs []tools.Source, limit int) ([]namedSource, int) {
	out := make([]namedSource, 0, len(srcs))
	used := make(map[[2]string]bool, len(srcs))
	for _, s := range srcs {
		name, kind := labelValue(s.Name), labelValue(s.Kind)
		for n := 2; used[[2]string{name, kind}]; n++ {
			name = fmt.Sprintf("%s#%d", labelValue(s.Name), n)
		}
		used[[2]string{name, kind}] = true
		out = append(out, namedSource{Source: s, name: name})
	}
	slices.SortStableFunc(out, func(a, b namedSource) int {
		if ua, ub := sourceUp(a.Source), sourceUp(b.Source); ua != ub {
			if ub {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.name, b.name)
	})
	if len(out) <= limit {
		return out, 0
	}
	return out[:limit], len(out) - limit
}

// labelValue makes s a label value: valid UTF-8 (Prometheus refuses
// others) of at most maxLabelBytes bytes.
func labelValue(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxLabelBytes {
		return s
	}
	cut := maxLabelBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
