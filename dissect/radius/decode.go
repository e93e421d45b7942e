package radius

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxHex caps the bytes of an octets value shown as hex in a body.
	maxHex = 64
	// maxClass caps the bytes of Class shown in the extra fields.
	maxClass = 16
	redacted = "[redacted]"
)

// enumKeys are the extra fields of the enumerated attributes kept.
var enumKeys = map[byte]string{attrNASPortType: "nas_port_type", attrServiceType: "service_type",
	attrAcctStatusType: "acct_status_type", attrErrorCause: "error_cause"}

// decoded is what a packet's attributes say.
type decoded struct {
	user    string
	hasUser bool
	// fields are the extra fields the attributes give, in their order.
	fields proto.Extra
	// vendors counts vendor attributes by vendor.
	vendors proto.Extra
	// eap holds the first bytes of the EAP packet the EAP-Message
	// attributes carry (code, identifier, length, type); eapBytes their
	// total length.
	eap      []byte
	eapBytes int
	msgAuth  bool
	// body is the attributes one a line, for display; nil when not kept.
	body []byte
	max  int
}

// decode reads the attributes of pkt (a whole packet, header included),
// keeping a display body when body is set (cut a little past max), and
// returns why they do not parse, or "".
func (d *decoded) decode(pkt []byte, body bool, max int) string {
	d.max = max
	if body {
		d.body = make([]byte, 0, min(max, 4*len(pkt))+1)
	}
	// The EAP packet first: its code and method head the first
	// EAP-Message line.
	walk(pkt[headerLen:], func(typ byte, v []byte) {
		if typ == attrEAPMessage {
			if len(d.eap) < 5 {
				d.eap = append(d.eap, v[:min(len(v), 5-len(d.eap))]...)
			}
			d.eapBytes += len(v)
		}
	})
	eapSeen := false
	why := walk(pkt[headerLen:], func(typ byte, v []byte) {
		if typ == attrEAPMessage {
			if !eapSeen {
				eapSeen = true
				d.line("EAP-Message", literal(eapName(d.eap)+" ("+strconv.Itoa(d.eapBytes)+" bytes)"))
			}
			return
		}
		d.attr(typ, v)
	})
	if why != "" {
		return "malformed: " + why
	}
	return ""
}

// line appends "name = value" to the body, until it passes the display
// cap.
func (d *decoded) line(name string, value func(b []byte) []byte) {
	if d.body == nil || len(d.body) > d.max {
		return
	}
	if len(d.body) > 0 {
		d.body = append(d.body, '\n')
	}
	d.body = append(d.body, name...)
	d.body = append(d.body, " = "...)
	d.body = value(d.body)
}

func quoted(v []byte) func([]byte) []byte {
	return func(b []byte) []byte { return strconv.AppendQuote(b, string(v)) }
}

func literal(s string) func([]byte) []byte {
	return func(b []byte) []byte { return append(b, s...) }
}

// hexValue is v as 0x… hex, cut to maxHex bytes ("…" after).
func hexValue(v []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		b = append(b, "0x"...)
		b = hex.AppendEncode(b, v[:min(len(v), maxHex)])
		if len(v) > maxHex {
			b = append(b, "…"...)
		}
		return b
	}
}

// attr reads one standard attribute.
func (d *decoded) attr(typ byte, v []byte) {
	def := stdAttr(typ)
	switch typ {
	case attrUserName:
		if !d.hasUser {
			d.user, d.hasUser = string(v), true
		}
	case attrNASIPAddress, attrFramedIPAddress:
		if len(v) == 4 {
			key := "nas_ip"
			if typ == attrFramedIPAddress {
				key = "framed_ip"
			}
			d.fields.Set(key, netip.AddrFrom4([4]byte(v)).String())
		}
	case attrNASIdentifier:
		d.fields.Set("nas_identifier", string(v))
	case attrNASPort:
		if len(v) == 4 {
			d.fields.Set("nas_port", int(binary.BigEndian.Uint32(v)))
		}
	case attrNASPortType, attrServiceType, attrAcctStatusType, attrErrorCause:
		if len(v) == 4 {
			d.fields.Set(enumKeys[typ], enumName(def.enums, binary.BigEndian.Uint32(v)))
		}
	case attrCalledStationID:
		d.fields.Set("called_station_id", string(v))
	case attrCallingStationID:
		d.fields.Set("calling_station_id", string(v))
	case attrAcctSessionID:
		d.fields.Set("acct_session", string(v))
	case attrReplyMessage:
		if old, ok := d.fields.Get("reply_message").(string); ok {
			d.fields.Set("reply_message", old+" "+string(v))
		} else {
			d.fields.Set("reply_message", string(v))
		}
	case attrSessionTimeout:
		if len(v) == 4 {
			d.fields.Set("session_timeout", int(binary.BigEndian.Uint32(v)))
		}
	case attrClass:
		s := hex.EncodeToString(v[:min(len(v), maxClass)])
		if len(v) > maxClass {
			s += "…"
		}
		d.fields.Set("class", s)
	case attrMessageAuthenticator:
		d.msgAuth = true
	case attrVendorSpecific:
		d.vsa(v)
		return
	}
	d.line(def.name, value(def, v))
}

