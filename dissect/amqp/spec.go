package amqp

import (
	"encoding/binary"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Who sends a method.
const (
	byClient = 1
	byServer = 2
	byBoth   = 3
)

// Kinds of method.
const (
	kSync   = iota // a synchronous request: its replies answer it
	kReply         // a reply to a synchronous request
	kOneWay        // no reply expected
	kClose         // channel.close and connection.close
)

// method is what the specification says of one class and method.
type method struct {
	name    string
	kind    uint8
	from    uint8
	content bool     // content header and body frames follow it
	replies []uint16 // the method IDs (same class) that answer it
	// min is the fewest argument bytes it has (detection checks it).
	min int
}

func key(class, m uint16) uint32 { return uint32(class)<<16 | uint32(m) }

// Classes.
const (
	cConnection = 10
	cChannel    = 20
	cExchange   = 40
	cQueue      = 50
	cBasic      = 60
	cConfirm    = 85
	cTx         = 90
)

// methods lists AMQP 0-9-1's classes and methods (and RabbitMQ's
// extensions: exchange.bind, basic.nack, confirm, connection.blocked and
// .update-secret), by class<<16|method.
var methods = map[uint32]*method{}

func def(class, id uint16, name string, kind, from uint8, min int, replies ...uint16) {
	methods[key(class, id)] = &method{name: name, kind: kind, from: from, replies: replies, min: min}
}

func init() {
	def(cConnection, 10, "connection.start", kSync, byServer, 10, 11)
	def(cConnection, 11, "connection.start-ok", kReply, byClient, 10)
	def(cConnection, 20, "connection.secure", kSync, byServer, 4, 21)
	def(cConnection, 21, "connection.secure-ok", kReply, byClient, 4)
	def(cConnection, 30, "connection.tune", kSync, byServer, 8, 31)
	def(cConnection, 31, "connection.tune-ok", kReply, byClient, 8)
	def(cConnection, 40, "connection.open", kSync, byClient, 3, 41)
	def(cConnection, 41, "connection.open-ok", kReply, byServer, 1)
	def(cConnection, 50, "connection.close", kClose, byBoth, 7, 51)
	def(cConnection, 51, "connection.close-ok", kReply, byBoth, 0)
	def(cConnection, 60, "connection.blocked", kOneWay, byServer, 1)
	def(cConnection, 61, "connection.unblocked", kOneWay, byServer, 0)
	def(cConnection, 70, "connection.update-secret", kSync, byClient, 5, 71)
	def(cConnection, 71, "connection.update-secret-ok", kReply, byServer, 0)
	def(cChannel, 10, "channel.open", kSync, byClient, 1, 11)
	def(cChannel, 11, "channel.open-ok", kReply, byServer, 4)
	def(cChannel, 20, "channel.flow", kSync, byBoth, 1, 21)
	def(cChannel, 21, "channel.flow-ok", kReply, byBoth, 1)
	def(cChannel, 40, "channel.close", kClose, byBoth, 7, 41)
	def(cChannel, 41, "channel.close-ok", kReply, byBoth, 0)
	def(cExchange, 10, "exchange.declare", kSync, byClient, 9, 11)
	def(cExchange, 11, "exchange.declare-ok", kReply, byServer, 0)
	def(cExchange, 20, "exchange.delete", kSync, byClient, 4, 21)
	def(cExchange, 21, "exchange.delete-ok", kReply, byServer, 0)
	def(cExchange, 30, "exchange.bind", kSync, byClient, 10, 31)
	def(cExchange, 31, "exchange.bind-ok", kReply, byServer, 0)
	def(cExchange, 40, "exchange.unbind", kSync, byClient, 10, 51)
	def(cExchange, 51, "exchange.unbind-ok", kReply, byServer, 0)
	def(cQueue, 10, "queue.declare", kSync, byClient, 8, 11)
	def(cQueue, 11, "queue.declare-ok", kReply, byServer, 9)
	def(cQueue, 20, "queue.bind", kSync, byClient, 10, 21)
	def(cQueue, 21, "queue.bind-ok", kReply, byServer, 0)
	def(cQueue, 30, "queue.purge", kSync, byClient, 4, 31)
	def(cQueue, 31, "queue.purge-ok", kReply, byServer, 4)
	def(cQueue, 40, "queue.delete", kSync, byClient, 4, 41)
	def(cQueue, 41, "queue.delete-ok", kReply, byServer, 4)
	def(cQueue, 50, "queue.unbind", kSync, byClient, 9, 51)
	def(cQueue, 51, "queue.unbind-ok", kReply, byServer, 0)
	def(cBasic, 10, "basic.qos", kSync, byClient, 7, 11)
	def(cBasic, 11, "basic.qos-ok", kReply, byServer, 0)
	def(cBasic, 20, "basic.consume", kSync, byClient, 9, 21)
	def(cBasic, 21, "basic.consume-ok", kReply, byServer, 1)
	def(cBasic, 30, "basic.cancel", kSync, byBoth, 2, 31)
	def(cBasic, 31, "basic.cancel-ok", kReply, byBoth, 1)
	def(cBasic, 40, "basic.publish", kOneWay, byClient, 5)
	def(cBasic, 50, "basic.return", kOneWay, byServer, 5)
	def(cBasic, 60, "basic.deliver", kOneWay, byServer, 12)
	def(cBasic, 70, "basic.get", kSync, byClient, 4, 71, 72)
	def(cBasic, 71, "basic.get-ok", kReply, byServer, 15)
	def(cBasic, 72, "basic.get-empty", kReply, byServer, 1)
	def(cBasic, 80, "basic.ack", kOneWay, byBoth, 9)
	def(cBasic, 90, "basic.reject", kOneWay, byClient, 9)
	def(cBasic, 100, "basic.recover-async", kOneWay, byClient, 1)
	def(cBasic, 110, "basic.recover", kSync, byClient, 1, 111)
	def(cBasic, 111, "basic.recover-ok", kReply, byServer, 0)
	def(cBasic, 120, "basic.nack", kOneWay, byBoth, 9)
	def(cConfirm, 10, "confirm.select", kSync, byClient, 1, 11)
	def(cConfirm, 11, "confirm.select-ok", kReply, byServer, 0)
	def(cTx, 10, "tx.select", kSync, byClient, 0, 11)
	def(cTx, 11, "tx.select-ok", kReply, byServer, 0)
	def(cTx, 20, "tx.commit", kSync, byClient, 0, 21)
	def(cTx, 21, "tx.commit-ok", kReply, byServer, 0)
	def(cTx, 30, "tx.rollback", kSync, byClient, 0, 31)
	def(cTx, 31, "tx.rollback-ok", kReply, byServer, 0)
	for _, k := range []uint32{key(cBasic, 40), key(cBasic, 50), key(cBasic, 60), key(cBasic, 71)} {
		methods[k].content = true
	}
}

// methodName names a class and method, known or not.
func methodName(class, id uint16) string {
	if m := methods[key(class, id)]; m != nil {
		return m.name
	}
	return strconv.Itoa(int(class)) + "." + strconv.Itoa(int(id))
}

// argsFit says whether b can be the arguments of m: as long as its fixed
// part, and its first short strings within b (detection).
func argsFit(m *method, b []byte) bool {
	if len(b) < m.min {
		return false
	}
	d := dec{b: b}
	switch m.name {
	case "basic.publish", "exchange.declare", "queue.declare", "queue.bind", "basic.consume", "basic.get":
		d.short()
		d.shortstr()
	case "basic.deliver":
		d.shortstr()
		d.longlong()
		d.bit()
		d.shortstr()
		d.shortstr()
	case "basic.ack", "basic.nack", "basic.reject":
		d.longlong()
		d.bit()
		return !d.bad && len(d.b) == 0
	case "connection.start":
		if len(b) < 2 || b[0] != 0 || b[1] != 9 && b[1] != 8 {
			return false
		}
	}
	return !d.bad
}

// dec reads arguments: consecutive bits share an octet; a read past the
// end sets bad and reads zeros.
type dec struct {
	b    []byte
	bits byte // the octet bits are read from
	nbit uint // bits read of it; 0: none (or all eight)
	bad  bool
}

func (d *dec) take(n int) []byte {
	d.nbit = 0
	if n > len(d.b) || n < 0 {
		d.bad = true
		d.b = nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) octet() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *dec) short() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *dec) long() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *dec) longlong() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *dec) bit() bool {
	if d.nbit == 0 || d.nbit == 8 {
		if len(d.b) == 0 {
			d.bad = true
			return false
		}
		d.bits = d.b[0]
		d.b = d.b[1:]
		d.nbit = 0
	}
	v := d.bits&(1<<d.nbit) != 0
	d.nbit++
	return v
}

