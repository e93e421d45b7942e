package diameter

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// side reads one direction's messages.
type side struct {
	// buf keeps the message's header and its first AVP bytes, up to
	// conn.keep.
	buf []byte
	// length is the message's length, once its first 4 bytes are read.
	length int
	// got counts the message's bytes read (or missing, read as zeros).
	got         int
	missing     int
	start, last time.Time
	// lost: the side's bytes are out of step (a gap, a malformed length):
	// it waits for a segment that starts a message.
	lost bool
}

func (s *side) reset() {
	s.length, s.got, s.missing = 0, 0, 0
	s.buf = s.buf[:0]
	if cap(s.buf) > 16<<10 {
		s.buf = nil // a big message's buffer goes with it
	}
}

// key is what an answer is matched by: the request's Hop-by-Hop
// Identifier and which side sent it.
type key struct {
	hbh  uint32
	from proto.Role
}

// request is a request waiting for its answer.
type request struct {
	call *proto.Call
	cmd  uint32
	from proto.Role // the side that sent it
	end  time.Time  // its last byte
	size int        // memory it takes while held
	// retrans counts the copies sent again with the T flag.
	retrans int
	// gapped: bytes of the answering side went missing after it was
	// sent; its answer may have been among them.
	gapped bool
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	keep    int // bytes of a message kept: its header and MaxBodyCapture
	sides   [2]side
	pending proto.Pending[key, *request]
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	s := &c.sides[idx(r)]
	if s.lost {
		if headerVerdict(data) != proto.Yes {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
		s.reset()
	}
	for len(data) > 0 {
		if s.got == 0 {
			s.start = t
			// A whole message in hand (SCTP delivers them so, and most
			// TCP segments too) is read in place.
			if len(data) >= headerLen && data[0] == 1 {
				if n := int(be24(data[1:])); n >= headerLen && n%4 == 0 && n <= len(data) && n <= c.keep {
					c.message(r, data[:n], n, 0, t, t)
					data = data[n:]
					continue
				}
			}
		}
		if s.got < 4 {
			k := min(4-s.got, len(data))
			s.buf = append(s.buf, data[:k]...)
			s.got += k
			data = data[k:]
			if s.got < 4 {
				break
			}
			n := int(be24(s.buf[1:]))
			switch {
			case s.buf[0] != 1:
				c.malformed(r, "version "+strconv.Itoa(int(s.buf[0]))+", not 1", t)
			case n < headerLen || n%4 != 0:
				c.malformed(r, "message length "+strconv.Itoa(n)+" is not a multiple of 4 of at least 20", t)
			case n > maxMessage:
				c.malformed(r, "message length "+strconv.Itoa(n)+" over "+strconv.Itoa(maxMessage>>20)+" MiB", t)
			default:
				s.length = n
			}
			if s.lost {
				c.out.Skipped(len(data))
				return
			}
		}
		k := min(len(data), s.length-s.got)
		if room := c.keep - len(s.buf); room > 0 {
			s.buf = append(s.buf, data[:min(k, room)]...)
		}
		s.got += k
		s.last = t
		data = data[k:]
		if s.got == s.length {
			c.message(r, s.buf, s.length, s.missing, s.start, s.last)
			s.reset()
		}
	}
}

// malformed handles bytes of side r that are not Diameter: a call says
// so, and the side waits for a segment that starts a message.
func (c *conn) malformed(r proto.Role, why string, t time.Time) {
	s := &c.sides[idx(r)]
	call := &proto.Call{Proto: "diameter", TS: s.start}
	if s.start.IsZero() {
		call.TS = t
	}
	call.Fail(proto.Malformed, why)
	if r == proto.Server {
		call.Extra.Set("direction", "server")
	}
	c.out.Emit(call)
	s.lost = true
	s.reset()
}

// message handles a whole message side r sent: b holds its first bytes
// (all of them unless it is longer than keep), missing of them read as
// zeros.
func (c *conn) message(r proto.Role, b []byte, length, missing int, start, last time.Time) {
	flags := b[4]
	cmd := be24(b[5:])
	app := binary.BigEndian.Uint32(b[8:])
	hbh := binary.BigEndian.Uint32(b[12:])
	in := readInfo(b[headerLen:])
	if flags&flagRequest != 0 {
		c.request(r, b, length, missing, start, last, flags, cmd, app, hbh, &in)
	} else {
		c.answer(r, b, length, missing, start, flags, cmd, app, hbh, &in)
	}
}

// describe sets what every message says on a call: how much was read,
// and its AVPs as the body.
func (c *conn) describe(call *proto.Call, m *proto.Message, b []byte, length, missing int, in *info) {
	m.BodySize = int64(length - headerLen)
	if len(b) < length {
		call.Extra.Set("decoded", "the first "+strconv.Itoa(len(b))+" of "+strconv.Itoa(length)+" bytes")
	} else if in.bad != "" && missing == 0 {
		call.Extra.Set("undecoded", in.bad)
	}
	if c.lim.Summary {
		return
	}
	body, cut := render(make([]byte, 0, 256), b[headerLen:], 0, c.lim.MaxBodyDisplay)
	if len(body) > 0 && body[len(body)-1] == '\n' {
		body = body[:len(body)-1]
	}
	m.SetBody(body, c.lim.MaxBodyDisplay)
	if cut || len(b) < length {
		m.BodyTruncated = true
	}
}

func setText(x *proto.Extra, k, v string) {
	if v != "" {
		x.Set(k, v)
	}
}

func appNames(ids []uint32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = appName(id) + " (" + strconv.FormatUint(uint64(id), 10) + ")"
	}
	return out
}

