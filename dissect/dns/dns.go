// Package dns dissects DNS over UDP and over TCP (RFC 1035 section 4.2).
//
// A query and its response are matched by message ID within a flow (the UDP
// 5-tuple or the TCP connection). A call's Method is the query type, Path
// the queried name and Status the rcode name (NOERROR, NXDOMAIN, SERVFAIL,
// REFUSED, … or RCODEn), with the extended rcode of an EDNS OPT record
// folded in. Answers are decoded for display (A, AAAA, CNAME, SRV, TXT, PTR,
// MX, NS, SOA and more, via gopacket's decoder, which bounds name
// compression loops). A query sent again with the same ID and question
// before an answer counts as a retransmission of the first, not a new call.
// Queries unanswered after Limits.RequestTimeout (over TCP
// Limits.StreamRequestTimeout), or when the flow ends, are emitted with
// Error "no response" ("no response: flow ended early for
// memory bounds" when the engine ended a UDP flow to bound what parsers
// keep); answers without a query with "no request". A message that does not decode yields a call with Error
// "malformed: …" rather than disappearing.
package dns

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is the DNS dissector.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "dns" }

// Describe implements proto.Describer: status is the RCODE; NOERROR is ok,
// the server's own failures (SERVFAIL, REFUSED, NOTIMP) are server errors,
// every other RCODE (NXDOMAIN, FORMERR, …) says the question was wrong.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "DNS queries", Path: proto.PathText, Resolution: true, Outcome: outcome}
}

func outcome(c *proto.Call) proto.Outcome {
	switch c.Status {
	case "NOERROR":
		return proto.OK
	case "SERVFAIL", "REFUSED", "NOTIMP":
		return proto.ServerError
	}
	return proto.ClientError
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{53, 5353, 5355} }

const headerLen = 12

// plausible checks a DNS header cheaply: a standard, inverse, status,
// notify or update opcode, at least one question in a query, and section
// counts that fit in the message.
func plausible(b []byte) (ok, response bool) {
	if len(b) < headerLen {
		return false, false
	}
	flags := binary.BigEndian.Uint16(b[2:4])
	response = flags&0x8000 != 0
	opcode := (flags >> 11) & 0xf
	if opcode > 5 || opcode == 3 {
		return false, false
	}
	qd := int(binary.BigEndian.Uint16(b[4:6]))
	an := int(binary.BigEndian.Uint16(b[6:8]))
	ns := int(binary.BigEndian.Uint16(b[8:10]))
	ar := int(binary.BigEndian.Uint16(b[10:12]))
	if qd > 4 || (!response && qd == 0 && opcode == 0) {
		return false, false
	}
	// Every question takes at least 5 bytes and every record 11.
	if headerLen+qd*5+(an+ns+ar)*11 > len(b) {
		return false, false
	}
	return true, response
}

// DetectDatagram implements proto.DatagramProtocol: the datagram must be a
// plausible DNS message that decodes.
func (Protocol) DetectDatagram(b []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	ok, response := plausible(b)
	if !ok {
		return proto.No, proto.RoleUnknown
	}
	var d layers.DNS
	if d.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil || (len(d.Questions) == 0 && !response) {
		return proto.No, proto.RoleUnknown
	}
	if response {
		return proto.Yes, proto.Server
	}
	return proto.Yes, proto.Client
}

// DetectStream implements proto.StreamProtocol: a two-byte length followed
// by a plausible DNS message.
func (Protocol) DetectStream(b []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(b) < 2+headerLen {
		return proto.Maybe, proto.RoleUnknown
	}
	n := int(binary.BigEndian.Uint16(b))
	if n < headerLen {
		return proto.No, proto.RoleUnknown
	}
	if len(b) < 2+n {
		// Judge the header alone; the counts check needs the whole message.
		flags := binary.BigEndian.Uint16(b[4:6])
		if op := (flags >> 11) & 0xf; op > 5 || op == 3 || binary.BigEndian.Uint16(b[6:8]) > 4 {
			return proto.No, proto.RoleUnknown
		}
		return proto.Maybe, proto.RoleUnknown
	}
	return Protocol{}.DetectDatagram(b[2:2+n], 0, 0)
}

// NewFlow implements proto.DatagramProtocol.
func (Protocol) NewFlow(out proto.Emitter, lim *proto.Limits) proto.DatagramParser {
	m := newMatcher(out, lim, "udp")
	return &m
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	return &stream{m: newMatcher(out, lim, "tcp")}
}

// query is a query waiting for its response.
type query struct {
	id      uint16
	name    string
	qtype   string
	t       time.Time
	size    int
	retrans int
	extra   proto.Extra
}

// matcher pairs queries and responses of one flow.
type matcher struct {
	out       proto.Emitter
	lim       *proto.Limits
	transport string
	dec       layers.DNS
	pending   proto.Pending[uint16, *query] // by ID, in arrival order; Size keptSize
}

