package http2_test

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

// h2loadCapture is the HTTP/2 load `make bench` records (scripts/benchcmp,
// scripts/record-h2load.sh): 50,000 GET streams from h2load on 10
// connections, 10 in flight on each, answered 200 by nghttpd.
const (
	h2loadCapture = "../../.cache/bench/h2load.pcap"
	h2loadStreams = 50000
)

// loadH2 reads the capture's packets into memory, so that the benchmarks
// time dissection alone.
func loadH2(b *testing.B) (pkts []capture.Packet, size int64) {
	b.Helper()
	st, err := os.Stat(h2loadCapture)
	if err != nil {
		b.Skip("no HTTP/2 benchmark capture: run make bench (or go run ./scripts/benchcmp -only http2) once to record .cache/bench/h2load.pcap")
	}
	src, err := capture.OpenFile(h2loadCapture)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	for {
		var p capture.Packet
		if err := src.Next(&p); err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			return pkts, st.Size()
		}
		p.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, p)
	}
}

// benchH2load feeds the h2load capture to one Engine per iteration, as
// wirescope dissect does (with -q: summary), and checks every stream
// became a call.
func benchH2load(b *testing.B, summary bool) {
	pkts, size := loadH2(b)
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		calls := 0
		e := dissect.New(dissect.Options{
			Limits: proto.Limits{Summary: summary},
			OnCall: func(c *dissect.Call) {
				if c.Proto == "http2" && c.Status == "200" {
					calls++
				}
			},
		})
		for i := range pkts {
			e.Packet(&pkts[i])
		}
		e.Finish()
		if calls != h2loadStreams {
			b.Fatalf("%d HTTP/2 calls answered 200, want %d", calls, h2loadStreams)
		}
	}
	b.ReportMetric(float64(len(pkts))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(h2loadStreams*float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkH2load dissects the capture keeping headers and bodies, as
// wirescope dissect's JSONL output needs.
func BenchmarkH2load(b *testing.B) { benchH2load(b, false) }

// BenchmarkH2loadSummary dissects it in summary mode (wirescope dissect -q).
func BenchmarkH2loadSummary(b *testing.B) { benchH2load(b, true) }
