package workspace

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/wirescope/wirescope/analysis"

	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/tools"
)

// guess names a flow's application protocol from the first bytes each side
// sent: as the dissectors' own detectors judge them (encrypted when the
// protocol's Description says so), else by the opening of an encrypted
// protocol no dissector reads (SSH, QUIC).
func guess(protocols []proto.Protocol, s *flowindex.Summary) (name string, encrypted bool) {
	for side, head := range s.Head {
		if len(head) == 0 {
			continue
		}
		sport, dport := s.Src.Port(), s.Dst.Port()
		if side == 1 {
			sport, dport = dport, sport
		}
		if name := encryptedOpening(head, s.Proto); name != "" {
			return name, true
		}
		for _, p := range protocols {
			var v proto.Verdict
			switch d := p.(type) {
			case proto.StreamProtocol:
				if s.Proto == layers.IPProtocolTCP {
					v, _ = d.DetectStream(head, sport, dport)
				}
			case proto.DatagramProtocol:
				if s.Proto == layers.IPProtocolUDP {
					v, _ = d.DetectDatagram(head, sport, dport)
				}
			}
			if v == proto.Yes {
				d, ok := p.(proto.Describer)
				return p.Name(), ok && d.Describe().Encrypted
			}
		}
	}
	return "", false
}

// encryptedOpening recognises the first bytes of SSH (its version banner)
// and QUIC (a long-header packet of version 1 or 2).
func encryptedOpening(b []byte, p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolTCP:
		if bytes.HasPrefix(b, []byte("SSH-")) {
			return "ssh"
		}
	case layers.IPProtocolUDP:
		if len(b) >= 5 && b[0]&0xc0 == 0xc0 {
			switch binary.BigEndian.Uint32(b[1:5]) {
			case 0x00000001, 0x6b3343cf:
				return "quic"
			}
		}
	}
	return ""
}

// Flows implements tools.Backend: the flows active in [from, to) that
// match f, largest first.
func (w *Workspace) Flows(ctx context.Context, from, to time.Time, f tools.Filter) ([]tools.Flow, error) {
	sums, err := w.src.Flows(ctx, from, to)
	if err != nil {
		return nil, err
	}
	flowindex.SortByBytes(sums)
	var out []tools.Flow
	w.mu.RLock()
	defer w.mu.RUnlock()
	for i := range sums {
		s := &sums[i]
		fl := tools.Flow{
			Src: w.peer(s.Src, s.First), Dst: w.peer(s.Dst, s.First),
			Transport: dissect.TransportName(s.Proto),
			First:     s.First, Last: s.Last, Began: s.Began,
			Packets: s.Packets, Bytes: s.Bytes, Retransmissions: s.Retransmissions,
			State: tcpState(s),
		}
		var l flowLabel
		fl.Protocol, fl.Guessed, l = w.protocolOf(s)
		fl.Encrypted, fl.Decryption, fl.ICMP = l.encrypted, l.decryption, l.icmp
		if s.Opaque != "" && fl.Encrypted && !analysis.Decrypted(fl.Decryption) {
			// Why its node cannot read it either: the reason, not a guess.
			fl.Decryption = strings.TrimPrefix(fl.Decryption+"; ", "; ") + "its node cannot read the plaintext: " + s.Opaque
		}
		if l.refused && (fl.State == "" || fl.State == "unanswered") {
			fl.State = "refused"
		}
		if matchFlow(&f, &fl) {
			out = append(out, fl)
		}
	}
	return out, nil
}

// peer is an endpoint with its identity at t.
func (w *Workspace) peer(ap netip.AddrPort, t time.Time) tools.Peer {
	p := tools.Peer{IP: ap.Addr(), Port: ap.Port()}
	if w.opts.Identity != nil {
		if id, ok := w.opts.Identity.Identify(ap, t); ok {
			p.Pod, p.Namespace, p.Workload, p.Service, p.Node, p.Version = id.Pod, id.Namespace, id.Workload, id.Service, id.Node, id.Version
		}
	}
	return p
}

