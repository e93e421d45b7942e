package mysql

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/internal/sqltext"
	"github.com/wirescope/wirescope/dissect/proto"
)

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, stmts: map[uint32]string{}}
	c.ops.Max = l.MaxPending
	c.ops.Size = func(o *op) int { return 256 + len(o.sql) + len(o.render) }
	c.side[0].client = true
	return c
}

// Response states of an operation.
const (
	stFirst          = iota // its first packet
	stColumns               // column definitions to come (remaining)
	stColumnsEOF            // the EOF after the columns, unless deprecated
	stRows                  // rows, up to the terminating EOF or OK
	stPrepParams            // a prepared statement's parameter definitions
	stPrepParamsEOF         //
	stPrepColumns           // its column definitions
	stPrepColumnsEOF        //
	stInfile                // LOCAL INFILE data from the client, then OK or ERR
	stAuth                  // authentication exchange, then OK or ERR
)

// maxStatements bounds the prepared statements followed per connection.
const maxStatements = 4096

// op is a command (or the handshake) waiting for the server's answer.
type op struct {
	cmd       byte
	connect   bool
	call      *proto.Call
	sql       string // a COM_STMT_PREPARE's statement
	end       time.Time
	answered  bool
	state     int
	remaining uint64
	binary    bool // rows in the binary protocol (COM_STMT_EXECUTE)
	rows      int64
	sets      int
	affected  uint64
	insertID  uint64
	warnings  uint16
	info      string
	prepCols  uint64
	render    []byte
	cut       bool
	respSize  int64
	failed    bool
}

// side is one direction's packet framing.
type side struct {
	client bool
	hdr    [4]byte
	hn     int
	left   int // payload bytes of the physical packet to come
	seq    byte
	cont   bool  // the packet continues in the next (its physical part was 16 MiB - 1)
	parts  int64 // physical packets of the logical one
	length int64
	body   []byte
	keep   int
	start  time.Time
	lost   bool
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	side    [2]side
	ops     proto.Pending[struct{}, *op]
	stmts   map[uint32]string
	caps    uint32 // the capabilities both sides agreed (0: not seen)
	srvCaps uint32
	srvExt  uint32 // MariaDB's extended capabilities, from the greeting
	// cacheMetadata: MariaDB's MARIADB_CLIENT_CACHE_METADATA was agreed: a
	// result set's column count says whether its definitions follow.
	cacheMetadata bool
	greeted       bool // the greeting was seen: the handshake is under way
	commands      bool // the command phase began
	opaque        bool // TLS, or a replication stream: not read
	user          string
	database      string
	version       string
	plugin        string
	connID        uint32
	pending       int64 // bytes of COM_STMT_SEND_LONG_DATA for the next execute
	norm          sqltext.Cache
	handover      []proto.Chunk
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
	if s.lost {
		if !c.resync(s, data) {
			c.out.Skipped(len(data))
			return
		}
		s.lost = false
	}
	for len(data) > 0 && !c.opaque {
		if s.hn < 4 {
			if s.hn == 0 && !s.cont {
				s.start = t
			}
			n := copy(s.hdr[s.hn:], data)
			s.hn += n
			data = data[n:]
			if s.hn < 4 {
				return
			}
			s.left = int(s.hdr[0]) | int(s.hdr[1])<<8 | int(s.hdr[2])<<16
			if !s.cont {
				s.seq = s.hdr[3] // a continued packet's is its first part's
				s.length, s.parts = 0, 0
				s.body = s.body[:0]
				s.keep = c.keepFor(s)
			}
			s.cont = s.left == 0xffffff
			s.parts++
			if s.left == 0 && !s.cont {
				s.hn = 0
				c.packet(s, false, t)
				continue
			}
		}
		n := min(len(data), s.left)
		if room := s.keep - len(s.body); room > 0 {
			s.body = append(s.body, data[:min(room, n)]...)
		}
		s.left -= n
		s.length += int64(n)
		data = data[n:]
		if s.left > 0 {
			return
		}
		s.hn = 0
		if s.cont {
			continue
		}
		c.packet(s, int64(len(s.body)) < s.length, t)
		if cap(s.body) > 64<<10 {
			s.body = nil
		}
	}
	if c.opaque && len(data) > 0 && c.handover != nil {
		c.handover = append(c.handover, proto.Chunk{Role: r, Data: bytes.Clone(data), T: t})
	}
}

