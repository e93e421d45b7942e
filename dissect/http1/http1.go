// Package http1 dissects HTTP/1.0 and HTTP/1.1.
//
// Requests and responses are matched in order per connection, which covers
// keep-alive and pipelining. Message framing follows RFC 9112 section 6:
// Transfer-Encoding chunked (with trailers), Content-Length, bodies delimited
// by the connection's close, and no body for HEAD responses, 1xx, 204 and
// 304. Interim 1xx responses (100 Continue) are recorded on the call they
// precede. A 101 Switching Protocols or a successful CONNECT hands the rest
// of the connection to the engine (Emitter.Upgrade).
//
// The parser never trusts a length it reads: bodies are counted, not
// buffered, except for the first Limits.MaxBodyCapture bytes kept for
// display; header blocks beyond Limits.MaxHeaderBytes are dropped and the call
// marked truncated. Gzip and deflate bodies are decoded for display up to
// Limits.MaxBodyDisplay bytes, so a compression bomb costs no more than that.
//
// When bytes are missing (a capture gap), a body of known length just loses
// those bytes and the call is marked truncated; a gap inside message framing
// ends the current message and the parser resynchronises on the next segment
// that starts a message. A response that began before the oldest waiting
// request was sent cannot answer it: it is emitted on its own ("no request"),
// so one lost request does not shift every later pair.
package http1

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is the HTTP/1 dissector.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "http" }

// Describe implements proto.Describer: the path is the request target;
// statuses classify by HTTP's classes (the default).
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "HTTP/1.x requests", Path: proto.PathURL, ALPN: []string{"http/1.1", "http/1.0"}}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{80, 8080, 8000, 8008, 8081, 8888, 3128, 5000, 9090} }

// DetectStream implements proto.StreamProtocol.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	return detect(data)
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	c := &conn{out: out, lim: lim}
	c.pending.Max = lim.MaxPending
	c.req.role, c.resp.role = proto.Client, proto.Server
	return c
}

// state is where a half-connection is in its current message.
type state uint8

const (
	stStart      state = iota // between messages
	stHeader                  // reading the start line and header fields
	stBody                    // a body of known length
	stChunkSize               // a chunk-size line
	stChunkData               // chunk data
	stChunkEnd                // the CRLF after chunk data
	stTrailer                 // trailer fields after the last chunk
	stUntilClose              // a response body that ends with the connection
	stSkipHeader              // dropping a header block larger than the limit
	stHold                    // after an upgrade request: wait for the response
	stOpaque                  // the connection switched protocols or tunnels
	stLost                    // out of step after a gap: wait for a message start
)

// message is a request or response being parsed.
type message struct {
	start, end time.Time // first and last byte
	last       time.Time // last byte seen so far
	method     string
	target     string
	version    string
	status     int
	headers    proto.Headers
	trailers   proto.Headers
	// trailerBytes counts the trailer section, bounded like a header block.
	trailerBytes int
	// headerSize is about the memory the parsed header block takes.
	headerSize int
	length     int64 // Content-Length, -1 if none
	chunked    bool
	encoding   string // Content-Encoding
	upgrade    string // Upgrade, when Connection names it
	bodySize   int64
	body       []byte
	missing    int64 // body bytes not captured
	done       bool
	err        string
}

// exchange is a request and what the server answered.
type exchange struct {
	req     *message
	resp    *message
	interim []int // the first maxInterim interim statuses
	// moreInterim counts interim responses beyond those.
	moreInterim int
	// carry follows a protocol carried in the exchange (GraphQL), which
	// rewrites its call (proto.Carry).
	carry proto.Carriage
}

// maxInterim bounds the interim (1xx) statuses a call records.
const maxInterim = 16

// half is one direction of the connection.
type half struct {
	role      proto.Role
	state     state
	buf       []byte // a header block or line in progress
	remaining int64  // bytes left in a body or chunk
	msg       *message
	ex        *exchange // the exchange msg belongs to (nil for an orphan response)
	resync    bool      // lost step since the last message
	held      []heldBytes
	heldSize  int
	// tail holds the last bytes skipped in stSkipHeader, to find a header
	// block's end split across segments.
	tail  [3]byte
	ntail int
}

