// Package radius dissects RADIUS over UDP: authentication (RFC 2865),
// accounting (RFC 2866), dynamic authorization (CoA and Disconnect, RFC
// 5176) and Status-Server (RFC 5997).
//
// Each request is a call: Method is its code's name (Access-Request,
// Accounting-Request, CoA-Request, Disconnect-Request, Status-Server), Path
// its User-Name, Status the response's code name (Access-Accept,
// Access-Reject, Access-Challenge, Accounting-Response, CoA-ACK, CoA-NAK,
// Disconnect-ACK, Disconnect-NAK). A response answers the request waiting
// with its identifier in the flow (the UDP 5-tuple), sent by the other
// side. A request sent again with the same identifier and Request
// Authenticator is a retransmission (extra retransmissions), not a new
// call; one that reuses a waiting request's identifier with another
// authenticator is a new request, and the one it replaces is emitted
// unanswered (the client gave up on it). The Response Authenticator is not
// verified: that needs the shared secret, which a capture does not hold.
// Requests unanswered after Limits.RequestTimeout, or when the flow ends,
// have Error "no response"; responses to no captured request "no request".
//
// The attributes (type, length, value; Vendor-Specific with its vendor id
// and sub-attributes) are shown one a line, "Name = value", as radclient
// prints them, in the request's and the response's bodies, and the common
// ones are extra fields (NAS, stations, session, accounting status, reply
// message, session timeout, Class as short hex, the EAP code and method,
// vendors counted). Secrets are never shown: User-Password, CHAP-Password,
// Tunnel-Password, ARAP passwords, Message-Authenticator's value,
// Microsoft's MS-CHAP responses, changed passwords and MPPE keys read
// "[redacted]", and an EAP-Message only names its code and method.
//
// Framing is checked whole: a length under 20, over 4096 or over the
// datagram, or attributes that do not walk exactly to the length, make the
// call "malformed: …". Memory is bounded by Limits.MaxPending requests per
// flow (and, as identifiers are 8 bits, 256 per direction), each keeping
// its display body (at most Limits.MaxBodyDisplay); nothing is allocated
// by a claimed length.
package radius

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is the RADIUS dissector.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "radius" }

// Describe implements proto.Describer: status is the response's code name.
// A reject or a NAK is the server refusing what the client asked (its
// credentials, the change): a client error. A Protocol-Error (RFC 7930) is
// a server error; every other response (accept, challenge, accounting
// response, ACK) is OK.
func (Protocol) Describe() proto.Description {
	return proto.Description{
		Summary:    "RADIUS requests (authentication, accounting, CoA/Disconnect, Status-Server)",
		Path:       proto.PathText,
		Outcome:    outcome,
		TextStatus: true,
	}
}

func outcome(c *proto.Call) proto.Outcome {
	switch c.Status {
	case "Access-Reject", "CoA-NAK", "Disconnect-NAK":
		return proto.ClientError
	case "Protocol-Error":
		return proto.ServerError
	}
	return proto.OK
}

// ports are the IANA ports (1812, 1813), the old ones (1645, 1646) and
// dynamic authorization's (3799).
var ports = []uint16{1812, 1813, 1645, 1646, 3799}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return ports }

const (
	headerLen = 20
	maxLen    = 4096
)

// Codes.
const (
	codeAccessRequest      = 1
	codeAccessAccept       = 2
	codeAccessReject       = 3
	codeAccountingRequest  = 4
	codeAccountingResponse = 5
	codeAccessChallenge    = 11
	codeStatusServer       = 12
	codeDisconnectRequest  = 40
	codeDisconnectACK      = 41
	codeDisconnectNAK      = 42
	codeCoARequest         = 43
	codeCoAACK             = 44
	codeCoANAK             = 45
	codeProtocolError      = 52
)

var codeNames = [256]string{
	codeAccessRequest: "Access-Request", codeAccessAccept: "Access-Accept", codeAccessReject: "Access-Reject",
	codeAccountingRequest: "Accounting-Request", codeAccountingResponse: "Accounting-Response",
	codeAccessChallenge: "Access-Challenge", codeStatusServer: "Status-Server",
	codeDisconnectRequest: "Disconnect-Request", codeDisconnectACK: "Disconnect-ACK", codeDisconnectNAK: "Disconnect-NAK",
	codeCoARequest: "CoA-Request", codeCoAACK: "CoA-ACK", codeCoANAK: "CoA-NAK", codeProtocolError: "Protocol-Error",
}

func isRequest(code byte) bool {
	switch code {
	case codeAccessRequest, codeAccountingRequest, codeStatusServer, codeDisconnectRequest, codeCoARequest:
		return true
	}
	return false
}

func isResponse(code byte) bool {
	switch code {
	case codeAccessAccept, codeAccessReject, codeAccountingResponse, codeAccessChallenge, codeDisconnectACK,
		codeDisconnectNAK, codeCoAACK, codeCoANAK, codeProtocolError:
		return true
	}
	return false
}

