package http2

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/wirescope/wirescope/dissect/proto"
)

// conn parses one HTTP/2 connection.
type conn struct {
	out proto.Emitter
	lim proto.Limits
	dir [2]direction // the client's frames, the server's
	// streams are the open streams by id; waiting those of them not yet
	// answered, oldest first.
	streams map[uint32]*stream
	waiting proto.Pending[uint32, *stream]
	// maxID is the highest stream id opened by each side (odd: the
	// client's, even: pushed): a frame for a lower id whose stream is
	// gone belongs to a stream already finished.
	maxID [2]uint32
	// mid: the capture started after the connection did (no preface).
	mid bool
	// kept is about the memory the open streams keep.
	kept int
	// carried are the open streams whose carriage buffers.
	carried map[*stream]proto.CarriedBuffering
	// goaway is the GOAWAY seen last, for the calls it ends.
	goaway string
}

// direction is the frames one side sends, read as they arrive.
type direction struct {
	role proto.Role
	// prefaceLeft is how many bytes of the client preface are still to
	// come.
	prefaceLeft int
	hdr         [frameHeaderLen]byte
	hdrN        int
	inFrame     bool
	h           frameHeader
	t           time.Time // when the current frame's header arrived
	pos         uint32    // payload bytes read of the current frame
	pre         [6]byte   // the padding length, priority, promised id
	preLen      int
	padLen      uint32
	small       []byte // a control frame's payload
	// The header block in progress: the stream it is for, its kind
	// (HEADERS or PUSH_PROMISE), the promised stream, END_STREAM on its
	// HEADERS, when it started.
	blockOpen     bool
	blockStream   uint32
	blockKind     uint8
	blockPromised uint32
	blockEnd      bool
	blockT        time.Time
	blockFailed   bool
	fields        proto.Headers
	fieldBytes    int
	fieldsDropped bool
	dec           *hpack.Decoder
	maxFrame      uint32 // the largest frame the peer allows this side
	resync        bool   // after a gap: looking for a frame header
	// fieldsHint is how many fields the last header block that kept any had:
	// a block's list is allocated that big at its first field, not grown
	// field by field (a sender's blocks are alike).
	fieldsHint int
}

// stream is one request and its response.
type stream struct {
	id         uint32
	req, resp  message
	start      time.Time // the request's first frame (the response's without one)
	reqLast    time.Time // the request's last frame before the response began
	pushedBy   uint32
	interim    []any
	carry      proto.Carriage
	incomplete bool // a header block could not be decoded whole
	answered   bool // out of c.waiting
	reset      string
	resetBy    proto.Role
}

// message is one side of a stream.
type message struct {
	seen     bool // its header block came
	headers  proto.Headers
	trailers proto.Headers
	method   string
	path     string
	status   string
	encoding string
	body     []byte
	bodySize int64
	missing  bool // bytes of it were not captured
	ended    bool
	end      time.Time
	start    time.Time
	kept     int
}

// The cap on a dynamic table, whatever SETTINGS_HEADER_TABLE_SIZE and
// size updates ask: real peers use 4 KiB; a bigger table is a bomb.
const maxTable = 64 << 10

// maxFieldsHint caps the room a header list starts with.
const maxFieldsHint = 64

// smallCap caps what a control frame's payload keeps (GOAWAY's debug data
// beyond it is counted, not kept).
const smallCap = 1 << 10

func newConn(out proto.Emitter, lim *proto.Limits, ctx proto.Extra) *conn {
	c := &conn{out: out, lim: lim.WithDefaults(), streams: map[uint32]*stream{}}
	c.waiting.Max = c.lim.MaxPending
	for i, r := range [2]proto.Role{proto.Client, proto.Server} {
		d := &c.dir[i]
		d.role = r
		d.maxFrame = defaultMaxFrame
		d.dec = c.newDecoder(d)
	}
	c.dir[0].prefaceLeft = len(preface)
	if ctx != nil {
		// The upgrade's request is stream 1; its response comes on it.
		st := &stream{id: 1}
		st.req.seen, st.req.ended = true, true
		st.req.method, _ = ctx.Get("method").(string)
		st.req.path, _ = ctx.Get("target").(string)
		if t, ok := ctx.Get("request_end").(time.Time); ok {
			st.start, st.req.end, st.reqLast = t, t, t
		}
		if t, ok := ctx.Get("request_start").(time.Time); ok {
			st.start = t
		}
		c.open(st)
		// Its headers were HTTP/1's: a carried protocol that needs them
		// (gRPC) does not take it; one the request line tells (a GraphQL
		// GET) does.
		c.carry(st, nil)
	}
	return c
}

