package capture_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
)

// FuzzReader feeds arbitrary bytes to NewReader and reads every packet.
// The invariant: reading never panics and never reports more than the input
// holds. NewReader returns a source exactly when it returns no error; every
// Warning's offset lies within the (uncompressed) input; no packet's data is
// longer than the input. Every packet also goes through a Decoder, which
// must not panic.
func FuzzReader(f *testing.F) {
	for _, seed := range fuzzReaderSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		src, err := capture.NewReader("fuzz", bytes.NewReader(b))
		if (src == nil) == (err == nil) {
			t.Fatalf("NewReader returned source %v and error %v: want exactly one", src != nil, err)
		}
		if err != nil {
			return
		}
		defer src.Close()
		// The bytes the reader sees: the input, or what it decompresses to.
		// A gzip bomb past the cap leaves the bound unknown and unchecked.
		limit, known := int64(len(b)), true
		if len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b {
			limit, known = fuzzGunzippedLen(b, 16<<20)
		}
		dec := capture.NewDecoder()
		var p capture.Packet
		var out capture.Decoded
		n := 0
		for {
			err := src.Next(&p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Next after %d packets: %v (a damaged input fuzzMust end with io.EOF and a warning)", n, err)
			}
			n++
			if known && int64(len(p.Data)) > limit {
				t.Fatalf("packet %d holds %d bytes, more than the %d-byte input", n, len(p.Data), limit)
			}
			_ = dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &out)
		}
		if src.Packets() != n {
			t.Errorf("Packets() = %d, read %d", src.Packets(), n)
		}
		for _, w := range src.Warnings() {
			if w.Offset < 0 || (known && w.Offset > limit) {
				t.Errorf("warning offset %d outside the %d-byte input: %v", w.Offset, limit, w)
			}
		}
	})
}

// fuzzGunzippedLen returns how many bytes gzip.Reader yields from b, which is
// what NewReader reads, or false when that exceeds max.
func fuzzGunzippedLen(b []byte, max int64) (int64, bool) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return 0, true
	}
	n, _ := io.Copy(io.Discard, io.LimitReader(zr, max+1))
	return n, n <= max
}

// fuzzReaderSeeds builds small captures of each format the reader knows, whole
// and cut short, carrying frames that exercise each path of the decoder.
func fuzzReaderSeeds(tb testing.TB) [][]byte {
	t0 := time.Date(2026, 11, 21, 4, 30, 1, 123456789, time.UTC)
	eth := fuzzFrames(tb)
	ci := func(i int, data []byte) gopacket.CaptureInfo {
		return gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
	}
	pcapFile := func(nanos bool, snap uint32, lt layers.LinkType, frames [][]byte) []byte {
		var buf bytes.Buffer
		w := pcapgo.NewWriter(&buf)
		if nanos {
			w = pcapgo.NewWriterNanos(&buf)
		}
		fuzzMust(tb, w.WriteFileHeader(snap, lt))
		for i, fr := range frames {
			fuzzMust(tb, w.WritePacket(ci(i, fr), fr))
		}
		return buf.Bytes()
	}

	micro := pcapFile(false, 65535, layers.LinkTypeEthernet, eth)
	nanos := pcapFile(true, 65535, layers.LinkTypeEthernet, eth)
	// A raw-IP capture whose snap length cut the frames.
	var raw bytes.Buffer
	rw := pcapgo.NewWriter(&raw)
	fuzzMust(tb, rw.WriteFileHeader(64, layers.LinkTypeRaw))
	for i, fr := range eth {
		ip := fr[14:]
		c := ci(i, ip)
		c.CaptureLength = min(len(ip), 64)
		fuzzMust(tb, rw.WritePacket(c, ip[:c.CaptureLength]))
	}

	var ng bytes.Buffer
	nw, err := pcapgo.NewNgWriterInterface(&ng, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "wirescope-fuzz"}})
	fuzzMust(tb, err)
	rawIf, err := nw.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	fuzzMust(tb, err)
	for i, fr := range eth {
		fuzzMust(tb, nw.WritePacket(ci(i, fr), fr))
		c := ci(i, fr[14:])
		c.InterfaceIndex = rawIf
		fuzzMust(tb, nw.WritePacket(c, fr[14:]))
	}
	fuzzMust(tb, nw.Flush())

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err = zw.Write(micro)
	fuzzMust(tb, err)
	fuzzMust(tb, zw.Close())

	firstRecord := 24 + 16 + len(eth[0])
	return [][]byte{
		micro,
		nanos,
		raw.Bytes(),
		ng.Bytes(),
		gz.Bytes(),
		micro[:24],                        // a header and no packets
		micro[:firstRecord+7],             // cut inside a record header
		micro[:firstRecord+16+5],          // cut inside a record's data
		nanos[:len(nanos)-3],              // the last packet short
		ng.Bytes()[:ng.Len()/2],           // pcapng cut mid-block
		gz.Bytes()[:gz.Len()-10],          // gzip stream cut (no trailer)
		{0xd4, 0xc3, 0xb2, 0xa1, 2, 0},    // a magic and half a header
		{0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0}, // a pcapng magic and no block
	}
}