// keepFor says how much of a packet is kept: SQL whole (to the capture
// limit), rows only for display, never an auth response beyond what the
// handshake needs.
func (c *conn) keepFor(s *side) int {
	if s.client {
		return max(c.lim.MaxBodyCapture, c.lim.MaxHeaderBytes)
	}
	if o := c.head(); o != nil && o.state == stRows {
		if c.lim.Summary {
			return 9 // enough to tell a terminator from a row
		}
		return max(c.lim.MaxBodyDisplay, 9)
	}
	return c.lim.MaxHeaderBytes
}

// resync reports whether data starts a packet to read on from after a gap:
// a command (sequence 0) from the client, a response's first packet
// (sequence 1) from the server. Only a segment's start is tried: inside
// one, bytes that look so mostly are not.
func (c *conn) resync(s *side, data []byte) bool {
	if len(data) < 5 {
		return false
	}
	n := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	if n == 0 || n > 1<<24-1 {
		return false
	}
	s.hn, s.left, s.cont = 0, 0, false
	if s.client {
		_, known := commandNames[data[4]]
		return data[3] == 0 && known
	}
	return data[3] == 1 && (data[4] == 0x00 || data[4] == 0xff || data[4] == 0xfe || data[4] < 0xfb && n <= 9)
}

func (c *conn) head() *op {
	o, _ := c.ops.Oldest()
	return o
}

// packet handles a whole (logical) packet.
func (c *conn) packet(s *side, cut bool, t time.Time) {
	if s.client {
		c.clientPacket(s, cut, t)
	} else {
		c.serverPacket(s, t)
	}
}

func (c *conn) add(o *op) {
	if old, full := c.ops.Add(struct{}{}, o.call.TS, o); full {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" commands waiting for answers")
		c.out.Emit(old.call)
	}
}

func (c *conn) newCall(method string, at time.Time) *proto.Call {
	call := &proto.Call{Proto: "mysql", TS: at, Method: method}
	if c.user != "" {
		call.Extra.Set("user", c.user)
	}
	if c.database != "" {
		call.Extra.Set("database", c.database)
	}
	return call
}

// setSQL makes a statement the call's path (normalized) and body (whole).
func (c *conn) setSQL(call *proto.Call, sql []byte, cut bool) {
	call.Path = c.norm.Normalize(sql, sqltext.MySQL)
	if !c.lim.Summary {
		// Passwords in IDENTIFIED BY '…' and PASSWORD('…') are masked.
		call.Request.SetBody(bytes.Clone(sqltext.RedactSecrets(sql, sqltext.MySQL)), c.lim.MaxBodyCapture)
		call.Request.BodyTruncated = call.Request.BodyTruncated || cut
	}
}