func (c *conn) newDecoder(d *direction) *hpack.Decoder {
	dec := hpack.NewDecoder(4096, d.addField(c))
	dec.SetAllowedMaxDynamicTableSize(maxTable)
	dec.SetMaxStringLength(c.lim.MaxHeaderBytes)
	return dec
}

// placeholder names the entries a table read from the middle of a
// connection starts with.
const placeholder = "?"

// seedBlock fills a 4 KiB dynamic table with placeholder entries: one
// literal with incremental indexing, name "?" and an empty value (33
// bytes of table each), per entry.
var seedBlock = bytes.Repeat([]byte{0x40, 0x01, '?', 0x00}, 4096/33)

// restart gives d a table for a connection read from the middle (or after
// a block that did not decode): the sender's table holds entries this
// parser never saw. It starts full of placeholders, which stand for
// those: a field that names one is left out (and its block marked
// incomplete) instead of failing the rest of the block. The entries the
// sender adds from here go in front of them, in step with its table, and
// placeholders are the oldest, evicted first.
func (c *conn) restart(d *direction) {
	d.dec = c.newDecoder(d)
	d.dec.Write(seedBlock)
	d.dec.Close()
	d.fields, d.fieldBytes, d.fieldsDropped = nil, 0, false
}

// addField returns the decoder's emit function: fields kept up to the
// header list bound, the rest dropped (and counted).
func (d *direction) addField(c *conn) func(hpack.HeaderField) {
	return func(f hpack.HeaderField) {
		if f.Name == placeholder {
			// An entry of the table from before what was seen.
			d.fieldsDropped = true
			return
		}
		n := len(f.Name) + len(f.Value) + 32
		if d.fieldBytes+n > c.lim.MaxHeaderBytes {
			d.fieldsDropped = true
			return
		}
		d.fieldBytes += n
		if d.fields == nil {
			d.fields = make(proto.Headers, 0, max(d.fieldsHint, 1))
		}
		d.fields = append(d.fields, proto.Header{Name: f.Name, Value: f.Value})
	}
}

// midway notes that the capture started after the connection did: both
// tables start with placeholders.
func (c *conn) midway() {
	c.mid = true
	for i := range c.dir {
		if !c.dir[i].blockOpen {
			c.restart(&c.dir[i])
		}
	}
}

func (c *conn) side(r proto.Role) *direction {
	if r == proto.Server {
		return &c.dir[1]
	}
	return &c.dir[0]
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	d := c.side(r)
	for len(data) > 0 {
		if d.prefaceLeft > 0 {
			done := len(preface) - d.prefaceLeft
			n := min(len(data), d.prefaceLeft)
			if string(data[:n]) != preface[done:done+n] {
				// No preface: the capture started mid-connection.
				d.prefaceLeft = 0
				c.midway()
				continue
			}
			d.prefaceLeft -= n
			data = data[n:]
			continue
		}
		if d.resync {
			k := findFrame(data, d.maxFrame)
			if k < 0 {
				c.out.Skipped(len(data))
				return
			}
			c.out.Skipped(k)
			data = data[k:]
			d.resync = false
		}
		if !d.inFrame {
			n := copy(d.hdr[d.hdrN:], data)
			d.hdrN += n
			data = data[n:]
			if d.hdrN < frameHeaderLen {
				return
			}
			d.hdrN = 0
			h := parseHeader(d.hdr[:])
			if !h.wellFormed(d.maxFrame) {
				// Out of step (or a peer breaking the protocol, which ends
				// the connection): find the frames again.
				c.lose(d, -1)
				c.out.Skipped(frameHeaderLen)
				continue
			}
			c.beginFrame(d, h, t)
			if h.length == 0 {
				c.endFrame(d, t)
			}
			continue
		}
		n := min(uint32(len(data)), d.h.length-d.pos)
		c.payload(d, data[:n], t)
		data = data[n:]
		if d.pos == d.h.length {
			c.endFrame(d, t)
		}
	}
}

