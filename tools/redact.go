package tools

import (
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/internal/redact"
)

// redacted replaces secrets in tool output.
const redacted = redact.Mask

// redactHeaders returns h with credential headers masked, and secrets in
// the values of the others (URLs in Location, Referer …). The rules are
// internal/redact's: the index already applied them to every call it
// stores, so this changes nothing in a call read from it and only guards
// calls that did not come through the index.
func redactHeaders(h proto.Headers) proto.Headers { return redact.Headers(h) }

// redactText masks secret-looking fields of a JSON or form body, or of a
// URL's query, and URL userinfo (internal/redact.Text).
func redactText(s string) string { return redact.Text(s) }
