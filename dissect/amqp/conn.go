package amqp

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// side reads one direction's frames: a 7-byte header (type, channel,
// size), the payload, the frame-end octet.
type side struct {
	hdr  [7]byte
	nh   int // header bytes read
	typ  byte
	ch   uint16
	size int64 // the payload's size
	got  int64 // payload bytes read (or missing)
	// buf keeps a method or content header frame's first keep bytes.
	buf         []byte
	start, last time.Time
	// proto collects a protocol header ("AMQP" and four octets).
	proto  [8]byte
	np     int
	inHdr  bool
	hdrSaw bool // the side sent its protocol header
	// lost: the side's bytes are out of step (a gap, a malformed frame):
	// it waits for a segment that starts a method frame.
	lost bool
}

func (s *side) reset() {
	s.nh, s.size, s.got = 0, 0, 0
	s.buf = s.buf[:0]
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	}
}

// request is an exchange waiting for its reply: sent by the client
// (pending[0]) or by the server (pending[1]).
type request struct {
	call   *proto.Call
	m      *method
	class  uint16
	id     uint16
	end    time.Time // the last byte of its frame
	size   int       // memory it takes while held
	gapped bool      // bytes of the replying side went missing after it
}

// content is a message being assembled from its method, content header
// and body frames.
type content struct {
	call    *proto.Call
	msg     *proto.Message
	dir     int
	ch      uint16
	header  bool   // the content header came
	size    uint64 // the body's size, as the header says
	got     uint64 // body bytes seen (or missing)
	body    []byte
	missing uint64
	// answered: the content completes a reply (basic.get-ok); latency
	// and status are set already.
	answered bool
}

// chanState is what a channel's later methods need: publisher confirms.
type chanState struct {
	confirm   bool
	published uint64 // publishes sent since confirm.select
	confirmed uint64 // the highest delivery tag the server confirmed
}

