package tools

import (
	"regexp"

	"github.com/wirescope/wirescope/dissect/proto"
)

// redacted replaces secrets in tool output.
const redacted = "[redacted]"

// secretHeaders carry credentials whatever their value.
var secretHeaders = map[string]bool{
	"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
	"x-api-key": true, "x-auth-token": true, "x-amz-security-token": true,
}

// secretKey matches the names of fields that hold secrets.
// Header names count too: trailers and bodies can carry them as fields.
const secretKey = `[A-Za-z0-9_.-]*(?i:pass(?:word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|session[_-]?id|authorization|cookie)[A-Za-z0-9_.-]*`

var (
	// "password": "…" in JSON, whatever surrounds it.
	jsonSecret = regexp.MustCompile(`("` + secretKey + `"\s*:\s*)"(?:[^"\\]|\\.)*"?`)
	// password=… in forms and query strings.
	formSecret = regexp.MustCompile(`((?:^|[?&;])` + secretKey + `=)[^&;#\s]*`)
)

// redactHeaders returns h with credential headers masked.
func redactHeaders(h proto.Headers) proto.Headers {
	var out proto.Headers
	for i, f := range h {
		if secretHeaders[f.Name] {
			if out == nil {
				out = append(proto.Headers(nil), h...)
			}
			out[i].Value = redacted
		}
	}
	if out == nil {
		return h
	}
	return out
}

// redactText masks secret-looking fields of a JSON or form body, or of a
// URL's query.
func redactText(s string) string {
	s = jsonSecret.ReplaceAllString(s, `${1}"`+redacted+`"`)
	return formSecret.ReplaceAllString(s, "${1}"+redacted)
}
