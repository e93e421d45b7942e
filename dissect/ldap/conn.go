package ldap

import (
	"strconv"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/wirescope/wirescope/dissect/proto"
)

// side reads one direction's messages.
type side struct {
	hdr     [6]byte
	nh      int
	hsize   int   // header bytes, once known
	total   int64 // the message's bytes, header included, once known
	got     int64
	buf     []byte // the message's first decodeCap bytes
	start   time.Time
	last    time.Time
	missing int64
	lost    bool
}

func (s *side) reset() {
	s.nh, s.hsize, s.total, s.got, s.missing = 0, 0, 0, 0, 0
	s.buf = s.buf[:0]
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
}

// request is an operation waiting for its result.
type request struct {
	call       *proto.Call
	op         int
	end        time.Time
	size       int
	entries    int
	references int
	shown      []byte // the first entries' DNs, for the response body
	gapped     bool
	mechanism  string // a SASL bind's
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	sides   [2]side
	pending proto.Pending[int64, *request]
	// switched: the connection turned to TLS or a SASL security layer;
	// nothing more is read.
	switched bool
	// wrapped: a SASL bind negotiated a mechanism that may add a
	// security layer; if the next bytes are not a message, it did.
	wrapped string
	rest    []proto.Chunk // bytes after a StartTLS response, handed over
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	if c.switched {
		return
	}
	i := idx(r)
	s := &c.sides[i]
	if s.lost {
		if v, _ := (Protocol{}).DetectStream(data, 0, 0); v != proto.Yes {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
		s.reset()
	}
	for len(data) > 0 && !c.switched {
		if s.hsize == 0 {
			if s.nh == 0 {
				s.start = t
				if data[0] != 0x30 {
					c.notLDAP(i, data, t)
					return
				}
			}
			n := copy(s.hdr[s.nh:], data)
			h, ok, need := header(s.hdr[:s.nh+n])
			if need {
				s.nh += n
				data = data[n:]
				continue
			}
			if !ok || h.length > maxMessage {
				c.malformed(i, "a message whose length is not a definite length under 256 MiB", t)
				c.out.Skipped(len(data))
				return
			}
			// Of what was just copied, the header's bytes are consumed;
			// the rest of data is content.
			used := h.size - s.nh
			s.hsize, s.total = h.size, int64(h.size)+h.length
			s.buf = append(s.buf, s.hdr[:h.size]...)
			s.got = int64(h.size)
			data = data[used:]
		}
		n := int64(len(data))
		if rest := s.total - s.got; n > rest {
			n = rest
		}
		if keep := int64(decodeCap) - int64(len(s.buf)); keep > 0 {
			s.buf = append(s.buf, data[:min(n, keep)]...)
		}
		s.got += n
		s.last = t
		data = data[n:]
		if s.got == s.total {
			c.message(i)
			s.reset()
		}
	}
	if c.switched && len(data) > 0 {
		c.rest = append(c.rest, proto.Chunk{Role: r, Data: append([]byte(nil), data...), T: t})
	}
}

// notLDAP handles bytes that do not start a message: after a SASL bind
// with a security layer, the wrapped stream; otherwise malformed.
func (c *conn) notLDAP(i int, data []byte, t time.Time) {
	if c.wrapped != "" {
		c.switched = true
		if fn, ok := c.out.(proto.FlowNoter); ok {
			fn.Encrypted("not decryptable: SASL " + c.wrapped + " security layer")
		}
		return
	}
	c.malformed(i, "bytes that are not an LDAP message", t)
	c.out.Skipped(len(data))
}

// malformed reports bytes of side i that are not LDAP: the side waits for
// a segment that starts a message.
func (c *conn) malformed(i int, why string, t time.Time) {
	s := &c.sides[i]
	call := &proto.Call{Proto: "ldap", TS: t}
	if i == 1 {
		// Results are matched by ID: the ones waiting may still come, or
		// have been among these bytes.
		for req := range c.pending.All() {
			req.gapped = true
		}
		why = "response: " + why
	}
	call.Fail(proto.Malformed, why)
	c.out.Emit(call)
	s.lost = true
	s.reset()
}

// message handles a whole message of side i.
func (c *conn) message(i int) {
	s := &c.sides[i]
	var (
		id  int64
		op  = -1
		pkt *ber.Packet
	)
	whole := s.total <= decodeCap && s.missing == 0
	if whole {
		p, err := ber.DecodePacketErr(s.buf)
		if err == nil && len(p.Children) >= 2 {
			pkt = p
			id, _ = p.Children[0].Value.(int64)
			opP := p.Children[1]
			if opP.ClassType == ber.ClassApplication {
				op = int(opP.Tag)
			}
		}
	}
	if pkt == nil {
		// Too big, cut by a gap, or not decodable whole: its head says
		// which message it is.
		var ok bool
		id, op, ok = head(s.buf)
		if !ok {
			c.malformed(i, "a message that is not an LDAPMessage", s.start)
			return
		}
	}
	if i == 0 {
		c.request(s, id, op, pkt)
	} else {
		c.response(s, id, op, pkt)
	}
}

// head reads the message ID and operation tag at the start of a message.
func head(b []byte) (id int64, op int, ok bool) {
	h, hok, _ := header(b)
	if !hok || h.tag != 0x30 {
		return 0, 0, false
	}
	b = b[h.size:]
	ih, iok, _ := header(b)
	if !iok || ih.tag != 0x02 || ih.length < 1 || ih.length > 4 || int64(len(b)) < int64(ih.size)+ih.length+1 {
		return 0, 0, false
	}
	for _, c := range b[ih.size : ih.size+int(ih.length)] {
		id = id<<8 | int64(c)
	}
	tag := b[ih.size+int(ih.length)]
	if tag&0xc0 != 0x40 {
		return 0, 0, false
	}
	return id, int(tag & 0x1f), true
}

// request handles an operation the client sent.
func (c *conn) request(s *side, id int64, op int, pkt *ber.Packet) {
	name, ok := requestNames[op]
	call := &proto.Call{Proto: "ldap", TS: s.start, Method: name}
	call.Request.BodySize = s.total
	call.Extra.Set("message_id", id)
	if !ok {
		call.Method = "op" + strconv.Itoa(op)
		call.Fail(proto.Malformed, "operation "+strconv.Itoa(op)+" is not a request")
		c.out.Emit(call)
		return
	}
	req := &request{call: call, op: op, end: s.last, size: 512}
	if s.missing > 0 {
		call.Fail(proto.Truncated, strconv.FormatInt(s.missing, 10)+" bytes of the request missing from the capture")
	} else if s.total > decodeCap {
		call.Extra.Set("decoded", "the first "+strconv.Itoa(decodeCap>>20)+" MiB of "+strconv.FormatInt(s.total, 10)+" bytes")
	}
	if pkt != nil {
		c.describeRequest(req, pkt.Children[1], pkt)
	} else if dn := firstString(s.buf); dn != "" && op != opBindRequest {
		call.Path = dn
	}
	switch op {
	case opUnbindRequest, opAbandonRequest:
		call.OneWay = true
		c.out.Emit(call)
		return
	}
	if !c.lim.Summary {
		req.size += len(call.Request.Body) + len(call.Path)
	}
	if old, full := c.pending.Add(id, call.TS, req); full {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" operations waiting for results")
		c.out.Emit(old.call)
	}
}