// conn parses one connection.
type conn struct {
	out      proto.Emitter
	lim      proto.Limits
	keep     int
	sides    [2]side
	pending  [2]proto.Pending[uint16, *request]
	contents map[uint32]*content
	kept     int // body bytes kept by contents in progress
	chans    map[uint16]*chanState
	// hdrCall is the client's protocol header until the server answers.
	hdrCall *proto.Call
	// login is the connection.start its start-ok answered, held until the
	// server goes on (connection.tune or .secure: the login passed) or
	// closes (RabbitMQ closes the socket on a refused login).
	login *proto.Call
	// v1 is the call of an AMQP 1.0 connection, which is not decoded.
	v1         *proto.Call
	v1Bytes    [2]int64
	heartbeats int
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
	if c.v1 != nil && s.hdrSaw {
		c.v1Bytes[i] += int64(len(data))
		return
	}
	if s.lost {
		if !startsFrame(data) {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
		s.reset()
	}
	for len(data) > 0 {
		if c.v1 != nil && (s.hdrSaw || !s.inHdr && data[0] != 'A') {
			c.v1Bytes[i] += int64(len(data))
			return
		}
		if s.nh == 0 && !s.inHdr && data[0] == 'A' {
			s.inHdr, s.np, s.start = true, 0, t
		}
		if s.inHdr {
			n := copy(s.proto[s.np:], data)
			s.np += n
			data = data[n:]
			if s.np == 8 {
				s.inHdr = false
				if !c.protocolHeader(i, t) {
					c.out.Skipped(len(data))
					return
				}
			}
			continue
		}
		if s.nh < 7 {
			if s.nh == 0 {
				s.start = t
			}
			n := copy(s.hdr[s.nh:], data)
			s.nh += n
			data = data[n:]
			if s.nh < 7 {
				break
			}
			s.typ = s.hdr[0]
			s.ch = binary.BigEndian.Uint16(s.hdr[1:])
			s.size = int64(binary.BigEndian.Uint32(s.hdr[3:]))
			s.got = 0
			switch {
			case s.typ != fMethod && s.typ != fHeader && s.typ != fBody && s.typ != fHeartbeat && s.typ != fHeartbeatOld:
				c.malformed(i, "frame type "+strconv.Itoa(int(s.typ)), t)
				c.out.Skipped(len(data))
				return
			case s.size > maxFrame:
				c.malformed(i, "frame of "+strconv.FormatInt(s.size, 10)+" bytes", t)
				c.out.Skipped(len(data))
				return
			}
		}
		if s.got < s.size {
			n := int64(len(data))
			if rest := s.size - s.got; n > rest {
				n = rest
			}
			if s.typ == fBody {
				c.bodyBytes(i, s.ch, data[:n], 0)
			} else if keep := int64(c.keep) - int64(len(s.buf)); keep > 0 {
				s.buf = append(s.buf, data[:min(n, keep)]...)
			}
			s.got += n
			data = data[n:]
			if s.got < s.size {
				break
			}
		}
		if len(data) == 0 {
			break
		}
		// The frame-end octet.
		if data[0] != frameEnd {
			c.malformed(i, "frame end 0x"+strconv.FormatUint(uint64(data[0]), 16)+" after a frame of type "+strconv.Itoa(int(s.typ)), t)
			c.out.Skipped(len(data) - 1)
			return
		}
		data = data[1:]
		s.last = t
		c.frame(i, t)
		s.reset()
	}
}

// startsFrame says whether data, the start of a segment of a side that is
// out of step, starts a method or heartbeat frame.
func startsFrame(data []byte) bool {
	if len(data) < 8 {
		return false
	}
	size := binary.BigEndian.Uint32(data[3:])
	switch data[0] {
	case fHeartbeat:
		return size == 0 && data[7] == frameEnd
	case fMethod:
	default:
		return false
	}
	if size < 4 || size > maxFrame || len(data) < 11 {
		return false
	}
	m := methods[key(binary.BigEndian.Uint16(data[7:]), binary.BigEndian.Uint16(data[9:]))]
	if m == nil {
		return false
	}
	if int64(len(data)) > int64(size)+7 {
		return data[7+size] == frameEnd
	}
	return true
}

// protocolHeader handles a protocol header side i sent; false when it is
// not one (the side is then lost).
func (c *conn) protocolHeader(i int, t time.Time) bool {
	s := &c.sides[i]
	version, ok := headerVersion(s.proto[:])
	if !ok && (i == 0 || string(s.proto[:4]) != "AMQP") {
		c.malformed(i, "protocol header "+strconv.Quote(string(s.proto[:])), t)
		return false
	}
	s.hdrSaw = true
	if i == 0 {
		call := &proto.Call{Proto: "amqp", TS: s.start, Method: "protocol-header", Path: version}
		if isV1(version) {
			if c.v1 == nil {
				call.Extra.Set("note", "AMQP 1.0, not decoded")
				c.v1 = call
			}
			return true
		}
		c.hdrCall = call
		return true
	}
	if c.v1 != nil {
		c.v1.Extra.Set("server_version", version)
		c.v1.LatencyNS = proto.Latency(c.v1.TS, s.start)
		if version == c.v1.Path {
			c.v1.Status = "OK"
		} else {
			c.v1.Status = statusVersionMismatch
		}
		return true
	}
	call := c.hdrCall
	c.hdrCall = nil
	if call == nil {
		call = &proto.Call{Proto: "amqp", TS: s.start, Method: "protocol-header"}
	} else {
		call.LatencyNS = proto.Latency(call.TS, s.start)
	}
	call.Status = statusVersionMismatch
	call.Extra.Set("server_version", version)
	c.out.Emit(call)
	return true
}

// malformed handles bytes of side i that are not AMQP: a call says so,
// and the side waits for a segment that starts a method frame.
func (c *conn) malformed(i int, why string, t time.Time) {
	s := &c.sides[i]
	call := &proto.Call{Proto: "amqp", TS: s.start}
	if s.start.IsZero() {
		call.TS = t
	}
	call.Fail(proto.Malformed, why)
	c.out.Emit(call)
	c.lose(i)
}

// lose puts side i out of step: the contents it was sending are cut, and
// the requests waiting on it may have lost their replies.
func (c *conn) lose(i int) {
	s := &c.sides[i]
	s.lost, s.inHdr = true, false
	s.reset()
	for k, ct := range c.contents {
		if ct.dir == i {
			delete(c.contents, k)
			c.finishContent(ct, "bytes of the content missing from the capture")
		}
	}
	for req := range c.pending[1-i].All() {
		req.gapped = true
	}
}

// frame handles a whole frame of side i.
func (c *conn) frame(i int, t time.Time) {
	s := &c.sides[i]
	if i == 1 && c.hdrCall != nil {
		c.hdrCall = nil // the server took the header
	}
	switch s.typ {
	case fHeartbeat, fHeartbeatOld:
		c.heartbeats++
	case fMethod:
		c.method(i, t)
	case fHeader:
		c.contentHeader(i)
	case fBody:
		if ct := c.contents[ckey(i, s.ch)]; ct != nil && ct.header && ct.got >= ct.size {
			delete(c.contents, ckey(i, s.ch))
			c.finishContent(ct, "")
		}
	}
}

func ckey(dir int, ch uint16) uint32 { return uint32(dir)<<16 | uint32(ch) }

// dir names who sent a method, in extra direction.
const serverToClient = "server→client"

// method handles a method frame of side i.
func (c *conn) method(i int, t time.Time) {
	s := &c.sides[i]
	p := s.buf
	if len(p) < 4 {
		call := &proto.Call{Proto: "amqp", TS: s.start}
		call.Extra.Set("channel", int(s.ch))
		call.Fail(proto.Malformed, "method frame of "+strconv.FormatInt(s.size, 10)+" bytes")
		c.out.Emit(call)
		return
	}
	class, id := binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:])
	m := methods[key(class, id)]
	d := &dec{b: p[4:]}
	if m == nil {
		call := &proto.Call{Proto: "amqp", TS: s.start, Method: methodName(class, id)}
		call.Extra.Set("channel", int(s.ch))
		if i == 1 {
			call.Extra.Set("direction", serverToClient)
		}
		call.Fail(proto.Malformed, "unknown class "+strconv.Itoa(int(class))+" method "+strconv.Itoa(int(id)))
		c.out.Emit(call)
		return
	}
	// A content method before the previous content on the channel ended
	// cuts that one.
	if ct := c.contents[ckey(i, s.ch)]; ct != nil {
		delete(c.contents, ckey(i, s.ch))
		c.finishContent(ct, "content cut by the next method on the channel")
	}
	if i == 1 && c.login != nil && (m.name == "connection.tune" || m.name == "connection.secure") {
		c.out.Emit(c.login)
		c.login = nil
	}
	switch m.kind {
	case kReply:
		c.reply(i, m, class, id, d)
	case kClose:
		c.close(i, m, class, id, d)
	default:
		call := &proto.Call{Proto: "amqp", TS: s.start, Method: m.name}
		call.Extra.Set("channel", int(s.ch))
		if i == 1 {
			call.Extra.Set("direction", serverToClient)
		}
		nowait := c.args(i, m, d, call)
		c.argsEnd(d, call)
		if m.kind == kSync && !nowait {
			c.hold(i, &request{call: call, m: m, class: class, id: id, end: t, size: 512})
			return
		}
		call.OneWay = true
		if m.content {
			c.startContent(i, call, false)
			return
		}
		c.out.Emit(call)
	}
}