type heldBytes struct {
	b []byte
	t time.Time
}

// conn parses one connection.
type conn struct {
	out  proto.Emitter
	lim  *proto.Limits
	req  half
	resp half
	// pending are the requests waiting for a final response, oldest
	// first, each under its own key (popped when its response ends).
	pending proto.Pending[*exchange, *exchange]
	// handover holds the bytes received after a protocol switch, and what
	// the switch said, for the protocol that takes over (HandOver).
	handover proto.Handover
	// spare are messages and an exchange whose call was emitted, zeroed
	// for the next ones: a keep-alive connection reuses them instead of
	// allocating two messages and an exchange per call.
	spare   []*message
	spareEx *exchange
}

// maxSpare bounds the spare messages of a connection.
const maxSpare = 2

// newMessage returns a message starting at t, a spare one if any.
func (c *conn) newMessage(t time.Time) *message {
	if n := len(c.spare); n > 0 {
		m := c.spare[n-1]
		c.spare = c.spare[:n-1]
		m.start, m.last, m.length = t, t, -1
		return m
	}
	return &message{start: t, last: t, length: -1}
}

// recycle keeps ex and its messages for reuse once its call is emitted.
// What the call took from them stays the call's: the header slices and
// bodies are dropped, not reused.
func (c *conn) recycle(ex *exchange) {
	for _, m := range []*message{ex.req, ex.resp} {
		if m != nil && len(c.spare) < maxSpare {
			*m = message{}
			c.spare = append(c.spare, m)
		}
	}
	*ex = exchange{}
	c.spareEx = ex
}

func (c *conn) half(r proto.Role) *half {
	if r == proto.Server {
		return &c.resp
	}
	return &c.req
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	h := c.half(r)
	if h.msg != nil {
		h.msg.last = t
	}
	for len(data) > 0 {
		switch h.state {
		case stLost:
			// Resynchronise only on a segment that clearly starts a
			// message of this side: after a gap, bytes that merely could
			// be one are more likely the middle of a body.
			if v, role := detect(data); v != proto.Yes || role != h.role {
				return
			}
			if h.role == proto.Client {
				data = data[glued(data):]
			}
			h.state = stStart
		case stStart:
			data = skipCRLF(data)
			if len(data) == 0 {
				return
			}
			h.msg = c.newMessage(t)
			h.ex = nil
			h.state = stHeader
		case stHeader:
			data = c.header(h, data, t)
		case stBody, stChunkData:
			n := int64(len(data))
			if n > h.remaining {
				n = h.remaining
			}
			c.addBody(h, data[:n])
			h.remaining -= n
			data = data[n:]
			if h.remaining == 0 {
				if h.state == stChunkData {
					h.state = stChunkEnd
				} else {
					c.complete(h, t)
				}
			}
		case stChunkSize:
			var line []byte
			var ok bool
			if line, data, ok = c.line(h, data, 4096); !ok {
				continue
			}
			size, valid := parseChunkSize(line)
			switch {
			case !valid:
				c.abort(h, "malformed: bad chunk size "+strconv.Quote(string(trimLine(line, 32))))
			case size == 0:
				h.state = stTrailer
			default:
				h.remaining = size
				h.state = stChunkData
			}
		case stChunkEnd:
			var ok bool
			if _, data, ok = c.line(h, data, 4096); ok {
				h.state = stChunkSize
			}
		case stTrailer:
			var line []byte
			var ok bool
			if line, data, ok = c.line(h, data, c.lim.MaxHeaderBytes); !ok {
				continue
			}
			if len(line) == 0 {
				c.complete(h, t)
				continue
			}
			if h.msg.trailerBytes += len(line); h.msg.trailerBytes > c.lim.MaxHeaderBytes {
				c.abort(h, "truncated: trailers larger than "+strconv.Itoa(c.lim.MaxHeaderBytes)+" bytes")
				h.state, h.ntail = stSkipHeader, 0
				continue
			}
			if name, value, ok := splitField(string(line)); ok {
				h.msg.trailers = addField(h.msg.trailers, name, value)
			}
		case stUntilClose:
			c.addBody(h, data)
			return
		case stSkipHeader:
			data = c.skipHeader(h, data)
		case stHold:
			if h.heldSize+len(data) > c.lim.MaxHeaderBytes {
				c.out.Skipped(len(data))
				return
			}
			h.held = append(h.held, heldBytes{b: append([]byte(nil), data...), t: t})
			h.heldSize += len(data)
			return
		case stOpaque:
			// After a switch: the new protocol's bytes, handed over.
			c.handover.Chunks = append(c.handover.Chunks, proto.Chunk{Role: h.role, Data: bytes.Clone(data), T: t})
			return
		}
	}
}

