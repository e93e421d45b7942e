package http1

import (
	"bytes"
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

func indexByte(b []byte, c byte) int { return bytes.IndexByte(b, c) }

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// trimLine cuts b to at most n bytes for an error message.
func trimLine(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func trimString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func trimCRString(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\r' {
		return s[:n-1]
	}
	return s
}

func trimSpaceString(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseRequestLine splits a request line leniently: the first field is the
// method, the last is the version when it starts with "HTTP/", and what lies
// between is the target. "OPTIONS HTTP/1.1" is method OPTIONS with target
// "HTTP/1.1", as tshark reads it.
func parseRequestLine(line string) (method, target, version string) {
	line = trimSpaceString(line)
	sp := strings.IndexByte(line, ' ')
	if sp < 0 {
		return line, "", ""
	}
	method = line[:sp]
	rest := trimSpaceString(line[sp+1:])
	if last := strings.LastIndexByte(rest, ' '); last >= 0 && strings.HasPrefix(rest[last+1:], "HTTP/") {
		return method, trimSpaceString(rest[:last]), rest[last+1:]
	}
	return method, rest, ""
}

// parseStatusLine parses "HTTP/1.1 200 OK" (the reason is optional).
func parseStatusLine(line string) (version string, status int, ok bool) {
	if !strings.HasPrefix(line, "HTTP/") {
		return "", 0, false
	}
	sp := strings.IndexByte(line, ' ')
	if sp < len("HTTP/1") || !isDigit(line[5]) || len(line) < sp+4 {
		return "", 0, false
	}
	code := line[sp+1 : sp+4]
	// Three digits, the first not 0: 100 to 999 (RFC 9110 defines 1xx to
	// 5xx; servers send other classes, and those still answer a request).
	if code[0] < '1' || code[0] > '9' || !isDigit(code[1]) || !isDigit(code[2]) || (len(line) > sp+4 && line[sp+4] != ' ') {
		return "", 0, false
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return line[:sp], status, true
}

// splitField splits "Name: value" into a lower-case name and a trimmed
// value (a substring of line).
func splitField(line string) (name, value string, ok bool) {
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	n := trimSpaceString(line[:colon])
	if len(n) == 0 {
		return "", "", false
	}
	return lowerName(n), trimSpaceString(line[colon+1:]), true
}

// addField appends a field, joining repeated names with ", " so that each
// name appears once.
func addField(h proto.Headers, name, value string) proto.Headers {
	for i := range h {
		if h[i].Name == name {
			h[i].Value += ", " + value
			return h
		}
	}
	if h == nil {
		h = make(proto.Headers, 0, 8)
	}
	return append(h, proto.Header{Name: name, Value: value})
}

// parseContentLength accepts a decimal length, or a list of equal ones.
func parseContentLength(s string) (int64, bool) {
	n := int64(-1)
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" || len(part) > 18 {
			return 0, false
		}
		var v int64
		for i := 0; i < len(part); i++ {
			if !isDigit(part[i]) {
				return 0, false
			}
			v = v*10 + int64(part[i]-'0')
		}
		if n >= 0 && v != n {
			return 0, false
		}
		n = v
	}
	return n, n >= 0
}

// parseChunkSize reads a chunk-size line's hexadecimal size, ignoring chunk
// extensions. Sizes above 2^60 are refused.
func parseChunkSize(line []byte) (int64, bool) {
	line = trimSpace(line)
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = trimSpace(line[:i])
	}
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

// lastToken returns the last comma-separated token of a field value, lower
// case.
func lastToken(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return lowerASCII(strings.TrimSpace(v))
}

// hasToken reports whether a comma-separated list (lower case) holds tok.
func hasToken(list, tok string) bool {
	for part := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(part) == tok {
			return true
		}
	}
	return false
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// lowerName returns a header name in lower case without allocating for
// names already in lower case (returned as is) or common ones (interned).
func lowerName(s string) string {
	upper := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return s
	}
	var buf [32]byte
	if len(s) > len(buf) {
		return strings.ToLower(s)
	}
	l := buf[:len(s)]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	switch string(l) {
	case "host":
		return "host"
	case "user-agent":
		return "user-agent"
	case "accept":
		return "accept"
	case "accept-encoding":
		return "accept-encoding"
	case "accept-language":
		return "accept-language"
	case "accept-ranges":
		return "accept-ranges"
	case "authorization":
		return "authorization"
	case "cache-control":
		return "cache-control"
	case "connection":
		return "connection"
	case "content-encoding":
		return "content-encoding"
	case "content-length":
		return "content-length"
	case "content-type":
		return "content-type"
	case "cookie":
		return "cookie"
	case "date":
		return "date"
	case "etag":
		return "etag"
	case "expect":
		return "expect"
	case "expires":
		return "expires"
	case "keep-alive":
		return "keep-alive"
	case "last-modified":
		return "last-modified"
	case "location":
		return "location"
	case "referer":
		return "referer"
	case "server":
		return "server"
	case "set-cookie":
		return "set-cookie"
	case "transfer-encoding":
		return "transfer-encoding"
	case "upgrade":
		return "upgrade"
	case "vary":
		return "vary"
	case "x-forwarded-for":
		return "x-forwarded-for"
	case "x-request-id":
		return "x-request-id"
	}
	return string(l)
}
