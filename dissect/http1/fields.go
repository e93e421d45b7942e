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

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
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

func trimString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseRequestLine splits a request line leniently: the first field is the
// method, the last is the version when it starts with "HTTP/", and what lies
// between is the target. "OPTIONS HTTP/1.1" is method OPTIONS with target
// "HTTP/1.1", as tshark reads it.
func parseRequestLine(line []byte) (method, target, version string) {
	line = trimSpace(line)
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return internMethod(line), "", ""
	}
	method = internMethod(line[:sp])
	rest := trimSpace(line[sp+1:])
	if last := bytes.LastIndexByte(rest, ' '); last >= 0 && bytes.HasPrefix(rest[last+1:], []byte("HTTP/")) {
		return method, string(trimSpace(rest[:last])), internVersion(rest[last+1:])
	}
	return method, string(rest), ""
}

// parseStatusLine parses "HTTP/1.1 200 OK" (the reason is optional).
func parseStatusLine(line []byte) (version string, status int, ok bool) {
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return "", 0, false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 || len(line) < sp+4 {
		return "", 0, false
	}
	code := line[sp+1 : sp+4]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || (len(line) > sp+4 && line[sp+4] != ' ') {
		return "", 0, false
	}
	status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return internVersion(line[:sp]), status, true
}

// splitField splits "Name: value" into a lower-case name and a trimmed
// value.
func splitField(line []byte) (name, value string, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return "", "", false
	}
	n := trimSpace(line[:colon])
	if len(n) == 0 {
		return "", "", false
	}
	return internName(n), string(trimSpace(line[colon+1:])), true
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

// internName returns the lower-case header name, without allocating for
// common names.
func internName(b []byte) string {
	var buf [32]byte
	if len(b) > len(buf) {
		return strings.ToLower(string(b))
	}
	l := buf[:len(b)]
	for i, c := range b {
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
	case "connection":
		return "connection"
	case "content-length":
		return "content-length"
	case "content-type":
		return "content-type"
	case "content-encoding":
		return "content-encoding"
	case "transfer-encoding":
		return "transfer-encoding"
	case "date":
		return "date"
	case "server":
		return "server"
	case "last-modified":
		return "last-modified"
	case "etag":
		return "etag"
	case "accept-ranges":
		return "accept-ranges"
	case "cache-control":
		return "cache-control"
	case "keep-alive":
		return "keep-alive"
	case "location":
		return "location"
	case "authorization":
		return "authorization"
	case "cookie":
		return "cookie"
	case "set-cookie":
		return "set-cookie"
	case "referer":
		return "referer"
	case "vary":
		return "vary"
	case "expires":
		return "expires"
	case "upgrade":
		return "upgrade"
	case "expect":
		return "expect"
	case "x-request-id":
		return "x-request-id"
	case "x-forwarded-for":
		return "x-forwarded-for"
	}
	return string(l)
}

func internMethod(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "HEAD":
		return "HEAD"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(b)
}

func internVersion(b []byte) string {
	switch string(b) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/1.0":
		return "HTTP/1.0"
	}
	return string(b)
}
