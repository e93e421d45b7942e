package tools

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/analysis"
)

// mapOrders are service_map's orders, the first its default.
var mapOrders = []string{string(analysis.Worst), string(analysis.Busiest), string(analysis.Largest), string(analysis.Slowest)}

type serviceMapArgs struct {
	Order string `json:"order,omitempty" jsonschema:"which edges come first: worst (most failed calls and connections, the default), calls, bytes or latency (p95)"`
	Label string `json:"label,omitempty" jsonschema:"a pod label, key=value (app=cart): only edges touching the workload whose pods carry it"`
	windowArgs
	filterArgs
	pageArgs
	budgetArgs
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
			m, err := analysis.BuildServiceMap(ctx, b, Window{From: from, To: to}, f, analysis.EdgeOrder(order))
			if err != nil {
				return nil, err
			}
			bud := newBudget(budgetMax, 60)
			bud.add(fmt.Sprintf("%s in %s (%s), %s first; client → server:", plural(len(m.Edges), "edge"), describeWindow(from, to), plural(m.Calls, "call"),
				map[string]string{"worst": "worst", "calls": "busiest", "bytes": "largest", "latency": "slowest"}[order]))
			if note != "" {
				bud.add(note)
			}
			shown := 0
			for _, e := range pageOf(m.Edges, offset, limit) {
				if !bud.add(edgeLine(e, m.Names)) {
					break
				}
				shown++
			}
			closing := []string{nextPage(offset, shown, len(m.Edges), " edges", "the filters, label or the window")}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// edgeLine is one edge of the map, its peers named by the DNS names in
// names when they have one.
func edgeLine(e *analysis.Edge, names map[string]string) string {
	name := func(s string) string {
		if n := names[s]; n != "" {
			return s + " (" + n + ")"
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s", name(e.Client), name(e.Server))
	switch c := e.Calls; {
	case c != nil:
		fmt.Fprintf(&b, " %s: %s", strings.Join(e.Protos, "+"), plural(c.Calls, "call"))
		if c.Failed > 0 {
			var errs []string
			for _, x := range c.TopErrors[:min(3, len(c.TopErrors))] {
				errs = append(errs, fmt.Sprintf("%s×%s", x.Value, count(x.Count)))
			}
			fmt.Fprintf(&b, ", %s failed (%s) [%s]", count(c.Failed), percent(c.ErrorRate), strings.Join(errs, ", "))
		} else {
			b.WriteString(", no failures")
		}
		if c.P50 > 0 {
			fmt.Fprintf(&b, ", p50 %s p95 %s", ms(c.P50), ms(c.P95))
		}
	default:
		p := e.FlowProto
		if p == "" {
			p = "unknown protocol"
		}
		if e.Encrypted {
			p += ", encrypted"
		}
		fmt.Fprintf(&b, " (%s; no dissected calls)", p)
	}
	if e.Conns > 0 {
		fmt.Fprintf(&b, "; %s, %s", plural(e.Conns, "conn"), size(e.Bytes))
		var states []string
		for _, s := range []string{"refused", "reset", "unanswered"} {
			if n := e.FailedConns[s]; n > 0 {
				states = append(states, fmt.Sprintf("%s %s", count(n), s))
			}
		}
		if len(states) > 0 {
			b.WriteString(" (" + strings.Join(states, ", ") + ": " + topCounts(e.FailedPairs, 2) + ")")
		}
	}
	return b.String()
}

type listWorkloadsArgs struct {
	At string `json:"at,omitempty" jsonschema:"with ip: the time to resolve the address at (RFC 3339 or relative); default: the end of the window"`
	windowArgs
	filterArgs
	pageArgs
	budgetArgs
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
				for _, l := range holderLines(analysis.ResolveIP(ctx, b, f.IP, at), f.IP, at) {
					bud.add(l)
				}
			} else if a.At != "" {
				return nil, argError("at goes with ip: it is the time to resolve that address at")
			}
			res, err := analysis.ListWorkloads(ctx, b, Window{From: from, To: to}, f)
			if err != nil {
				return nil, err
			}
			wls := res.Workloads
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
			if len(res.Idle) > 0 && offset == 0 {
				closing = append(closing, fmt.Sprintf("known but without traffic in the window: %s", strings.Join(res.Idle, ", ")))
			}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// workloadLine is one workload or address: its pods, addresses, nodes and
// labels, its connections and bytes, the calls it served and made.
func workloadLine(w *analysis.Workload) string {
	var b strings.Builder
	b.WriteString(w.Name)
	if !w.Known {
		b.WriteString(" (no Kubernetes identity)")
	}
	b.WriteString(":")
	if len(w.Pods) > 0 {
		fmt.Fprintf(&b, " pods %s;", strings.Join(clipList(w.Pods, 6), ", "))
	}
	if len(w.IPs) > 0 && w.Known {
		fmt.Fprintf(&b, " ips %s;", strings.Join(clipList(w.IPs, 6), ", "))
	}
	if len(w.Nodes) > 0 {
		fmt.Fprintf(&b, " nodes %s;", strings.Join(w.Nodes, ", "))
	}
	if len(w.Labels) > 0 {
		keys := make([]string, 0, len(w.Labels))
		for k := range w.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var ls []string
		for _, k := range keys {
			ls = append(ls, k+"="+strings.Join(w.Labels[k], "|"))
		}
		fmt.Fprintf(&b, " labels %s;", strings.Join(ls, " "))
	}
	fmt.Fprintf(&b, " %s as client, %s as server, %s", plural(w.Conns[0], "conn"), count(w.Conns[1]), size(w.Bytes))
	if w.CallsIn > 0 {
		fmt.Fprintf(&b, "; calls served %s (%s failed)", count(w.CallsIn), count(w.FailedIn))
	}
	if w.CallsOut > 0 {
		fmt.Fprintf(&b, "; calls made %s", count(w.CallsOut))
	}
	return b.String()
}

func clipList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("+%d more", len(s)-n))
}

// holderLines say who held ip at t, and who held it at other times.
func holderLines(h analysis.Holders, ip netip.Addr, at time.Time) []string {
	var lines []string
	for _, p := range h.Alive {
		lines = append(lines, fmt.Sprintf("%s at %s: %s", ip, stamp(at), podLine(&p)))
	}
	if p := h.Seen; p != nil {
		lines = append(lines, fmt.Sprintf("%s at %s: pod %s/%s (workload %s, node %s)", ip, stamp(at), p.Namespace, p.Pod, p.Workload, p.Node))
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("%s at %s: no known pod or service held it", ip, stamp(at)))
	}
	if len(h.Other) > 0 {
		other := make([]string, len(h.Other))
		for i := range h.Other {
			other[i] = podLine(&h.Other[i])
		}
		lines = append(lines, "at other times: "+strings.Join(other, "; "))
	}
	return lines
}

// podLine names a pod with its workload, node and lifetime.
func podLine(p *Pod) string {
	return fmt.Sprintf("pod %s/%s (workload %s, node %s%s)", p.Namespace, p.Name, p.Workload, p.Node, podSpan(p))
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
