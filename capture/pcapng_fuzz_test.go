package capture_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// FuzzPcapng feeds arbitrary bytes, seeded with pcapng files, to the reader
// twice: with no effective limit on packet size, and with a limit of 64
// bytes. Neither panics or returns an error other than io.EOF; no packet is
// longer than the input or the limit; every warning lies within the input;
// and skipping is exact: the packets of the first reading that fit the limit
// are, in order, the start of the second reading's packets, and the second
// reading skipped at least as many as the first one read over the limit.
func FuzzPcapng(f *testing.F) {
	for _, seed := range pcapngSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		all, _, allSkipped, ok := fuzzRead(t, b, len(b)+1)
		if !ok {
			return
		}
		if allSkipped != 0 {
			t.Fatalf("%d packets skipped with a limit above the input's length", allSkipped)
		}
		const limit = 64
		small, _, skipped, _ := fuzzRead(t, b, limit)
		var fit [][]byte
		over := 0
		for _, p := range all {
			if len(p) <= limit {
				fit = append(fit, p)
			} else {
				over++
			}
		}
		if len(fit) > len(small) {
			t.Fatalf("limit %d: %d packets read, but %d of the unlimited reading fit", limit, len(small), len(fit))
		}
		for i, p := range fit {
			if !bytes.Equal(p, small[i]) {
				t.Fatalf("limit %d: packet %d differs from the unlimited reading's", limit, i)
			}
		}
		if skipped < over {
			t.Fatalf("limit %d: %d packets skipped, but %d of the unlimited reading exceed it", limit, skipped, over)
		}
	})
}

// fuzzRead reads b with a limit on packet size and checks the invariants
// that hold for any input. It returns the packets' data, the warnings, the
// packets skipped, and false when b has no readable header.
func fuzzRead(t *testing.T, b []byte, limit int) ([][]byte, []capture.Warning, int, bool) {
	src, err := capture.NewReader("fuzz", bytes.NewReader(b), capture.MaxPacket(limit))
	if (src == nil) == (err == nil) {
		t.Fatalf("NewReader returned source %v and error %v: want exactly one", src != nil, err)
	}
	if err != nil {
		return nil, nil, 0, false
	}
	defer src.Close()
	size, known := int64(len(b)), true
	if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
		size, known = fuzzGunzippedLen(b, 16<<20)
	}
	var out [][]byte
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("limit %d: Next after %d packets: %v (damage must end with io.EOF and a warning)", limit, len(out), err)
		}
		if len(p.Data) > limit || known && int64(len(p.Data)) > size {
			t.Fatalf("limit %d: packet %d holds %d bytes (input %d)", limit, len(out), len(p.Data), size)
		}
		out = append(out, bytes.Clone(p.Data))
	}
	if src.Packets() != len(out) {
		t.Errorf("Packets() = %d, read %d", src.Packets(), len(out))
	}
	warns := src.Warnings()
	for _, w := range warns {
		if w.Offset < 0 || known && w.Offset > size {
			t.Errorf("warning offset %d outside the %d-byte input: %v", w.Offset, size, w)
		}
	}
	return out, warns, src.Skipped(), true
}

// ngBuilder writes pcapng blocks in either byte order.
type ngBuilder struct {
	o   order
	out []byte
}

// order is a byte order that appends.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (n *ngBuilder) block(typ uint32, body []byte) {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n.out = n.o.AppendUint32(n.out, typ)
	n.out = n.o.AppendUint32(n.out, uint32(12+len(body)))
	n.out = append(n.out, body...)
	n.out = n.o.AppendUint32(n.out, uint32(12+len(body)))
}

func (n *ngBuilder) section() {
	b := n.o.AppendUint32(nil, 0x1a2b3c4d)
	b = n.o.AppendUint16(b, 1)
	b = n.o.AppendUint16(b, 0)
	b = n.o.AppendUint64(b, ^uint64(0))
	n.block(0x0a0d0d0a, b)
}

// iface describes an interface; res is if_tsresol (0: absent), off
// if_tsoffset.
func (n *ngBuilder) iface(lt layers.LinkType, snap uint32, res uint8, off int64) {
	b := n.o.AppendUint16(nil, uint16(lt))
	b = n.o.AppendUint16(b, 0)
	b = n.o.AppendUint32(b, snap)
	if res != 0 {
		b = n.o.AppendUint16(b, 9)
		b = n.o.AppendUint16(b, 1)
		b = append(b, res, 0, 0, 0)
	}
	if off != 0 {
		b = n.o.AppendUint16(b, 14)
		b = n.o.AppendUint16(b, 8)
		b = n.o.AppendUint64(b, uint64(off))
	}
	b = append(b, 0, 0, 0, 0)
	n.block(1, b)
}

