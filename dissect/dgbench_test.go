package dissect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
)

// BenchmarkDatagrams feeds one Engine 1,000 UDP clients that each send 50
// DNS queries, answered after the next query is sent, so that every parser
// keeps queries waiting.
func BenchmarkDatagrams(b *testing.B) {
	var pkts []capture.Packet
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	for i := range 1000 {
		client := fmt.Sprintf("10.9.%d.%d:40000", i/250, i%250)
		for j := range 51 {
			if j < 50 {
				pkts = append(pkts, synth.Datagram(at, client, "10.0.0.53:53", dnsQuery(uint16(j))))
				at = at.Add(time.Microsecond)
			}
			if j > 0 {
				r := dnsQuery(uint16(j - 1))
				r[2] |= 0x80 // QR: the response repeats the question
				pkts = append(pkts, synth.Datagram(at, "10.0.0.53:53", client, r))
				at = at.Add(time.Microsecond)
			}
		}
	}
	b.ResetTimer()
	for range b.N {
		calls := 0
		e := dissect.New(dissect.Options{OnCall: func(*dissect.Call) { calls++ }})
		for k := range pkts {
			e.Packet(&pkts[k])
		}
		e.Finish()
		if calls != 50000 {
			b.Fatalf("%d calls, want 50000", calls)
		}
	}
	b.ReportMetric(float64(len(pkts))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
