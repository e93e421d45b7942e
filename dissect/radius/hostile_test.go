package radius_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/radius"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHostile: lengths that lie, attributes of length 0 and 1, unknown
// codes: each a malformed call (paired with its request when it is a
// response), never a panic, and the flow reads on.
func TestHostile(t *testing.T) {
	overLength := packet(1, 1, authn(1), attr(1, "a"))
	binary.BigEndian.PutUint16(overLength[2:], 4000)
	huge := packet(1, 2, authn(1), attr(1, "a"))
	binary.BigEndian.PutUint16(huge[2:], 65535)
	under := packet(1, 3, authn(1), attr(1, "a"))
	binary.BigEndian.PutUint16(under[2:], 19)
	zero := packet(1, 4, authn(1), attr(1, "zero"), []byte{18, 0})
	one := packet(1, 5, authn(1), attr(1, "one"), []byte{18, 1, 'x'})
	past := packet(1, 6, authn(1), attr(1, "past"), []byte{18, 200, 'x'})
	cut := packet(1, 7, authn(1), attr(1, "cut"), []byte{18})
	badResp := packet(2, 8, authn(2), attr(18, "x"))
	binary.BigEndian.PutUint16(badResp[2:], 3000)
	badVSA := packet(1, 9, authn(1), attr(1, "vsa"), vsa(311, []byte{1, 0, 0}), attr(26, []byte{0, 0}))

	rec, p := newFlow(proto.Limits{})
	for i, d := range [][]byte{overLength, huge, under, zero, one, past, cut, {1, 2, 3}, packet(99, 1, authn(1), attr(1, "a"))} {
		p.Datagram(proto.Client, d, at(i))
	}
	p.Datagram(proto.Client, packet(1, 8, authn(1), attr(1, "waits")), at(20))
	p.Datagram(proto.Server, badResp, at(21))
	p.Datagram(proto.Client, badVSA, at(22))
	p.Datagram(proto.Server, packet(3, 9, authn(3)), at(23))
	p.Datagram(proto.Server, packet(3, 7, authn(3)), at(24))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Access-Request", Err: "malformed: length 4000 over the datagram's 23 bytes"},
		{Method: "Access-Request", Err: "malformed: length 65535 outside 20..4096"},
		{Method: "Access-Request", Err: "malformed: length 19 outside 20..4096"},
		{Method: "Access-Request", Err: "malformed: 3 bytes, shorter than a RADIUS header"},
		{Err: "malformed: unknown code 99"},
		{Method: "Access-Request", Path: "waits", Status: "Access-Accept", Err: "malformed: length 3000 over the datagram's 23 bytes"},
		// The header is sound: these wait for an answer, marked.
		{Method: "Access-Request", Path: "vsa", Status: "Access-Reject"},
		{Method: "Access-Request", Path: "cut", Status: "Access-Reject", Err: "malformed: attribute at offset 25 cut short"},
		{Method: "Access-Request", Path: "zero", Err: "malformed: attribute 18 at offset 26 has length 0"},
		{Method: "Access-Request", Path: "one", Err: "malformed: attribute 18 at offset 25 has length 1"},
		{Method: "Access-Request", Path: "past", Err: "malformed: attribute 18 at offset 26 runs past the packet's end"},
	})
	if body := calls[6].Request.Body; body != "User-Name = \"vsa\"\nAttr-26.311 = 0x010000\nVendor-Specific = 0x0000" {
		t.Errorf("a vendor attribute that does not walk: %q", body)
	}
}

// countingEmitter counts calls without keeping them.
type countingEmitter struct{ calls, unanswered, truncated int }

func (c *countingEmitter) Emit(call *proto.Call) {
	c.calls++
	switch call.ProblemKind() {
	case proto.Unanswered:
		c.unanswered++
	case proto.Truncated:
		c.truncated++
	}
}
func (c *countingEmitter) Upgrade(string) {}
func (c *countingEmitter) Skipped(int)    {}