// clientPacket handles a packet from the client.
func (c *conn) clientPacket(s *side, cut bool, t time.Time) {
	body := s.body
	size := s.length + 4*s.parts
	if o := c.head(); o != nil && (s.seq != 0 || (o.connect && !c.commands)) {
		// A packet within an exchange: the handshake's response and auth
		// data, LOCAL INFILE data.
		if o.connect && s.seq == 1 && o.call.Request.BodySize == 0 {
			c.handshakeResponse(o, body, s, t)
			return
		}
		o.call.Request.BodySize += size
		o.end = t
		return
	}
	if s.seq != 0 || len(body) == 0 {
		return
	}
	c.commands = true
	cmd := body[0]
	name, ok := commandNames[cmd]
	if !ok {
		call := c.newCall("", s.start)
		call.Fail(proto.Malformed, "an unknown command 0x"+strconv.FormatUint(uint64(cmd), 16))
		call.Request.BodySize = size
		c.out.Emit(call)
		return
	}
	call := c.newCall(name, s.start)
	call.Request.BodySize = size
	o := &op{cmd: cmd, call: call, end: t}
	arg := body[1:]
	switch cmd {
	case comQuery:
		if c.caps&capQueryAttributes != 0 {
			// Query attributes precede the text: a count of them (and of
			// parameter sets); with none, the text follows.
			n, k, ok := lenenc(arg)
			if ok && n == 0 && len(arg) > k {
				_, k2, _ := lenenc(arg[k:])
				arg = arg[k+k2:]
			} else if ok {
				call.Extra.Set("query_attributes", int64(n))
				arg = nil
			}
		}
		c.setSQL(call, arg, cut)
	case comStmtPrepare:
		c.setSQL(call, arg, cut)
		o.sql = string(arg)
	case comStmtExecute, comStmtFetch, comStmtReset, comStmtClose, comStmtSendLong, comStmtBulkExecute:
		if len(arg) < 4 {
			break
		}
		id := binary.LittleEndian.Uint32(arg)
		call.Extra.Set("statement_id", int64(id))
		sql, known := c.stmts[id]
		if known {
			c.setSQL(call, []byte(sql), false)
		} else {
			call.Extra.Set("statement", "not seen: the capture began after its COM_STMT_PREPARE")
		}
		switch cmd {
		case comStmtExecute, comStmtBulkExecute:
			o.binary = true
			call.Request.BodySize += c.pending
			c.pending = 0
		case comStmtSendLong:
			c.pending += size
			return // answered by nothing; counted on the execute
		case comStmtClose:
			delete(c.stmts, id)
			call.OneWay = true
			c.out.Emit(call)
			return
		}
	case comInitDB:
		call.Path = string(arg)
		o.sql = string(arg)
	case comFieldList:
		table, _ := cstr(arg)
		call.Path = string(table)
	case comQuit:
		call.OneWay = true
		c.out.Emit(call)
		return
	case comChangeUser:
		user, _ := cstr(arg)
		call.Extra.Set("user", string(user))
		o.state = stAuth
	case comBinlogDump, comBinlogDumpGTID:
		call.Extra.Set("streaming", "replication stream follows, not dissected")
		c.out.Emit(call)
		c.opaque = true
		return
	}
	c.add(o)
}

// capQueryAttributes is MySQL 8's CLIENT_QUERY_ATTRIBUTES.
const capQueryAttributes = 1 << 27

// greeting reads the server's initial handshake packet and starts the
// CONNECT call.
func (c *conn) greeting(s *side, t time.Time) {
	body := s.body
	call := c.newCall("CONNECT", s.start)
	call.Response.BodySize = s.length + 4
	o := &op{connect: true, call: call, end: t, state: stAuth}
	c.greeted = true
	if len(body) > 0 && body[0] == 0xff {
		// Refused before any handshake (too many connections, a host not
		// allowed).
		o.answered = true
		c.errPacket(o, body)
		c.out.Emit(call)
		return
	}
	if len(body) > 1 {
		v, rest := cstr(body[1:])
		c.version = string(v)
		if len(rest) >= 4+8+1+2 {
			c.connID = binary.LittleEndian.Uint32(rest)
			c.srvCaps = uint32(binary.LittleEndian.Uint16(rest[13:]))
			if len(rest) >= 4+8+1+2+1+2+2 {
				c.srvCaps |= uint32(binary.LittleEndian.Uint16(rest[18:])) << 16
			}
			if len(rest) >= 31 && c.srvCaps&capLongPassword == 0 {
				// MariaDB: its extended capabilities in the last four
				// reserved bytes (a MySQL server sets CLIENT_MYSQL).
				c.srvExt = binary.LittleEndian.Uint32(rest[27:])
			}
			if len(rest) > 31 {
				// The rest of the scramble, then the plugin's name.
				p := rest[31:]
				if i := bytes.IndexByte(p, 0); i >= 0 && i+1 < len(p) {
					name, _ := cstr(p[i+1:])
					c.plugin = string(name)
				}
			}
		}
	}
	call.Request.BodySize = 0
	c.add(o)
}