// argsEnd notes arguments that were cut or did not parse.
func (c *conn) argsEnd(d *dec, call *proto.Call) {
	if d.bad {
		call.Extra.Set("undecoded", "arguments shorter than the method's")
	}
}

// hold keeps a request side i sent for its reply.
func (c *conn) hold(i int, req *request) {
	ch := uint16(extraInt(req.call.Extra.Get("channel")))
	if old, full := c.pending[i].Add(ch, req.call.TS, req); full {
		c.unanswered(old, "more than "+strconv.Itoa(c.lim.MaxPending)+" requests waiting for replies")
	}
}

func extraInt(v any) int {
	n, _ := v.(int)
	return n
}

// reply handles a reply side i sent: it answers the oldest request of the
// other side on its channel that it can answer.
func (c *conn) reply(i int, m *method, class, id uint16, d *dec) {
	s := &c.sides[i]
	ch := s.ch
	// A queue.declare-ok names its queue: after a gap it tells which
	// declare it answers.
	queue, named := "", class == cQueue && id == 11
	if named {
		queue = (&dec{b: d.b}).shortstr()
	}
	req, ok := c.pending[1-i].Take(ch, func(r *request) bool {
		return r.class == class && containsID(r.m.replies, id) && (!named || r.call.Path == "" || r.call.Path == queue)
	})
	if !ok {
		call := &proto.Call{Proto: "amqp", TS: s.start}
		call.Extra.Set("channel", int(ch))
		call.Extra.Set("reply", m.name)
		c.args(i, m, d, call)
		call.Fail(proto.Orphan, "")
		if m.content {
			c.startContent(i, call, true)
			return
		}
		c.out.Emit(call)
		return
	}
	call := req.call
	call.LatencyNS = proto.Latency(req.end, s.start)
	if call.Status == "" {
		call.Status = "OK"
	}
	if req.m.kind == kClose && call.Method != req.m.name {
		// The close-ok to a close the server answered a request with.
		call.Extra.Set("close_ok", true)
	}
	if req.m.name != m.name[:len(m.name)-3] || id == 72 {
		call.Extra.Set("reply", m.name)
	}
	c.args(i, m, d, call)
	c.argsEnd(d, call)
	switch {
	case req.m.name == "confirm.select":
		if st := c.channel(ch); st != nil {
			st.confirm = true
		}
	case req.m.kind == kClose && class == cChannel:
		delete(c.chans, ch)
	case req.m.kind == kClose && class == cConnection:
		clear(c.chans)
	}
	if m.content {
		c.startContent(i, call, true)
		return
	}
	if m.name == "connection.start-ok" && c.login == nil {
		c.login = call
		return
	}
	c.out.Emit(call)
}

