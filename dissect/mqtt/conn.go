package mqtt

import (
	"bytes"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wirescope/wirescope/dissect/proto"
)

// maxAliasBytes bounds the topic names kept for topic aliases, per
// direction.
const maxAliasBytes = 64 << 10

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, keep: l.MaxHeaderBytes + l.MaxBodyCapture}
	size := func(e *exch) int {
		return 256 + len(e.call.Path) + len(e.call.Request.Body) + len(e.call.Response.Body)
	}
	c.byID = proto.Pending[key, *exch]{Max: l.MaxPending, Size: size}
	c.inOrder = proto.Pending[key, *exch]{Max: l.MaxPending, Size: size}
	c.side[0].client = true
	return c
}

// What an exchange waits on, with the packet identifier (0 for the
// in-order ones) its key.
const (
	kPubClient = iota // a QoS 1 or 2 PUBLISH the client sent
	kPubServer        // one the server sent
	kSubscribe
	kUnsubscribe
	kConnect
	kPing
	kAuth
)

type key struct {
	kind uint8
	id   uint16
}

// exch is an exchange waiting for its answer.
type exch struct {
	call  *proto.Call
	key   key
	end   time.Time // the last byte of the packet that started it
	stage uint8     // QoS 2: 0 until PUBREC, 1 until PUBREL, 2 until PUBCOMP
}

// waitsOn says which side (0 client, 1 server) sends what e waits for.
func (e *exch) waitsOn() int {
	peer := 1
	if e.key.kind == kPubServer {
		peer = 0
	}
	if e.stage == 1 {
		return 1 - peer
	}
	return peer
}

// side is one direction's packet framing.
type side struct {
	client  bool
	hdr     [5]byte
	hn      int // fixed-header bytes read
	hdrLen  int // the fixed header's length, once read (0 before)
	total   int // the remaining length
	left    int // bytes of it still to come
	body    []byte
	start   time.Time
	last    time.Time
	lost    bool
	gapped  bool // bytes of the packet were not captured: what is kept ends there
	missing int
	aliases map[uint16]string
	aliasN  int // bytes of topic names in aliases
}

func (s *side) reset() { s.hn, s.hdrLen, s.left, s.total = 0, 0, 0, 0 }

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	keep    int
	side    [2]side
	byID    proto.Pending[key, *exch]
	inOrder proto.Pending[key, *exch]
	version byte // CONNECT's protocol level; 0 before one is seen
	// ids counts the exchanges held in byID by key, so that a PUBLISH
	// looks for one it would reuse the identifier of only when there is
	// one (a flood holds MaxPending of them).
	ids map[key]int
}

// held counts an exchange into byID; took counts one out of it (of
// either Pending: in-order kinds are not counted).
func (c *conn) held(e *exch) {
	if c.ids == nil {
		c.ids = map[key]int{}
	}
	c.ids[e.key]++
}

