// Package tlsplain is the node agent's TLS plaintext: it finds the TLS
// libraries of the node's processes (bpf/tlslib), probes them
// (bpf.TLSProbes), stores each chunk of plaintext as a plaintext record
// (capture.AppendPlaintext) beside the packets in the segment store, and
// says what it covers and, where it cannot see inside, why (Coverage).
package tlsplain

import (
	"net/netip"
	"slices"
	"time"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
)

// connKey names a connection whichever way round: a < b.
type connKey struct{ a, b netip.AddrPort }

func keyOf(x, y netip.AddrPort) (connKey, int) {
	if x.Compare(y) <= 0 {
		return connKey{x, y}, 0
	}
	return connKey{y, x}, 1
}

// conn is what the sequencer keeps of a connection.
type conn struct {
	owner netip.AddrPort // the end whose process's chunks are stored
	next  [2]uint32      // the next seq each way: [0] a sends, [1] b sends
	last  time.Time      // the latest chunk's time
}

// sequencer numbers the chunks of each connection as plaintext records:
// seq counts the plaintext bytes each way, lost bytes included, so that a
// dropped chunk is a gap of its size. When both ends of a connection are
// probed (client and server on one node), the end seen first is kept and
// the other end's chunks, the same bytes, are counted as Duplicates.
type sequencer struct {
	conns      map[connKey]*conn
	max        int
	Duplicates uint64 // chunks left out: the connection's other end tells the same bytes
	Evicted    uint64 // connections forgotten to stay under max
}

func newSequencer(max int) *sequencer {
	return &sequencer{conns: map[connKey]*conn{}, max: max}
}

// known reports whether c's connection is numbered already.
func (s *sequencer) known(c *bpf.Chunk) bool {
	k, _ := keyOf(c.Local, c.Remote)
	_, ok := s.conns[k]
	return ok
}

// record appends c's plaintext record to dst and fills p with it; false
// when the chunk is left out (the other end's copy, no addresses).
func (s *sequencer) record(dst []byte, c *bpf.Chunk, p *capture.Packet) ([]byte, bool) {
	if !c.Local.IsValid() || !c.Remote.IsValid() {
		return dst, false
	}
	src, to := c.Local, c.Remote
	if c.Read {
		src, to = c.Remote, c.Local
	}
	k, dir := keyOf(src, to)
	cn := s.conns[k]
	if cn == nil {
		if len(s.conns) >= s.max {
			s.evict()
		}
		cn = &conn{owner: c.Local, next: [2]uint32{1, 1}}
		s.conns[k] = cn
	}
	if cn.owner != c.Local {
		s.Duplicates++
		return dst, false
	}
	if c.Time.After(cn.last) {
		cn.last = c.Time
	}
	// What this chunk stands for: its bytes, or for the last chunk of a
	// call cut at MaxChunks, the rest of the call.
	wire := len(c.Data)
	if rest := int(c.Len) - int(c.Offset); c.Offset == (bpf.MaxChunks-1)*bpf.ChunkBytes && rest > wire {
		wire = rest
	}
	cn.next[dir] += c.Lost
	seq, ack := cn.next[dir], cn.next[1-dir]
	cn.next[dir] += uint32(wire)
	h := capture.PlaintextHeader{Library: c.Library.Kind, Read: c.Read, PID: c.PID, Major: c.Library.Major, Minor: c.Library.Minor}
	start := len(dst)
	dst = capture.AppendPlaintext(dst, h, src, to, seq, ack, c.Data)
	*p = capture.Packet{
		Timestamp: c.Time,
		Data:      dst[start:],
		Length:    len(dst) - start + wire - len(c.Data),
		LinkType:  capture.LinkTypeTLSPlaintext,
	}
	return dst, true
}

// evict forgets the connections quiet longest: the older half.
func (s *sequencer) evict() {
	var times []time.Time
	for _, c := range s.conns {
		times = append(times, c.last)
	}
	slices.SortFunc(times, time.Time.Compare)
	med := times[len(times)/2]
	for k, c := range s.conns {
		if !c.last.After(med) {
			delete(s.conns, k)
			s.Evicted++
		}
	}
}