// findFrame returns where a frame header starts in b: a well-formed header
// whose frame ends where b does or where another well-formed header
// starts; -1 when there is none.
func findFrame(b []byte, maxFrame uint32) int {
	for k := 0; k+frameHeaderLen <= len(b); k++ {
		h := parseHeader(b[k:])
		if h.typ > frameContinuation || !h.wellFormed(maxFrame) {
			continue
		}
		next := k + frameHeaderLen + int(h.length)
		if next == len(b) {
			return k
		}
		if next+frameHeaderLen <= len(b) && parseHeader(b[next:]).wellFormed(maxFrame) && b[next+3] <= frameContinuation {
			return k
		}
	}
	return -1
}

// prefixLen is how many bytes precede a frame's content: the padding
// length, HEADERS' priority fields, PUSH_PROMISE's promised stream.
func prefixLen(h frameHeader) int {
	n := 0
	switch h.typ {
	case frameData, frameHeaders, framePushPromise:
		if h.flags&flagPadded != 0 {
			n++
		}
	}
	if h.typ == frameHeaders && h.flags&flagPriority != 0 {
		n += 5
	}
	if h.typ == framePushPromise {
		n += 4
	}
	return n
}

func (c *conn) beginFrame(d *direction, h frameHeader, t time.Time) {
	d.inFrame, d.h, d.t, d.pos = true, h, t, 0
	d.preLen, d.padLen = 0, 0
	d.small = d.small[:0]
	if d.blockOpen && (h.typ != frameContinuation || h.stream != d.blockStream) {
		// A header block must be followed by its CONTINUATION frames and
		// nothing else: it will not be finished.
		c.abortBlock(d)
	}
	if h.typ == frameHeaders && prefixLen(h) == 0 {
		c.beginBlock(d, h.stream, frameHeaders, 0, h.flags&flagEndStream != 0, t)
	}
}

// payload reads b, the next bytes of the current frame's payload.
func (c *conn) payload(d *direction, b []byte, t time.Time) {
	h := d.h
	for len(b) > 0 {
		if pl := prefixLen(h); d.preLen < pl {
			n := copy(d.pre[d.preLen:pl], b)
			d.preLen += n
			d.pos += uint32(n)
			b = b[n:]
			if d.preLen == pl {
				c.prefixDone(d, t)
			}
			continue
		}
		// Content, then padding.
		content := h.length - uint32(prefixLen(h)) - d.padLen
		if int64(h.length)-int64(prefixLen(h))-int64(d.padLen) < 0 {
			content = 0
		}
		at := d.pos - uint32(prefixLen(h))
		if at >= content {
			d.pos += uint32(len(b)) // padding
			return
		}
		n := min(uint32(len(b)), content-at)
		c.content(d, b[:n], t)
		d.pos += n
		b = b[n:]
	}
}

// prefixDone reads a frame's prefix once whole.
func (c *conn) prefixDone(d *direction, t time.Time) {
	h := d.h
	if h.flags&flagPadded != 0 && (h.typ == frameData || h.typ == frameHeaders || h.typ == framePushPromise) {
		d.padLen = uint32(d.pre[0])
	}
	switch h.typ {
	case frameHeaders:
		c.beginBlock(d, h.stream, frameHeaders, 0, h.flags&flagEndStream != 0, t)
	case framePushPromise:
		promised := binary.BigEndian.Uint32(d.pre[d.preLen-4:d.preLen]) & 0x7fffffff
		c.beginBlock(d, h.stream, framePushPromise, promised, false, t)
	}
}