// line reads a line (without its line end) from data, buffering a partial
// line in h.buf up to max bytes. ok is false when the line is not complete
// yet (or was too long, in which case the message was aborted).
func (c *conn) line(h *half, data []byte, max int) (line, rest []byte, ok bool) {
	i := indexByte(data, '\n')
	if i < 0 {
		if len(h.buf)+len(data) > max {
			c.abort(h, "malformed: line longer than "+strconv.Itoa(max)+" bytes")
			return nil, nil, false
		}
		h.buf = appendBounded(h.buf, data, max)
		return nil, nil, false
	}
	if len(h.buf) > 0 {
		if len(h.buf)+i > max {
			c.abort(h, "malformed: line longer than "+strconv.Itoa(max)+" bytes")
			return nil, nil, false
		}
		h.buf = appendBounded(h.buf, data[:i], max)
		line = h.buf
		h.buf = release(h.buf)
	} else {
		line = data[:i]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, data[i+1:], true
}

// header accumulates a header block and parses it once complete. It returns
// the bytes after the block.
func (c *conn) header(h *half, data []byte, t time.Time) []byte {
	if len(h.buf) == 0 {
		if i := headerEnd(data, 0); i >= 0 && i <= c.lim.MaxHeaderBytes {
			c.parseHeader(h, data[:i], t)
			return data[i:]
		}
	}
	old := len(h.buf)
	take := data
	if room := c.lim.MaxHeaderBytes - old; len(take) > room {
		take = take[:room]
	}
	h.buf = appendBounded(h.buf, take, c.lim.MaxHeaderBytes)
	if i := headerEnd(h.buf, max(0, old-3)); i >= 0 {
		c.parseHeader(h, h.buf[:i], t)
		h.buf = release(h.buf)
		return data[i-old:]
	}
	if len(h.buf) < c.lim.MaxHeaderBytes {
		return nil
	}
	// The header block is larger than allowed: keep what the start line
	// says and skip the rest of the block without buffering it.
	c.out.Skipped(len(h.buf))
	c.abort(h, "truncated: header block larger than "+strconv.Itoa(c.lim.MaxHeaderBytes)+" bytes")
	h.state, h.ntail = stSkipHeader, 0
	return data[len(take):]
}

// skipHeader drops bytes up to and including the empty line that ends an
// oversized header block, counting them as skipped, and returns what
// follows. The message's framing went with its headers: a request is taken
// to have no body, and a response side waits for the next message start.
func (c *conn) skipHeader(h *half, data []byte) []byte {
	// The block ends at "\n\n" or "\n\r\n"; look across the boundary with
	// the last bytes of the previous segment.
	var joined [6]byte
	n := copy(joined[:], h.tail[:h.ntail])
	n += copy(joined[n:], data[:min(len(data), 3)])
	if i := headerEnd(joined[:n], 0); i >= 0 && i > h.ntail {
		return c.headerSkipped(h, data, i-h.ntail)
	}
	if i := headerEnd(data, 0); i >= 0 {
		return c.headerSkipped(h, data, i)
	}
	c.out.Skipped(len(data))
	k := min(3, len(data))
	if k < 3 {
		// Keep the newest three bytes seen, across short segments.
		keep := min(h.ntail, 3-k)
		copy(h.tail[:], h.tail[h.ntail-keep:h.ntail])
		copy(h.tail[keep:], data)
		h.ntail = keep + k
	} else {
		copy(h.tail[:], data[len(data)-3:])
		h.ntail = 3
	}
	return nil
}

func (c *conn) headerSkipped(h *half, data []byte, end int) []byte {
	c.out.Skipped(end)
	h.ntail = 0
	if h.role == proto.Client {
		h.state = stStart
	} else {
		h.state = stLost
	}
	return data[end:]
}

// headerEnd returns the index just past the empty line ending a header
// block, searching from from, or -1.
func headerEnd(b []byte, from int) int {
	for i := from; ; {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		j += i
		if j+1 < len(b) && b[j+1] == '\n' {
			return j + 2
		}
		if j+2 < len(b) && b[j+1] == '\r' && b[j+2] == '\n' {
			return j + 3
		}
		i = j + 1
	}
}

// parseHeader parses a complete header block and sets up the body. The
// block is copied into one string; the start line's fields and the header
// values are substrings of it, so a message costs one copy however many
// fields it has.
func (c *conn) parseHeader(h *half, block []byte, t time.Time) {
	m := h.msg
	blk := string(block)
	i := strings.IndexByte(blk, '\n')
	first := trimCRString(blk[:max(i, 0)])
	rest := blk[i+1:]
	if !c.startLine(h, first) {
		c.abort(h, "malformed: bad status line "+strconv.Quote(trimString(first, 64)))
		return
	}
	for len(rest) > 0 {
		j := strings.IndexByte(rest, '\n')
		if j < 0 {
			j = len(rest)
		}
		line := trimCRString(rest[:j])
		rest = rest[min(j+1, len(rest)):]
		if len(line) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.headers) > 0 {
			// An obsolete line folding: continue the previous value.
			f := &m.headers[len(m.headers)-1]
			f.Value += " " + trimSpaceString(line)
			continue
		}
		if c.lim.Summary && !framingField(line) {
			continue
		}
		name, value, ok := splitField(line)
		if !ok {
			continue
		}
		m.headers = addField(m.headers, name, value)
	}
	m.headerSize = len(blk) + len(m.headers)*fieldSize
	if h.role == proto.Client {
		// Queue the request before judging its framing, so that the
		// server's answer to a malformed request still pairs with it.
		c.queue(h)
	}
	if !c.framing(h, m) {
		return
	}
	if h.role == proto.Client {
		h.ex.carry = proto.Carry("http", m.method, m.target, m.headers, c.lim)
		c.requestBody(h, t)
	} else {
		c.responseHeaders(h, t)
	}
}

