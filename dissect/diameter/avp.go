package diameter

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// avp is one AVP, its data unpadded.
type avp struct {
	code   uint32
	flags  byte
	vendor uint32
	data   []byte
}

// AVP flags.
const (
	avpVendor    = 0x80
	avpMandatory = 0x40
)

// nextAVP reads the AVP at the start of b: the AVP, the bytes after it
// (its padding skipped), and why b does not start a whole AVP ("" when it
// does).
func nextAVP(b []byte) (a avp, rest []byte, bad string) {
	if len(b) < 8 {
		return a, nil, strconv.Itoa(len(b)) + " bytes left, shorter than an AVP header"
	}
	a.code = binary.BigEndian.Uint32(b)
	a.flags = b[4]
	n := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
	hdr := 8
	if a.flags&avpVendor != 0 {
		hdr = 12
		if len(b) < 12 {
			return a, nil, "AVP " + strconv.FormatUint(uint64(a.code), 10) + " cut in its header"
		}
		a.vendor = binary.BigEndian.Uint32(b[8:])
	}
	if n < hdr {
		return a, nil, "AVP " + strconv.FormatUint(uint64(a.code), 10) + " of length " + strconv.Itoa(n) + " is shorter than its header"
	}
	if n > len(b) {
		// What there is of it, for a message cut where it was kept.
		a.data = b[hdr:]
		return a, nil, "AVP " + strconv.FormatUint(uint64(a.code), 10) + " of length " + strconv.Itoa(n) + " overruns the " + strconv.Itoa(len(b)) + " bytes left"
	}
	a.data = b[hdr:n]
	padded := (n + 3) &^ 3
	return a, b[min(padded, len(b)):], ""
}

// u32 reads a 4-byte value.
func (a avp) u32() (uint32, bool) {
	if len(a.data) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a.data), true
}

// maxDepth bounds how deep Grouped AVPs are read.
const maxDepth = 16

// info is what a message's AVPs say that calls carry.
type info struct {
	sessionID, originHost, originRealm, destHost, destRealm string
	userName, productName, errorMessage                     string
	resultCode                                              uint32
	hasResult                                               bool
	expVendor, expCode                                      uint32
	hasExp                                                  bool
	ccType, ccNumber                                        uint32
	hasCCType, hasCCNumber                                  bool
	disconnect, termination                                 uint32
	hasDisconnect, hasTermination                           bool
	failedAVP                                               string
	authApps, acctApps                                      []uint32
	// bad says why the AVPs stopped being read before their end.
	bad string
}

// text turns AVP data into a string: as it is when it is printable
// UTF-8, else hex.
func text(b []byte) string {
	if printable(b) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b[:min(len(b), 64)]) + cutNote(len(b), 64)
}

func cutNote(n, max int) string {
	if n <= max {
		return ""
	}
	return "… (" + strconv.Itoa(n) + " bytes)"
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return utf8.Valid(b)
}

// readInfo walks a message's top-level AVPs (and the Grouped ones calls
// need: Experimental-Result, Failed-AVP, Vendor-Specific-Application-Id).
func readInfo(b []byte) info {
	var in info
	for len(b) > 0 {
		a, rest, bad := nextAVP(b)
		if bad != "" {
			in.bad = bad
			break
		}
		b = rest
		if a.vendor != 0 {
			continue
		}
		switch a.code {
		case 263:
			in.sessionID = text(a.data)
		case 264:
			in.originHost = text(a.data)
		case 296:
			in.originRealm = text(a.data)
		case 293:
			in.destHost = text(a.data)
		case 283:
			in.destRealm = text(a.data)
		case 1:
			in.userName = text(a.data)
		case 269:
			in.productName = text(a.data)
		case 281:
			in.errorMessage = text(a.data)
		case 268:
			in.resultCode, in.hasResult = a.u32()
		case 416:
			in.ccType, in.hasCCType = a.u32()
		case 415:
			in.ccNumber, in.hasCCNumber = a.u32()
		case 273:
			in.disconnect, in.hasDisconnect = a.u32()
		case 295:
			in.termination, in.hasTermination = a.u32()
		case 258:
			if v, ok := a.u32(); ok {
				in.authApps = append(in.authApps, v)
			}
		case 259:
			if v, ok := a.u32(); ok {
				in.acctApps = append(in.acctApps, v)
			}
		case 260, 297, 279:
			in.grouped(a)
		}
	}
	return in
}