// codeName names a code, "Code-N" when it has no name.
func codeName(code byte) string {
	if n := codeNames[code]; n != "" {
		return n
	}
	return "Code-" + strconv.Itoa(int(code))
}

// walk checks that attrs is a sequence of attributes (type, length of at
// least 2, value) ending exactly at its end, calling fn (when not nil) with
// each; it returns why not, or "".
func walk(attrs []byte, fn func(typ byte, v []byte)) string {
	for i := 0; i < len(attrs); {
		if len(attrs)-i < 2 {
			return "attribute at offset " + strconv.Itoa(headerLen+i) + " cut short"
		}
		typ, n := attrs[i], int(attrs[i+1])
		if n < 2 {
			return "attribute " + strconv.Itoa(int(typ)) + " at offset " + strconv.Itoa(headerLen+i) + " has length " + strconv.Itoa(n)
		}
		if i+n > len(attrs) {
			return "attribute " + strconv.Itoa(int(typ)) + " at offset " + strconv.Itoa(headerLen+i) + " runs past the packet's end"
		}
		if fn != nil {
			fn(typ, attrs[i+2:i+n])
		}
		i += n
	}
	return ""
}

// DetectDatagram implements proto.DatagramProtocol: a request or response
// code, a length of 20 to 4096 equal to the datagram's (or shorter, the
// rest zero padding, or on a RADIUS port), and attributes of non-zero
// types walking exactly to the length. A packet without attributes is only
// taken on a RADIUS port. Ports never suffice.
func (Protocol) DetectDatagram(b []byte, srcPort, dstPort uint16) (proto.Verdict, proto.Role) {
	if len(b) < headerLen {
		return proto.No, proto.RoleUnknown
	}
	code := b[0]
	req := isRequest(code)
	if !req && !isResponse(code) {
		return proto.No, proto.RoleUnknown
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n < headerLen || n > maxLen || n > len(b) {
		return proto.No, proto.RoleUnknown
	}
	onPort := false
	for _, p := range ports {
		onPort = onPort || p == srcPort || p == dstPort
	}
	if n < len(b) && !onPort {
		for _, c := range b[n:] {
			if c != 0 {
				return proto.No, proto.RoleUnknown
			}
		}
	}
	if n == headerLen && !onPort {
		return proto.No, proto.RoleUnknown
	}
	zeroType := false
	if walk(b[headerLen:n], func(typ byte, _ []byte) { zeroType = zeroType || typ == 0 }) != "" || zeroType {
		return proto.No, proto.RoleUnknown
	}
	if req {
		return proto.Yes, proto.Client
	}
	return proto.Yes, proto.Server
}

// NewFlow implements proto.DatagramProtocol.
func (Protocol) NewFlow(out proto.Emitter, lim *proto.Limits) proto.DatagramParser {
	return &flow{out: out, lim: lim, pending: proto.Pending[uint16, *request]{Max: lim.MaxPending, Size: keptSize}}
}

// request is a request waiting for its response.
type request struct {
	auth    [16]byte
	retrans int
	call    *proto.Call
	// malformed, when set, is why its attributes do not parse.
	malformed string
}

// requestSize is about the memory a waiting request takes beyond its
// strings and body.
const requestSize = 512

func keptSize(q *request) int {
	return requestSize + len(q.call.Path) + len(q.call.Request.Body)
}

// flow pairs the requests and responses of one UDP flow.
type flow struct {
	out proto.Emitter
	lim *proto.Limits
	// pending holds the requests waiting, by key: the sender's role in the
	// high byte, the identifier in the low one.
	pending proto.Pending[uint16, *request]
}

func key(sender proto.Role, id byte) uint16 { return uint16(sender)<<8 | uint16(id) }

// Datagram implements proto.DatagramParser.
func (f *flow) Datagram(r proto.Role, b []byte, t time.Time) {
	if len(b) < headerLen {
		f.broken(r, b, t, "malformed: "+strconv.Itoa(len(b))+" bytes, shorter than a RADIUS header")
		return
	}
	code, id := b[0], b[1]
	n := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case n < headerLen || n > maxLen:
		f.broken(r, b, t, "malformed: length "+strconv.Itoa(n)+" outside 20..4096")
		return
	case n > len(b):
		f.broken(r, b, t, "malformed: length "+strconv.Itoa(n)+" over the datagram's "+strconv.Itoa(len(b))+" bytes")
		return
	case !isRequest(code) && !isResponse(code):
		f.broken(r, b, t, "malformed: unknown code "+strconv.Itoa(int(code)))
		return
	}
	pkt := b[:n]
	var d decoded
	malformed := d.decode(pkt, !f.lim.Summary, f.lim.MaxBodyDisplay)
	if isRequest(code) {
		f.request(r, code, id, pkt, &d, malformed, t)
		return
	}
	f.response(r, code, id, n, &d, malformed, t)
}

