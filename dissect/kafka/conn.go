package kafka

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/proto"
)

// side reads one direction's messages: a 4-byte size, then the message.
type side struct {
	hdr  [4]byte
	nh   int   // size bytes read
	size int64 // the message's size, after its size field
	got  int64 // message bytes read (or missing, read as zeros)
	// buf keeps the message's first maxDecode bytes.
	buf         []byte
	start, last time.Time
	missing     int64 // bytes of the message missing from the capture
	// lost: the side's bytes are out of step (a gap, a malformed size):
	// it waits for a segment that starts a message.
	lost bool
}

func (s *side) reset() {
	s.nh, s.size, s.got, s.missing = 0, 0, 0, 0
	s.buf = s.buf[:0]
	if cap(s.buf) > 64<<10 {
		s.buf = nil // a big message's buffer goes with it
	}
}

// request is a request waiting for its response.
type request struct {
	call    *proto.Call
	key     int16
	version int16
	corr    int32
	end     time.Time // its last byte
	size    int       // memory it takes while held
	// gapped: bytes of the server's went missing after it was sent; its
	// response may have been among them.
	gapped bool
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	sides   [2]side
	pending proto.Pending[int32, *request]
	// topicNames names topic IDs, from the connection's Metadata
	// responses (Fetch 13+ and Produce 13+ name topics by ID).
	topicNames map[[16]byte]string
	// rawSASL: a SaslHandshake v0 succeeded, so the client's next message
	// is a bare SASL token, not a request (KIP-43).
	rawSASL bool
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	i := idx(r)
	s := &c.sides[i]
	if s.lost {
		if !c.startsMessage(i, data) {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
		s.reset()
	}
	for len(data) > 0 {
		if s.nh < 4 {
			if s.nh == 0 {
				s.start = t
			}
			n := copy(s.hdr[s.nh:], data)
			s.nh += n
			data = data[n:]
			if s.nh < 4 {
				break
			}
			s.size = int64(int32(binary.BigEndian.Uint32(s.hdr[:])))
			if s.size < 4 || s.size > maxMessage {
				c.malformed(i, "message size "+strconv.FormatInt(s.size, 10)+" out of range", t)
				c.out.Skipped(len(data))
				return
			}
			s.got = 0
		}
		n := int64(len(data))
		if rest := s.size - s.got; n > rest {
			n = rest
		}
		if keep := int64(maxDecode) - int64(len(s.buf)); keep > 0 {
			s.buf = append(s.buf, data[:min(n, keep)]...)
		}
		s.got += n
		s.last = t
		data = data[n:]
		if s.got == s.size {
			c.message(i)
			s.reset()
		}
	}
}

// startsMessage says whether data, the start of a segment of side i that
// is out of step, starts a message.
func (c *conn) startsMessage(i int, data []byte) bool {
	if i == 0 {
		return requestStart(data) == proto.Yes
	}
	if len(data) < 8 {
		return false
	}
	size := int32(binary.BigEndian.Uint32(data))
	if size < 4 || size > maxMessage {
		return false
	}
	_, ok := c.pending.Find(int32(binary.BigEndian.Uint32(data[4:])), nil)
	return ok
}

// malformed handles bytes of side i that are not Kafka: the side waits
// for a segment that starts a message.
func (c *conn) malformed(i int, why string, t time.Time) {
	s := &c.sides[i]
	call := &proto.Call{Proto: "kafka", TS: s.start}
	if s.start.IsZero() {
		call.TS = t
	}
	call.Fail(proto.Malformed, why)
	if i == 0 {
		c.out.Emit(call)
	} else if req, ok := c.pending.TakeOldest(); ok {
		req.call.Fail(proto.Malformed, "response: "+why)
		c.out.Emit(req.call)
	} else {
		c.out.Emit(call)
	}
	s.lost = true
	s.reset()
}

// message handles a whole message of side i.
func (c *conn) message(i int) {
	s := &c.sides[i]
	if i == 0 {
		c.request(s)
	} else {
		c.response(s)
	}
}

// cut says how much of a message was kept and read: "" when all of it.
func (s *side) cut() string {
	if s.size <= int64(len(s.buf)) {
		return ""
	}
	return "decoded the first " + strconv.Itoa(len(s.buf)>>20) + " MiB of " + strconv.FormatInt(s.size, 10) + " bytes"
}

// request handles a request the client sent.
func (c *conn) request(s *side) {
	b := s.buf
	if c.rawSASL {
		c.rawSASL = false
		call := &proto.Call{Proto: "kafka", TS: s.start, Method: "SaslAuthenticate"}
		call.Request.BodySize = s.size
		call.Extra.Set("sasl", "raw token after SaslHandshake v0 (not shown)")
		c.hold(&request{call: call, key: -1, corr: -1, end: s.last, size: 256})
		return
	}
	if len(b) < 10 {
		call := &proto.Call{Proto: "kafka", TS: s.start}
		call.Fail(proto.Malformed, "request of "+strconv.FormatInt(s.size, 10)+" bytes is shorter than its header")
		c.out.Emit(call)
		return
	}
	key := int16(binary.BigEndian.Uint16(b))
	version := int16(binary.BigEndian.Uint16(b[2:]))
	corr := int32(binary.BigEndian.Uint32(b[4:]))
	call := &proto.Call{Proto: "kafka", TS: s.start, Method: apiName(key)}
	call.Request.BodySize = s.size
	call.Extra.Set("api_version", int(version))
	call.Extra.Set("correlation_id", int(corr))
	req := &request{call: call, key: key, version: version, corr: corr, end: s.last, size: 512}
	kreq := kmsg.RequestForKey(key)
	if kreq != nil {
		kreq.SetVersion(version)
	}
	body, clientID, err := requestHeader(b, kreq)
	if clientID != "" {
		call.Extra.Set("client_id", clientID)
	}
	if s.missing > 0 {
		call.Fail(proto.Truncated, strconv.FormatInt(s.missing, 10)+" bytes of the request missing from the capture")
	}
	if err != "" {
		call.Fail(proto.Malformed, err)
		c.out.Emit(call)
		return
	}
	if kreq == nil {
		// Brokers close the connection on a key they do not know; its
		// answer, if any, is still this call's.
		call.Fail(proto.Malformed, "API key "+strconv.Itoa(int(key))+" is not known")
		c.hold(req)
		return
	}
	derr := kreq.ReadFrom(body)
	if cut := s.cut(); cut != "" {
		call.Extra.Set("decoded", cut)
	} else if derr != nil && s.missing == 0 {
		call.Extra.Set("undecoded", call.Method+" v"+strconv.Itoa(int(version))+" request: "+derr.Error())
	}
	c.describeRequest(call, kreq)
	if p, ok := kreq.(*kmsg.ProduceRequest); ok && p.Acks == 0 {
		call.OneWay = true
		c.out.Emit(call)
		return
	}
	if !c.lim.Summary {
		req.size += len(call.Request.Body)
	}
	c.hold(req)
}

// requestHeader reads a request's header (v1, or v2 with tagged fields
// for a flexible version): it returns the body and the client ID, or why
// the header is malformed. kreq is the request at its version (nil: an
// API kmsg does not know, read as not flexible).
func requestHeader(b []byte, kreq kmsg.Request) (body []byte, clientID, err string) {
	b = b[8:]
	if len(b) < 2 {
		return nil, "", "request header cut before its client ID"
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n >= 0 {
		if int(n) > len(b) {
			return nil, "", "client ID of " + strconv.Itoa(int(n)) + " bytes overruns the request"
		}
		clientID, b = string(b[:n]), b[n:]
	}
	if kreq != nil && kreq.IsFlexible() {
		var ok bool
		if b, ok = skipTags(b); !ok {
			return nil, clientID, "request header's tagged fields overrun the request"
		}
	}
	return b, clientID, ""
}

// skipTags skips a tagged-field section (KIP-482).
func skipTags(b []byte) ([]byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, false
	}
	b = b[k:]
	for range n {
		_, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, false
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, false
		}
		b = b[k+int(size):]
	}
	return b, true
}

