// Package icmp dissects ICMP and ICMPv6: echo requests and their replies
// as calls, and the errors routers and hosts send about other flows.
//
// An echo request (ping) is a call: Method "echo", Path the address pinged,
// Status "reply" when its reply (same identifier and sequence number) came,
// else unanswered after Limits.RequestTimeout; extra id, seq and the
// payload size. A destination unreachable, time exceeded, packet too big
// or parameter problem is a one-way record: Method its type
// ("destination-unreachable", "time-exceeded", "packet-too-big",
// "parameter-problem"), Path the flow it quotes ("udp 10.0.0.5:53"), Status
// its code's name ("port unreachable", "host unreachable", "ttl
// exceeded", "fragmentation needed"); the engine also attaches it to the
// flow it quotes (Quote), so that flow says "refused: ICMP port
// unreachable" and its unanswered requests say why. Router solicitations
// and the neighbour discovery of ICMPv6 are not calls.
//
// The engine gives this protocol every ICMP and ICMPv6 packet's ICMP
// message (header and body); no detection is needed.
package icmp

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is ICMP and ICMPv6.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "icmp" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "ICMP and ICMPv6: echo (ping) and the errors quoting other flows", Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

func outcome(c *proto.Call) proto.Outcome {
	if c.Status == "reply" {
		return proto.OK
	}
	return proto.ClientError
}

// DetectDatagram implements proto.DatagramProtocol. ICMP is not carried
// over UDP: the engine hands ICMP packets to this protocol itself.
func (Protocol) DetectDatagram([]byte, uint16, uint16) (proto.Verdict, proto.Role) {
	return proto.No, proto.RoleUnknown
}

// NewFlow implements proto.DatagramProtocol; the flow's ICMP is version 4.
// The engine uses NewFlowFor, which knows the version and the addresses.
func (Protocol) NewFlow(out proto.Emitter, lim *proto.Limits) proto.DatagramParser {
	return NewFlowFor(out, lim, false, [2]netip.Addr{})
}

// NewFlowFor returns a parser for the ICMP messages between two hosts:
// addrs are side 0's and side 1's addresses (the sides the engine feeds
// by role: client, server), v6 says ICMPv6.
func NewFlowFor(out proto.Emitter, lim *proto.Limits, v6 bool, addrs [2]netip.Addr) proto.DatagramParser {
	l := lim.WithDefaults()
	f := &flow{out: out, lim: l, v6: v6, addrs: addrs}
	f.pending.Max = l.MaxPending
	return f
}

// echoKey matches a reply to its request.
type echoKey struct{ id, seq uint16 }

type echo struct {
	call *proto.Call
	at   time.Time
}

type flow struct {
	out     proto.Emitter
	lim     proto.Limits
	v6      bool
	addrs   [2]netip.Addr
	pending proto.Pending[echoKey, *echo]
}

// Types.
const (
	v4EchoReply   = 0
	v4Unreachable = 3
	v4Redirect    = 5
	v4Echo        = 8
	v4TimeExceed  = 11
	v4ParamProb   = 12
	v6Unreachable = 1
	v6TooBig      = 2
	v6TimeExceed  = 3
	v6ParamProb   = 4
	v6Echo        = 128
	v6EchoReply   = 129
)

func (f *flow) isEcho(t byte) (request, reply bool) {
	if f.v6 {
		return t == v6Echo, t == v6EchoReply
	}
	return t == v4Echo, t == v4EchoReply
}

// Datagram implements proto.DatagramParser: msg is the ICMP message sent
// by the side playing role r.
func (f *flow) Datagram(r proto.Role, msg []byte, t time.Time) {
	if len(msg) < 8 {
		call := &proto.Call{Proto: "icmp", TS: t, OneWay: true}
		call.Fail(proto.Malformed, "an ICMP message of "+strconv.Itoa(len(msg))+" bytes")
		f.out.Emit(call)
		return
	}
	typ, code := msg[0], msg[1]
	request, reply := f.isEcho(typ)
	key := echoKey{binary.BigEndian.Uint16(msg[4:]), binary.BigEndian.Uint16(msg[6:])}
	switch {
	case request:
		call := &proto.Call{Proto: "icmp", TS: t, Method: "echo"}
		if i := sideOf(r.Peer()); f.addrs[i].IsValid() {
			call.Path = f.addrs[i].String()
		}
		call.Request.BodySize = int64(len(msg) - 8)
		call.Extra.Set("id", int(key.id))
		call.Extra.Set("seq", int(key.seq))
		if r == proto.Server {
			call.Extra.Set("direction", "server→client")
		}
		if old, full := f.pending.Add(key, t, &echo{call, t}); full {
			old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(f.lim.MaxPending)+" echo requests waiting")
			f.out.Emit(old.call)
		}
	case reply:
		e, ok := f.pending.Take(key, nil)
		if !ok {
			call := &proto.Call{Proto: "icmp", TS: t, Method: "echo", Status: "reply"}
			call.Response.BodySize = int64(len(msg) - 8)
			call.Extra.Set("id", int(key.id))
			call.Extra.Set("seq", int(key.seq))
			call.Fail(proto.Orphan, "")
			f.out.Emit(call)
			return
		}
		e.call.Status = "reply"
		e.call.Response.BodySize = int64(len(msg) - 8)
		if d := t.Sub(e.at); d > 0 {
			e.call.LatencyNS = int64(d)
		}
		f.out.Emit(e.call)
	default:
		kind, name := Describe(f.v6, typ, code)
		if kind == "" {
			return // neighbour discovery, router advertisements, …
		}
		call := &proto.Call{Proto: "icmp", TS: t, Method: kind, Status: name, OneWay: true}
		call.Response.BodySize = int64(len(msg) - 8)
		if q, ok := Quoted(f.v6, msg); ok {
			call.Path = q.String()
		}
		if a := f.addrs[sideOf(r)]; a.IsValid() {
			call.Extra.Set("reported_by", a.String())
		}
		switch {
		case f.v6 && typ == v6TooBig:
			call.Extra.Set("mtu", int(binary.BigEndian.Uint32(msg[4:])))
		case !f.v6 && typ == v4Unreachable && code == 4:
			call.Extra.Set("mtu", int(binary.BigEndian.Uint16(msg[6:])))
		}
		if r == proto.Client {
			call.Request, call.Response = call.Response, call.Request
		}
		f.out.Emit(call)
	}
}

