package dissect

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/reassembly"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect/proto"
)

type tcpFactory struct{ e *Engine }

// New implements reassembly.StreamFactory. Side 0 of a stream is the sender
// of the first packet gopacket saw (its "client to server" direction).
func (f *tcpFactory) New(_, _ gopacket.Flow, _ *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	d := &f.e.cur
	s := &tcpStream{sides: sides{e: f.e}, synFrom: -1, synackFrom: -1, next: [2]reassembly.Sequence{-1, -1}}
	s.ep[0] = proto.Endpoint{IP: d.Src, Port: d.SrcPort}
	s.ep[1] = proto.Endpoint{IP: d.Dst, Port: d.DstPort}
	s.key = connKeyOf(d)
	s.f.Transport = "tcp"
	f.e.live[s] = struct{}{}
	f.e.liveKeys[s.key] = s
	if p := f.e.plain[s.key]; p != nil && p.wire == nil {
		s.decryptedBy(p)
	}
	return s
}

// connKey names a TCP connection in either direction: a is the lesser
// endpoint.
type connKey struct{ a, b netip.AddrPort }

func connKeyOf(d *capture.Decoded) connKey {
	a, b := netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort)
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return connKey{a, b}
}

// closeLinger is how long an ended connection keeps collecting its
// trailing packets before its flow is reported.
const closeLinger = 5 * time.Second

// late counts a packet of a connection that already ended and reports
// whether it was one. A SYN on the same endpoints starts a new connection:
// the old one is reported and the packet is not consumed.
func (e *Engine) late(d *capture.Decoded, ts time.Time) bool {
	k := connKeyOf(d)
	s := e.recent[k]
	if s == nil {
		return false
	}
	if d.TCP.SYN && !d.TCP.ACK {
		delete(e.recent, k)
		s.finish()
		return false
	}
	i := 0
	if d.Src != s.ep[0].IP || d.SrcPort != s.ep[0].Port {
		i = 1
	}
	s.count(i, d.TCP, d.IPLength, ts)
	if s.evicted || s.shed {
		// The connection was ended early to bound memory: its payload is
		// dropped.
		s.f.SkippedBytes += uint64(len(d.TCP.Payload))
	}
	return true
}

// reportRecent reports ended connections whose last packet is older than
// before (all of them when before is zero).
func (e *Engine) reportRecent(before time.Time) {
	for k, s := range e.recent {
		if before.IsZero() || s.f.Last.Before(before) {
			delete(e.recent, k)
			s.finish()
		}
	}
}

func side(dir reassembly.TCPFlowDirection) int {
	if dir == reassembly.TCPDirClientToServer {
		return 0
	}
	return 1
}

// heldSeg is one segment of held bytes: buf[off:next segment's off].
type heldSeg struct {
	off int
	t   time.Time
}

// held keeps the bytes one side sent before the flow's protocol is known,
// so that they can be replayed to the parser once the other side reveals
// it (a request the detector could not name, answered by "HTTP/1.0 400").
type held struct {
	buf  []byte
	segs []heldSeg
	// probe is the index in segs where the current detection attempt
	// started (it continues while detectors answer Maybe); -1 when none.
	probe int
}

func (h *held) add(b []byte, t time.Time) {
	h.segs = append(h.segs, heldSeg{off: len(h.buf), t: t})
	h.buf = append(h.buf, b...)
}

// dropHeld lets side i's held bytes go, memory included, and takes them
// off the engine's total.
func (s *tcpStream) dropHeld(i int) {
	s.e.held -= len(s.held[i].buf)
	s.held[i] = held{probe: -1}
}

// seg returns segment k's bytes.
func (h *held) seg(k int) []byte {
	end := len(h.buf)
	if k+1 < len(h.segs) {
		end = h.segs[k+1].off
	}
	return h.buf[h.segs[k].off:end]
}

