package analysis

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirescope/wirescope/index"
)

// Workload is one workload's traffic in a window, or that of an address
// without a Kubernetes identity.
type Workload struct {
	// Name is namespace/workload (as the index names edge peers), or an
	// address without its port.
	Name string
	// Known is set when a flow names its pod, workload or service.
	Known bool
	// Pods, IPs and Nodes are those seen in its flows, sorted.
	Pods, IPs, Nodes []string
	// Conns counts its flows as client and as server; Bytes their bytes.
	Conns [2]uint64
	Bytes uint64
	// CallsIn counts the calls it served (FailedIn of them failed),
	// CallsOut those it made.
	CallsIn, CallsOut, FailedIn uint64
	// Labels are the values each label has over its pods seen (known
	// pods only), sorted.
	Labels map[string][]string
}

// Workloads is who took part in a window's traffic.
type Workloads struct {
	// Workloads are busiest first (calls, then connections, then name).
	Workloads []*Workload
	// Idle are the known workloads (namespace/workload) with pods alive
	// in the window but no traffic in it, sorted.
	Idle []string
}

// ListWorkloads gathers the workloads and bare addresses of the flows and
// calls in w matching f, with the labels of their known pods, and the
// known workloads without traffic.
func ListWorkloads(ctx context.Context, src Source, w Window, f Filter) (*Workloads, error) {
	byName := map[string]*Workload{}
	get := func(name string) *Workload {
		wl := byName[name]
		if wl == nil {
			wl = &Workload{Name: name, Labels: map[string][]string{}}
			byName[name] = wl
		}
		return wl
	}
	addTo := func(list *[]string, v string) {
		if v != "" && !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	flows, err := src.Flows(ctx, w.From, w.To, f)
	if err != nil {
		return nil, err
	}
	for i := range flows {
		fl := &flows[i]
		for side, p := range []*Peer{&fl.Src, &fl.Dst} {
			wl := get(workloadName(p, false))
			wl.Known = wl.Known || p.Pod != "" || p.Workload != "" || p.Service != ""
			wl.Conns[side]++
			wl.Bytes += fl.Bytes[0] + fl.Bytes[1]
			addTo(&wl.Pods, p.Pod)
			addTo(&wl.Nodes, p.Node)
			if p.IP.IsValid() {
				addTo(&wl.IPs, p.IP.String())
			}
		}
	}
	sum, err := src.Index().Summarize(ctx, index.SummaryQuery{From: w.From, To: w.To, Filter: f.Index(), GroupBy: index.ByEdge, Limit: 100000, TopErrors: 1})
	if err != nil {
		return nil, err
	}
	for _, g := range sum.Groups {
		c := get(stripPort(g.Client))
		c.CallsOut += g.Calls
		s := get(stripPort(g.Server))
		s.CallsIn += g.Calls
		s.FailedIn += g.Failed
	}
	pods := src.Pods()
	for _, p := range pods {
		wl := byName[p.Namespace+"/"+p.Workload]
		if wl == nil || !slices.Contains(wl.Pods, p.Name) {
			continue
		}
		for k, v := range p.Labels {
			if !slices.Contains(wl.Labels[k], v) {
				wl.Labels[k] = append(wl.Labels[k], v)
			}
		}
	}
	out := &Workloads{Workloads: make([]*Workload, 0, len(byName))}
	for _, wl := range byName {
		slices.Sort(wl.Pods)
		slices.Sort(wl.Nodes)
		slices.Sort(wl.IPs)
		for _, vs := range wl.Labels {
			slices.Sort(vs)
		}
		out.Workloads = append(out.Workloads, wl)
	}
	slices.SortFunc(out.Workloads, func(x, y *Workload) int {
		return cmp.Or(cmp.Compare(y.CallsIn+y.CallsOut, x.CallsIn+x.CallsOut), cmp.Compare(y.Conns[0]+y.Conns[1], x.Conns[0]+x.Conns[1]),
			strings.Compare(x.Name, y.Name))
	})
	out.Idle = idleWorkloads(pods, byName, w)
	return out, nil
}

// idleWorkloads lists known workloads with pods alive in w but not seen
// in it.
func idleWorkloads(pods []Pod, seen map[string]*Workload, w Window) []string {
	var idle []string
	for _, p := range pods {
		name := p.Namespace + "/" + p.Workload
		overlaps := (p.End.IsZero() || w.From.IsZero() || p.End.After(w.From)) && (p.Start.IsZero() || w.To.IsZero() || p.Start.Before(w.To))
		if seen[name] == nil && overlaps && !slices.Contains(idle, name) {
			idle = append(idle, name)
		}
	}
	slices.Sort(idle)
	return idle
}

// Holders are who held an address at a time, and at other times.
type Holders struct {
	// Alive are the known pods that held it at the time.
	Alive []Pod
	// Seen is, when no known pod held it, the first peer with a pod the
	// flows within a minute of the time show at the address; nil when
	// none does.
	Seen *Peer
	// Other are the known pods that held it at other times.
	Other []Pod
}

// ResolveIP says who held ip at t: the known pods alive then, else the
// identity the flows around t carry; and the pods that held it at other
// times. The flows are best effort: when they cannot be read, Seen is
// nil.
func ResolveIP(ctx context.Context, src Source, ip netip.Addr, t time.Time) Holders {
	var h Holders
	for _, p := range src.Pods() {
		if !slices.Contains(p.IPs, ip) {
			continue
		}
		if p.Alive(t) {
			h.Alive = append(h.Alive, p)
		} else {
			h.Other = append(h.Other, p)
		}
	}
	if len(h.Alive) > 0 {
		return h
	}
	// Without a pod list, the identity the flows carry.
	flows, err := src.Flows(ctx, t.Add(-time.Minute), t.Add(time.Minute), Filter{IP: ip})
	if err != nil {
		return h
	}
	for _, fl := range flows {
		for _, p := range []*Peer{&fl.Src, &fl.Dst} {
			if p.IP == ip && p.Pod != "" {
				seen := *p
				h.Seen = &seen
				return h
			}
		}
	}
	return h
}