// handshakeResponse reads the client's answer to the greeting: its
// capabilities, user, database and plugin (never the auth data), or an
// SSL request.
func (c *conn) handshakeResponse(o *op, body []byte, s *side, t time.Time) {
	o.call.Request.BodySize = s.length + 4
	o.end = t
	if len(body) < 4 {
		return
	}
	caps := binary.LittleEndian.Uint32(body)
	c.caps = caps & c.srvCaps
	if c.srvCaps == 0 {
		c.caps = caps
	}
	if caps&capSSL != 0 && len(body) <= 32 {
		o.call.Status = "TLS"
		o.call.Extra.Set("ssl", "switched to TLS: the authentication is encrypted")
		c.finishConnect(o)
		c.ops.TakeOldest()
		c.out.Emit(o.call)
		c.opaque = true
		c.handover = []proto.Chunk{}
		c.out.Upgrade(proto.SwitchTLS)
		return
	}
	if len(body) < 32 {
		return
	}
	if c.srvExt != 0 && caps&capLongPassword == 0 {
		ext := binary.LittleEndian.Uint32(body[28:])
		c.cacheMetadata = c.srvExt&ext&extCacheMetadata != 0
	}
	rest := body[32:]
	user, rest := cstr(rest)
	c.user = string(user)
	o.call.Extra.Set("user", c.user)
	switch {
	case caps&capLenencAuth != 0:
		if n, k, ok := lenenc(rest); ok && uint64(len(rest)) >= uint64(k)+n {
			rest = rest[uint64(k)+n:]
		} else {
			rest = nil
		}
	case caps&capSecure != 0:
		if len(rest) > 0 && len(rest) > int(rest[0]) {
			rest = rest[1+int(rest[0]):]
		} else {
			rest = nil
		}
	default:
		_, rest = cstr(rest)
	}
	if caps&capConnectWithDB != 0 && len(rest) > 0 {
		var db []byte
		db, rest = cstr(rest)
		c.database = string(db)
	}
	if caps&capPluginAuth != 0 && len(rest) > 0 {
		name, _ := cstr(rest)
		if len(name) > 0 {
			c.plugin = string(name)
		}
	}
	o.call.Path = c.database
	if c.database != "" {
		o.call.Extra.Set("database", c.database)
	}
}

// HandOver implements proto.HandingOver: after an SSL request, the TLS
// bytes already received.
func (c *conn) HandOver() proto.Handover {
	h := proto.Handover{Chunks: c.handover}
	c.handover = nil
	return h
}

func (c *conn) finishConnect(o *op) {
	call := o.call
	if c.version != "" {
		call.Extra.Set("server_version", c.version)
	}
	if c.plugin != "" {
		call.Extra.Set("auth_plugin", c.plugin)
	}
	if c.connID != 0 {
		call.Extra.Set("connection_id", int64(c.connID))
	}
}

