package segstore

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// Flow is one flow of a segment. Src is the side that opened it: the
// sender of its first packet, or of the SYN when the first packet seen
// was a SYN-ACK.
type Flow struct {
	Proto       layers.IPProtocol
	Src, Dst    netip.AddrPort
	First, Last time.Time
	// Packets and Bytes (frame lengths on the wire) are Src→Dst, then
	// Dst→Src; Flags are the flowindex TCP flags (FlagSYN, …) each side
	// sent.
	Packets, Bytes [2]uint64
	// Payload is the transport payload each way (as captured: a packet cut
	// by the snap length counts what was kept); PayloadUnknown says it was
	// not counted (an index written before it was, WSFLOWS 0x02).
	Payload        [2]uint64
	PayloadUnknown bool
	Flags          [2]uint8
	// Interface is where the flow's first packet was captured.
	Interface string
	// Procs are the processes holding the flow's sockets on this node,
	// Src's then Dst's, where known (Options.Attribute); zero otherwise.
	Procs [2]Proc
}

// opener says which side opened a flow whose first packet in a segment
// goes from src to dst: the side the previous segment says, else the
// sender of a SYN (the receiver of a SYN-ACK), else the side with the
// higher port (clients use ephemeral ports), else src.
func opener(prev map[flowindex.Key]*Flow, k flowindex.Key, d *capture.Decoded, src, dst netip.AddrPort) netip.AddrPort {
	if fl := prev[k]; fl != nil {
		return fl.Src
	}
	if t := d.TCP; t != nil && t.SYN {
		if t.ACK {
			return dst
		}
		return src
	}
	if dst.Port() > src.Port() {
		return dst
	}
	return src
}

func newSegment(seq uint64, lt layers.LinkType) *segment {
	return &segment{Segment: Segment{Seq: seq, LinkType: lt}, flows: map[flowindex.Key]*Flow{}}
}

// count adds a packet to the segment's counts and flows.
func (g *segment) count(dec *capture.Decoder, d *capture.Decoded, p *capture.Packet, iface string) {
	if g.Packets == 0 || p.Timestamp.Before(g.First) {
		g.First = p.Timestamp
	}
	if p.Timestamp.After(g.Last) {
		g.Last = p.Timestamp
	}
	g.Packets++
	if err := dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, d); err != nil || !d.Src.IsValid() {
		g.Other++
		return
	}
	if d.Plaintext {
		// A TLS plaintext record is in no flow: its connection's flow is
		// that of its packets, in their own segments (FORMAT.md).
		return
	}
	src, dst := netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort)
	k := flowindex.NewKey(src, dst, d.Proto)
	fl := g.flows[k]
	if fl == nil {
		fl = &Flow{Proto: d.Proto, Src: src, Dst: dst, First: p.Timestamp, Interface: iface}
		if opener(g.prev, k, d, src, dst) == dst {
			fl.Src, fl.Dst = dst, src
		}
		g.flows[k] = fl
		g.order = append(g.order, fl)
	}
	dir := 0
	if src != fl.Src {
		dir = 1
	}
	fl.Packets[dir]++
	fl.Bytes[dir] += uint64(p.Length)
	fl.Payload[dir] += uint64(len(d.Payload))
	if p.Timestamp.Before(fl.First) {
		fl.First = p.Timestamp
	}
	if p.Timestamp.After(fl.Last) {
		fl.Last = p.Timestamp
	}
	if t := d.TCP; t != nil {
		switch {
		case t.SYN && t.ACK:
			fl.Flags[dir] |= flowindex.FlagSYNACK
		case t.SYN:
			fl.Flags[dir] |= flowindex.FlagSYN
		}
		if t.FIN {
			fl.Flags[dir] |= flowindex.FlagFIN
		}
		if t.RST {
			fl.Flags[dir] |= flowindex.FlagRST
		}
	}
}

// Flows returns the flows active in [from, to) (zero is unbounded), per
// segment, oldest first; a flow spanning several segments appears once per
// segment. It reads closed segments' indexes; see EachFlow.
func (s *Store) Flows(from, to time.Time) ([]Flow, error) {
	var out []Flow
	err := s.EachFlow(from, to, func(seg Segment, fl *Flow) bool {
		out = append(out, *fl)
		return true
	})
	return out, err
}

// EachFlow calls fn with the flows active in [from, to), segment by
// segment (oldest first, open segments last), until fn returns false. fn
// runs without the store's lock held, so a slow caller never holds up
// Write; closed segments' flows are read from their indexes, so only one
// segment's flows are in memory at a time. A segment deleted by retention
// meanwhile is skipped; an index that cannot be read is an error naming it
// (after the flows of the segments before it).
func (s *Store) EachFlow(from, to time.Time, fn func(Segment, *Flow) bool) error {
	in := func(fl *Flow) bool {
		return (to.IsZero() || fl.First.Before(to)) && (from.IsZero() || !fl.Last.Before(from))
	}
	// One look under the lock: a segment that finishes closing between
	// two looks would be in neither the closed nor the unclosed ones.
	// The open segments' flows change as packets come (and those closing
	// have no index yet): copy those wanted.
	type openSeg struct {
		seg   Segment
		flows []Flow
	}
	var open []openSeg
	s.mu.Lock()
	var closed []Segment
	for _, g := range s.closed {
		if g.Overlaps(from, to) {
			closed = append(closed, g.Segment)
		}
	}
	for _, g := range s.unclosed() {
		o := openSeg{seg: g.Segment}
		o.seg.Size = g.durable()
		for _, fl := range g.order {
			if in(fl) {
				o.flows = append(o.flows, *fl)
			}
		}
		open = append(open, o)
	}
	s.mu.Unlock()
	for _, seg := range closed {
		g, err := readIndex(indexPath(seg.Path))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention since
		}
		if err != nil {
			return fmt.Errorf("segment %s: %w", seg.Path, err)
		}
		for _, fl := range g.order {
			if in(fl) && !fn(seg, fl) {
				return nil
			}
		}
	}
	for _, o := range open {
		for i := range o.flows {
			if !fn(o.seg, &o.flows[i]) {
				return nil
			}
		}
	}
	return nil
}
