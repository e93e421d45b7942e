package postgres

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/internal/sqltext"
	"github.com/wirescope/wirescope/dissect/proto"
)

// Operation kinds: what a client message asks of the server, in the order
// the server answers.
const (
	opStartup = iota
	opQuery
	opParse
	opBind
	opDescribe
	opExecute
	opClose
	opSync
	opFunction
)

var opNames = [...]string{opStartup: "STARTUP", opQuery: "QUERY", opParse: "PARSE", opBind: "BIND",
	opDescribe: "DESCRIBE", opExecute: "EXECUTE", opClose: "CLOSE", opSync: "SYNC", opFunction: "FUNCTION CALL"}

// maxStatements bounds the prepared statements and portals followed per
// connection; past it, one is forgotten for each new name.
const maxStatements = 4096

// op is a client message waiting for the server's answer.
type op struct {
	kind  int
	call  *proto.Call // the call it makes (STARTUP, QUERY, EXECUTE, FUNCTION CALL; PARSE and BIND when they fail)
	sql   string      // the statement (Parse, Bind) for a failure's call
	start time.Time   // its first byte
	end   time.Time   // its last byte
	// What the server answered so far.
	answered bool
	rows     int64
	tags     []string
	respSize int64
	copy     string
	notices  []string
	columns  []string
	render   []byte
	cut      bool
	failed   string // the SQLSTATE of the first error
}

func (o *op) size() int { return 256 + len(o.sql) + len(o.render) + 32*len(o.tags) }

// side is one direction's message framing.
type side struct {
	client  bool
	untyped bool // the next message has no type byte (a startup-phase request)
	hdr     [5]byte
	hn      int
	typ     byte
	left    int64 // body bytes to come
	length  int64 // body length
	body    []byte
	keep    int // body bytes kept for this message
	keepMax int
	start   time.Time
	lost    bool
}

// conn parses one connection.
type conn struct {
	out        proto.Emitter
	lim        proto.Limits
	side       [2]side
	ops        proto.Pending[struct{}, *op]
	statements map[string]string
	portals    map[string]string
	// The session, as the startup and the server's reports set it.
	user, database, app, auth, serverVersion string
	pid                                      int64
	ssl                                      string // "requested", "refused by the server"
	awaitSSL                                 bool   // an SSL or GSSAPI request waits for its one-byte answer
	gss                                      bool
	opaque                                   bool // after a switch nobody reads (GSSAPI encryption)
	handover                                 []proto.Chunk
	bindSize                                 int64
	started                                  bool // the client's first bytes were seen
	norm                                     sqltext.Cache
	free                                     []*op // ended operations that made no call, for reuse
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	if c.opaque {
		return
	}
	i := idx(r)
	s := &c.side[i]
	if i == 0 && !c.started && len(data) > 0 {
		// A connection seen from its start begins with an untyped
		// request, whose length's first byte is 0; one seen from its
		// middle with a typed message.
		c.started = true
		s.untyped = data[0] == 0
	}
	for len(data) > 0 {
		if i == 1 && c.awaitSSL && s.hn == 0 && s.left == 0 {
			data = c.sslAnswer(data, t)
			if c.opaque || c.handover != nil {
				return
			}
			continue
		}
		if s.lost {
			var ok bool
			if data, ok = c.resync(s, data); !ok {
				return
			}
		}
		if s.left == 0 && s.hn == 0 {
			s.start = t
		}
		// The header: a type byte (none for a startup-phase request) and
		// the length, which counts itself.
		hlen := 5
		if s.untyped {
			hlen = 4
		}
		if s.hn < hlen {
			n := copy(s.hdr[s.hn:hlen], data)
			s.hn += n
			data = data[n:]
			if s.hn < hlen {
				return
			}
			l := int64(binary.BigEndian.Uint32(s.hdr[hlen-4:]))
			s.typ = 0
			if !s.untyped {
				s.typ = s.hdr[0]
			}
			if l < 4 || l-4 > maxMessage || (s.untyped && (l < 8 || l > 10000)) {
				c.malformed(s, "a message length of "+strconv.FormatInt(l, 10), t)
				continue
			}
			s.length, s.left = l-4, l-4
			s.keep = c.keepFor(s)
			s.body = s.body[:0]
		}
		n := int64(len(data))
		if n > s.left {
			n = s.left
		}
		if room := s.keep - len(s.body); room > 0 {
			s.body = append(s.body, data[:min(int64(room), n)]...)
		}
		s.left -= n
		data = data[n:]
		if s.left > 0 {
			return
		}
		s.hn = 0
		cut := int64(len(s.body)) < s.length
		if s.client {
			c.clientMessage(s, cut, t)
		} else {
			c.serverMessage(s, cut, t)
		}
		if cap(s.body) > 64<<10 {
			s.body = nil
		}
		if c.awaitSSL && i == 1 {
			continue
		}
	}
}