// serverPacket handles a packet from the server.
func (c *conn) serverPacket(s *side, t time.Time) {
	body := s.body
	if !c.greeted && !c.commands && s.seq == 0 && len(body) > 0 && (body[0] == 10 || body[0] == 0xff) {
		c.greeting(s, t)
		return
	}
	o := c.head()
	if o == nil {
		if len(body) > 0 && body[0] == 0xff {
			call := c.newCall("", s.start)
			c.errPacket(&op{call: call}, body)
			call.Response.BodySize = s.length + 4
			call.Fail(proto.Orphan, "")
			c.out.Emit(call)
		}
		return
	}
	o.respSize += s.length + 4*s.parts
	if !o.answered {
		o.answered = true
		o.call.LatencyNS = proto.Latency(o.end, s.start)
	}
	if len(body) == 0 {
		return
	}
	b0 := body[0]
	short := s.length < 9 // an EOF, not a row
	switch o.state {
	case stAuth:
		switch b0 {
		case 0x00:
			c.done(o)
		case 0xff:
			c.errPacket(o, body)
			c.done(o)
		case 0xfe:
			// Auth switch: the plugin the server wants.
			if len(body) > 1 {
				name, _ := cstr(body[1:])
				c.plugin = string(name)
			}
		}
		// 0x01: more auth data (caching_sha2's fast path or a key).
	case stFirst:
		switch {
		case b0 == 0xff:
			c.errPacket(o, body)
			c.done(o)
		case b0 == 0x00 && o.cmd == comStmtPrepare:
			c.prepareOK(o, body)
		case b0 == 0x00 && s.length >= 7:
			c.okPacket(o, body[1:])
		case b0 == 0xfe && short:
			c.done(o) // an EOF answering COM_SET_OPTION, COM_FIELD_LIST's end
		case b0 == 0xfb && o.cmd == comQuery:
			o.state = stInfile
			o.call.Extra.Set("local_infile", true)
		case o.cmd == comStatistics:
			o.call.Extra.Set("statistics", string(body))
			c.done(o)
		case o.cmd == comFieldList:
			// Column definitions until an EOF.
		case o.cmd == comQuery || o.cmd == comStmtExecute || o.cmd == comStmtFetch || o.cmd == comProcessInfo || o.cmd == comStmtBulkExecute:
			count := body
			if c.caps&capOptionalMetadata != 0 && len(count) > 0 {
				count = count[1:] // MySQL's metadata_follows comes first
			}
			n, k, ok := lenenc(count)
			if !ok || n == 0 {
				c.malformedReply(o, "a result set's column count")
				return
			}
			o.remaining = n
			o.state = stColumns
			if c.cacheMetadata && len(count) > k && count[k] == 0 ||
				c.caps&capOptionalMetadata != 0 && len(body) > 0 && body[0] == 0 {
				// The client has the definitions already.
				o.state = stColumnsEOF
				if c.deprecateEOF() {
					o.state = stRows
				}
			}
			if !c.lim.Summary && !o.binary {
				o.render = o.render[:0:0]
			}
		default:
			c.done(o)
		}
	case stColumns, stPrepColumns, stPrepParams:
		if b0 == 0xff {
			c.errPacket(o, body)
			c.done(o)
			return
		}
		if o.state == stColumns && !c.lim.Summary && !o.binary && len(o.render) < c.lim.MaxBodyDisplay {
			if name := columnName(body); name != nil {
				if o.remaining != 0 && len(o.render) > 0 && o.render[len(o.render)-1] != '\n' {
					o.render = append(o.render, '\t')
				}
				o.render = append(o.render, name...)
			}
		}
		o.remaining--
		if o.remaining > 0 {
			return
		}
		switch o.state {
		case stColumns:
			if len(o.render) > 0 {
				o.render = append(o.render, '\n')
			}
			o.state = stColumnsEOF
			if c.deprecateEOF() {
				o.state = stRows
			}
		case stPrepParams:
			o.state = stPrepParamsEOF
			if c.deprecateEOF() {
				c.prepareColumns(o)
			}
		case stPrepColumns:
			o.state = stPrepColumnsEOF
			if c.deprecateEOF() {
				c.done(o)
			}
		}
	case stColumnsEOF:
		o.state = stRows
		if b0 == 0xfe && s.length == 5 {
			return // the classic EOF after the columns
		}
		c.serverRow(o, s)
	case stRows:
		c.serverRow(o, s)
	case stPrepParamsEOF:
		c.prepareColumns(o)
		if !(b0 == 0xfe && short) {
			// No EOF after all (CLIENT_DEPRECATE_EOF not seen): this is
			// a column definition.
			o.respSize -= s.length + 4*s.parts
			c.serverPacket(s, t)
		}
	case stPrepColumnsEOF:
		c.done(o)
		if !(b0 == 0xfe && short) {
			c.serverPacket(s, t)
		}
	case stInfile:
		if b0 == 0xff {
			c.errPacket(o, body)
			c.done(o)
		} else if b0 == 0x00 {
			c.okPacket(o, body[1:])
		}
	}
}

// deprecateEOF reports whether both sides agreed to end result sets with
// an OK instead of EOF packets; a connection seen from its middle is read
// as the classic protocol, which the packets correct.
func (c *conn) deprecateEOF() bool { return c.caps&capDeprecateEOF != 0 }

// serverRow reads a row or the terminator of a result set.
func (c *conn) serverRow(o *op, s *side) {
	body := s.body
	b0 := body[0]
	switch {
	case b0 == 0xff:
		c.errPacket(o, body)
		c.done(o)
	case b0 == 0xfe && s.length < 0xffffff && (s.length < 9 || c.deprecateEOF()):
		o.sets++
		var status uint16
		if s.length == 5 {
			o.warnings += binary.LittleEndian.Uint16(body[1:])
			status = binary.LittleEndian.Uint16(body[3:])
		} else {
			status = c.readOK(o, body[1:])
		}
		if status&statusMoreResults != 0 {
			o.state = stFirst
			return
		}
		c.done(o)
	default:
		o.rows++
		if o.binary || c.lim.Summary || len(o.render) >= c.lim.MaxBodyDisplay {
			o.cut = o.cut || len(o.render) >= c.lim.MaxBodyDisplay
			return
		}
		o.render = appendRow(o.render, body, int64(len(body)) < s.length)
		if len(o.render) > c.lim.MaxBodyDisplay {
			o.render, o.cut = o.render[:c.lim.MaxBodyDisplay], true
		}
	}
}

