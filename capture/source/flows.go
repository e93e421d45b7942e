package source

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/flowindex"
)

// FlowSet sums flows reported in pieces (a segment store reports a flow
// once per segment it spans) into one Summary per flow.
type FlowSet struct {
	byKey map[flowindex.Key]int
	out   []flowindex.Summary
}

// NewFlowSet returns an empty set.
func NewFlowSet() *FlowSet { return &FlowSet{byKey: map[flowindex.Key]int{}} }

// Add adds one piece of a flow, oriented from src to dst.
func (s *FlowSet) Add(proto layers.IPProtocol, src, dst netip.AddrPort, first, last time.Time, packets, bytes [2]uint64, flags [2]uint8) {
	k := flowindex.NewKey(src, dst, proto)
	i, ok := s.byKey[k]
	if !ok {
		s.byKey[k] = len(s.out)
		s.out = append(s.out, flowindex.Summary{Src: src, Dst: dst, Proto: proto, First: first, Last: last, Began: first,
			Packets: packets, Bytes: bytes, Flags: flags})
		return
	}
	sum := &s.out[i]
	if sum.Src != src { // the piece is oriented the other way
		packets[0], packets[1] = packets[1], packets[0]
		bytes[0], bytes[1] = bytes[1], bytes[0]
		flags[0], flags[1] = flags[1], flags[0]
	}
	if first.Before(sum.First) {
		sum.First, sum.Began = first, first
	}
	if last.After(sum.Last) {
		sum.Last = last
	}
	for d := range 2 {
		sum.Packets[d] += packets[d]
		sum.Bytes[d] += bytes[d]
		sum.Flags[d] |= flags[d]
	}
}

// SetOpaque records why the flow's TLS plaintext cannot be read (the
// first reason given stays).
func (s *FlowSet) SetOpaque(proto layers.IPProtocol, src, dst netip.AddrPort, why string) {
	if i, ok := s.byKey[flowindex.NewKey(src, dst, proto)]; ok && why != "" && s.out[i].Opaque == "" {
		s.out[i].Opaque = why
	}
}

// Len is how many flows the set holds.
func (s *FlowSet) Len() int { return len(s.out) }

// Summaries returns the flows in the order they began.
func (s *FlowSet) Summaries() []flowindex.Summary {
	slices.SortStableFunc(s.out, func(a, b flowindex.Summary) int { return cmp.Compare(a.Began.UnixNano(), b.Began.UnixNano()) })
	return s.out
}