// keepFor says how much of the message's body is kept: what calls need,
// never a password, and rows only for display.
func (c *conn) keepFor(s *side) int {
	if s.client {
		switch s.typ {
		case 'p', 'd':
			return 0 // passwords, SASL responses; COPY data is counted
		}
		return s.keepMax
	}
	switch s.typ {
	case 'D', 'd':
		if c.lim.Summary {
			return 0
		}
		return c.lim.MaxBodyDisplay
	}
	return s.keepMax
}

// sslAnswer reads the server's one byte answer to an SSL or GSSAPI
// request.
func (c *conn) sslAnswer(data []byte, t time.Time) []byte {
	c.awaitSSL = false
	switch data[0] {
	case 'S':
		if c.gss {
			break
		}
		c.ssl = "on"
		c.out.Upgrade(proto.SwitchTLS)
		c.handover = []proto.Chunk{}
		if len(data) > 1 {
			c.handover = append(c.handover, proto.Chunk{Role: proto.Server, Data: bytes.Clone(data[1:]), T: t})
		}
		return nil
	case 'G':
		if !c.gss {
			break
		}
		if fn, ok := c.out.(proto.FlowNoter); ok {
			fn.Encrypted("not decryptable: GSSAPI encryption")
		}
		c.opaque = true
		return nil
	case 'N':
		if c.gss {
			c.ssl = "GSSAPI encryption refused by the server"
		} else {
			c.ssl = "refused by the server"
		}
		c.side[0].untyped = true
		return data[1:]
	}
	// An old server answers with an error message.
	return data
}

// HandOver implements proto.HandingOver: after an SSLRequest answered
// 'S', the TLS bytes the server sent with the answer.
func (c *conn) HandOver() proto.Handover {
	h := proto.Handover{Chunks: c.handover}
	c.handover = nil
	return h
}

// resync looks for a message to start from after a gap or bytes that did
// not parse: the client's next Sync or simple Query, the server's next
// ReadyForQuery. It returns the data from there.
func (c *conn) resync(s *side, data []byte) ([]byte, bool) {
	if s.client {
		for i := 0; i+5 <= len(data); i++ {
			switch data[i] {
			case 'S':
				if bytes.HasPrefix(data[i:], []byte("S\x00\x00\x00\x04")) {
					s.lost, s.hn, s.left = false, 0, 0
					c.out.Skipped(i)
					return data[i:], true
				}
			case 'Q':
				if v, _ := (Protocol{}).DetectStream(data[i:], 0, 0); v == proto.Yes {
					s.lost, s.hn, s.left = false, 0, 0
					c.out.Skipped(i)
					return data[i:], true
				}
			}
		}
	} else {
		if i := bytes.Index(data, []byte("Z\x00\x00\x00\x05")); i >= 0 && i+6 <= len(data) {
			s.lost, s.hn, s.left = false, 0, 0
			c.out.Skipped(i + 6)
			return data[i+6:], true
		}
	}
	c.out.Skipped(len(data))
	return nil, false
}

// malformed reports bytes that do not parse and looks for the next
// message.
func (c *conn) malformed(s *side, why string, t time.Time) {
	s.lost, s.hn, s.left = true, 0, 0
	s.untyped = false
	if s.client {
		call := &proto.Call{Proto: "postgres", TS: s.start}
		call.Fail(proto.Malformed, why)
		c.out.Emit(call)
		return
	}
	c.flush("malformed: "+why, proto.Malformed)
}