// content reads bytes of a frame's content (its payload without prefix
// and padding).
func (c *conn) content(d *direction, b []byte, t time.Time) {
	switch d.h.typ {
	case frameData:
		c.data(d, b, t)
	case frameHeaders, framePushPromise, frameContinuation:
		c.fragment(d, b)
	default:
		if room := smallCap - len(d.small); room > 0 {
			d.small = append(d.small, b[:min(room, len(b))]...)
		}
	}
}

// endFrame acts on a frame whose payload has all come.
func (c *conn) endFrame(d *direction, t time.Time) {
	d.inFrame = false
	h := d.h
	if pl := prefixLen(h); d.preLen < pl || uint32(pl)+d.padLen > h.length {
		// A frame too short for its own prefix or padding.
		if h.typ == frameHeaders || h.typ == framePushPromise {
			c.abortBlock(d)
		}
		return
	}
	switch h.typ {
	case frameData:
		if h.flags&flagEndStream != 0 {
			if st := c.streams[h.stream]; st != nil {
				c.endMessage(st, d.role, t)
			}
		}
	case frameHeaders, framePushPromise, frameContinuation:
		if h.typ == frameContinuation && (!d.blockOpen || d.blockStream != h.stream) {
			return // a CONTINUATION without its HEADERS (lost in a gap)
		}
		if h.flags&flagEndHeaders != 0 {
			c.endBlock(d, t)
		}
	case frameSettings:
		if h.flags&flagAck == 0 {
			c.settings(d, d.small)
		}
	case frameRSTStream:
		if len(d.small) == 4 {
			c.resetStream(h.stream, d.role, binary.BigEndian.Uint32(d.small), t)
		}
	case frameGoAway:
		if len(d.small) >= 8 {
			c.goAway(d.role, binary.BigEndian.Uint32(d.small)&0x7fffffff, binary.BigEndian.Uint32(d.small[4:]), d.small[8:], t)
		}
	}
}

// settings applies what the sender's SETTINGS ask of its peer: the peer's
// table size for the header blocks it sends this side, and the largest
// frame the peer may send.
func (c *conn) settings(d *direction, b []byte) {
	peer := &c.dir[0]
	if d == peer {
		peer = &c.dir[1]
	}
	for ; len(b) >= 6; b = b[6:] {
		v := binary.BigEndian.Uint32(b[2:])
		switch binary.BigEndian.Uint16(b) {
		case 0x5: // SETTINGS_MAX_FRAME_SIZE
			if v >= defaultMaxFrame && v <= maxFrameLimit {
				peer.maxFrame = v
			}
		}
	}
}

// beginBlock starts a header block.
func (c *conn) beginBlock(d *direction, id uint32, kind uint8, promised uint32, endStream bool, t time.Time) {
	d.blockOpen, d.blockStream, d.blockKind, d.blockPromised, d.blockEnd, d.blockT = true, id, kind, promised, endStream, t
	d.blockFailed, d.fieldsDropped = false, false
	d.fields, d.fieldBytes = nil, 0
}

// fragment decodes the next bytes of a header block.
func (c *conn) fragment(d *direction, b []byte) {
	if !d.blockOpen || d.blockFailed {
		return
	}
	if _, err := d.dec.Write(b); err != nil {
		d.blockFailed = true
	}
}

// abortBlock gives up a header block that will not be finished; the table
// it would have changed is unknown from here.
func (c *conn) abortBlock(d *direction) {
	if !d.blockOpen {
		return
	}
	d.blockFailed = true
	c.endBlock(d, d.blockT)
}