// firstString reads the first OCTET STRING inside a message's operation:
// the DN of most requests and of a search entry.
func firstString(b []byte) string {
	h, ok, _ := header(b)
	if !ok {
		return ""
	}
	b = b[h.size:]
	ih, ok, _ := header(b) // message ID
	if !ok || int64(len(b)) < int64(ih.size)+ih.length {
		return ""
	}
	b = b[int64(ih.size)+ih.length:]
	oh, ok, _ := header(b) // the operation
	if !ok || oh.tag&0x20 == 0 {
		return ""
	}
	b = b[oh.size:]
	sh, ok, _ := header(b)
	if !ok || sh.tag != 0x04 || sh.length > 4096 || int64(len(b)) < int64(sh.size)+sh.length {
		return ""
	}
	return string(b[sh.size : int64(sh.size)+sh.length])
}

// response handles a message the server sent.
func (c *conn) response(s *side, id int64, op int, pkt *ber.Packet) {
	if id == 0 && op == opExtendedResp {
		// An unsolicited notification (RFC 4511 4.4).
		call := &proto.Call{Proto: "ldap", TS: s.start, Method: "extended", OneWay: true}
		call.Response.BodySize = s.total
		if pkt != nil {
			st, oid := c.result(call, pkt.Children[1])
			call.Status = st
			call.Path = extendedName(oid)
		}
		c.out.Emit(call)
		return
	}
	req, ok := c.pending.Find(id, nil)
	if !ok {
		call := &proto.Call{Proto: "ldap", TS: s.start}
		call.Response.BodySize = s.total
		call.Extra.Set("message_id", id)
		call.Fail(proto.Orphan, "")
		c.out.Emit(call)
		return
	}
	call := req.call
	if call.Response.BodySize == 0 {
		call.LatencyNS = proto.Latency(req.end, s.start)
	}
	call.Response.BodySize += s.total
	if s.missing > 0 && call.Error == "" {
		call.Fail(proto.Truncated, strconv.FormatInt(s.missing, 10)+" bytes of the response missing from the capture")
	}
	switch op {
	case opSearchEntry:
		req.entries++
		if !c.lim.Summary && len(req.shown) < c.lim.MaxBodyDisplay {
			dn := firstString(s.buf)
			req.shown = append(req.shown, dn...)
			req.shown = append(req.shown, '\n')
		}
		return
	case opSearchReference:
		req.references++
		return
	case opIntermediate:
		n, _ := call.Extra.Get("intermediate").(int)
		call.Extra.Set("intermediate", n+1)
		return
	}
	c.pending.Take(id, nil)
	if pkt != nil {
		st, _ := c.result(call, pkt.Children[1])
		if call.Status == "" {
			call.Status = st
		}
		if call.Status == "" && call.Error == "" {
			call.Fail(proto.Malformed, "a result without its result code")
		}
	} else if call.Error == "" {
		call.Fail(proto.Truncated, "the result is past the "+strconv.Itoa(decodeCap>>20)+" MiB decoded")
	}
	if req.op == opSearchRequest {
		call.Extra.Set("entries", req.entries)
		if req.references > 0 {
			call.Extra.Set("references", req.references)
		}
		if len(req.shown) > 0 {
			call.Response.SetBody(req.shown, c.lim.MaxBodyDisplay)
		}
	}
	c.out.Emit(call)
	switch {
	case req.op == opExtendedRequest && call.Path == "startTLS" && call.Status == "success":
		c.switched = true
		c.out.Upgrade(proto.SwitchTLS)
	case req.op == opBindRequest && req.mechanism != "" && call.Status == "success" && securityLayer[req.mechanism]:
		c.wrapped = req.mechanism
	}
}