// flush reports every operation waiting, with problem p and the text why.
func (c *conn) flush(why string, p proto.Problem) {
	c.ops.Expire(time.Time{}, func(o *op) {
		if o.call == nil {
			return
		}
		detail := why
		if i := strings.IndexByte(why, ':'); i >= 0 {
			detail = strings.TrimSpace(why[i+1:])
		}
		c.finish(o)
		o.call.Status = ""
		o.call.Fail(p, detail)
		c.out.Emit(o.call)
	})
}

// str reads a NUL-terminated string from b, returning it and the rest.
func str(b []byte) ([]byte, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

// clientMessage handles a message the client sent.
func (c *conn) clientMessage(s *side, cut bool, t time.Time) {
	body := s.body
	size := s.length + 5
	if s.untyped {
		c.startupMessage(s, t)
		return
	}
	switch s.typ {
	case 'Q':
		sql, _, _ := str(body)
		call := c.newCall("QUERY", s.start, sql, cut)
		call.Request.BodySize = size
		c.add(&op{kind: opQuery, call: call, start: s.start, end: t})
	case 'P':
		name, rest, _ := str(body)
		text, _, _ := str(rest)
		// A driver parses the same statement again and again (the
		// unnamed one): keep the string it has.
		sql, ok := c.statements[string(name)]
		if !ok || sql != string(text) {
			sql = string(text)
			c.remember(c.statements, string(name), sql)
		}
		c.bindSize = size
		c.add(c.newOp(opParse, sql, s.start, t))
	case 'B':
		portal, rest, _ := str(body)
		stmt, _, _ := str(rest)
		sql := c.statements[string(stmt)]
		if old, ok := c.portals[string(portal)]; !ok || old != sql {
			c.remember(c.portals, string(portal), sql)
		}
		c.bindSize += size
		c.add(c.newOp(opBind, sql, s.start, t))
	case 'E':
		portal, _, _ := str(body)
		sql, known := c.portals[string(portal)]
		call := c.newCall("EXECUTE", s.start, []byte(sql), false)
		if !known {
			call.Extra.Set("statement", "not seen: the capture began after its Parse")
		}
		if len(portal) > 0 {
			call.Extra.Set("portal", string(portal))
		}
		call.Request.BodySize = size + c.bindSize
		c.bindSize = 0
		c.add(&op{kind: opExecute, call: call, start: s.start, end: t})
	case 'D':
		c.add(c.newOp(opDescribe, "", s.start, t))
	case 'C':
		if len(body) > 0 {
			name, _, _ := str(body[1:])
			if body[0] == 'S' {
				delete(c.statements, string(name))
			} else {
				delete(c.portals, string(name))
			}
		}
		c.add(c.newOp(opClose, "", s.start, t))
	case 'S':
		c.add(c.newOp(opSync, "", s.start, t))
	case 'F':
		call := &proto.Call{Proto: "postgres", TS: s.start, Method: "FUNCTION CALL"}
		if len(body) >= 4 {
			call.Path = "function " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(body)), 10)
		}
		call.Request.BodySize = size
		c.add(&op{kind: opFunction, call: call, start: s.start, end: t})
	case 'd', 'c', 'f':
		// COPY FROM STDIN's data, its end or its failure: part of the
		// query that started the copy.
		if o := c.copying(); o != nil {
			o.call.Request.BodySize += size
			if s.typ == 'f' {
				msg, _, _ := str(body)
				o.call.Extra.Set("copy_failed", string(msg))
			}
		}
	case 'p':
		// A password or SASL message: counted on the startup, never read.
		if o, ok := c.ops.Oldest(); ok && o.kind == opStartup {
			o.call.Request.BodySize += size
		}
	case 'H', 'X':
		// Flush asks nothing answered on its own; Terminate ends.
	default:
		call := &proto.Call{Proto: "postgres", TS: s.start}
		call.Fail(proto.Malformed, "an unknown message type "+strconv.QuoteRune(rune(s.typ)))
		c.out.Emit(call)
		s.lost = true
	}
}

// copying returns the query or execute a COPY FROM STDIN belongs to.
func (c *conn) copying() *op {
	for o := range c.ops.All() {
		if o.copy == "in" && o.call != nil {
			return o
		}
	}
	return nil
}

// remember notes a statement or portal, bounded.
func (c *conn) remember(m map[string]string, name, sql string) {
	if _, ok := m[name]; !ok && len(m) >= maxStatements {
		for k := range m {
			delete(m, k)
			break
		}
	}
	m[name] = sql
}

