package dissect

import (
	"cmp"
	"context"
	"encoding/binary"
	"io"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// Parallel dissects a capture with several Engines, one per goroutine, and
// delivers what they produce exactly as one Engine would: the same calls and
// flows, in the same order, with the same IDs.
//
// Flows are spread over the engines (shards) by a hash of their endpoints,
// so each connection is reassembled and parsed by one shard. The goroutine
// that reads the capture decodes each packet once, right after copying it,
// to tag it with the shard that owns it; every shard sees every packet's
// time, and one that does not own a packet only lets its clock advance, so
// reorder waits and idle timeouts run out at the same packet as in one
// Engine. (IP fragments go to every shard, as each keeps its own
// defragmenter; the shard that owns the reassembled datagram takes it.) Calls and flows are tagged with the index of the
// packet during which they were produced; a merger on the caller's goroutine
// interleaves the shards' output by that tag, and the output of the flushes
// every shard runs at the same packet by time and ID, as Engine does.
type Parallel struct {
	opts   Options
	shards []*shard
	corr   *Correlations
}

// shard is one Engine and the goroutine that feeds it.
type shard struct {
	e     *Engine
	index int
	n     int
	in    chan job
	out   chan result
	items []item
	pkt   uint64 // index of the packet being handled
}

// job is a batch for a shard, or the order to finish.
type job struct {
	b      *capture.Batch
	first  uint64 // index of the batch's first packet
	finish bool
}

// result is what a shard produced for one job.
type result struct {
	items []item
	stats *Stats // set for the finish job
}

// item is a call or a flow, with where in the capture it was produced.
type item struct {
	pkt   uint64 // index of the packet during which it was produced
	flush bool   // produced by a flush, ordered by time and ID
	call  *Call
	flow  *Flow
}

// NewParallel returns a Parallel with n shards (at least one, at most 254).
// Options are those of New; the bounds on the whole (MaxPagesTotal,
// MaxHeldTotal, MaxBufferedTotal, MaxFlows) are split evenly between the shards, so that they stay bounds
// on the whole, and the other limits apply per shard. OnCall and OnFlow are
// called on the goroutine that calls Run. (When a bound on the whole is
// reached, which flows give way depends on the shards: only then can the
// output differ from one Engine's.)
func NewParallel(opts Options, n int) *Parallel {
	n = max(min(n, tagAll), 1)
	p := &Parallel{opts: opts}
	whole := opts
	whole.setDefaults()
	p.corr = opts.Correlations
	if p.corr == nil {
		p.corr = NewCorrelations(whole.Protocols)
	}
	share := func(v int) int { return max(v/n, 1) }
	for i := range n {
		// A shard holds at most maxInflight batches between Run's send and
		// its merge: with room for that many jobs and results, neither side
		// ever waits for the other.
		sh := &shard{index: i, n: n, in: make(chan job, maxInflight+1), out: make(chan result, maxInflight+1)}
		o := opts
		o.OnCall, o.OnFlow = nil, nil
		o.shard = true
		o.MaxPagesTotal = share(whole.MaxPagesTotal)
		o.MaxPagesPerConn = min(whole.MaxPagesPerConn, o.MaxPagesTotal)
		o.MaxFlows = share(whole.MaxFlows)
		o.MaxHeldTotal = share(whole.MaxHeldTotal)
		o.MaxBufferedTotal = share(whole.MaxBufferedTotal)
		if opts.OnCall != nil {
			o.OnCall = func(c *Call) {
				sh.items = append(sh.items, item{pkt: sh.pkt, flush: sh.e.delivering, call: c})
			}
		}
		if opts.OnFlow != nil {
			o.OnFlow = func(f *Flow) {
				cp := *f // the engine may still count trailing packets
				sh.items = append(sh.items, item{pkt: sh.pkt, flush: sh.e.delivering, flow: &cp})
			}
		}
		sh.e = New(o)
		p.shards = append(p.shards, sh)
	}
	return p
}

// maxInflight bounds the batches handed to shards and not yet merged; it
// stays below the Batcher's pool so that reading never waits for merging.
const maxInflight = 6

// Run dissects src to its end, delivering calls and flows to the Options'
// callbacks, and returns the statistics of all shards. progress, if not
// nil, is told how many packets have been read, after every batch. When
// ctx is cancelled Run stops reading, lets the shards drop what they hold
// (flows still open are not finished) and returns ctx's error. It closes
// src. A Parallel runs once.
func (p *Parallel) Run(ctx context.Context, src capture.Source, progress func(packets uint64)) (Stats, []capture.Warning, error) {
	var cls *classifier
	var classify capture.Classifier
	if len(p.shards) > 1 {
		cls = &classifier{dec: capture.NewDecoder(), n: len(p.shards)}
		classify = cls.tag
	}
	r := capture.NewBatcher(src, classify)
	for _, sh := range p.shards {
		go sh.run()
	}
	var (
		next     uint64
		inflight int
		err      error
	)
	for {
		if inflight == maxInflight {
			p.merge()
			inflight--
		}
		if err = ctx.Err(); err != nil {
			break
		}
		b, e := r.Next()
		if e != nil {
			if e != io.EOF {
				err = e
			}
			break
		}
		n := uint64(len(b.Packets)) // b is the shards' once sent
		b.Share(len(p.shards))
		for _, sh := range p.shards {
			sh.in <- job{b: b, first: next}
		}
		next += n
		inflight++
		if progress != nil {
			progress(next)
		}
	}
	for ; inflight > 0; inflight-- {
		p.merge()
	}
	var st Stats
	if ctx.Err() == nil {
		for _, sh := range p.shards {
			sh.in <- job{finish: true, first: next}
		}
		st = p.merge()
	}
	for _, sh := range p.shards {
		close(sh.in)
	}
	warnings := r.Warnings()
	if cls != nil {
		st.Decode = cls.dec.Stats
	}
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	return st, warnings, err
}

// Shard tags beyond shard numbers.
const (
	tagAll  = 254 // every shard decodes it (an IP fragment)
	tagNone = 255 // no shard decodes it (nothing to dissect)
)

// classifier tags packets with the shard that owns them, on the reading
// goroutine.
type classifier struct {
	dec *capture.Decoder
	cur capture.Decoded
	n   int
}

func (c *classifier) tag(p *capture.Packet) uint8 {
	if sh, ok := quickShard(p, c.n); ok {
		return uint8(sh)
	}
	err := c.dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &c.cur)
	switch {
	case err == capture.ErrFragment || (err == nil && c.cur.Reassembled):
		return tagAll
	case err != nil:
		return tagNone
	case isICMPError(&c.cur):
		// Every shard notes it on the flow it quotes, if that flow is
		// its; the ICMP flow's own shard dissects it.
		return tagAll
	}
	return uint8(shardOf(&c.cur, c.n))
}