// tcpState says how a TCP flow stands at the end of the window, from the
// flags each side sent in it.
func tcpState(s *flowindex.Summary) string {
	if s.Proto != layers.IPProtocolTCP {
		return ""
	}
	c, v := s.Flags[0], s.Flags[1]
	switch {
	case c&flowindex.FlagSYN != 0 && v&flowindex.FlagSYNACK == 0 && v&flowindex.FlagRST != 0:
		return "refused"
	case (c|v)&flowindex.FlagRST != 0:
		return "reset"
	case c&flowindex.FlagSYN != 0 && s.Packets[1] == 0:
		return "unanswered"
	case (c|v)&flowindex.FlagFIN != 0:
		return "closed"
	}
	return "open"
}

// matchFlow reports whether a flow matches the filter: its protocol, and
// every endpoint field set on one side or the other.
func matchFlow(f *tools.Filter, fl *tools.Flow) bool {
	if f.Protocol != "" && f.Protocol != fl.Protocol {
		return false
	}
	return matchPeer(f, &fl.Src) || matchPeer(f, &fl.Dst)
}

func matchPeer(f *tools.Filter, p *tools.Peer) bool {
	return (!f.IP.IsValid() || f.IP == p.IP.Unmap()) && (f.Port == 0 || f.Port == p.Port) &&
		(f.Namespace == "" || f.Namespace == p.Namespace) && (f.Pod == "" || f.Pod == p.Pod) &&
		(f.Workload == "" || f.Workload == p.Workload) && (f.Service == "" || f.Service == p.Service) &&
		(f.Node == "" || f.Node == p.Node) &&
		(f.Version == "" || f.Version == p.Version)
}

// tlsWorkloads tallies encrypted flows by the workloads at their ends.
type tlsWorkloads map[string]*tools.TLSWorkload

// add counts flow s, encrypted, under the workload at each of its ends
// that has one (once if both are the same), or under its server's address
// when neither has: read (decryption says how), not read (and why: the
// node's reason first, it names the process and library), or not
// dissected yet. Callers hold w.mu.
func (m tlsWorkloads) add(w *Workspace, s *flowindex.Summary, guessed bool, decryption string) {
	var names []string
	for _, ap := range []netip.AddrPort{s.Dst, s.Src} {
		p := w.peer(ap, s.First)
		name := p.Workload
		if name == "" {
			name = p.Pod
		}
		if name == "" {
			continue
		}
		if name = p.Namespace + "/" + name; !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		names = append(names, "address "+s.Dst.String())
	}
	for _, name := range names {
		t := m[name]
		if t == nil {
			t = &tools.TLSWorkload{Name: name}
			m[name] = t
		}
		t.Flows++
		switch {
		case decryption == "decrypted" && !guessed:
			count(&t.Read, "key log")
		case analysis.Decrypted(decryption) && !guessed:
			count(&t.Read, analysis.DecryptedBy(decryption)+" uprobe")
		case s.Opaque != "":
			count(&t.Opaque, s.Opaque)
		case guessed:
			t.NotDissected++
		default:
			count(&t.Opaque, decryption)
		}
	}
}

// count adds one to (*m)[k], making the map if need be.
func count(m *map[string]uint64, k string) {
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[k]++
}

// sorted returns the workloads with the most flows not read first, then
// the most flows.
func (m tlsWorkloads) sorted() []tools.TLSWorkload {
	out := make([]tools.TLSWorkload, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	opaque := func(t *tools.TLSWorkload) (n uint64) {
		for _, v := range t.Opaque {
			n += v
		}
		return n
	}
	slices.SortFunc(out, func(a, b tools.TLSWorkload) int {
		return cmp.Or(cmp.Compare(opaque(&b), opaque(&a)), cmp.Compare(b.Flows, a.Flows), strings.Compare(a.Name, b.Name))
	})
	return out
}
