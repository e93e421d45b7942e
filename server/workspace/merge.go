package workspace

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// mergeSkew is how far apart in time two nodes may capture the same
// request: the wire between them plus their clocks' difference.
const mergeSkew = 2 * time.Second

// natSkew is how far apart one node captures a request before and after
// its DNAT: the same clock stamps both, microseconds apart.
const natSkew = 10 * time.Millisecond

// mergeKey is what two captures of one call share: the client's address
// and port (the client's node sees the Service's address as the
// destination, the server's node the pod's, but the source is the same
// without SNAT), the protocol and what was asked and answered.
type mergeKey struct {
	src    netip.AddrPort
	proto  string
	method string
	path   string
	status string
	size   int64
}

func keyOf(c *proto.Call) mergeKey {
	return mergeKey{src: netip.AddrPortFrom(c.Src.IP.Unmap(), c.Src.Port), proto: c.Proto, method: c.Method, path: c.Path,
		status: c.Status, size: c.Request.BodySize}
}

// merge returns the calls of several parts (nodes) with each call captured
// more than once counted once, and how many copies it dropped. Two calls
// are copies when they share a mergeKey, were captured within mergeSkew of
// each other, and either come from different parts or from one part with
// different destinations: a node that forwards its pod's request sees it
// on the pod's interface addressed to the Service and again, after DNAT,
// on its way out addressed to the pod (packets merely routed are folded
// before they are stored; see capture.Dedup), within natSkew. A call absorbs at most one
// copy per part and destination, so two identical requests on one
// connection stay two. The copy kept is the one addressed to a pod (its
// destination has a pod identity where the other's has none), with the
// other's destination as Via when it differs, all nodes in CapturedOn, and
// the earliest timestamp.
func merge(byPart [][]*proto.Call) ([]*proto.Call, uint64) {
	// seen is where a call and the copies it absorbed were captured: the
	// part, the destination there and when.
	type seen struct {
		part int
		dst  netip.AddrPort
		ts   time.Time
	}
	type item struct {
		c    *proto.Call
		seen []seen
	}
	var all []item
	for i, calls := range byPart {
		for _, c := range calls {
			all = append(all, item{c, []seen{{i, dstOf(c), c.TS}}})
		}
	}
	slices.SortStableFunc(all, func(a, b item) int { return a.c.TS.Compare(b.c.TS) })
	open := map[mergeKey][]int{} // indexes into all of calls that may still absorb a copy
	drop := make([]bool, len(all))
	var dups uint64
	for i := range all {
		c := all[i].c
		k := keyOf(c)
		// Forget the candidates too old to match this call or any later.
		js := slices.DeleteFunc(open[k], func(j int) bool { return c.TS.Sub(all[j].c.TS) > mergeSkew })
		matched := slices.IndexFunc(js, func(j int) bool {
			for _, s := range all[j].seen {
				for _, o := range all[i].seen {
					// The same part saw the same destination: a second call.
					// One part saw two destinations: its clock stamped both
					// copies, so they are close (its DNAT is in between).
					if s.part == o.part && (s.dst == o.dst || o.ts.Sub(s.ts).Abs() > natSkew) {
						return false
					}
				}
			}
			return true
		})
		if matched < 0 {
			open[k] = append(js, i)
			continue
		}
		j := js[matched]
		both := append(all[j].seen, all[i].seen...)
		if preferDst(c, all[j].c) {
			combine(c, all[j].c)
			all[i].seen = both
			drop[j] = true
			js[matched] = i // the kept call stands for both
		} else {
			combine(all[j].c, c)
			all[j].seen = both
			drop[i] = true
		}
		open[k] = js
		dups++
	}
	out := make([]*proto.Call, 0, len(all)-int(dups))
	for i, it := range all {
		if !drop[i] {
			out = append(out, it.c)
		}
	}
	return out, dups
}

func dstOf(c *proto.Call) netip.AddrPort {
	return netip.AddrPortFrom(c.Dst.IP.Unmap(), c.Dst.Port)
}

// preferDst reports whether a's destination names the server better than
// b's: a pod where b has none (b saw a Service's address).
func preferDst(a, b *proto.Call) bool {
	return a.Dst.Pod != "" && b.Dst.Pod == ""
}

// combine folds other, a copy of keep captured on another node, into keep.
func combine(keep, other *proto.Call) {
	if other.Dst.IP != keep.Dst.IP || other.Dst.Port != keep.Dst.Port {
		keep.Via = netip.AddrPortFrom(other.Dst.IP, other.Dst.Port)
		if keep.Dst.Service == "" {
			keep.Dst.Service = other.Dst.Service
		}
	}
	for _, n := range other.CapturedOn {
		if !slices.Contains(keep.CapturedOn, n) {
			keep.CapturedOn = append(keep.CapturedOn, n)
		}
	}
	slices.SortFunc(keep.CapturedOn, strings.Compare)
	if other.TS.Before(keep.TS) {
		keep.TS = other.TS
	}
	// The client's node saw the request leave and the answer arrive: its
	// latency is the one the client felt, when it has one.
	if other.Src.Pod != "" && other.Dst.Pod == "" && other.LatencyNS > 0 {
		keep.LatencyNS = other.LatencyNS
	}
	keep.LatencyNS = cmp.Or(keep.LatencyNS, other.LatencyNS)
	keep.Merged += 1 + other.Merged
}
