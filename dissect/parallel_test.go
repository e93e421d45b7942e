package dissect_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/internal/corpus"
)

// output is what a dissection produced, as the JSON lines wirescope prints.
type output struct {
	lines []string
	stats dissect.Stats
}

func sequential(t *testing.T, paths ...string) output {
	t.Helper()
	var o output
	opts := dissect.Options{
		OnCall: func(c *dissect.Call) { o.lines = append(o.lines, string(c.AppendJSON(nil))) },
		OnFlow: func(f *dissect.Flow) { o.lines = append(o.lines, string(f.AppendJSON(nil))) },
	}
	src := openAll(t, paths...)
	defer src.Close()
	o.stats = feedAll(t, dissect.New(opts), src)
	return o
}

func parallel(t *testing.T, shards int, paths ...string) output {
	t.Helper()
	var o output
	opts := dissect.Options{
		OnCall: func(c *dissect.Call) { o.lines = append(o.lines, string(c.AppendJSON(nil))) },
		OnFlow: func(f *dissect.Flow) { o.lines = append(o.lines, string(f.AppendJSON(nil))) },
	}
	st, _, err := dissect.NewParallel(opts, shards).Run(context.Background(), openAll(t, paths...), nil)
	if err != nil {
		t.Fatal(err)
	}
	o.stats = st
	return o
}

func sameOutput(t *testing.T, name string, want, got output) {
	t.Helper()
	if len(got.lines) != len(want.lines) {
		t.Fatalf("%s: %d records, sequential %d", name, len(got.lines), len(want.lines))
	}
	for i := range want.lines {
		if got.lines[i] != want.lines[i] {
			t.Fatalf("%s: record %d differs:\n got: %.300s\nwant: %.300s", name, i, got.lines[i], want.lines[i])
		}
	}
	if !reflect.DeepEqual(got.stats, want.stats) {
		t.Errorf("%s: stats differ:\n got: %+v\nwant: %+v", name, got.stats, want.stats)
	}
}

// TestParallelMatchesEngine runs every test capture through one Engine and
// through Parallel with several shard counts: the records, their order and
// the statistics must be identical.
func TestParallelMatchesEngine(t *testing.T) {
	captures := [][]string{
		{"http1/testdata/nginx.pcap"},
		{"dns/testdata/dnsmasq.pcap"},
		{"http1/testdata/nginx.pcap", "dns/testdata/dnsmasq.pcap"},
		{writeMixed(t, 40)},
		{writeMixed(t, 600)}, // some 25,000 packets: many more batches than are in flight
		// Kafka 4 clients produce by topic ID on connections whose Metadata
		// came on another: the names are correlated in output order.
		{"../evals/scenarios/billing-consumer-rebalance/capture.pcap"},
		// TLS connections and, in a capture of their own, the plaintext
		// records of most (plaintext.go): a connection's packets and
		// records must meet in one shard.
		writeTLSPlaintext(t, 90),
	}
	if dir, ok := corpus.Dir(); ok {
		for _, sub := range []string{"http1", "dns", "tcp", "icmp", "sctp", "kafka"} {
			m, _ := filepath.Glob(filepath.Join(dir, sub, "*.pcap"))
			for _, p := range m {
				captures = append(captures, []string{p})
			}
		}
	}
	for _, paths := range captures {
		want := sequential(t, paths...)
		if len(want.lines) == 0 {
			t.Fatalf("%v: no records", paths)
		}
		for _, n := range []int{1, 2, 3, 5} {
			sameOutput(t, fmt.Sprintf("%v with %d shards", filepath.Base(strings.Join(paths, "+")), n), want, parallel(t, n, paths...))
		}
	}
}

// writeMixed writes a capture that exercises what the merger must order:
// conns interleaved connections over six minutes of capture time, some
// closed, some reset, some left idle past the idle timeout (closed by a
// periodic flush), one with a gap given up after the reorder wait, UDP
// flows nobody dissects, and DNS queries without answers.
func writeMixed(t *testing.T, conns int) string {
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var pkts []capture.Packet
	add := func(p capture.Packet) { pkts = append(pkts, p) }
	for i := range conns {
		begin := t0.Add(time.Duration(i) * 280 * time.Second / time.Duration(conns))
		c := synth.NewConn(fmt.Sprintf("10.0.%d.2:%d", i%4, 40000+i), fmt.Sprintf("10.1.0.%d:80", 1+i%3), begin, add)
		c.Handshake()
		for k := range 1 + i%3 {
			c.Send(true, []byte(fmt.Sprintf("GET /item/%d/%d HTTP/1.1\r\nHost: shop\r\n\r\n", i, k)))
			if i%7 == 3 && k == 0 {
				c.Skip(false, 40) // lost: the reorder wait gives it up
			}
			c.Send(false, []byte(fmt.Sprintf("HTTP/1.1 %d OK\r\nContent-Length: 2\r\n\r\nok", 200+i%4)))
			c.T = c.T.Add(500 * time.Millisecond)
		}
		switch i % 4 {
		case 0:
			c.Close()
		case 1:
			c.Send(true, []byte("GET /slow HTTP/1.1\r\n\r\n"))
			c.Reset(false)
		case 2:
			// left open: the idle timeout ends it
		case 3:
			c.Send(true, []byte("GET /unanswered HTTP/1.1\r\n\r\n"))
		}
		add(synth.Datagram(begin.Add(time.Second), fmt.Sprintf("10.0.9.%d:5000", i%5), "10.1.9.9:7777", []byte("opaque")))
		add(synth.Datagram(begin.Add(2*time.Second), fmt.Sprintf("10.0.8.%d:%d", i%5, 30000+i), "10.1.8.8:53",
			[]byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01")))
	}
	slices.SortStableFunc(pkts, func(a, b capture.Packet) int { return a.Timestamp.Compare(b.Timestamp) })
	var buf bytes.Buffer
	w := pcapgo.NewWriterNanos(&buf)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for _, p := range pkts {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}, p.Data)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("mixed%d.pcap", conns))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestParallelCancel cancels a dissection midway: Run returns the context's
// error promptly, having reported progress, and leaves no goroutine behind.
func TestParallelCancel(t *testing.T) {
	path := writeMixed(t, 600)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var seen uint64
	var calls int
	p := dissect.NewParallel(dissect.Options{OnCall: func(*dissect.Call) { calls++ }}, 3)
	_, _, err := p.Run(ctx, openAll(t, path), func(n uint64) {
		seen = n
		if n >= 2000 {
			cancel()
		}
	})
	if err != context.Canceled || seen < 2000 || seen > 2000+512*6 {
		t.Fatalf("err %v after %d packets", err, seen)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after a cancelled Run, %d before", n, before)
	}
}
