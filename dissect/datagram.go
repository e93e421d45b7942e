package dissect

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect/icmp"
	"github.com/wirescope/wirescope/dissect/proto"
)

// dgKey identifies a UDP flow (or, for other IP protocols, a host pair) in
// either direction: a is the lesser endpoint.
type dgKey struct {
	a, b  netip.AddrPort
	proto layers.IPProtocol
}

// dgFlow is a flow of datagrams; side 0 sent the first packet.
type dgFlow struct {
	sides
	key    dgKey
	parser proto.DatagramParser
	tries  int
	// bufp is parser as a proto.Buffering, if it is one; buffered is what
	// it last reported keeping.
	bufp     proto.Buffering
	buffered int
	// sctp is the association, for an SCTP flow.
	sctp *sctpAssoc
}

// maxDetectTries bounds the datagrams of one flow shown to detectors.
const maxDetectTries = 8

// TransportName is the name flows give the IP protocol p: "tcp", "udp",
// "icmp", "icmpv6", "sctp" or "ip-<n>".
func TransportName(p layers.IPProtocol) string {
	switch p {
	case layers.IPProtocolTCP:
		return "tcp"
	case layers.IPProtocolUDP:
		return "udp"
	case layers.IPProtocolICMPv4:
		return "icmp"
	case layers.IPProtocolICMPv6:
		return "icmpv6"
	case layers.IPProtocolSCTP:
		return "sctp"
	}
	return "ip-" + strconv.Itoa(int(p))
}

// TransportProto is the IP protocol a flow's Transport names: the inverse
// of TransportName.
func TransportProto(name string) (layers.IPProtocol, bool) {
	switch name {
	case "tcp":
		return layers.IPProtocolTCP, true
	case "udp":
		return layers.IPProtocolUDP, true
	case "icmp":
		return layers.IPProtocolICMPv4, true
	case "icmpv6":
		return layers.IPProtocolICMPv6, true
	case "sctp":
		return layers.IPProtocolSCTP, true
	}
	if n, ok := strings.CutPrefix(name, "ip-"); ok {
		if v, err := strconv.ParseUint(n, 10, 8); err == nil {
			return layers.IPProtocol(v), true
		}
	}
	return 0, false
}

func (e *Engine) datagram(d *capture.Decoded, ts time.Time) {
	src := netip.AddrPortFrom(d.Src, d.SrcPort)
	dst := netip.AddrPortFrom(d.Dst, d.DstPort)
	k := dgKey{a: src, b: dst, proto: d.Proto}
	if src.Compare(dst) > 0 {
		k.a, k.b = dst, src
	}
	fl := e.dgrams[k]
	if fl == nil {
		if len(e.dgrams) >= e.opts.MaxFlows {
			e.evictDatagrams(ts)
		}
		fl = &dgFlow{sides: sides{e: e}, key: k}
		fl.ep[0] = proto.Endpoint{IP: d.Src, Port: d.SrcPort}
		fl.ep[1] = proto.Endpoint{IP: d.Dst, Port: d.DstPort}
		fl.f.Transport = TransportName(d.Proto)
		fl.f.First = ts
		e.dgrams[k] = fl
	}
	i := 0
	if d.SrcPort != fl.ep[0].Port || d.Src != fl.ep[0].IP {
		i = 1
	}
	f := &fl.f
	if ts.After(f.Last) {
		f.Last = ts
	}
	f.Packets[i]++
	f.Bytes[i] += uint64(d.IPLength)
	f.PayloadBytes[i] += uint64(len(d.Payload))
	if d.Proto == layers.IPProtocolSCTP && len(d.Payload) >= 12 {
		e.sctpPacket(fl, i, d, ts)
		return
	}
	if (d.Proto == layers.IPProtocolICMPv4 || d.Proto == layers.IPProtocolICMPv6) && len(d.Payload) > 0 {
		e.icmpMessage(fl, i, d, ts)
		return
	}
	if d.Proto != layers.IPProtocolUDP || len(d.Payload) == 0 {
		return
	}
	if fl.parser == nil {
		if fl.tries >= maxDetectTries {
			return
		}
		fl.tries++
		if !e.detectDatagram(fl, i, d) {
			return
		}
	}
	fl.parser.Datagram(fl.role[i], d.Payload, ts)
	if fl.account() && e.buffered > e.opts.MaxBufferedTotal {
		e.shedBuffered()
	}
}