// appendRow renders a text row: its values tab-separated, NULL as NULL.
func appendRow(dst, row []byte, cut bool) []byte {
	first := true
	for len(row) > 0 {
		if !first {
			dst = append(dst, '\t')
		}
		first = false
		if row[0] == 0xfb {
			dst = append(dst, "NULL"...)
			row = row[1:]
			continue
		}
		n, k, ok := lenenc(row)
		if !ok {
			break
		}
		end := uint64(k) + n
		if end > uint64(len(row)) {
			dst = append(dst, row[k:]...)
			dst = append(dst, "…"...)
			break
		}
		dst = append(dst, row[k:end]...)
		row = row[end:]
	}
	if cut && (len(dst) == 0 || dst[len(dst)-1] != '\n') {
		dst = append(dst, "…"...)
	}
	return append(dst, '\n')
}

// columnName reads a column definition's name (protocol 4.1: catalog,
// schema, table, org_table, name).
func columnName(b []byte) []byte {
	for i := 0; i < 5; i++ {
		n, k, ok := lenenc(b)
		if !ok || uint64(len(b)) < uint64(k)+n {
			return nil
		}
		if i == 4 {
			return b[k : uint64(k)+n]
		}
		b = b[uint64(k)+n:]
	}
	return nil
}

// prepareOK reads COM_STMT_PREPARE's answer and follows the statement.
func (c *conn) prepareOK(o *op, body []byte) {
	if len(body) < 9 {
		c.malformedReply(o, "a short COM_STMT_PREPARE answer")
		return
	}
	id := binary.LittleEndian.Uint32(body[1:])
	cols := uint64(binary.LittleEndian.Uint16(body[5:]))
	params := uint64(binary.LittleEndian.Uint16(body[7:]))
	if _, ok := c.stmts[id]; !ok && len(c.stmts) >= maxStatements {
		for k := range c.stmts {
			delete(c.stmts, k)
			break
		}
	}
	c.stmts[id] = o.sql
	o.call.Extra.Set("statement_id", int64(id))
	o.call.Extra.Set("params", int64(params))
	o.call.Extra.Set("columns", int64(cols))
	o.prepCols = cols
	if params > 0 {
		o.state, o.remaining = stPrepParams, params
		return
	}
	c.prepareColumns(o)
}

func (c *conn) prepareColumns(o *op) {
	if o.prepCols > 0 {
		o.state, o.remaining = stPrepColumns, o.prepCols
		return
	}
	c.done(o)
}

// okPacket reads an OK; a query with more results waits for them.
func (c *conn) okPacket(o *op, b []byte) {
	o.sets++
	status := c.readOK(o, b)
	if o.cmd == comInitDB && !o.failed {
		c.database = o.sql
	}
	if status&statusMoreResults != 0 {
		o.state = stFirst
		return
	}
	c.done(o)
}

// readOK reads an OK packet's counts (after its header byte) and returns
// its status flags.
func (c *conn) readOK(o *op, b []byte) uint16 {
	affected, k, ok := lenenc(b)
	if !ok {
		return 0
	}
	b = b[k:]
	id, k, ok := lenenc(b)
	if !ok {
		return 0
	}
	b = b[k:]
	o.affected += affected
	if id != 0 {
		o.insertID = id
	}
	if len(b) < 4 {
		return 0
	}
	status := binary.LittleEndian.Uint16(b)
	o.warnings += binary.LittleEndian.Uint16(b[2:])
	if info := b[4:]; len(info) > 0 && printable(info) {
		if n, k, ok := lenenc(info); ok && uint64(len(info)) >= uint64(k)+n && c.caps&0x00800000 != 0 {
			info = info[k : uint64(k)+n] // CLIENT_SESSION_TRACK: length-encoded
		}
		o.info = string(info[:min(len(info), 256)])
	}
	return status
}

