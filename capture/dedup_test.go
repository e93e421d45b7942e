package capture_test

import (
	"slices"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
)

// TestDedup: a packet seen again on another interface (TTL and checksum
// rewritten by routing) within the window is a duplicate; the same packet
// later, or another packet (a retransmission with a new IP ID), is not.
func TestDedup(t *testing.T) {
	var pkts []capture.Packet
	capturetest.Load{Conns: 200, Requests: 3}.Emit(func(p capture.Packet) {
		p.Data = slices.Clone(p.Data)
		pkts = append(pkts, p)
	})
	d := capture.NewDedup(0)
	for i := range pkts {
		p := pkts[i]
		if d.Duplicate(&p, 1, false) {
			t.Fatalf("packet %d of distinct traffic taken for a duplicate", i)
		}
		// Seen again 50 µs later on the bridge, one hop on: TTL and
		// checksum differ.
		again := p
		again.Data = slices.Clone(p.Data)
		again.Data[14+8]--
		again.Data[14+10] ^= 0x55
		again.Timestamp = p.Timestamp.Add(50 * time.Microsecond)
		if !d.Duplicate(&again, 2, false) {
			t.Fatalf("packet %d seen twice is not a duplicate", i)
		}
	}
	if d.Duplicates != uint64(len(pkts)) {
		t.Errorf("%d duplicates counted, want %d", d.Duplicates, len(pkts))
	}
	// The same bytes after the window are a new packet.
	late := pkts[0]
	late.Timestamp = pkts[len(pkts)-1].Timestamp.Add(time.Second)
	if d.Duplicate(&late, 1, false) {
		t.Error("a packet seen again after the window is a duplicate")
	}
	// Another IP ID: a retransmission.
	retx := late
	retx.Data = slices.Clone(late.Data)
	retx.Data[14+5]++
	retx.Timestamp = late.Timestamp.Add(100 * time.Microsecond)
	if d.Duplicate(&retx, 2, false) {
		t.Error("a packet with another IP ID is a duplicate")
	}
	// The same bytes twice on one interface are two packets (a protocol
	// sending a message twice), except on loopback, where AF_PACKET shows
	// each packet sent and received.
	twice := pkts[10]
	twice.Timestamp = retx.Timestamp.Add(time.Second)
	if d.Duplicate(&twice, 3, false) {
		t.Fatal("first sighting")
	}
	twice.Timestamp = twice.Timestamp.Add(10 * time.Microsecond)
	if d.Duplicate(&twice, 3, false) {
		t.Error("the same bytes sent twice on one interface were merged")
	}
	lo := pkts[11]
	lo.Timestamp = twice.Timestamp.Add(time.Second)
	if d.Duplicate(&lo, 4, true) || !d.Duplicate(&lo, 4, true) {
		t.Error("a loopback packet seen sent and received was not merged")
	}
}

// BenchmarkDedup: each packet of HTTP traffic seen on a veth and again on
// the bridge 50 µs later (the case user-space dedup is kept for).
func BenchmarkDedup(b *testing.B) {
	var pkts []capture.Packet
	capturetest.Load{Conns: 200, Requests: 3}.Emit(func(p capture.Packet) {
		p.Data = slices.Clone(p.Data)
		pkts = append(pkts, p)
	})
	again := make([]capture.Packet, len(pkts))
	for i, p := range pkts {
		again[i] = p
		again[i].Data = slices.Clone(p.Data)
		again[i].Data[14+8]--
		again[i].Timestamp = p.Timestamp.Add(50 * time.Microsecond)
	}
	d := capture.NewDedup(0)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		shift := time.Duration(n) * time.Second // past the window: all new again
		for i := range pkts {
			p, q := pkts[i], again[i]
			p.Timestamp, q.Timestamp = p.Timestamp.Add(shift), q.Timestamp.Add(shift)
			d.Duplicate(&p, 1, false)
			d.Duplicate(&q, 2, false)
			if n += 2; n >= b.N {
				break
			}
		}
	}
}