// endBlock finishes a header block and gives its fields to their stream.
func (c *conn) endBlock(d *direction, t time.Time) {
	d.blockOpen = false
	if !d.blockFailed {
		if err := d.dec.Close(); err != nil {
			d.blockFailed = true
		}
	}
	fields := d.fields
	if len(fields) > 0 {
		d.fieldsHint = min(len(fields), maxFieldsHint)
	}
	incomplete := d.blockFailed || d.fieldsDropped
	if d.blockFailed {
		// The table is out of step with the sender's: start afresh. The
		// newest entries the sender adds from here are the first of ours,
		// so later blocks decode unless they name older entries.
		c.restart(d)
	}
	d.fields = nil
	switch {
	case d.blockKind == framePushPromise:
		c.promise(d.blockStream, d.blockPromised, fields, incomplete, d.blockT)
	case d.role == proto.Client:
		c.requestBlock(d.blockStream, fields, incomplete, d.blockEnd, d.blockT, t)
	default:
		c.responseBlock(d.blockStream, fields, incomplete, d.blockEnd, d.blockT, t)
	}
}

func (c *conn) parity(id uint32) int { return int(1 - id&1) } // 0: odd, a client's

// open adds a stream.
func (c *conn) open(st *stream) {
	c.streams[st.id] = st
	if p := c.parity(st.id); st.id > c.maxID[p] {
		c.maxID[p] = st.id
	}
	if oldest, full := c.waiting.Add(st.id, st.start, st); full {
		oldest.answered = true
		c.finish(oldest, proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" streams waited for a response")
	}
	if len(c.streams) > 4*c.lim.MaxPending {
		c.shed()
	}
}

// shed finishes the older half of the open streams, when more are open
// than the bound allows (a flood of streams never ended).
func (c *conn) shed() {
	ids := make([]uint32, 0, len(c.streams))
	for id := range c.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids[:len(ids)/2] {
		if st := c.streams[id]; st != nil {
			c.finishOpen(st, "more than "+strconv.Itoa(4*c.lim.MaxPending)+" streams were open at once")
		}
	}
}

// stream returns the open stream id, creating one for a frame of a
// stream whose start the capture missed; nil for a stream finished
// already.
func (c *conn) stream(id uint32, t time.Time) *stream {
	if st := c.streams[id]; st != nil {
		return st
	}
	if id <= c.maxID[c.parity(id)] {
		return nil
	}
	st := &stream{id: id, start: t}
	c.open(st)
	return st
}

// answer takes st out of the streams waiting for a response.
func (c *conn) answer(st *stream) {
	if !st.answered {
		st.answered = true
		c.waiting.Take(st.id, nil)
	}
}

func pseudo(h proto.Headers, name string) string {
	for _, f := range h {
		if f.Name == name {
			return f.Value
		}
		if !strings.HasPrefix(f.Name, ":") {
			break // pseudo-headers come first
		}
	}
	return ""
}

func (c *conn) keep(st *stream, m *message, n int) {
	m.kept += n
	c.kept += n
}

func headerSize(h proto.Headers) int {
	n := 0
	for _, f := range h {
		n += len(f.Name) + len(f.Value) + 32
	}
	return n
}

// requestBlock takes a header block the client sent: a request's headers,
// or its trailers.
func (c *conn) requestBlock(id uint32, h proto.Headers, incomplete, endStream bool, start, t time.Time) {
	st := c.streams[id]
	switch {
	case st == nil:
		if id <= c.maxID[c.parity(id)] {
			return // a stream finished already
		}
		st = &stream{id: id, start: start}
		c.open(st)
		c.requestHeaders(st, h, start)
	case !st.req.seen && st.req.bodySize == 0:
		// The stream was opened by its response (a capture that missed
		// the request's start cannot give it its headers later): the
		// request's headers after all.
		c.requestHeaders(st, h, start)
	default:
		st.req.trailers = append(st.req.trailers, h...)
		c.keep(st, &st.req, headerSize(h))
		if st.carry != nil {
			st.carry.Headers(proto.Client, h)
		}
	}
	st.incomplete = st.incomplete || incomplete
	st.reqLast = t
	if endStream {
		c.endMessage(st, proto.Client, t)
	}
}

func (c *conn) requestHeaders(st *stream, h proto.Headers, t time.Time) {
	m := &st.req
	m.seen, m.start = true, t
	m.method, m.path = pseudo(h, ":method"), pseudo(h, ":path")
	m.encoding = h.Get("content-encoding")
	if !c.lim.Summary {
		m.headers = h
		c.keep(st, m, headerSize(h))
	}
	c.carry(st, h)
}