func containsID(ids []uint16, id uint16) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// channel returns the state of channel ch, nil when too many are held.
func (c *conn) channel(ch uint16) *chanState {
	if st := c.chans[ch]; st != nil {
		return st
	}
	if c.chans == nil {
		c.chans = map[uint16]*chanState{}
	}
	if len(c.chans) >= maxChannels {
		return nil
	}
	st := &chanState{}
	c.chans[ch] = st
	return st
}

// close handles a channel.close or connection.close side i sent.
func (c *conn) close(i int, m *method, class, id uint16, d *dec) {
	s := &c.sides[i]
	ch := s.ch
	code := d.short()
	replyText := d.shortstr()
	fClass, fMethod := d.short(), d.short()
	status := replyName(code)
	set := func(call *proto.Call) {
		call.Extra.Set("reply_code", int(code))
		call.Extra.Set("reply_text", replyText)
		if fClass != 0 {
			call.Extra.Set("failing_method", methodName(fClass, fMethod))
		}
		if class == cConnection && c.heartbeats > 0 {
			call.Extra.Set("heartbeats", c.heartbeats)
		}
		if d.bad {
			call.Extra.Set("undecoded", "arguments shorter than the method's")
		}
	}
	var call *proto.Call
	if i == 1 {
		// Does it answer a request of the client's? The failing method
		// it names first, else the oldest on the channel.
		req, ok := c.pending[0].Take(ch, func(r *request) bool { return r.class == fClass && r.id == fMethod })
		if !ok && class == cConnection && fClass != 0 {
			for r := range c.pending[0].All() {
				if r.class == fClass && r.id == fMethod {
					req, ok = c.pending[0].Take(uint16(extraInt(r.call.Extra.Get("channel"))), func(x *request) bool { return x == r })
					break
				}
			}
		}
		if !ok {
			req, ok = c.pending[0].Take(ch, nil)
		}
		if ok {
			call = req.call
			call.LatencyNS = proto.Latency(req.end, s.start)
			call.Extra.Set("reply", m.name)
			if req.m.kind == kClose && code == 200 {
				status = "OK"
			}
		}
	}
	if call == nil && i == 1 && class == cConnection && c.login != nil {
		// The login refused with a reason.
		call, c.login = c.login, nil
		call.Extra.Set("reply", m.name)
	}
	if call == nil {
		call = &proto.Call{Proto: "amqp", TS: s.start, Method: m.name}
		call.Extra.Set("channel", int(ch))
		if i == 1 {
			call.Extra.Set("direction", serverToClient)
		}
	}
	set(call)
	if i == 1 {
		call.Status = status
		// The channel (or connection) is gone: the client's other
		// requests on it will not be answered.
		why := "the server closed the channel"
		if class == cConnection {
			why = "the server closed the connection"
		}
		var gone []*request
		for r := range c.pending[0].All() {
			if class == cConnection || uint16(extraInt(r.call.Extra.Get("channel"))) == ch {
				gone = append(gone, r)
			}
		}
		for _, r := range gone {
			c.pending[0].Take(uint16(extraInt(r.call.Extra.Get("channel"))), func(x *request) bool { return x == r })
			c.unanswered(r, why)
		}
	}
	c.hold(i, &request{call: call, m: m, class: class, id: id, end: s.last, size: 512})
}