// newCall starts a call carrying a statement.
func (c *conn) newCall(method string, at time.Time, sql []byte, cut bool) *proto.Call {
	call := &proto.Call{Proto: "postgres", TS: at, Method: method, Path: c.norm.Normalize(sql, sqltext.PostgreSQL), Extra: make(proto.Extra, 0, 6)}
	if !c.lim.Summary {
		// The statement whole, up to the capture limit, not the display
		// limit: it is what a reader of the call needs.
		// Passwords in CREATE/ALTER ROLE … PASSWORD '…' are masked.
		call.Request.SetBody(bytes.Clone(sqltext.RedactSecrets(sql, sqltext.PostgreSQL)), c.lim.MaxBodyCapture)
		call.Request.BodyTruncated = call.Request.BodyTruncated || cut
	}
	c.session(call)
	return call
}

// session puts what is known of the session on a call.
func (c *conn) session(call *proto.Call) {
	if c.user != "" {
		call.Extra.Set("user", c.user)
	}
	if c.database != "" {
		call.Extra.Set("database", c.database)
	}
	if c.app != "" {
		call.Extra.Set("application_name", c.app)
	}
}

// add queues an operation for its answer.
func (c *conn) add(o *op) {
	if old, full := c.ops.Add(struct{}{}, o.start, o); full && old.call != nil {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" messages waiting for answers")
		c.out.Emit(old.call)
	}
}

// startupMessage handles a request of the startup phase.
func (c *conn) startupMessage(s *side, t time.Time) {
	s.untyped = false
	body := s.body
	if len(body) < 4 {
		c.malformed(s, "a startup message of "+strconv.Itoa(len(body))+" bytes", t)
		return
	}
	code := binary.BigEndian.Uint32(body)
	switch code {
	case codeSSL, codeGSSENC:
		c.awaitSSL, c.gss = true, code == codeGSSENC
		c.ssl = "requested"
		s.untyped = true // a startup message follows an 'N'
		return
	case codeCancel:
		call := &proto.Call{Proto: "postgres", TS: s.start, Method: "CANCEL", OneWay: true}
		if len(body) >= 8 {
			call.Extra.Set("backend_pid", int64(binary.BigEndian.Uint32(body[4:])))
		}
		call.Request.BodySize = s.length + 4
		c.out.Emit(call)
		return
	}
	call := &proto.Call{Proto: "postgres", TS: s.start, Method: "STARTUP"}
	call.Request.BodySize = s.length + 4
	if code>>16 != 3 {
		call.Fail(proto.Malformed, "protocol version "+strconv.Itoa(int(code>>16))+"."+strconv.Itoa(int(code&0xffff))+" is not supported")
		c.out.Emit(call)
		return
	}
	var shown []byte
	params := body[4:]
	for len(params) > 1 {
		k, rest, ok := str(params)
		if !ok {
			break
		}
		v, rest2, _ := str(rest)
		params = rest2
		switch string(k) {
		case "user":
			c.user = string(v)
		case "database":
			c.database = string(v)
		case "application_name":
			c.app = string(v)
		}
		if len(shown) > 0 {
			shown = append(shown, ' ')
		}
		shown = append(append(append(shown, k...), '='), v...)
	}
	if c.database == "" {
		c.database = c.user
	}
	call.Path = c.database
	if !c.lim.Summary {
		call.Request.SetBody(shown, c.lim.MaxBodyDisplay)
	}
	c.session(call)
	if code&0xffff != 0 {
		call.Extra.Set("protocol", "3."+strconv.Itoa(int(code&0xffff)))
	}
	c.add(&op{kind: opStartup, call: call, start: s.start, end: t})
}

// head returns the operation the server's answers go to.
func (c *conn) head() *op {
	o, _ := c.ops.Oldest()
	return o
}