// run handles the shard's jobs in order.
func (sh *shard) run() {
	e := sh.e
	for j := range sh.in {
		if j.finish {
			sh.pkt = j.first
			st := e.Finish()
			sh.out <- result{items: sh.take(), stats: &st}
			continue
		}
		tags := j.b.Tags
		if len(tags) != len(j.b.Packets) {
			tags = nil // not classified: one shard owns everything
		}
		for i := range j.b.Packets {
			p := &j.b.Packets[i]
			sh.pkt = j.first + uint64(i)
			e.clock(p)
			if tags != nil && tags[i] != tagAll && int(tags[i]) != sh.index {
				continue // another shard's, or nothing to dissect
			}
			if e.dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &e.cur) != nil {
				continue
			}
			if tags != nil && tags[i] == tagAll && shardOf(&e.cur, sh.n) != sh.index {
				if isICMPError(&e.cur) {
					e.noteICMPError(&e.cur)
				}
				continue
			}
			e.dispatch(p)
		}
		j.b.Release()
		sh.out <- result{items: sh.take()}
	}
}

func (sh *shard) take() []item {
	items := sh.items
	sh.items = nil
	return items
}

// quickShard is shardOf for the common frame, read from its bytes: TCP or
// UDP in IPv4 without options or fragmentation, in Ethernet without VLAN
// tags. The reading goroutine classifies every packet, and the full
// Decoder (gopacket's layers, TCP options) took a tenth of a dissection's
// CPU doing it, for a shard that decodes the packet again. ok is false for
// any other frame, and for one the Decoder would refuse or count (a
// malformed header), so that those take the Decoder's path and its
// statistics stay the same. TLS plaintext records (another link type)
// take the Decoder's path too: shardOf puts them with their connection's
// packets, as they share its endpoints.
func quickShard(p *capture.Packet, n int) (int, bool) {
	b := p.Data
	if p.LinkType != layers.LinkTypeEthernet || len(b) < 14+20 ||
		binary.BigEndian.Uint16(b[12:14]) != uint16(layers.EthernetTypeIPv4) {
		return 0, false
	}
	ip := b[14:]
	length := int(binary.BigEndian.Uint16(ip[2:4]))
	if length == 0 {
		length = len(ip) // TSO: the Decoder takes the frame's length
	}
	if ip[0] != 0x45 || length < 20 || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return 0, false // not IPv4, options, a fragment, or a bad length
	}
	proto := layers.IPProtocol(ip[9])
	t := ip[20:min(length, len(ip))]
	switch proto {
	case layers.IPProtocolTCP:
		if len(t) < 20 || t[12]>>4 < 5 || int(t[12]>>4)*4 > len(t) {
			return 0, false
		}
	case layers.IPProtocolUDP:
		if len(t) < 8 {
			return 0, false
		}
		if u := binary.BigEndian.Uint16(t[4:6]); u < 8 && u != 0 {
			return 0, false
		}
	default:
		return 0, false
	}
	var src, dst [16]byte
	src[10], src[11], dst[10], dst[11] = 0xff, 0xff, 0xff, 0xff // IPv4-mapped, as netip.Addr.As16
	copy(src[12:], ip[12:16])
	copy(dst[12:], ip[16:20])
	h := mix64(endpointHash(src, binary.BigEndian.Uint16(t[0:2])) + endpointHash(dst, binary.BigEndian.Uint16(t[2:4])) + uint64(proto))
	return int(h % uint64(n)), true
}

