package mongodb

import (
	"bytes"
	"encoding/binary"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// window is a message as kept: its first bytes (head) and its last (tail)
// of total. A message bigger than both has a hole between them: BSON
// elements are walked by their lengths, so the top-level fields after a
// big one (a reply's "ok" after its cursor's batch) are still read when
// they lie in the tail.
type window struct {
	head, tail []byte
	total      int
}

// at returns the n bytes at offset p when the window holds them.
func (w *window) at(p, n int) ([]byte, bool) {
	if p < 0 || n < 0 || p+n > w.total {
		return nil, false
	}
	if p+n <= len(w.head) {
		return w.head[p : p+n], true
	}
	if t := w.total - len(w.tail); p >= t {
		return w.tail[p-t : p-t+n], true
	}
	return nil, false
}

func (w *window) i32(p int) (int, bool) {
	b, ok := w.at(p, 4)
	if !ok {
		return 0, false
	}
	return int(int32(binary.LittleEndian.Uint32(b))), true
}

// cstring returns the NUL-terminated string at p (at most 1 KiB) and
// the offset after it.
func (w *window) cstring(p int) (string, int, bool) {
	n := min(1024, w.total-p)
	var b []byte
	var ok bool
	for n > 0 {
		if b, ok = w.at(p, n); ok {
			break
		}
		n /= 2
	}
	if !ok {
		return "", 0, false
	}
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", 0, false
	}
	return string(b[:i]), p + i + 1, true
}

// elem is a field of a document: its key, type and where its value lies.
type elem struct {
	key  string
	typ  bsoncore.Type
	off  int // the value's offset in the message
	size int // the value's length
}

// value returns the field's value when the window holds it whole.
func (w *window) value(e elem) (bsoncore.Value, bool) {
	b, ok := w.at(e.off, e.size)
	if !ok {
		return bsoncore.Value{}, false
	}
	return bsoncore.Value{Type: e.typ, Data: b}, true
}

// doc reads the length of the document at p.
func (w *window) doc(p int) (int, bool) {
	n, ok := w.i32(p)
	if !ok || n < 5 || p+n > w.total {
		return 0, false
	}
	return n, true
}

// walk calls fn for the fields of the document at p, in order, while it
// returns true; it stops at a field the window does not hold the header
// of, reporting false (a hole, or malformed bytes).
func (w *window) walk(p int, fn func(e elem) bool) bool {
	n, ok := w.doc(p)
	if !ok {
		return false
	}
	end := p + n - 1
	q := p + 4
	for q < end {
		t, ok := w.at(q, 1)
		if !ok {
			return false
		}
		key, v, ok := w.cstring(q + 1)
		if !ok {
			return false
		}
		size, ok := w.valueSize(bsoncore.Type(t[0]), v)
		if !ok || v+size > end {
			return false
		}
		if !fn(elem{key: key, typ: bsoncore.Type(t[0]), off: v, size: size}) {
			return true
		}
		q = v + size
	}
	return true
}

// valueSize returns the length of a value of type t at p.
func (w *window) valueSize(t bsoncore.Type, p int) (int, bool) {
	switch t {
	case bsoncore.TypeDouble, bsoncore.TypeDateTime, bsoncore.TypeInt64, bsoncore.TypeTimestamp:
		return 8, true
	case bsoncore.TypeString, bsoncore.TypeJavaScript, bsoncore.TypeSymbol:
		n, ok := w.i32(p)
		return 4 + n, ok && n >= 1
	case bsoncore.TypeEmbeddedDocument, bsoncore.TypeArray, bsoncore.TypeCodeWithScope:
		n, ok := w.i32(p)
		return n, ok && n >= 5
	case bsoncore.TypeBinary:
		n, ok := w.i32(p)
		return 5 + n, ok && n >= 0
	case bsoncore.TypeObjectID:
		return 12, true
	case bsoncore.TypeBoolean:
		return 1, true
	case bsoncore.TypeNull, bsoncore.TypeUndefined, bsoncore.TypeMinKey, bsoncore.TypeMaxKey:
		return 0, true
	case bsoncore.TypeRegex:
		_, q, ok := w.cstring(p)
		if !ok {
			return 0, false
		}
		_, r, ok := w.cstring(q)
		return r - p, ok
	case bsoncore.TypeDBPointer:
		n, ok := w.i32(p)
		return 4 + n + 12, ok && n >= 1
	case bsoncore.TypeInt32:
		return 4, true
	case bsoncore.TypeDecimal128:
		return 16, true
	}
	return 0, false
}

// count returns how many elements the array or document at p has, when
// the window holds all their headers.
func (w *window) count(p int) (int64, bool) {
	var n int64
	ok := w.walk(p, func(elem) bool { n++; return true })
	return n, ok
}

// asInt reads a number (double, int32, int64) or a bool as an integer.
func asInt(v bsoncore.Value) (int64, bool) {
	if b, ok := v.BooleanOK(); ok {
		if b {
			return 1, true
		}
		return 0, true
	}
	return v.AsInt64OK()
}

// depth returns how deep the documents and arrays in doc nest, stopping
// past limit; doc must be whole.
func depth(doc []byte, limit int) int {
	type frame struct{ rest []byte }
	stack := []frame{{rest: docBody(doc)}}
	most := 1
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.rest) == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		el, rest, ok := bsoncore.ReadElement(top.rest)
		if !ok {
			stack = stack[:len(stack)-1]
			continue
		}
		top.rest = rest
		if t := el.Value().Type; t == bsoncore.TypeEmbeddedDocument || t == bsoncore.TypeArray {
			stack = append(stack, frame{rest: docBody(el.Value().Data)})
			most = max(most, len(stack))
			if most > limit {
				return most
			}
		}
	}
	return most
}

// docBody returns a document's elements: without its length and final
// NUL.
func docBody(doc []byte) []byte {
	if len(doc) < 5 {
		return nil
	}
	n := int(int32(binary.LittleEndian.Uint32(doc)))
	if n < 5 || n > len(doc) {
		return nil
	}
	return doc[4 : n-1]
}
