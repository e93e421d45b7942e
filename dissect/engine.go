package dissect

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect/proto"
)

// Options configure an Engine. Zero fields take defaults.
type Options struct {
	// Protocols are the dissectors to use; nil means All().
	Protocols []proto.Protocol
	// Identity fills Kubernetes identities of call and flow endpoints; nil
	// leaves them empty.
	Identity Identifier
	// OnCall receives every call. It must not keep c past the call unless it
	// owns it (the engine does not reuse calls).
	OnCall func(c *Call)
	// OnFlow receives every flow when it ends.
	OnFlow func(f *Flow)
	// Correlations, when set, are shared with other dissections (of the
	// windows before this one): see Correlations. Nil: the dissection's
	// own.
	Correlations *Correlations
	// shard: the engine is one of a Parallel's, which correlates the
	// calls it merges (proto.Correlator) itself.
	shard bool
	// Limits bound what parsers keep per message.
	Limits proto.Limits

	// MaxPagesPerConn bounds the out-of-order data buffered for one TCP
	// connection, in 1,900-byte pages; past it the oldest gap is given up
	// (its bytes count as missing) and what waited behind it is parsed.
	// Default 1,024 (about 2 MiB).
	MaxPagesPerConn int
	// MaxPagesTotal bounds out-of-order data buffered in total, the same
	// way. Default 8,192 (about 16 MiB). Parallel splits it between its
	// shards.
	MaxPagesTotal int
	// MaxHeld bounds the bytes held per side of a flow while its protocol is
	// not yet known. Default 16 KiB.
	MaxHeld int
	// MaxHeldTotal bounds the bytes held in total; past it a side's bytes
	// are tried for detection and not held. Default 8 MiB. Parallel splits
	// it between its shards.
	MaxHeldTotal int
	// MaxBufferedTotal bounds the bytes the protocol parsers of TCP
	// connections and of UDP flows keep in total (partial header blocks and
	// messages, bodies kept for display, requests waiting for their
	// response), as they report them (proto.Buffering). Past it the
	// connections and flows whose parsers keep the most are ended early,
	// with proto.EndMemory, until they keep at most three quarters of it;
	// they are counted in Stats.MemoryEnded and the calls they cut say so.
	// The payload a TCP connection ended so dropped, and that which arrives
	// for it afterwards, counts as skipped; a UDP flow's later datagrams
	// start a new flow. Default 32 MiB. Parallel splits it between its
	// shards.
	MaxBufferedTotal int
	// ReorderWait is how long (in capture time) out-of-order data waits for
	// a missing segment before the gap is given up. Default 2s.
	ReorderWait time.Duration
	// TCPIdle closes TCP connections idle that long. Default 5m.
	TCPIdle time.Duration
	// UDPIdle ends UDP and other flows idle that long (SCTP associations
	// take TCPIdle). Default 1m.
	UDPIdle time.Duration
	// MaxFlows bounds the TCP connections, and separately the UDP and other
	// flows, tracked at once (a SYN flood, a scan or a flood of stalled
	// connections opens many), and the ended connections kept a few seconds
	// for their trailing packets. Past it the least recently active eighth
	// are ended early, as idle, and counted in Stats.Evicted; payload that
	// arrives for them afterwards counts as skipped. Default 8,192, which
	// keeps an engine's flow state to tens of MiB (an HTTP connection with a
	// request waiting for its response costs about 4 KiB). Parallel splits
	// it between its shards.
	MaxFlows int
}

// defaultMaxFlows is MaxFlows when it is not set.
const defaultMaxFlows = 8192

func (o *Options) setDefaults() {
	if o.Protocols == nil {
		o.Protocols = All()
	}
	o.Limits = o.Limits.WithDefaults()
	if o.MaxPagesPerConn <= 0 {
		o.MaxPagesPerConn = 1024
	}
	if o.MaxPagesTotal <= 0 {
		o.MaxPagesTotal = 8192
	}
	if o.MaxHeld <= 0 {
		o.MaxHeld = 16 << 10
	}
	if o.MaxHeldTotal <= 0 {
		o.MaxHeldTotal = 8 << 20
	}
	if o.MaxBufferedTotal <= 0 {
		o.MaxBufferedTotal = 32 << 20
	}
	if o.ReorderWait <= 0 {
		o.ReorderWait = 2 * time.Second
	}
	if o.TCPIdle <= 0 {
		o.TCPIdle = 5 * time.Minute
	}
	if o.UDPIdle <= 0 {
		o.UDPIdle = time.Minute
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = defaultMaxFlows
	}
}