// errPacket reads an ERR packet onto the operation's call.
func (c *conn) errPacket(o *op, b []byte) {
	o.failed = true
	call := o.call
	if len(b) < 3 {
		call.Status = "ERR"
		return
	}
	call.Status = strconv.Itoa(int(binary.LittleEndian.Uint16(b[1:])))
	msg := b[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		call.Extra.Set("sqlstate", string(msg[1:6]))
		msg = msg[6:]
	}
	call.Extra.Set("error", string(msg))
	if call.Response.Body == "" {
		call.Response.Body = string(msg)
	}
}

func (c *conn) malformedReply(o *op, what string) {
	c.ops.TakeOldest()
	c.finish(o)
	o.call.Fail(proto.Malformed, what)
	c.out.Emit(o.call)
	c.side[1].lost = true
}

// done ends the oldest operation and emits its call.
func (c *conn) done(o *op) {
	c.ops.TakeOldest()
	c.finish(o)
	if o.connect && !o.failed {
		o.call.Status = "OK"
	}
	c.out.Emit(o.call)
	if o.connect {
		c.commands = true
	}
}

// finish puts what the server answered on the call.
func (c *conn) finish(o *op) {
	call := o.call
	call.Response.BodySize += o.respSize
	if call.Status == "" && call.Error == "" {
		call.Status = "OK"
	}
	if o.connect {
		c.finishConnect(o)
		return
	}
	if o.rows > 0 || o.state == stRows || o.state == stColumnsEOF {
		call.Extra.Set("rows", o.rows)
	}
	if o.affected > 0 {
		call.Extra.Set("affected_rows", int64(o.affected))
	}
	if o.insertID > 0 {
		call.Extra.Set("last_insert_id", int64(o.insertID))
	}
	if o.warnings > 0 {
		call.Extra.Set("warnings", int64(o.warnings))
	}
	if o.info != "" {
		call.Extra.Set("info", o.info)
	}
	if o.sets > 1 {
		call.Extra.Set("result_sets", int64(o.sets))
	}
	if len(o.render) > 0 && !c.lim.Summary && call.Response.Body == "" {
		call.Response.SetBody(o.render, c.lim.MaxBodyDisplay)
		call.Response.BodyTruncated = call.Response.BodyTruncated || o.cut
	}
}

// Gap implements proto.StreamParser.
func (c *conn) Gap(r proto.Role, n int) {
	if c.opaque {
		return
	}
	i := idx(r)
	s := &c.side[i]
	if n >= 0 && s.hn == 4 && n <= s.left && !s.client {
		if o := c.head(); o != nil && o.state == stRows {
			// Inside a row: counted.
			s.left -= n
			s.length += int64(n)
			s.keep = len(s.body)
			o.cut = true
			o.call.Extra.Set("bytes_missing", true)
			return
		}
	}
	s.lost, s.hn, s.left, s.cont = true, 0, 0, false
	if i == 1 {
		what := "bytes"
		if n >= 0 {
			what = strconv.Itoa(n) + " bytes"
		}
		c.ops.Expire(time.Time{}, func(o *op) {
			c.finish(o)
			o.call.Status = ""
			o.call.Fail(proto.Truncated, "the answer may be among "+what+" missing from the capture")
			c.out.Emit(o.call)
		})
	}
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, _ time.Time) {
	c.ops.Expire(time.Time{}, func(o *op) {
		c.finish(o)
		if o.failed {
			c.out.Emit(o.call)
			return
		}
		o.call.Status = ""
		switch {
		case reason == proto.EndMemory:
			o.call.Fail(proto.Truncated, "connection ended early for memory bounds")
		case o.answered && !o.connect:
			o.call.Fail(proto.Truncated, "connection "+reason.String()+" before the answer ended")
		case o.connect && o.answered:
			o.call.Fail(proto.Truncated, "connection "+reason.String()+" during authentication")
		case reason == proto.EndFIN:
			o.call.Fail(proto.Unanswered, "")
		default:
			o.call.Fail(proto.Unanswered, "connection "+reason.String())
		}
		c.out.Emit(o.call)
	})
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.ops.Kept() + 64*len(c.stmts) + c.norm.Size()
	for _, s := range c.stmts {
		n += len(s)
	}
	for i := range c.side {
		n += cap(c.side[i].body)
	}
	return n
}