// startLine parses a request or status line into h.msg. A request line is
// taken however malformed; a status line must be one.
func (c *conn) startLine(h *half, line string) bool {
	m := h.msg
	if h.role == proto.Client {
		m.method, m.target, m.version = parseRequestLine(line)
		return true
	}
	version, status, ok := parseStatusLine(line)
	m.version, m.status = version, status
	return ok
}

// framingField reports whether a header line is one framing reads: in
// summary mode the others are not parsed at all.
func framingField(line string) bool {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name := trimSpaceString(line[:colon])
	switch len(name) {
	case len("upgrade"):
		return strings.EqualFold(name, "upgrade")
	case len("connection"):
		return strings.EqualFold(name, "connection")
	case len("content-length"):
		return strings.EqualFold(name, "content-length")
	case len("content-encoding"):
		return strings.EqualFold(name, "content-encoding")
	case len("content-type"):
		// Carried protocols are told apart by it (proto.Carry).
		return strings.EqualFold(name, "content-type")
	case len("transfer-encoding"):
		return strings.EqualFold(name, "transfer-encoding")
	}
	return false
}

// framing reads the fields that delimit the body.
func (c *conn) framing(h *half, m *message) bool {
	var conn string
	for _, f := range m.headers {
		switch f.Name {
		case "content-length":
			n, ok := parseContentLength(f.Value)
			if !ok {
				c.abort(h, "malformed: bad content-length "+strconv.Quote(trimString(f.Value, 32)))
				return false
			}
			m.length = n
		case "transfer-encoding":
			m.chunked = lastToken(f.Value) == "chunked"
			if !m.chunked && h.role == proto.Client {
				c.abort(h, "malformed: request transfer-encoding "+strconv.Quote(trimString(f.Value, 32)))
				return false
			}
		case "content-encoding":
			m.encoding = lowerASCII(f.Value)
		case "connection":
			conn = lowerASCII(f.Value)
		case "upgrade":
			m.upgrade = lowerASCII(f.Value)
		}
	}
	if m.upgrade != "" && !hasToken(conn, "upgrade") {
		m.upgrade = ""
	}
	return true
}