// TestFloodOneFlow: a million requests on one flow, none answered, each a
// new one (identifiers cycle, authenticators differ): an identifier's
// reuse gives the request before it up, so at most 256 wait (Limits.MaxPending
// 1,024 is never reached), and memory stays flat.
func TestFloodOneFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("a million requests")
	}
	lim := proto.Limits{}.WithDefaults()
	var out countingEmitter
	p := radius.Protocol{}.NewFlow(&out, &lim)
	before := liveHeap()
	req := packet(1, 0, authn(0), attr(1, "flood"), attr(4, []byte{10, 0, 0, 1}), attr(5, 1))
	const n = 1 << 20
	peakKept, peakHeap := 0, uint64(0)
	for i := range n {
		req[1] = byte(i)
		binary.BigEndian.PutUint32(req[4:], uint32(i))
		p.Datagram(proto.Client, req, t0.Add(time.Duration(i)*time.Microsecond))
		peakKept = max(peakKept, p.(proto.Buffering).Buffered())
		if i%(n/8) == n/8-1 {
			peakHeap = max(peakHeap, liveHeap())
		}
	}
	p.End(proto.EndCapture, t0.Add(time.Second))
	grew := int64(peakHeap) - int64(before)
	t.Logf("%d requests: %d calls (%d unanswered), at most %d bytes kept by the parser's count, live heap grew at most %d KiB",
		n, out.calls, out.unanswered, peakKept, grew>>10)
	if out.calls != n || out.unanswered != n {
		t.Errorf("%d calls, %d unanswered, want %d", out.calls, out.unanswered, n)
	}
	if peakKept > 256*1024 {
		t.Errorf("kept %d bytes by its count", peakKept)
	}
	if grew > 4<<20 {
		t.Errorf("live heap grew %d KiB", grew>>10)
	}
}

// TestFloodManyPorts: requests from 4,096 client ports, 256 distinct
// identifiers each (every one a new request: 1,048,576), none answered,
// through the engine with its default bounds: the flows' parsers keep
// what they report (proto.Buffering), the engine ends the biggest flows
// early past its total, and live memory stays bounded; every request
// becomes a call.
func TestFloodManyPorts(t *testing.T) {
	if testing.Short() {
		t.Skip("a million requests")
	}
	var out countingEmitter
	memEnded := 0
	e := dissect.New(dissect.Options{Protocols: []proto.Protocol{radius.Protocol{}}, OnCall: func(c *proto.Call) {
		out.Emit(c)
		if c.Error == "no response: flow ended early for memory bounds" {
			memEnded++
		}
	}})
	req := packet(1, 0, authn(0), attr(1, "flood"), attr(4, []byte{10, 0, 0, 1}), attr(32, "nas-1"), attr(5, 1))
	udp := &layers.UDP{SrcPort: 40000, DstPort: 1812}
	frame := synth.Frame(gopacket.NewSerializeBuffer(), t0, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), udp, req)
	// The template's UDP header and payload: ports and the RADIUS header
	// are patched in place, the UDP checksum cleared (optional over IPv4).
	udpAt := len(frame.Data) - len(req) - 8
	binary.BigEndian.PutUint16(frame.Data[udpAt+6:], 0)
	payload := frame.Data[udpAt+8:]
	before := liveHeap()
	const ports, perPort = 4096, 256
	var peak uint64
	tm := t0
	for i := range ports {
		binary.BigEndian.PutUint16(frame.Data[udpAt:], uint16(20000+i))
		for j := range perPort {
			payload[1] = byte(j)
			binary.BigEndian.PutUint32(payload[4:], uint32(i<<8|j))
			tm = tm.Add(100 * time.Nanosecond)
			pk := capture.Packet{Timestamp: tm, Data: frame.Data, Length: frame.Length, LinkType: frame.LinkType}
			e.Packet(&pk)
		}
		if i%512 == 511 {
			peak = max(peak, liveHeap())
		}
	}
	st := e.Finish()
	grew := int64(peak) - int64(before)
	t.Logf("%d requests from %d ports: %d calls (%d unanswered, %d cut for memory bounds), %d flows ended for memory; live heap grew at most %d MiB",
		ports*perPort, ports, out.calls, out.unanswered, memEnded, st.MemoryEnded, grew>>20)
	if out.calls != ports*perPort || out.unanswered != ports*perPort {
		t.Errorf("%d calls, %d unanswered, want %d", out.calls, out.unanswered, ports*perPort)
	}
	if grew > 160<<20 {
		t.Errorf("live heap grew %d MiB", grew>>20)
	}
}
