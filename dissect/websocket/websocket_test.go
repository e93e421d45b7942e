package websocket_test

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/websocket"
)

type recorder struct{ prototest.Recorder }

func (r *recorder) methods() (out []string) {
	for _, c := range r.Calls {
		s := c.Method + ":" + c.Request.Body + c.Response.Body
		if c.Status != "" {
			s += ":" + c.Status
		}
		if c.Error != "" {
			s += ":" + c.Error
		}
		out = append(out, s)
	}
	return out
}

var t0 = time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)

// frame encodes one frame; a mask key masks it (client frames).
func frame(fin bool, rsv1 bool, op byte, payload []byte, mask []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	out := []byte{b0}
	m := byte(0)
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	p := bytes.Clone(payload)
	if mask != nil {
		out = append(out, mask...)
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return append(out, p...)
}

func newConn(ctx proto.Extra) (*recorder, proto.StreamParser) {
	r := &recorder{}
	lim := proto.DefaultLimits
	return r, websocket.Protocol{}.NewUpgraded(r, &lim, ctx)
}

func equal(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMessages: masked client frames unmasked, a fragmented message joined
// with a ping between its fragments as a message of its own, a close with
// its code and reason, frames split anywhere across segments.
func TestMessages(t *testing.T) {
	r, p := newConn(proto.Extra{{Key: "target", Value: "/chat?room=1"}})
	key := []byte{1, 2, 3, 4}
	stream := append(frame(true, false, 0x1, []byte("hello"), key), frame(false, false, 0x1, []byte("frag-"), key)...)
	stream = append(stream, frame(true, false, 0x9, []byte("p"), key)...)
	stream = append(stream, frame(true, false, 0x0, []byte("ment"), key)...)
	// Fed a byte at a time: headers and payloads split everywhere.
	for i := range stream {
		p.Feed(proto.Client, stream[i:i+1], t0)
	}
	closing := append([]byte{0x03, 0xe8}, "bye"...)
	p.Feed(proto.Server, append(frame(true, false, 0x2, []byte{0, 1, 2}, nil), frame(true, false, 0x8, closing, nil)...), t0)
	p.End(proto.EndFIN, t0)
	equal(t, r.methods(), "text:hello", "ping:p", "text:frag-ment", "binary:AAEC", "close:A+hieWU=:1000")
	for _, c := range r.Calls {
		if !c.OneWay || c.Path != "/chat?room=1" || c.Outcome() != proto.OneWay {
			t.Errorf("%s: one-way %v path %q", c.Method, c.OneWay, c.Path)
		}
	}
	if r.Calls[2].Extra.Get("frames") != 2 || r.Calls[4].Extra.Get("reason") != "bye" || r.Calls[3].Extra.Get("from") != "server" {
		t.Errorf("extra: %v %v %v", r.Calls[2].Extra, r.Calls[4].Extra, r.Calls[3].Extra)
	}
}

// deflate compresses msg as permessage-deflate does (the final empty
// block's 4 bytes removed), with w kept across messages for context
// takeover.
func deflate(t *testing.T, w *flate.Writer, buf *bytes.Buffer, msg string) []byte {
	t.Helper()
	buf.Reset()
	w.Write([]byte(msg))
	w.Flush()
	out := bytes.Clone(buf.Bytes())
	return bytes.TrimSuffix(out, []byte{0x00, 0x00, 0xff, 0xff})
}

// TestDeflate: permessage-deflate with context takeover (the second
// message refers back to the first) and without it.
func TestDeflate(t *testing.T) {
	for _, ext := range []string{"permessage-deflate", "permessage-deflate; server_no_context_takeover"} {
		r, p := newConn(proto.Extra{{Key: "extensions", Value: ext}})
		var buf bytes.Buffer
		w, _ := flate.NewWriter(&buf, flate.BestCompression)
		msg := strings.Repeat("status=ok;", 20)
		for range 3 {
			if strings.Contains(ext, "no_context") {
				w.Reset(&buf)
			}
			p.Feed(proto.Server, frame(true, true, 0x1, deflate(t, w, &buf, msg), nil), t0)
		}
		if len(r.Calls) != 3 {
			t.Fatalf("%s: %d messages", ext, len(r.Calls))
		}
		for _, c := range r.Calls {
			if c.Response.Body != msg || c.Extra.Get("compressed") != true {
				t.Errorf("%s: inflated %q", ext, c.Response.Body)
			}
		}
	}
}

// TestDeflateContextLost: once a message of a side's compression context
// was not kept whole (past MaxBodyCapture), the side's later messages refer
// to bytes wirescope does not have: they are marked not decodable rather
// than shown inflated wrong.
func TestDeflateContextLost(t *testing.T) {
	r := &recorder{}
	lim := proto.DefaultLimits
	lim.MaxBodyCapture = 64
	p := websocket.Protocol{}.NewUpgraded(r, &lim, proto.Extra{{Key: "extensions", Value: "permessage-deflate"}})
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	var big strings.Builder
	for i := range 300 {
		fmt.Fprintf(&big, "%d:%x;", i, i*7919)
	}
	p.Feed(proto.Server, frame(true, true, 0x1, deflate(t, w, &buf, big.String()), nil), t0)
	p.Feed(proto.Server, frame(true, true, 0x1, deflate(t, w, &buf, big.String()[:100]), nil), t0)
	if len(r.Calls) != 2 {
		t.Fatalf("%d messages", len(r.Calls))
	}
	if d, _ := r.Calls[1].Extra.Get("decompressed").(string); !strings.HasPrefix(d, "not decodable") || r.Calls[1].Response.Body != "" {
		t.Errorf("second message: decompressed %q body %q", d, r.Calls[1].Response.Body)
	}
}

// TestHostile: a frame claiming 2^63 bytes is counted, not allocated; a
// deflate bomb stops at MaxBodyCapture; a gap ends the side honestly.
func TestHostile(t *testing.T) {
	r, p := newConn(nil)
	huge := []byte{0x82, 127}
	huge = binary.BigEndian.AppendUint64(huge, 1<<63-1)
	p.Feed(proto.Server, huge, t0)
	for range 64 {
		p.Feed(proto.Server, make([]byte, 1<<20), t0)
	}
	if b := p.(proto.Buffering).Buffered(); b > 2*proto.DefaultLimits.MaxBodyCapture {
		t.Errorf("holds %d bytes after 64 MiB of one frame", b)
	}
	p.Gap(proto.Server, 100)
	p.Feed(proto.Server, frame(true, false, 0x1, []byte("after the gap"), nil), t0)
	p.End(proto.EndFIN, t0)
	if len(r.Calls) != 1 || r.Calls[0].Response.BodySize != 64<<20 || !strings.HasPrefix(r.Calls[0].Error, "truncated: message cut by a capture gap") {
		t.Fatalf("calls %+v", r.Calls)
	}
	// What came after the gap is counted as skipped, not read.
	if want := len(frame(true, false, 0x1, []byte("after the gap"), nil)); r.SkippedBytes != want {
		t.Errorf("skipped %d bytes after the gap, want %d", r.SkippedBytes, want)
	}

	// 64 MiB of zeros deflate to about 64 KiB.
	r, p = newConn(proto.Extra{{Key: "extensions", Value: "permessage-deflate"}})
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(make([]byte, 64<<20))
	w.Flush()
	p.Feed(proto.Server, frame(true, true, 0x2, bytes.TrimSuffix(buf.Bytes(), []byte{0, 0, 0xff, 0xff}), nil), t0)
	if len(r.Calls) != 1 || r.Calls[0].Extra.Get("decompressed") == nil || len(r.Calls[0].Response.Body) > proto.DefaultLimits.MaxBodyDisplay*2 {
		t.Fatalf("bomb: %d calls, extra %v", len(r.Calls), r.Calls[0].Extra)
	}
}

// FuzzFrames: any bytes, either side, never panic and keep memory bounded.
func FuzzFrames(f *testing.F) {
	f.Add(frame(true, false, 0x1, []byte("hello"), []byte{1, 2, 3, 4}), true)
	f.Add(frame(true, true, 0x1, []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, nil), false)
	f.Add(append([]byte{0x81, 127}, make([]byte, 8)...), false)
	f.Fuzz(func(t *testing.T, b []byte, client bool) {
		rec, p := newConn(proto.Extra{{Key: "extensions", Value: "permessage-deflate"}})
		r := proto.Server
		if client {
			r = proto.Client
		}
		for len(b) > 0 {
			n := min(len(b), 7)
			p.Feed(r, b[:n], t0)
			b = b[n:]
		}
		if n := p.(proto.Buffering).Buffered(); n > 4*proto.DefaultLimits.MaxBodyCapture+64<<10 {
			t.Fatalf("holds %d bytes", n)
		}
		p.End(proto.EndCapture, t0)
		for i, c := range rec.Calls {
			prototest.CheckJSON(t, i, c)
		}
	})
}
