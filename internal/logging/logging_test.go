package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/internal/logging"
)

// TestJSON: every record is one line holding one JSON object, with the
// keys a log shipper reads (time in RFC 3339 with nanoseconds, level, msg)
// and the attributes, groups nested; records below the level are left out.
func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	log.Debug("not written")
	log.Info("listening\non two lines", "url", "http://127.0.0.1:8080/mcp", "files", 3, "ok", true)
	log.With("component", "hub").WithGroup("req").Warn("refused", "remote", "10.0.0.1:4000", "took", 1500*time.Millisecond)
	log.Error("flush", "err", errors.New("disk full"))
	after := time.Now()

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		ts, _ := m["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Errorf("time %q: %v", ts, err)
		} else if at.Before(before) || at.After(after) || !strings.HasSuffix(ts, "Z") {
			t.Errorf("time %q: not in UTC between %s and %s", ts, before, after)
		}
		recs = append(recs, m)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "listening\non two lines", "url": "http://127.0.0.1:8080/mcp", "files": 3.0, "ok": true},
		{"level": "WARN", "msg": "refused", "component": "hub", "req": map[string]any{"remote": "10.0.0.1:4000", "took": 1.5e9}},
		{"level": "ERROR", "msg": "flush", "err": "disk full"},
	}
	for i, w := range want {
		delete(recs[i], "time")
		got, _ := json.Marshal(recs[i])
		exp, _ := json.Marshal(w)
		if !bytes.Equal(got, exp) {
			t.Errorf("record %d:\n got %s\nwant %s", i, got, exp)
		}
	}
}

// TestText: the text format is slog's key=value lines, as before, and
// keeps to the level.
func TestText(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "TEXT", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("not written")
	log.Warn("refused connections over the limit", "count", 3, "last_remote", "10.0.0.1:4000")
	out := buf.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "time=") ||
		!strings.Contains(out, ` level=WARN msg="refused connections over the limit" count=3 last_remote=10.0.0.1:4000`) {
		t.Errorf("text: %q", out)
	}
}

// TestUnknownFormat: a format other than text or json is refused with an
// error naming both.
func TestUnknownFormat(t *testing.T) {
	for _, f := range []string{"", "logfmt", "jsonl"} {
		log, err := logging.New(&bytes.Buffer{}, f, slog.LevelInfo)
		if err == nil || log != nil {
			t.Errorf("%q: accepted", f)
			continue
		}
		if !strings.Contains(err.Error(), "text, json") || !strings.Contains(err.Error(), `"`+f+`"`) {
			t.Errorf("%q: %v", f, err)
		}
	}
	if got := strings.Join(logging.Formats(), ","); got != "text,json" {
		t.Errorf("Formats: %s", got)
	}
}

// TestSecrets: in both formats, a credential never reaches the log,
// whether it is the value of a secret-named attribute, a parameter in a
// URL given as a string, a *url.URL or an error, userinfo, or part of the
// message, in a group or added with With; other values are left alone.
func TestSecrets(t *testing.T) {
	const secret = "s3cr3tv4lue"
	u, _ := url.Parse("https://hub.example/cb?code=" + secret + "&page=2")
	for _, format := range logging.Formats() {
		var buf bytes.Buffer
		log, err := logging.New(&buf, format, slog.LevelDebug)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("GET /v1/flows?access_token="+secret, "token", secret, "Authorization", "Bearer "+secret,
			"url", "http://admin:"+secret+"@10.0.0.2/x?password="+secret, "redirect", u,
			"err", errors.New(`post "http://agent:8080/v1/pcap?api_key=`+secret+`": EOF`),
			"tokens", 1234, "path", "/v1/stats")
		log.With("X-Auth-Token", secret).WithGroup("client").Warn("refused", "cookie", "sid="+secret, "bytes", []byte("password="+secret))
		out := buf.String()
		if strings.Contains(out, secret) {
			t.Errorf("%s: the secret reached the log:\n%s", format, out)
		}
		if n := strings.Count(out, "[redacted]"); n != 10 {
			t.Errorf("%s: %d values masked, want 10:\n%s", format, n, out)
		}
		for _, keep := range []string{"1234", "/v1/stats", "page=2", "10.0.0.2/x", "agent:8080/v1/pcap", "GET /v1/flows"} {
			if !strings.Contains(out, keep) {
				t.Errorf("%s: %q lost:\n%s", format, keep, out)
			}
		}
	}
}

// TestParseLevel: the four levels in any case, and a clear error for
// anything else.
func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "Warn": slog.LevelWarn,
		"error": slog.LevelError, "info+2": slog.LevelInfo + 2} {
		if got, err := logging.ParseLevel(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "verbose", "trace"} {
		if _, err := logging.ParseLevel(in); err == nil || !strings.Contains(err.Error(), "debug, info, warn or error") {
			t.Errorf("%q: %v", in, err)
		}
	}
}
