package analysis

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// Edge is one client → server edge of the service map: the calls
// dissected on it and the flows that carried them (or carried traffic no
// dissector understood).
type Edge struct {
	// Client and Server name the peers as the index names edge peers:
	// namespace/workload, else service or pod, else the address (the
	// server's with its port).
	Client, Server string
	// Protos are the calls' protocols, sorted.
	Protos []string
	// Calls sums the calls on the edge (several protocols merged: counts
	// add, latency quantiles are the busier protocol's); nil when no calls
	// were dissected on it.
	Calls *index.Group
	// Conns counts the flows, Bytes their bytes on the wire both ways.
	Conns, Bytes uint64
	// FailedConns counts failed connections by state (refused, reset,
	// unanswered), FailedPairs by "client pod → server pod" (pods, else
	// addresses).
	FailedConns map[string]uint64
	FailedPairs map[string]int
	// FlowProto is the flows' protocol, "?" appended when guessed; for
	// edges without calls.
	FlowProto string
	// Encrypted is set when a flow's payload is encrypted.
	Encrypted bool
}

// Failed counts the edge's failed calls and failed connections.
func (e *Edge) Failed() uint64 {
	n := uint64(0)
	if e.Calls != nil {
		n = e.Calls.Failed
	}
	for _, v := range e.FailedConns {
		n += v
	}
	return n
}

// EdgeOrder is which edges come first.
type EdgeOrder string

// Edge orders; every one then orders by calls, connections and names.
const (
	// Worst: most failed calls and connections first.
	Worst EdgeOrder = "worst"
	// Busiest: most calls first.
	Busiest EdgeOrder = "calls"
	// Largest: most bytes first.
	Largest EdgeOrder = "bytes"
	// Slowest: highest p95 latency first.
	Slowest EdgeOrder = "latency"
)

// ServiceMap is who calls whom in a window.
type ServiceMap struct {
	// Edges are in the order asked.
	Edges []*Edge
	// Calls sums the edges' calls.
	Calls uint64
	// Names are the DNS names the capture shows resolving to the peers
	// named by address, by peer name, from the newest lookups in the
	// window.
	Names map[string]string
}

// BuildServiceMap merges the edges of the calls in w matching f (from the
// index) with those of its flows (connections, bytes, failed
// connections), names the peers known by address from the DNS answers in
// w, and orders the edges.
func BuildServiceMap(ctx context.Context, src Source, w Window, f Filter, order EdgeOrder) (*ServiceMap, error) {
	edges, err := serviceEdges(ctx, src, w, f)
	if err != nil {
		return nil, err
	}
	names, err := dnsNames(ctx, src.Index(), w, edges)
	if err != nil {
		return nil, err
	}
	sortEdges(edges, order)
	m := &ServiceMap{Edges: edges, Names: names}
	for _, e := range edges {
		if e.Calls != nil {
			m.Calls += e.Calls.Calls
		}
	}
	return m, nil
}

// serviceEdges merges the calls' edges (from the index) with the flows'.
func serviceEdges(ctx context.Context, src Source, w Window, f Filter) ([]*Edge, error) {
	sum, err := src.Index().Summarize(ctx, index.SummaryQuery{From: w.From, To: w.To, Filter: f.Index(), GroupBy: index.ByEdge,
		Limit: 100000, TopErrors: 3})
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]*Edge{}
	get := func(client, server string) *Edge {
		k := [2]string{client, server}
		e := byKey[k]
		if e == nil {
			e = &Edge{Client: client, Server: server, FailedConns: map[string]uint64{}, FailedPairs: map[string]int{}}
			byKey[k] = e
		}
		return e
	}
	for i := range sum.Groups {
		g := &sum.Groups[i]
		e := get(g.Client, g.Server)
		e.Protos = append(e.Protos, g.Proto)
		if e.Calls == nil {
			e.Calls = g
		} else {
			e.Calls = mergeGroups(e.Calls, g)
		}
	}
	flows, err := src.Flows(ctx, w.From, w.To, f)
	if err != nil {
		return nil, err
	}
	for i := range flows {
		fl := &flows[i]
		e := get(workloadName(&fl.Src, false), workloadName(&fl.Dst, true))
		e.Conns++
		e.Bytes += fl.Bytes[0] + fl.Bytes[1]
		switch fl.State {
		case "refused", "reset", "unanswered":
			e.FailedConns[fl.State]++
			e.FailedPairs[podOrAddr(&fl.Src, false)+" → "+podOrAddr(&fl.Dst, true)]++
		}
		if e.FlowProto == "" && fl.Protocol != "" {
			e.FlowProto = fl.Protocol
			if fl.Guessed {
				e.FlowProto += "?"
			}
		}
		e.Encrypted = e.Encrypted || fl.Encrypted
	}
	edges := make([]*Edge, 0, len(byKey))
	for _, e := range byKey {
		slices.Sort(e.Protos)
		e.Protos = slices.Compact(e.Protos)
		edges = append(edges, e)
	}
	return edges, nil
}