// grouped reads the Grouped AVPs readInfo wants.
func (in *info) grouped(g avp) {
	b := g.data
	first := true
	for len(b) > 0 {
		a, rest, bad := nextAVP(b)
		if bad != "" {
			return
		}
		b = rest
		switch g.code {
		case 279: // Failed-AVP: the AVP that failed, named.
			if first {
				in.failedAVP = avpName(a.vendor, a.code) + " (" + strconv.FormatUint(uint64(a.code), 10) + ")"
			}
		case 297: // Experimental-Result
			if a.vendor == 0 && a.code == 266 {
				in.expVendor, _ = a.u32()
			} else if a.vendor == 0 && a.code == 298 {
				in.expCode, in.hasExp = a.u32()
			}
		case 260: // Vendor-Specific-Application-Id
			if v, ok := a.u32(); ok && a.vendor == 0 && a.code == 258 {
				in.authApps = append(in.authApps, v)
			} else if ok && a.vendor == 0 && a.code == 259 {
				in.acctApps = append(in.acctApps, v)
			}
		}
		first = false
	}
}

// render appends a message's AVPs as "Name: value" lines, Grouped ones'
// members indented, until dst holds more than max bytes; it returns dst
// and whether it stopped early.
func render(dst, b []byte, depth, max int) ([]byte, bool) {
	for len(b) > 0 {
		if len(dst) > max {
			return dst, true
		}
		a, rest, bad := nextAVP(b)
		if bad != "" && a.data == nil {
			return undecoded(dst, depth, bad), false
		}
		for range depth {
			dst = append(dst, "  "...)
		}
		b = rest
		d, known := avps[avpKey(a.vendor, a.code)]
		dst = append(dst, avpName(a.vendor, a.code)...)
		dst = append(dst, ':')
		if !known {
			d.typ = tOctets
		}
		if d.typ == tGrouped {
			dst = append(dst, '\n')
			if depth+1 >= maxDepth {
				for range depth + 1 {
					dst = append(dst, "  "...)
				}
				dst = append(dst, "(nested deeper than "...)
				dst = strconv.AppendInt(dst, maxDepth, 10)
				dst = append(dst, ", not decoded)\n"...)
				continue
			}
			var cut bool
			if dst, cut = render(dst, a.data, depth+1, max); cut {
				return dst, true
			}
		} else {
			dst = append(dst, ' ')
			dst = appendValue(dst, a, d.typ)
			dst = append(dst, '\n')
		}
		if bad != "" {
			return undecoded(dst, depth, bad), false
		}
	}
	return dst, false
}

// undecoded appends a line saying why AVPs stopped being read.
func undecoded(dst []byte, depth int, why string) []byte {
	for range depth {
		dst = append(dst, "  "...)
	}
	dst = append(dst, "(undecoded: "...)
	dst = append(dst, why...)
	return append(dst, ")\n"...)
}

// appendValue appends an AVP's value by its type.
func appendValue(dst []byte, a avp, typ avpType) []byte {
	switch typ {
	case tSecret:
		dst = append(dst, '(')
		dst = strconv.AppendInt(dst, int64(len(a.data)), 10)
		return append(dst, " bytes, not shown)"...)
	case tText, tOctets:
		return append(dst, text(a.data)...)
	case tU32, tI32, tEnum:
		v, ok := a.u32()
		if !ok {
			break
		}
		if typ == tI32 {
			return strconv.AppendInt(dst, int64(int32(v)), 10)
		}
		if typ == tEnum {
			if n, ok := enums[avpKey(a.vendor, a.code)][v]; ok {
				dst = append(dst, n...)
				dst = append(dst, " ("...)
				dst = strconv.AppendUint(dst, uint64(v), 10)
				return append(dst, ')')
			}
		}
		dst = strconv.AppendUint(dst, uint64(v), 10)
		if a.vendor == 0 {
			switch a.code {
			case 268:
				if n, ok := resultNames[v]; ok {
					dst = append(dst, " ("...)
					dst = append(dst, n...)
					dst = append(dst, ')')
				}
			case 258, 259:
				dst = append(dst, " ("...)
				dst = append(dst, appName(v)...)
				dst = append(dst, ')')
			}
		}
		return dst
	case tU64:
		if len(a.data) == 8 {
			return strconv.AppendUint(dst, binary.BigEndian.Uint64(a.data), 10)
		}
	case tAddress:
		if len(a.data) == 6 && a.data[1] == 1 && a.data[0] == 0 {
			return netip.AddrFrom4([4]byte(a.data[2:])).AppendTo(dst)
		}
		if len(a.data) == 18 && a.data[1] == 2 && a.data[0] == 0 {
			return netip.AddrFrom16([16]byte(a.data[2:])).AppendTo(dst)
		}
		return append(dst, text(a.data)...)
	case tTime:
		if len(a.data) == 4 {
			// NTP seconds since 1900.
			s := int64(binary.BigEndian.Uint32(a.data)) - 2208988800
			return time.Unix(s, 0).UTC().AppendFormat(dst, time.RFC3339)
		}
	}
	return append(dst, text(a.data)...)
}