// serverMessage handles a message the server sent.
func (c *conn) serverMessage(s *side, cut bool, t time.Time) {
	body := s.body
	size := s.length + 5
	o := c.head()
	if o != nil {
		o.respSize += size
		if !o.answered {
			o.answered = true
			if o.call != nil {
				o.call.LatencyNS = proto.Latency(o.end, s.start)
			}
		}
	}
	switch s.typ {
	case 'R':
		c.authentication(o, body)
	case 'S':
		name, rest, _ := str(body)
		value, _, _ := str(rest)
		switch string(name) {
		case "server_version":
			c.serverVersion = string(value)
		case "application_name":
			c.app = string(value)
		}
	case 'K':
		if len(body) >= 4 {
			c.pid = int64(binary.BigEndian.Uint32(body))
		}
	case 'v':
		if o != nil && o.kind == opStartup && len(body) >= 4 {
			o.call.Extra.Set("protocol_negotiated", "3."+strconv.FormatUint(uint64(binary.BigEndian.Uint32(body)), 10))
		}
	case 'Z':
		c.readyForQuery(body, t)
	case 'E':
		c.errorResponse(body, s.start, t)
	case 'N':
		if o != nil && len(o.notices) < 5 {
			f := fields(body)
			o.notices = append(o.notices, f['S']+": "+f['M'])
		}
	case 'A':
		c.notification(body, s.start, size)
	case '1':
		c.complete(opParse, t)
	case '2':
		c.complete(opBind, t)
	case '3':
		c.complete(opClose, t)
	case 't':
		// A statement's parameters: its RowDescription or NoData ends the
		// Describe.
	case 'n':
		if o != nil && o.kind == opDescribe {
			c.complete(opDescribe, t)
		}
	case 'T':
		if o != nil && o.kind == opDescribe {
			c.complete(opDescribe, t)
			// A portal's description: the columns of the Execute next.
			if o = c.head(); o == nil || o.kind != opExecute {
				return
			}
		}
		if o != nil {
			o.columns = columns(body, o.columns[:0])
			if !c.lim.Summary && o.call != nil {
				c.renderRow(o, o.columns, false)
			}
		}
	case 'D':
		if o != nil {
			o.rows++
			if !c.lim.Summary && o.call != nil {
				c.renderRow(o, values(body, cut), cut)
			}
		}
	case 'C':
		tag, _, _ := str(body)
		if o == nil || (o.kind != opQuery && o.kind != opExecute && o.kind != opFunction) {
			c.orphan("OK", string(tag), s.start, size)
			return
		}
		if len(o.tags) < 32 {
			o.tags = append(o.tags, string(tag))
		}
		if o.kind == opExecute {
			c.complete(opExecute, t)
		}
	case 's':
		if o != nil && o.kind == opExecute {
			o.call.Extra.Set("suspended", true)
			c.complete(opExecute, t)
		}
	case 'I':
		if o != nil && o.kind == opExecute {
			o.tags = append(o.tags, "EMPTY")
			c.complete(opExecute, t)
		} else if o != nil && len(o.tags) < 32 {
			o.tags = append(o.tags, "EMPTY")
		}
	case 'G', 'H', 'W':
		if o != nil {
			o.copy = map[byte]string{'G': "in", 'H': "out", 'W': "both"}[s.typ]
		}
	case 'd', 'c':
		// COPY TO STDOUT's data and end: counted on the query.
	case 'V':
		// A function call's result: its ReadyForQuery ends the call.
	default:
		c.malformed(s, "an unknown message type "+strconv.QuoteRune(rune(s.typ)), t)
	}
}

// authentication reads an Authentication message during the startup.
func (c *conn) authentication(o *op, body []byte) {
	if o == nil || o.kind != opStartup || len(body) < 4 {
		return
	}
	switch binary.BigEndian.Uint32(body) {
	case 0:
		if c.auth == "" {
			c.auth = "trust"
		}
	case 2:
		c.auth = "Kerberos V5"
	case 3:
		c.auth = "password"
	case 5:
		c.auth = "md5"
	case 7:
		c.auth = "GSSAPI"
	case 9:
		c.auth = "SSPI"
	case 10:
		// The SASL mechanisms offered; the client's choice is not read
		// (its message is a password message): say what was offered.
		var mechs []string
		rest := body[4:]
		for len(rest) > 1 {
			m, r, ok := str(rest)
			if !ok || len(m) == 0 {
				break
			}
			mechs = append(mechs, string(m))
			rest = r
		}
		c.auth = "SASL " + strings.Join(mechs, ",")
	}
}

