package segstore_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
)

// FuzzRecover opens a store whose one segment and its flow index are built
// from the input (the index's checksum made right when fixCRC is set, so
// that its contents are believed and parsed), as a crash or a damaged disk
// leaves them. Opening never fails or panics; every packet the store then
// says it holds reads without error, no more packets than the segment's
// bytes could hold; the store goes on storing, closes, and opens again
// holding what it held and what it stored.
func FuzzRecover(f *testing.F) {
	seg, idx := fuzzSegment(f)
	body := idx[:len(idx)-4]
	f.Add(seg, idx, false)                      // as written
	f.Add(seg, body, true)                      // the same, checksum recomputed
	f.Add(seg, []byte(nil), false)              // no index: rebuilt
	f.Add(seg[:len(seg)-5], []byte(nil), false) // cut by a crash
	f.Add(seg[:24], []byte(nil), false)         // a header only
	f.Add(seg, body[:len(body)/2], true)        // a cut index that checks
	f.Add(seg, idx[:len(idx)-1], false)         // a cut index that does not
	f.Fuzz(func(t *testing.T, seg, idx []byte, fixCRC bool) {
		dir := t.TempDir()
		path := filepath.Join(dir, "segments", "000000000001-lt1.pcap")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, seg, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(idx) > 0 {
			if fixCRC {
				idx = binary.LittleEndian.AppendUint32(bytes.Clone(idx), crc32.ChecksumIEEE(idx))
			}
			if err := os.WriteFile(filepath.Join(dir, "segments", "000000000001-lt1.flows"), idx, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		o := segstore.Options{SegmentBytes: 32 << 10}
		s, err := segstore.Open(dir, o)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		src := segstore.Packets(s.Segments(), time.Time{}, time.Time{})
		n := 0
		var p capture.Packet
		for {
			err := src.Next(&p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading the store: %v", err)
			}
			if n++; n > len(seg)/16 {
				t.Fatalf("%d packets from a %d-byte segment", n, len(seg))
			}
		}
		src.Close()
		flows := 0
		if err := s.EachFlow(time.Time{}, time.Time{}, func(segstore.Segment, *segstore.Flow) bool {
			flows++
			return true
		}); err != nil {
			t.Fatalf("EachFlow: %v", err)
		}
		if flows > len(seg)+len(idx) {
			t.Fatalf("%d flows from %d bytes of segment and %d of index", flows, len(seg), len(idx))
		}
		held := storedPackets(s)
		more := traffic(1, t0.Add(time.Hour))[:3]
		for i := range more {
			if err := s.Write(&more[i], "eth0"); err != nil {
				t.Fatalf("write after recovery: %v", err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err = segstore.Open(dir, o)
		if err != nil {
			t.Fatalf("open again: %v", err)
		}
		defer s.Close()
		if got := storedPackets(s); got != held+3 {
			t.Fatalf("after reopening, the store holds %d packets, want the %d it recovered and 3 more", got, held)
		}
	})
}

// storedPackets sums the packets of the store's segments (wrapping, as an
// index may claim any count).
func storedPackets(s *segstore.Store) uint64 {
	var n uint64
	for _, g := range s.Segments() {
		n += g.Packets
	}
	return n
}

// fuzzSegment returns a segment and its flow index as a store writes them.
func fuzzSegment(f *testing.F) (seg, idx []byte) {
	dir := f.TempDir()
	s, err := segstore.Open(dir, segstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	pkts := traffic(2, t0)
	for i := range pkts {
		if err := s.Write(&pkts[i], "eth0"); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	base := filepath.Join(dir, "segments", "000000000001-lt1")
	if seg, err = os.ReadFile(base + ".pcap"); err != nil {
		f.Fatal(err)
	}
	if idx, err = os.ReadFile(base + ".flows"); err != nil {
		f.Fatal(err)
	}
	return seg, idx
}