func (c *conn) took(e *exch) {
	if e.key.kind > kUnsubscribe {
		return
	}
	if c.ids[e.key] <= 1 {
		delete(c.ids, e.key)
	} else {
		c.ids[e.key]--
	}
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	s := &c.side[idx(r)]
	s.last = t
	if s.lost {
		if !plausible(s.client, data) {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
		s.reset()
	}
	for len(data) > 0 {
		if s.hdrLen == 0 {
			if s.hn == 0 {
				s.start = t
			}
			b := data[0]
			data = data[1:]
			s.hdr[s.hn] = b
			s.hn++
			if s.hn == 1 {
				typ := b >> 4
				switch {
				case !validFlags(b):
					c.malformed(s, "a fixed header of 0x"+strconv.FormatUint(uint64(b)|0x100, 16)[1:])
				case s.client && !fromClient(typ):
					c.malformed(s, "a "+typeNames[typ]+" from the client")
				case !s.client && !fromServer(typ):
					c.malformed(s, "a "+typeNames[typ]+" from the server")
				default:
					continue
				}
				c.out.Skipped(len(data))
				return
			}
			v, n := uvarint(s.hdr[1:s.hn])
			if n < 0 {
				c.malformed(s, "a remaining length of 5 or more bytes")
				c.out.Skipped(len(data))
				return
			}
			if n == 0 {
				continue
			}
			s.hdrLen, s.total, s.left = s.hn, v, v
			s.body, s.gapped, s.missing = s.body[:0], false, 0
			if s.left == 0 {
				c.done(s, t)
			}
			continue
		}
		n := min(len(data), s.left)
		if room := c.keep - len(s.body); room > 0 && !s.gapped {
			s.body = append(s.body, data[:min(room, n)]...)
		}
		s.left -= n
		data = data[n:]
		if s.left == 0 {
			c.done(s, t)
		}
	}
}

// done handles a packet whose bytes have all come (or were counted
// missing); t is when its last byte came.
func (c *conn) done(s *side, t time.Time) {
	c.packet(s, t)
	s.reset()
	if cap(s.body) > 64<<10 {
		s.body = nil
	}
}

// plausible reports whether a segment that follows lost bytes starts a
// packet its side may send: a valid fixed header, a remaining length its
// type allows, and, when the segment holds more, a valid fixed header
// after it.
func plausible(client bool, data []byte) bool {
	if len(data) < 2 {
		return false
	}
	typ := data[0] >> 4
	if !validFlags(data[0]) || (client && !fromClient(typ)) || (!client && !fromServer(typ)) {
		return false
	}
	rem, n := uvarint(data[1:])
	if n <= 0 {
		return false
	}
	body := data[1+n:]
	switch typ {
	case tConnect:
		v, _ := detectConnect(data)
		return v == proto.Yes
	case tConnack:
		v, _ := detectConnack(data)
		return v == proto.Yes
	case tPingreq, tPingresp:
		if rem != 0 {
			return false
		}
	case tPuback, tPubrec, tPubrel, tPubcomp, tDisconnect, tAuth:
		if rem > 1<<16 || (typ < tDisconnect && rem < 2) {
			return false
		}
	case tSubscribe, tUnsubscribe, tSuback, tUnsuback:
		if rem < 3 {
			return false
		}
	case tPublish:
		if rem < 3 {
			return false
		}
		if len(body) >= 2 {
			tl := int(be16(body))
			if tl+2 > rem || (len(body) >= 2+tl && !utf8.Valid(body[2:2+tl])) {
				return false
			}
		}
	}
	if end := 1 + n + rem; end < len(data) && !validFlags(data[end]) {
		return false
	}
	return true
}

// ver is the protocol level packets are read by: CONNECT's, else 3.1.1.
func (c *conn) ver() byte {
	if c.version == 0 {
		return 4
	}
	return c.version
}

var versionNames = map[byte]string{3: "3.1", 4: "3.1.1", 5: "5.0"}

// newCall starts a call for a packet side s sent.
func (c *conn) newCall(s *side, method string) *proto.Call {
	call := &proto.Call{Proto: "mqtt", TS: s.start, Method: method, Extra: make(proto.Extra, 0, 10)}
	if v, ok := versionNames[c.version]; ok {
		call.Extra.Set("version", v)
	}
	return call
}

// msg is the message of call that side s sent.
func msg(call *proto.Call, s *side) *proto.Message {
	if s.client {
		return &call.Request
	}
	return &call.Response
}

// fail marks a call whose packet did not read: cut by a gap or by the
// bytes kept, or malformed.
func (c *conn) fail(call *proto.Call, s *side, r *reader, typ byte) {
	switch {
	case s.missing > 0:
		call.Fail(proto.Truncated, strconv.Itoa(s.missing)+" bytes of the packet missing from the capture")
	case r.short && len(s.body) < s.total:
		call.Fail(proto.Truncated, "a "+typeNames[typ]+" whose fields run past the "+strconv.Itoa(c.keep)+" bytes kept")
	case r.short:
		call.Fail(proto.Malformed, "a "+typeNames[typ]+" whose fields overrun its "+strconv.Itoa(s.total)+" bytes")
	}
}

// packet handles a whole packet side s sent; t is when its last byte came.
func (c *conn) packet(s *side, t time.Time) {
	typ, flags := s.hdr[0]>>4, s.hdr[0]&0x0f
	r := &reader{b: s.body}
	size := int64(s.hdrLen + s.total)
	switch typ {
	case tConnect:
		c.connect(s, r, size, t)
	case tConnack:
		c.connack(s, r, size)
	case tPublish:
		c.publish(s, r, flags, t)
	case tPuback, tPubrec, tPubrel, tPubcomp:
		c.pubAck(s, r, typ, size)
	case tSubscribe, tUnsubscribe:
		c.subscribe(s, r, typ, size, t)
	case tSuback, tUnsuback:
		c.subAck(s, r, typ, size)
	case tPingreq:
		call := c.newCall(s, "PINGREQ")
		call.Request.BodySize = size
		c.hold(&c.inOrder, &exch{call: call, key: key{kind: kPing}, end: t})
	case tPingresp:
		e, ok := c.inOrder.Take(key{kind: kPing}, nil)
		c.answer(e, ok, s, "PINGRESP", "Success", size, nil)
	case tDisconnect:
		c.disconnect(s, r, size)
	case tAuth:
		c.auth(s, r, size, t)
	}
}

// hold queues an exchange for its answer.
func (c *conn) hold(p *proto.Pending[key, *exch], e *exch) {
	if p == &c.byID {
		c.held(e)
	}
	if old, full := p.Add(e.key, e.call.TS, e); full {
		c.took(old)
		if old.call.Error == "" {
			old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" exchanges waiting for answers")
		}
		c.out.Emit(old.call)
	}
}

