// Package flowindex keeps L4 flow statistics per time bucket: for every flow
// (a TCP connection, or the datagrams between two UDP endpoints, or two
// hosts for other IP protocols) and every bucket it was active in, packets,
// bytes and payload bytes in each direction, the TCP flags seen and the
// retransmissions. Summaries over any window are sums of buckets, so they
// are answered without reading packets again.
//
// It also keeps the first payload bytes each side sent, so that a caller
// can guess the application protocol of a flow (HTTP, TLS, …) without
// dissecting it.
//
// An Index is built in one pass over packets (Add) and is safe for
// concurrent reads once built; Add must not run concurrently with anything.
package flowindex

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// HeadBytes is how many payload bytes of each side a flow keeps.
const HeadBytes = 32

// TCP flags recorded per side.
const (
	FlagSYN uint8 = 1 << iota
	FlagSYNACK
	FlagFIN
	FlagRST
)

// Key identifies a flow in either direction: A is the lesser endpoint.
type Key struct {
	A, B  netip.AddrPort
	Proto layers.IPProtocol
}

// NewKey returns the key of the flow between a and b over p, in either
// direction.
func NewKey(a, b netip.AddrPort, p layers.IPProtocol) Key {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return Key{A: a, B: b, Proto: p}
}

func keyOf(d *capture.Decoded) (Key, int) {
	src, dst := netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort)
	if src.Compare(dst) > 0 {
		return Key{A: dst, B: src, Proto: d.Proto}, 1
	}
	return Key{A: src, B: dst, Proto: d.Proto}, 0
}

// Counters are one bucket's statistics. Index 0 of a pair is A→B.
type Counters struct {
	First, Last     int64 // unix nanoseconds
	Packets         [2]uint64
	Bytes           [2]uint64 // IP bytes as sent
	Payload         [2]uint64 // transport payload captured
	Flags           [2]uint8
	Retransmissions [2]uint64
}

func (c *Counters) add(o *Counters) {
	if c.First == 0 || (o.First != 0 && o.First < c.First) {
		c.First = o.First
	}
	c.Last = max(c.Last, o.Last)
	for i := range 2 {
		c.Packets[i] += o.Packets[i]
		c.Bytes[i] += o.Bytes[i]
		c.Payload[i] += o.Payload[i]
		c.Flags[i] |= o.Flags[i]
		c.Retransmissions[i] += o.Retransmissions[i]
	}
}

type bucket struct {
	start int64 // bucket start, unix nanoseconds
	Counters
}

type flow struct {
	key     Key
	first   int64
	sender  int8 // side that sent the first packet
	syn     int8 // side that sent a SYN without ACK, -1 if none
	head    [2][]byte
	nextSeq [2]uint32 // TCP: end of the highest data seen per side
	seqOK   [2]bool
	buckets []bucket // in time order (packets come in capture order)
}

// Index holds the flows of a capture.
type Index struct {
	span  int64
	flows map[Key]*flow
	order []*flow // by first packet
}

// New returns an Index with buckets of the given span (default a minute).
func New(span time.Duration) *Index {
	if span <= 0 {
		span = time.Minute
	}
	return &Index{span: int64(span), flows: map[Key]*flow{}}
}

// Add counts one decoded packet, captured at ts. A TLS plaintext record
// (d.Plaintext) is no packet of its connection's: it is not counted, so
// that the connection's packets and bytes are those on the wire.
func (x *Index) Add(d *capture.Decoded, ts time.Time) {
	if d.Plaintext {
		return
	}
	k, side := keyOf(d)
	f := x.flows[k]
	now := ts.UnixNano()
	if f == nil {
		f = &flow{key: k, first: now, sender: int8(side), syn: -1}
		x.flows[k] = f
		x.order = append(x.order, f)
	}
	x.count(f, f.bucket(now-now%x.span), d, side, now)
}

// bucket returns the counters of the bucket starting at start, adding it in
// time order (packets a little out of order may go to an earlier bucket).
func (f *flow) bucket(start int64) *Counters {
	i := len(f.buckets)
	for i > 0 && f.buckets[i-1].start > start {
		i--
	}
	if i > 0 && f.buckets[i-1].start == start {
		return &f.buckets[i-1].Counters
	}
	f.buckets = slices.Insert(f.buckets, i, bucket{start: start})
	return &f.buckets[i].Counters
}

