// Package logging makes the slog loggers of the hub and the agent: text
// for a terminal, or JSON, one object a line, for a log shipper (Loki,
// Fluent Bit, Vector) to read without parsing rules.
//
// Whatever the format, secrets do not reach the log: attributes whose key
// names a credential (token, authorization, password, cookie, …) have
// their text masked, and the secrets in any other text value, error or
// message (secret-named query parameters, URL userinfo, …) are masked as
// package redact masks them in calls.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/wirescope/wirescope/internal/redact"
)

// The formats New accepts.
const (
	Text = "text"
	JSON = "json"
)

// Formats lists the formats New accepts, for a flag's help.
func Formats() []string { return []string{Text, JSON} }

// ParseLevel reads a level for a flag: debug, info, warn or error, in any
// case (slog's offsets such as info+2 too).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// New returns a logger writing records at level and above to w in format:
//
//   - "text": slog's text handler, key=value pairs, as before (local
//     time in milliseconds);
//   - "json": one JSON object a line with the keys "time" (RFC 3339 with
//     nanoseconds, in UTC), "level" (DEBUG, INFO, WARN, ERROR), "msg" and
//     the record's attributes.
//
// Formats match in any case; any other is an error naming the accepted
// ones.
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	var h slog.Handler
	switch strings.ToLower(format) {
	case Text:
		h = slog.NewTextHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replace})
	case JSON:
		h = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: replaceJSON})
	default:
		return nil, fmt.Errorf("log format %q: want one of %s", format, strings.Join(Formats(), ", "))
	}
	return slog.New(guard{h}), nil
}

// replaceJSON is replace, and writes the record's time in UTC with
// nanoseconds.
func replaceJSON(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
		a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
		return a
	}
	return replace(groups, a)
}

// replace masks secrets in an attribute.
func replace(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.LevelKey || a.Key == slog.MessageKey || a.Key == slog.SourceKey) {
		return a
	}
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		if redact.SecretHeader(a.Key) {
			if v.String() != "" {
				a.Value = slog.StringValue(redact.Mask)
			}
			return a
		}
		if s := redact.Text(v.String()); s != v.String() {
			a.Value = slog.StringValue(s)
		}
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		case []byte:
			s = string(x)
		default:
			if redact.SecretHeader(a.Key) {
				a.Value = slog.StringValue(redact.Mask)
			}
			return a
		}
		if redact.SecretHeader(a.Key) {
			s = redact.Mask
		}
		a.Value = slog.StringValue(redact.Text(s))
	}
	return a
}

// guard masks the secrets in a record's message; replace does the
// attributes.
type guard struct{ slog.Handler }

func (g guard) Handle(ctx context.Context, r slog.Record) error {
	r.Message = redact.Text(r.Message)
	return g.Handler.Handle(ctx, r)
}

func (g guard) WithAttrs(as []slog.Attr) slog.Handler { return guard{g.Handler.WithAttrs(as)} }
func (g guard) WithGroup(name string) slog.Handler    { return guard{g.Handler.WithGroup(name)} }
