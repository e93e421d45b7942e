package index

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/sketch"
)

// GroupBy names what Summarize groups calls by.
type GroupBy string

// Groupings. Service, workload, namespace and pod are the server's (the
// destination's); a call whose server has no such identity falls in the
// group with an empty key.
const (
	// ByNone puts every call in one group with an empty key.
	ByNone      GroupBy = ""
	ByService   GroupBy = "service"
	ByWorkload  GroupBy = "workload"
	ByNamespace GroupBy = "namespace"
	ByPod       GroupBy = "pod"
	// ByEndpoint groups by the server's service (its workload when it has
	// no service) and the call's Route: "checkout GET /api/orders/{id}".
	ByEndpoint GroupBy = "endpoint"
	ByProtocol GroupBy = "protocol"
	// ByEdge groups by who calls whom: the client's workload, the
	// server's and the protocol (Group.Client, Server and Proto say
	// which). A peer without a workload is named by its service, its pod
	// or, without any identity, its address.
	ByEdge GroupBy = "edge"
	// ByStatus groups by status; calls without one by the kind of error
	// ("no response", "truncated").
	ByStatus GroupBy = "status"
)

// GroupBys lists the groupings Summarize accepts.
func GroupBys() []GroupBy {
	return []GroupBy{ByNone, ByService, ByWorkload, ByNamespace, ByPod, ByEndpoint, ByProtocol, ByStatus, ByEdge}
}

// SummaryQuery asks for a summary of the calls in [From, To) matching
// Filter.
type SummaryQuery struct {
	From, To time.Time
	Filter   Filter
	GroupBy  GroupBy
	// Limit is the number of groups returned; default 20.
	Limit int
	// TopErrors is the number of errors listed per group; default 3.
	TopErrors int
}

// Summary is what Summarize returns.
type Summary struct {
	// From and To are the times of the first and the last call counted.
	From, To time.Time
	Calls    uint64
	// Groups are worst first: most failed calls, then most calls, then
	// by key. GroupsTotal counts the groups before Limit cut them.
	Groups      []Group
	GroupsTotal int
}

// Group aggregates the calls of one group.
type Group struct {
	Key string
	// Client, Server and Proto are the parts of an edge's key (ByEdge).
	// For ByEndpoint, Server is the server's name, ServerField what it
	// names ("service", "workload" or "address", as ip:port), Route the
	// route and Proto the protocol (of the first call seen).
	Client, Server, Proto string
	ServerField, Route    string
	Calls                 uint64
	// Outcomes counts calls by proto.Outcome.String(): ok, client_error,
	// server_error, no_response, incomplete, one_way.
	Outcomes map[string]uint64
	// Failed counts calls whose Outcome().Failed().
	Failed uint64
	// ErrorRate is Failed / (Calls − incomplete − one_way); 0 when that is 0.
	ErrorRate float64
	// P50, P95 and P99 are latency quantiles over the calls with a
	// latency, within 1% (a DDSketch).
	P50, P95, P99 time.Duration
	// ReqBytes and RespBytes sum the bodies' sizes.
	ReqBytes, RespBytes uint64
	// TopErrors are the most frequent failing statuses ("503") or, for
	// calls without a status, error texts ("no response: connection
	// reset"), most frequent first.
	TopErrors []Count
	// First and Last are the times of the group's first and last call.
	First, Last time.Time
}

// Rated is how many of the group's calls count in its error rate: those
// whose success or failure is known (not incomplete, not one-way).
func (g *Group) Rated() uint64 {
	return g.Calls - g.Outcomes[proto.Incomplete.String()] - g.Outcomes[proto.OneWay.String()]
}

// Count is a value and how often it occurred.
type Count struct {
	Value string
	Count uint64
}

// DefaultGroups and DefaultTopErrors are the defaults of SummaryQuery.
const (
	DefaultGroups    = 20
	DefaultTopErrors = 3
)

// Summarize aggregates the calls in a window by group.
//
// It merges the aggregates counted at ingest (per minute and per
// dimension) without visiting calls, for the minutes wholly inside the
// window; the calls in the parts of minutes at its edges are found by
// search and read from the call store, so the window is exact. IP and Port
// are not dimensions of the aggregates: with either in the filter,
// Summarize searches and reads all the matching calls instead, which is
// slower.
func (ix *Index) Summarize(ctx context.Context, q SummaryQuery) (Summary, error) {
	return ix.summarize(ctx, q, q.Filter.hasAddress())
}

// summarizeByScan summarizes from the calls, found by search, whatever the
// filter: the path Summarize takes for IP and port filters.
func (ix *Index) summarizeByScan(ctx context.Context, q SummaryQuery) (Summary, error) {
	return ix.summarize(ctx, q, true)
}

