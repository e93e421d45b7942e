package dissect

import (
	"cmp"
	"slices"
	"time"

	"github.com/gopacket/gopacket/reassembly"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect/proto"
)

// TLS plaintext records (capture.LinkTypeTLSPlaintext) carry what a process
// read or wrote through its TLS library, with the connection's endpoints
// and, per direction, the offset of the chunk in the plaintext stream as a
// TCP sequence number (1 for the first byte). They are dissected as a
// stream of their own, beside the connection's packets (whose TLS
// handshake the tls protocol still reads): the same detection and parsers
// as cleartext TCP, the client being the side the connection's SYN names,
// else the side whose first bytes a protocol recognises as a request. Its
// calls count on the connection's flow, which reads decrypted (Decryption
// "decrypted: <library> uprobe"); a plaintext stream whose connection's
// packets this dissection does not hold reports a flow of its own, marked
// likewise.
//
// Records of a direction come in order (the agent writes them so): a
// record starting past the next expected byte leaves a gap (chunks lost),
// one cut by the agent's cap (stored shorter than its length) a gap of the
// rest, one starting before it is a repetition whose new bytes alone are
// read, and one starting at 1 again starts a new connection on the same
// endpoints.

// DecryptedUprobe is the Decryption of a flow whose plaintext was read by
// uprobes in the TLS library lib (capture.PlaintextHeader.Describe).
func DecryptedUprobe(lib string) string { return "decrypted: " + lib + " uprobe" }

// plaintext dissects a plaintext record e.cur was decoded from.
func (e *Engine) plaintext(d *capture.Decoded, p *capture.Packet) {
	k := connKeyOf(d)
	seq := reassembly.Sequence(d.TCP.Seq)
	s := e.plain[k]
	if s != nil {
		i := s.sideOf(d)
		if at := s.next[i]; at >= 0 && seq.Difference(at) > 0 && d.TCP.Seq == 1 {
			// The stream starts again: a new connection on the same
			// endpoints.
			s.endPlain(proto.EndFIN, s.f.Last)
			s = nil
		}
	}
	if s == nil {
		s = e.newPlain(d)
	}
	i := s.sideOf(d)
	s.count(i, d.TCP, d.IPLength, p.Timestamp)
	payload := d.TCP.Payload
	// The chunk's length as the process read or wrote it.
	whole := len(payload)
	if d.Truncated {
		whole = max(whole, d.IPLength-(len(p.Data)-capture.PlaintextHeaderLen-len(payload)))
	}
	if at := s.next[i]; at >= 0 {
		switch diff := at.Difference(seq); {
		case diff > 0:
			s.gap(i, diff)
		case diff < 0:
			// Bytes read already: only what follows them is new.
			old := -diff
			if old >= whole {
				s.f.Retransmissions++
				return
			}
			if old >= len(payload) {
				// What is new was cut off.
				s.next[i] = seq.Add(whole)
				s.gap(i, whole-old)
				return
			}
			payload, whole, seq = payload[old:], whole-old, at
		}
	}
	s.next[i] = seq.Add(whole)
	if len(payload) > 0 {
		s.seen[i] = true
		s.data(i, payload, p.Timestamp)
	}
	if whole > len(payload) {
		s.gap(i, whole-len(payload))
	}
	if len(e.plain) > e.opts.MaxFlows {
		e.evictPlain()
	}
}

// sideOf says which side of s sent the record d was decoded from.
func (s *tcpStream) sideOf(d *capture.Decoded) int {
	if d.Src == s.ep[0].IP && d.SrcPort == s.ep[0].Port {
		return 0
	}
	return 1
}

// newPlain starts the plaintext stream of the record d was decoded from,
// tied to its connection if this dissection follows it.
func (e *Engine) newPlain(d *capture.Decoded) *tcpStream {
	s := &tcpStream{sides: sides{e: e}, synFrom: -1, synackFrom: -1, next: [2]reassembly.Sequence{-1, -1}}
	s.ep[0] = proto.Endpoint{IP: d.Src, Port: d.SrcPort}
	s.ep[1] = proto.Endpoint{IP: d.Dst, Port: d.DstPort}
	s.key = connKeyOf(d)
	s.f.Transport = "tcp"
	s.plain = d.PlaintextHeader.Describe()
	e.plain[s.key] = s
	if w := e.liveKeys[s.key]; w != nil && w.dec == nil {
		w.decryptedBy(s)
	} else if w := e.recent[s.key]; w != nil && w.dec == nil && !w.done {
		w.decryptedBy(s)
	}
	return s
}

// decryptedBy ties the plaintext stream p to s, its connection: s reads
// decrypted by p's library, p's client is s's.
func (s *tcpStream) decryptedBy(p *tcpStream) {
	s.dec, p.wire = p, s
	s.f.Encrypted = true
	s.f.Decryption = DecryptedUprobe(p.plain)
	if p.sp != nil {
		s.f.Inner = p.sp.Name()
	}
	s.f.Calls += p.f.Calls
	p.f.Calls = 0
	s.releaseTLS()
	if p.parser != nil {
		return // roles are set
	}
	other := func(i int8) int8 {
		if i < 0 {
			return -1
		}
		if s.ep[i] == p.ep[0] {
			return 0
		}
		return 1
	}
	p.synFrom, p.synackFrom = other(s.synFrom), other(s.synackFrom)
}

// endPlain ends plaintext stream s, as reason says, and reports it: as its
// connection's when it has one, else as a flow of its own.
func (s *tcpStream) endPlain(reason proto.EndReason, t time.Time) {
	e := s.e
	if e.plain[s.key] == s {
		delete(e.plain, s.key)
	}
	s.endParser(reason, t)
	if s.done {
		return
	}
	s.done = true
	f := &s.f
	if s.wire != nil {
		// The connection's flow is the record; what the plaintext lacked
		// counts in the statistics.
		e.stats.MissingBytes += f.MissingBytes
		e.stats.SkippedBytes += f.SkippedBytes
		return
	}
	f.MidStream = true
	f.State = "open"
	f.Encrypted = true
	f.Decryption = DecryptedUprobe(s.plain)
	f.Inner, f.Proto = f.Proto, "tls"
	s.report(s.clientSide())
}

// endPlainStreams ends the plaintext streams idle since before idle (all
// of them when idle is zero), in a fixed order.
func (e *Engine) endPlainStreams(idle time.Time, reason proto.EndReason) {
	var due []*tcpStream
	for _, s := range e.plain {
		if idle.IsZero() || s.f.Last.Before(idle) {
			due = append(due, s)
		}
	}
	sortStreams(due)
	for _, s := range due {
		s.endPlain(reason, s.f.Last)
	}
}

// sortStreams orders streams by their first packet, then endpoints.
func sortStreams(ss []*tcpStream) {
	slices.SortFunc(ss, func(x, y *tcpStream) int {
		return cmp.Or(x.f.First.Compare(y.f.First), x.key.a.Compare(y.key.a), x.key.b.Compare(y.key.b))
	})
}

// evictPlain ends the least recently active eighth of the plaintext
// streams, as if idle, once more than MaxFlows are open.
func (e *Engine) evictPlain() {
	last := make([]time.Time, 0, len(e.plain))
	for _, s := range e.plain {
		last = append(last, s.f.Last)
	}
	before := len(e.plain)
	e.flushing = true
	e.endPlainStreams(eighthCut(last), proto.EndIdle)
	e.flushing = false
	e.stats.Evicted += uint64(before - len(e.plain))
	e.deliverPending()
}
