package source

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
)

// FlowSet sums flows reported in pieces (a segment store reports a flow
// once per segment it spans) into one Summary per flow.
type FlowSet struct {
	byKey map[flowindex.Key]int
	out   []flowindex.Summary
}

// NewFlowSet returns an empty set.
func NewFlowSet() *FlowSet { return &FlowSet{byKey: map[flowindex.Key]int{}} }

// Add adds one piece of a flow (a segment's).
func (s *FlowSet) Add(fl *segstore.Flow) {
	k := flowindex.NewKey(fl.Src, fl.Dst, fl.Proto)
	i, ok := s.byKey[k]
	if !ok {
		s.byKey[k] = len(s.out)
		s.out = append(s.out, flowindex.Summary{Src: fl.Src, Dst: fl.Dst, Proto: fl.Proto, First: fl.First, Last: fl.Last, Began: fl.First,
			Packets: fl.Packets, Bytes: fl.Bytes, Payload: fl.Payload, PayloadUnknown: fl.PayloadUnknown, Flags: fl.Flags})
		return
	}
	sum := &s.out[i]
	packets, bytes, payload, flags := fl.Packets, fl.Bytes, fl.Payload, fl.Flags
	if sum.Src != fl.Src { // the piece is oriented the other way
		packets[0], packets[1] = packets[1], packets[0]
		bytes[0], bytes[1] = bytes[1], bytes[0]
		payload[0], payload[1] = payload[1], payload[0]
		flags[0], flags[1] = flags[1], flags[0]
	}
	if fl.First.Before(sum.First) {
		sum.First, sum.Began = fl.First, fl.First
	}
	if fl.Last.After(sum.Last) {
		sum.Last = fl.Last
	}
	for d := range 2 {
		sum.Packets[d] += packets[d]
		sum.Bytes[d] += bytes[d]
		sum.Payload[d] += payload[d]
		sum.Flags[d] |= flags[d]
	}
	sum.PayloadUnknown = sum.PayloadUnknown || fl.PayloadUnknown
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
