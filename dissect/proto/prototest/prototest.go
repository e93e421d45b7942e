// Package prototest holds checks that the tests of every protocol dissector
// share.
package prototest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

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

// Session drives a stream parser as a test does: each Client or Server
// call is one Feed, a millisecond after the previous one.
type Session struct {
	T   testing.TB
	Rec *Recorder
	P   proto.StreamParser
	ms  int
}

// NewSession starts a parser of p with limits lim (nil: the defaults)
// emitting into a Recorder.
func NewSession(t testing.TB, p proto.StreamProtocol, lim *proto.Limits) *Session {
	if lim == nil {
		lim = &proto.Limits{}
	}
	rec := &Recorder{}
	return &Session{T: t, Rec: rec, P: p.NewStream(rec, lim)}
}

// At returns the next capture time.
func (s *Session) At() time.Time {
	s.ms++
	return time.Unix(1700000000, 0).Add(time.Duration(s.ms) * time.Millisecond)
}

// Client feeds the parts (strings or byte slices), joined, as bytes the
// client sent.
func (s *Session) Client(parts ...any) *Session {
	s.P.Feed(proto.Client, s.join(parts), s.At())
	return s
}

// Server feeds the parts, joined, as bytes the server sent.
func (s *Session) Server(parts ...any) *Session {
	s.P.Feed(proto.Server, s.join(parts), s.At())
	return s
}

func (s *Session) join(parts []any) []byte {
	var b bytes.Buffer
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b.WriteString(p)
		case []byte:
			b.Write(p)
		default:
			s.T.Fatalf("a part of type %T", p)
		}
	}
	return b.Bytes()
}

// End ends the connection and returns every call, each checked with
// CheckJSON.
func (s *Session) End(r proto.EndReason) []*proto.Call {
	s.P.End(r, s.At())
	for i, c := range s.Rec.Calls {
		CheckJSON(s.T, i, c)
	}
	return s.Rec.Calls
}

// Want is what a test expects of a call; Req and Resp, when set, are its
// bodies.
type Want struct {
	Method, Path, Status, Err string
	OneWay                    bool
	Req, Resp                 string
}

// Check compares calls with wants, one for one, logging every call when
// their numbers differ.
func Check(t testing.TB, calls []*proto.Call, wants []Want) {
	t.Helper()
	if len(calls) != len(wants) {
		for _, c := range calls {
			t.Logf("  %s %q %s err=%q oneway=%v extra=%v", c.Method, c.Path, c.Status, c.Error, c.OneWay, c.Extra)
		}
		t.Fatalf("%d calls, want %d", len(calls), len(wants))
	}
	for i, w := range wants {
		c := calls[i]
		if c.Method != w.Method || c.Path != w.Path || c.Status != w.Status || c.Error != w.Err || c.OneWay != w.OneWay {
			t.Errorf("call %d: %s %q %q err=%q oneway=%v, want %s %q %q err=%q oneway=%v", i, c.Method, c.Path, c.Status, c.Error, c.OneWay,
				w.Method, w.Path, w.Status, w.Err, w.OneWay)
		}
		if w.Req != "" && c.Request.Body != w.Req {
			t.Errorf("call %d: request body %q, want %q", i, c.Request.Body, w.Req)
		}
		if w.Resp != "" && c.Response.Body != w.Resp {
			t.Errorf("call %d: response body %q, want %q", i, c.Response.Body, w.Resp)
		}
	}
}

// FuzzFeed is the body of a stream parser's fuzz target: it feeds client
// and server bytes in pieces of 1 to 64 bytes, the sides and sizes drawn
// from split, and (when split's top bit is set) reports some pieces as
// gaps instead; the parser must never keep more than maxBuffered bytes,
// and every call it emits must be valid JSON with a status, an error, or
// marked one-way.
func FuzzFeed(t *testing.T, p proto.StreamProtocol, client, server []byte, split byte, maxBuffered int) {
	lim := proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512, MaxPending: 16}
	rec := &Recorder{}
	sp := p.NewStream(rec, &lim)
	rng := uint32(split)*2654435761 + 1
	at := time.Unix(1e9, 0)
	for len(client) > 0 || len(server) > 0 {
		rng = rng*1103515245 + 12345
		n := int(rng>>16)%64 + 1
		side, data := proto.Client, &client
		if rng&0x100 != 0 && len(server) > 0 || len(client) == 0 {
			side, data = proto.Server, &server
		}
		n = min(n, len(*data))
		if split&0x80 != 0 && rng&0x3000 == 0 {
			sp.Gap(side, n)
		} else {
			sp.Feed(side, (*data)[:n], at)
		}
		*data = (*data)[n:]
		at = at.Add(time.Millisecond)
		if b, ok := sp.(proto.Buffering); ok && b.Buffered() > maxBuffered {
			t.Fatalf("keeps %d bytes", b.Buffered())
		}
	}
	sp.End(proto.EndFIN, at)
	for i, c := range rec.Calls {
		if c.Status == "" && c.Error == "" && !c.OneWay {
			t.Errorf("call %d has neither status nor error: %+v", i, c)
		}
		CheckJSON(t, i, c)
	}
}
