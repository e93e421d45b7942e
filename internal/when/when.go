// Package when reads the times users give windows in: RFC 3339 (or a few
// shorter layouts, taken as UTC), a duration back from a reference time
// ("-15m"), or "now". The MCP tools' arguments and the agent API's query
// parameters share it; each says in its own words what the reference is.
package when

import (
	"fmt"
	"strings"
	"time"
)

// Parse reads s against ref (what "now" and "-15m" count from). "" is the
// zero time (unbounded); ok is false when s is none of the forms.
func Parse(s string, ref time.Time) (t time.Time, ok bool) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return time.Time{}, true
	case s == "now":
		return ref, true
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil || d <= 0 {
			return time.Time{}, false
		}
		return ref.Add(-d), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// Arg is Parse for a flag or parameter: a time that is none of the forms is
// an error that shows both.
func Arg(s string, ref time.Time) (time.Time, error) {
	if t, ok := Parse(s, ref); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-21T14:00:00Z) nor a duration back from now (-15m)", s)
}
