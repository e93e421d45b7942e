package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapOf writes frames as a classic pcap, one per second from t0, with
// nanosecond timestamps when nanos is set.
func pcapOf(t testing.TB, lt layers.LinkType, nanos bool, frames ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *pcapgo.Writer
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	} else {
		w = pcapgo.NewWriter(&buf)
	}
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 4, 30, 1, 123456789, time.UTC)
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Second), CaptureLength: len(f), Length: len(f)}
		if err := w.WritePacket(ci, f); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func frames(t testing.TB, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, serialize(t, tcp4(fmt.Sprintf("packet %d", i))...))
	}
	return out
}

func readAll(t *testing.T, s Source) ([]Packet, []Warning) {
	t.Helper()
	var out []Packet
	for {
		var p Packet
		err := s.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
	}
	return out, s.Warnings()
}

func TestReadPcap(t *testing.T) {
	for _, nanos := range []bool{false, true} {
		fs := frames(t, 3)
		src, err := NewReader("x.pcap", bytes.NewReader(pcapOf(t, layers.LinkTypeRaw, nanos, fs...)))
		if err != nil {
			t.Fatal(err)
		}
		got, warns := readAll(t, src)
		if len(got) != 3 || len(warns) != 0 {
			t.Fatalf("nanos=%v: %d packets, warnings %v", nanos, len(got), warns)
		}
		want := 123456789
		if !nanos {
			want = 123456000
		}
		if got[0].Timestamp.Nanosecond() != want || got[2].Timestamp.Sub(got[0].Timestamp) != 2*time.Second {
			t.Errorf("nanos=%v: timestamps %v %v", nanos, got[0].Timestamp, got[2].Timestamp)
		}
		if got[1].LinkType != layers.LinkTypeRaw || !bytes.Equal(got[1].Data, fs[1]) {
			t.Errorf("packet 1 differs")
		}
	}
}

