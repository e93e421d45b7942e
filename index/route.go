package index

import (
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Route is a call's endpoint template: method + " " + path, where a path
// its protocol describes as a URL (proto.PathURL: HTTP) loses its query and
// has ID-like segments replaced by "{id}": "GET /api/orders/{id}"; other
// paths stay as they are (DNS: "A web.shop.svc.cluster.local").
//
// A path segment is ID-like when it is all digits, a UUID, hex digits only
// and at least 8 long, or a token of letters, digits, '-' and '_' at least
// 16 long (10 when letters and digits only) with at least two digits and a
// letter. An absolute-form target ("http://host/path") keeps only its path.
func Route(c *proto.Call) string {
	switch {
	case c.Method == "" && c.Path == "":
		return ""
	case c.Path == "":
		return c.Method
	case c.Method == "":
		if urlPath(c) {
			return TemplatePath(c.Path)
		}
		return c.Path
	case urlPath(c):
		return c.Method + " " + TemplatePath(c.Path)
	}
	return c.Method + " " + c.Path
}

// urlPath reports whether c's protocol describes its path as a URL.
func urlPath(c *proto.Call) bool { return proto.Described(c.Proto).Path == proto.PathURL }

// TemplatePath returns an HTTP request target without its query or
// fragment and with ID-like segments replaced by "{id}" (see Route).
func TemplatePath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
		rest := p[strings.Index(p, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			p = rest[i:]
		} else {
			p = "/"
		}
	}
	// Most paths have nothing to replace: check before building.
	changed := false
	for seg := range strings.SplitSeq(p, "/") {
		if idLike(seg) {
			changed = true
			break
		}
	}
	if !changed {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if idLike(seg) {
			b.WriteString("{id}")
		} else {
			b.WriteString(seg)
		}
	}
	return b.String()
}

// idLike reports whether a path segment looks like an identifier.
func idLike(s string) bool {
	if s == "" {
		return false
	}
	var digits, letters, hex, other int
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
			hex++
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			letters++
			hex++
		case c >= 'g' && c <= 'z' || c >= 'G' && c <= 'Z':
			letters++
		case c == '-' || c == '_':
			other++
		default:
			return false
		}
	}
	switch {
	case digits == len(s):
		return true
	case isUUID(s):
		return true
	case hex == len(s) && len(s) >= 8:
		return true
	case digits >= 2 && letters >= 1 && (len(s) >= 16 || other == 0 && len(s) >= 10):
		return true
	}
	return false
}

// isUUID reports whether s is 8-4-4-4-12 hex digits.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