// queue makes h's request wait for its response.
func (c *conn) queue(h *half) {
	ex := c.spareEx
	if ex != nil {
		c.spareEx = nil
		ex.req = h.msg
	} else {
		ex = &exchange{req: h.msg}
	}
	h.ex = ex
	if old, full := c.pending.Add(ex, ex.req.start, ex); full {
		if c.resp.ex == old {
			c.resp.ex = nil // its response, being read, answers no request now
		}
		c.emit(old, "truncated: more than "+strconv.Itoa(c.lim.MaxPending)+" requests waiting for a response")
	}
}

// requestBody sets up reading the request's body.
func (c *conn) requestBody(h *half, t time.Time) {
	m := h.msg
	switch {
	case m.chunked:
		h.state = stChunkSize
	case m.length > 0:
		h.remaining = m.length
		h.state = stBody
	default:
		c.complete(h, t)
	}
}

func (c *conn) responseHeaders(h *half, t time.Time) {
	m := h.msg
	ex := c.match(m.start)
	h.ex = ex
	method := ""
	if ex != nil {
		method = ex.req.method
	}
	switch {
	case m.status >= 100 && m.status < 200 && m.status != 101:
		// Interim: the final response follows.
		if ex != nil && len(ex.interim) < maxInterim {
			ex.interim = append(ex.interim, m.status)
		} else if ex != nil {
			ex.moreInterim++
		}
		h.msg, h.ex = nil, nil
		h.state = stStart
	case ex != nil && ex.carry != nil && m.status != 101:
		ex.carry.Headers(proto.Server, m.headers)
		fallthrough
	default:
		c.responseBody(h, m, method, t)
	}
}

// responseBody sets up reading a final response's body.
func (c *conn) responseBody(h *half, m *message, method string, t time.Time) {
	switch {
	case m.status == 101, method == "HEAD", m.status == 204, m.status == 304,
		method == "CONNECT" && m.status >= 200 && m.status < 300:
		c.complete(h, t)
	case m.chunked:
		h.state = stChunkSize
	case m.length >= 0:
		h.remaining = m.length
		h.state = stBody
		if m.length == 0 {
			c.complete(h, t)
		}
	default:
		h.state = stUntilClose
	}
}

// match finds the exchange a response starting at start answers.
func (c *conn) match(start time.Time) *exchange {
	if c.resp.resync {
		// Responses were lost in a gap: requests sent before the one this
		// response most likely answers got theirs in the gap.
		c.resp.resync = false
		for {
			next, ok := c.pending.At(1)
			if !ok || next.req.start.After(start) {
				break
			}
			ex, _ := c.pending.TakeOldest()
			c.emit(ex, "truncated: response lost in a capture gap")
		}
	}
	ex, ok := c.pending.Oldest()
	if !ok || ex.req.start.After(start) {
		return nil
	}
	return ex
}