// vsa reads a Vendor-Specific attribute: the vendor id, then the vendor's
// sub-attributes when they walk exactly (else the value as hex).
func (d *decoded) vsa(v []byte) {
	if len(v) < 4 {
		d.line("Vendor-Specific", hexValue(v))
		return
	}
	vendor := binary.BigEndian.Uint32(v)
	name := strconv.FormatUint(uint64(vendor), 10)
	if n, ok := vendorNames[vendor]; ok {
		name = n
	}
	count := 0
	if walk(v[4:], func(byte, []byte) { count++ }) != "" || count == 0 {
		// A vendor format other than RFC 2865's suggested one.
		count = 1
		d.line("Attr-26."+strconv.FormatUint(uint64(vendor), 10), hexValue(v[4:]))
	} else {
		walk(v[4:], func(typ byte, sv []byte) {
			def := vendorAttr(vendor, typ)
			d.line(def.name, value(def, sv))
		})
	}
	old, _ := d.vendors.Get(name).(int)
	d.vendors.Set(name, old+count)
}

// value formats an attribute's value as its definition says; a value of
// the wrong size for its kind is shown as hex.
func value(def attrDef, v []byte) func([]byte) []byte {
	switch def.kind {
	case kSecret:
		return literal(redacted)
	case kText:
		return quoted(v)
	case kInt, kEnum, kDate:
		if len(v) != 4 {
			break
		}
		n := binary.BigEndian.Uint32(v)
		switch def.kind {
		case kEnum:
			return literal(enumName(def.enums, n))
		case kDate:
			return literal(time.Unix(int64(n), 0).UTC().Format(time.RFC3339))
		}
		return literal(strconv.FormatUint(uint64(n), 10))
	case kTagInt:
		if len(v) != 4 {
			break
		}
		n := uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
		s := strconv.FormatUint(uint64(n), 10)
		if def.enums != nil {
			s = enumName(def.enums, n)
		}
		if v[0] != 0 {
			s = s + " (tag " + strconv.Itoa(int(v[0])) + ")"
		}
		return literal(s)
	case kIP:
		if len(v) == 4 {
			return literal(netip.AddrFrom4([4]byte(v)).String())
		}
	case kIPv6:
		if len(v) == 16 {
			return literal(netip.AddrFrom16([16]byte(v)).String())
		}
	case kPrefix:
		if len(v) >= 2 && len(v) <= 18 && int(v[1]) <= 128 {
			var a [16]byte
			copy(a[:], v[2:])
			return literal(netip.AddrFrom16(a).String() + "/" + strconv.Itoa(int(v[1])))
		}
	}
	return hexValue(v)
}

// enumName names n by enums, or gives its number.
func enumName(enums map[uint32]string, n uint32) string {
	if s, ok := enums[n]; ok {
		return s
	}
	return strconv.FormatUint(uint64(n), 10)
}

// requestExtra returns a request's extra fields: its identifier, then what
// its attributes gave.
func (d *decoded) requestExtra(id byte) proto.Extra {
	x := make(proto.Extra, 0, len(d.fields)+4)
	x = append(x, proto.Field{Key: "id", Value: int(id)})
	x = append(x, d.fields...)
	if d.eapBytes > 0 {
		x = append(x, proto.Field{Key: "eap", Value: eapName(d.eap)})
	}
	if d.msgAuth {
		x = append(x, proto.Field{Key: "message_authenticator", Value: true})
	}
	if len(d.vendors) > 0 {
		x = append(x, proto.Field{Key: "vendors", Value: d.vendors})
	}
	return x
}

// responseExtra adds a response's fields to its call's: those its
// attributes gave (a request's of the same name kept as they were, but for
// the reply's own), its EAP and vendors under reply names.
func (d *decoded) responseExtra(x *proto.Extra) {
	for _, f := range d.fields {
		switch f.Key {
		case "reply_message", "session_timeout", "class", "error_cause":
			x.Set(f.Key, f.Value)
		case "framed_ip":
			x.Set("framed_ip", f.Value)
		default:
			if x.Get(f.Key) == nil {
				x.Set(f.Key, f.Value)
			}
		}
	}
	if d.eapBytes > 0 {
		x.Set("eap_reply", eapName(d.eap))
	}
	if d.msgAuth {
		x.Set("reply_message_authenticator", true)
	}
	if len(d.vendors) > 0 {
		x.Set("reply_vendors", d.vendors)
	}
}