// args decodes the arguments of method m, which side i sent, into call
// (the call it starts or answers); nowait reports the no-wait bit.
func (c *conn) args(i int, m *method, d *dec, call *proto.Call) (nowait bool) {
	x := &call.Extra
	flag := func(name string) bool {
		v := d.bit()
		if v {
			x.Set(name, true)
		}
		return v
	}
	switch m.name {
	case "connection.start":
		x.Set("version", strconv.Itoa(int(d.octet()))+"-"+strconv.Itoa(int(d.octet())))
		props := d.table()
		if v, ok := props.Get("product").(string); ok {
			x.Set("server_product", v)
		}
		if v, ok := props.Get("version").(string); ok {
			x.Set("server_version", v)
		}
		x.Set("mechanisms", text(d.longstr(), maxValue))
	case "connection.start-ok":
		props := d.table()
		for _, k := range []string{"product", "version", "platform", "connection_name"} {
			if v, ok := props.Get(k).(string); ok {
				x.Set("client_"+k, v)
			}
		}
		mech := d.shortstr()
		x.Set("mechanism", mech)
		if user := saslUser(mech, d.longstr()); user != "" {
			x.Set("user", user)
		}
	case "connection.secure", "connection.secure-ok":
		d.longstr() // a SASL challenge or response: never kept
	case "connection.tune", "connection.tune-ok":
		x.Set("channel_max", int(d.short()))
		x.Set("frame_max", int64(d.long()))
		x.Set("heartbeat", int(d.short()))
	case "connection.open":
		call.Path = d.shortstr()
	case "connection.blocked":
		x.Set("reason", d.shortstr())
	case "connection.update-secret":
		d.longstr() // the new secret: never kept
		x.Set("reason", d.shortstr())
	case "channel.flow", "channel.flow-ok":
		x.Set("active", d.bit())
	case "exchange.declare":
		d.short()
		call.Path = d.shortstr()
		x.Set("type", d.shortstr())
		flag("passive")
		flag("durable")
		flag("auto_delete")
		flag("internal")
		nowait = d.bit()
		setTable(x, "arguments", d.table())
	case "exchange.delete":
		d.short()
		call.Path = d.shortstr()
		flag("if_unused")
		nowait = d.bit()
	case "exchange.bind", "exchange.unbind":
		d.short()
		x.Set("destination", d.shortstr())
		src := d.shortstr()
		call.Path = src + "/" + d.shortstr()
		nowait = d.bit()
		setTable(x, "arguments", d.table())
	case "queue.declare":
		d.short()
		call.Path = d.shortstr()
		flag("passive")
		flag("durable")
		flag("exclusive")
		flag("auto_delete")
		nowait = d.bit()
		setTable(x, "arguments", d.table())
	case "queue.declare-ok":
		q := d.shortstr()
		if call.Path == "" {
			call.Path = q
		}
		x.Set("message_count", int64(d.long()))
		x.Set("consumer_count", int64(d.long()))
	case "queue.bind", "queue.unbind":
		d.short()
		x.Set("queue", d.shortstr())
		ex := d.shortstr()
		call.Path = ex + "/" + d.shortstr()
		if m.name == "queue.bind" {
			nowait = d.bit()
		}
		setTable(x, "arguments", d.table())
	case "queue.purge":
		d.short()
		call.Path = d.shortstr()
		nowait = d.bit()
	case "queue.delete":
		d.short()
		call.Path = d.shortstr()
		flag("if_unused")
		flag("if_empty")
		nowait = d.bit()
	case "queue.purge-ok", "queue.delete-ok":
		x.Set("message_count", int64(d.long()))
	case "basic.qos":
		x.Set("prefetch_size", int64(d.long()))
		x.Set("prefetch_count", int(d.short()))
		flag("global")
	case "basic.consume":
		d.short()
		call.Path = d.shortstr()
		if tag := d.shortstr(); tag != "" {
			x.Set("consumer_tag", tag)
		}
		flag("no_local")
		flag("no_ack")
		flag("exclusive")
		nowait = d.bit()
		setTable(x, "arguments", d.table())
	case "basic.consume-ok", "basic.cancel-ok":
		x.Set("consumer_tag", d.shortstr())
	case "basic.cancel":
		call.Path = d.shortstr()
		nowait = d.bit()
	case "basic.publish":
		d.short()
		ex := d.shortstr()
		call.Path = ex + "/" + d.shortstr()
		flag("mandatory")
		flag("immediate")
		if st := c.chans[s16(call)]; st != nil && st.confirm {
			st.published++
			x.Set("publish_seq", int64(st.published))
		}
	case "basic.return":
		code := d.short()
		call.Status = replyName(code)
		x.Set("reply_code", int(code))
		x.Set("reply_text", d.shortstr())
		ex := d.shortstr()
		call.Path = ex + "/" + d.shortstr()
	case "basic.deliver":
		x.Set("consumer_tag", d.shortstr())
		x.Set("delivery_tag", int64(d.longlong()))
		flag("redelivered")
		ex := d.shortstr()
		call.Path = ex + "/" + d.shortstr()
	case "basic.get":
		d.short()
		call.Path = d.shortstr()
		flag("no_ack")
	case "basic.get-ok":
		x.Set("delivery_tag", int64(d.longlong()))
		flag("redelivered")
		x.Set("exchange", d.shortstr())
		x.Set("routing_key", d.shortstr())
		x.Set("message_count", int64(d.long()))
	case "basic.get-empty":
		x.Set("empty", true)
	case "basic.ack", "basic.nack", "basic.reject":
		tag := d.longlong()
		x.Set("delivery_tag", int64(tag))
		multiple := false
		if m.name != "basic.reject" {
			multiple = flag("multiple")
		}
		if m.name != "basic.ack" {
			flag("requeue")
		}
		if i == 1 && m.name != "basic.reject" {
			if st := c.chans[s16(call)]; st != nil && st.confirm {
				n := uint64(1)
				if multiple {
					n = 0
					if tag > st.confirmed {
						n = tag - st.confirmed
					}
				}
				st.confirmed = max(st.confirmed, tag)
				x.Set("confirms", int64(n))
			}
		}
	case "basic.recover-async", "basic.recover":
		flag("requeue")
	case "confirm.select":
		nowait = d.bit()
		if nowait {
			if st := c.channel(s16(call)); st != nil {
				st.confirm = true
			}
		}
	}
	return nowait
}

