package redis

import (
	"bytes"
	"strconv"
	"time"
)

// RESP type bytes (RESP2 and RESP3). Inline commands, which are not RESP
// values, are items of type inline.
const (
	tSimple    = '+'
	tError     = '-'
	tInteger   = ':'
	tBulk      = '$'
	tArray     = '*'
	tNull      = '_'
	tDouble    = ','
	tBoolean   = '#'
	tBlobError = '!'
	tVerbatim  = '='
	tBignum    = '('
	tMap       = '%'
	tSet       = '~'
	tAttribute = '|'
	tPush      = '>'
	inline     = 'i'
)

// Bounds on what a message may claim. A bulk string or an aggregate may be
// as long as it says (its bytes are counted, not kept), but not longer
// than these, which no server accepts.
const (
	maxDepth    = 64      // aggregates open at once
	maxBulk     = 1 << 40 // a bulk string's length
	maxElements = 1 << 40 // an aggregate's element count
	// maxItems is how many elements of a message's top-level value are
	// noted (arguments of a command; elements of a reply, whose errors an
	// EXEC's reply needs); the rest are counted.
	maxItems = 4096
	// itemKeep is how much of an element's text beyond the first few is
	// kept: enough for an error's first word.
	itemKeep = 64
	// firstItems are the elements kept up to the message budget: a
	// command's name, subcommand and keys; a push's kind and channel.
	firstItems = 8
)

// item is one element of a message's top-level value (or the value itself
// when it is a scalar).
type item struct {
	typ  byte
	data []byte // its text, cut
	cut  bool   // data is shorter than the element
	null bool
	n    int64 // an aggregate's element count
}

// message is one top-level RESP value (or inline command) as read.
type message struct {
	typ         byte
	start, last time.Time
	size        int64 // bytes on the wire
	count       int64 // elements of a top-level aggregate
	items       []item
	body        []byte // the value rendered for display (replies only)
	bodyCut     bool
	null        bool
	missing     int64 // bytes of it a capture gap lost
}

// frame is an aggregate being read.
type frame struct {
	typ  byte
	left int64 // elements still to come (for a map, keys and values)
	idx  int64 // elements read
}

// reader reads one direction's RESP values as they arrive, keeping a
// bounded part of each: a bulk string of any length streams through.
type reader struct {
	client   bool
	render   bool // render replies for display
	maxLine  int
	budget   int // bytes of element text a message may keep
	display  int // bytes of rendering a message may keep
	line     []byte
	skipLine bool // a line too long while resynchronising: skip to its end
	stack    []frame
	bulk     int64 // bytes of a bulk string's content (and CRLF) to come
	bulkItem int   // its item, -1 when not kept
	bulkTop  bool  // the bulk string is the message
	inAttr   int   // attributes open (their elements are not kept)
	busy     bool  // a message has begun
	m        message
	kept     int  // element text kept for m
	lost     bool // after a gap or malformed bytes: looking for a message start
}

func (r *reader) reset() {
	r.stack = r.stack[:0]
	r.bulk, r.bulkItem, r.bulkTop, r.inAttr = 0, -1, false, 0
	r.busy = false
	r.m.items = r.m.items[:0]
	r.m.body = r.m.body[:0]
	r.m.bodyCut, r.m.null = false, false
	r.m.size, r.m.count, r.m.typ, r.m.missing = 0, 0, 0, 0
	r.kept = 0
}

// lose drops the message in progress and looks for the next one.
func (r *reader) lose() {
	r.reset()
	r.line = r.line[:0]
	r.lost = true
}