// hold keeps a request for its response.
func (c *conn) hold(req *request) {
	if old, full := c.pending.Add(req.corr, req.call.TS, req); full {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" requests waiting for responses")
		c.out.Emit(old.call)
	}
}

// response handles a response the server sent.
func (c *conn) response(s *side) {
	b := s.buf
	if len(b) < 4 {
		if req, ok := c.pending.TakeOldest(); ok {
			req.call.Fail(proto.Malformed, "response of "+strconv.FormatInt(s.size, 10)+" bytes is shorter than its header")
			c.out.Emit(req.call)
		}
		return
	}
	corr := int32(binary.BigEndian.Uint32(b))
	req, ok := c.pending.Take(corr, nil)
	if !ok {
		// A raw SASL token's answer has no correlation ID.
		if head, hok := c.pending.Oldest(); hok && head.key == -1 {
			req, ok = c.pending.TakeOldest()
		}
	}
	if !ok {
		call := &proto.Call{Proto: "kafka", TS: s.start}
		call.Response.BodySize = s.size
		call.Extra.Set("correlation_id", int(corr))
		call.Fail(proto.Orphan, "")
		c.out.Emit(call)
		return
	}
	call := req.call
	call.LatencyNS = proto.Latency(req.end, s.start)
	call.Response.BodySize = s.size
	if req.key == -1 {
		call.Status = "OK"
		c.out.Emit(call)
		return
	}
	if s.missing > 0 && call.Error == "" {
		call.Fail(proto.Truncated, strconv.FormatInt(s.missing, 10)+" bytes of the response missing from the capture")
	}
	resp := kmsg.ResponseForKey(req.key)
	if resp == nil {
		// An API kmsg does not know: the response was seen, its status
		// cannot be read.
		c.out.Emit(call)
		return
	}
	resp.SetVersion(req.version)
	body := b[4:]
	// ApiVersions' response header is v0 at every version (KIP-511).
	if resp.IsFlexible() && req.key != int16(kmsg.ApiVersions) {
		var ok bool
		if body, ok = skipTags(body); !ok {
			call.Fail(proto.Malformed, "response header's tagged fields overrun the response")
			c.out.Emit(call)
			return
		}
	}
	derr := resp.ReadFrom(body)
	if derr != nil && req.key == int16(kmsg.ApiVersions) && req.version > 0 {
		// A broker that does not know the version asked answers in v0.
		resp = kmsg.ResponseForKey(req.key)
		resp.SetVersion(0)
		if resp.ReadFrom(b[4:]) == nil {
			derr = nil
		}
	}
	cut := s.cut()
	if cut != "" {
		call.Extra.Set("decoded", cut)
	} else if derr != nil && s.missing == 0 {
		call.Extra.Set("undecoded", call.Method+" v"+strconv.Itoa(int(req.version))+" response: "+derr.Error())
	}
	// Bytes missing from the capture read as zeros: error code 0. Only
	// an error found is a status then.
	c.describeResponse(call, resp, s.missing == 0 && (derr == nil || cut != ""))
	if call.Status == "" && call.Error == "" {
		call.Fail(proto.Malformed, "response not readable as "+call.Method+" v"+strconv.Itoa(int(req.version)))
	}
	if req.key == int16(kmsg.SASLHandshake) && req.version == 0 && call.Status == "OK" {
		c.rawSASL = true
	}
	c.out.Emit(call)
}