// SummarizeBy summarizes the window once per grouping in bys (q.GroupBy is
// ignored), sharing the work: the calls read at the window's edges are read
// once for all of them.
func (ix *Index) SummarizeBy(ctx context.Context, q SummaryQuery, bys ...GroupBy) ([]Summary, error) {
	return ix.summarizeMany(ctx, q, bys, q.Filter.hasAddress())
}

func (ix *Index) summarize(ctx context.Context, q SummaryQuery, scan bool) (Summary, error) {
	sums, err := ix.summarizeMany(ctx, q, []GroupBy{q.GroupBy}, scan)
	if err != nil {
		return Summary{}, err
	}
	return sums[0], nil
}

func (ix *Index) summarizeMany(ctx context.Context, q SummaryQuery, bys []GroupBy, scan bool) ([]Summary, error) {
	if err := ix.begin(); err != nil {
		return nil, err
	}
	defer ix.ops.RUnlock()
	for _, by := range bys {
		if !slices.Contains(GroupBys(), by) {
			return nil, badQuery("cannot group by %q; groupings are service, workload, namespace, pod, endpoint, protocol, status, edge", by)
		}
	}
	if q.Limit <= 0 {
		q.Limit = DefaultGroups
	}
	if q.TopErrors <= 0 {
		q.TopErrors = DefaultTopErrors
	}
	// The minutes wholly inside the window come from the aggregates; the
	// parts of minutes at its edges (and the whole window, with an address
	// filter) from the calls, found by search: the window is exact.
	type source struct {
		a *aggregates
		w window
		f Filter
	}
	all := window{from: minInt64, to: maxInt64}
	var sources []source
	scanned := func(from, to time.Time) error {
		aggs, err := ix.aggregateMatching(ctx, q.Filter, from, to)
		if err == nil {
			sources = append(sources, source{aggs, all, Filter{}})
		}
		return err
	}
	inner := all
	if !q.From.IsZero() {
		inner.from = ceilMinute(q.From.UnixNano())
	}
	if !q.To.IsZero() {
		inner.to = unixMinute(q.To.UnixNano())
	}
	minuteTime := func(m int64) time.Time { return time.Unix(0, m*int64(time.Minute)) }
	switch {
	case scan || inner.from >= inner.to:
		if err := scanned(q.From, q.To); err != nil {
			return nil, err
		}
	default:
		if !q.From.IsZero() && q.From.UnixNano() != inner.from*int64(time.Minute) {
			if err := scanned(q.From, minuteTime(inner.from)); err != nil {
				return nil, err
			}
		}
		if !q.To.IsZero() && q.To.UnixNano() != inner.to*int64(time.Minute) {
			if err := scanned(minuteTime(inner.to), q.To); err != nil {
				return nil, err
			}
		}
		var from, to time.Time
		if inner.from != minInt64 {
			from = minuteTime(inner.from)
		}
		if inner.to != maxInt64 {
			to = minuteTime(inner.to)
		}
		for _, p := range ix.partitionsIn(from, to) {
			sources = append(sources, source{p.aggs, inner, q.Filter})
		}
	}
	// Each source and grouping in parallel, then merged by group key.
	results := make([][]map[string]*groupAcc, len(bys))
	var wg sync.WaitGroup
	sem := make(chan struct{}, ix.opts.Workers)
	for b, by := range bys {
		results[b] = make([]map[string]*groupAcc, len(sources))
		for i, src := range sources {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				results[b][i] = src.a.summarize(src.w, src.f, by)
			}()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sums := make([]Summary, len(bys))
	for b := range bys {
		sums[b] = summaryOf(results[b], q)
	}
	return sums, nil
}

// summaryOf merges the sources' groups of one grouping into a summary.
func summaryOf(results []map[string]*groupAcc, q SummaryQuery) Summary {
	var sum Summary
	groups := map[string]*groupAcc{}
	for _, r := range results {
		for k, g := range r {
			if have := groups[k]; have != nil {
				have.merge(g)
			} else {
				groups[k] = g
			}
		}
	}
	first, last := int64(maxInt64), int64(minInt64)
	for k, g := range groups {
		sum.Calls += g.calls
		first, last = min(first, g.first), max(last, g.last)
		sum.Groups = append(sum.Groups, g.group(k, q.TopErrors))
	}
	if sum.Calls > 0 {
		sum.From, sum.To = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
	}
	slices.SortFunc(sum.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Failed, a.Failed), cmp.Compare(b.Calls, a.Calls), strings.Compare(a.Key, b.Key))
	})
	sum.GroupsTotal = len(sum.Groups)
	if len(sum.Groups) > q.Limit {
		sum.Groups = sum.Groups[:q.Limit]
	}
	return sum
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

// window is a range of Unix minutes, [from, to).
type window struct{ from, to int64 }

