// Package prototest holds checks that the tests of every protocol dissector
// share.
package prototest

import (
	"encoding/json"
	"testing"

	"github.com/wirescope/wirescope/dissect/proto"
)

// CheckJSON marshals call i and reads it back: the JSON must be valid, and
// the call's strings, time, latency and extra fields must survive, with
// invalid UTF-8 (captures hold arbitrary bytes) turned into U+FFFD byte by
// byte, as string([]rune(s)) does.
func CheckJSON(t testing.TB, i int, c *proto.Call) {
	t.Helper()
	j := c.AppendJSON(nil)
	if !json.Valid(j) {
		t.Fatalf("call %d: invalid JSON: %s", i, j)
	}
	var back proto.Call
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatalf("call %d: JSON does not read back: %v\n%s", i, err, j)
	}
	for _, f := range []struct{ name, got, want string }{
		{"proto", back.Proto, c.Proto},
		{"method", back.Method, c.Method},
		{"path", back.Path, c.Path},
		{"status", back.Status, c.Status},
		{"error", back.Error, c.Error},
		{"request body", back.Request.Body, c.Request.Body},
		{"response body", back.Response.Body, c.Response.Body},
	} {
		if want := string([]rune(f.want)); f.got != want {
			t.Errorf("call %d: %s reads back as %q, want %q", i, f.name, f.got, want)
		}
	}
	if !back.TS.Equal(c.TS) || back.LatencyNS != c.LatencyNS || len(back.Extra) != len(c.Extra) {
		t.Errorf("call %d: ts/latency/extra read back as %v/%d/%d keys, want %v/%d/%d keys", i,
			back.TS, back.LatencyNS, len(back.Extra), c.TS, c.LatencyNS, len(c.Extra))
	}
}

// Recorder is a proto.Emitter that keeps what a parser produces: its calls,
// the protocol switches it asked for and the bytes it skipped.
type Recorder struct {
	Calls        []*proto.Call
	Upgrades     []string
	SkippedBytes int
}

// Emit implements proto.Emitter.
func (r *Recorder) Emit(c *proto.Call) { r.Calls = append(r.Calls, c) }

// Upgrade implements proto.Emitter.
func (r *Recorder) Upgrade(p string) { r.Upgrades = append(r.Upgrades, p) }

// Skipped implements proto.Emitter.
func (r *Recorder) Skipped(n int) { r.SkippedBytes += n }
