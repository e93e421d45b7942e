package index

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/indextest"
)

// day0 is where generated calls start.
var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// testLogger logs through t.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// logRecorder is a slog handler that keeps the messages it gets.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// openTest opens an index in a temporary directory, closed at cleanup.
func openTest(t testing.TB, opts *Options) (*Index, string) {
	t.Helper()
	dir := t.TempDir()
	ix, err := Open(dir, testLogger(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix, dir
}

// genCalls returns n generated calls over span from day0.
func genCalls(n int, seed uint64, span time.Duration) []*proto.Call {
	return indextest.Generate(n, indextest.Options{Seed: seed, Start: day0, Span: span, Bodies: true})
}

func mustAdd(t testing.TB, ix *Index, calls []*proto.Call) {
	t.Helper()
	if err := ix.Add(context.Background(), calls); err != nil {
		t.Fatal(err)
	}
}

// searchAll returns every call matching q, following cursors.
func searchAll(t testing.TB, ix *Index, q Query) ([]*proto.Call, uint64) {
	t.Helper()
	var out []*proto.Call
	var total uint64
	for page := 0; ; page++ {
		res, err := ix.Search(context.Background(), q)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		if page == 0 {
			total = res.Total
		} else if res.Total != total {
			t.Fatalf("search %+v: page %d total %d, first page %d", q, page, res.Total, total)
		}
		out = append(out, res.Calls...)
		if res.Next == "" {
			return out, total
		}
		if limit := cmp.Or(q.Limit, DefaultLimit); len(res.Calls) != limit {
			t.Fatalf("search %+v: page %d of %d calls has a next page", q, page, len(res.Calls))
		}
		q.Cursor = res.Next
	}
}

// newestFirst sorts calls in search order.
func newestFirst(calls []*proto.Call) []*proto.Call {
	out := slices.Clone(calls)
	slices.SortFunc(out, func(a, b *proto.Call) int {
		return cmp.Or(b.TS.Compare(a.TS), strings.Compare(a.ID, b.ID))
	})
	return out
}

func ids(calls []*proto.Call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.ID
	}
	return out
}

// matchFilter is the brute-force Filter.
func matchFilter(c *proto.Call, f Filter) bool {
	side := func(e *proto.Endpoint) bool {
		eq := func(want, have string) bool { return want == "" || strings.EqualFold(want, have) }
		ip := ""
		if e.IP.IsValid() {
			ip = e.IP.String()
		}
		return eq(f.Namespace, e.Namespace) && eq(f.Pod, e.Pod) && eq(f.Workload, e.Workload) &&
			eq(f.Service, e.Service) && eq(f.Node, e.Node) && eq(f.IP, ip) && (f.Port == 0 || f.Port == e.Port)
	}
	if f.Protocol != "" && !strings.EqualFold(f.Protocol, c.Proto) {
		return false
	}
	return side(&c.Src) || side(&c.Dst)
}

func inWindow(c *proto.Call, from, to time.Time) bool {
	return (from.IsZero() || !c.TS.Before(from)) && (to.IsZero() || c.TS.Before(to))
}

// bruteGroupKey is the brute-force group key of a call.
func bruteGroupKey(c *proto.Call, by GroupBy) string {
	// A server with no identity at all is named by its address.
	orAddr := func(v string) string {
		if v == "" && c.Dst.Pod == "" && c.Dst.Workload == "" && c.Dst.Service == "" && c.Dst.IP.IsValid() {
			return netip.AddrPortFrom(c.Dst.IP, c.Dst.Port).String()
		}
		return v
	}
	switch by {
	case ByService:
		return orAddr(c.Dst.Service)
	case ByWorkload:
		return orAddr(c.Dst.Workload)
	case ByNamespace:
		return c.Dst.Namespace
	case ByPod:
		return orAddr(c.Dst.Pod)
	case ByEndpoint:
		s := c.Dst.Service
		if s == "" {
			s = orAddr(c.Dst.Workload)
		}
		return strings.TrimSpace(s + " " + Route(c))
	case ByEdge:
		return brutePeer(c.Src, false) + " → " + brutePeer(c.Dst, true) + " " + c.Proto
	case ByProtocol:
		return c.Proto
	case ByStatus:
		if c.Status != "" {
			return c.Status
		}
		kind, _, _ := strings.Cut(c.Error, ":")
		return kind
	}
	return ""
}

// brutePeer names one side of an edge.
func brutePeer(e proto.Endpoint, server bool) string {
	for _, v := range []string{e.Workload, e.Service, e.Pod} {
		if v != "" {
			if e.Namespace != "" {
				return e.Namespace + "/" + v
			}
			return v
		}
	}
	switch {
	case !e.IP.IsValid():
		return "unknown"
	case server:
		return netip.AddrPortFrom(e.IP, e.Port).String()
	}
	return e.IP.String()
}

// bruteSummary computes a summary from calls directly; quantiles are
// exact.
func bruteSummary(calls []*proto.Call, q SummaryQuery) Summary {
	from, to := q.From, q.To
	type acc struct {
		g    Group
		lats []float64
		errs map[string]uint64
	}
	groups := map[string]*acc{}
	var sum Summary
	for _, c := range calls {
		if !inWindow(c, from, to) || !matchFilter(c, q.Filter) {
			continue
		}
		k := bruteGroupKey(c, q.GroupBy)
		a := groups[k]
		if a == nil {
			a = &acc{g: Group{Key: k, Outcomes: map[string]uint64{}, First: c.TS, Last: c.TS}, errs: map[string]uint64{}}
			switch q.GroupBy {
			case ByEdge:
				a.g.Client, a.g.Server, a.g.Proto = brutePeer(c.Src, false), brutePeer(c.Dst, true), c.Proto
			case ByEndpoint:
				a.g.Server, a.g.Route, a.g.Proto = strings.TrimSuffix(strings.TrimSuffix(k, Route(c)), " "), Route(c), c.Proto
				switch {
				case c.Dst.Service != "":
					a.g.ServerField = "service"
				case c.Dst.Workload != "":
					a.g.ServerField = "workload"
				case c.Dst.IP.IsValid():
					a.g.ServerField = "address"
				}
			}
			groups[k] = a
		}
		o := c.Outcome()
		a.g.Calls++
		a.g.Outcomes[o.String()]++
		if o.Failed() {
			a.g.Failed++
			v := c.Status
			if v == "" {
				v = c.Error
			}
			a.errs[v]++
		}
		a.g.ReqBytes += uint64(c.Request.BodySize)
		a.g.RespBytes += uint64(c.Response.BodySize)
		if c.TS.Before(a.g.First) {
			a.g.First = c.TS
		}
		if c.TS.After(a.g.Last) {
			a.g.Last = c.TS
		}
		if c.LatencyNS > 0 {
			a.lats = append(a.lats, float64(c.LatencyNS))
		}
		if sum.Calls == 0 || c.TS.Before(sum.From) {
			sum.From = c.TS
		}
		if c.TS.After(sum.To) {
			sum.To = c.TS
		}
		sum.Calls++
	}
	for _, a := range groups {
		g := a.g
		if d := g.Rated(); d > 0 {
			g.ErrorRate = float64(g.Failed) / float64(d)
		}
		slices.Sort(a.lats)
		quantile := func(p float64) time.Duration {
			if len(a.lats) == 0 {
				return 0
			}
			return time.Duration(a.lats[int(p*float64(len(a.lats)-1))])
		}
		g.P50, g.P95, g.P99 = quantile(0.5), quantile(0.95), quantile(0.99)
		for v, n := range a.errs {
			g.TopErrors = append(g.TopErrors, Count{v, n})
		}
		slices.SortFunc(g.TopErrors, func(a, b Count) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
		})
		top := q.TopErrors
		if top <= 0 {
			top = DefaultTopErrors
		}
		if len(g.TopErrors) > top {
			g.TopErrors = g.TopErrors[:top]
		}
		sum.Groups = append(sum.Groups, g)
	}
	slices.SortFunc(sum.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.Calls, a.Calls), strings.Compare(a.Key, b.Key))
	})
	sum.GroupsTotal = len(sum.Groups)
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultGroups
	}
	if len(sum.Groups) > limit {
		sum.Groups = sum.Groups[:limit]
	}
	return sum
}