// fuzzFrames returns Ethernet frames covering the decoder's paths: TCP over
// IPv4 and IPv6, UDP, a VLAN tag, and an IPv4 fragment pair.
func fuzzFrames(tb testing.TB) [][]byte {
	mac1, mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	v4a, v4b := net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}
	v6a, v6b := net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		fuzzMust(tb, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
		return append([]byte(nil), buf.Bytes()...)
	}
	var out [][]byte

	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: v4a, DstIP: v4b}
	tcp := &layers.TCP{SrcPort: 51234, DstPort: 80, Seq: 1000, Ack: 5000, ACK: true, PSH: true, Window: 65535}
	fuzzMust(tb, tcp.SetNetworkLayerForChecksum(ip4))
	out = append(out, ser(&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4},
		ip4, tcp, gopacket.Payload("GET / HTTP/1.1\r\nHost: x\r\n\r\n")))

	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: v6a, DstIP: v6b}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	fuzzMust(tb, udp.SetNetworkLayerForChecksum(ip6))
	out = append(out, ser(&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv6},
		ip6, udp, gopacket.Payload([]byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 1, 0, 1})))

	ip4v := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: v4a, DstIP: v4b}
	udp4 := &layers.UDP{SrcPort: 40000, DstPort: 53}
	fuzzMust(tb, udp4.SetNetworkLayerForChecksum(ip4v))
	out = append(out, ser(&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}, ip4v, udp4, gopacket.Payload("hello")))

	// An IPv4 datagram in two fragments (offsets in 8-byte units).
	body := bytes.Repeat([]byte("0123456789abcdef"), 4)
	frag := func(off int, more bool, data []byte) []byte {
		ip := &layers.IPv4{Version: 4, TTL: 64, Id: 7, Protocol: layers.IPProtocolUDP, SrcIP: v4a, DstIP: v4b, FragOffset: uint16(off / 8)}
		if more {
			ip.Flags = layers.IPv4MoreFragments
		}
		return ser(&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}, ip, gopacket.Payload(data))
	}
	udpHdr := []byte{0x9c, 0x40, 0, 53, 0, byte(8 + len(body)), 0, 0}
	whole := append(udpHdr, body...)
	out = append(out, frag(0, true, whole[:32]), frag(32, false, whole[32:]))
	return out
}

func fuzzMust(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestFuzzReaderSeeds checks that the seeds are what they claim: the whole
// captures read without warnings.
func TestFuzzReaderSeeds(t *testing.T) {
	seeds := fuzzReaderSeeds(t)
	for i, b := range seeds[:5] {
		src, err := capture.NewReader("seed", bytes.NewReader(b))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		n := 0
		var p capture.Packet
		for {
			err := src.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n == 0 || len(src.Warnings()) > 0 {
			t.Errorf("seed %d: %d packets, warnings %v", i, n, src.Warnings())
		}
	}
}