// carry asks the carried protocols whether st's request is theirs.
func (c *conn) carry(st *stream, h proto.Headers) {
	st.carry = proto.Carry("http2", st.req.method, st.req.path, h, &c.lim)
	if cb, ok := st.carry.(proto.CarriedBuffering); ok {
		if c.carried == nil {
			c.carried = map[*stream]proto.CarriedBuffering{}
		}
		c.carried[st] = cb
	}
}

// responseBlock takes a header block the server sent: a response's
// headers (after any 1xx), or its trailers.
func (c *conn) responseBlock(id uint32, h proto.Headers, incomplete, endStream bool, start, t time.Time) {
	st := c.stream(id, start)
	if st == nil {
		return
	}
	st.incomplete = st.incomplete || incomplete
	m := &st.resp
	switch status := pseudo(h, ":status"); {
	case !m.seen && len(status) == 3 && status[0] == '1' && status != "101" && !endStream:
		// An interim response: the final one is still to come.
		if len(st.interim) < 8 {
			if n, err := strconv.Atoi(status); err == nil {
				st.interim = append(st.interim, n)
			}
		}
		return
	case !m.seen:
		m.seen, m.start, m.status = true, start, status
		m.encoding = h.Get("content-encoding")
		if !c.lim.Summary {
			m.headers = h
			c.keep(st, m, headerSize(h))
		}
		c.answer(st)
	default:
		m.trailers = append(m.trailers, h...)
		c.keep(st, m, headerSize(h))
	}
	if st.carry != nil {
		st.carry.Headers(proto.Server, h)
	}
	if endStream {
		c.endMessage(st, proto.Server, t)
	}
}

// promise takes a PUSH_PROMISE: the promised stream's request, sent by the
// server on stream by.
func (c *conn) promise(by, id uint32, h proto.Headers, incomplete bool, t time.Time) {
	if id == 0 || c.streams[id] != nil || id <= c.maxID[c.parity(id)] {
		return
	}
	st := &stream{id: id, start: t, pushedBy: by, incomplete: incomplete}
	c.open(st)
	c.requestHeaders(st, h, t)
	st.req.ended, st.req.end, st.reqLast = true, t, t
}

// data takes the content of a DATA frame.
func (c *conn) data(d *direction, b []byte, t time.Time) {
	st := c.stream(d.h.stream, d.t)
	if st == nil {
		c.out.Skipped(len(b))
		return
	}
	m := &st.req
	if d.role == proto.Server {
		m = &st.resp
		if !m.seen && !st.answered {
			// A response whose headers the capture missed.
			c.answer(st)
		}
	} else if !st.resp.seen {
		st.reqLast = t
	}
	m.bodySize += int64(len(b))
	if !c.lim.Summary {
		if room := c.lim.MaxBodyCapture - len(m.body); room > 0 {
			n := min(room, len(b))
			m.body = append(m.body, b[:n]...)
			c.keep(st, m, n)
		}
	}
	if st.carry != nil {
		st.carry.Body(d.role, b)
	}
}

// endMessage ends one side of a stream; the stream is finished when the
// server's side ends (a client still sending then is cut short by the
// server's choice, not the capture's).
func (c *conn) endMessage(st *stream, r proto.Role, t time.Time) {
	if r == proto.Client {
		st.req.ended, st.req.end = true, t
		if !st.resp.seen {
			st.reqLast = t
		}
		return
	}
	st.resp.ended, st.resp.end = true, t
	c.finish(st, 0, "")
}

// resetStream takes an RST_STREAM: the stream ends there.
func (c *conn) resetStream(id uint32, by proto.Role, code uint32, t time.Time) {
	st := c.streams[id]
	if st == nil {
		return
	}
	st.reset, st.resetBy = errorCodeName(code), by
	switch {
	case !st.resp.seen:
		c.finish(st, proto.Unanswered, "stream reset "+st.reset)
	case !st.resp.ended || code != 0:
		c.finish(st, proto.Truncated, "stream reset "+st.reset)
	default:
		c.finish(st, 0, "")
	}
}

