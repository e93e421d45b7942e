package flowindex

import (
	"errors"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// Selector picks the packets of chosen flows out of a capture, with the IP
// fragments exchanged by their hosts (a fragment carries no ports, and the
// Decoder holds fragments back until their datagram is whole).
type Selector struct {
	keys  map[Key]struct{}
	pairs map[[2]netip.Addr]struct{}
	dec   *capture.Decoder
	d     capture.Decoded
}

// NewSelector returns a selector of no flows; Add chooses them.
func NewSelector() *Selector {
	return &Selector{keys: map[Key]struct{}{}, pairs: map[[2]netip.Addr]struct{}{}, dec: capture.NewDecoder()}
}

// Add chooses the flow between a and b (either direction).
func (s *Selector) Add(a, b netip.AddrPort, proto layers.IPProtocol) {
	s.keys[NewKey(a, b, proto)] = struct{}{}
	s.pairs[hostPair(a.Addr(), b.Addr())] = struct{}{}
}

// Hosts returns the addresses of the chosen flows' hosts, each once.
func (s *Selector) Hosts() []netip.Addr {
	seen := map[netip.Addr]struct{}{}
	var out []netip.Addr
	for k := range s.keys {
		for _, a := range []netip.Addr{k.A.Addr().Unmap(), k.B.Addr().Unmap()} {
			if _, ok := seen[a]; !ok {
				seen[a] = struct{}{}
				out = append(out, a)
			}
		}
	}
	return out
}

// Len is how many flows are chosen.
func (s *Selector) Len() int { return len(s.keys) }

// Keep reports whether p belongs to a chosen flow, or is an IP fragment
// between the hosts of one.
func (s *Selector) Keep(p *capture.Packet) bool {
	err := s.dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &s.d)
	switch {
	case err == nil:
		_, ok := s.keys[NewKey(netip.AddrPortFrom(s.d.Src, s.d.SrcPort), netip.AddrPortFrom(s.d.Dst, s.d.DstPort), s.d.Proto)]
		return ok
	case errors.Is(err, capture.ErrFragment):
		a, b, ok := fragmentHosts(p)
		if !ok {
			return false
		}
		_, ok = s.pairs[hostPair(a, b)]
		return ok
	}
	return false
}

// hostPair is a host pair in either direction.
func hostPair(a, b netip.Addr) [2]netip.Addr {
	a, b = a.Unmap(), b.Unmap()
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return [2]netip.Addr{a, b}
}

// fragmentHosts returns the addresses of an IP fragment.
func fragmentHosts(p *capture.Packet) (a, b netip.Addr, ok bool) {
	pkt := gopacket.NewPacket(p.Data, p.LinkType, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	nl := pkt.NetworkLayer()
	if nl == nil {
		return a, b, false
	}
	nf := nl.NetworkFlow()
	a, okA := netip.AddrFromSlice(nf.Src().Raw())
	b, okB := netip.AddrFromSlice(nf.Dst().Raw())
	return a.Unmap(), b.Unmap(), okA && okB
}
