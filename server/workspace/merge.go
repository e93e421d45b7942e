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

// merger counts a call captured more than once once. Two calls are copies
// when they share a mergeKey, were captured within mergeSkew of each
// other, and either come from different parts (nodes) or from one part
// with different destinations within natSkew: a node that forwards its
// pod's request sees it on the pod's interface addressed to the Service
// and again, after DNAT, on its way out addressed to the pod (packets
// merely routed are folded before they are stored; see capture.Dedup). A
// call absorbs at most one copy per part and destination, so two identical
// requests on one connection stay two. The copy kept is the one addressed
// to a pod (its destination has a pod identity where the other's has
// none), with the other's destination as Via when it differs, all nodes in
// CapturedOn, and the earliest timestamp.
//
// Calls are added in timestamp order, in as many rounds as needed; flush
// hands out those no later call can still match, so what is held is
// bounded by a round's calls and mergeSkew, not by the window.
type merger struct {
	held []*mergeItem              // added, not handed out, in the order added
	open map[mergeKey][]*mergeItem // of held, the calls that may still absorb a copy
	dups uint64                    // copies dropped
}

type mergeItem struct {
	c       *proto.Call
	seen    []mergeSeen
	dropped bool
}

// mergeSeen is where a call, or a copy it absorbed, was captured: the part,
// the destination there and when.
type mergeSeen struct {
	part int
	dst  netip.AddrPort
	ts   time.Time
}

func newMerger() *merger { return &merger{open: map[mergeKey][]*mergeItem{}} }

// add takes a call captured on part; calls come in timestamp order.
func (m *merger) add(c *proto.Call, part int) {
	it := &mergeItem{c: c, seen: []mergeSeen{{part, dstOf(c), c.TS}}}
	m.held = append(m.held, it)
	k := keyOf(c)
	// Forget the candidates too old to match this call or any later.
	js := slices.DeleteFunc(m.open[k], func(j *mergeItem) bool { return c.TS.Sub(j.c.TS) > mergeSkew })
	matched := slices.IndexFunc(js, func(j *mergeItem) bool {
		for _, s := range j.seen {
			for _, o := range it.seen {
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
		m.open[k] = append(js, it)
		return
	}
	j := js[matched]
	both := append(j.seen, it.seen...)
	if preferDst(c, j.c) {
		combine(c, j.c)
		it.seen = both
		j.dropped = true
		js[matched] = it // the kept call stands for both
	} else {
		combine(j.c, c)
		j.seen = both
		it.dropped = true
	}
	m.open[k] = js
	m.dups++
}

// flush hands out, in the order added, the calls kept that no call at or
// after next can match (all of them when next is zero), and forgets them.
func (m *merger) flush(next time.Time, emit func(*proto.Call)) {
	final := func(it *mergeItem) bool { return next.IsZero() || next.Sub(it.c.TS) > mergeSkew }
	kept := m.held[:0]
	for _, it := range m.held {
		switch {
		case it.dropped:
		case final(it):
			emit(it.c)
		default:
			kept = append(kept, it)
		}
	}
	clear(m.held[len(kept):])
	m.held = kept
	for k, js := range m.open {
		if js = slices.DeleteFunc(js, func(j *mergeItem) bool { return j.dropped || final(j) }); len(js) == 0 {
			delete(m.open, k)
		} else {
			m.open[k] = js
		}
	}
}

// merge is the merger over calls of several parts at once: the calls kept
// and how many copies it dropped.
func merge(byPart [][]*proto.Call) ([]*proto.Call, uint64) {
	m := newMerger()
	m.addRound(byPart)
	var out []*proto.Call
	m.flush(time.Time{}, func(c *proto.Call) { out = append(out, c) })
	return out, m.dups
}

// addRound adds the calls of one round, by part, in timestamp order.
func (m *merger) addRound(byPart [][]*proto.Call) {
	type pc struct {
		c    *proto.Call
		part int
	}
	var all []pc
	for i, calls := range byPart {
		for _, c := range calls {
			all = append(all, pc{c, i})
		}
	}
	slices.SortStableFunc(all, func(a, b pc) int { return a.c.TS.Compare(b.c.TS) })
	for _, x := range all {
		m.add(x.c, x.part)
	}
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