type tcpStream struct {
	sides
	key        connKey
	synFrom    int8 // side that sent a SYN without ACK, or -1
	synackFrom int8
	fin        [2]bool
	seen       [2]bool // the side has delivered data

	order  []proto.StreamProtocol
	sp     proto.StreamProtocol
	parser proto.StreamParser
	// bufp is parser as a proto.Buffering, if it is one; buffered is what
	// it last reported keeping.
	bufp     proto.Buffering
	buffered int
	// shed is set when the connection was ended early because parsers kept
	// too much: its later payload is dropped.
	shed    bool
	held    [2]held
	upgrade string // protocol the parser asked to switch to
	ended   bool   // the parser has been ended
	done    bool   // the flow has been reported
	evicted bool   // ended early because more than MaxFlows were open

	// next is, per side, the sequence number of the next byte to deliver,
	// -1 until known; given is the last gap given up on that side, so that
	// its bytes, should they arrive after all, count as dropped rather than
	// missing.
	next  [2]reassembly.Sequence
	given [2]seqRange

	// outer is, for a stream carried inside a connection (a decrypted TLS
	// session: Tunnel), that connection: calls, skipped bytes, the flow's
	// protocol notes and memory accounting are its.
	outer *tcpStream

	// plain names the TLS library (capture.PlaintextHeader.Describe) of a
	// plaintext stream (plaintext.go), "" for a connection's packets. wire
	// is, for a plaintext stream, its connection, if this dissection
	// follows it: its calls count there. dec is, for a connection, the
	// plaintext stream that decrypts it.
	plain     string
	wire, dec *tcpStream
	// heldTLS are a connection's TLS handshake records not decrypted by a
	// key log, held (at most maxHeldTLS) until its plaintext shows, when
	// they say it was read by the uprobe, or it ends.
	heldTLS []*Call
	// endReason is why the parser was ended, once ended is set.
	endReason proto.EndReason
}

// seqRange is the sequence numbers [from, to).
type seqRange struct{ from, to reassembly.Sequence }

// Accept implements reassembly.Stream: it keeps the flow's counters and
// accepts every packet, starting mid-stream when the handshake is missing.
func (s *tcpStream) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, _ reassembly.AssemblerContext) bool {
	i := side(dir)
	f := &s.f
	s.count(i, tcp, s.e.cur.IPLength, ci.Timestamp)
	n := len(tcp.Payload)
	if tcp.SYN {
		if tcp.ACK {
			f.SYNACK = true
			if s.synackFrom < 0 {
				s.synackFrom = int8(i)
			}
		} else {
			f.SYN = true
			if s.synFrom < 0 {
				s.synFrom = int8(i)
			}
		}
	} else if n > 0 && nextSeq >= 0 {
		s.next[i] = nextSeq
		seq := reassembly.Sequence(tcp.Seq)
		if s.lateFill(i, seq, seq.Add(n)) {
			// Not a retransmission: the segment was missed while waiting
			// for it was given up.
		} else if seq.Add(n).Difference(nextSeq) >= 0 {
			f.Retransmissions++
		}
	} else if nextSeq >= 0 {
		s.next[i] = nextSeq
	}
	*start = true
	return true
}

// lateFill counts the bytes of [from, to) that side i sent into the gap last
// given up on that side: they were counted as missing, but the capture holds
// them and reassembly drops them. It reports whether there were any.
func (s *tcpStream) lateFill(i int, from, to reassembly.Sequence) bool {
	g := &s.given[i]
	if g.from == g.to || to.Difference(g.from) >= 0 || g.to.Difference(from) >= 0 {
		return false
	}
	lo, hi := g.from, g.to
	if g.from.Difference(from) > 0 {
		lo = from
	}
	if to.Difference(g.to) > 0 {
		hi = to
	}
	n := uint64(lo.Difference(hi))
	s.f.SkippedBytes += n
	s.f.MissingBytes -= min(n, s.f.MissingBytes)
	switch {
	case lo == g.from:
		g.from = hi
	default:
		g.to = lo // a piece after it is no longer tracked
	}
	return true
}