// Gap implements proto.StreamParser. Bytes missing inside a message are
// read as zeros; otherwise the message they cut ends, and the side waits
// for a segment that starts one.
func (c *conn) Gap(r proto.Role, n int) {
	i := idx(r)
	s := &c.sides[i]
	if s.lost {
		return
	}
	if n >= 0 && s.nh == 4 && s.got+int64(n) <= s.size {
		if keep := int64(maxDecode) - int64(len(s.buf)); keep > 0 {
			s.buf = append(s.buf, make([]byte, min(int64(n), keep))...)
		}
		s.got += int64(n)
		s.missing += int64(n)
		if s.got == s.size {
			c.message(i)
			s.reset()
		}
		return
	}
	if s.nh == 4 {
		// The message in hand lost its end.
		s.missing += s.size - s.got
		s.got = s.size
		if len(s.buf) < int(min(s.size, maxDecode)) {
			s.buf = append(s.buf, make([]byte, int(min(s.size, maxDecode))-len(s.buf))...)
		}
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

// Expire implements proto.Expiring: responses are matched by correlation
// ID, so a request unanswered for long is given up.
func (c *conn) Expire(deadline time.Time) {
	c.pending.Expire(deadline, func(req *request) {
		c.unanswered(req, "no response within the request timeout")
	})
}

func (c *conn) unanswered(req *request, why string) {
	if req.call.Error == "" {
		if req.gapped {
			req.call.Fail(proto.Truncated, "the response may be among bytes missing from the capture")
		} else {
			req.call.Fail(proto.Unanswered, why)
		}
	}
	c.out.Emit(req.call)
}

// longPoll says whether req is a fetch still within its long poll at t: a
// broker holds a fetch up to its max wait for records to come, so a
// connection closed meanwhile says nothing of how it would have ended.
func longPoll(req *request, t time.Time) (time.Duration, bool) {
	if req.key != int16(kmsg.Fetch) {
		return 0, false
	}
	wait, _ := req.call.Extra.Get("max_wait_ms").(int)
	d := time.Duration(wait) * time.Millisecond
	return d, wait > 0 && !t.After(req.end.Add(d+time.Second))
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.sides {
		s := &c.sides[i]
		if s.nh == 0 || s.lost {
			continue
		}
		if reason == proto.EndMemory {
			c.out.Skipped(len(s.buf))
		}
		call := &proto.Call{Proto: "kafka", TS: s.start}
		if i == 0 {
			if len(s.buf) >= 4 {
				call.Method = apiName(int16(binary.BigEndian.Uint16(s.buf)))
			}
			call.Request.BodySize = s.got
			call.Fail(proto.Truncated, "connection "+reason.String()+" during the request")
			c.out.Emit(call)
		} else if len(s.buf) >= 4 {
			if req, ok := c.pending.Take(int32(binary.BigEndian.Uint32(s.buf)), nil); ok {
				req.call.Response.BodySize = s.got
				req.call.LatencyNS = proto.Latency(req.end, s.start)
				req.call.Fail(proto.Truncated, "connection "+reason.String()+" during the response")
				c.out.Emit(req.call)
			}
		}
		s.reset()
	}
	why := reason.Why()
	c.pending.Expire(time.Time{}, func(req *request) {
		if wait, ok := longPoll(req, t); ok && req.call.Error == "" && (reason == proto.EndFIN || reason == proto.EndRST) {
			req.call.Fail(proto.Truncated, "the connection closed during the fetch's long poll (max wait "+wait.String()+")")
		}
		c.unanswered(req, why)
	})
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	return c.pending.Kept() + cap(c.sides[0].buf) + cap(c.sides[1].buf) + 40*len(c.topicNames)
}