// feed reads data, sent at t. done gets each message completed (valid
// until the next call); bad gets why the bytes stopped parsing and the
// message in progress, if any began. It returns the bytes skipped while
// looking for a message start.
func (r *reader) feed(data []byte, t time.Time, done func(*message), bad func(why string, m *message)) (skipped int) {
	// A server's reply is looked for again only from the start of a
	// segment: inside one, what follows bytes that did not parse is
	// mostly more of them (a reply nested too deep is a million lines
	// that each look like a reply's start).
	segStart := true
	for len(data) > 0 {
		if r.bulk > 0 {
			n := int64(len(data))
			if n > r.bulk {
				n = r.bulk
			}
			r.bulkContent(data[:n])
			r.m.size += n
			r.bulk -= n
			data = data[n:]
			if r.bulk == 0 {
				r.bulkEnd()
				r.bulkItem = -1
				if r.elementDone() {
					r.m.last = t
					done(&r.m)
					r.reset()
				}
			}
			continue
		}
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			if r.lost && (r.skipLine || len(r.line)+len(data) > r.maxLine) {
				r.skipLine, r.line = true, r.line[:0]
				skipped += len(data)
				return skipped
			}
			if len(r.line)+len(data) > r.maxLine {
				why := "malformed: a line longer than " + strconv.Itoa(r.maxLine) + " bytes"
				bad(why, r.partial())
				skipped += len(r.line) + len(data)
				r.lose()
				r.skipLine = true
				return skipped
			}
			if !r.busy && !r.lost {
				r.m.start = t
			}
			r.line = append(r.line, data...)
			return skipped
		}
		line := data[:nl+1]
		first := segStart
		segStart = false
		if len(r.line) > 0 {
			line = append(r.line, line...)
		}
		data = data[nl+1:]
		if r.lost {
			if r.skipLine {
				r.skipLine, r.line = false, r.line[:0]
				skipped += len(line)
				continue
			}
			if !r.startsMessage(line) || (!r.client && !(first && len(r.line) == 0)) {
				skipped += len(line)
				r.line = r.line[:0]
				continue
			}
			r.lost = false
		}
		if !r.busy && len(r.line) == 0 {
			r.m.start = t
		}
		r.m.size += int64(len(line))
		why := r.readLine(line)
		r.line = r.line[:0]
		if why != "" {
			bad("malformed: "+why, r.partial())
			r.lose()
			continue
		}
		if !r.busy && r.bulk == 0 && len(r.stack) == 0 {
			// A complete message: a scalar, an empty aggregate, an
			// inline command. (An empty inline line is no message.)
			if r.m.typ != 0 {
				r.m.last = t
				done(&r.m)
			}
			r.reset()
		}
	}
	return skipped
}

// partial returns the message in progress, nil when none began; its
// items are those read whole.
func (r *reader) partial() *message {
	if r.busy || r.bulk > 0 || len(r.stack) > 0 {
		if r.bulkItem >= 0 && r.bulkItem < len(r.m.items) {
			r.m.items = r.m.items[:r.bulkItem]
			r.bulkItem = -1
		}
		return &r.m
	}
	return nil
}

// startsMessage reports whether a line can start a message, when looking
// for one after a gap: a command's array header followed by bulk strings,
// or a reply's first line.
func (r *reader) startsMessage(line []byte) bool {
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return false
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case tArray:
		n, ok := parseInt(body)
		return ok && n >= 0 && n <= 1<<20
	case tBulk, tMap, tSet, tPush:
		if r.client {
			return false
		}
		n, ok := parseInt(body)
		return ok && n >= -1
	case tInteger:
		_, ok := parseInt(body)
		return !r.client && ok
	case tSimple, tError:
		return !r.client && len(body) > 0 && body[0] >= 'A' && body[0] <= 'Z'
	}
	return false
}

// readLine reads one line (with its newline); it returns why the bytes are
// not RESP, or "".
func (r *reader) readLine(line []byte) string {
	text := line[:len(line)-1]
	if len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[:len(text)-1]
	}
	top := !r.busy && len(r.stack) == 0
	if len(text) == 0 {
		if top && r.client {
			return "" // an empty inline command: ignored, as Redis does
		}
		return "an empty line"
	}
	typ := text[0]
	if top && r.client && typ != tArray {
		return r.inlineCommand(text)
	}
	body := text[1:]
	switch typ {
	case tArray, tMap, tSet, tPush, tAttribute:
		if r.client && len(r.stack) > 0 {
			return "a nested aggregate in a command"
		}
		n, ok := parseInt(body)
		if !ok || n < -1 || n > maxElements {
			return "an aggregate length of " + quoteCut(body)
		}
		if typ == tMap || typ == tAttribute {
			n *= 2
		}
		if len(r.stack) >= maxDepth {
			return "aggregates nested deeper than " + strconv.Itoa(maxDepth)
		}
		r.begin(typ)
		if n <= 0 {
			r.addItem(typ, nil, n < 0, 0)
			r.renderScalar(typ, nil, n < 0)
			return r.afterScalar()
		}
		r.addItem(typ, nil, false, n)
		r.openRender(typ)
		if typ == tAttribute {
			r.inAttr++
		}
		r.stack = append(r.stack, frame{typ: typ, left: n})
		return ""
	case tBulk, tVerbatim, tBlobError:
		n, ok := parseInt(body)
		if !ok || n < -1 || n > maxBulk {
			return "a bulk length of " + quoteCut(body)
		}
		if r.client && len(r.stack) == 0 {
			return "a command that is not an array"
		}
		r.begin(typ)
		if n < 0 {
			r.addItem(typ, nil, true, 0)
			r.renderScalar(typ, nil, true)
			return r.afterScalar()
		}
		r.bulkTop = len(r.stack) == 0
		r.bulkItem = r.addItem(typ, nil, false, 0)
		r.openBulk(typ)
		r.bulk = n + 2
		return ""
	case tSimple, tError, tInteger, tNull, tDouble, tBoolean, tBignum:
		if r.client {
			return "a " + typeName(typ) + " in a command"
		}
		r.begin(typ)
		r.addItem(typ, body, typ == tNull, 0)
		r.renderScalar(typ, body, typ == tNull)
		return r.afterScalar()
	}
	return "a line starting " + quoteCut(text[:1])
}