// Stats counts what an Engine saw and what it could not use.
type Stats struct {
	Packets uint64 `json:"packets"`
	// Bytes counts captured frame bytes.
	Bytes  uint64              `json:"bytes"`
	Decode capture.DecodeStats `json:"decode"`
	// TruncatedPackets were cut by the capture's snap length.
	TruncatedPackets uint64 `json:"truncated_packets"`
	// Flows counts flows by transport ("tcp", "udp", …).
	Flows map[string]uint64 `json:"flows"`
	// FlowsByProto counts flows by detected protocol; "" is undissected.
	FlowsByProto map[string]uint64 `json:"flows_by_proto"`
	// Calls counts calls by protocol.
	Calls map[string]uint64 `json:"calls"`
	// Unanswered counts requests emitted without a response.
	Unanswered uint64 `json:"unanswered"`
	// Orphans counts responses emitted without a request.
	Orphans uint64 `json:"orphans"`
	// OneWay counts one-way messages (Call.OneWay), also counted in Calls.
	OneWay uint64 `json:"one_way,omitempty"`
	// Truncated counts calls cut by a gap or the capture's end.
	Truncated uint64 `json:"truncated"`
	// Malformed counts calls whose messages did not parse.
	Malformed uint64 `json:"malformed"`
	// MissingBytes counts TCP payload bytes the capture lacks: gaps in a
	// stream that were given up (when the capture ended, after ReorderWait,
	// or when the out-of-order data behind them reached a page bound).
	MissingBytes uint64 `json:"missing_bytes"`
	// SkippedBytes counts payload bytes the capture holds that were dropped
	// to stay within memory bounds: cut by parser limits, arriving for a
	// gap already given up, or for a connection ended early (Evicted).
	SkippedBytes    uint64 `json:"skipped_bytes"`
	Retransmissions uint64 `json:"retransmissions"`
	// Evicted counts flows ended early because more than MaxFlows were
	// open.
	Evicted uint64 `json:"evicted_flows"`
	// MemoryEnded counts TCP connections and UDP flows ended early because
	// their parsers together kept more than MaxBufferedTotal.
	MemoryEnded uint64 `json:"memory_ended_flows"`
}

// CountCall counts a call in Calls and, by its Error, in Unanswered,
// Orphans, Truncated or Malformed.
func (s *Stats) CountCall(c *Call) {
	if s.Calls == nil {
		s.Calls = map[string]uint64{}
	}
	s.Calls[c.Proto]++
	if c.OneWay {
		s.OneWay++
		if k := c.ProblemKind(); k == proto.Truncated {
			s.Truncated++
		} else if k == proto.Malformed {
			s.Malformed++
		}
		return
	}
	switch c.ProblemKind() {
	case proto.Unanswered:
		s.Unanswered++
	case proto.Orphan:
		s.Orphans++
	case proto.Truncated:
		s.Truncated++
	case proto.Malformed:
		s.Malformed++
	}
}