// goAway takes a GOAWAY: the streams its receiver opened above last were
// not processed and never will be.
func (c *conn) goAway(by proto.Role, last, code uint32, debug []byte, t time.Time) {
	c.goaway = errorCodeName(code)
	if len(debug) > 0 {
		c.goaway += " (" + strings.ToValidUTF8(string(debug[:min(len(debug), 128)]), "?") + ")"
	}
	opened := 0 // the client's streams (odd ids) are refused by the server's GOAWAY
	if by == proto.Client {
		opened = 1
	}
	var refused []*stream
	for id, st := range c.streams {
		if c.parity(id) == opened && id > last && !st.resp.seen {
			refused = append(refused, st)
		}
	}
	slices.SortFunc(refused, func(a, b *stream) int { return int(a.id) - int(b.id) })
	for _, st := range refused {
		c.finish(st, proto.Unanswered, "refused by GOAWAY "+c.goaway)
	}
}

// Gap implements proto.StreamParser. A gap inside a DATA frame whose size
// is known keeps the frames in step (the body lost those bytes); any other
// loses them, and the header table with them.
func (c *conn) Gap(r proto.Role, n int) {
	d := c.side(r)
	if d.prefaceLeft > 0 {
		d.prefaceLeft = 0
		c.midway()
	}
	if d.inFrame && d.h.typ == frameData && n >= 0 && d.preLen == prefixLen(d.h) &&
		uint32(n) <= d.h.length-d.pos-d.padLen {
		if st := c.streams[d.h.stream]; st != nil {
			m := &st.req
			if r == proto.Server {
				m = &st.resp
			}
			m.bodySize += int64(n)
			m.missing = true
			if st.carry != nil {
				st.carry.Gap(r)
			}
		}
		d.pos += uint32(n)
		if d.pos == d.h.length {
			c.endFrame(d, d.t)
		}
		return
	}
	c.lose(d, n)
}

// lose puts d out of step: its frames are looked for again, its header
// table starts afresh, and every message it was sending lost bytes.
func (c *conn) lose(d *direction, n int) {
	c.abortBlock(d)
	d.inFrame, d.hdrN, d.resync = false, 0, true
	c.restart(d)
	for _, st := range c.streams {
		m := &st.req
		if d.role == proto.Server {
			m = &st.resp
		}
		if !m.ended {
			m.missing = true
			if st.carry != nil {
				st.carry.Gap(d.role)
			}
		}
	}
}

// Expire implements proto.Expiring: streams unanswered since before
// deadline are given up. A stream answered and still streaming (a watch,
// a gRPC stream) is not.
func (c *conn) Expire(deadline time.Time) {
	c.waiting.Expire(deadline, func(st *stream) {
		st.answered = true
		c.finish(st, proto.Unanswered, "")
	})
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.dir {
		c.abortBlock(&c.dir[i])
	}
	why := "connection " + reason.String()
	if reason == proto.EndMemory {
		why = reason.String()
	} else if reason == proto.EndCapture {
		why = "capture ended"
	}
	ids := make([]uint32, 0, len(c.streams))
	for id := range c.streams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		c.finishOpen(c.streams[id], why)
	}
}

// finishOpen finishes a stream cut short: unanswered, or with its
// response cut.
func (c *conn) finishOpen(st *stream, why string) {
	switch {
	case st.resp.missing:
		c.finish(st, proto.Truncated, "the capture lost bytes of the response, then "+why)
	case !st.resp.seen && st.resp.bodySize == 0:
		c.finish(st, proto.Unanswered, why)
	default:
		c.finish(st, proto.Truncated, "response not finished: "+why)
	}
}

// Buffered implements proto.Buffering: the open streams' headers and
// bodies, what their carriages keep, the control frame being read, and
// the two header tables.
func (c *conn) Buffered() int {
	n := c.kept + len(c.streams)*streamSize + cap(c.dir[0].small) + cap(c.dir[1].small) + 2*4096
	for i := range c.dir {
		n += c.dir[i].fieldBytes
	}
	for _, cb := range c.carried {
		n += cb.Buffered()
	}
	return n
}