// TestReadTruncated cuts a capture at every byte offset: each cut yields the
// packets wholly before it and a warning naming the offset of the record
// that was cut.
func TestReadTruncated(t *testing.T) {
	fs := frames(t, 4)
	full := pcapOf(t, layers.LinkTypeRaw, false, fs...)
	// Record i starts at 24 + sum of earlier records (16-byte header + data).
	starts := []int{24}
	for _, f := range fs {
		starts = append(starts, starts[len(starts)-1]+16+len(f))
	}
	for cut := 24; cut < len(full); cut++ {
		src, err := NewReader("cut.pcap", bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		got, warns := readAll(t, src)
		whole := 0
		for whole < len(fs) && starts[whole+1] <= cut {
			whole++
		}
		if len(got) != whole {
			t.Fatalf("cut %d: %d packets, want %d", cut, len(got), whole)
		}
		if cut == starts[whole] {
			if len(warns) != 0 {
				t.Fatalf("cut %d at a record boundary: warnings %v", cut, warns)
			}
			continue
		}
		if len(warns) != 1 || warns[0].Offset != int64(starts[whole]) || warns[0].Packets != whole ||
			!errors.Is(warns[0].Err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut %d: warnings %v, want one at offset %d after %d packets", cut, warns, starts[whole], whole)
		}
		if !strings.Contains(warns[0].String(), fmt.Sprintf("byte offset %d", starts[whole])) {
			t.Errorf("warning text %q does not name the offset", warns[0])
		}
	}
}

func TestReadCorrupt(t *testing.T) {
	fs := frames(t, 3)
	b := pcapOf(t, layers.LinkTypeRaw, false, fs...)
	second := 24 + 16 + len(fs[0])
	// A capture length of 2 GB in the second record.
	copy(b[second+8:], []byte{0, 0, 0, 0x80})
	src, err := NewReader("corrupt.pcap", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	got, warns := readAll(t, src)
	if len(got) != 1 || len(warns) != 1 || warns[0].Offset != int64(second) {
		t.Fatalf("%d packets, warnings %v; want 1 packet and a warning at %d", len(got), warns, second)
	}
}

func TestReadUnreadable(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":        nil,
		"text":         []byte("this is not a capture, it is a text file\n"),
		"short header": pcapOf(t, layers.LinkTypeRaw, false)[:10],
		"bad gzip":     {0x1f, 0x8b, 1, 2, 3},
	} {
		if _, err := NewReader(name, bytes.NewReader(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := NewReader("text", strings.NewReader("hello, world, not a pcap"))
	if !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("text: %v, want ErrUnknownFormat", err)
	}
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadGzip(t *testing.T) {
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(pcapOf(t, layers.LinkTypeRaw, true, frames(t, 5)...))
	zw.Close()
	path := filepath.Join(t.TempDir(), "x.pcap.gz")
	os.WriteFile(path, zb.Bytes(), 0o644)
	src, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, warns := readAll(t, src)
	if len(got) != 5 || len(warns) != 0 {
		t.Fatalf("%d packets, %v", len(got), warns)
	}
}

// ngSection builds one pcapng section by hand (gopacket's writer ignores
// per-interface timestamp resolutions): an interface per link type, with
// if_tsresol set to res[i] (10^-res seconds), and packet i sent on
// interface i % len(lts).
func ngSection(t *testing.T, lts []layers.LinkType, res []uint8, frames [][]byte, t0 time.Time) []byte {
	le := binary.LittleEndian
	block := func(typ uint32, body []byte) []byte {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		b := le.AppendUint32(nil, typ)
		b = le.AppendUint32(b, uint32(12+len(body)))
		b = append(b, body...)
		return le.AppendUint32(b, uint32(12+len(body)))
	}
	shb := le.AppendUint32(nil, 0x1a2b3c4d)
	shb = le.AppendUint16(shb, 1)
	shb = le.AppendUint16(shb, 0)
	shb = le.AppendUint64(shb, ^uint64(0))
	out := block(0x0a0d0d0a, shb)
	for i, lt := range lts {
		idb := le.AppendUint16(nil, uint16(lt))
		idb = le.AppendUint16(idb, 0)
		idb = le.AppendUint32(idb, 65535)
		idb = append(idb, 9, 0, 1, 0, res[i], 0, 0, 0) // if_tsresol
		idb = append(idb, 0, 0, 0, 0)                  // opt_endofopt
		out = append(out, block(1, idb)...)
	}
	for i, f := range frames {
		iface := i % len(lts)
		ts := t0.Add(time.Duration(i) * time.Millisecond).UnixNano()
		for range 9 - int(res[iface]) {
			ts /= 10
		}
		epb := le.AppendUint32(nil, uint32(iface))
		epb = le.AppendUint32(epb, uint32(uint64(ts)>>32))
		epb = le.AppendUint32(epb, uint32(ts))
		epb = le.AppendUint32(epb, uint32(len(f)))
		epb = le.AppendUint32(epb, uint32(len(f)))
		epb = append(epb, f...)
		out = append(out, block(6, epb)...)
	}
	return out
}

func TestReadPcapng(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 4, 30, 1, 987654321, time.UTC)
	raw := serialize(t, tcp4("raw")...)
	ethf := serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, tcp4("eth")...)...)
	sll2 := append(sll2Header(layers.EthernetTypeIPv4), raw...)
	// Section one: Ethernet (nanoseconds) and raw IP (microseconds).
	s1 := ngSection(t, []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw}, []uint8{9, 6}, [][]byte{ethf, raw, ethf}, t0)
	// Section two: one SLL2 interface.
	s2 := ngSection(t, []layers.LinkType{layers.LinkTypeLinuxSLL2}, []uint8{9}, [][]byte{sll2, sll2}, t0.Add(time.Second))
	src, err := NewReader("x.pcapng", bytes.NewReader(append(s1, s2...)))
	if err != nil {
		t.Fatal(err)
	}
	got, warns := readAll(t, src)
	if len(got) != 5 || len(warns) != 0 {
		t.Fatalf("%d packets, warnings %v", len(got), warns)
	}
	wantLT := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeEthernet, layers.LinkTypeLinuxSLL2, layers.LinkTypeLinuxSLL2}
	d := NewDecoder()
	for i, p := range got {
		if p.LinkType != wantLT[i] {
			t.Errorf("packet %d: link type %v, want %v", i, p.LinkType, wantLT[i])
		}
		var out Decoded
		if err := d.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &out); err != nil || out.SrcPort != 51234 {
			t.Errorf("packet %d does not decode: %v", i, err)
		}
	}
	if got[0].Timestamp.Nanosecond() != 987654321 || got[1].Timestamp.Nanosecond() != 988654000 {
		t.Errorf("timestamps %v %v: per-interface resolution lost", got[0].Timestamp, got[1].Timestamp)
	}
	// A pcapng file cut inside its last block warns with the block's offset.
	all := append(s1, s2...)
	src, _ = NewReader("cut.pcapng", bytes.NewReader(all[:len(all)-10]))
	got, warns = readAll(t, src)
	if len(got) != 4 || len(warns) != 1 || warns[0].Offset <= int64(len(s1)) || warns[0].Offset >= int64(len(all)-10) {
		t.Fatalf("cut pcapng: %d packets, warnings %v", len(got), warns)
	}
}

