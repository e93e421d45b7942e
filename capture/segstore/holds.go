package segstore

import (
	"net/netip"

	"github.com/gopacket/gopacket/layers"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// HoldsTCP reports whether the open segments (or the segments closed last)
// hold packets of the TCP connection between a and b: the node agent
// stores a connection's TLS plaintext only beside its packets, so that
// plaintext of connections the capture does not see (other interfaces, a
// filter) is not stored either.
func (s *Store) HoldsTCP(a, b netip.AddrPort) bool {
	k := flowindex.NewKey(a, b, layers.IPProtocolTCP)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.open {
		if _, ok := seg.flows[k]; ok {
			return true
		}
	}
	for _, flows := range s.last {
		if _, ok := flows[k]; ok {
			return true
		}
	}
	for _, seg := range s.closing {
		if _, ok := seg.flows[k]; ok {
			return true
		}
	}
	return false
}
