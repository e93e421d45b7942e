package proto

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// Word-at-a-time helpers (SWAR): they test eight bytes at once for the few
// byte values that need attention, so long runs of plain text are copied in
// bulk.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// bytesOf views s as a byte slice without copying, for reading only: word
// loads from a []byte compile to one instruction, from a string to eight.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// jsonSpecial reports which bytes of x are below 0x20, '"', '\\' or
// non-ASCII: the bytes a JSON string writer must look at.
func jsonSpecial(x uint64) uint64 {
	below := (x - lsb*0x20) &^ x
	quote := x ^ (lsb * '"')
	quote = (quote - lsb) &^ quote
	bslash := x ^ (lsb * '\\')
	bslash = (bslash - lsb) &^ bslash
	return (below | quote | bslash | x) & msb
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, so
// the output is always valid JSON whatever bytes a capture held.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	raw := bytesOf(s)
	start := 0
	for i := 0; i < len(s); {
		if i+8 <= len(s) && jsonSpecial(binary.LittleEndian.Uint64(raw[i:])) == 0 {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendString appends s as a JSON string.
func AppendString(b []byte, s string) []byte { return appendString(b, s) }

// AppendTime appends t as a JSON string in TimeLayout, in UTC.
func AppendTime(b []byte, t time.Time) []byte { return appendTime(b, t) }

// appendMap appends m as a JSON object with sorted keys, so that output is
// deterministic.
func appendMap[V any](b []byte, m map[string]V, value func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

// AppendValue appends v as JSON. Maps are written with sorted keys so that
// output is deterministic. Common types are written directly; others go
// through encoding/json.
func AppendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint16:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']')
	case []int:
		b = append(b, '[')
		for i, n := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		return append(b, ']')
	case Extra:
		return v.AppendJSON(b)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendValue(b, e)
		}
		return append(b, ']')
	case map[string]any:
		return appendMap(b, v, AppendValue)
	case map[string]string:
		return appendMap(b, v, appendString)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return appendString(b, "unencodable: "+err.Error())
	}
	return append(b, j...)
}