// count adds a packet side i sent, at ts, to the flow's counters.
func (s *tcpStream) count(i int, tcp *layers.TCP, ipLen int, ts time.Time) {
	f := &s.f
	if f.First.IsZero() || ts.Before(f.First) {
		f.First = ts
	}
	if ts.After(f.Last) {
		f.Last = ts
	}
	f.Packets[i]++
	f.Bytes[i] += uint64(ipLen)
	f.PayloadBytes[i] += uint64(len(tcp.Payload))
	if tcp.FIN {
		s.fin[i] = true
	}
	if tcp.RST {
		f.RST[i] = true
	}
}

// ReassembledSG implements reassembly.Stream.
func (s *tcpStream) ReassembledSG(sg reassembly.ScatterGather, _ reassembly.AssemblerContext) {
	dir, _, end, skip := sg.Info()
	i := side(dir)
	n, _ := sg.Lengths()
	if skip > 0 || (skip < 0 && s.seen[i]) {
		s.gap(i, skip)
	}
	if at := s.next[i]; at >= 0 {
		if skip > 0 {
			s.given[i] = seqRange{at, at.Add(skip)}
			at = at.Add(skip)
		}
		s.next[i] = at.Add(n)
	}
	if n > 0 {
		s.seen[i] = true
		s.feed(i, sg, n)
	}
	if end && s.f.RST[i] {
		// A reset ends the conversation even though gopacket keeps the
		// other half open until it closes or idles out.
		s.endParser(proto.EndRST, s.f.Last)
	}
}

// ReassemblyComplete implements reassembly.Stream.
func (s *tcpStream) ReassemblyComplete(reassembly.AssemblerContext) bool {
	reason := proto.EndFIN
	switch {
	case s.f.RST[0] || s.f.RST[1]:
		reason = proto.EndRST
	case s.e.flushing && !(s.fin[0] && s.fin[1]):
		reason = s.e.ending
	}
	s.endParser(reason, s.f.Last)
	s.evicted = s.e.evicting
	delete(s.e.live, s)
	if s.e.liveKeys[s.key] == s {
		delete(s.e.liveKeys, s.key)
	}
	s.e.recent[s.key] = s
	return true
}

// feed passes the n bytes of sg to the parser, each with the time it was
// captured. In-order data comes as one packet; data released after waiting
// for a missing segment comes as many, and the parser must see each with its
// own time (a response queued behind a gap did not start when the first
// queued page was captured). gopacket shows no chunk boundaries, so the runs
// of bytes sharing a capture time are found by binary search, assuming times
// do not decrease along the stream.
func (s *tcpStream) feed(i int, sg reassembly.ScatterGather, n int) {
	data := sg.Fetch(n)
	if sg.Stats().Chunks <= 1 {
		s.data(i, data, sg.CaptureInfo(0).Timestamp)
		return
	}
	for off := 0; off < n; {
		t := sg.CaptureInfo(off).Timestamp
		lo, hi := off+1, n
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if sg.CaptureInfo(mid).Timestamp.Equal(t) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		s.data(i, data[off:lo], t)
		off = lo
	}
}

// gap tells side i's parser that n bytes (-1: an unknown number) will not
// come. Whatever made reassembly give them up (the capture's end, the
// reorder wait, a page bound), the capture did not hold them by then: they
// count as missing.
func (s *tcpStream) gap(i, n int) {
	if n > 0 {
		s.f.MissingBytes += uint64(n)
	}
	if s.parser != nil {
		if !s.ended {
			s.parser.Gap(s.role[i], n)
			s.account()
		}
		return
	}
	// Held bytes before a gap cannot be replayed as if they were contiguous
	// with what follows.
	s.dropHeld(i)
}

func (s *tcpStream) data(i int, b []byte, t time.Time) {
	if s.ended {
		if s.shed {
			s.f.SkippedBytes += uint64(len(b))
		}
		return
	}
	if s.parser != nil {
		s.parser.Feed(s.role[i], b, t)
		s.afterFeed()
		s.account()
		return
	}
	s.detect(i, b, t)
}