// answer completes exchange e (ok: found) with a packet side s sent,
// of status status; without e the answer is an orphan.
func (c *conn) answer(e *exch, ok bool, s *side, packet, status string, size int64, props proto.Extra) {
	if !ok {
		call := c.newCall(s, "")
		call.Status = status
		call.Extra.Set("packet", packet)
		msg(call, s).BodySize = size
		c.addProps(call, props)
		if call.Error == "" {
			call.Fail(proto.Orphan, "")
		}
		c.out.Emit(call)
		return
	}
	c.took(e)
	call := e.call
	if call.LatencyNS == 0 {
		call.LatencyNS = proto.Latency(e.end, s.start)
	}
	call.Status = status
	c.addProps(call, props)
	if s.missing > 0 && call.Error == "" {
		call.Fail(proto.Truncated, strconv.Itoa(s.missing)+" bytes of the "+packet+" missing from the capture")
	}
	c.out.Emit(call)
}

// addProps adds an answer's properties: its reason string as it is, the
// rest prefixed "response_".
func (c *conn) addProps(call *proto.Call, props proto.Extra) {
	for _, f := range props {
		if f.Key == "reason_string" || call.Extra.Get(f.Key) == nil {
			call.Extra.Set(f.Key, f.Value)
		} else {
			call.Extra.Set("response_"+f.Key, f.Value)
		}
	}
}

