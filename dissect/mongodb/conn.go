package mongodb

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	tailKeep   = 64 << 10
	maxCursors = 4096
	maxDepth   = 64
)

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, cursors: map[int64]string{}}
	c.pending.Max = l.MaxPending
	c.pending.Size = func(r *request) int { return 256 + len(r.call.Request.Body) }
	c.side[0].client = true
	return c
}

// request is a command waiting for its reply.
type request struct {
	call   *proto.Call
	end    time.Time
	cursor int64 // the getMore's cursor
}

// side is one direction's message framing.
type side struct {
	client  bool
	hdr     [16]byte
	hn      int
	total   int // the message's length
	left    int
	head    []byte // its first bytes, after the header
	tail    []byte // its last bytes (a rolling window)
	start   time.Time
	lost    bool
	gapped  bool // bytes of the message were not captured: its head ends there
	missing int
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	side    [2]side
	pending proto.Pending[int32, *request]
	cursors map[int64]string // a cursor's id → the command that opened it
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

func (c *conn) headKeep() int { return max(c.lim.MaxBodyCapture, 1<<20) }

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	s := &c.side[idx(r)]
	if s.lost {
		if v, _ := (Protocol{}).DetectStream(data, 0, 0); v != proto.Yes {
			c.out.Skipped(len(data))
			return
		}
		s.lost, s.hn, s.left = false, 0, 0
	}
	for len(data) > 0 {
		if s.hn < 16 {
			if s.hn == 0 {
				s.start = t
			}
			n := copy(s.hdr[s.hn:], data)
			s.hn += n
			data = data[n:]
			if s.hn < 16 {
				return
			}
			s.total = int(int32(binary.LittleEndian.Uint32(s.hdr[:])))
			if s.total < 16 || s.total > maxMessage {
				c.malformed(s, "a message length of "+strconv.Itoa(s.total))
				c.out.Skipped(len(data))
				return
			}
			s.left = s.total - 16
			s.head, s.tail = s.head[:0], s.tail[:0]
			s.gapped, s.missing = false, 0
		}
		n := min(len(data), s.left)
		chunk := data[:n]
		if room := c.headKeep() - len(s.head); room > 0 && !s.gapped {
			s.head = append(s.head, chunk[:min(room, n)]...)
		}
		s.tail = append(s.tail, chunk...)
		if len(s.tail) > 2*tailKeep {
			s.tail = append(s.tail[:0], s.tail[len(s.tail)-tailKeep:]...)
		}
		s.left -= n
		data = data[n:]
		if s.left > 0 {
			return
		}
		s.hn = 0
		c.done(s, t)
	}
}

// done ends a message whose bytes have all come (or been counted missing).
func (c *conn) done(s *side, t time.Time) {
	{
		if len(s.tail) > tailKeep {
			s.tail = s.tail[len(s.tail)-tailKeep:]
		}
		c.message(s, t)
		if cap(s.head) > 64<<10 {
			s.head, s.tail = nil, nil
		}
	}
}

// malformed reports bytes that are not MongoDB's and looks for the next
// message.
func (c *conn) malformed(s *side, why string) {
	s.lost, s.hn, s.left = true, 0, 0
	call := &proto.Call{Proto: "mongodb", TS: s.start}
	call.Fail(proto.Malformed, why)
	if !s.client {
		if req, ok := c.pending.TakeOldest(); ok {
			call = req.call
			call.Fail(proto.Malformed, why)
		}
	}
	c.out.Emit(call)
}

// msg is a message as read: its header and its body's window (offsets
// from the body's start, after the 16-byte header).
type msg struct {
	requestID, responseTo int32
	op                    int32
	w                     window
	size                  int64
	start, end            time.Time
	compressed            string
	missing               int // bytes a capture gap lost
}

// message handles a whole message.
func (c *conn) message(s *side, t time.Time) {
	m := &msg{
		requestID:  int32(binary.LittleEndian.Uint32(s.hdr[4:])),
		responseTo: int32(binary.LittleEndian.Uint32(s.hdr[8:])),
		op:         int32(binary.LittleEndian.Uint32(s.hdr[12:])),
		size:       int64(s.total),
		start:      s.start,
		end:        t,
	}
	body := s.total - 16
	m.w = window{head: s.head, total: body}
	if len(s.head) < body {
		m.w.tail = s.tail
	}
	m.missing = s.missing
	if m.op == opCompressed {
		if !c.decompress(m) {
			return
		}
	}
	if s.client {
		c.request(m)
	} else {
		c.reply(m)
	}
}