// shardOf picks the shard that owns the packet's flow, the same for both
// directions: the endpoints' hashes are combined by addition, which does not
// care about order (nor cancels, as XOR would for two equal addresses).
func shardOf(d *capture.Decoded, n int) int {
	h := mix64(endpointHash(d.Src.As16(), d.SrcPort) + endpointHash(d.Dst.As16(), d.DstPort) + uint64(d.Proto))
	return int(h % uint64(n))
}

func endpointHash(a [16]byte, port uint16) uint64 {
	return mix64(binary.LittleEndian.Uint64(a[:8]) ^ mix64(binary.LittleEndian.Uint64(a[8:])^uint64(port)))
}

// mix64 is the splitmix64 finaliser: every input bit affects every output
// bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// merge takes one result from every shard, interleaves their items in the
// order one Engine would have produced them, and delivers them. It returns
// the summed statistics when the results carry them (the finish job).
func (p *Parallel) merge() Stats {
	lists := make([][]item, len(p.shards))
	var stats []*Stats
	for i, sh := range p.shards {
		res := <-sh.out
		lists[i] = res.items
		if res.stats != nil {
			stats = append(stats, res.stats)
		}
	}
	for {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || before(&l[0], &lists[best][0])) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		it := &lists[best][0]
		if it.call != nil {
			p.corr.apply(it.call)
			p.opts.OnCall(it.call)
		} else {
			p.opts.OnFlow(it.flow)
		}
		lists[best] = lists[best][1:]
	}
	if len(stats) == 0 {
		return Stats{}
	}
	return sumStats(stats)
}

// group orders the items produced at one packet: a flush's calls, then its
// flows (Engine.deliverPending), then the packet's own.
func (it *item) group() int {
	switch {
	case it.flush && it.call != nil:
		return 0
	case it.flush:
		return 1
	}
	return 2
}

// before reports whether a comes before b in one Engine's output. Each
// shard's list is already in that order; only the heads of different
// shards are compared.
func before(a, b *item) bool {
	if a.pkt != b.pkt {
		return a.pkt < b.pkt
	}
	ga, gb := a.group(), b.group()
	if ga != gb {
		return ga < gb
	}
	switch ga {
	case 0:
		return cmp.Or(a.call.TS.Compare(b.call.TS), strings.Compare(a.call.ID, b.call.ID)) < 0
	case 1:
		return cmp.Or(a.flow.First.Compare(b.flow.First), strings.Compare(a.flow.ID, b.flow.ID)) < 0
	}
	return false // one shard produces a packet's own items
}

// sumStats adds the shards' statistics. Every shard counts and decodes
// every packet, so those counters are taken from one.
func sumStats(all []*Stats) Stats {
	s := *all[0]
	s.Flows, s.FlowsByProto, s.Calls = clone(s.Flows), clone(s.FlowsByProto), clone(s.Calls)
	for _, o := range all[1:] {
		s.TruncatedPackets += o.TruncatedPackets
		s.Unanswered += o.Unanswered
		s.Orphans += o.Orphans
		s.OneWay += o.OneWay
		s.Truncated += o.Truncated
		s.Malformed += o.Malformed
		s.MissingBytes += o.MissingBytes
		s.SkippedBytes += o.SkippedBytes
		s.Retransmissions += o.Retransmissions
		s.Evicted += o.Evicted
		s.MemoryEnded += o.MemoryEnded
		for k, v := range o.Flows {
			s.Flows[k] += v
		}
		for k, v := range o.FlowsByProto {
			s.FlowsByProto[k] += v
		}
		for k, v := range o.Calls {
			s.Calls[k] += v
		}
	}
	return s
}