// mergeGroups adds two groups of one edge (several protocols): counts add;
// latency quantiles are those of the busier.
func mergeGroups(a, b *index.Group) *index.Group {
	m := *a
	if b.Calls > a.Calls {
		m.P50, m.P95, m.P99 = b.P50, b.P95, b.P99
	}
	m.Calls += b.Calls
	m.Failed += b.Failed
	m.ReqBytes += b.ReqBytes
	m.RespBytes += b.RespBytes
	m.Outcomes = map[string]uint64{}
	for _, g := range []*index.Group{a, b} {
		for k, v := range g.Outcomes {
			m.Outcomes[k] += v
		}
	}
	m.TopErrors = append(slices.Clone(a.TopErrors), b.TopErrors...)
	slices.SortFunc(m.TopErrors, func(x, y index.Count) int { return cmp.Compare(y.Count, x.Count) })
	if d := m.Rated(); d > 0 {
		m.ErrorRate = float64(m.Failed) / float64(d)
	}
	return &m
}

// sortEdges orders edges by order, then by calls, connections and names.
func sortEdges(edges []*Edge, order EdgeOrder) {
	calls := func(e *Edge) uint64 {
		if e.Calls == nil {
			return 0
		}
		return e.Calls.Calls
	}
	p95 := func(e *Edge) time.Duration {
		if e.Calls == nil {
			return 0
		}
		return e.Calls.P95
	}
	slices.SortFunc(edges, func(x, y *Edge) int {
		var c int
		switch order {
		case Worst:
			c = cmp.Compare(y.Failed(), x.Failed())
		case Largest:
			c = cmp.Compare(y.Bytes, x.Bytes)
		case Slowest:
			c = cmp.Compare(p95(y), p95(x))
		}
		return cmp.Or(c, cmp.Compare(calls(y), calls(x)), cmp.Compare(y.Conns, x.Conns), strings.Compare(x.Client, y.Client),
			strings.Compare(x.Server, y.Server))
	})
}

// dnsNames finds, for the peers named by address, the DNS names the
// capture shows resolving to them, from the newest lookups in the window.
func dnsNames(ctx context.Context, ix *index.Index, w Window, edges []*Edge) (map[string]string, error) {
	want := map[netip.Addr][]string{}
	for _, e := range edges {
		for _, s := range []string{e.Client, e.Server} {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				want[ap.Addr()] = append(want[ap.Addr()], s)
			} else if a, err := netip.ParseAddr(s); err == nil {
				want[a] = append(want[a], s)
			}
		}
	}
	names := map[string]string{}
	if len(want) == 0 {
		return names, nil
	}
	res, err := ix.Search(ctx, index.Query{From: w.From, To: w.To, Text: "+proto:dns +status:noerror", Limit: index.MaxLimit})
	if err != nil {
		return nil, err
	}
	for _, c := range res.Calls {
		for _, rec := range dnsAnswers(c) {
			// "NAME TTL TYPE DATA"
			fs := strings.Fields(rec)
			if len(fs) != 4 || (fs[2] != "A" && fs[2] != "AAAA") {
				continue
			}
			ip, err := netip.ParseAddr(fs[3])
			if err != nil {
				continue
			}
			for _, s := range want[ip.Unmap()] {
				if names[s] == "" {
					names[s] = strings.TrimSuffix(c.Path, ".")
				}
			}
		}
	}
	return names, nil
}

// dnsAnswers returns a DNS call's answer records.
func dnsAnswers(c *proto.Call) []string {
	switch v := c.Extra.Get("answers").(type) {
	case []string:
		return v
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