// Engine dissects packets into calls. It is not safe for concurrent use.
type Engine struct {
	opts    Options
	dec     *capture.Decoder
	cur     capture.Decoded
	pool    *reassembly.StreamPool
	asm     *reassembly.Assembler
	ctxs    []tsContext
	ctxNext int
	dgrams  map[dgKey]*dgFlow
	// recent holds TCP connections that ended in the last few seconds, so
	// that their trailing ACKs and FINs count towards them instead of
	// opening phantom mid-stream connections.
	recent map[connKey]*tcpStream
	// live holds the TCP connections gopacket tracks, for eviction.
	live map[*tcpStream]struct{}
	// liveKeys finds a live connection by its endpoints, for the ICMP
	// errors that quote it.
	liveKeys map[connKey]*tcpStream
	// plain holds the TLS plaintext streams open (plaintext.go).
	plain map[connKey]*tcpStream
	// expiring holds the connections whose parsers expire requests
	// (proto.Expiring), so that expireStreams does not visit every one;
	// connections that ended or switched parsers leave it there.
	expiring map[*tcpStream]struct{}
	// held counts the bytes TCP connections hold before detection.
	held int
	// buffered counts the bytes the parsers of TCP connections and of
	// datagram flows keep, as they last reported them.
	buffered int
	stats    Stats

	streamProtos []proto.StreamProtocol
	dgramProtos  []proto.DatagramProtocol
	ports        map[string][]uint16

	// Calls and flows produced while flushing are delivered sorted by
	// time, as gopacket flushes connections in map order.
	pendCalls []*Call
	pendFlows []*Flow

	maxTS     time.Time
	nextFlush time.Time
	flushing  bool
	// evicting is set while evictTCP ends connections early.
	evicting bool
	// delivering is set while deliverPending hands over a flush's output
	// (Parallel tags it so).
	delivering bool
	ending     proto.EndReason
	finished   bool
	// corr correlates calls across connections (proto.Correlator), in
	// output order; nil for a Parallel's shards.
	corr *Correlations
}

// tsContext is the reassembly.AssemblerContext handed to gopacket for one
// packet. gopacket keeps it with out-of-order data until that data is
// delivered, so contexts come from a ring rather than one reused value: a
// page queued for longer than len(ring) packets reads a later time (an
// approximation only for data held that long).
type tsContext struct{ ci gopacket.CaptureInfo }

func (c *tsContext) GetCaptureInfo() gopacket.CaptureInfo { return c.ci }

const ctxRing = 16384

// New returns an Engine.
func New(opts Options) *Engine {
	opts.setDefaults()
	e := &Engine{
		opts:     opts,
		dec:      capture.NewDecoder(),
		ctxs:     make([]tsContext, ctxRing),
		dgrams:   make(map[dgKey]*dgFlow),
		recent:   make(map[connKey]*tcpStream),
		live:     make(map[*tcpStream]struct{}),
		liveKeys: make(map[connKey]*tcpStream),
		plain:    make(map[connKey]*tcpStream),
		expiring: make(map[*tcpStream]struct{}),
		ports:    make(map[string][]uint16),
		stats: Stats{
			Flows:        map[string]uint64{},
			FlowsByProto: map[string]uint64{},
			Calls:        map[string]uint64{},
		},
	}
	for _, p := range opts.Protocols {
		if sp, ok := p.(proto.StreamProtocol); ok {
			e.streamProtos = append(e.streamProtos, sp)
		}
		if dp, ok := p.(proto.DatagramProtocol); ok {
			e.dgramProtos = append(e.dgramProtos, dp)
		}
		if ph, ok := p.(proto.PortHinter); ok {
			e.ports[p.Name()] = ph.Ports()
		}
	}
	if !opts.shard {
		e.corr = opts.Correlations
		if e.corr == nil {
			e.corr = NewCorrelations(opts.Protocols)
		}
	}
	e.pool = reassembly.NewStreamPool(&tcpFactory{e: e})
	e.asm = reassembly.NewAssembler(e.pool)
	e.asm.MaxBufferedPagesPerConnection = opts.MaxPagesPerConn
	e.asm.MaxBufferedPagesTotal = opts.MaxPagesTotal
	return e
}

// Packet dissects one packet. Packets must come in capture order.
func (e *Engine) Packet(p *capture.Packet) {
	e.clock(p)
	if e.dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &e.cur) != nil {
		return
	}
	e.dispatch(p)
}

// clock counts a packet and runs the periodic work its time calls for.
func (e *Engine) clock(p *capture.Packet) {
	e.stats.Packets++
	e.stats.Bytes += uint64(len(p.Data))
	if ts := p.Timestamp; ts.After(e.maxTS) {
		e.maxTS = ts
		if !ts.Before(e.nextFlush) {
			e.periodic(ts)
		}
	}
}