// groupAcc accumulates a group.
type groupAcc struct {
	calls               uint64
	outcomes            [proto.NumOutcomes]uint64
	reqBytes, respBytes uint64
	first, last         int64
	lat                 sketch.Sketch
	errs                map[string]uint64
	parts               [4]string // the Group fields the key is made of: Client, Server, Proto, Route (ByEdge, ByEndpoint)
	serverField         string
}

func newGroupAcc() *groupAcc {
	return &groupAcc{first: maxInt64, last: minInt64, errs: map[string]uint64{}}
}

func (g *groupAcc) merge(o *groupAcc) {
	g.calls += o.calls
	for i := range g.outcomes {
		g.outcomes[i] += o.outcomes[i]
	}
	g.reqBytes += o.reqBytes
	g.respBytes += o.respBytes
	g.first, g.last = min(g.first, o.first), max(g.last, o.last)
	g.lat.Merge(&o.lat)
	for k, n := range o.errs {
		g.errs[k] += n
	}
}

func (g *groupAcc) group(key string, topErrors int) Group {
	out := Group{Key: key, Client: g.parts[0], Server: g.parts[1], Proto: g.parts[2], Route: g.parts[3], ServerField: g.serverField,
		Calls: g.calls, Outcomes: map[string]uint64{},
		ReqBytes: g.reqBytes, RespBytes: g.respBytes, First: time.Unix(0, g.first).UTC(), Last: time.Unix(0, g.last).UTC()}
	for o, n := range g.outcomes {
		if n > 0 {
			out.Outcomes[proto.Outcome(o).String()] = n
		}
		if proto.Outcome(o).Failed() {
			out.Failed += n
		}
	}
	if d := g.calls - g.outcomes[proto.Incomplete] - g.outcomes[proto.OneWay]; d > 0 {
		out.ErrorRate = float64(out.Failed) / float64(d)
	}
	out.P50 = time.Duration(g.lat.Quantile(0.50))
	out.P95 = time.Duration(g.lat.Quantile(0.95))
	out.P99 = time.Duration(g.lat.Quantile(0.99))
	for v, n := range g.errs {
		out.TopErrors = append(out.TopErrors, Count{Value: v, Count: n})
	}
	slices.SortFunc(out.TopErrors, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
	})
	if len(out.TopErrors) > topErrors {
		out.TopErrors = out.TopErrors[:topErrors]
	}
	return out
}

// summarize aggregates the entries in window w matching f by group.
func (a *aggregates) summarize(w window, f Filter, by GroupBy) map[string]*groupAcc {
	a.mu.RLock()
	defer a.mu.RUnlock()
	// Resolve the filter against the interned strings once.
	identOK := a.matchingIdents(f)
	var protoIDs map[uint32]bool
	if f.Protocol != "" {
		protoIDs = map[uint32]bool{}
		for id, s := range a.strs {
			if strings.EqualFold(s, f.Protocol) {
				protoIDs[uint32(id)] = true
			}
		}
		if len(protoIDs) == 0 {
			return nil
		}
	}
	type localKey struct{ a, b, c uint32 }
	local := map[localKey]*groupAcc{}
	names := map[localKey]string{}
	for i := range a.entries {
		e := &a.entries[i]
		k := &e.key
		if int64(k.minute) < w.from || int64(k.minute) >= w.to {
			continue
		}
		if identOK != nil && !identOK[k.src] && !identOK[k.dst] {
			continue
		}
		if protoIDs != nil && !protoIDs[k.proto] {
			continue
		}
		var lk localKey
		dst := &a.idents[k.dst]
		// A server without the identity grouped by is named by its
		// address, if it has no identity at all.
		orAddr := func(v uint32) uint32 {
			if v == 0 {
				return dst.addr
			}
			return v
		}
		switch by {
		case ByService:
			lk.a = orAddr(dst.service)
		case ByWorkload:
			lk.a = orAddr(dst.workload)
		case ByNamespace:
			lk.a = dst.namespace
		case ByPod:
			lk.a = orAddr(dst.pod)
		case ByEndpoint:
			lk.a, lk.b = dst.service, k.route
			if lk.a == 0 {
				lk.a = orAddr(dst.workload)
			}
		case ByProtocol:
			lk.a = k.proto
		case ByStatus:
			lk.a, lk.b = k.status, k.errText
		case ByEdge:
			lk.a, lk.b, lk.c = k.src, k.dst, k.proto
		}
		g := local[lk]
		if g == nil {
			g = newGroupAcc()
			local[lk] = g
			switch by {
			case ByEdge:
				g.parts = [4]string{a.peerName(lk.a), a.peerName(lk.b), a.strs[lk.c], ""}
				names[lk] = g.parts[0] + " → " + g.parts[1] + " " + g.parts[2]
			case ByEndpoint:
				g.parts[1], g.parts[2], g.parts[3] = a.strs[lk.a], a.strs[k.proto], a.strs[lk.b]
				switch {
				case dst.service != 0:
					g.serverField = "service"
				case dst.workload != 0:
					g.serverField = "workload"
				case dst.addr != 0:
					g.serverField = "address"
				}
				names[lk] = a.groupName(by, lk.a, lk.b)
			default:
				names[lk] = a.groupName(by, lk.a, lk.b)
			}
		}
		g.calls += e.calls
		g.outcomes[k.outcome] += e.calls
		g.reqBytes += e.reqBytes
		g.respBytes += e.respBytes
		g.first, g.last = min(g.first, e.first), max(g.last, e.last)
		e.lat.AddTo(&g.lat)
		if k.outcome.Failed() {
			v := k.status
			if v == 0 {
				v = k.errText
			}
			g.errs[a.strs[v]] += e.calls
		}
	}
	out := make(map[string]*groupAcc, len(local))
	for lk, g := range local {
		name := names[lk]
		if have := out[name]; have != nil {
			have.merge(g)
		} else {
			out[name] = g
		}
	}
	return out
}