// account takes what the parser keeps now into the engine's total, and
// ends connections early if the total is past its bound.
func (s *tcpStream) account() {
	if s.bufp == nil || s.outer != nil {
		// A tunnel's parser is counted in its connection's parser's
		// Buffered, once that returns.
		return
	}
	n := s.bufp.Buffered()
	if n == s.buffered {
		return
	}
	s.setBuffered(n)
	if s.e.buffered > s.e.opts.MaxBufferedTotal {
		s.e.shedBuffered()
	}
}

// setBuffered records that the parser keeps n bytes.
func (s *tcpStream) setBuffered(n int) {
	s.e.buffered += n - s.buffered
	s.buffered = n
}

// shedBuffered ends early the connections and datagram flows whose parsers
// keep the most, until they keep at most three quarters of
// MaxBufferedTotal in total. Ties go by when the flow started, then its
// endpoints and transport, so that the same capture always sheds the same
// flows. Only live connections have parsers: one that ends lets its parser
// go (endParser). What the ended flows emit is delivered as a flush, in
// time order.
func (e *Engine) shedBuffered() {
	type heavy struct {
		n     int
		first time.Time
		a, b  netip.AddrPort
		proto layers.IPProtocol
		plain bool
		s     *tcpStream
		fl    *dgFlow
	}
	var all []heavy
	for s := range e.live {
		if s.buffered > 0 {
			all = append(all, heavy{s.buffered, s.f.First, s.key.a, s.key.b, layers.IPProtocolTCP, false, s, nil})
		}
	}
	for _, s := range e.plain {
		if s.buffered > 0 {
			all = append(all, heavy{s.buffered, s.f.First, s.key.a, s.key.b, layers.IPProtocolTCP, true, s, nil})
		}
	}
	for k, fl := range e.dgrams {
		if fl.buffered > 0 {
			all = append(all, heavy{fl.buffered, fl.f.First, k.a, k.b, k.proto, false, nil, fl})
		}
	}
	slices.SortFunc(all, func(x, y heavy) int {
		plain := func(h heavy) int {
			if h.plain {
				return 1
			}
			return 0
		}
		return cmp.Or(cmp.Compare(y.n, x.n), x.first.Compare(y.first),
			x.a.Compare(y.a), x.b.Compare(y.b), cmp.Compare(x.proto, y.proto), cmp.Compare(plain(x), plain(y)))
	})
	flushing := e.flushing
	e.flushing = true
	target := e.opts.MaxBufferedTotal / 4 * 3
	for _, h := range all {
		if e.buffered <= target {
			break
		}
		e.stats.MemoryEnded++
		if h.s != nil {
			h.s.shed = true
			h.s.endParser(proto.EndMemory, h.s.f.Last)
			continue
		}
		h.fl.end(proto.EndMemory)
		delete(e.dgrams, h.fl.key)
	}
	if !flushing {
		e.flushing = false
		e.deliverPending()
	}
}

// afterFeed switches to the protocol a parser upgraded to: the one named
// so, or listing the name in its Description's Upgrades, else whatever the
// bytes after the switch are detected as. The bytes the old parser had
// received after the switch are replayed first.
func (s *tcpStream) afterFeed() {
	for s.upgrade != "" {
		name := s.upgrade
		s.upgrade = ""
		f := s.flow()
		f.Upgraded = name
		if name == proto.SwitchTLS {
			f.Encrypted = true
		}
		var ho proto.Handover
		if h, ok := s.parser.(proto.HandingOver); ok {
			ho = h.HandOver()
		}
		rest := ho.Chunks
		side := func(r proto.Role) int {
			if s.role[0] == r {
				return 0
			}
			return 1
		}
		if next := s.e.upgradeTo(name); next != nil {
			s.sp = next
			if up, ok := next.(proto.UpgradeProtocol); ok {
				s.setParser(up.NewUpgraded(s, &s.e.opts.Limits, ho.Context))
			} else {
				s.setParser(next.NewStream(s, &s.e.opts.Limits))
			}
			for _, c := range rest {
				s.parser.Feed(c.Role, c.Data, c.T)
			}
			continue // the new parser may switch again
		}
		// No parser takes the switch: detect the protocol afresh.
		sides := make([]int, len(rest))
		for i, c := range rest {
			sides[i] = side(c.Role)
		}
		s.sp, s.parser, s.bufp, s.order = nil, nil, nil, nil
		s.setBuffered(0)
		for i, c := range rest {
			if s.parser != nil {
				s.parser.Feed(s.role[sides[i]], c.Data, c.T)
			} else {
				s.detect(sides[i], c.Data, c.T)
			}
		}
	}
}

