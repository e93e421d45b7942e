package main

import (
	"io"
	"os"
	"testing"
)

// benchCapture is the 50,000-pair capture `make bench` records.
const benchCapture = "../../.cache/bench/http-load.pcap"

func benchDissect(b *testing.B, quiet bool) {
	st, err := os.Stat(benchCapture)
	if err != nil {
		b.Skip("no benchmark capture: run make bench once to record .cache/bench/http-load.pcap")
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if err := runDissect(io.Discard, io.Discard, []string{benchCapture}, dissectFlags{format: "jsonl", quiet: quiet}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(50000*float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkDissect is the full JSONL path over the benchmark capture.
func BenchmarkDissect(b *testing.B) { benchDissect(b, false) }

// BenchmarkDissectQuiet dissects the same capture printing only the summary.
func BenchmarkDissectQuiet(b *testing.B) { benchDissect(b, true) }