// readyForQuery ends a startup, a simple query, a function call or a
// Sync.
func (c *conn) readyForQuery(body []byte, t time.Time) {
	for {
		o := c.head()
		if o == nil {
			return
		}
		switch o.kind {
		case opStartup, opQuery, opFunction, opSync:
			c.ops.TakeOldest()
			if len(body) > 0 && o.call != nil && body[0] == 'E' && o.failed == "" {
				o.call.Extra.Set("transaction", "failed")
			}
			c.emit(o)
			return
		}
		// Extended messages still waiting when the ReadyForQuery comes
		// were skipped by the server (after an error): they end here.
		c.ops.TakeOldest()
		c.skipped(o, "")
	}
}

// complete ends the oldest operation of kind (ParseComplete, BindComplete,
// CloseComplete, the end of a Describe or an Execute).
func (c *conn) complete(kind int, t time.Time) {
	o := c.head()
	if o == nil {
		return
	}
	if o.kind != kind {
		// Out of step (a capture that began mid-batch): skip to the
		// first operation of that kind, if any.
		found := false
		for x := range c.ops.All() {
			if x.kind == kind {
				found = true
				break
			}
		}
		if !found {
			return
		}
		for o.kind != kind {
			c.ops.TakeOldest()
			c.skipped(o, "")
			o = c.head()
		}
	}
	c.ops.TakeOldest()
	c.emit(o)
}

// skipped emits an operation the server did not answer on its own.
func (c *conn) skipped(o *op, _ string) {
	if o.call == nil {
		return
	}
	if o.failed == "" {
		c.finish(o)
		o.call.Status = ""
		o.call.Fail(proto.Unanswered, "skipped by the server")
		c.out.Emit(o.call)
		return
	}
	c.emit(o)
}

// emit finishes an operation's call and emits it; operations that make
// no call (Parse, Bind, Describe, Close, Sync) end silently, and are kept
// for the next ones.
func (c *conn) emit(o *op) {
	if o.call == nil {
		if len(c.free) < 16 {
			*o = op{}
			c.free = append(c.free, o)
		}
		return
	}
	c.finish(o)
	c.out.Emit(o.call)
}

// newOp returns an operation that makes no call of its own, reusing one
// that ended: an extended-protocol batch is five of them per Execute.
func (c *conn) newOp(kind int, sql string, start, end time.Time) *op {
	var o *op
	if n := len(c.free); n > 0 {
		o, c.free = c.free[n-1], c.free[:n-1]
	} else {
		o = &op{}
	}
	o.kind, o.sql, o.start, o.end = kind, sql, start, end
	return o
}

// finish puts what the server answered on the operation's call.
func (c *conn) finish(o *op) {
	call := o.call
	call.Response.BodySize = o.respSize
	if call.Status == "" {
		call.Status = "OK"
		if o.failed != "" {
			call.Status = o.failed
		}
	}
	switch len(o.tags) {
	case 0:
	case 1:
		call.Extra.Set("tag", o.tags[0])
	default:
		call.Extra.Set("tags", o.tags)
	}
	var rows int64
	counted := false
	for _, tag := range o.tags {
		if n, ok := tagRows(tag); ok {
			rows += n
			counted = true
		}
	}
	if !counted && o.rows > 0 {
		rows, counted = o.rows, true
	}
	if counted {
		call.Extra.Set("rows", rows)
	}
	if o.copy != "" {
		call.Extra.Set("copy", o.copy)
	}
	if len(o.notices) > 0 {
		call.Extra.Set("notices", o.notices)
	}
	if o.kind == opStartup {
		if c.auth != "" {
			call.Extra.Set("auth", c.auth)
		}
		if c.serverVersion != "" {
			call.Extra.Set("server_version", c.serverVersion)
		}
		if c.pid != 0 {
			call.Extra.Set("backend_pid", c.pid)
		}
		if c.ssl != "" {
			call.Extra.Set("ssl", c.ssl)
		}
	}
	if len(o.render) > 0 && !c.lim.Summary && call.Response.Body == "" {
		call.Response.SetBody(o.render, c.lim.MaxBodyDisplay)
		call.Response.BodyTruncated = call.Response.BodyTruncated || o.cut
	}
}

// tagRows reads the row count of a command tag: the last number of
// "SELECT 3", "INSERT 0 1", "UPDATE 2", "COPY 5".
func tagRows(tag string) (int64, bool) {
	i := strings.LastIndexByte(tag, ' ')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(tag[i+1:], 10, 64)
	return n, err == nil
}