// upgradeTo is the stream protocol that takes over after a switch to name.
func (e *Engine) upgradeTo(name string) proto.StreamProtocol {
	for _, p := range e.streamProtos {
		if p.Name() == name {
			return p
		}
		if d, ok := p.(proto.Describer); ok && slices.Contains(d.Describe().Upgrades, name) {
			return p
		}
	}
	return nil
}

func (s *tcpStream) detect(i int, b []byte, t time.Time) {
	h := &s.held[i]
	if h.segs == nil {
		h.probe = -1
	}
	max := s.e.opts.MaxHeld
	// Hold b if it fits this side's bound and the engine's total; if not,
	// what this side held is not contiguous with what comes next.
	hold := len(h.buf)+len(b) <= max && s.e.held+len(b) <= s.e.opts.MaxHeldTotal
	if !hold && len(h.buf) > 0 {
		s.dropHeld(i)
	}
	hold = len(b) <= max && s.e.held+len(b) <= s.e.opts.MaxHeldTotal
	var probe []byte
	if hold {
		h.add(b, t)
		s.e.held += len(b)
		if h.probe < 0 {
			h.probe = len(h.segs) - 1
		}
		probe = h.buf[h.segs[h.probe].off:]
	} else {
		probe = b
	}
	if s.order == nil {
		s.order = s.e.orderStream(s.ep[0].Port, s.ep[1].Port)
	}
	var sp proto.StreamProtocol
	var role proto.Role
	maybe := false
	for _, p := range s.order {
		v, r := p.DetectStream(probe, s.ep[i].Port, s.ep[1-i].Port)
		if v == proto.Yes {
			sp, role = p, r
			break
		}
		maybe = maybe || v == proto.Maybe
	}
	if sp == nil {
		if !maybe {
			h.probe = -1
		}
		return
	}
	s.start(sp, i, role)
	// Replay what both sides sent, in capture order: this side from where
	// the recognised bytes start, the other side all it holds.
	var mine []heldSeg
	var mineBuf []byte
	if hold {
		mine, mineBuf = h.segs[h.probe:], h.buf
	} else {
		mine, mineBuf = []heldSeg{{t: t}}, b
	}
	o := &s.held[1-i]
	k := 0
	if s.role[i] == proto.Client {
		// What the server sent before the client's first recognised bytes
		// answers requests the capture missed: it cannot start a response
		// to these. Drop it and let the parser resynchronise.
		for k < len(o.segs) && o.segs[k].t.Before(mine[0].t) {
			k++
		}
		if k > 0 {
			s.parser.Gap(s.role[1-i], -1)
		}
	}
	for j := range mine {
		for k < len(o.segs) && !o.segs[k].t.After(mine[j].t) {
			s.parser.Feed(s.role[1-i], o.seg(k), o.segs[k].t)
			k++
		}
		end := len(mineBuf)
		if j+1 < len(mine) {
			end = mine[j+1].off
		}
		s.parser.Feed(s.role[i], mineBuf[mine[j].off:end], mine[j].t)
	}
	for ; k < len(o.segs); k++ {
		s.parser.Feed(s.role[1-i], o.seg(k), o.segs[k].t)
	}
	s.dropHeld(0)
	s.dropHeld(1)
	s.afterFeed()
	s.account()
}