func enumName(code, v uint32) string {
	if n, ok := enums[uint64(code)][v]; ok {
		return n
	}
	return strconv.FormatUint(uint64(v), 10)
}

// request handles a request side r sent.
func (c *conn) request(r proto.Role, b []byte, length, missing int, start, last time.Time, flags byte, cmd, app, hbh uint32, in *info) {
	k := key{hbh, r}
	sameCmd := func(q *request) bool { return q.cmd == cmd }
	if flags&flagRetrans != 0 {
		if req, ok := c.pending.Find(k, sameCmd); ok {
			req.retrans++
			req.call.Extra.Set("retransmissions", req.retrans)
			return
		}
	}
	call := &proto.Call{Proto: "diameter", TS: start, Method: commandName(cmd, true)}
	call.Path = in.sessionID
	if call.Path == "" {
		call.Path = in.destRealm
	}
	call.Extra = make(proto.Extra, 0, 12)
	x := &call.Extra
	x.Set("application", appName(app))
	x.Set("application_id", int64(app))
	x.Set("hop_by_hop", int64(hbh))
	if r == proto.Server {
		x.Set("direction", "server")
	}
	if flags&flagRetrans != 0 {
		x.Set("retransmitted", true)
	}
	setText(x, "origin_host", in.originHost)
	setText(x, "origin_realm", in.originRealm)
	setText(x, "destination_host", in.destHost)
	setText(x, "destination_realm", in.destRealm)
	setText(x, "user_name", in.userName)
	setText(x, "product_name", in.productName)
	if len(in.authApps) > 0 {
		x.Set("auth_application_ids", appNames(in.authApps))
	}
	if len(in.acctApps) > 0 {
		x.Set("acct_application_ids", appNames(in.acctApps))
	}
	if in.hasCCType {
		x.Set("cc_request_type", enumName(416, in.ccType))
	}
	if in.hasCCNumber {
		x.Set("cc_request_number", int64(in.ccNumber))
	}
	if in.hasDisconnect {
		x.Set("disconnect_cause", enumName(273, in.disconnect))
	}
	if in.hasTermination {
		x.Set("termination_cause", enumName(295, in.termination))
	}
	if missing > 0 {
		call.Fail(proto.Truncated, strconv.Itoa(missing)+" bytes of the request missing from the capture")
	}
	c.describe(call, &call.Request, b, length, missing, in)
	req := &request{call: call, cmd: cmd, from: r, end: last, size: 512 + len(call.Request.Body)}
	if old, full := c.pending.Add(k, start, req); full {
		c.unanswered(old, "more than "+strconv.Itoa(c.lim.MaxPending)+" requests waiting for answers")
	}
}