// connect handles a CONNECT: the protocol level applies to the
// connection from here.
func (c *conn) connect(s *side, r *reader, size int64, t time.Time) {
	name := r.str()
	level := r.u8()
	flags := r.u8()
	keepAlive := r.u16()
	if !r.short && (level == 3 || level == 4 || level == 5) {
		c.version = level
		c.side[0].aliases, c.side[1].aliases = nil, nil
		c.side[0].aliasN, c.side[1].aliasN = 0, 0
	}
	call := c.newCall(s, "CONNECT")
	call.Request.BodySize = size
	x := &call.Extra
	var props proto.Extra
	if level == 5 {
		r.props(&props)
	}
	clientID := r.str()
	var willTopic string
	willSize := -1
	if flags&0x04 != 0 {
		if level == 5 {
			r.props(nil)
		}
		willTopic = r.str()
		willSize = len(r.bin())
	}
	var user string
	hasUser := flags&0x80 != 0
	if hasUser {
		user = r.str()
	}
	hasPass := flags&0x40 != 0
	if hasPass {
		r.bin() // never kept
	}
	call.Path = clientID
	if !r.short {
		x.Set("protocol_name", name)
		x.Set("protocol_level", int(level))
	}
	x.Set("client_id", clientID)
	x.Set("keep_alive", int(keepAlive))
	x.Set("clean_start", flags&0x02 != 0)
	if flags&0x04 != 0 {
		x.Set("will_topic", willTopic)
		x.Set("will_qos", int(flags>>3&3))
		x.Set("will_retain", flags&0x20 != 0)
		x.Set("will_payload_size", willSize)
	}
	if hasUser {
		x.Set("username", user)
	}
	if hasPass {
		x.Set("password", "[redacted]")
	}
	for _, f := range props {
		x.Set(f.Key, f.Value)
	}
	if !c.lim.Summary {
		// The body shows the fields, the password masked: a CONNECT's
		// password is never kept.
		var show proto.Extra
		show.Set("protocol", name)
		show.Set("level", int(level))
		show.Set("client_id", clientID)
		show.Set("clean_start", flags&0x02 != 0)
		show.Set("keep_alive", int(keepAlive))
		if flags&0x04 != 0 {
			show.Set("will_topic", willTopic)
			show.Set("will_qos", int(flags>>3&3))
			show.Set("will_retain", flags&0x20 != 0)
		}
		if hasUser {
			show.Set("username", user)
		}
		if hasPass {
			show.Set("password", "[redacted]")
		}
		if len(props) > 0 {
			show.Set("properties", props)
		}
		call.Request.SetBody(show.AppendJSON(nil), c.lim.MaxBodyDisplay)
	}
	c.fail(call, s, r, tConnect)
	c.hold(&c.inOrder, &exch{call: call, key: key{kind: kConnect}, end: t})
}

// connack answers the CONNECT.
func (c *conn) connack(s *side, r *reader, size int64) {
	flags := r.u8()
	rc := r.u8()
	var props proto.Extra
	if len(r.b) > 0 {
		r.props(&props)
	}
	e, ok := c.inOrder.Take(key{kind: kConnect}, nil)
	status := reasonName(tConnack, rc, c.ver())
	if r.short {
		status = ""
	}
	if ok {
		e.call.Extra.Set("session_present", flags&1 != 0)
		if c.ver() < 5 && rc <= 5 {
			e.call.Extra.Set("return_code", int(rc))
		}
		c.fail(e.call, s, r, tConnack)
	} else if r.short {
		call := c.newCall(s, "")
		c.fail(call, s, r, tConnack)
		call.Extra.Set("packet", "CONNACK")
		c.out.Emit(call)
		return
	}
	c.answer(e, ok, s, "CONNACK", status, size, props)
}

// publish handles a PUBLISH from either side.
func (c *conn) publish(s *side, r *reader, flags byte, t time.Time) {
	qos := flags >> 1 & 3
	topic := r.bin()
	var id uint16
	if qos > 0 {
		id = r.u16()
	}
	var props proto.Extra
	alias := -1
	if c.ver() == 5 {
		alias = r.props(&props)
	}
	call := c.newCall(s, "PUBLISH")
	x := &call.Extra
	if s.client {
		x.Set("direction", "client→server")
	} else {
		x.Set("direction", "server→client")
	}
	call.Path = string(topic)
	if alias >= 0 && !r.short {
		x.Set("topic_alias", alias)
		if len(topic) > 0 {
			c.setAlias(s, uint16(alias), call.Path)
		} else if name, ok := s.aliases[uint16(alias)]; ok {
			call.Path = name
		} else {
			x.Set("topic_alias_unresolved", true)
		}
	}
	x.Set("qos", int(qos))
	x.Set("retain", flags&1 != 0)
	x.Set("dup", flags&8 != 0)
	if qos > 0 {
		x.Set("packet_id", int(id))
	}
	for _, f := range props {
		x.Set(f.Key, f.Value)
	}
	m := msg(call, s)
	if !r.short {
		// The payload: what is left of the packet.
		header := len(s.body) - len(r.b)
		payloadSize := s.total - header
		m.BodySize = int64(payloadSize)
		x.Set("payload_size", payloadSize)
		if !c.lim.Summary {
			p := r.b[:min(len(r.b), c.lim.MaxBodyDisplay+1)]
			m.SetBody(bytes.Clone(p), c.lim.MaxBodyDisplay)
			m.BodyTruncated = m.BodyTruncated || len(r.b) < payloadSize
		}
	} else {
		m.BodySize = int64(s.total)
	}
	c.fail(call, s, r, tPublish)
	if qos == 0 || r.short && call.Problem == proto.Malformed {
		call.OneWay = call.Error == ""
		c.out.Emit(call)
		return
	}
	k := key{kind: kPubServer, id: id}
	if s.client {
		k.kind = kPubClient
	}
	if c.ids[k] == 0 {
		// No exchange holds the identifier.
	} else if old, ok := c.byID.Find(k, nil); ok && old.stage == 0 {
		if flags&8 != 0 {
			// A retransmission of the PUBLISH still waiting.
			n, _ := old.call.Extra.Get("retransmissions").(int)
			old.call.Extra.Set("retransmissions", n+1)
			return
		}
		c.byID.Take(k, nil)
		c.took(old)
		old.call.Fail(proto.Unanswered, "its packet identifier was used again before an acknowledgement")
		c.out.Emit(old.call)
	}
	c.hold(&c.byID, &exch{call: call, key: k, end: t})
}

