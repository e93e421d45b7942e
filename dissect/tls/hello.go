package tls

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Extension numbers read.
const (
	extServerName       = 0
	extSupportedGroups  = 10
	extECPointFormats   = 11
	extSignatureAlgs    = 13
	extALPN             = 16
	extEncryptThenMAC   = 22
	extSessionTicket    = 35
	extPreSharedKey     = 41
	extEarlyData        = 42
	extSupportedVersion = 43
	extKeyShare         = 51
	extECH              = 0xfe0d
)

// reader reads big-endian fields of a handshake message; a read past the
// end sets bad and returns zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u8() int {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return int(v)
}

func (r *reader) u16() int {
	if len(r.b) < 2 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return int(v)
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || len(r.b) < n {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// vec reads a vector with an l-byte length prefix.
func (r *reader) vec(l int) []byte {
	var n int
	switch l {
	case 1:
		n = r.u8()
	case 2:
		n = r.u16()
	case 3:
		n = r.u8()<<16 | r.u16()
	}
	return r.bytes(n)
}

// grease reports a GREASE value (RFC 8701): 0x?a?a with both bytes equal.
func grease(v int) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// u16s reads a list of 16-bit values.
func u16s(b []byte) []int {
	out := make([]int, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		out = append(out, int(binary.BigEndian.Uint16(b[i:])))
	}
	return out
}

// clientHello is what a ClientHello says.
type clientHello struct {
	version    int // legacy_version
	random     []byte
	sessionID  []byte
	ciphers    []int
	exts       []int // extension types in order
	groups     []int
	points     []int
	sigAlgs    []int
	versions   []int // supported_versions
	sni        string
	alpn       []string
	ticket     bool // a non-empty session ticket
	psk        bool // pre_shared_key offered
	earlyData  bool
	ech        bool
	etm        bool
	sslv2      bool
	ja3        string
	ja4        string
	maxVersion int // the highest version offered
}

// parseClientHello reads a ClientHello's body.
func parseClientHello(b []byte) (*clientHello, error) {
	r := reader{b: b}
	h := &clientHello{version: r.u16(), random: r.bytes(32), sessionID: r.vec(1)}
	h.ciphers = u16s(r.vec(2))
	r.vec(1) // compression methods
	if r.bad {
		return nil, errors.New("ClientHello cut short")
	}
	if len(r.b) >= 2 {
		ok := extensions(r.vec(2), func(typ int, data []byte) {
			h.exts = append(h.exts, typ)
			d := reader{b: data}
			switch typ {
			case extServerName:
				list := reader{b: d.vec(2)}
				for len(list.b) > 0 && !list.bad {
					kind, name := list.u8(), list.vec(2)
					if kind == 0 && h.sni == "" {
						h.sni = string(name)
					}
				}
			case extSupportedGroups:
				h.groups = u16s(d.vec(2))
			case extECPointFormats:
				for _, p := range d.vec(1) {
					h.points = append(h.points, int(p))
				}
			case extSignatureAlgs:
				h.sigAlgs = u16s(d.vec(2))
			case extALPN:
				list := reader{b: d.vec(2)}
				for len(list.b) > 0 && !list.bad {
					h.alpn = append(h.alpn, string(list.vec(1)))
				}
			case extSupportedVersion:
				h.versions = u16s(d.vec(1))
			case extSessionTicket:
				h.ticket = len(data) > 0
			case extPreSharedKey:
				h.psk = true
			case extEarlyData:
				h.earlyData = true
			case extECH:
				h.ech = true
			case extEncryptThenMAC:
				h.etm = true
			}
		})
		if !ok {
			return nil, errors.New("ClientHello extensions malformed")
		}
	}
	h.fingerprint()
	return h, nil
}

// parseSSLv2Hello reads an SSLv2-style ClientHello (the record header's
// two length bytes already removed; b starts at its message type 1).
func parseSSLv2Hello(b []byte) (*clientHello, error) {
	if len(b) < 1 || b[0] != 1 {
		return nil, errors.New("SSLv2 record is not a ClientHello")
	}
	r := reader{b: b[1:]}
	h := &clientHello{sslv2: true, version: r.u16()}
	csLen, sidLen, chLen := r.u16(), r.u16(), r.u16()
	cs := r.bytes(csLen)
	h.sessionID = r.bytes(sidLen)
	challenge := r.bytes(chLen)
	if r.bad || csLen%3 != 0 {
		return nil, errors.New("SSLv2 ClientHello malformed")
	}
	for i := 0; i+2 < len(cs); i += 3 {
		if cs[i] == 0 { // an SSLv3/TLS suite in SSLv2 form
			h.ciphers = append(h.ciphers, int(binary.BigEndian.Uint16(cs[i+1:])))
		}
	}
	// The client random is the challenge, right-aligned in 32 bytes.
	h.random = make([]byte, 32)
	if len(challenge) <= 32 {
		copy(h.random[32-len(challenge):], challenge)
	}
	h.fingerprint()
	return h, nil
}

// serverHello is what a ServerHello says.
type serverHello struct {
	version   int // negotiated: supported_versions when present
	legacy    int
	random    []byte
	sessionID []byte
	cipher    int
	exts      []int
	alpn      string
	psk       bool
	etm       bool
	retry     bool // a HelloRetryRequest
	ja3s      string
	ja4s      string
}

// helloRetryRandom marks a ServerHello that is a HelloRetryRequest (RFC
// 8446 §4.1.3).
var helloRetryRandom = []byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

func parseServerHello(b []byte) (*serverHello, error) {
	r := reader{b: b}
	h := &serverHello{legacy: r.u16(), random: r.bytes(32), sessionID: r.vec(1), cipher: r.u16()}
	r.u8() // compression
	if r.bad {
		return nil, errors.New("ServerHello cut short")
	}
	h.version = h.legacy
	h.retry = string(h.random) == string(helloRetryRandom)
	if len(r.b) >= 2 {
		ok := extensions(r.vec(2), func(typ int, data []byte) {
			h.exts = append(h.exts, typ)
			d := reader{b: data}
			switch typ {
			case extSupportedVersion:
				if v := d.u16(); !d.bad {
					h.version = v
				}
			case extALPN:
				list := reader{b: d.vec(2)}
				h.alpn = string(list.vec(1))
			case extPreSharedKey:
				h.psk = true
			case extEncryptThenMAC:
				h.etm = true
			}
		})
		if !ok {
			return nil, errors.New("ServerHello extensions malformed")
		}
	}
	h.fingerprint()
	return h, nil
}

// parseEncryptedExtensions reads TLS 1.3's EncryptedExtensions for the
// selected ALPN.
func parseEncryptedExtensions(b []byte) (alpn string) {
	r := reader{b: b}
	extensions(r.vec(2), func(typ int, data []byte) {
		if typ == extALPN {
			d := reader{b: data}
			list := reader{b: d.vec(2)}
			alpn = string(list.vec(1))
		}
	})
	return alpn
}

// extensions calls f with each extension of a list, in order; false when
// the list does not parse whole.
func extensions(b []byte, f func(typ int, data []byte)) bool {
	r := reader{b: b}
	for len(r.b) >= 4 && !r.bad {
		typ := r.u16()
		data := r.vec(2)
		if r.bad {
			break
		}
		f(typ, data)
	}
	return !r.bad
}

// joinInts joins values in decimal with sep.
func joinInts(b []byte, vs []int, sep byte, skipGrease bool) []byte {
	first := true
	for _, v := range vs {
		if skipGrease && grease(v) {
			continue
		}
		if !first {
			b = append(b, sep)
		}
		first = false
		b = strconv.AppendInt(b, int64(v), 10)
	}
	return b
}

func md5hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// sha12 is the first 12 hex digits of the SHA-256 of s, or twelve zeros
// when s is empty (JA4).
func sha12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// hex4 joins values as 4-digit lower-case hex, comma-separated, GREASE
// left out.
func hex4(vs []int) string {
	var sb strings.Builder
	for _, v := range vs {
		if grease(v) {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(hex.EncodeToString([]byte{byte(v >> 8), byte(v)}))
	}
	return sb.String()
}

// ja4Version is JA4's two-character version.
func ja4Version(v int) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	}
	return "00"
}

// ja4ALPN is JA4's two characters for an ALPN value.
func ja4ALPN(a string) string {
	if a == "" {
		return "00"
	}
	alnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
	first, last := a[0], a[len(a)-1]
	if !alnum(first) || !alnum(last) {
		h := hex.EncodeToString([]byte(a))
		return string([]byte{h[0], h[len(h)-1]})
	}
	return string([]byte{first, last})
}

func count2(n int) string {
	n = min(n, 99)
	return string([]byte{byte('0' + n/10), byte('0' + n%10)})
}

func countNonGrease(vs []int) int {
	n := 0
	for _, v := range vs {
		if !grease(v) {
			n++
		}
	}
	return n
}

// fingerprint computes JA3 (md5 of "version,ciphers,extensions,groups,
// point formats", GREASE left out) and JA4 (FoxIO's JA4 specification).
func (h *clientHello) fingerprint() {
	b := strconv.AppendInt(nil, int64(h.version), 10)
	b = append(b, ',')
	b = joinInts(b, h.ciphers, '-', true)
	b = append(b, ',')
	b = joinInts(b, h.exts, '-', true)
	b = append(b, ',')
	b = joinInts(b, h.groups, '-', true)
	b = append(b, ',')
	b = joinInts(b, h.points, '-', false)
	h.ja3 = md5hex(b)

	h.maxVersion = h.version
	if len(h.versions) > 0 {
		h.maxVersion = 0
		for _, v := range h.versions {
			if !grease(v) && v > h.maxVersion {
				h.maxVersion = v
			}
		}
	}
	if h.sslv2 {
		h.maxVersion = 0x0002
	}
	sni := "i"
	if slices.Contains(h.exts, extServerName) {
		sni = "d"
	}
	alpn := ""
	if len(h.alpn) > 0 {
		alpn = h.alpn[0]
	}
	ciphers := slices.Clone(h.ciphers)
	slices.Sort(ciphers)
	var exts []int
	for _, e := range h.exts {
		if e != extServerName && e != extALPN {
			exts = append(exts, e)
		}
	}
	slices.Sort(exts)
	c := hex4(exts)
	if c != "" && len(h.sigAlgs) > 0 {
		c += "_" + hex4(h.sigAlgs)
	}
	h.ja4 = "t" + ja4Version(h.maxVersion) + sni + count2(countNonGrease(h.ciphers)) + count2(countNonGrease(h.exts)) +
		ja4ALPN(alpn) + "_" + sha12(hex4(ciphers)) + "_" + sha12(c)
}

// fingerprint computes JA3S (md5 of "version,cipher,extensions") and JA4S.
func (h *serverHello) fingerprint() {
	b := strconv.AppendInt(nil, int64(h.legacy), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(h.cipher), 10)
	b = append(b, ',')
	b = joinInts(b, h.exts, '-', true)
	h.ja3s = md5hex(b)
	h.ja4s = "t" + ja4Version(h.version) + count2(countNonGrease(h.exts)) + ja4ALPN(h.alpn) + "_" +
		hex4([]int{h.cipher}) + "_" + sha12(hex4(h.exts))
}

// versionName is a negotiated version's status.
func versionName(v int) string {
	switch v {
	case 0x0304:
		return "TLS1.3"
	case 0x0303:
		return "TLS1.2"
	case 0x0302:
		return "TLS1.1"
	case 0x0301:
		return "TLS1.0"
	case 0x0300:
		return "SSL3.0"
	case 0x0002:
		return "SSL2.0"
	}
	return "0x" + hex.EncodeToString([]byte{byte(v >> 8), byte(v)})
}
