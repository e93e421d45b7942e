package flowindex_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
)

// TestPlaintextNotCounted: a connection's TLS plaintext records (as the
// agent stores them) add nothing to its flow: the packets and bytes are
// those on the wire, and records alone make no flow.
func TestPlaintextNotCounted(t *testing.T) {
	h := capture.PlaintextHeader{Library: capture.LibGoTLS, Major: 1, Minor: 26}
	x := build(t, time.Minute, func(emit func(capture.Packet)) {
		c := capturetest.NewConn("10.0.0.2:50000", "10.0.0.9:443", t0, emit)
		c.Handshake()
		rec := capture.AppendPlaintext(nil, h, c.Client, c.Server, 1, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
		emit(capture.Packet{Timestamp: c.T, Data: rec, Length: len(rec), LinkType: capture.LinkTypeTLSPlaintext})
		c.Send(true, []byte("\x17\x03\x03\x00\x05abcde"))
		alone := capture.AppendPlaintext(nil, h, netip.MustParseAddrPort("10.0.0.3:50000"), c.Server, 1, 1, []byte("x"))
		emit(capture.Packet{Timestamp: c.T, Data: alone, Length: len(alone), LinkType: capture.LinkTypeTLSPlaintext})
	})
	all := x.Query(time.Time{}, time.Time{}, nil)
	if len(all) != 1 || x.Len() != 1 {
		t.Fatalf("%d flows: %+v", x.Len(), all)
	}
	s := all[0]
	if s.Packets[0]+s.Packets[1] != 4 || s.Payload[0]+s.Payload[1] != 10 {
		t.Errorf("flow %+v", s)
	}
}