func TestMerge(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	mk := func(offsets ...int) Source {
		var buf bytes.Buffer
		w := pcapgo.NewWriterNanos(&buf)
		w.WriteFileHeader(65535, layers.LinkTypeRaw)
		for _, o := range offsets {
			f := serialize(t, tcp4(fmt.Sprint(o))...)
			w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(o) * time.Millisecond), CaptureLength: len(f), Length: len(f)}, f)
		}
		s, err := NewReader("m", &buf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	m := Merge(mk(1, 4, 5, 9), mk(2, 3, 8), mk(), mk(6, 7))
	got, _ := readAll(t, m)
	var order []string
	var srcs []int
	for _, p := range got {
		var d Decoded
		NewDecoder().Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d)
		order = append(order, string(d.Payload))
		srcs = append(srcs, p.Source)
	}
	if strings.Join(order, ",") != "1,2,3,4,5,6,7,8,9" {
		t.Errorf("merged order %v", order)
	}
	if fmt.Sprint(srcs) != "[0 1 1 0 0 3 3 1 0]" {
		t.Errorf("sources %v", srcs)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
}

// TestReadLargeRecord reads a record larger than the read buffer (a
// 1.5 MiB frame in a file whose snap length allows it) when the limit on
// packet size allows it, and skips it by default.
func TestReadLargeRecord(t *testing.T) {
	big := make([]byte, 3<<19)
	for i := range big {
		big[i] = byte(i)
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(4<<20, layers.LinkTypeRaw)
	small := serialize(t, tcp4("after")...)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(big), Length: len(big)}, big)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(2, 0), CaptureLength: len(small), Length: len(small)}, small)
	src, err := NewReader("big.pcap", bytes.NewReader(buf.Bytes()), MaxPacket(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	got, warns := readAll(t, src)
	if len(got) != 2 || len(warns) != 0 || !bytes.Equal(got[0].Data, big) || !bytes.Equal(got[1].Data, small) {
		t.Fatalf("%d packets, warnings %v", len(got), warns)
	}
	src, err = NewReader("big.pcap", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	got, warns = readAll(t, src)
	if len(got) != 1 || !bytes.Equal(got[0].Data, small) || len(warns) != 1 || !warns[0].Skipped || src.Skipped() != 1 {
		t.Fatalf("default limit: %d packets, %d skipped, warnings %v; want the small one read and the big one skipped", len(got), src.Skipped(), warns)
	}
}