// securityLayer are the SASL mechanisms that may wrap what follows.
var securityLayer = map[string]bool{"GSSAPI": true, "GSS-SPNEGO": true, "DIGEST-MD5": true}

// HandOver implements proto.HandingOver: what came after a StartTLS
// response in the same segments.
func (c *conn) HandOver() proto.Handover {
	h := proto.Handover{Chunks: c.rest}
	c.rest = nil
	return h
}

// Gap implements proto.StreamParser: bytes missing inside a message are
// counted (the message is then read from its head); otherwise the side
// waits for a segment that starts a message.
func (c *conn) Gap(r proto.Role, n int) {
	if c.switched {
		return
	}
	i := idx(r)
	s := &c.sides[i]
	if s.lost {
		return
	}
	if n >= 0 && s.hsize > 0 && s.got+int64(n) <= s.total {
		s.got += int64(n)
		s.missing += int64(n)
		if keep := int64(decodeCap) - int64(len(s.buf)); keep > 0 {
			s.buf = append(s.buf, make([]byte, min(int64(n), keep))...)
		}
		if s.got == s.total {
			c.message(i)
			s.reset()
		}
		return
	}
	if s.hsize > 0 {
		s.missing += s.total - s.got
		s.got = s.total
		c.message(i)
	}
	s.lost = true
	s.reset()
	if i == 1 {
		for req := range c.pending.All() {
			req.gapped = true
		}
	}
}

// Expire implements proto.Expiring: results are matched by message ID.
func (c *conn) Expire(deadline time.Time) {
	c.pending.Expire(deadline, func(req *request) { c.unanswered(req, "no result within the request timeout") })
}

func (c *conn) unanswered(req *request, why string) {
	if req.call.Error == "" {
		switch {
		case req.gapped:
			req.call.Fail(proto.Truncated, "the result may be among bytes missing from the capture")
		case req.entries > 0 || req.references > 0:
			req.call.Extra.Set("entries", req.entries)
			req.call.Fail(proto.Truncated, "no searchResultDone after "+strconv.Itoa(req.entries)+" entries: "+orDefault(why, "connection closed"))
		default:
			req.call.Fail(proto.Unanswered, why)
		}
	}
	c.out.Emit(req.call)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.sides {
		s := &c.sides[i]
		if s.hsize == 0 || s.lost || c.switched {
			continue
		}
		if reason == proto.EndMemory {
			c.out.Skipped(len(s.buf))
		}
		if i == 0 {
			id, op, ok := head(s.buf)
			call := &proto.Call{Proto: "ldap", TS: s.start, Method: requestNames[op]}
			if ok {
				call.Extra.Set("message_id", id)
			}
			call.Request.BodySize = s.got
			call.Fail(proto.Truncated, "connection "+reason.String()+" during the request")
			c.out.Emit(call)
		} else if id, _, ok := head(s.buf); ok {
			if req, ok := c.pending.Take(id, nil); ok {
				req.call.Response.BodySize += s.got
				req.call.Fail(proto.Truncated, "connection "+reason.String()+" during the result")
				c.out.Emit(req.call)
			}
		}
		s.reset()
	}
	why := reason.Why()
	if c.switched {
		why = "the connection turned to TLS"
	}
	c.pending.Expire(time.Time{}, func(req *request) { c.unanswered(req, why) })
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.pending.Kept() + cap(c.sides[0].buf) + cap(c.sides[1].buf)
	for _, ch := range c.rest {
		n += len(ch.Data)
	}
	return n
}