// account takes what the parser keeps now into the engine's total, and
// reports whether that grew.
func (fl *dgFlow) account() bool {
	if fl.bufp == nil {
		return false
	}
	n := fl.bufp.Buffered()
	grew := n > fl.buffered
	fl.setBuffered(n)
	return grew
}

// setBuffered records that the parser keeps n bytes.
func (fl *dgFlow) setBuffered(n int) {
	fl.e.buffered += n - fl.buffered
	fl.buffered = n
}

// end ends the flow's parser, for reason, and reports the flow. The caller
// deletes it from e.dgrams.
func (fl *dgFlow) end(reason proto.EndReason) {
	if fl.sctp != nil {
		fl.e.sctpEnd(fl, reason, fl.f.Last)
	}
	if fl.parser != nil {
		fl.parser.End(reason, fl.f.Last)
		fl.parser, fl.bufp = nil, nil
	}
	fl.setBuffered(0)
	fl.finish()
}

// detectDatagram asks the datagram protocols, port-hinted ones first, about
// a datagram sent by side i, and starts the first that recognises it.
func (e *Engine) detectDatagram(fl *dgFlow, i int, d *capture.Decoded) bool {
	for pass := range 2 {
		for _, p := range e.dgramProtos {
			if e.hinted(p.Name(), d.SrcPort, d.DstPort) != (pass == 0) {
				continue
			}
			v, r := p.DetectDatagram(d.Payload, d.SrcPort, d.DstPort)
			if v != proto.Yes {
				continue
			}
			if r == proto.RoleUnknown {
				r = proto.Client
			}
			fl.role[i], fl.role[1-i] = r, r.Peer()
			fl.f.Proto = p.Name()
			fl.parser = p.NewFlow(fl, &e.opts.Limits)
			fl.bufp, _ = fl.parser.(proto.Buffering)
			return true
		}
	}
	return false
}

// expireDatagrams lets parsers give up on requests unanswered for the
// request timeout and ends the flows idle since before idleBefore, for
// reason. The caller sets e.flushing, so what this produces is delivered in
// order by deliverPending.
func (e *Engine) expireDatagrams(now, idleBefore, sctpIdleBefore time.Time, reason proto.EndReason) {
	deadline := now.Add(-e.opts.Limits.RequestTimeout)
	var ended []dgKey
	for k, fl := range e.dgrams {
		before := idleBefore
		if fl.sctp != nil {
			// An association lives like a TCP connection.
			before = sctpIdleBefore
		}
		if fl.f.Last.Before(before) {
			ended = append(ended, k)
		}
	}
	slices.SortFunc(ended, func(x, y dgKey) int {
		return cmp.Or(e.dgrams[x].f.First.Compare(e.dgrams[y].f.First), x.a.Compare(y.a), x.b.Compare(y.b), cmp.Compare(x.proto, y.proto))
	})
	for _, fl := range e.dgrams {
		if fl.parser != nil {
			fl.parser.Expire(deadline)
			fl.account()
		}
		if fl.sctp != nil && fl.sctp.parser != nil {
			if x, ok := fl.sctp.parser.(proto.Expiring); ok {
				x.Expire(now.Add(-e.opts.Limits.StreamRequestTimeout))
				fl.account()
			}
		}
	}
	for _, k := range ended {
		e.dgrams[k].end(reason)
		delete(e.dgrams, k)
	}
}

// evictDatagrams ends the least recently active eighth of the datagram
// flows, as if idle, once MaxFlows are open.
func (e *Engine) evictDatagrams(now time.Time) {
	last := make([]time.Time, 0, len(e.dgrams))
	for _, fl := range e.dgrams {
		last = append(last, fl.f.Last)
	}
	before := len(e.dgrams)
	e.flushing = true
	cut := eighthCut(last)
	e.expireDatagrams(now, cut, cut, proto.EndIdle)
	e.flushing = false
	e.stats.Evicted += uint64(before - len(e.dgrams))
	e.deliverPending()
}