// setAlias remembers topic alias a of side s, within maxAliasBytes.
func (c *conn) setAlias(s *side, a uint16, topic string) {
	if old, ok := s.aliases[a]; ok {
		s.aliasN -= len(old) + 16
	}
	if s.aliasN+len(topic)+16 > maxAliasBytes {
		delete(s.aliases, a)
		return
	}
	if s.aliases == nil {
		s.aliases = map[uint16]string{}
	}
	s.aliases[a] = topic
	s.aliasN += len(topic) + 16
}

// pubAck handles PUBACK, PUBREC, PUBREL and PUBCOMP.
func (c *conn) pubAck(s *side, r *reader, typ byte, size int64) {
	id := r.u16()
	var rc byte
	var props proto.Extra
	if len(r.b) > 0 {
		rc = r.u8()
		if len(r.b) > 0 {
			r.props(&props)
		}
	}
	name := typeNames[typ]
	if r.short {
		call := c.newCall(s, "")
		call.Extra.Set("packet", name)
		msg(call, s).BodySize = size
		c.fail(call, s, r, typ)
		c.out.Emit(call)
		return
	}
	// PUBREL continues a publish of its sender's; the others answer the
	// peer's.
	k := key{kind: kPubClient, id: id}
	if s.client == (typ != tPubrel) {
		k.kind = kPubServer
	}
	status := reasonName(typ, rc, c.ver())
	switch typ {
	case tPuback, tPubcomp:
		e, ok := c.byID.Take(k, nil)
		if ok && typ == tPubcomp {
			e.call.Extra.Set("pubcomp", status)
		}
		c.answer(e, ok, s, name, status, size, props)
	case tPubrec:
		e, ok := c.byID.Find(k, func(e *exch) bool { return e.stage == 0 })
		if !ok || rc >= 0x80 {
			if ok {
				c.byID.Take(k, func(v *exch) bool { return v == e })
			}
			c.answer(e, ok, s, name, status, size, props)
			return
		}
		e.stage = 1
		e.call.LatencyNS = proto.Latency(e.end, s.start)
		e.call.Status = status
		e.call.Extra.Set("pubrec", status)
		c.addProps(e.call, props)
	case tPubrel:
		if e, ok := c.byID.Find(k, func(e *exch) bool { return e.stage <= 1 }); ok {
			e.stage = 2
			if rc != 0 {
				e.call.Extra.Set("pubrel", status)
			}
		}
		// A PUBREL whose PUBLISH was not captured: its PUBCOMP is the
		// orphan.
	}
}