// begin notes that an element of type typ starts.
func (r *reader) begin(typ byte) {
	if !r.busy && len(r.stack) == 0 {
		r.busy = true
		r.m.typ = typ
	}
	if len(r.stack) > 0 && r.inAttr == 0 {
		r.separator()
	}
}

// afterScalar ends a scalar element: the message ends with it at the top.
func (r *reader) afterScalar() string {
	if r.elementDone() {
		r.busy = false // feed emits it
	}
	return ""
}

// elementDone ends an element; it reports whether the message is done.
func (r *reader) elementDone() bool {
	for len(r.stack) > 0 {
		f := &r.stack[len(r.stack)-1]
		f.left--
		f.idx++
		if f.left > 0 {
			return false
		}
		typ := f.typ
		r.stack = r.stack[:len(r.stack)-1]
		if typ == tAttribute {
			r.inAttr--
			// An attribute is not an element of what holds it; at the
			// top it precedes the reply.
			if len(r.stack) == 0 {
				r.busy, r.m.typ = false, 0
				r.m.items = r.m.items[:0]
			}
			return false
		}
		r.closeRender(typ)
	}
	if r.bulk == 0 {
		r.busy = false
	}
	return true
}

// addItem notes an element when it is the message's value or one of the
// value's elements; it returns the item's index, or -1.
func (r *reader) addItem(typ byte, text []byte, null bool, n int64) int {
	if r.inAttr > 0 || len(r.stack) > 1 {
		return -1
	}
	if len(r.stack) == 0 {
		r.m.null = null
		if n > 0 {
			r.m.count = n
			if typ == tMap {
				r.m.count = n / 2
			}
		}
		if isAggregate(typ) {
			return -1
		}
	}
	if len(r.m.items) >= maxItems {
		return -1
	}
	it := item{typ: typ, null: null, n: n}
	if text != nil {
		it.data, it.cut = r.keep(nil, text, typ == tError)
	}
	r.m.items = append(r.m.items, it)
	return len(r.m.items) - 1
}

// keep appends what of text the message's budget allows to dst; an
// error keeps its start (its first word is a status) whatever the budget.
func (r *reader) keep(dst, text []byte, isErr bool) ([]byte, bool) {
	room := r.budget - r.kept
	if len(r.m.items) > firstItems {
		room = min(room, itemKeep-len(dst))
	}
	if isErr {
		room = max(room, itemKeep-len(dst))
	}
	if room <= 0 {
		return dst, len(text) > 0
	}
	cut := false
	if len(text) > room {
		text, cut = text[:room], true
	}
	r.kept += len(text)
	return append(dst, text...), cut
}

// bulkContent takes bytes of a bulk string (and its closing CRLF).
func (r *reader) bulkContent(b []byte) {
	// The last two bytes of the bulk are its CRLF.
	if content := max(0, r.bulk-2); int64(len(b)) > content {
		b = b[:content]
	}
	if len(b) == 0 {
		return
	}
	if r.bulkItem >= 0 {
		it := &r.m.items[r.bulkItem]
		var cut bool
		it.data, cut = r.keep(it.data, b, it.typ == tBlobError)
		it.cut = it.cut || cut
	}
	if r.render && r.inAttr == 0 {
		if r.bulkTop {
			r.appendBody(b)
		} else {
			r.appendEscaped(b)
		}
	}
}

// inlineCommand reads a command sent as a line of words.
func (r *reader) inlineCommand(text []byte) string {
	r.busy = true
	r.m.typ = inline
	for len(text) > 0 {
		text = bytes.TrimLeft(text, " \t")
		if len(text) == 0 {
			break
		}
		var word []byte
		if text[0] == '"' || text[0] == '\'' {
			q := text[0]
			end := bytes.IndexByte(text[1:], q)
			if end < 0 {
				return "an unbalanced quote in an inline command"
			}
			word, text = text[1:1+end], text[2+end:]
		} else {
			end := bytes.IndexAny(text, " \t")
			if end < 0 {
				end = len(text)
			}
			word, text = text[:end], text[end:]
		}
		r.m.count++
		if len(r.m.items) < maxItems {
			it := item{typ: inline}
			it.data, it.cut = r.keep(nil, word, false)
			r.m.items = append(r.m.items, it)
		}
	}
	r.busy = false
	return ""
}