// newMatcher is a matcher of one flow over transport.
func newMatcher(out proto.Emitter, lim *proto.Limits, transport string) matcher {
	return matcher{out: out, lim: lim, transport: transport,
		pending: proto.Pending[uint16, *query]{Max: lim.MaxPending, Size: keptSize}}
}

// querySize is about the memory a query waiting for its response takes
// beyond its name.
const querySize = 256

// keptSize is about the memory q takes while it waits for its response.
func keptSize(q *query) int { return querySize + len(q.name) }

// message handles one DNS message sent by the side playing role r.
func (m *matcher) message(r proto.Role, b []byte, t time.Time) {
	if len(b) < headerLen {
		m.broken(r, b, t, "malformed: message shorter than a DNS header")
		return
	}
	d := &m.dec
	if err := d.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		m.broken(r, b, t, "malformed: "+err.Error())
		return
	}
	name, qtype := "", ""
	if len(d.Questions) > 0 {
		name, qtype = string(d.Questions[0].Name), typeName(d.Questions[0].Type)
	}
	if !d.QR {
		if q, ok := m.pending.Find(d.ID, func(q *query) bool { return q.name == name && q.qtype == qtype }); ok {
			q.retrans++
			return
		}
		q := &query{id: d.ID, name: name, qtype: qtype, t: t, size: len(b), extra: proto.Extra{
			{Key: "id", Value: int(d.ID)}, {Key: "transport", Value: m.transport}, {Key: "rd", Value: d.RD},
		}}
		if d.OpCode != layers.DNSOpCodeQuery {
			q.extra.Set("opcode", opcodeName(d.OpCode))
		}
		if old, full := m.pending.Add(d.ID, t, q); full {
			m.emit(old, nil, "truncated: more than "+strconv.Itoa(m.lim.MaxPending)+" queries waiting for a response")
		}
		return
	}
	resp := &response{
		t:      t,
		size:   len(b),
		rcode:  rcodeName(d),
		extra:  answerExtra(d),
		name:   name,
		qtype:  qtype,
		answer: len(d.Answers),
	}
	m.answer(d.ID, name, qtype, resp)
}

type response struct {
	t      time.Time
	size   int
	rcode  string
	name   string
	qtype  string
	answer int
	extra  proto.Extra
	err    string
}

// answer pairs a response with the oldest query of the same ID (and the
// same question when the response repeats it).
func (m *matcher) answer(id uint16, name, qtype string, resp *response) {
	if q, ok := m.pending.Take(id, func(q *query) bool { return name == "" || (q.name == name && q.qtype == qtype) }); ok {
		m.emit(q, resp, resp.err)
		return
	}
	// An answer to a query the capture does not hold.
	err := resp.err
	if err == "" {
		err = "no request"
	}
	m.emit(&query{id: id, name: name, qtype: qtype, t: resp.t, extra: proto.Extra{
		{Key: "id", Value: int(id)}, {Key: "transport", Value: m.transport},
	}}, resp, err)
}

// broken turns a message that cannot be read into a call whose Error is
// reason: a response is paired with its query by ID when the header allows.
func (m *matcher) broken(r proto.Role, b []byte, t time.Time, reason string) {
	var id uint16
	if len(b) >= 2 {
		id = binary.BigEndian.Uint16(b)
	}
	isResponse := r == proto.Server
	if len(b) >= 4 {
		isResponse = binary.BigEndian.Uint16(b[2:4])&0x8000 != 0
	}
	if isResponse {
		m.answer(id, "", "", &response{t: t, size: len(b), err: reason})
		return
	}
	m.emit(&query{id: id, t: t, size: len(b), extra: proto.Extra{{Key: "id", Value: int(id)}, {Key: "transport", Value: m.transport}}}, nil, reason)
}

func (m *matcher) emit(q *query, r *response, errText string) {
	c := &proto.Call{
		Proto:  "dns",
		TS:     q.t,
		Method: q.qtype,
		Path:   q.name,
		Error:  errText,
		Extra:  q.extra,
	}
	c.Request.BodySize = int64(q.size)
	if q.retrans > 0 {
		c.Extra.Set("retransmissions", q.retrans)
	}
	if r == nil {
		if errText == "" {
			c.Error = "no response"
		}
		m.out.Emit(c)
		return
	}
	c.Status = r.rcode
	c.Response.BodySize = int64(r.size)
	if d := r.t.Sub(q.t); d > 0 {
		c.LatencyNS = int64(d)
	}
	for _, f := range r.extra {
		c.Extra.Set(f.Key, f.Value)
	}
	m.out.Emit(c)
}

// expire emits queries sent before deadline, or all when all is set, as
// unanswered, with Error errText.
func (m *matcher) expire(deadline time.Time, all bool, errText string) {
	switch {
	case all:
		deadline = time.Time{} // Pending.Expire's "all"
	case deadline.IsZero():
		return
	}
	m.pending.Expire(deadline, func(q *query) { m.emit(q, nil, errText) })
}