// dispatch dissects the packet e.cur was decoded from.
func (e *Engine) dispatch(p *capture.Packet) {
	d := &e.cur
	ts := p.Timestamp
	if d.Truncated {
		e.stats.TruncatedPackets++
	}
	switch d.Proto {
	case layers.IPProtocolTCP:
		if d.Plaintext {
			e.plaintext(d, p)
			return
		}
		if len(e.recent) > 0 && e.late(d, ts) {
			return
		}
		c := &e.ctxs[e.ctxNext]
		e.ctxNext++
		if e.ctxNext == len(e.ctxs) {
			e.ctxNext = 0
		}
		c.ci.Timestamp = ts
		c.ci.CaptureLength = len(p.Data)
		c.ci.Length = p.Length
		e.asm.AssembleWithContext(d.Network, d.TCP, c)
		if len(e.live) > e.opts.MaxFlows {
			e.evictTCP()
		}
		if len(e.recent) > e.opts.MaxFlows {
			e.reportOlderHalf()
		}
	default:
		e.datagram(d, ts)
	}
}

// periodic gives up old gaps, closes idle flows and forgets stale IP
// fragments, at most once per second of capture time.
func (e *Engine) periodic(now time.Time) {
	if !e.nextFlush.IsZero() {
		e.flushing = true
		e.ending = proto.EndIdle
		e.asm.FlushWithOptions(reassembly.FlushOptions{
			T:  now.Add(-e.opts.ReorderWait),
			TC: now.Add(-e.opts.TCPIdle),
		})
		e.expireDatagrams(now, now.Add(-e.opts.UDPIdle), now.Add(-e.opts.TCPIdle), proto.EndIdle)
		e.endPlainStreams(now.Add(-e.opts.TCPIdle), proto.EndIdle)
		e.expireStreams(now)
		e.reportRecent(now.Add(-closeLinger))
		e.flushing = false
		e.deliverPending()
		e.dec.Expire(now.Add(-30 * time.Second))
	}
	e.nextFlush = now.Add(time.Second)
}

// expireStreams lets the parsers of open connections that expire requests
// (proto.Expiring) give up on those unanswered for StreamRequestTimeout.
// The caller sets e.flushing. Connections are visited in a fixed order
// (their first packet, then their endpoints), so that the same capture
// always gives the same calls in the same order.
func (e *Engine) expireStreams(now time.Time) {
	deadline := now.Add(-e.opts.Limits.StreamRequestTimeout)
	if len(e.expiring) == 0 {
		return
	}
	var due []*tcpStream
	for s := range e.expiring {
		if _, ok := s.parser.(proto.Expiring); !ok || s.ended {
			delete(e.expiring, s)
			continue
		}
		due = append(due, s)
	}
	slices.SortFunc(due, func(x, y *tcpStream) int {
		return cmp.Or(x.f.First.Compare(y.f.First), x.key.a.Compare(y.key.a), x.key.b.Compare(y.key.b), cmp.Compare(x.plain, y.plain))
	})
	for _, s := range due {
		// An earlier one's account may have ended this connection early.
		if ex, ok := s.parser.(proto.Expiring); ok {
			ex.Expire(deadline)
			s.top().account()
		}
	}
}

// eighthCut returns the time just after the least recent eighth of last
// (the flows' last packets, reordered): those idle before it are evicted.
func eighthCut(last []time.Time) time.Time {
	slices.SortFunc(last, time.Time.Compare)
	return last[len(last)/8].Add(time.Nanosecond)
}

// farFuture is after every capture: flows idle since before it are all.
var farFuture = time.Unix(1<<62, 0)

// evictTCP ends the least recently active eighth of the TCP connections, as
// if they had been idle, once more than MaxFlows are open.
func (e *Engine) evictTCP() {
	last := make([]time.Time, 0, len(e.live))
	for s := range e.live {
		last = append(last, s.f.Last)
	}
	cutoff := eighthCut(last)
	before := len(e.live)
	e.flushing, e.evicting = true, true
	e.ending = proto.EndIdle
	e.asm.FlushWithOptions(reassembly.FlushOptions{T: cutoff, TC: cutoff})
	e.flushing, e.evicting = false, false
	e.stats.Evicted += uint64(before - len(e.live))
	e.deliverPending()
}