// peerName names an identity for an edge (EdgePeer).
func (a *aggregates) peerName(id uint32) string {
	p := &a.idents[id]
	return edgePeer(a.strs[p.namespace], a.strs[p.workload], a.strs[p.service], a.strs[p.pod], a.strs[p.addr])
}

// EdgePeer names one side of a call or flow as ByEdge groups name it:
// namespace/workload, else namespace/service, else namespace/pod, else its
// address (a server's with its port), else "unknown". Callers naming
// flows the same way can merge them with edges.
func EdgePeer(namespace, workload, service, pod string, ip netip.Addr, port uint16, server bool) string {
	addr := ""
	switch {
	case !ip.IsValid():
	case server:
		addr = netip.AddrPortFrom(ip, port).String()
	default:
		addr = ip.String()
	}
	return edgePeer(namespace, workload, service, pod, addr)
}

func edgePeer(namespace, workload, service, pod, addr string) string {
	for _, v := range []string{workload, service, pod} {
		if v != "" {
			if namespace != "" {
				return namespace + "/" + v
			}
			return v
		}
	}
	if addr != "" {
		return addr
	}
	return "unknown"
}

func (a *aggregates) groupName(by GroupBy, x, y uint32) string {
	switch by {
	case ByEndpoint:
		return strings.TrimSpace(a.strs[x] + " " + a.strs[y])
	case ByStatus:
		if x != 0 {
			return a.strs[x]
		}
		kind, _, _ := strings.Cut(a.strs[y], ":")
		return kind
	case ByNone:
		return ""
	}
	return a.strs[x]
}

// matchingIdents returns, by interned identity, whether it matches every
// identity field the filter sets; nil when it sets none.
func (a *aggregates) matchingIdents(f Filter) []bool {
	want := [5]string{f.Namespace, f.Workload, f.Service, f.Pod, f.Node}
	if want == [5]string{} {
		return nil
	}
	ok := make([]bool, len(a.idents))
	for i, id := range a.idents {
		have := [5]uint32{id.namespace, id.workload, id.service, id.pod, id.node}
		ok[i] = true
		for j, w := range want {
			if w != "" && !strings.EqualFold(a.strs[have[j]], w) {
				ok[i] = false
				break
			}
		}
	}
	return ok
}

// aggregateMatching counts, in fresh aggregates, the calls in [from, to)
// matching f, found by search and read from the call stores (in parallel,
// a few thousand at a time).
func (ix *Index) aggregateMatching(ctx context.Context, f Filter, from, to time.Time) (*aggregates, error) {
	bq, err := ix.searchQuery("", f, from, to)
	if err != nil {
		return nil, err
	}
	aggs := newAggregates()
	for _, p := range ix.partitionsIn(from, to) {
		var keys []string
		collect := search.MakeDocumentMatchHandler(func(sctx *search.SearchContext) (search.DocumentMatchHandler, bool, error) {
			return func(d *search.DocumentMatch) error {
				if d != nil {
					keys = append(keys, d.ID)
					sctx.DocumentMatchPool.Put(d)
				}
				return nil
			}, true, nil
		})
		req := bleve.NewSearchRequestOptions(bq, 0, 0, false)
		req.Score = "none"
		if _, err := p.bl.SearchInContext(context.WithValue(ctx, search.MakeDocumentMatchHandlerKey, collect), req); err != nil {
			return nil, searchErr(err)
		}
		for len(keys) > 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			chunk := keys[:min(len(keys), 4096)]
			keys = keys[len(chunk):]
			calls, err := ix.scannedCalls(p, chunk)
			if err != nil {
				return nil, fmt.Errorf("summarize: %w", err)
			}
			aggs.addAll(calls)
		}
	}
	return aggs, nil
}