// subscribe handles SUBSCRIBE and UNSUBSCRIBE.
func (c *conn) subscribe(s *side, r *reader, typ byte, size int64, t time.Time) {
	id := r.u16()
	var props proto.Extra
	if c.ver() == 5 {
		r.props(&props)
	}
	var filters []string
	var qos []int
	for len(r.b) > 0 && !r.short {
		f := r.str()
		if typ == tSubscribe {
			qos = append(qos, int(r.u8()&3))
		}
		if !r.short {
			filters = append(filters, f)
		}
	}
	if len(filters) == 0 && !r.short {
		r.short = true // a SUBSCRIBE must name a filter
	}
	call := c.newCall(s, typeNames[typ])
	call.Path = strings.Join(filters, ",")
	call.Request.BodySize = size
	call.Extra.Set("packet_id", int(id))
	if typ == tSubscribe {
		call.Extra.Set("requested_qos", qos)
	}
	for _, f := range props {
		call.Extra.Set(f.Key, f.Value)
	}
	c.fail(call, s, r, typ)
	if call.Problem == proto.Malformed && len(filters) == 0 && len(s.body) >= 2 && s.missing == 0 {
		c.out.Emit(call)
		return
	}
	kind := uint8(kSubscribe)
	if typ == tUnsubscribe {
		kind = kUnsubscribe
	}
	c.hold(&c.byID, &exch{call: call, key: key{kind: kind, id: id}, end: t})
}

// subAck handles SUBACK and UNSUBACK.
func (c *conn) subAck(s *side, r *reader, typ byte, size int64) {
	id := r.u16()
	var props proto.Extra
	if c.ver() == 5 {
		r.props(&props)
	}
	codes := r.b
	kind := uint8(kSubscribe)
	if typ == tUnsuback {
		kind = kUnsubscribe
	}
	name := typeNames[typ]
	if r.short {
		call := c.newCall(s, "")
		call.Extra.Set("packet", name)
		c.fail(call, s, r, typ)
		c.out.Emit(call)
		return
	}
	var names []string
	status, worst := "Success", -1
	for _, rc := range codes {
		n := reasonName(typ, rc, c.ver())
		names = append(names, n)
		switch {
		case rc >= 0x80:
			if worst < 0x80 {
				status, worst = n, int(rc)
			}
		case typ == tSuback && (worst < 0 || int(rc) < worst):
			status, worst = n, int(rc)
		case typ == tUnsuback && int(rc) > worst:
			status, worst = n, int(rc)
		}
	}
	e, ok := c.byID.Take(key{kind: kind, id: id}, nil)
	if ok && len(names) > 0 {
		e.call.Extra.Set("reason_codes", names)
	}
	c.answer(e, ok, s, name, status, size, props)
}

// disconnect handles a DISCONNECT: one-way, from either side.
func (c *conn) disconnect(s *side, r *reader, size int64) {
	call := c.newCall(s, "DISCONNECT")
	call.OneWay = true
	msg(call, s).BodySize = size
	if len(r.b) > 0 {
		rc := r.u8()
		var props proto.Extra
		if len(r.b) > 0 {
			r.props(&props)
		}
		if !r.short {
			call.Status = reasonName(tDisconnect, rc, 5)
			call.Extra.Set("reason_code", int(rc))
		}
		for _, f := range props {
			call.Extra.Set(f.Key, f.Value)
		}
	} else if c.version == 5 {
		call.Status = "Normal disconnection"
	}
	if s.client {
		call.Extra.Set("direction", "client→server")
	} else {
		call.Extra.Set("direction", "server→client")
	}
	c.fail(call, s, r, tDisconnect)
	if call.Error != "" {
		call.OneWay = false
	}
	c.out.Emit(call)
}

// auth handles an AUTH: during a CONNECT's enhanced authentication it is
// counted on the CONNECT; after it, a client's AUTH (re-authentication) is
// answered by the server's.
func (c *conn) auth(s *side, r *reader, size int64, t time.Time) {
	var rc byte
	var props proto.Extra
	if len(r.b) > 0 {
		rc = r.u8()
		if len(r.b) > 0 {
			r.props(&props)
		}
	}
	status := reasonName(tAuth, rc, 5)
	if connect, ok := c.inOrder.Find(key{kind: kConnect}, nil); ok {
		n, _ := connect.call.Extra.Get("auth_packets").(int)
		connect.call.Extra.Set("auth_packets", n+1)
		return
	}
	if s.client {
		call := c.newCall(s, "AUTH")
		call.Request.BodySize = size
		call.Extra.Set("reason", status)
		for _, f := range props {
			call.Extra.Set(f.Key, f.Value)
		}
		c.fail(call, s, r, tAuth)
		c.hold(&c.inOrder, &exch{call: call, key: key{kind: kAuth}, end: t})
		return
	}
	if r.short {
		status = ""
	}
	e, ok := c.inOrder.Take(key{kind: kAuth}, nil)
	c.answer(e, ok, s, "AUTH", status, size, props)
}