// finish reports the flow: the side the protocol named the client, else
// the side with the higher port (servers listen on low ports), else the
// first sender, is its Src.
func (fl *dgFlow) finish() {
	c := fl.client()
	if fl.role[0] == proto.RoleUnknown && fl.ep[0].Port < fl.ep[1].Port {
		c = 1
	}
	fl.f.State = ""
	if a := fl.sctp; a != nil {
		if a.initFrom >= 0 {
			c = a.initFrom
		}
		fl.f.State = a.state(c)
		fl.f.Streams = len(a.streams)
	}
	if fl.f.icmpRefused {
		fl.f.State = "refused"
	}
	fl.report(c)
}

// Upgrade implements proto.Emitter; datagram flows do not switch protocols.
func (fl *dgFlow) Upgrade(string) {}

// icmpMessage dissects an ICMP message side i of an ICMP flow sent: echo
// and errors as calls (dissect/icmp), and an error also noted on the flow
// it quotes.
func (e *Engine) icmpMessage(fl *dgFlow, i int, d *capture.Decoded, ts time.Time) {
	v6 := d.Proto == layers.IPProtocolICMPv6
	msg := d.Payload
	if fl.parser == nil {
		// The pinger is the client; the sender of a reply or an error
		// answers.
		r := proto.Server
		if len(msg) > 0 && (!v6 && msg[0] == 8 || v6 && msg[0] == 128) {
			r = proto.Client
		}
		fl.role[i], fl.role[1-i] = r, r.Peer()
		ci := fl.client()
		fl.f.Proto = "icmp"
		fl.parser = icmp.NewFlowFor(fl, &e.opts.Limits, v6, [2]netip.Addr{fl.ep[ci].IP, fl.ep[1-ci].IP})
		fl.bufp, _ = fl.parser.(proto.Buffering)
	}
	e.noteICMPError(d)
	fl.parser.Datagram(fl.role[i], msg, ts)
}

// isICMPError says whether d is an ICMP error quoting another flow.
func isICMPError(d *capture.Decoded) bool {
	if d.Proto != layers.IPProtocolICMPv4 && d.Proto != layers.IPProtocolICMPv6 {
		return false
	}
	_, ok := icmp.Quoted(d.Proto == layers.IPProtocolICMPv6, d.Payload)
	return ok
}

// noteICMPError notes the ICMP error d on the flow it quotes.
func (e *Engine) noteICMPError(d *capture.Decoded) {
	v6 := d.Proto == layers.IPProtocolICMPv6
	if q, ok := icmp.Quoted(v6, d.Payload); ok {
		kind, name := icmp.Describe(v6, d.Payload[0], d.Payload[1])
		e.noteICMP(q, name+" from "+d.Src.String(), icmp.Refuses(kind, name))
	}
}

// noteICMP notes an ICMP error on the flow it quotes, if it is being
// followed.
func (e *Engine) noteICMP(q icmp.Quote, note string, refused bool) {
	var f *Flow
	switch q.Proto {
	case layers.IPProtocolTCP:
		k := connKey{q.From, q.To}
		if k.a.Compare(k.b) > 0 {
			k.a, k.b = k.b, k.a
		}
		s := e.liveKeys[k]
		if s == nil {
			s = e.recent[k]
		}
		if s != nil && !s.done {
			f = &s.f
		}
	default:
		k := dgKey{a: q.From, b: q.To, proto: q.Proto}
		if k.a.Compare(k.b) > 0 {
			k.a, k.b = k.b, k.a
		}
		if fl := e.dgrams[k]; fl != nil {
			f = &fl.f
		}
	}
	if f == nil {
		return // a flow this engine (or shard) does not follow
	}
	f.ICMP = note
	f.icmpRefused = f.icmpRefused || refused
}