// complete finishes h's current message at time t.
func (c *conn) complete(h *half, t time.Time) {
	m := h.msg
	m.end, m.done = t, true
	if len(m.trailers) > 0 && h.ex != nil && h.ex.carry != nil {
		h.ex.carry.Headers(h.role, m.trailers)
	}
	h.state = stStart
	h.msg = nil
	if h.role == proto.Client {
		if m.upgrade != "" || m.method == "CONNECT" {
			// Hold what the client sends next until the response says
			// whether the connection switches protocols.
			h.state = stHold
		}
		return
	}
	ex := h.ex
	h.ex = nil
	if ex == nil {
		c.emitOrphan(m, "")
		return
	}
	ex.resp = m
	c.popPending(ex)
	switched := m.status == 101 || (ex.req.method == "CONNECT" && m.status >= 200 && m.status < 300)
	c.emit(ex, "")
	if !switched && ex.carry == nil && c.req.state != stHold && c.req.msg != ex.req {
		// Nothing refers to ex or its messages any more: the request half
		// has moved on to its next message, or waits for one and forgets
		// its last exchange when it starts (stStart).
		if c.req.ex == ex && c.req.msg == nil {
			c.req.ex = nil
		}
		if c.req.ex != ex {
			c.recycle(ex)
		}
	}
	if switched {
		c.req.state, c.resp.state = stOpaque, stOpaque
		// What the client sent while the switch was pending is the new
		// protocol's: it goes on with the rest (HandOver).
		for _, hb := range c.req.held {
			c.handover.Chunks = append(c.handover.Chunks, proto.Chunk{Role: proto.Client, Data: hb.b, T: hb.t})
		}
		// The request's method and times: after `Upgrade: h2c` it is
		// stream 1 of the new connection, answered there.
		c.handover.Context = proto.Extra{{Key: "target", Value: ex.req.target}, {Key: "method", Value: ex.req.method},
			{Key: "request_start", Value: ex.req.start}, {Key: "request_end", Value: ex.req.end}}
		for _, h := range []struct{ key, header string }{{"extensions", "sec-websocket-extensions"}, {"subprotocol", "sec-websocket-protocol"}} {
			if v := m.headers.Get(h.header); v != "" {
				c.handover.Context = append(c.handover.Context, proto.Field{Key: h.key, Value: v})
			}
		}
		c.req.held, c.req.heldSize = nil, 0
		name := m.upgrade
		if name == "" {
			name = ex.req.upgrade
		}
		if name == "" {
			name = "tunnel"
		}
		c.out.Upgrade(name)
		return
	}
	if c.req.state == stHold {
		// No switch: what the client sent meanwhile is HTTP again.
		c.req.state = stStart
		held := c.req.held
		c.req.held, c.req.heldSize = nil, 0
		for _, hb := range held {
			c.Feed(proto.Client, hb.b, hb.t)
		}
	}
}

func (c *conn) popPending(ex *exchange) { c.pending.Take(ex, nil) }

// abort ends h's current message with an error and puts h out of step. A
// request stays queued (its response may still come) and carries the error;
// a partial response is paired with the request it answers.
func (c *conn) abort(h *half, reason string) {
	m := h.msg
	if m != nil && h.state == stHeader && len(h.buf) > 0 {
		// The header block never completed: keep what its start line says.
		line := h.buf
		if i := indexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		c.startLine(h, string(trimCR(line)))
	}
	ex := h.ex
	h.buf = release(h.buf)
	h.state = stLost
	h.msg, h.ex = nil, nil
	if m == nil {
		h.resync = true
		return
	}
	if m.err == "" {
		m.err = reason
	}
	if h.role == proto.Client {
		h.resync = true
		if ex == nil {
			// Cut before its headers ended: queue it anyway, so that the
			// response, if any, pairs with it.
			h.msg = m
			c.queue(h)
			h.msg, h.ex = nil, nil
		}
		return
	}
	if ex == nil {
		ex = c.match(m.start)
	}
	h.resync = true
	if ex == nil {
		c.emitOrphan(m, reason)
		return
	}
	ex.resp = m
	c.popPending(ex)
	c.emit(ex, reason)
}