func (x *Index) count(f *flow, c *Counters, d *capture.Decoded, side int, now int64) {
	if c.First == 0 || now < c.First {
		c.First = now
	}
	c.Last = max(c.Last, now)
	c.Packets[side]++
	c.Bytes[side] += uint64(d.IPLength)
	c.Payload[side] += uint64(len(d.Payload))
	t := d.TCP
	if t == nil {
		f.keepHead(side, d.Payload)
		return
	}
	switch {
	case t.SYN && t.ACK:
		c.Flags[side] |= FlagSYNACK
	case t.SYN:
		c.Flags[side] |= FlagSYN
		if f.syn < 0 {
			f.syn = int8(side)
		}
	}
	if t.FIN {
		c.Flags[side] |= FlagFIN
	}
	if t.RST {
		c.Flags[side] |= FlagRST
	}
	n := uint32(len(t.Payload))
	if t.SYN {
		n++ // a SYN takes a sequence number
	}
	if n == 0 {
		return
	}
	end := t.Seq + n
	if f.seqOK[side] && int32(end-f.nextSeq[side]) <= 0 && !t.SYN {
		// All of it was sent before.
		c.Retransmissions[side]++
		return
	}
	if !f.seqOK[side] || int32(end-f.nextSeq[side]) > 0 {
		f.nextSeq[side], f.seqOK[side] = end, true
	}
	f.keepHead(side, t.Payload)
}

// keepHead keeps the first HeadBytes of payload a side sent.
func (f *flow) keepHead(side int, b []byte) {
	if room := HeadBytes - len(f.head[side]); room > 0 && len(b) > 0 {
		f.head[side] = append(f.head[side], b[:min(len(b), room)]...)
	}
}

// Summary is a flow's activity within a window, oriented client to
// server: Src is the side that sent the SYN, else the side with the higher
// port (servers listen on low ports), else the first sender.
type Summary struct {
	Src, Dst netip.AddrPort
	Proto    layers.IPProtocol
	// First and Last are the first and last packets inside the window.
	First, Last time.Time
	// Began is when the flow's first packet was captured (possibly before
	// the window).
	Began time.Time
	// Counters are oriented like the summary: index 0 is Src→Dst.
	Packets, Bytes, Payload, Retransmissions [2]uint64
	// PayloadUnknown says Payload was not counted (a segment store's index
	// or an agent older than the count): the flow may have carried some.
	PayloadUnknown bool
	Flags          [2]uint8
	// Head holds the first payload bytes each side sent.
	Head [2][]byte
	// Opaque, from a node agent, says why the flow's TLS plaintext cannot
	// be read on its node (the process on one side uses a TLS library the
	// agent cannot probe); "" when it can, or nothing is known.
	Opaque string
}

// Key returns the flow's key.
func (s *Summary) Key() Key { return NewKey(s.Src, s.Dst, s.Proto) }

// Query summarises the flows active in [from, to) (zero times are
// unbounded) for which match (if not nil) returns true, in the order they
// began. Buckets partly inside the window count whole: the window is
// rounded out to bucket boundaries.
func (x *Index) Query(from, to time.Time, match func(*Summary) bool) []Summary {
	var lo, hi int64 = 0, 1<<63 - 1
	if !from.IsZero() {
		lo = from.UnixNano() - from.UnixNano()%x.span
	}
	if !to.IsZero() {
		hi = to.UnixNano()
	}
	var out []Summary
	for _, f := range x.order {
		var c Counters
		for i := range f.buckets {
			if b := &f.buckets[i]; b.start >= lo && b.start < hi {
				c.add(&b.Counters)
			}
		}
		if c.First == 0 {
			continue
		}
		s := f.summary(&c)
		if match == nil || match(&s) {
			out = append(out, s)
		}
	}
	return out
}

// Len returns the number of flows.
func (x *Index) Len() int { return len(x.order) }

func (f *flow) summary(c *Counters) Summary {
	client := int(f.sender)
	switch {
	case f.syn >= 0:
		client = int(f.syn)
	case f.key.A.Port() != f.key.B.Port():
		// Side 0 is A. The server listens on the lower port.
		if f.key.A.Port() < f.key.B.Port() {
			client = 1
		} else {
			client = 0
		}
	}
	ep := [2]netip.AddrPort{f.key.A, f.key.B}
	s := Summary{
		Src: ep[client], Dst: ep[1-client], Proto: f.key.Proto,
		First: time.Unix(0, c.First).UTC(), Last: time.Unix(0, c.Last).UTC(), Began: time.Unix(0, f.first).UTC(),
	}
	for i := range 2 {
		j := i
		if client == 1 {
			j = 1 - i
		}
		s.Packets[i], s.Bytes[i], s.Payload[i] = c.Packets[j], c.Bytes[j], c.Payload[j]
		s.Retransmissions[i], s.Flags[i], s.Head[i] = c.Retransmissions[j], c.Flags[j], f.head[j]
	}
	return s
}

// SortByBytes orders summaries by total bytes, largest first, then by
// when they began: a stable, deterministic order for paging.
func SortByBytes(s []Summary) {
	slices.SortStableFunc(s, func(a, b Summary) int {
		return cmp.Or(cmp.Compare(b.Bytes[0]+b.Bytes[1], a.Bytes[0]+a.Bytes[1]), a.Began.Compare(b.Began),
			a.Src.Compare(b.Src), a.Dst.Compare(b.Dst))
	})
}