// streamSize is about what a stream's bookkeeping takes beyond its bytes.
const streamSize = 400

// finish emits st's call and forgets it. p and detail, when p is set, say
// what went wrong.
func (c *conn) finish(st *stream, p proto.Problem, detail string) {
	delete(c.streams, st.id)
	delete(c.carried, st)
	c.kept -= st.req.kept + st.resp.kept
	if !st.answered {
		st.answered = true
		c.waiting.Take(st.id, nil)
	}
	if !st.req.seen && !st.resp.seen {
		// Frames of a stream whose header blocks were all missed: there is
		// no call to name.
		c.out.Skipped(int(st.req.bodySize + st.resp.bodySize))
		return
	}
	call := &proto.Call{Proto: "http2", TS: st.start}
	req, resp := &st.req, &st.resp
	call.Method, call.Path, call.Status = req.method, req.path, resp.status
	if !req.seen && resp.seen {
		call.TS = resp.start
	}
	if req.seen && resp.seen {
		reqEnd := st.reqLast
		if req.ended && !req.end.After(resp.start) {
			reqEnd = req.end
		}
		if d := resp.start.Sub(reqEnd); d > 0 && !reqEnd.IsZero() {
			call.LatencyNS = int64(d)
		}
	}
	c.message(&call.Request, req)
	c.message(&call.Response, resp)
	switch {
	case p != 0:
		call.Fail(p, detail)
	case !req.seen:
		call.Fail(proto.Orphan, "the stream began before the capture")
	case req.missing || resp.missing:
		call.Fail(proto.Truncated, "bytes missing from the capture")
	case resp.seen && resp.status == "":
		call.Fail(proto.Truncated, "the response's :status could not be decoded")
	case !resp.seen:
		call.Fail(proto.Truncated, "the response's headers were not captured")
	}
	extra := make(proto.Extra, 0, 4)
	extra = append(extra, proto.Field{Key: "stream_id", Value: int64(st.id)})
	if st.pushedBy != 0 {
		extra = append(extra, proto.Field{Key: "pushed", Value: true}, proto.Field{Key: "pushed_by", Value: int64(st.pushedBy)})
	}
	if len(st.interim) > 0 {
		extra = append(extra, proto.Field{Key: "interim", Value: st.interim})
	}
	if st.incomplete {
		note := "some header fields could not be decoded"
		if c.mid {
			note = "the connection began before the capture: header fields that refer to earlier ones could not be decoded"
		}
		extra = append(extra, proto.Field{Key: "headers_incomplete", Value: note})
	}
	if st.reset != "" {
		extra = append(extra, proto.Field{Key: "reset", Value: st.reset}, proto.Field{Key: "reset_by", Value: st.resetBy.String()})
	}
	if req.seen && !req.ended && resp.ended {
		extra = append(extra, proto.Field{Key: "request_unfinished", Value: true})
	}
	if len(req.trailers) > 0 {
		extra = append(extra, proto.Field{Key: "request_trailers", Value: req.trailers.Map()})
	}
	if len(resp.trailers) > 0 {
		extra = append(extra, proto.Field{Key: "response_trailers", Value: resp.trailers.Map()})
	}
	call.Extra = extra
	if st.carry != nil {
		for _, cc := range st.carry.Finish(call) {
			c.out.Emit(cc)
		}
		return
	}
	c.out.Emit(call)
}

// message fills a proto.Message from m.
func (c *conn) message(out *proto.Message, m *message) {
	out.BodySize = m.bodySize
	if c.lim.Summary {
		return
	}
	out.Headers = m.headers
	if len(m.body) == 0 {
		return
	}
	body, partial := proto.DecodeBody(m.body, m.encoding, c.lim.MaxBodyDisplay)
	out.SetBody(body, c.lim.MaxBodyDisplay)
	if partial || int64(len(m.body)) < m.bodySize && m.encoding == "" {
		out.BodyTruncated = true
	}
}
