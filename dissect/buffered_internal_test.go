package dissect

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
)

// TestBufferedTotal opens 200 connections that each send 20 KB of a header
// block that never ends, with MaxBufferedTotal 1 MiB: connections are ended
// early so that the parsers keep at most that much, each skipping the
// whole request, and the engine's account is back at zero once every
// connection has ended.
func TestBufferedTotal(t *testing.T) {
	const n, bound = 200, 1 << 20
	calls := 0
	e := New(Options{MaxBufferedTotal: bound, OnCall: func(*Call) { calls++ }})
	peak := 0
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	emit := func(p capture.Packet) {
		p.Timestamp = at
		at = at.Add(time.Microsecond)
		e.Packet(&p)
		peak = max(peak, e.buffered)
	}
	req := append([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "), bytes.Repeat([]byte{'p'}, 20000)...)
	for i := range n {
		c := synth.NewConn(fmt.Sprintf("10.9.%d.%d:40000", i/250, i%250), "10.0.0.1:80", at, emit)
		c.Handshake()
		c.Send(true, req)
	}
	st := e.Finish()
	if peak > bound+64<<10 {
		t.Errorf("parsers kept up to %d bytes, bound %d (and one segment's growth)", peak, bound)
	}
	if e.buffered != 0 {
		t.Errorf("the engine still accounts %d bytes kept by parsers after every connection ended", e.buffered)
	}
	if st.MemoryEnded == 0 || st.MemoryEnded >= n {
		t.Errorf("%d connections ended early for memory bounds, want some of %d", st.MemoryEnded, n)
	}
	if want := st.MemoryEnded * uint64(len(req)); st.SkippedBytes != want {
		t.Errorf("%d bytes skipped, want %d (%d connections of %d bytes)", st.SkippedBytes, want, st.MemoryEnded, len(req))
	}
	if calls != n || st.Truncated != n {
		t.Errorf("%d calls, %d truncated, want %d of each", calls, st.Truncated, n)
	}
}
