package fileset_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/fileset"
)

var t0 = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

// packets makes n packets of a few connections over ten minutes, every
// tenth one captured 3 ms "late" (out of time order), as multi-queue
// captures are.
func packets(n, seed int) []capture.Packet {
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	var out []capture.Packet
	step := 10 * time.Minute / time.Duration(n)
	for i := range n {
		ts := t0.Add(time.Duration(i) * step)
		if i%10 == 5 {
			ts = ts.Add(-3 * time.Millisecond)
		}
		p := capturetest.Datagram(ts, fmt.Sprintf("10.0.%d.2:%d", seed, 4000+r.IntN(20)), "10.1.0.9:53", []byte(fmt.Sprint("packet ", i)))
		out = append(out, p)
	}
	return out
}

func write(t *testing.T, dir, name string, pkts []capture.Packet) string {
	var buf bytes.Buffer
	switch filepath.Ext(name) {
	case ".pcapng":
		w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}, p.Data)
		}
		w.Flush()
	default:
		w := pcapgo.NewWriterNanos(&buf)
		w.WriteFileHeader(65535, layers.LinkTypeEthernet)
		for _, p := range pkts {
			w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}, p.Data)
		}
	}
	data := buf.Bytes()
	if filepath.Ext(name) == ".gz" {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readAll(t *testing.T, src capture.Source) []string {
	t.Helper()
	defer src.Close()
	var out []string
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %x", p.Timestamp.UnixNano(), p.Data[len(p.Data)-4:]))
	}
}

func TestWindows(t *testing.T) {
	dir := t.TempDir()
	a, b, c := packets(5000, 1), packets(3000, 2), packets(2000, 3)
	set, err := fileset.Open([]string{
		write(t, dir, "a.pcap", a), write(t, dir, "b.pcapng", b), write(t, dir, "c.pcap.gz", c),
	}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	files := set.Files()
	if len(files) != 3 || !files[0].Seekable || files[1].Seekable || files[2].Seekable || files[0].Packets != 5000 {
		t.Fatalf("files %+v", files)
	}
	if n, _ := set.Packets(); n != 10000 || set.Flows().Len() != 60 {
		t.Errorf("%d packets, %d flows", n, set.Flows().Len())
	}
	first, last := set.Bounds()
	if !first.Equal(t0) || last.Before(t0.Add(9*time.Minute)) {
		t.Errorf("bounds %v %v", first, last)
	}
	all, _, _ := set.Window(time.Time{}, time.Time{})
	everything := readAll(t, all)
	if len(everything) != 10000 {
		t.Fatalf("%d packets in the unbounded window", len(everything))
	}
	r := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		from := t0.Add(time.Duration(r.Int64N(int64(11 * time.Minute))))
		to := from.Add(time.Duration(r.Int64N(int64(3 * time.Minute))))
		var want []string
		for _, s := range everything {
			var ns int64
			fmt.Sscan(s, &ns)
			if ts := time.Unix(0, ns); !ts.Before(from) && ts.Before(to) {
				want = append(want, s)
			}
		}
		src, bound, err := set.Window(from, to)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, src)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("window %v–%v: %d packets, want %d", from.Format(time.TimeOnly), to.Format(time.TimeOnly), len(got), len(want))
		}
		if bound < uint64(len(got)) {
			t.Fatalf("window %v–%v: bound %d below %d packets read", from, to, bound, len(got))
		}
		if n := set.Count(from, to); n != bound {
			t.Fatalf("window %v–%v: Count %d, Window's bound %d", from, to, n, bound)
		}
	}
}

// TestWindowReadsLittle: a short window late in a seekable file reads about
// the checkpoints around it, not the file.
func TestWindowReadsLittle(t *testing.T) {
	dir := t.TempDir()
	set, err := fileset.Open([]string{write(t, dir, "a.pcap", packets(20000, 1))}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, bound, _ := set.Window(t0.Add(8*time.Minute), t0.Add(8*time.Minute+10*time.Second))
	// 10 s of 10 minutes is 333 packets; a checkpoint each side adds 2,048.
	if bound > 333+2*1024 {
		t.Errorf("a 10 s window reads up to %d of 20,000 packets", bound)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := fileset.Open(nil, 0); err == nil {
		t.Error("no files accepted")
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pcap")
	os.WriteFile(bad, []byte("not a capture"), 0o644)
	if _, err := fileset.Open([]string{bad}, 0); err == nil {
		t.Error("bad file accepted")
	}
}
