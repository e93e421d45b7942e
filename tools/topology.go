package tools

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

var mapOrders = []string{"worst", "calls", "bytes", "latency"}

type serviceMapArgs struct {
	Order string `json:"order,omitempty" jsonschema:"which edges come first: worst (most failed calls and connections, the default), calls, bytes or latency (p95)"`
	Label string `json:"label,omitempty" jsonschema:"a pod label, key=value (app=cart): only edges touching the workload whose pods carry it"`
	windowArgs
	filterArgs
	pageArgs
	budgetArgs
}

// edge is one client → server edge of the service map.
type edge struct {
	client, server string
	protos         []string
	calls          *index.Group // nil when no calls were dissected on it
	conns          uint64
	failedConns    map[string]uint64 // by state
	failedPairs    map[string]int    // failed connections by "client pod → server pod"
	bytes          uint64            // on the wire, both ways
	flowProto      string            // for edges without calls: the flows' protocol (guessed or not)
	encrypted      bool
}

func (e *edge) failed() uint64 {
	n := uint64(0)
	if e.calls != nil {
		n = e.calls.Failed
	}
	for _, v := range e.failedConns {
		n += v
	}
	return n
}

// ServiceMap is the service_map tool.
func ServiceMap(b Backend) Tool {
	page := limits{40, 500}
	return newTool(toolSpec{name: "service_map", title: "Service map",
		desc: "Who calls whom in a window: workload → workload edges (a peer without a workload is named by its " +
			"service, pod or address, with the DNS name it was looked up by when the capture has the lookup), with protocol, calls, " +
			"failed calls and error rate with the top statuses, p50/p95 latency, connections, failed connections (refused, reset, " +
			"unanswered) and bytes; edges that carry no dissected calls (encrypted or unsupported protocols) are listed from their " +
			"flows. Worst edges first by default. Times default to all the data; relative times count back from the newest packet.",
		readOnly: true, idempotent: true, schema: schemaOpts{limit: page, enums: map[string][]string{"order": mapOrders}}},
		func(ctx context.Context, req mcp.CallToolRequest, a serviceMapArgs, budgetMax int) (*mcp.CallToolResult, error) {
			limit, err := a.limit(page)
			if err != nil {
				return nil, err
			}
			offset, err := a.offset("service_map")
			if err != nil {
				return nil, err
			}
			order := strings.ToLower(a.Order)
			if order == "" {
				order = "worst"
			}
			if !slices.Contains(mapOrders, order) {
				return nil, argErrorf("order %q is not one of %s", a.Order, strings.Join(mapOrders, ", "))
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			if f, err = withLabel(b, f, a.Label); err != nil {
				return nil, err
			}
			note, err := ensureDissected(ctx, b, req, from, to)
			if err != nil {
				return nil, err
			}
			edges, err := serviceEdges(ctx, b, from, to, f)
			if err != nil {
				return nil, err
			}
			names, err := dnsNames(ctx, b, from, to, edges)
			if err != nil {
				return nil, err
			}
			sortEdges(edges, order)
			bud := newBudget(budgetMax, 60)
			var calls uint64
			for _, e := range edges {
				if e.calls != nil {
					calls += e.calls.Calls
				}
			}
			bud.add(fmt.Sprintf("%s in %s (%s), %s first; client → server:", plural(len(edges), "edge"), describeWindow(from, to), plural(calls, "call"),
				map[string]string{"worst": "worst", "calls": "busiest", "bytes": "largest", "latency": "slowest"}[order]))
			if note != "" {
				bud.add(note)
			}
			shown := 0
			for _, e := range pageOf(edges, offset, limit) {
				if !bud.add(edgeLine(e, names)) {
					break
				}
				shown++
			}
			closing := []string{nextPage(offset, shown, len(edges), " edges", "the filters, label or the window")}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// serviceEdges merges the calls' edges (from the index) with the flows'
// (connections, bytes, failed connections).
func serviceEdges(ctx context.Context, b Backend, from, to time.Time, f Filter) ([]*edge, error) {
	sum, err := b.Index().Summarize(ctx, index.SummaryQuery{From: from, To: to, Filter: f.Index(), GroupBy: index.ByEdge,
		Limit: 100000, TopErrors: 3})
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]*edge{}
	get := func(client, server string) *edge {
		k := [2]string{client, server}
		e := byKey[k]
		if e == nil {
			e = &edge{client: client, server: server, failedConns: map[string]uint64{}, failedPairs: map[string]int{}}
			byKey[k] = e
		}
		return e
	}
	for i := range sum.Groups {
		g := &sum.Groups[i]
		e := get(g.Client, g.Server)
		e.protos = append(e.protos, g.Proto)
		if e.calls == nil {
			e.calls = g
		} else {
			e.calls = mergeGroups(e.calls, g)
		}
	}
	flows, err := b.Flows(ctx, from, to, f)
	if err != nil {
		return nil, err
	}
	for i := range flows {
		fl := &flows[i]
		e := get(workloadName(&fl.Src, false), workloadName(&fl.Dst, true))
		e.conns++
		e.bytes += fl.Bytes[0] + fl.Bytes[1]
		switch fl.State {
		case "refused", "reset", "unanswered":
			e.failedConns[fl.State]++
			e.failedPairs[podOrAddr(&fl.Src, false)+" → "+podOrAddr(&fl.Dst, true)]++
		}
		if e.flowProto == "" && fl.Protocol != "" {
			e.flowProto = fl.Protocol
			if fl.Guessed {
				e.flowProto += "?"
			}
		}
		e.encrypted = e.encrypted || fl.Encrypted
	}
	edges := make([]*edge, 0, len(byKey))
	for _, e := range byKey {
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

// workloadName names a flow's peer as the index names edge peers, so that
// flows and calls merge into the same edges.
func workloadName(p *Peer, server bool) string {
	return index.EdgePeer(p.Namespace, p.Workload, p.Service, p.Pod, p.IP, p.Port, server)
}

// podOrAddr names a peer by its pod, else its address (a server's with
// its port).
func podOrAddr(p *Peer, server bool) string {
	switch {
	case p.Pod != "":
		return p.Pod
	case server:
		return addrPort(p.IP, p.Port)
	}
	return p.IP.String()
}

func sortEdges(edges []*edge, order string) {
	calls := func(e *edge) uint64 {
		if e.calls == nil {
			return 0
		}
		return e.calls.Calls
	}
	p95 := func(e *edge) time.Duration {
		if e.calls == nil {
			return 0
		}
		return e.calls.P95
	}
	slices.SortFunc(edges, func(x, y *edge) int {
		var c int
		switch order {
		case "worst":
			c = cmp.Compare(y.failed(), x.failed())
		case "bytes":
			c = cmp.Compare(y.bytes, x.bytes)
		case "latency":
			c = cmp.Compare(p95(y), p95(x))
		}
		return cmp.Or(c, cmp.Compare(calls(y), calls(x)), cmp.Compare(y.conns, x.conns), strings.Compare(x.client, y.client),
			strings.Compare(x.server, y.server))
	})
}

// edgeLine is one edge of the map.
func edgeLine(e *edge, names map[string]string) string {
	name := func(s string) string {
		if n := names[s]; n != "" {
			return s + " (" + n + ")"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s", name(e.client), name(e.server))
	switch {
	case e.calls != nil:
		slices.Sort(e.protos)
		fmt.Fprintf(&b, " %s: %s", strings.Join(slices.Compact(e.protos), "+"), plural(e.calls.Calls, "call"))
		if e.calls.Failed > 0 {
			var errs []string
			for _, x := range e.calls.TopErrors[:min(3, len(e.calls.TopErrors))] {
				errs = append(errs, fmt.Sprintf("%s×%s", x.Value, count(x.Count)))
			}
			fmt.Fprintf(&b, ", %s failed (%s) [%s]", count(e.calls.Failed), percent(e.calls.ErrorRate), strings.Join(errs, ", "))
		} else {
			b.WriteString(", no failures")
		}
		if e.calls.P50 > 0 {
			fmt.Fprintf(&b, ", p50 %s p95 %s", ms(e.calls.P50), ms(e.calls.P95))
		}
	default:
		p := e.flowProto
		if p == "" {
			p = "unknown protocol"
		}
		if e.encrypted {
			p += ", encrypted"
		}
		fmt.Fprintf(&b, " (%s; no dissected calls)", p)
	}
	if e.conns > 0 {
		fmt.Fprintf(&b, "; %s, %s", plural(e.conns, "conn"), size(e.bytes))
		var states []string
		for _, s := range []string{"refused", "reset", "unanswered"} {
			if n := e.failedConns[s]; n > 0 {
				states = append(states, fmt.Sprintf("%s %s", count(n), s))
			}
		}
		if len(states) > 0 {
			b.WriteString(" (" + strings.Join(states, ", ") + ": " + topCounts(e.failedPairs, 2) + ")")
		}
	}
	return b.String()
}

// dnsNames finds, for the peers named by address, the DNS names the
// capture shows resolving to them, from the newest lookups in the window.
func dnsNames(ctx context.Context, b Backend, from, to time.Time, edges []*edge) (map[string]string, error) {
	want := map[netip.Addr][]string{}
	for _, e := range edges {
		for _, s := range []string{e.client, e.server} {
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
	res, err := b.Index().Search(ctx, index.Query{From: from, To: to, Text: "+proto:dns +status:noerror", Limit: index.MaxLimit})
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

type listWorkloadsArgs struct {
	At string `json:"at,omitempty" jsonschema:"with ip: the time to resolve the address at (RFC 3339 or relative); default: the end of the window"`
	windowArgs
	filterArgs
	pageArgs
	budgetArgs
}

// workload is one workload's traffic in a window.
type workload struct {
	name              string // namespace/workload, or an address for traffic without identity
	pods, ips, nodes  []string
	conns             [2]uint64 // as client, as server
	bytes             uint64
	callsIn, callsOut uint64
	failedIn          uint64
	known             bool
	labels            map[string][]string // label → values over its pods
}

// ListWorkloads is the list_workloads tool.
func ListWorkloads(b Backend) Tool {
	page := limits{30, 500}
	return newTool(toolSpec{name: "list_workloads", title: "List workloads",
		desc: "Workloads seen in traffic in a window, busiest first: namespace/workload with its pods, IPs, nodes and " +
			"labels (versions across pods), connections as client and as server, bytes, calls served and made, failed calls " +
			"served; addresses without a Kubernetes identity are listed too. Given ip (and at), says which pod held that address " +
			"at that time, and who held it before or after. Times default to all the data; relative times count back from the " +
			"newest packet.",
		readOnly: true, idempotent: true, schema: schemaOpts{limit: page}},
		func(ctx context.Context, req mcp.CallToolRequest, a listWorkloadsArgs, budgetMax int) (*mcp.CallToolResult, error) {
			limit, err := a.limit(page)
			if err != nil {
				return nil, err
			}
			offset, err := a.offset("list_workloads")
			if err != nil {
				return nil, err
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			bud := newBudget(budgetMax, 60)
			if f.IP.IsValid() {
				_, last := b.Bounds()
				ref := last
				if b.Live() {
					ref = time.Now()
				}
				at := to
				if at.IsZero() {
					at = last
				}
				if a.At != "" {
					if at, err = parseTime("at", a.At, ref); err != nil {
						return nil, err
					}
				}
				for _, l := range resolveIP(ctx, b, f.IP, at) {
					bud.add(l)
				}
			} else if a.At != "" {
				return nil, argError("at goes with ip: it is the time to resolve that address at")
			}
			wls, err := workloads(ctx, b, from, to, f)
			if err != nil {
				return nil, err
			}
			bud.add(fmt.Sprintf("%s %s in traffic in %s, busiest first:", count(len(wls)), agree(len(wls), "workload or address", "workloads and addresses"), describeWindow(from, to)))
			shown := 0
			page := pageOf(wls, offset, limit)
			for _, w := range page {
				if !bud.add(workloadLine(w)) {
					break
				}
				shown++
			}
			closing := []string{nextPage(offset, shown, len(wls), "", "the filters or the window")}
			if idle := idleWorkloads(b, wls, from, to); len(idle) > 0 && offset == 0 {
				closing = append(closing, fmt.Sprintf("known but without traffic in the window: %s", strings.Join(idle, ", ")))
			}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// workloads gathers the workloads and bare addresses of the window's flows
// and calls.
func workloads(ctx context.Context, b Backend, from, to time.Time, f Filter) ([]*workload, error) {
	byName := map[string]*workload{}
	get := func(name string) *workload {
		w := byName[name]
		if w == nil {
			w = &workload{name: name, labels: map[string][]string{}}
			byName[name] = w
		}
		return w
	}
	addTo := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	flows, err := b.Flows(ctx, from, to, f)
	if err != nil {
		return nil, err
	}
	for i := range flows {
		fl := &flows[i]
		for side, p := range []*Peer{&fl.Src, &fl.Dst} {
			w := get(workloadName(p, false))
			w.known = w.known || p.Pod != "" || p.Workload != "" || p.Service != ""
			w.conns[side]++
			w.bytes += fl.Bytes[0] + fl.Bytes[1]
			addTo(&w.pods, p.Pod)
			addTo(&w.nodes, p.Node)
			if p.IP.IsValid() {
				addTo(&w.ips, p.IP.String())
			}
		}
	}
	sum, err := b.Index().Summarize(ctx, index.SummaryQuery{From: from, To: to, Filter: f.Index(), GroupBy: index.ByEdge, Limit: 100000, TopErrors: 1})
	if err != nil {
		return nil, err
	}
	for _, g := range sum.Groups {
		c := get(stripPort(g.Client))
		c.callsOut += g.Calls
		s := get(stripPort(g.Server))
		s.callsIn += g.Calls
		s.failedIn += g.Failed
	}
	for _, p := range b.Pods() {
		w := byName[p.Namespace+"/"+p.Workload]
		if w == nil || !slices.Contains(w.pods, p.Name) {
			continue
		}
		for k, v := range p.Labels {
			if !slices.Contains(w.labels[k], v) {
				w.labels[k] = append(w.labels[k], v)
			}
		}
	}
	out := make([]*workload, 0, len(byName))
	for _, w := range byName {
		slices.Sort(w.pods)
		slices.Sort(w.nodes)
		slices.Sort(w.ips)
		out = append(out, w)
	}
	slices.SortFunc(out, func(x, y *workload) int {
		return cmp.Or(cmp.Compare(y.callsIn+y.callsOut, x.callsIn+x.callsOut), cmp.Compare(y.conns[0]+y.conns[1], x.conns[0]+x.conns[1]),
			strings.Compare(x.name, y.name))
	})
	return out, nil
}

// stripPort names a server by its address without the port, as workloads
// lists addresses.
func stripPort(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	return s
}

func workloadLine(w *workload) string {
	var b strings.Builder
	b.WriteString(w.name)
	if !w.known {
		b.WriteString(" (no Kubernetes identity)")
	}
	b.WriteString(":")
	if len(w.pods) > 0 {
		fmt.Fprintf(&b, " pods %s;", strings.Join(clipList(w.pods, 6), ", "))
	}
	if len(w.ips) > 0 && w.known {
		fmt.Fprintf(&b, " ips %s;", strings.Join(clipList(w.ips, 6), ", "))
	}
	if len(w.nodes) > 0 {
		fmt.Fprintf(&b, " nodes %s;", strings.Join(w.nodes, ", "))
	}
	if len(w.labels) > 0 {
		keys := make([]string, 0, len(w.labels))
		for k := range w.labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var ls []string
		for _, k := range keys {
			vs := w.labels[k]
			slices.Sort(vs)
			ls = append(ls, k+"="+strings.Join(vs, "|"))
		}
		fmt.Fprintf(&b, " labels %s;", strings.Join(ls, " "))
	}
	fmt.Fprintf(&b, " %s as client, %s as server, %s", plural(w.conns[0], "conn"), count(w.conns[1]), size(w.bytes))
	if w.callsIn > 0 {
		fmt.Fprintf(&b, "; calls served %s (%s failed)", count(w.callsIn), count(w.failedIn))
	}
	if w.callsOut > 0 {
		fmt.Fprintf(&b, "; calls made %s", count(w.callsOut))
	}
	return b.String()
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("+%d more", len(s)-n))
}

// resolveIP says who held ip at t, and who held it at other times.
func resolveIP(ctx context.Context, b Backend, ip netip.Addr, at time.Time) []string {
	var lines []string
	var other []string
	for _, p := range b.Pods() {
		if !slices.Contains(p.IPs, ip) {
			continue
		}
		desc := fmt.Sprintf("pod %s/%s (workload %s, node %s%s)", p.Namespace, p.Name, p.Workload, p.Node, podSpan(&p))
		if p.Alive(at) {
			lines = append(lines, fmt.Sprintf("%s at %s: %s", ip, stamp(at), desc))
		} else {
			other = append(other, desc)
		}
	}
	if len(lines) == 0 {
		// Without a pod list, the identity the flows carry.
		flows, err := b.Flows(ctx, at.Add(-time.Minute), at.Add(time.Minute), Filter{IP: ip})
		if err == nil {
			for _, fl := range flows {
				for _, p := range []*Peer{&fl.Src, &fl.Dst} {
					if p.IP == ip && p.Pod != "" {
						lines = append(lines, fmt.Sprintf("%s at %s: pod %s/%s (workload %s, node %s)", ip, stamp(at), p.Namespace, p.Pod, p.Workload, p.Node))
						break
					}
				}
				if len(lines) > 0 {
					break
				}
			}
		}
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("%s at %s: no known pod or service held it", ip, stamp(at)))
	}
	if len(other) > 0 {
		lines = append(lines, "at other times: "+strings.Join(other, "; "))
	}
	return lines
}

func podSpan(p *Pod) string {
	switch {
	case p.Start.IsZero() && p.End.IsZero():
		return ""
	case p.End.IsZero():
		return ", from " + stamp(p.Start)
	case p.Start.IsZero():
		return ", until " + stamp(p.End)
	}
	return ", " + stamp(p.Start) + " to " + stamp(p.End)
}

// idleWorkloads lists known workloads with pods alive in the window but
// not seen in it.
func idleWorkloads(b Backend, seen []*workload, from, to time.Time) []string {
	have := map[string]bool{}
	for _, w := range seen {
		have[w.name] = true
	}
	var idle []string
	for _, p := range b.Pods() {
		name := p.Namespace + "/" + p.Workload
		overlaps := (p.End.IsZero() || from.IsZero() || p.End.After(from)) && (p.Start.IsZero() || to.IsZero() || p.Start.Before(to))
		if !have[name] && overlaps && !slices.Contains(idle, name) {
			idle = append(idle, name)
		}
	}
	slices.Sort(idle)
	return idle
}