// compareSummary reports how got differs from want: counts exact,
// quantiles within tol.
func compareSummary(t testing.TB, what string, got, want Summary, tol float64) {
	t.Helper()
	if got.Calls != want.Calls || got.GroupsTotal != want.GroupsTotal || len(got.Groups) != len(want.Groups) {
		t.Errorf("%s: %d calls in %d groups (%d returned), want %d in %d (%d)", what, got.Calls, got.GroupsTotal,
			len(got.Groups), want.Calls, want.GroupsTotal, len(want.Groups))
		return
	}
	if !got.From.Equal(want.From) || !got.To.Equal(want.To) {
		t.Errorf("%s: from %v to %v, want %v to %v", what, got.From, got.To, want.From, want.To)
	}
	for i := range want.Groups {
		g, w := got.Groups[i], want.Groups[i]
		if g.Key != w.Key || g.Client != w.Client || g.Server != w.Server || g.Proto != w.Proto || g.Route != w.Route ||
			g.ServerField != w.ServerField || g.Calls != w.Calls || g.Failed != w.Failed || g.ReqBytes != w.ReqBytes ||
			g.RespBytes != w.RespBytes || !g.First.Equal(w.First) || !g.Last.Equal(w.Last) ||
			math.Abs(g.ErrorRate-w.ErrorRate) > 1e-12 {
			t.Errorf("%s: group %d:\n got %+v\nwant %+v", what, i, g, w)
			continue
		}
		if !equalCounts(g.Outcomes, w.Outcomes) {
			t.Errorf("%s: group %q outcomes %v, want %v", what, g.Key, g.Outcomes, w.Outcomes)
		}
		if !slices.Equal(g.TopErrors, w.TopErrors) {
			t.Errorf("%s: group %q top errors %v, want %v", what, g.Key, g.TopErrors, w.TopErrors)
		}
		for _, p := range [][2]time.Duration{{g.P50, w.P50}, {g.P95, w.P95}, {g.P99, w.P99}} {
			if p[1] == 0 && p[0] != 0 || p[1] != 0 && math.Abs(float64(p[0]-p[1]))/float64(p[1]) > tol {
				t.Errorf("%s: group %q quantiles %v %v %v, want %v %v %v", what, g.Key, g.P50, g.P95, g.P99, w.P50, w.P95, w.P99)
				break
			}
		}
	}
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