// s16 is a call's channel.
func s16(call *proto.Call) uint16 { return uint16(extraInt(call.Extra.Get("channel"))) }

func setTable(x *proto.Extra, name string, t proto.Extra) {
	if len(t) > 0 {
		x.Set(name, t)
	}
}

// saslUser returns the user of a SASL response (PLAIN: authzid NUL
// authcid NUL password; AMQPLAIN: a table's LOGIN), never its password.
func saslUser(mech string, resp []byte) string {
	switch mech {
	case "PLAIN":
		parts := bytes.SplitN(resp, []byte{0}, 3)
		if len(parts) == 3 {
			return text(parts[1], maxValue)
		}
	case "AMQPLAIN":
		budget := maxEntries
		t, _ := renderTable(resp, maxDepth, &budget)
		if v, ok := t.Get("LOGIN").(string); ok {
			return v
		}
	}
	return ""
}

// startContent waits for the content header and body of call's message,
// which side i sends; answered: the call is a reply's.
func (c *conn) startContent(i int, call *proto.Call, answered bool) {
	ch := s16(call)
	ct := &content{call: call, msg: &call.Request, dir: i, ch: ch, answered: answered}
	if i == 1 {
		ct.msg = &call.Response
	}
	if c.contents == nil {
		c.contents = map[uint32]*content{}
	}
	if len(c.contents) >= maxContents {
		call.Extra.Set("content", "not read: too many contents in progress")
		c.out.Emit(call)
		return
	}
	c.contents[ckey(i, ch)] = ct
}