// shortstrBytes reads a short string without copying it.
func (d *dec) shortstrBytes() []byte {
	n := int(d.octet())
	if d.bad {
		return nil
	}
	return d.take(n)
}

func (d *dec) shortstr() string { return text(d.shortstrBytes(), 255) }

// longstr reads a long string without copying it.
func (d *dec) longstr() []byte {
	n := d.long()
	if d.bad {
		return nil
	}
	if uint64(n) > uint64(len(d.b)) {
		d.bad = true
		d.b = nil
		return nil
	}
	return d.take(int(n))
}

// text copies b into a string of at most max bytes (a UTF-8 sequence
// not cut in half).
func text(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
		for len(b) > 0 && !utf8.FullRune(b[lastStart(b):]) {
			b = b[:lastStart(b)]
		}
	}
	return string(b)
}

func lastStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return len(b)
}

const (
	// maxDepth is how deep nested tables and arrays are rendered.
	maxDepth = 16
	// maxEntries is how many entries (of all nesting levels) one table's
	// rendering holds; maxValue how many bytes of a string value.
	maxEntries = 64
	maxValue   = 256
)

// table reads a field table and renders it, at most maxDepth deep and
// maxEntries entries in all: nil when it is empty.
func (d *dec) table() proto.Extra {
	b := d.longstr()
	if d.bad {
		return nil
	}
	budget := maxEntries
	x, _ := renderTable(b, 1, &budget)
	return x
}