// errorResponse handles an ErrorResponse: the operation it answers fails;
// in a batch of the extended protocol the server skips what follows up to
// the Sync, and the Execute among them fails with it.
func (c *conn) errorResponse(body []byte, at, t time.Time) {
	f := fields(body)
	code := f['C']
	if len(code) != 5 {
		code = "XX000"
	}
	o := c.head()
	if o == nil || o.kind == opSync {
		call := &proto.Call{Proto: "postgres", TS: at, Status: code}
		setError(call, f)
		call.Response.BodySize = int64(len(body) + 5)
		call.Fail(proto.Orphan, "")
		c.session(call)
		c.out.Emit(call)
		return
	}
	if o.failed == "" {
		o.failed = code
		if o.call != nil {
			setError(o.call, f)
		}
	}
	switch o.kind {
	case opStartup:
		// The server closes after refusing a startup.
		c.ops.TakeOldest()
		c.emit(o)
	case opQuery, opFunction:
		// Its ReadyForQuery ends it.
	default:
		// Extended protocol: the failed message, and those the server
		// skips after it up to the Sync.
		c.ops.TakeOldest()
		failedAt := opNames[o.kind]
		executed := o.kind == opExecute
		kind, sql, start, end := o.kind, o.sql, o.start, o.end // o is reused once emitted
		c.emit(o)
		for {
			next := c.head()
			if next == nil || next.kind == opSync {
				break
			}
			c.ops.TakeOldest()
			if next.kind == opExecute && next.call != nil {
				next.failed = code
				setError(next.call, f)
				next.call.Extra.Set("failed_at", strings.ToLower(failedAt))
				c.emit(next)
				executed = true
			}
		}
		if !executed && (kind == opParse || kind == opBind) {
			// A statement that failed before any Execute: a call of its
			// own (a prepared statement's syntax error).
			call := c.newCall(failedAt, start, []byte(sql), false)
			call.LatencyNS = proto.Latency(end, at)
			call.Status = code
			setError(call, f)
			call.Response.BodySize = int64(len(body) + 5)
			c.out.Emit(call)
		}
	}
}

// setError puts an error's fields on a call.
func setError(call *proto.Call, f map[byte]string) {
	if m := f['M']; m != "" {
		call.Extra.Set("error", m)
		if call.Response.Body == "" {
			call.Response.Body = m
		}
	}
	if s := f['V']; s != "" {
		call.Extra.Set("severity", s)
	} else if s := f['S']; s != "" {
		call.Extra.Set("severity", s)
	}
	if d := f['D']; d != "" {
		call.Extra.Set("detail", d)
	}
	if h := f['H']; h != "" {
		call.Extra.Set("hint", h)
	}
}

// fields reads an ErrorResponse's or NoticeResponse's fields.
func fields(body []byte) map[byte]string {
	f := make(map[byte]string, 8)
	for len(body) > 1 {
		k := body[0]
		if k == 0 {
			break
		}
		v, rest, _ := str(body[1:])
		switch k {
		case 'S', 'V', 'C', 'M', 'D', 'H':
			f[k] = string(v)
		}
		body = rest
	}
	return f
}

// notification emits a NOTIFY delivered to a listening session.
func (c *conn) notification(body []byte, at time.Time, size int64) {
	call := &proto.Call{Proto: "postgres", TS: at, Method: "NOTIFICATION", OneWay: true}
	if len(body) >= 4 {
		call.Extra.Set("sender_pid", int64(binary.BigEndian.Uint32(body)))
		channel, rest, _ := str(body[4:])
		payload, _, _ := str(rest)
		call.Path = string(channel)
		if !c.lim.Summary {
			call.Response.SetBody(bytes.Clone(payload), c.lim.MaxBodyDisplay)
		}
	}
	call.Response.BodySize = size
	c.session(call)
	c.out.Emit(call)
}

// orphan emits an answer no captured message asked for.
func (c *conn) orphan(status, tag string, at time.Time, size int64) {
	call := &proto.Call{Proto: "postgres", TS: at, Status: status}
	call.Extra.Set("tag", tag)
	call.Response.BodySize = size
	call.Fail(proto.Orphan, "")
	c.out.Emit(call)
}