// answer handles an answer side r sent.
func (c *conn) answer(r proto.Role, b []byte, length, missing int, start time.Time, flags byte, cmd, app, hbh uint32, in *info) {
	req, ok := c.pending.Take(key{hbh, r.Peer()}, func(q *request) bool { return q.cmd == cmd })
	if !ok {
		call := &proto.Call{Proto: "diameter", TS: start}
		call.Extra.Set("command", commandName(cmd, false))
		call.Extra.Set("application", appName(app))
		call.Extra.Set("hop_by_hop", int64(hbh))
		if in.hasResult {
			call.Extra.Set("result", resultName(in.resultCode))
		}
		call.Fail(proto.Orphan, "")
		c.describe(call, &call.Response, b, length, missing, in)
		c.out.Emit(call)
		return
	}
	call := req.call
	if d := start.Sub(req.end); d > 0 {
		call.LatencyNS = int64(d)
	}
	x := &call.Extra
	// Bytes missing from the capture read as zeros: a zero code is not
	// the answer's.
	switch {
	case in.hasResult && (in.resultCode != 0 || missing == 0):
		call.Status = resultName(in.resultCode)
		x.Set("result_code", int64(in.resultCode))
	case in.hasExp && (in.expCode != 0 || missing == 0):
		call.Status = experimentalName(in.expVendor, in.expCode)
		x.Set("experimental_result_code", int64(in.expCode))
		x.Set("experimental_result_vendor", int64(in.expVendor))
	}
	if flags&flagError != 0 {
		x.Set("error_bit", true)
	}
	setText(x, "answered_by", in.originHost)
	setText(x, "error_message", in.errorMessage)
	setText(x, "failed_avp", in.failedAVP)
	if cmd == 257 {
		setText(x, "answer_product_name", in.productName)
		if len(in.authApps) > 0 {
			x.Set("answer_auth_application_ids", appNames(in.authApps))
		}
		if len(in.acctApps) > 0 {
			x.Set("answer_acct_application_ids", appNames(in.acctApps))
		}
	}
	if req.retrans > 0 {
		x.Set("retransmissions", req.retrans)
	}
	if missing > 0 && call.Error == "" {
		call.Fail(proto.Truncated, strconv.Itoa(missing)+" bytes of the answer missing from the capture")
	}
	if call.Status == "" && call.Error == "" {
		call.Fail(proto.Malformed, "answer without a Result-Code or Experimental-Result")
	}
	c.describe(call, &call.Response, b, length, missing, in)
	c.out.Emit(call)
}

// Gap implements proto.StreamParser. Bytes missing inside a message read
// as zeros; otherwise the message they cut ends, and the side waits for a
// segment that starts one.
func (c *conn) Gap(r proto.Role, n int) {
	s := &c.sides[idx(r)]
	if s.lost {
		return
	}
	if n >= 0 && s.length > 0 && s.got+n <= s.length {
		c.zeros(s, n)
		s.missing += n
		if s.got == s.length {
			c.message(r, s.buf, s.length, s.missing, s.start, s.last)
			s.reset()
		}
		return
	}
	if s.length > 0 {
		// The message in hand lost its end.
		rest := s.length - s.got
		c.zeros(s, rest)
		s.missing += rest
		c.message(r, s.buf, s.length, s.missing, s.start, s.last)
	}
	s.lost = true
	s.reset()
	for req := range c.pending.All() {
		if req.from == r.Peer() {
			req.gapped = true
		}
	}
}

// zeros reads n missing bytes of the message in hand as zeros.
func (c *conn) zeros(s *side, n int) {
	if room := c.keep - len(s.buf); room > 0 {
		s.buf = append(s.buf, make([]byte, min(n, room))...)
	}
	s.got += n
}

// Expire implements proto.Expiring: answers are matched by Hop-by-Hop
// Identifier, so a request unanswered for long is given up.
func (c *conn) Expire(deadline time.Time) {
	c.pending.Expire(deadline, func(req *request) {
		c.unanswered(req, "no answer within the request timeout")
	})
}

func (c *conn) unanswered(req *request, why string) {
	if req.call.Error == "" {
		if req.gapped {
			req.call.Fail(proto.Truncated, "the answer may be among bytes missing from the capture")
		} else {
			req.call.Fail(proto.Unanswered, why)
		}
	}
	if req.retrans > 0 {
		req.call.Extra.Set("retransmissions", req.retrans)
	}
	c.out.Emit(req.call)
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.sides {
		s := &c.sides[i]
		if s.got == 0 || s.lost {
			continue
		}
		if reason == proto.EndMemory {
			c.out.Skipped(len(s.buf))
		}
		r := proto.Client
		if i == 1 {
			r = proto.Server
		}
		if len(s.buf) >= headerLen {
			flags, cmd, hbh := s.buf[4], be24(s.buf[5:]), binary.BigEndian.Uint32(s.buf[12:])
			if flags&flagRequest != 0 {
				call := &proto.Call{Proto: "diameter", TS: s.start, Method: commandName(cmd, true)}
				call.Request.BodySize = int64(s.length - headerLen)
				if r == proto.Server {
					call.Extra.Set("direction", "server")
				}
				call.Fail(proto.Truncated, "connection "+reason.String()+" during the request")
				c.out.Emit(call)
			} else if req, ok := c.pending.Take(key{hbh, r.Peer()}, nil); ok {
				req.call.Response.BodySize = int64(s.length - headerLen)
				if d := s.start.Sub(req.end); d > 0 {
					req.call.LatencyNS = int64(d)
				}
				req.call.Fail(proto.Truncated, "connection "+reason.String()+" during the answer")
				c.out.Emit(req.call)
			}
		}
		s.reset()
	}
	why := reason.Why()
	c.pending.Expire(time.Time{}, func(req *request) { c.unanswered(req, why) })
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	return c.pending.Kept() + cap(c.sides[0].buf) + cap(c.sides[1].buf)
}