// decompress replaces an OP_COMPRESSED message by the one it holds.
func (c *conn) decompress(m *msg) bool {
	hdr, ok := m.w.at(0, 9)
	if !ok {
		c.emitBroken(m, "truncated: a compressed message's header")
		return false
	}
	orig := int32(binary.LittleEndian.Uint32(hdr))
	size := int(int32(binary.LittleEndian.Uint32(hdr[4:])))
	id := hdr[8]
	names := [...]string{"noop", "snappy", "zlib", "zstd"}
	if int(id) >= len(names) {
		c.emitBroken(m, "malformed: compressor "+strconv.Itoa(int(id)))
		return false
	}
	m.compressed = names[id]
	if size < 0 || size > maxMessage {
		c.emitBroken(m, "malformed: an uncompressed size of "+strconv.Itoa(size))
		return false
	}
	if len(m.w.head) < m.w.total {
		c.emitBroken(m, "truncated: a compressed message bigger than "+strconv.Itoa(c.headKeep())+" bytes is not decompressed")
		return false
	}
	data := m.w.head[9:]
	var out []byte
	var err error
	switch id {
	case 0:
		out = data
	case 1:
		n, e := snappy.DecodedLen(data)
		if e != nil || n != size {
			c.emitBroken(m, "malformed: snappy data that does not decode")
			return false
		}
		out, err = snappy.Decode(make([]byte, 0, n), data)
	case 2:
		var r io.ReadCloser
		if r, err = zlib.NewReader(bytes.NewReader(data)); err == nil {
			out, err = readKeep(r, size, c.headKeep())
		}
	case 3:
		var d *zstd.Decoder
		if d, err = zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(maxMessage))); err == nil {
			out, err = readKeep(d.IOReadCloser(), size, c.headKeep())
		}
	}
	if err != nil {
		c.emitBroken(m, "malformed: "+m.compressed+" data that does not decode")
		return false
	}
	m.op = orig
	// What was kept of it: its head, and its tail when the head is not
	// all of it (readKeep puts the last tailKeep bytes after the head).
	if len(out) > c.headKeep() {
		m.w = window{head: out[:c.headKeep()], tail: out[c.headKeep():], total: size}
	} else {
		m.w = window{head: out, total: len(out)}
	}
	return true
}