// contentHeader handles a content header frame of side i.
func (c *conn) contentHeader(i int) {
	s := &c.sides[i]
	ct := c.contents[ckey(i, s.ch)]
	if ct == nil || ct.header {
		return // its method was not captured
	}
	ct.header = true
	d := &dec{b: s.buf}
	d.short() // class
	d.short() // weight
	ct.size = d.longlong()
	ct.msg.BodySize = int64(min(ct.size, 1<<62))
	var flags []uint16
	for len(flags) < 4 {
		f := d.short()
		flags = append(flags, f)
		if f&1 == 0 {
			break
		}
	}
	x := &ct.call.Extra
	str := func(name string) {
		if v := d.shortstr(); v != "" {
			x.Set(name, v)
		}
	}
	names := [...]string{"content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
		"reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id", "cluster_id"}
	for bit, name := range names {
		if flags[0]&(1<<(15-bit)) == 0 {
			continue
		}
		switch name {
		case "headers":
			setTable(x, name, d.table())
		case "delivery_mode", "priority":
			x.Set(name, int(d.octet()))
		case "timestamp":
			x.Set(name, int64(d.longlong()))
		default:
			str(name)
		}
	}
	if d.bad {
		x.Set("undecoded", "content header shorter than its properties")
	}
	if ct.size == 0 {
		delete(c.contents, ckey(i, s.ch))
		c.finishContent(ct, "")
	}
}

// bodyBytes takes body bytes side i sent on channel ch (or missing ones,
// missing > 0 and b nil).
func (c *conn) bodyBytes(i int, ch uint16, b []byte, missing int) {
	ct := c.contents[ckey(i, ch)]
	if ct == nil || !ct.header {
		return
	}
	n := len(b) + missing
	ct.got += uint64(n)
	ct.missing += uint64(missing)
	if c.lim.Summary || ct.missing > 0 || len(b) == 0 {
		return
	}
	room := min(c.lim.MaxBodyCapture-len(ct.body), 4*c.lim.MaxBodyCapture-c.kept)
	if room <= 0 {
		return
	}
	before := cap(ct.body)
	if ct.body == nil {
		ct.body = make([]byte, 0, min(uint64(c.lim.MaxBodyCapture), ct.size, 64<<10))
	}
	ct.body = append(ct.body, b[:min(room, len(b))]...)
	c.kept += cap(ct.body) - before
}