// request handles a request sent by the side playing role r.
func (f *flow) request(r proto.Role, code, id byte, pkt []byte, d *decoded, malformed string, t time.Time) {
	var auth [16]byte
	copy(auth[:], pkt[4:headerLen])
	k := key(r, id)
	if q, ok := f.pending.Find(k, func(q *request) bool { return q.auth == auth && q.call.Method == codeName(code) }); ok {
		q.retrans++
		return
	}
	// Another request with this identifier still waits: the client
	// reuses an identifier only once it gave up on the request.
	if old, ok := f.pending.Take(k, nil); ok {
		f.emit(old, nil, "no response: identifier reused by a new request")
	}
	c := &proto.Call{Proto: "radius", TS: t, Method: codeName(code), Path: d.user, Extra: d.requestExtra(id)}
	c.Request.BodySize = int64(len(pkt))
	if d.body != nil {
		c.Request.SetBody(d.body, f.lim.MaxBodyDisplay)
	}
	q := &request{auth: auth, call: c, malformed: malformed}
	if old, full := f.pending.Add(k, t, q); full {
		f.emit(old, nil, "truncated: more than "+strconv.Itoa(f.lim.MaxPending)+" requests waiting for a response")
	}
}

// reply is a response on its way to its call.
type reply struct {
	code byte
	t    time.Time
	size int
	d    *decoded
}

// response handles a response sent by the side playing role r.
func (f *flow) response(r proto.Role, code, id byte, n int, d *decoded, malformed string, t time.Time) {
	rp := &reply{code: code, t: t, size: n, d: d}
	if q, ok := f.pending.Take(key(r.Peer(), id), nil); ok {
		f.emit(q, rp, malformed)
		return
	}
	why := "no request"
	if malformed != "" {
		why = malformed
	}
	c := &proto.Call{Proto: "radius", TS: t, Path: d.user, Extra: proto.Extra{{Key: "id", Value: int(id)}}}
	f.emit(&request{call: c}, rp, why)
}

// broken turns a datagram whose header cannot be read into a call with
// Error why: a response's is paired with the request waiting under its
// identifier, when the code says it is one.
func (f *flow) broken(r proto.Role, b []byte, t time.Time, why string) {
	c := &proto.Call{Proto: "radius", TS: t}
	if len(b) >= 2 {
		c.Extra = proto.Extra{{Key: "id", Value: int(b[1])}}
		if isResponse(b[0]) {
			if q, ok := f.pending.Take(key(r.Peer(), b[1]), nil); ok {
				f.emit(q, &reply{code: b[0], t: t, size: len(b)}, why)
				return
			}
			f.emit(&request{call: c}, &reply{code: b[0], t: t, size: len(b)}, why)
			return
		}
		if isRequest(b[0]) {
			c.Method = codeName(b[0])
		}
	}
	c.Request.BodySize = int64(len(b))
	c.Fail(proto.Malformed, trimKind(why))
	f.out.Emit(c)
}

// trimKind returns the detail of an Error text built as "malformed: …".
func trimKind(why string) string {
	const p = "malformed: "
	if len(why) > len(p) && why[:len(p)] == p {
		return why[len(p):]
	}
	return why
}

// emit finishes q's call with its reply (nil: none came) and Error
// errText ("" for none; a request's own malformation comes first).
func (f *flow) emit(q *request, rp *reply, errText string) {
	c := q.call
	if q.retrans > 0 {
		c.Extra.Set("retransmissions", q.retrans)
	}
	if q.malformed != "" {
		errText = q.malformed
	}
	if rp != nil {
		c.Status = codeName(rp.code)
		c.Response.BodySize = int64(rp.size)
		if c.Method != "" {
			if d := rp.t.Sub(c.TS); d > 0 {
				c.LatencyNS = int64(d)
			}
		}
		if rp.d != nil {
			rp.d.responseExtra(&c.Extra)
			if rp.d.body != nil {
				c.Response.SetBody(rp.d.body, f.lim.MaxBodyDisplay)
			}
		}
	} else if errText == "" {
		errText = "no response"
	}
	if errText != "" {
		p := proto.ProblemOf(errText)
		c.Fail(p, errDetail(errText, p))
	}
	f.out.Emit(c)
}

// errDetail returns what follows a problem's words in text.
func errDetail(text string, p proto.Problem) string {
	w := p.String()
	if len(text) > len(w)+2 && text[:len(w)] == w && text[len(w)] == ':' {
		return text[len(w)+2:]
	}
	if text == w {
		return ""
	}
	return text
}

// Expire implements proto.DatagramParser.
func (f *flow) Expire(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	f.pending.Expire(deadline, func(q *request) { f.emit(q, nil, "no response") })
}

// End implements proto.DatagramParser. Requests still waiting are emitted
// unanswered; when the engine ended the flow early to bound memory, their
// Error says so, as their response may yet have come.
func (f *flow) End(reason proto.EndReason, _ time.Time) {
	why := "no response"
	if reason == proto.EndMemory {
		why = "no response: flow ended early for memory bounds"
	}
	f.pending.Expire(time.Time{}, func(q *request) { f.emit(q, nil, why) })
}

// Buffered implements proto.Buffering: the requests waiting for their
// response.
func (f *flow) Buffered() int { return f.pending.Kept() }
