package http1

import (
	"bytes"
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// maxRequestLine bounds how far detection looks for the end of a request
// line.
const maxRequestLine = 8 << 10

var httpVersionPrefix = []byte("HTTP/1.")

// detect says whether b starts an HTTP/1 message and whether its sender is a
// client (request) or a server (response).
func detect(b []byte) (proto.Verdict, proto.Role) {
	b = skipCRLF(b)
	if len(b) == 0 {
		return proto.No, proto.RoleUnknown
	}
	// A status line: HTTP/1.x NNN.
	if len(b) < len("HTTP/1.1 200") && bytes.HasPrefix(httpVersionPrefix, b[:min(len(b), len(httpVersionPrefix))]) {
		return proto.Maybe, proto.RoleUnknown
	}
	if bytes.HasPrefix(b, httpVersionPrefix) {
		if (b[7] == '0' || b[7] == '1') && b[8] == ' ' && isDigit(b[9]) && isDigit(b[10]) && isDigit(b[11]) {
			return proto.Yes, proto.Server
		}
		return proto.No, proto.RoleUnknown
	}
	// A request line: a method token, then either an HTTP/1 version on the
	// line or a well-known method followed by a target. Malformed request
	// lines ("OPTIONSHTTP/1.1", "GET/ HTTP/1.1") are not recognised here;
	// the server's status line reveals such flows and the parser, which is
	// lenient, reads the requests the engine held.
	sp := bytes.IndexByte(b[:min(len(b), maxMethod+1)], ' ')
	if sp < 0 {
		if len(b) <= maxMethod && isToken(b) {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.No, proto.RoleUnknown
	}
	if sp == 0 || !isToken(b[:sp]) {
		return proto.No, proto.RoleUnknown
	}
	known := knownMethod(b[:sp])
	end := bytes.IndexByte(b[:min(len(b), maxRequestLine)], '\n')
	if end < 0 {
		if known && len(b) > sp+1 && isTargetStart(b[sp+1]) {
			return proto.Yes, proto.Client
		}
		if len(b) >= maxRequestLine {
			return proto.No, proto.RoleUnknown
		}
		return proto.Maybe, proto.RoleUnknown
	}
	line := bytes.TrimRight(b[:end], "\r")
	if bytes.Contains(line[sp:], httpVersionPrefix) || (known && len(line) > sp+1 && isTargetStart(line[sp+1])) {
		return proto.Yes, proto.Client
	}
	return proto.No, proto.RoleUnknown
}

// glued returns where a well-known method starts inside the first token of
// b when the token is not itself a known method ("…bodybytesGET /x …", the
// tail of a body lost in a gap followed by the next request in the same
// segment); 0 otherwise.
func glued(b []byte) int {
	sp := bytes.IndexByte(b[:min(len(b), maxMethod+1)], ' ')
	if sp <= 0 || knownMethod(b[:sp]) {
		return 0
	}
	for _, m := range [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		if bytes.HasSuffix(b[:sp], []byte(m)) {
			return sp - len(m)
		}
	}
	return 0
}

// maxMethod bounds the length of a method token.
const maxMethod = 32

// isTargetStart reports whether c can start a request target: a path, "*",
// or an absolute URI or authority.
func isTargetStart(c byte) bool {
	return c == '/' || c == '*' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func skipCRLF(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

// knownMethod reports whether m is a method seen in practice.
func knownMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH", "REPORT", "PURGE":
		return true
	}
	return false
}

func isToken(b []byte) bool {
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return len(b) > 0
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