func (n *ngBuilder) epb(iface uint32, ts uint64, data []byte, wire int) {
	b := n.o.AppendUint32(nil, iface)
	b = n.o.AppendUint32(b, uint32(ts>>32))
	b = n.o.AppendUint32(b, uint32(ts))
	b = n.o.AppendUint32(b, uint32(len(data)))
	b = n.o.AppendUint32(b, uint32(wire))
	b = append(b, data...)
	// An epb_flags option.
	b = n.o.AppendUint16(append(b, make([]byte, (4-len(data)%4)%4)...), 2)
	b = n.o.AppendUint16(b, 4)
	b = n.o.AppendUint32(b, 1)
	b = append(b, 0, 0, 0, 0)
	n.block(6, b)
}

// pcapngSeeds builds pcapng files exercising each kind of block: sections
// in both byte orders, interfaces with decimal and binary timestamp
// resolutions and offsets, enhanced, simple and obsolete packet blocks,
// statistics and custom blocks, packets over 64 bytes and under, and cuts.
func pcapngSeeds(tb testing.TB) [][]byte {
	frames := fuzzFrames(tb)
	ts := uint64(time.Date(2026, 11, 21, 4, 30, 1, 0, time.UTC).UnixMicro())
	var seeds [][]byte
	for _, o := range []order{binary.LittleEndian, binary.BigEndian} {
		n := &ngBuilder{o: o}
		n.section()
		n.iface(layers.LinkTypeEthernet, 65535, 0, 0)
		n.iface(layers.LinkTypeRaw, 128, 0x80|20, 0) // 2^-20 s
		n.iface(layers.LinkTypeEthernet, 0, 9, -3600)
		for i, fr := range frames {
			n.epb(uint32(i%3), ts+uint64(i), fr, len(fr))
		}
		n.epb(0, ts, frames[0][:40], len(frames[0])) // cut by a snap length
		// A simple packet block (interface 0) and an obsolete packet block.
		spb := o.AppendUint32(nil, uint32(len(frames[1])))
		n.block(3, append(spb, frames[1]...))
		pb := o.AppendUint16(nil, 1)
		pb = o.AppendUint16(pb, 0)
		pb = o.AppendUint32(pb, uint32(ts>>32))
		pb = o.AppendUint32(pb, uint32(ts))
		pb = o.AppendUint32(pb, 20)
		pb = o.AppendUint32(pb, 20)
		n.block(2, append(pb, frames[2][14:34]...))
		// Interface statistics and a custom block.
		isb := o.AppendUint32(nil, 0)
		isb = o.AppendUint64(isb, ts)
		n.block(5, append(isb, 0, 0, 0, 0))
		n.block(0x00000bad, []byte("custom block"))
		// A second section with one interface.
		n.section()
		n.iface(layers.LinkTypeLinuxSLL2, 262144, 6, 0)
		n.epb(0, ts, append(make([]byte, 20), frames[0][14:]...), 20+len(frames[0])-14)
		whole := n.out
		seeds = append(seeds, whole, whole[:len(whole)/2], whole[:len(whole)-3])
	}
	// A packet block whose captured length runs past the block, and one
	// whose block length is not a multiple of 4.
	n := &ngBuilder{o: binary.LittleEndian}
	n.section()
	n.iface(layers.LinkTypeEthernet, 0, 0, 0)
	start := len(n.out)
	n.epb(0, ts, frames[0], len(frames[0]))
	bad := bytes.Clone(n.out)
	binary.LittleEndian.PutUint32(bad[start+20:], 1<<20)
	seeds = append(seeds, bad)
	odd := bytes.Clone(n.out)
	binary.LittleEndian.PutUint32(odd[start+4:], 99)
	return append(seeds, odd)
}

// TestPcapngSeeds checks that the seeds are what they claim: both whole
// files read without warnings, every kind of packet block included.
func TestPcapngSeeds(t *testing.T) {
	seeds := pcapngSeeds(t)
	for _, i := range []int{0, 3} {
		src, err := capture.NewReader("seed", bytes.NewReader(seeds[i]))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		var links []layers.LinkType
		var p capture.Packet
		for src.Next(&p) == nil {
			links = append(links, p.LinkType)
		}
		// Five frames, the cut one, the simple and obsolete packets, the
		// second section's.
		if len(links) != 9 || len(src.Warnings()) > 0 || links[8] != layers.LinkTypeLinuxSLL2 {
			t.Errorf("seed %d: link types %v, warnings %v", i, links, src.Warnings())
		}
	}
	// The last two stop at their packet block with what is wrong.
	for i, want := range map[int]string{len(seeds) - 2: "captured length 1048576 exceeds block length", len(seeds) - 1: "block length 99"} {
		src, err := capture.NewReader("seed", bytes.NewReader(seeds[i]))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		var p capture.Packet
		for src.Next(&p) == nil {
		}
		if w := src.Warnings(); len(w) != 1 || !strings.Contains(w[0].Err.Error(), want) {
			t.Errorf("seed %d: warnings %v, want one saying %q", i, w, want)
		}
	}
}