// malformed reports bytes that are not MQTT's: the side is lost until a
// segment starts a plausible packet, and what waited on it is reported.
func (c *conn) malformed(s *side, why string) {
	call := c.newCall(s, "")
	if t := s.hdr[0] >> 4; s.hn > 0 && validFlags(s.hdr[0]) {
		call.Method = typeNames[t]
	}
	call.Fail(proto.Malformed, why)
	c.out.Emit(call)
	c.lose(s, "the answer may be among the bytes skipped after a malformed packet")
}

// lose marks side s lost and reports the exchanges waiting on it.
func (c *conn) lose(s *side, why string) {
	s.lost = true
	s.reset()
	i := 0
	if !s.client {
		i = 1
	}
	for _, p := range []*proto.Pending[key, *exch]{&c.byID, &c.inOrder} {
		var gone []*exch
		for e := range p.All() {
			if e.waitsOn() == i {
				gone = append(gone, e)
			}
		}
		for _, e := range gone {
			p.Take(e.key, func(v *exch) bool { return v == e })
			c.took(e)
			if e.call.Error == "" {
				e.call.Fail(proto.Truncated, why)
			}
			c.out.Emit(e.call)
		}
	}
}

// Gap implements proto.StreamParser. Bytes missing inside a packet whose
// length is known are counted and the packet read on (its fields up to
// the gap); otherwise the packet cut is reported and the side lost.
func (c *conn) Gap(r proto.Role, n int) {
	s := &c.side[idx(r)]
	if s.lost {
		return
	}
	if n >= 0 && s.hdrLen > 0 && n <= s.left {
		s.left -= n
		s.missing += n
		s.gapped = true
		if s.left == 0 {
			c.done(s, s.last)
		}
		return
	}
	what := "bytes"
	if n >= 0 {
		what = strconv.Itoa(n) + " bytes"
	}
	c.cut(s, s.last)
	c.lose(s, "the answer may be among "+what+" missing from the capture")
}

// cut ends a packet whose rest will not come, as read so far.
func (c *conn) cut(s *side, t time.Time) {
	if s.hdrLen == 0 {
		return
	}
	s.missing += max(s.left, 1)
	s.left = 0
	c.done(s, t)
}

// Expire implements proto.Expiring: the exchanges matched by packet
// identifier (QoS 1 and 2 publishes, subscriptions) unanswered since
// before deadline.
func (c *conn) Expire(deadline time.Time) {
	c.byID.Expire(deadline, func(e *exch) {
		c.took(e)
		if e.call.Error == "" {
			e.call.Fail(proto.Unanswered, "no acknowledgement within the request timeout")
		}
		c.out.Emit(e.call)
	})
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.side {
		c.cut(&c.side[i], t)
	}
	why := reason.Why()
	give := func(e *exch) {
		c.took(e)
		if e.call.Error == "" {
			switch {
			case reason == proto.EndMemory:
				e.call.Fail(proto.Truncated, "connection ended early for memory bounds")
			case e.stage > 0:
				e.call.Fail(proto.Unanswered, strings.TrimPrefix(why+": ", ": ")+"no "+nextPacket(e))
			default:
				e.call.Fail(proto.Unanswered, why)
			}
		}
		c.out.Emit(e.call)
	}
	c.inOrder.Expire(time.Time{}, give)
	c.byID.Expire(time.Time{}, give)
	for i := range c.side {
		c.side[i].body, c.side[i].aliases = nil, nil
	}
}

// nextPacket names what a QoS 2 exchange waits for.
func nextPacket(e *exch) string {
	if e.stage == 1 {
		return "PUBREL after PUBREC"
	}
	return "PUBCOMP after PUBREL"
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.byID.Kept() + c.inOrder.Kept() + 48*len(c.ids)
	for i := range c.side {
		n += cap(c.side[i].body) + c.side[i].aliasN
	}
	return n
}