// renderTable renders the entries of a table's bytes; ok is false when
// they do not parse (what parsed before is kept).
func renderTable(b []byte, depth int, budget *int) (proto.Extra, bool) {
	var x proto.Extra
	d := dec{b: b}
	for len(d.b) > 0 {
		name := d.shortstr()
		if d.bad {
			return x, false
		}
		v, ok := d.value(depth, budget)
		if !ok {
			return x, false
		}
		if *budget <= 0 {
			x.Set("…", "more entries not shown")
			return x, true
		}
		*budget--
		x.Set(name, v)
	}
	return x, true
}

// value reads one field value of a table or array.
func (d *dec) value(depth int, budget *int) (any, bool) {
	t := d.octet()
	if d.bad {
		return nil, false
	}
	var v any
	switch t {
	case 't':
		v = d.octet() != 0
	case 'b':
		v = int(int8(d.octet()))
	case 'B':
		v = int(d.octet())
	case 's', 'U':
		v = int(int16(d.short()))
	case 'u':
		v = int(d.short())
	case 'I':
		v = int(int32(d.long()))
	case 'i':
		v = int64(d.long())
	case 'l', 'L':
		v = int64(d.longlong())
	case 'f':
		v = float(float64(math.Float32frombits(d.long())))
	case 'd':
		v = float(math.Float64frombits(d.longlong()))
	case 'D':
		scale := d.octet()
		n := int32(d.long())
		v = strconv.Itoa(int(n)) + "e-" + strconv.Itoa(int(scale))
	case 'S', 'x':
		s := d.longstr()
		if utf8.Valid(s) {
			v = text(s, maxValue)
		} else {
			v = "(" + strconv.Itoa(len(s)) + " bytes)"
		}
	case 'T':
		v = int64(d.longlong())
	case 'V':
		v = nil
	case 'F':
		b := d.longstr()
		if d.bad {
			return nil, false
		}
		if depth >= maxDepth {
			return "(table nested too deep: not shown)", true
		}
		x, ok := renderTable(b, depth+1, budget)
		if !ok {
			return nil, false
		}
		if x == nil {
			x = proto.Extra{}
		}
		v = x
	case 'A':
		b := d.longstr()
		if d.bad {
			return nil, false
		}
		if depth >= maxDepth {
			return "(array nested too deep: not shown)", true
		}
		a := dec{b: b}
		out := []any{}
		for len(a.b) > 0 {
			e, ok := a.value(depth+1, budget)
			if !ok {
				return nil, false
			}
			if *budget <= 0 {
				out = append(out, "…")
				break
			}
			*budget--
			out = append(out, e)
		}
		v = out
	default:
		return nil, false
	}
	if d.bad {
		return nil, false
	}
	return v, true
}

// float keeps a float JSON can write (NaN and infinities cannot be).
func float(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}
