package mqtt

import (
	"encoding/binary"
	"encoding/hex"
	"unicode/utf8"

	"github.com/wirescope/wirescope/dissect/proto"
)

// reader reads a packet's fields from the bytes kept of it. Reading past
// them sets short: the packet is malformed when all of it was kept, cut
// otherwise.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if r.short || n > len(r.b) {
		r.short = true
		r.b = nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// bin reads a two-byte length and as many bytes.
func (r *reader) bin() []byte {
	n := r.u16()
	if r.short {
		return nil
	}
	return r.take(int(n))
}

func (r *reader) str() string { return string(r.bin()) }

func (r *reader) varint() int {
	if r.short {
		return 0
	}
	v, n := uvarint(r.b)
	if n <= 0 {
		r.short = true
		r.b = nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// props reads a 5.0 property block into x (nil: checked only) and
// returns its topic alias (-1: none).
func (r *reader) props(x *proto.Extra) int {
	n := r.varint()
	b := r.take(n)
	if r.short {
		return -1
	}
	alias, ok := readProps(b, x)
	if !ok {
		r.short = true
	}
	return alias
}

// Property identifiers and the types of their values.
const (
	pByte = iota + 1
	pU16
	pU32
	pVarint
	pStr
	pBin
	pPair
)

type propDef struct {
	name string
	typ  uint8
}

var propDefs = map[int]propDef{
	0x01: {"payload_format", pByte}, 0x02: {"message_expiry", pU32}, 0x03: {"content_type", pStr},
	0x08: {"response_topic", pStr}, 0x09: {"correlation_data", pBin}, 0x0B: {"subscription_identifier", pVarint},
	0x11: {"session_expiry", pU32}, 0x12: {"assigned_client_id", pStr}, 0x13: {"server_keep_alive", pU16},
	0x15: {"auth_method", pStr}, 0x16: {"auth_data_size", pBin}, 0x17: {"request_problem_info", pByte},
	0x18: {"will_delay", pU32}, 0x19: {"request_response_info", pByte}, 0x1A: {"response_info", pStr},
	0x1C: {"server_reference", pStr}, 0x1F: {"reason_string", pStr}, 0x21: {"receive_maximum", pU16},
	0x22: {"topic_alias_maximum", pU16}, 0x23: {"topic_alias", pU16}, 0x24: {"maximum_qos", pByte},
	0x25: {"retain_available", pByte}, 0x26: {"user_properties", pPair}, 0x27: {"maximum_packet_size", pU32},
	0x28: {"wildcard_subscription_available", pByte}, 0x29: {"subscription_identifiers_available", pByte},
	0x2A: {"shared_subscription_available", pByte},
}

// readProps reads the properties in b (without their length) into x
// (nil: checked only); ok is false when b does not hold properties.
func readProps(b []byte, x *proto.Extra) (alias int, ok bool) {
	r := reader{b: b}
	alias = -1
	var user proto.Extra
	for len(r.b) > 0 && !r.short {
		id := r.varint()
		d, known := propDefs[id]
		if !known {
			return alias, false
		}
		var v any
		switch d.typ {
		case pByte:
			v = int(r.u8())
		case pU16:
			v = int(r.u16())
		case pU32:
			if w := r.take(4); w != nil {
				v = int64(binary.BigEndian.Uint32(w))
			}
		case pVarint:
			v = r.varint()
		case pStr:
			v = r.str()
		case pBin:
			w := r.bin()
			if id == 0x16 {
				v = len(w) // authentication data: its size only
			} else {
				v = showBytes(w)
			}
		case pPair:
			k, val := r.str(), r.str()
			if !r.short {
				user = append(user, proto.Field{Key: k, Value: val})
			}
			continue
		}
		if r.short {
			break
		}
		switch id {
		case 0x23:
			alias = v.(int)
			continue
		case 0x01:
			if v == 1 {
				v = "utf-8"
			} else {
				v = "unspecified bytes"
			}
		case 0x0B:
			if x != nil {
				ids, _ := x.Get(d.name).([]int)
				v = append(ids, v.(int))
			}
		}
		if x != nil {
			x.Set(d.name, v)
		}
	}
	if r.short {
		return alias, false
	}
	if x != nil && len(user) > 0 {
		x.Set("user_properties", user)
	}
	return alias, true
}

// showBytes shows binary data as text when it is printable UTF-8, as hex
// otherwise.
func showBytes(b []byte) string {
	if utf8.Valid(b) {
		printable := true
		for _, c := range b {
			if c < 0x20 || c == 0x7f {
				printable = false
				break
			}
		}
		if printable {
			return string(b)
		}
	}
	return "0x" + hex.EncodeToString(b)
}