// Rendering for display: a scalar reply as its text; aggregates as JSON
// arrays and objects of their elements.

func (r *reader) separator() {
	if !r.render || len(r.stack) == 0 {
		return
	}
	f := r.stack[len(r.stack)-1]
	switch {
	case f.idx == 0:
	case (f.typ == tMap) && f.idx%2 == 1:
		r.appendBody([]byte{':'})
	default:
		r.appendBody([]byte{','})
	}
}

func (r *reader) openRender(typ byte) {
	if !r.render || r.inAttr > 0 || typ == tAttribute {
		return
	}
	if typ == tMap {
		r.appendBody([]byte{'{'})
	} else {
		r.appendBody([]byte{'['})
	}
}

func (r *reader) closeRender(typ byte) {
	if !r.render || r.inAttr > 0 {
		return
	}
	if typ == tMap {
		r.appendBody([]byte{'}'})
	} else {
		r.appendBody([]byte{']'})
	}
}

func (r *reader) openBulk(byte) {
	if r.render && r.inAttr == 0 && !r.bulkTop {
		r.appendBody([]byte{'"'})
	}
}

func (r *reader) renderScalar(typ byte, text []byte, null bool) {
	if !r.render || r.inAttr > 0 {
		return
	}
	top := len(r.stack) == 0
	switch {
	case null:
		if top {
			r.appendBody([]byte("(nil)"))
		} else {
			r.appendBody([]byte("null"))
		}
	case isAggregate(typ):
		if typ == tMap {
			r.appendBody([]byte("{}"))
		} else {
			r.appendBody([]byte("[]"))
		}
	case top:
		r.appendBody(text)
	case typ == tInteger || typ == tDouble || typ == tBignum:
		r.appendBody(text)
	case typ == tBoolean:
		if len(text) == 1 && text[0] == 't' {
			r.appendBody([]byte("true"))
		} else {
			r.appendBody([]byte("false"))
		}
	default:
		r.appendBody([]byte{'"'})
		if typ == tError {
			r.appendBody([]byte{'-'})
		}
		r.appendEscaped(text)
		r.appendBody([]byte{'"'})
	}
}

// bulkEnd closes a bulk string's rendering; elementDone calls it through
// the reader's feed.
func (r *reader) bulkEnd() {
	if r.render && r.inAttr == 0 && !r.bulkTop {
		r.appendBody([]byte{'"'})
	}
}

func (r *reader) appendBody(b []byte) {
	room := r.display - len(r.m.body)
	if room <= 0 {
		r.m.bodyCut = r.m.bodyCut || len(b) > 0
		return
	}
	if len(b) > room {
		b, r.m.bodyCut = b[:room], true
	}
	r.m.body = append(r.m.body, b...)
}

const hexDigits = "0123456789abcdef"

// appendEscaped renders text inside a JSON-like string: quotes, backslashes
// and bytes outside printable ASCII escaped.
func (r *reader) appendEscaped(b []byte) {
	start := 0
	for i, c := range b {
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			continue
		}
		r.appendBody(b[start:i])
		switch c {
		case '"', '\\':
			r.appendBody([]byte{'\\', c})
		case '\n':
			r.appendBody([]byte(`\n`))
		case '\r':
			r.appendBody([]byte(`\r`))
		case '\t':
			r.appendBody([]byte(`\t`))
		default:
			r.appendBody([]byte{'\\', 'x', hexDigits[c>>4], hexDigits[c&15]})
		}
		start = i + 1
		if r.m.bodyCut {
			return
		}
	}
	r.appendBody(b[start:])
}

func isAggregate(typ byte) bool {
	switch typ {
	case tArray, tMap, tSet, tPush, tAttribute:
		return true
	}
	return false
}

func typeName(typ byte) string {
	switch typ {
	case tSimple:
		return "simple string"
	case tError:
		return "error"
	case tInteger:
		return "integer"
	case tBulk:
		return "bulk string"
	case tArray:
		return "array"
	case tNull:
		return "null"
	case tDouble:
		return "double"
	case tBoolean:
		return "boolean"
	case tBlobError:
		return "blob error"
	case tVerbatim:
		return "verbatim string"
	case tBignum:
		return "big number"
	case tMap:
		return "map"
	case tSet:
		return "set"
	case tAttribute:
		return "attribute"
	case tPush:
		return "push"
	case inline:
		return "inline command"
	}
	return "value"
}

// parseInt reads a RESP length or integer: an optional minus and decimal
// digits, at most 18 of them (no overflow).
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg, b = true, b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// quoteCut quotes at most 32 bytes of b for an error message.
func quoteCut(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "…"
	}
	return strconv.Quote(string(b))
}
