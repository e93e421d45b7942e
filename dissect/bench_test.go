package dissect_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
)

// benchLoad is the traffic the benchmarks dissect: 2,000 keep-alive HTTP
// connections of 25 request/response pairs each.
var benchLoad = synth.Load{Conns: 2000, Requests: 25}

func benchCapture(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "load.pcap")
	if _, err := synth.WriteLoad(path, benchLoad); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkEngine feeds the packets, read beforehand, to one Engine.
func BenchmarkEngine(b *testing.B) {
	src, err := capture.OpenFile(benchCapture(b))
	if err != nil {
		b.Fatal(err)
	}
	var pkts []capture.Packet
	for {
		var p capture.Packet
		if err := src.Next(&p); err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			break
		}
		p.Data = append([]byte(nil), p.Data...)
		pkts = append(pkts, p)
	}
	src.Close()
	b.ResetTimer()
	calls := 0
	for b.Loop() {
		e := dissect.New(dissect.Options{OnCall: func(*dissect.Call) { calls++ }})
		for i := range pkts {
			e.Packet(&pkts[i])
		}
		e.Finish()
	}
	b.ReportMetric(float64(len(pkts))*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkParallel dissects the capture file with one shard per CPU, as
// wirescope dissect does.
func BenchmarkParallel(b *testing.B) {
	path := benchCapture(b)
	b.ResetTimer()
	var packets uint64
	for b.Loop() {
		src, err := capture.OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		st, _, err := dissect.NewParallel(dissect.Options{OnCall: func(*dissect.Call) {}}, runtime.GOMAXPROCS(0)).Run(context.Background(), src, nil)
		if err != nil {
			b.Fatal(err)
		}
		packets += st.Packets
	}
	b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
}