// Gap implements proto.StreamParser.
func (c *conn) Gap(r proto.Role, n int) {
	h := c.half(r)
	if h.ex != nil && h.ex.carry != nil && h.msg != nil {
		h.ex.carry.Gap(r)
	}
	switch h.state {
	case stBody, stChunkData:
		if n >= 0 && int64(n) <= h.remaining {
			h.msg.bodySize += int64(n)
			h.msg.missing += int64(n)
			h.remaining -= int64(n)
			if h.remaining == 0 {
				if h.state == stChunkData {
					h.state = stChunkEnd
				} else {
					c.complete(h, h.msg.last)
				}
			}
			return
		}
	case stUntilClose:
		if n >= 0 {
			h.msg.bodySize += int64(n)
			h.msg.missing += int64(n)
			return
		}
	case stStart, stLost:
		// Whole messages may have been lost.
		h.state = stLost
		h.resync = true
		return
	case stOpaque:
		return
	case stHold:
		h.held, h.heldSize = nil, 0
		h.state = stLost
		h.resync = true
		return
	}
	what := "bytes"
	if n >= 0 {
		what = strconv.Itoa(n) + " bytes"
	}
	c.abort(h, "truncated: "+what+" missing from the capture")
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	if reason == proto.EndMemory {
		// The bytes of a partial header block or line, and those held
		// after an upgrade request, are dropped unparsed.
		c.out.Skipped(len(c.req.buf) + len(c.resp.buf) + c.req.heldSize)
		c.req.held, c.req.heldSize = nil, 0
	}
	// A response delimited by the close is complete when the server closed.
	if h := &c.resp; h.state == stUntilClose {
		if reason == proto.EndFIN {
			c.complete(h, h.msg.last)
		} else {
			c.abort(h, "truncated: connection "+reason.String()+" before the body ended")
		}
	}
	for _, h := range []*half{&c.req, &c.resp} {
		if h.msg != nil {
			c.abort(h, "truncated: connection "+reason.String()+" during the "+kind(h)+" message")
		}
	}
	why := "no response"
	switch reason {
	case proto.EndRST:
		why = "no response: connection reset"
	case proto.EndCapture:
		why = "no response: capture ended"
	case proto.EndIdle:
		why = "no response: connection idle"
	case proto.EndMemory:
		why = "truncated: connection ended early for memory bounds before the response"
	}
	c.pending.Expire(time.Time{}, func(ex *exchange) {
		err := why
		if !ex.req.done && ex.req.err != "" {
			err = ex.req.err
		}
		c.emit(ex, err)
	})
}

func kind(h *half) string {
	if h.role == proto.Client {
		return "request"
	}
	return "response"
}

// HandOver implements proto.HandingOver: the bytes received after a
// protocol switch, in capture order (the client's held during the switch
// may be older than the rest of the segment that carried the 101).
func (c *conn) HandOver() proto.Handover {
	out := c.handover
	c.handover = proto.Handover{}
	slices.SortStableFunc(out.Chunks, func(a, b proto.Chunk) int { return a.T.Compare(b.T) })
	return out
}

// Buffered implements proto.Buffering: the partial lines and header blocks,
// the bytes held after an upgrade request, and the messages kept (requests
// waiting for their response, the response in progress) with their bodies.
func (c *conn) Buffered() int {
	n := cap(c.req.buf) + cap(c.resp.buf) + c.req.heldSize
	for _, ch := range c.handover.Chunks {
		n += len(ch.Data)
	}
	for ex := range c.pending.All() {
		n += ex.req.size()
		if cb, ok := ex.carry.(proto.CarriedBuffering); ok {
			n += cb.Buffered()
		}
	}
	if m := c.resp.msg; m != nil {
		n += m.size()
	}
	return n
}

// Approximate costs of a message's structures beyond its bytes.
const (
	msgSize   = 512 // a message, its exchange and their bookkeeping
	fieldSize = 32  // a header field's strings
)

// size returns about the memory m takes.
func (m *message) size() int {
	return msgSize + m.headerSize + m.trailerBytes + len(m.trailers)*fieldSize + cap(m.body)
}

// appendBounded appends b to buf, growing it at most to max bytes of
// capacity: append's doubling would give a block just over half the limit
// twice the room it can use.
func appendBounded(buf, b []byte, limit int) []byte {
	if need := len(buf) + len(b); need > cap(buf) {
		n := max(min(2*cap(buf), limit), need, min(512, limit))
		grown := make([]byte, len(buf), n)
		copy(grown, buf)
		buf = grown
	}
	return append(buf, b...)
}

// keepCap is the capacity of a line or header buffer kept for the next
// message; a bigger one is let go when its message is parsed.
const keepCap = 4 << 10

// release empties buf, letting it go if it grew large.
func release(buf []byte) []byte {
	if cap(buf) > keepCap {
		return nil
	}
	return buf[:0]
}