// Datagram implements proto.DatagramParser.
func (m *matcher) Datagram(r proto.Role, b []byte, t time.Time) { m.message(r, b, t) }

// Expire implements proto.DatagramParser.
func (m *matcher) Expire(deadline time.Time) { m.expire(deadline, false, "no response") }

// End implements proto.DatagramParser. Queries still waiting are emitted
// unanswered; when the engine ended the flow early to bound memory, their
// Error says so, as their response may yet have come.
func (m *matcher) End(reason proto.EndReason, _ time.Time) {
	why := "no response"
	if reason == proto.EndMemory {
		why = "no response: flow ended early for memory bounds"
	}
	m.expire(time.Time{}, true, why)
}

// Buffered implements proto.Buffering: the queries waiting for their
// response.
func (m *matcher) Buffered() int { return m.pending.Kept() }

// answerExtra describes a response's flags and records for display.
func answerExtra(d *layers.DNS) proto.Extra {
	x := proto.Extra{{Key: "aa", Value: d.AA}, {Key: "ra", Value: d.RA}}
	if d.TC {
		x.Set("tc", true)
	}
	if len(d.Answers) > 0 {
		x.Set("answers", records(d.Answers))
	}
	if len(d.Authorities) > 0 {
		x.Set("authorities", records(d.Authorities))
	}
	return x
}

func records(rrs []layers.DNSResourceRecord) []string {
	out := make([]string, 0, len(rrs))
	for i := range rrs {
		out = append(out, record(&rrs[i]))
	}
	return out
}

// record formats one resource record as "NAME TTL TYPE DATA".
func record(rr *layers.DNSResourceRecord) string {
	var b strings.Builder
	b.Write(rr.Name)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(uint64(rr.TTL), 10))
	b.WriteByte(' ')
	b.WriteString(typeName(rr.Type))
	b.WriteByte(' ')
	switch rr.Type {
	case layers.DNSTypeA, layers.DNSTypeAAAA:
		if rr.IP != nil {
			b.WriteString(rr.IP.String())
		}
	case layers.DNSTypeCNAME:
		b.Write(rr.CNAME)
	case layers.DNSTypeNS:
		b.Write(rr.NS)
	case layers.DNSTypePTR:
		b.Write(rr.PTR)
	case layers.DNSTypeMX:
		b.WriteString(strconv.Itoa(int(rr.MX.Preference)))
		b.WriteByte(' ')
		b.Write(rr.MX.Name)
	case layers.DNSTypeSRV:
		b.WriteString(strconv.Itoa(int(rr.SRV.Priority)) + " " + strconv.Itoa(int(rr.SRV.Weight)) + " " + strconv.Itoa(int(rr.SRV.Port)) + " ")
		b.Write(rr.SRV.Name)
	case layers.DNSTypeTXT:
		for i, t := range rr.TXTs {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Quote(string(t)))
		}
	case layers.DNSTypeSOA:
		s := rr.SOA
		b.Write(s.MName)
		b.WriteByte(' ')
		b.Write(s.RName)
		for _, v := range []uint32{s.Serial, s.Refresh, s.Retry, s.Expire, s.Minimum} {
			b.WriteByte(' ')
			b.WriteString(strconv.FormatUint(uint64(v), 10))
		}
	default:
		b.WriteString(strconv.Itoa(len(rr.Data)) + " bytes")
	}
	return b.String()
}

var typeNames = map[layers.DNSType]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA",
	33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
	50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF", 251: "IXFR", 252: "AXFR", 255: "ANY",
	256: "URI", 257: "CAA",
}

// typeName names a record type, as "TYPEn" (RFC 3597) when it has no name.
func typeName(t layers.DNSType) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

var rcodeNames = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
	"YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI"}

// rcodeName names the response code, folding in the upper eight bits an
// EDNS OPT record carries (RFC 6891 section 6.1.3).
func rcodeName(d *layers.DNS) string {
	code := int(d.ResponseCode) & 0xf
	for i := range d.Additionals {
		if d.Additionals[i].Type == layers.DNSTypeOPT {
			code |= int(d.Additionals[i].TTL>>24) << 4
		}
	}
	switch {
	case code < len(rcodeNames):
		return rcodeNames[code]
	case code == 16:
		return "BADVERS"
	}
	return "RCODE" + strconv.Itoa(code)
}

func opcodeName(o layers.DNSOpCode) string {
	switch o {
	case layers.DNSOpCodeIQuery:
		return "IQUERY"
	case layers.DNSOpCodeStatus:
		return "STATUS"
	case layers.DNSOpCodeNotify:
		return "NOTIFY"
	case layers.DNSOpCodeUpdate:
		return "UPDATE"
	}
	return "OPCODE" + strconv.Itoa(int(o))
}