// start hands the flow to protocol sp; side i plays role r (RoleUnknown: the
// handshake or the ports decide).
func (s *tcpStream) start(sp proto.StreamProtocol, i int, r proto.Role) {
	if r == proto.RoleUnknown {
		if s.clientSide() == i {
			r = proto.Client
		} else {
			r = proto.Server
		}
	}
	s.role[i], s.role[1-i] = r, r.Peer()
	s.sp = sp
	s.f.Proto = sp.Name()
	if s.outer != nil {
		s.outer.f.Inner = sp.Name()
	}
	if s.wire != nil {
		s.wire.f.Inner = sp.Name()
	}
	s.setParser(sp.NewStream(s, &s.e.opts.Limits))
}

// setParser makes p the connection's parser; one that expires requests is
// listed for expireStreams.
func (s *tcpStream) setParser(p proto.StreamParser) {
	s.parser = p
	s.bufp, _ = p.(proto.Buffering)
	if _, ok := p.(proto.Expiring); ok {
		s.e.expiring[s] = struct{}{}
	}
}

// clientSide says which side is the client: the SYN's sender, else the
// SYN-ACK's receiver, else the side the protocol named, else the side with
// the higher port (servers listen on low ports), else the first sender.
func (s *tcpStream) clientSide() int {
	switch {
	case s.synFrom >= 0:
		return int(s.synFrom)
	case s.synackFrom >= 0:
		return 1 - int(s.synackFrom)
	case s.role[0] == proto.Client:
		return 0
	case s.role[1] == proto.Client:
		return 1
	case s.ep[0].Port < s.ep[1].Port:
		return 1
	}
	return 0
}

func (s *tcpStream) endParser(reason proto.EndReason, t time.Time) {
	if s.ended {
		return
	}
	s.ended = true
	s.endReason = reason
	if s.parser != nil {
		s.parser.End(reason, t)
	}
	// Nothing is parsed after the end: let the parser's state and the held
	// bytes go while the flow lingers for its trailing packets.
	s.parser, s.order, s.bufp = nil, nil, nil
	s.setBuffered(0)
	s.dropHeld(0)
	s.dropHeld(1)
}

// finish reports the flow, oriented client to server.
func (s *tcpStream) finish() {
	if s.done {
		return
	}
	s.done = true
	if p := s.dec; p != nil && !p.done {
		// The plaintext of a connection ends with it (its trailing
		// packets had closeLinger to come).
		p.endPlain(s.endReason, s.f.Last)
	}
	s.releaseTLS()
	f := &s.f
	c := s.clientSide()
	srv := 1 - c
	f.MidStream = !f.SYN && !f.SYNACK
	switch {
	case f.SYN && !f.SYNACK && f.RST[srv] && f.PayloadBytes[srv] == 0:
		f.State = "refused"
	case f.SYN && !f.SYNACK && f.icmpRefused:
		f.State = "refused"
	case f.SYN && !f.SYNACK && f.Packets[srv] == 0:
		f.State = "unanswered"
	case f.RST[0] || f.RST[1]:
		f.State = "reset"
	case s.fin[0] && s.fin[1]:
		f.State = "closed"
	default:
		f.State = "open"
	}
	s.report(c)
}

// Upgrade implements proto.Emitter.
func (s *tcpStream) Upgrade(protocol string) { s.upgrade = protocol }

// Emit implements proto.Emitter: a tunnel's calls are its connection's.
func (s *tcpStream) Emit(c *Call) {
	if s.outer != nil {
		s.outer.Emit(c)
		return
	}
	if s.wire != nil {
		// A plaintext stream's calls are its connection's.
		ci := s.client()
		s.seq++
		s.e.emit(c, &s.wire.f, s.ep[ci], s.ep[1-ci], s.seq)
		return
	}
	if s.plain == "" && c.Proto == "tls" && c.Method == "handshake" {
		// The handshake ends before the first plaintext a TLS library's
		// probes read (its first SSL_write comes after it): what the
		// record says of decryption waits for it.
		if d, _ := c.Extra.Get("decryption").(string); d != "" && d != "decrypted" {
			switch {
			case s.dec != nil:
				c.Extra.Set("decryption", s.f.Decryption)
			case len(s.heldTLS) < maxHeldTLS:
				s.heldTLS = append(s.heldTLS, c)
				return
			}
		}
	}
	s.sides.Emit(c)
}