func sideOf(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Expire implements proto.DatagramParser.
func (f *flow) Expire(deadline time.Time) {
	f.pending.Expire(deadline, func(e *echo) {
		e.call.Fail(proto.Unanswered, "")
		f.out.Emit(e.call)
	})
}

// End implements proto.DatagramParser.
func (f *flow) End(reason proto.EndReason, _ time.Time) {
	f.pending.Expire(time.Time{}, func(e *echo) {
		if reason == proto.EndMemory {
			e.call.Fail(proto.Truncated, "flow ended early for memory bounds before the reply")
		} else {
			e.call.Fail(proto.Unanswered, "")
		}
		f.out.Emit(e.call)
	})
}

// Describe names an ICMP error: its kind ("destination-unreachable",
// "time-exceeded", "packet-too-big", "parameter-problem"; "" for messages
// that are neither echo nor an error about another flow) and its code.
func Describe(v6 bool, typ, code byte) (kind, name string) {
	if v6 {
		switch typ {
		case v6Unreachable:
			return "destination-unreachable", pick(code, "no route", "administratively prohibited", "beyond scope of source address", "address unreachable", "port unreachable", "source address failed policy", "reject route")
		case v6TooBig:
			return "packet-too-big", "packet too big"
		case v6TimeExceed:
			return "time-exceeded", pick(code, "hop limit exceeded", "fragment reassembly time exceeded")
		case v6ParamProb:
			return "parameter-problem", pick(code, "erroneous header field", "unrecognized next header", "unrecognized option")
		}
		return "", ""
	}
	switch typ {
	case v4Unreachable:
		return "destination-unreachable", pick(code, "net unreachable", "host unreachable", "protocol unreachable", "port unreachable",
			"fragmentation needed", "source route failed", "net unknown", "host unknown", "source host isolated",
			"net administratively prohibited", "host administratively prohibited", "net unreachable for tos",
			"host unreachable for tos", "communication administratively prohibited", "host precedence violation", "precedence cutoff")
	case v4TimeExceed:
		return "time-exceeded", pick(code, "ttl exceeded", "fragment reassembly time exceeded")
	case v4ParamProb:
		return "parameter-problem", pick(code, "pointer indicates the error", "missing a required option", "bad length")
	case v4Redirect:
		return "redirect", pick(code, "redirect for network", "redirect for host", "redirect for tos and network", "redirect for tos and host")
	}
	return "", ""
}

func pick(code byte, names ...string) string {
	if int(code) < len(names) {
		return names[code]
	}
	return "code " + strconv.Itoa(int(code))
}

// Refuses says whether an error of this kind and code means the quoted
// flow's packets were refused (rather than lost in transit or too big).
func Refuses(kind, name string) bool {
	return kind == "destination-unreachable" && name != "fragmentation needed"
}

// Quote is the flow an ICMP error quotes: the first bytes of a packet From
// sent To, over Proto.
type Quote struct {
	Proto    layers.IPProtocol
	From, To netip.AddrPort
}

func (q Quote) String() string {
	p := "ip-" + strconv.Itoa(int(q.Proto))
	switch q.Proto {
	case layers.IPProtocolTCP:
		p = "tcp"
	case layers.IPProtocolUDP:
		p = "udp"
	case layers.IPProtocolSCTP:
		p = "sctp"
	case layers.IPProtocolICMPv4:
		p = "icmp"
	case layers.IPProtocolICMPv6:
		p = "icmpv6"
	}
	if q.To.Port() == 0 {
		return p + " " + q.To.Addr().String()
	}
	return p + " " + q.To.String()
}

// Quoted reads the packet an ICMP error message quotes (its IP header and
// at least the first 8 bytes of its transport header).
func Quoted(v6 bool, msg []byte) (q Quote, ok bool) {
	if len(msg) < 8 {
		return q, false
	}
	if _, name := Describe(v6, msg[0], msg[1]); name == "" {
		return q, false
	}
	b := msg[8:]
	var src, dst netip.Addr
	var rest []byte
	if v6 {
		if len(b) < 40 || b[0]>>4 != 6 {
			return q, false
		}
		q.Proto = layers.IPProtocol(b[6])
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		rest = b[40:]
	} else {
		if len(b) < 20 || b[0]>>4 != 4 {
			return q, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return q, false
		}
		q.Proto = layers.IPProtocol(b[9])
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		rest = b[ihl:]
	}
	var sport, dport uint16
	switch q.Proto {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolSCTP:
		if len(rest) < 4 {
			return q, false
		}
		sport, dport = binary.BigEndian.Uint16(rest), binary.BigEndian.Uint16(rest[2:])
	}
	q.From, q.To = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return q, true
}