// finishContent emits a content's call; why says what cut it ("": it is
// whole).
func (c *conn) finishContent(ct *content, why string) {
	c.kept -= cap(ct.body)
	call := ct.call
	if ct.body != nil {
		ct.msg.SetBody(ct.body, c.lim.MaxBodyDisplay)
		if uint64(len(ct.body)) < ct.size {
			ct.msg.BodyTruncated = true
		}
	}
	switch {
	case why != "" && call.Error == "":
		call.Fail(proto.Truncated, why)
	case ct.missing > 0 && call.Error == "":
		call.Fail(proto.Truncated, strconv.FormatUint(ct.missing, 10)+" bytes of the body missing from the capture")
	}
	c.out.Emit(call)
}

// Gap implements proto.StreamParser. Bytes missing inside a body frame
// are counted on its content; otherwise the side waits for a segment
// that starts a method frame.
func (c *conn) Gap(r proto.Role, n int) {
	i := idx(r)
	s := &c.sides[i]
	if c.v1 != nil {
		c.v1.Extra.Set("gaps", true)
		return
	}
	if s.lost {
		return
	}
	if n >= 0 && s.nh == 7 && s.typ == fBody && s.got+int64(n) <= s.size {
		c.bodyBytes(i, s.ch, nil, n)
		s.got += int64(n)
		return
	}
	c.lose(i)
}

// Expire implements proto.Expiring: a request unanswered for long is
// given up (a reply after it shows as one without its request).
func (c *conn) Expire(deadline time.Time) {
	for i := range c.pending {
		c.pending[i].Expire(deadline, func(req *request) {
			c.unanswered(req, "no reply within the request timeout")
		})
	}
}

// unanswered emits a request no reply answered: a close whose status is
// set (it answered a request, or came from the server) is emitted as it
// is.
func (c *conn) unanswered(req *request, why string) {
	if req.call.Status == "" && req.call.Error == "" {
		if req.gapped {
			req.call.Fail(proto.Truncated, "the reply may be among bytes missing from the capture")
		} else {
			req.call.Fail(proto.Unanswered, why)
		}
	}
	c.out.Emit(req.call)
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	why := reason.Why()
	if why == "" {
		why = "connection closed"
	}
	if c.v1 != nil {
		call := c.v1
		c.v1 = nil
		call.Extra.Set("client_bytes", c.v1Bytes[0])
		call.Extra.Set("server_bytes", c.v1Bytes[1])
		if call.Status == "" {
			call.Fail(proto.Unanswered, why)
		}
		c.out.Emit(call)
		return
	}
	if c.hdrCall != nil {
		call := c.hdrCall
		c.hdrCall = nil
		call.Fail(proto.Unanswered, why)
		c.out.Emit(call)
	}
	if c.login != nil {
		call := c.login
		c.login = nil
		call.Status = ""
		switch reason {
		case proto.EndFIN:
			call.Fail(proto.Unanswered, "the server closed the connection after connection.start-ok instead of tuning it: RabbitMQ does so when it refuses the login")
		case proto.EndRST:
			call.Fail(proto.Unanswered, "the connection was reset after connection.start-ok instead of tuned: RabbitMQ does so when it refuses the login")
		default:
			call.Fail(proto.Unanswered, why+" after connection.start-ok")
		}
		c.out.Emit(call)
	}
	for i := range c.sides {
		if reason == proto.EndMemory {
			c.out.Skipped(len(c.sides[i].buf))
		}
		c.sides[i].reset()
	}
	for len(c.contents) > 0 {
		// Oldest first, for deterministic output.
		var first *content
		for _, ct := range c.contents {
			if first == nil || ct.call.TS.Before(first.call.TS) || ct.call.TS.Equal(first.call.TS) && ckey(ct.dir, ct.ch) < ckey(first.dir, first.ch) {
				first = ct
			}
		}
		delete(c.contents, ckey(first.dir, first.ch))
		c.finishContent(first, why+" during the content")
	}
	for i := range c.pending {
		c.pending[i].Expire(time.Time{}, func(req *request) { c.unanswered(req, why) })
	}
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	return c.pending[0].Kept() + c.pending[1].Kept() + cap(c.sides[0].buf) + cap(c.sides[1].buf) +
		c.kept + 160*len(c.contents) + 48*len(c.chans)
}