// addBody counts body bytes and keeps the first ones for display; a
// carried protocol gets them all.
func (c *conn) addBody(h *half, b []byte) {
	m := h.msg
	m.bodySize += int64(len(b))
	if h.ex != nil && h.ex.carry != nil {
		h.ex.carry.Body(h.role, b)
	}
	if c.lim.Summary {
		return
	}
	if room := c.lim.MaxBodyCapture - len(m.body); room > 0 {
		if m.body == nil {
			n := c.lim.MaxBodyCapture
			if m.length >= 0 && m.length < int64(n) {
				n = int(m.length)
			}
			m.body = make([]byte, 0, n)
		}
		m.body = append(m.body, b[:min(room, len(b))]...)
	}
}

func (c *conn) emitOrphan(m *message, reason string) {
	err := "no request"
	if reason != "" {
		err = reason
	}
	c.emit(&exchange{resp: m}, err)
}

// emit builds the call for ex. reason is the error, if any; a message cut
// by a gap gets one even when it completed.
func (c *conn) emit(ex *exchange, reason string) {
	req, resp := ex.req, ex.resp
	if reason == "" && req != nil && req.err != "" {
		reason = req.err
	}
	call := &proto.Call{Proto: "http", Error: reason}
	if req != nil {
		call.TS = req.start
		call.Method, call.Path = req.method, req.target
		c.message(&call.Request, req)
	}
	if resp != nil {
		if req == nil {
			call.TS = resp.start
		}
		if resp.status > 0 {
			call.Status = strconv.Itoa(resp.status)
		}
		c.message(&call.Response, resp)
		if req != nil {
			reqEnd := req.end
			if reqEnd.IsZero() {
				reqEnd = req.last
			}
			if d := resp.start.Sub(reqEnd); d > 0 {
				call.LatencyNS = int64(d)
			}
		}
	}
	missing := int64(0)
	version := ""
	if req != nil {
		missing += req.missing
		version = req.version
	}
	if resp != nil {
		missing += resp.missing
		if resp.version != "" {
			version = resp.version
		}
	}
	if call.Error == "" && missing > 0 {
		call.Error = "truncated: " + strconv.FormatInt(missing, 10) + " body bytes missing from the capture"
	}
	extra := make(proto.Extra, 0, 2)
	if version != "" {
		extra = append(extra, proto.Field{Key: "version", Value: boxVersion(version)})
	}
	if len(ex.interim) > 0 {
		extra = append(extra, proto.Field{Key: "interim", Value: ex.interim})
	}
	if ex.moreInterim > 0 {
		extra = append(extra, proto.Field{Key: "interim_more", Value: ex.moreInterim})
	}
	if missing > 0 {
		extra = append(extra, proto.Field{Key: "missing_bytes", Value: missing})
	}
	if resp != nil && resp.status == 101 && resp.upgrade != "" {
		extra = append(extra, proto.Field{Key: "upgrade", Value: resp.upgrade})
	}
	if req != nil && len(req.trailers) > 0 {
		extra = append(extra, proto.Field{Key: "request_trailers", Value: req.trailers.Map()})
	}
	if resp != nil && len(resp.trailers) > 0 {
		extra = append(extra, proto.Field{Key: "response_trailers", Value: resp.trailers.Map()})
	}
	call.Extra = extra
	if ex.carry == nil {
		c.out.Emit(call)
		return
	}
	for _, cc := range ex.carry.Finish(call) {
		c.out.Emit(cc)
	}
}

// The common versions, boxed once: putting a string in an interface value
// allocates, and every call carries its version.
var (
	boxHTTP11 any = "HTTP/1.1"
	boxHTTP10 any = "HTTP/1.0"
)

func boxVersion(v string) any {
	switch v {
	case "HTTP/1.1":
		return boxHTTP11
	case "HTTP/1.0":
		return boxHTTP10
	}
	return v
}

// message fills a proto.Message from m.
func (c *conn) message(out *proto.Message, m *message) {
	out.BodySize = m.bodySize
	if c.lim.Summary {
		return // the framing headers parsed are not the message's headers
	}
	out.Headers = m.headers
	if len(m.body) == 0 {
		return
	}
	body, note := proto.DecodeBody(m.body, m.encoding, c.lim.MaxBodyDisplay)
	out.SetBody(body, c.lim.MaxBodyDisplay)
	if note {
		out.BodyTruncated = true
	}
	if int64(len(m.body)) < m.bodySize && m.encoding == "" {
		out.BodyTruncated = true
	}
}