// reportOlderHalf reports the half of the ended connections that ended
// longest ago, when connections end faster than they linger for their
// trailing packets; those that just ended keep lingering.
func (e *Engine) reportOlderHalf() {
	last := make([]time.Time, 0, len(e.recent))
	for _, s := range e.recent {
		last = append(last, s.f.Last)
	}
	slices.SortFunc(last, time.Time.Compare)
	e.flushing = true
	n := len(e.recent)
	e.reportRecent(last[len(last)/2])
	if len(e.recent) == n {
		e.reportRecent(time.Time{}) // all ended at the same time
	}
	e.flushing = false
	e.deliverPending()
}

// Finish ends every flow still open (as the capture ended) and returns the
// final statistics. The Engine cannot be used afterwards.
func (e *Engine) Finish() Stats {
	if e.finished {
		return e.Stats()
	}
	e.finished = true
	e.flushing = true
	e.ending = proto.EndCapture
	e.asm.FlushAll()
	e.reportRecent(time.Time{})
	e.endPlainStreams(time.Time{}, proto.EndCapture)
	e.expireDatagrams(e.maxTS, farFuture, farFuture, proto.EndCapture)
	e.flushing = false
	e.deliverPending()
	return e.Stats()
}

// Stats returns the statistics so far.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Decode = e.dec.Stats
	s.Flows = clone(e.stats.Flows)
	s.FlowsByProto = clone(e.stats.FlowsByProto)
	s.Calls = clone(e.stats.Calls)
	return s
}