// columns reads a RowDescription's column names.
func columns(body []byte, dst []string) []string {
	if len(body) < 2 {
		return dst
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	for i := 0; i < n && len(dst) < 256; i++ {
		name, r, ok := str(rest)
		if !ok || len(r) < 18 {
			break
		}
		dst = append(dst, string(name))
		rest = r[18:]
	}
	return dst
}

// values reads a DataRow's values as text (nil: NULL).
func values(body []byte, cut bool) []string {
	if len(body) < 2 {
		return nil
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	out := make([]string, 0, min(n, 64))
	for i := 0; i < n && len(out) < 64; i++ {
		if len(rest) < 4 {
			if cut {
				out = append(out, "…")
			}
			break
		}
		l := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if l < 0 {
			out = append(out, "NULL")
			continue
		}
		if int(l) > len(rest) {
			out = append(out, string(rest)+"…")
			break
		}
		out = append(out, string(rest[:l]))
		rest = rest[l:]
	}
	return out
}

// renderRow adds a line of tab-separated values to the call's display,
// within the display limit.
func (c *conn) renderRow(o *op, vals []string, cut bool) {
	if len(o.render) >= c.lim.MaxBodyDisplay {
		o.cut = true
		return
	}
	for i, v := range vals {
		if i > 0 {
			o.render = append(o.render, '\t')
		}
		o.render = append(o.render, v...)
	}
	o.render = append(o.render, '\n')
	if len(o.render) > c.lim.MaxBodyDisplay {
		o.render, o.cut = o.render[:c.lim.MaxBodyDisplay], true
	}
	o.cut = o.cut || cut
}

// Gap implements proto.StreamParser. Bytes missing inside a message are
// counted on it when they are rows or COPY data; otherwise the side looks
// for the next message it can start from, and the operations waiting when
// the server's bytes went missing are reported: their answers may be among
// them.
func (c *conn) Gap(r proto.Role, n int) {
	if c.opaque {
		return
	}
	i := idx(r)
	s := &c.side[i]
	if n >= 0 && int64(n) <= s.left && (s.typ == 'D' || s.typ == 'd') && !s.lost {
		// Inside a row or COPY data: counted, and nothing more of the
		// message kept (what follows the gap is not where it seems).
		s.left -= int64(n)
		s.keep = len(s.body)
		if o := c.head(); o != nil && o.call != nil {
			o.cut = true
			o.call.Extra.Set("bytes_missing", true)
		}
		return
	}
	what := "bytes"
	if n >= 0 {
		what = strconv.Itoa(n) + " bytes"
	}
	s.lost, s.hn, s.left = true, 0, 0
	if i == 1 {
		c.flush("truncated: the answer may be among "+what+" missing from the capture", proto.Truncated)
	}
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, _ time.Time) {
	why := "no response"
	switch reason {
	case proto.EndRST:
		why = "no response: connection reset"
	case proto.EndCapture:
		why = "no response: capture ended"
	case proto.EndIdle:
		why = "no response: connection idle"
	case proto.EndMemory:
		why = "truncated: connection ended early for memory bounds"
	}
	c.ops.Expire(time.Time{}, func(o *op) {
		if o.call == nil {
			return
		}
		if o.failed != "" {
			c.emit(o)
			return
		}
		c.finish(o)
		o.call.Status = ""
		switch {
		case o.kind == opStartup && o.answered && c.auth != "" && reason != proto.EndMemory:
			o.call.Fail(proto.Truncated, "the client left during authentication ("+c.auth+")")
		case reason == proto.EndMemory:
			o.call.Fail(proto.Truncated, why[len("truncated: "):])
		case o.answered:
			o.call.Fail(proto.Truncated, "connection "+reason.String()+" before the answer ended")
		case why == "no response":
			o.call.Fail(proto.Unanswered, "")
		default:
			o.call.Fail(proto.Unanswered, why[len("no response: "):])
		}
		c.out.Emit(o.call)
	})
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.ops.Kept() + 64*(len(c.statements)+len(c.portals)) + c.norm.Size()
	for k, v := range c.statements {
		n += len(k) + len(v)
	}
	for i := range c.side {
		n += cap(c.side[i].body)
	}
	return n
}
