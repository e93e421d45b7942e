// Package redact masks secrets in calls: credential headers, the values of
// secret-named parameters in request targets, URLs, form bodies and JSON,
// and the userinfo of URLs (http://user:pass@host/).
//
// The index redacts every call once, before it stores and indexes it, so
// that a secret is neither shown by a tool nor found by a search, not even
// one prefix at a time; the raw bytes stay only in the packets (get_pcap
// says so). The tools redact what they show again, which changes nothing
// in a redacted call: redaction is idempotent.
//
// Only values are masked, never structure: the key, the path segments and
// the rest of a URL stay, so "/tokens/list" and "?sort=asc" are kept and
// "?code=abc" becomes "?code=[redacted]". Key names match in any case.
//
// Redaction runs on every call at ingest, so a call without secrets costs
// one scan of its text and no allocation, and Call copies a call only when
// it masks something in it.
package redact

import (
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Mask replaces a secret.
const Mask = "[redacted]"

// A Rule says what of one protocol's calls can carry secrets beyond the
// headers and bodies, which are redacted for every protocol.
type Rule struct {
	// Target redacts the request target (proto.Call.Path); nil keeps it.
	Target func(target string) string
	// Extra says whether the protocol-specific fields are redacted as
	// text (header-like maps by header rules).
	Extra bool
}

// urlRule is the rule of a protocol not listed in rules: its request
// target is redacted as a URL. A protocol added later so has the secret
// parameters of its targets masked without a change here.
var urlRule = Rule{Target: Text, Extra: true}

// rules are the protocols whose calls carry secrets in other places than
// URLs do. This is the hook for protocols that describe themselves (issue
// 13): a protocol's description is to carry its Rule, and Call to look it
// up there.
var rules = map[string]Rule{
	// DNS names and answers are public by nature; a TXT record holding
	// "key=value" is not a request parameter.
	"dns": {},
}

// RuleFor returns the rule of protocol name.
func RuleFor(name string) Rule {
	if r, ok := rules[name]; ok {
		return r
	}
	return urlRule
}

// Target returns the request target of a call of protocol name with its
// secrets masked.
func Target(name, target string) string {
	if f := RuleFor(name).Target; f != nil {
		return f(target)
	}
	return target
}

// Call returns c with its secrets masked: c itself when it holds none,
// else a copy (c is never modified, and the copy shares what it does not
// change with c).
func Call(c *proto.Call) *proto.Call {
	rule := RuleFor(c.Proto)
	path, pathOK := c.Path, true
	if rule.Target != nil {
		path = rule.Target(c.Path)
		pathOK = len(path) == len(c.Path) && path == c.Path
	}
	errText, errOK := text(c.Error)
	req, reqOK := message(c.Request)
	resp, respOK := message(c.Response)
	extra, extraOK := c.Extra, true
	if rule.Extra {
		extra, extraOK = redactExtra(c.Extra)
	}
	if pathOK && errOK && reqOK && respOK && extraOK {
		return c
	}
	cp := *c
	cp.Path, cp.Error, cp.Request, cp.Response, cp.Extra = path, errText, req, resp, extra
	return &cp
}

// message returns m redacted and whether it is unchanged.
func message(m proto.Message) (proto.Message, bool) {
	h, same := headers(m.Headers)
	m.Headers = h
	if m.BodyEncoding == "" {
		b, ok := text(m.Body)
		m.Body, same = b, same && ok
	}
	return m, same
}

// secretHeaders carry credentials whatever their value.
var secretHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true, "x-amz-security-token": true,
}

// SecretHeader reports whether the header (or trailer) named name carries
// a credential whatever its value: Authorization, Cookie and the like, and
// any header whose name holds a secret word (X-Vault-Token, X-CSRF-Token,
// X-Goog-Api-Key). Names match in any case.
func SecretHeader(name string) bool {
	if secretHeaders[name] {
		return true
	}
	return secretName(name, false)
}

// Headers returns h with the values of credential headers masked and the
// secrets in the others (URLs in Location, Refresh, Content-Location,
// Referer, Link or any other header; key=value parameters) masked as Text
// does. It returns h itself when nothing is masked, else a copy.
func Headers(h proto.Headers) proto.Headers {
	out, _ := headers(h)
	return out
}

// headers is Headers, also reporting whether h is unchanged.
func headers(h proto.Headers) (proto.Headers, bool) {
	var out proto.Headers
	for i, f := range h {
		v, same := f.Value, true
		if SecretHeader(f.Name) {
			v, same = Mask, f.Value == Mask
		} else {
			v, same = text(v)
		}
		if same {
			continue
		}
		if out == nil {
			out = append(proto.Headers(nil), h...)
		}
		out[i].Value = v
	}
	if out == nil {
		return h, true
	}
	return out, false
}

// redactExtra returns x with the values of its fields redacted, and
// whether it is unchanged. A field whose key names a secret is masked
// whole; a map of strings is taken for header fields (trailers).
func redactExtra(x proto.Extra) (proto.Extra, bool) {
	var out proto.Extra
	for i, f := range x {
		var v any
		var same bool
		if s, ok := f.Value.(string); ok && secretName(f.Key, false) && s != Mask {
			v, same = Mask, false
		} else {
			v, same = value(f.Value)
		}
		if same {
			continue
		}
		if out == nil {
			out = append(proto.Extra(nil), x...)
		}
		out[i].Value = v
	}
	if out == nil {
		return x, true
	}
	return out, false
}

// value returns v redacted and whether it is unchanged. Maps are header
// fields (a call's trailers), keyed by name.
func value(orig any) (any, bool) {
	switch v := orig.(type) {
	case string:
		s, same := text(v)
		if same {
			return orig, true // boxing s again would allocate
		}
		return s, false
	case []string:
		var out []string
		for i, s := range v {
			r, same := text(s)
			if same {
				continue
			}
			if out == nil {
				out = append([]string(nil), v...)
			}
			out[i] = r
		}
		if out == nil {
			return orig, true
		}
		return out, false
	case map[string]string:
		var out map[string]string
		for k, s := range v {
			r, same := text(s)
			if SecretHeader(strings.ToLower(k)) {
				r, same = Mask, s == Mask
			}
			if same {
				continue
			}
			if out == nil {
				out = make(map[string]string, len(v))
				for k, s := range v {
					out[k] = s
				}
			}
			out[k] = r
		}
		if out == nil {
			return orig, true
		}
		return out, false
	case map[string]any:
		var out map[string]any
		for k, e := range v {
			var r any
			var same bool
			if s, ok := e.(string); ok && SecretHeader(strings.ToLower(k)) {
				r, same = Mask, s == Mask
			} else {
				r, same = value(e)
			}
			if same {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(v))
				for k, e := range v {
					out[k] = e
				}
			}
			out[k] = r
		}
		if out == nil {
			return orig, true
		}
		return out, false
	case []any:
		var out []any
		for i, e := range v {
			r, same := value(e)
			if same {
				continue
			}
			if out == nil {
				out = append([]any(nil), v...)
			}
			out[i] = r
		}
		if out == nil {
			return orig, true
		}
		return out, false
	case proto.Extra:
		x, same := redactExtra(v)
		if same {
			return orig, true
		}
		return x, false
	}
	return orig, true
}