func clone(m map[string]uint64) map[string]uint64 {
	c := make(map[string]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// orderStream returns the stream protocols, those whose ports match first.
func (e *Engine) orderStream(a, b uint16) []proto.StreamProtocol {
	out := make([]proto.StreamProtocol, 0, len(e.streamProtos))
	for _, p := range e.streamProtos {
		if e.hinted(p.Name(), a, b) {
			out = append(out, p)
		}
	}
	for _, p := range e.streamProtos {
		if !e.hinted(p.Name(), a, b) {
			out = append(out, p)
		}
	}
	return out
}

func (e *Engine) hinted(name string, a, b uint16) bool {
	ports := e.ports[name]
	return slices.Contains(ports, a) || slices.Contains(ports, b)
}

// emit completes a call a parser produced on flow f and passes it on.
// client is the endpoint playing the client role.
func (e *Engine) emit(c *Call, f *Flow, client, server proto.Endpoint, seq uint64) {
	c.Src.IP, c.Src.Port = client.IP, client.Port
	c.Dst.IP, c.Dst.Port = server.IP, server.Port
	c.ID = callID(c, seq)
	// The kind of Error travels typed from here on; a parser that wrote
	// only the text gets it read once, here.
	c.Problem = c.ProblemKind()
	if e.opts.Identity != nil {
		e.identify(&c.Src, c.TS)
		e.identify(&c.Dst, c.TS)
	}
	if f.ICMP != "" && c.Problem == proto.Unanswered && c.Error == "no response" {
		// The flow's packets drew an ICMP error: that is why.
		c.Error += ": ICMP " + f.ICMP
	}
	f.Calls++
	e.stats.CountCall(c)
	if e.flushing {
		e.pendCalls = append(e.pendCalls, c)
	} else if e.opts.OnCall != nil {
		e.corr.apply(c)
		e.opts.OnCall(c)
	}
}

// deliverPending hands over, in time order, what a flush produced.
func (e *Engine) deliverPending() {
	e.delivering = true
	defer func() { e.delivering = false }()
	slices.SortStableFunc(e.pendCalls, func(a, b *Call) int {
		return cmp.Or(a.TS.Compare(b.TS), strings.Compare(a.ID, b.ID))
	})
	slices.SortStableFunc(e.pendFlows, func(a, b *Flow) int {
		return cmp.Or(a.First.Compare(b.First), strings.Compare(a.ID, b.ID))
	})
	for i, c := range e.pendCalls {
		if e.opts.OnCall != nil {
			e.corr.apply(c)
			e.opts.OnCall(c)
		}
		e.pendCalls[i] = nil
	}
	for i, f := range e.pendFlows {
		if e.opts.OnFlow != nil {
			e.opts.OnFlow(f)
		}
		e.pendFlows[i] = nil
	}
	e.pendCalls, e.pendFlows = e.pendCalls[:0], e.pendFlows[:0]
}

func (e *Engine) identify(ep *proto.Endpoint, at time.Time) {
	id, ok := e.opts.Identity.Identify(netip.AddrPortFrom(ep.IP, ep.Port), at)
	if !ok {
		return
	}
	ep.Pod, ep.Namespace, ep.Workload, ep.Service, ep.Node, ep.Version = id.Pod, id.Namespace, id.Workload, id.Service, id.Node, id.Version
}

// endFlow completes a flow record and passes it on.
func (e *Engine) endFlow(f *Flow) {
	f.ID = flowID(f)
	if e.opts.Identity != nil {
		e.identify(&f.Src, f.First)
		e.identify(&f.Dst, f.First)
	}
	e.stats.Flows[f.Transport]++
	e.stats.FlowsByProto[f.Proto]++
	e.stats.MissingBytes += f.MissingBytes
	e.stats.SkippedBytes += f.SkippedBytes
	e.stats.Retransmissions += f.Retransmissions
	if e.flushing {
		e.pendFlows = append(e.pendFlows, f)
	} else if e.opts.OnFlow != nil {
		e.opts.OnFlow(f)
	}
}

// fnv64 is FNV-1a, written out so that IDs cost no allocation and stay the
// same across runs and versions.
type fnv64 uint64

func newFNV() fnv64 { return 14695981039346656037 }

func (h fnv64) bytes(b []byte) fnv64 {
	for _, c := range b {
		h ^= fnv64(c)
		h *= 1099511628211
	}
	return h
}

func (h fnv64) str(s string) fnv64 {
	for i := 0; i < len(s); i++ {
		h ^= fnv64(s[i])
		h *= 1099511628211
	}
	return h
}

func (h fnv64) u64(v uint64) fnv64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return h.bytes(b[:])
}

func (h fnv64) addr(a netip.Addr, port uint16) fnv64 {
	b := a.As16()
	return h.bytes(b[:]).u64(uint64(port))
}

// hex returns the hash as 16 hex digits.
func (h fnv64) hex() string {
	const digits = "0123456789abcdef"
	var b [16]byte
	v := uint64(h)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func callID(c *Call, seq uint64) string {
	return newFNV().str(c.Proto).addr(c.Src.IP, c.Src.Port).addr(c.Dst.IP, c.Dst.Port).
		u64(uint64(c.TS.UnixNano())).u64(seq).hex()
}

func flowID(f *Flow) string {
	return newFNV().str(f.Transport).addr(f.Src.IP, f.Src.Port).addr(f.Dst.IP, f.Dst.Port).
		u64(uint64(f.First.UnixNano())).hex()
}

// Correlations are the protocols' correlations (proto.Correlator) of a
// dissection, or of several when Options.Correlations shares them: what a
// Kafka Metadata response in one window names, the next window's calls
// are named by. Safe for concurrent use.
type Correlations struct {
	mu sync.Mutex
	by map[string]func(*Call)
}

// NewCorrelations returns the correlations of protocols (nil: All()).
func NewCorrelations(protocols []proto.Protocol) *Correlations {
	if protocols == nil {
		protocols = All()
	}
	m := &Correlations{by: map[string]func(*Call){}}
	for _, p := range protocols {
		if c, ok := p.(proto.Correlator); ok {
			m.by[p.Name()] = c.NewCorrelation()
		}
	}
	return m
}

// apply passes c to its protocol's correlation, if it has one.
func (m *Correlations) apply(c *Call) {
	if m == nil {
		return
	}
	if f := m.by[c.Proto]; f != nil {
		m.mu.Lock()
		f(c)
		m.mu.Unlock()
	}
}