// readKeep reads r whole, keeping its first keep bytes and its last
// tailKeep: at most keep+tailKeep bytes of memory however much r holds.
func readKeep(r io.ReadCloser, size, keep int) ([]byte, error) {
	defer r.Close()
	head := make([]byte, 0, min(size, keep))
	var tail []byte
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += n
			if total > maxMessage {
				return nil, io.ErrUnexpectedEOF
			}
			b := buf[:n]
			if room := keep - len(head); room > 0 {
				k := min(room, len(b))
				head = append(head, b[:k]...)
				b = b[k:]
			}
			if len(b) > 0 {
				tail = append(tail, b...)
				if len(tail) > 2*tailKeep {
					tail = append(tail[:0], tail[len(tail)-tailKeep:]...)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if total != size {
		return nil, io.ErrUnexpectedEOF
	}
	if len(tail) > tailKeep {
		tail = tail[len(tail)-tailKeep:]
	}
	// The caller places the tail at the end of size bytes.
	return append(head, tail...), nil
}

func (c *conn) emitBroken(m *msg, why string) {
	call := &proto.Call{Proto: "mongodb", TS: m.start}
	if m.responseTo != 0 {
		if req, ok := c.pending.Take(m.responseTo, nil); ok {
			call = req.call
		}
	}
	if i := strings.IndexByte(why, ':'); i >= 0 {
		call.Fail(proto.ProblemOf(why), strings.TrimSpace(why[i+1:]))
	}
	c.out.Emit(call)
}

// command is what a request's command document says.
type command struct {
	name, db, coll string
	docs           int64 // documents in document sequences or arrays
	cursor         int64
	moreToCome     bool
	body           string
	bodyCut        bool
	exhaust        bool
}

// request handles a message from the client.
func (c *conn) request(m *msg) {
	var cmd command
	switch m.op {
	case opMsg:
		cmd = c.opMsg(m)
	case opQuery:
		cmd = c.opQueryMsg(m)
	case opGetMore, opInsert, opUpdate, opDelete, opKillCursors:
		cmd = c.legacy(m)
	case opReply:
		return
	default:
		call := &proto.Call{Proto: "mongodb", TS: m.start}
		call.Fail(proto.Malformed, "an unknown opcode "+strconv.Itoa(int(m.op)))
		c.out.Emit(call)
		return
	}
	call := &proto.Call{Proto: "mongodb", TS: m.start, Method: cmd.name, Path: cmd.db}
	if cmd.coll != "" {
		call.Path = cmd.db + "." + cmd.coll
	}
	call.Request.BodySize = m.size
	if m.missing > 0 {
		call.Extra.Set("bytes_missing", int64(m.missing))
	}
	if !c.lim.Summary && cmd.body != "" {
		call.Request.SetBody([]byte(cmd.body), c.lim.MaxBodyDisplay)
		call.Request.BodyTruncated = call.Request.BodyTruncated || cmd.bodyCut
	}
	if cmd.docs > 0 {
		call.Extra.Set("documents", cmd.docs)
	}
	if name, ok := legacyOps[m.op]; ok {
		call.Extra.Set("opcode", name)
	}
	if m.compressed != "" {
		call.Extra.Set("compressed", m.compressed)
	}
	if cmd.name == "getMore" {
		call.Extra.Set("cursor_id", cmd.cursor)
		if of, ok := c.cursors[cmd.cursor]; ok {
			call.Extra.Set("cursor_of", of)
		}
	}
	if cmd.moreToCome {
		call.OneWay = true
		c.out.Emit(call)
		return
	}
	if old, full := c.pending.Add(m.requestID, m.start, &request{call: call, end: m.end, cursor: cmd.cursor}); full {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" commands waiting for replies")
		c.out.Emit(old.call)
	}
}

// legacyOps name the opcodes other than OP_MSG a request may have: a
// driver that still sends them is old (or says hello the old way).
var legacyOps = map[int32]string{opQuery: "OP_QUERY", opGetMore: "OP_GET_MORE", opInsert: "OP_INSERT",
	opUpdate: "OP_UPDATE", opDelete: "OP_DELETE", opKillCursors: "OP_KILL_CURSORS"}

// secret are the fields never shown: authentication payloads, passwords.
var secret = map[string]bool{"payload": true, "pwd": true, "password": true, "speculativeAuthenticate": true}

// noBody are the commands whose documents are not shown at all.
var noBody = map[string]bool{"saslStart": true, "saslContinue": true, "authenticate": true,
	"createUser": true, "updateUser": true, "copydbsaslstart": true, "copydbgetnonce": true}

// render shows the document at p as relaxed Extended JSON, without its
// secret fields, when the window holds it whole and it nests at most
// maxDepth deep.
func (c *conn) render(w *window, p int, name string) (string, bool) {
	if c.lim.Summary || noBody[name] {
		return "", false
	}
	n, ok := w.doc(p)
	if !ok {
		return "", false
	}
	b, ok := w.at(p, n)
	if !ok {
		return "(" + strconv.Itoa(n) + " bytes, not all captured)", true
	}
	if depth(b, maxDepth) > maxDepth {
		return "(a document nested deeper than " + strconv.Itoa(maxDepth) + ")", true
	}
	doc := bsoncore.Document(b)
	if els, err := doc.Elements(); err == nil {
		var masked bool
		for _, e := range els {
			if secret[e.Key()] {
				masked = true
				break
			}
		}
		if masked {
			var parts [][]byte
			for _, e := range els {
				if secret[e.Key()] {
					parts = append(parts, bsoncore.AppendStringElement(nil, e.Key(), "[redacted]"))
				} else {
					parts = append(parts, e)
				}
			}
			doc = bsoncore.BuildDocument(nil, parts...)
		}
	}
	s, cut := doc.StringN(c.lim.MaxBodyDisplay)
	return s, cut
}

// readCommand reads a command document at p: its name (first field), its
// collection (the first field's string value, or "collection"), $db.
func (c *conn) readCommand(w *window, p int, cmd *command) {
	first := true
	w.walk(p, func(e elem) bool {
		if first {
			first = false
			cmd.name = e.key
			if v, ok := w.value(e); ok {
				if s, ok := v.StringValueOK(); ok {
					cmd.coll = s
				} else if n, ok := v.AsInt64OK(); ok && e.key == "getMore" {
					cmd.cursor = n
				}
			}
			return true
		}
		switch e.key {
		case "$db":
			if v, ok := w.value(e); ok {
				cmd.db, _ = v.StringValueOK()
			}
		case "collection":
			if v, ok := w.value(e); ok && cmd.name == "getMore" {
				cmd.coll, _ = v.StringValueOK()
			}
		case "documents", "updates", "deletes":
			if e.typ == bsoncore.TypeArray {
				if n, ok := w.count(e.off); ok {
					cmd.docs += n
				}
			}
		case "exhaust":
			cmd.exhaust = true
		}
		return true
	})
}

// opMsg reads an OP_MSG request.
func (c *conn) opMsg(m *msg) command {
	var cmd command
	w := &m.w
	fb, ok := w.at(0, 4)
	if !ok {
		return cmd
	}
	flags := binary.LittleEndian.Uint32(fb)
	cmd.moreToCome = flags&2 != 0
	end := w.total
	if flags&1 != 0 {
		end -= 4 // the checksum
	}
	p := 4
	for p < end {
		kind, ok := w.at(p, 1)
		if !ok {
			break
		}
		switch kind[0] {
		case 0:
			n, ok := w.doc(p + 1)
			if !ok {
				return cmd
			}
			c.readCommand(w, p+1, &cmd)
			cmd.body, cmd.bodyCut = c.render(w, p+1, cmd.name)
			p += 1 + n
		case 1:
			size, ok := w.i32(p + 1)
			if !ok || size < 4 || p+1+size > end {
				return cmd
			}
			_, q, ok := w.cstring(p + 5)
			for ok && q < p+1+size {
				n, ok2 := w.doc(q)
				if !ok2 {
					break
				}
				cmd.docs++
				q += n
			}
			p += 1 + size
		default:
			return cmd
		}
	}
	return cmd
}

// opQueryMsg reads an OP_QUERY: a command on "db.$cmd", or a legacy
// query on a collection.
func (c *conn) opQueryMsg(m *msg) command {
	var cmd command
	w := &m.w
	ns, p, ok := w.cstring(4)
	if !ok {
		return cmd
	}
	db, coll, _ := strings.Cut(ns, ".")
	cmd.db = db
	p += 8 // numberToSkip, numberToReturn
	if coll == "$cmd" {
		c.readCommand(w, p, &cmd)
		if cmd.name == "$query" || cmd.name == "query" {
			// {$query: {isMaster: 1}, $readPreference: …}
			for _, k := range []string{"$query", "query"} {
				w.walk(p, func(e elem) bool {
					if e.key == k && e.typ == bsoncore.TypeEmbeddedDocument {
						var inner command
						c.readCommand(w, e.off, &inner)
						cmd.name, cmd.coll = inner.name, inner.coll
						return false
					}
					return true
				})
			}
		}
		cmd.db = db
	} else {
		cmd.name, cmd.coll = "query", coll
	}
	cmd.body, cmd.bodyCut = c.render(w, p, cmd.name)
	return cmd
}

// legacy reads the opcodes drivers stopped sending with MongoDB 3.6:
// OP_GET_MORE (answered by an OP_REPLY), and OP_INSERT, OP_UPDATE,
// OP_DELETE and OP_KILL_CURSORS, which nothing answers.
func (c *conn) legacy(m *msg) command {
	w := &m.w
	cmd := command{moreToCome: m.op != opGetMore}
	names := map[int32]string{opGetMore: "getMore", opInsert: "insert", opUpdate: "update", opDelete: "delete", opKillCursors: "killCursors"}
	cmd.name = names[m.op]
	if m.op == opKillCursors {
		return cmd
	}
	ns, p, ok := w.cstring(4) // after a flags or reserved field
	if !ok {
		return cmd
	}
	cmd.db, cmd.coll, _ = strings.Cut(ns, ".")
	if m.op == opGetMore {
		if b, ok := w.at(p+4, 8); ok {
			cmd.cursor = int64(binary.LittleEndian.Uint64(b))
		}
	}
	return cmd
}

// reply handles a message from the server.
func (c *conn) reply(m *msg) {
	req, ok := c.pending.Take(m.responseTo, nil)
	if !ok {
		call := &proto.Call{Proto: "mongodb", TS: m.start}
		call.Response.BodySize = m.size
		c.result(call, m)
		call.Fail(proto.Orphan, "")
		c.out.Emit(call)
		return
	}
	call := req.call
	call.LatencyNS = proto.Latency(req.end, m.start)
	call.Response.BodySize = m.size
	if m.missing > 0 {
		call.Extra.Set("bytes_missing", int64(m.missing))
	}
	more := c.result(call, m)
	if more {
		// An exhaust cursor: the server sends the next batch unasked,
		// as the answer to this reply.
		next := &proto.Call{Proto: "mongodb", TS: m.end, Method: call.Method, Path: call.Path}
		next.Extra.Set("exhaust", true)
		c.pending.Add(m.requestID, m.end, &request{call: next, end: m.end, cursor: req.cursor})
	}
	c.out.Emit(call)
}

// result reads a reply onto call; it reports moreToCome.
func (c *conn) result(call *proto.Call, m *msg) bool {
	w := &m.w
	if m.compressed != "" {
		call.Extra.Set("compressed", m.compressed)
	}
	p := -1
	more := false
	switch m.op {
	case opMsg:
		fb, ok := w.at(0, 4)
		if !ok {
			break
		}
		more = binary.LittleEndian.Uint32(fb)&2 != 0
		if k, ok := w.at(4, 1); ok && k[0] == 0 {
			p = 5
		}
	case opReply:
		if b, ok := w.at(0, 20); ok {
			flags := binary.LittleEndian.Uint32(b)
			if flags&1 != 0 {
				call.Status = "CursorNotFound"
				return false
			}
			if flags&2 != 0 {
				call.Status = "QueryFailure"
			}
			if n := int32(binary.LittleEndian.Uint32(b[16:])); n > 0 {
				call.Extra.Set("returned", int64(n))
			}
			p = 20
		}
	default:
		call.Fail(proto.Malformed, "a reply of opcode "+strconv.Itoa(int(m.op)))
		return false
	}
	if p < 0 {
		call.Fail(proto.Truncated, "the reply's document was not captured")
		return more
	}
	okSeen, okVal := false, int64(0)
	var code int64
	var name, errmsg string
	var writeErr string
	nWriteErrs := int64(0)
	w.walk(p, func(e elem) bool {
		v, have := w.value(e)
		switch e.key {
		case "ok":
			if have {
				okVal, okSeen = asInt(v)
			}
		case "code":
			if have {
				code, _ = v.AsInt64OK()
			}
		case "codeName":
			if have {
				name, _ = v.StringValueOK()
			}
		case "errmsg", "$err":
			if have {
				errmsg, _ = v.StringValueOK()
			}
		case "n", "nModified":
			if have {
				if n, ok := v.AsInt64OK(); ok {
					call.Extra.Set(e.key, n)
				}
			}
		case "writeErrors":
			if n, ok := w.count(e.off); ok {
				nWriteErrs = n
			}
			// The first write error's code.
			w.walk(e.off, func(first elem) bool {
				if first.typ == bsoncore.TypeEmbeddedDocument {
					w.walk(first.off, func(f elem) bool {
						if fv, ok := w.value(f); ok && f.key == "code" {
							if n, ok := fv.AsInt64OK(); ok {
								writeErr = codeName(n)
							}
						}
						if fv, ok := w.value(f); ok && f.key == "errmsg" && errmsg == "" {
							errmsg, _ = fv.StringValueOK()
						}
						return true
					})
				}
				return false
			})
		case "writeConcernError":
			w.walk(e.off, func(f elem) bool {
				if fv, ok := w.value(f); ok {
					switch f.key {
					case "codeName":
						if s, _ := fv.StringValueOK(); s != "" && writeErr == "" {
							writeErr = s
						}
					case "errmsg":
						if errmsg == "" {
							errmsg, _ = fv.StringValueOK()
						}
					}
				}
				return true
			})
		case "cursor":
			c.cursor(call, w, e)
		}
		return true
	})
	switch {
	case call.Status != "":
	case okSeen && okVal == 1 && writeErr == "":
		call.Status = "ok"
	case okSeen && okVal == 1:
		call.Status = writeErr
		call.Extra.Set("write_errors", nWriteErrs)
	case okSeen && name != "":
		call.Status = name
	case okSeen && code != 0:
		call.Status = codeName(code)
	case okSeen:
		call.Status = "error"
	case m.op == opReply && errmsg == "":
		call.Status = "ok" // a legacy query's documents
	default:
		call.Fail(proto.Truncated, "the reply's ok was not captured")
	}
	if errmsg != "" {
		call.Extra.Set("error", errmsg)
	}
	if code != 0 && call.Status != "ok" {
		call.Extra.Set("code", code)
	}
	if body, cut := c.render(w, p, call.Method); body != "" {
		call.Response.SetBody([]byte(body), c.lim.MaxBodyDisplay)
		call.Response.BodyTruncated = call.Response.BodyTruncated || cut
	}
	return more
}

// cursor reads a reply's cursor: its batch's length, its id (0 when
// exhausted), its namespace; and follows it for the getMores to come.
func (c *conn) cursor(call *proto.Call, w *window, e elem) {
	var id int64
	idSeen := false
	w.walk(e.off, func(f elem) bool {
		switch f.key {
		case "firstBatch", "nextBatch":
			if n, ok := w.count(f.off); ok {
				call.Extra.Set("returned", n)
			}
		case "id":
			if v, ok := w.value(f); ok {
				id, idSeen = v.AsInt64OK()
			}
		}
		return true
	})
	if !idSeen {
		return
	}
	if id != 0 {
		call.Extra.Set("cursor_id", id)
	}
	if call.Method == "getMore" {
		if id == 0 {
			if of, ok := call.Extra.Get("cursor_id").(int64); ok {
				delete(c.cursors, of)
			}
		}
		return
	}
	if id != 0 {
		if len(c.cursors) >= maxCursors {
			for k := range c.cursors {
				delete(c.cursors, k)
				break
			}
		}
		c.cursors[id] = call.Method + " " + call.Path
	}
}

// Expire implements proto.Expiring: requests are matched by id.
func (c *conn) Expire(deadline time.Time) {
	c.pending.Expire(deadline, func(r *request) {
		r.call.Fail(proto.Unanswered, "no reply within the request timeout")
		c.out.Emit(r.call)
	})
}

// Gap implements proto.StreamParser: the side looks for the next message
// header; what the server's lost bytes may have answered is reported.
func (c *conn) Gap(r proto.Role, n int) {
	i := idx(r)
	s := &c.side[i]
	if n >= 0 && s.hn == 16 && n <= s.left && !s.lost {
		// Inside a message: its head stops at the gap, its tail starts
		// after it; the fields on either side are still read.
		s.left -= n
		s.tail = s.tail[:0]
		s.gapped = true
		s.missing += n
		if s.left == 0 {
			s.hn = 0
			c.done(s, s.start)
		}
		return
	}
	s.lost, s.hn, s.left = true, 0, 0
	if i == 1 {
		what := "bytes"
		if n >= 0 {
			what = strconv.Itoa(n) + " bytes"
		}
		c.pending.Expire(time.Time{}, func(r *request) {
			r.call.Fail(proto.Truncated, "the reply may be among "+what+" missing from the capture")
			c.out.Emit(r.call)
		})
	}
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, _ time.Time) {
	c.pending.Expire(time.Time{}, func(r *request) {
		switch reason {
		case proto.EndMemory:
			r.call.Fail(proto.Truncated, "connection ended early for memory bounds")
		case proto.EndFIN:
			r.call.Fail(proto.Unanswered, "")
		default:
			r.call.Fail(proto.Unanswered, "connection "+reason.String())
		}
		c.out.Emit(r.call)
	})
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.pending.Kept() + 48*len(c.cursors)
	for i := range c.side {
		n += cap(c.side[i].head) + cap(c.side[i].tail)
	}
	return n
}