// maxHeldTLS bounds the handshake records a connection holds
// (renegotiations); more are passed on as they are.
const maxHeldTLS = 4

// releaseTLS passes on the handshake records s held, saying, when its
// plaintext was read (s.dec), by which library.
func (s *tcpStream) releaseTLS() {
	for _, c := range s.heldTLS {
		if s.dec != nil {
			c.Extra.Set("decryption", s.f.Decryption)
		}
		s.sides.Emit(c)
	}
	s.heldTLS = nil
}

// Skipped implements proto.Emitter.
func (s *tcpStream) Skipped(n int) {
	if s.outer != nil {
		s.outer.Skipped(n)
		return
	}
	s.sides.Skipped(n)
}

// flow is the flow record the stream's protocol notes go on: its
// connection's, for a tunnel.
func (s *tcpStream) flow() *Flow {
	if s.outer != nil {
		return &s.outer.f
	}
	return &s.f
}

// top is the connection a stream belongs to: itself, or a tunnel's.
func (s *tcpStream) top() *tcpStream {
	if s.outer != nil {
		return s.outer
	}
	return s
}

// Encrypted implements proto.FlowNoter.
func (s *tcpStream) Encrypted(state string) {
	f := s.flow()
	f.Encrypted = true
	if s.top().dec == nil {
		// Plaintext read by uprobes says better than the handshake
		// whether the session was read.
		f.Decryption = state
	}
}

// SessionEnd implements proto.FlowNoter.
func (s *tcpStream) SessionEnd(how string) { s.flow().SessionEnd = how }

// Tunnel implements proto.Tunneler: the stream is dissected like a
// connection of its own, with this one's endpoints and roles, by the
// protocol alpn names or else the one its bytes are detected as.
func (s *tcpStream) Tunnel(alpn string) proto.StreamParser {
	top := s.top()
	in := &tcpStream{
		sides: sides{e: s.e, ep: s.ep, role: s.role}, outer: top, key: s.key,
		synFrom: s.synFrom, synackFrom: s.synackFrom, next: [2]reassembly.Sequence{-1, -1},
	}
	in.f.First = top.f.First
	if sp := s.e.byALPN(alpn); sp != nil {
		ci := 0
		if in.role[1] == proto.Client {
			ci = 1
		}
		in.start(sp, ci, proto.Client)
	}
	return tunnel{in}
}

// byALPN is the stream protocol an ALPN ID names, or nil.
func (e *Engine) byALPN(alpn string) proto.StreamProtocol {
	if alpn == "" {
		return nil
	}
	for _, p := range e.streamProtos {
		if d, ok := p.(proto.Describer); ok && slices.Contains(d.Describe().ALPN, alpn) {
			return p
		}
	}
	return nil
}

// tunnel is the StreamParser a Tunnel returns.
type tunnel struct{ s *tcpStream }

func (t tunnel) side(r proto.Role) int {
	if t.s.role[1] == r {
		return 1
	}
	return 0
}

func (t tunnel) Feed(r proto.Role, b []byte, at time.Time) { t.s.data(t.side(r), b, at) }

func (t tunnel) Gap(r proto.Role, n int) {
	if !t.s.ended {
		t.s.gap(t.side(r), n)
	}
}

func (t tunnel) End(reason proto.EndReason, at time.Time) { t.s.endParser(reason, at) }

// Buffered implements proto.Buffering.
func (t tunnel) Buffered() int {
	if t.s.bufp != nil {
		return t.s.bufp.Buffered()
	}
	return 0
}
