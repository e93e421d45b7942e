package dissect

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	synth "github.com/wirescope/wirescope/capture/capturetest"
)

// TestDatagramBufferedTotal has 300 UDP clients each send 200 DNS queries
// that are never answered, with MaxBufferedTotal 1 MiB: the flows whose
// parsers keep the most are ended early so that the parsers keep at most
// that much in total, their queries reported unanswered for memory bounds;
// every query is reported once, and the engine's account is back at zero
// once every flow has ended.
func TestDatagramBufferedTotal(t *testing.T) {
	const n, perFlow, bound = 300, 200, 1 << 20
	var calls, cut int
	e := New(Options{MaxBufferedTotal: bound, OnCall: func(c *Call) {
		calls++
		if c.Error == "no response: flow ended early for memory bounds" {
			cut++
		}
	}})
	peak := 0
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	for i := range n {
		for j := range perFlow {
			q := binary.BigEndian.AppendUint16(nil, uint16(j))
			q = append(q, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
			q = append(q, "\x05flood\x07example\x00\x00\x01\x00\x01"...)
			p := synth.Datagram(at, fmt.Sprintf("10.9.%d.%d:40000", i/250, i%250), "10.0.0.53:53", q)
			at = at.Add(time.Microsecond)
			e.Packet(&p)
			peak = max(peak, e.buffered)
		}
	}
	st := e.Finish()
	if peak > bound {
		t.Errorf("parsers kept up to %d bytes, bound %d", peak, bound)
	}
	if e.buffered != 0 {
		t.Errorf("the engine still accounts %d bytes kept by parsers after every flow ended", e.buffered)
	}
	if st.MemoryEnded == 0 || st.MemoryEnded >= n {
		t.Errorf("%d flows ended early for memory bounds, want some of %d", st.MemoryEnded, n)
	}
	// The flows ended early are those whose queries are all in: each
	// reports all of its queries cut, and none starts again.
	if want := int(st.MemoryEnded) * perFlow; cut != want {
		t.Errorf("%d queries reported cut for memory bounds, want %d (%d flows of %d)", cut, want, st.MemoryEnded, perFlow)
	}
	if calls != n*perFlow || st.Unanswered != n*perFlow || st.Flows["udp"] != n || st.SkippedBytes != 0 {
		t.Errorf("%d calls, %d unanswered, %d udp flows, %d bytes skipped; want %d, %d, %d, 0",
			calls, st.Unanswered, st.Flows["udp"], st.SkippedBytes, n*perFlow, n*perFlow, n)
	}
}
