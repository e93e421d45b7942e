package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	ip4a = net.IP{10, 0, 0, 2}
	ip4b = net.IP{10, 0, 0, 9}
	ip6a = net.ParseIP("fd00::2")
	ip6b = net.ParseIP("fd00::9")
	mac1 = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	mac2 = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// serialize builds a frame from layers, fixing lengths and checksums.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					tcp.SetNetworkLayerForChecksum(nl)
				}
			}
		}
		if udp, ok := l.(*layers.UDP); ok {
			for _, n := range ls {
				if nl, ok := n.(gopacket.NetworkLayer); ok {
					udp.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func tcp4(payload string) []gopacket.SerializableLayer {
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: ip4a, DstIP: ip4b}
	tcp := &layers.TCP{SrcPort: 51234, DstPort: 8080, Seq: 1000, ACK: true, PSH: true, Window: 512}
	return []gopacket.SerializableLayer{ip, tcp, gopacket.Payload(payload)}
}

func udp6(payload string) []gopacket.SerializableLayer {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: ip6a, DstIP: ip6b}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
	return []gopacket.SerializableLayer{ip, udp, gopacket.Payload(payload)}
}

func eth(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: t}
}

// sll2Header is a Linux cooked v2 header (20 bytes) for protocol p.
func sll2Header(p layers.EthernetType) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:2], uint16(p))
	binary.BigEndian.PutUint32(h[4:8], 1) // interface index
	binary.BigEndian.PutUint16(h[8:10], 1)
	h[10] = 0 // to us
	h[11] = 6
	copy(h[12:], mac1)
	return h
}

// sllHeader is a Linux cooked v1 header (16 bytes) for protocol p.
func sllHeader(p layers.EthernetType) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[2:4], 1)
	binary.BigEndian.PutUint16(h[4:6], 6)
	copy(h[6:], mac1)
	binary.BigEndian.PutUint16(h[14:16], uint16(p))
	return h
}

func TestDecodeLinkTypes(t *testing.T) {
	ipTCP := serialize(t, tcp4("GET / HTTP/1.1\r\n\r\n")...)
	ipUDP6 := serialize(t, udp6("dnsdata")...)
	nullHdr := func(fam uint32, big bool) []byte {
		b := make([]byte, 4)
		if big {
			binary.BigEndian.PutUint32(b, fam)
		} else {
			binary.LittleEndian.PutUint32(b, fam)
		}
		return b
	}
	cases := []struct {
		name    string
		lt      layers.LinkType
		frame   []byte
		proto   layers.IPProtocol
		src     string
		sport   uint16
		payload string
		vlan    uint16
	}{
		{"ethernet", layers.LinkTypeEthernet, serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, tcp4("GET / HTTP/1.1\r\n\r\n")...)...), layers.IPProtocolTCP, "10.0.0.2", 51234, "GET / HTTP/1.1\r\n\r\n", 0},
		{"vlan", layers.LinkTypeEthernet, serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 42, Type: layers.EthernetTypeIPv4}}, tcp4("x")...)...), layers.IPProtocolTCP, "10.0.0.2", 51234, "x", 42},
		{"qinq", layers.LinkTypeEthernet, serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv6}}, udp6("q")...)...), layers.IPProtocolUDP, "fd00::2", 40000, "q", 7},
		{"sll", layers.LinkTypeLinuxSLL, append(sllHeader(layers.EthernetTypeIPv4), ipTCP...), layers.IPProtocolTCP, "10.0.0.2", 51234, "GET / HTTP/1.1\r\n\r\n", 0},
		{"sll2", layers.LinkTypeLinuxSLL2, append(sll2Header(layers.EthernetTypeIPv6), ipUDP6...), layers.IPProtocolUDP, "fd00::2", 40000, "dnsdata", 0},
		{"null-le", layers.LinkTypeNull, append(nullHdr(2, false), ipTCP...), layers.IPProtocolTCP, "10.0.0.2", 51234, "GET / HTTP/1.1\r\n\r\n", 0},
		{"loop-be", layers.LinkTypeLoop, append(nullHdr(30, true), ipUDP6...), layers.IPProtocolUDP, "fd00::2", 40000, "dnsdata", 0},
		{"raw4", layers.LinkTypeRaw, ipTCP, layers.IPProtocolTCP, "10.0.0.2", 51234, "GET / HTTP/1.1\r\n\r\n", 0},
		{"raw6", layers.LinkTypeIPv6, ipUDP6, layers.IPProtocolUDP, "fd00::2", 40000, "dnsdata", 0},
		{"ipv4-linktype", layers.LinkTypeIPv4, ipTCP, layers.IPProtocolTCP, "10.0.0.2", 51234, "GET / HTTP/1.1\r\n\r\n", 0},
	}
	d := NewDecoder()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out Decoded
			if err := d.Decode(c.lt, c.frame, len(c.frame), time.Unix(0, 0), &out); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if out.Proto != c.proto || out.Src != netip.MustParseAddr(c.src) || out.SrcPort != c.sport {
				t.Errorf("got proto %v src %v:%d, want %v %s:%d", out.Proto, out.Src, out.SrcPort, c.proto, c.src, c.sport)
			}
			if string(out.Payload) != c.payload {
				t.Errorf("payload %q, want %q", out.Payload, c.payload)
			}
			if out.VLAN != c.vlan {
				t.Errorf("vlan %d, want %d", out.VLAN, c.vlan)
			}
			if c.proto == layers.IPProtocolTCP && (out.TCP == nil || out.TCP.Seq != 1000) {
				t.Errorf("TCP layer not decoded: %+v", out.TCP)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	d := NewDecoder()
	var out Decoded
	arp := serialize(t, eth(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, SourceHwAddress: mac1, SourceProtAddress: ip4a, DstHwAddress: mac2, DstProtAddress: ip4b})
	cases := []struct {
		name  string
		lt    layers.LinkType
		frame []byte
		want  error
	}{
		{"arp", layers.LinkTypeEthernet, arp, ErrNotIP},
		{"unknown link", layers.LinkType(147), []byte{1, 2, 3}, ErrUnsupportedLink},
		{"short ethernet", layers.LinkTypeEthernet, []byte{1, 2, 3}, ErrMalformed},
		{"short ip", layers.LinkTypeRaw, []byte{0x45, 0, 0}, ErrMalformed},
		{"ip header length past data", layers.LinkTypeRaw, []byte{0x4f, 0, 0, 60, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, ErrMalformed},
		{"tcp data offset past data", layers.LinkTypeRaw, append(serialize(t, &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolTCP, SrcIP: ip4a, DstIP: ip4b})[:20:20], 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0, 0, 0, 0, 0, 0, 0), ErrMalformed},
		{"empty raw", layers.LinkTypeRaw, nil, ErrNotIP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := d.Decode(c.lt, c.frame, len(c.frame), time.Unix(0, 0), &out); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	if d.Stats.NotIP == 0 || d.Stats.UnsupportedLink == 0 || d.Stats.Malformed == 0 {
		t.Errorf("stats not counted: %+v", d.Stats)
	}
}

func TestDecodeTruncatedCapture(t *testing.T) {
	frame := serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, tcp4("0123456789abcdef")...)...)
	cut := frame[:len(frame)-6] // a snap length cut the payload short
	var out Decoded
	if err := NewDecoder().Decode(layers.LinkTypeEthernet, cut, len(frame), time.Unix(0, 0), &out); err != nil {
		t.Fatal(err)
	}
	if !out.Truncated || string(out.Payload) != "0123456789" || out.IPLength != len(frame)-14 {
		t.Errorf("truncated=%v payload=%q iplen=%d", out.Truncated, out.Payload, out.IPLength)
	}
}

func TestDecodeIPv6ExtensionHeaders(t *testing.T) {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6HopByHop, SrcIP: ip6a, DstIP: ip6b}
	// Hop-by-hop (PadN), then destination options, then routing, then TCP.
	ext := []byte{
		byte(layers.IPProtocolIPv6Destination), 0, 1, 4, 0, 0, 0, 0, // hop-by-hop, 8 bytes
		byte(layers.IPProtocolIPv6Routing), 0, 1, 4, 0, 0, 0, 0, // destination options
		byte(layers.IPProtocolTCP), 0, 0, 0, 0, 0, 0, 0, // routing type 0, no segments left
	}
	tcp := &layers.TCP{SrcPort: 443, DstPort: 50000, Seq: 7, ACK: true}
	tcp.SetNetworkLayerForChecksum(ip)
	tcpBytes := serialize(t, tcp, gopacket.Payload("hello"))
	ip.Length = uint16(len(ext) + len(tcpBytes))
	hdr := serialize(t, ip)[:40]
	frame := append(append(append([]byte{}, hdr...), ext...), tcpBytes...)
	binary.BigEndian.PutUint16(frame[4:6], uint16(len(ext)+len(tcpBytes)))
	var out Decoded
	if err := NewDecoder().Decode(layers.LinkTypeRaw, frame, len(frame), time.Unix(0, 0), &out); err != nil {
		t.Fatal(err)
	}
	if out.Proto != layers.IPProtocolTCP || out.SrcPort != 443 || string(out.Payload) != "hello" {
		t.Errorf("got proto %v port %d payload %q", out.Proto, out.SrcPort, out.Payload)
	}
}

// fragments4 splits an IPv4 UDP datagram into fragments of at most size
// payload bytes (a multiple of 8).
func fragments4(t *testing.T, payload []byte, size int) [][]byte {
	u := &layers.UDP{SrcPort: 5000, DstPort: 53}
	u.SetNetworkLayerForChecksum(&layers.IPv4{Version: 4, Protocol: layers.IPProtocolUDP, SrcIP: ip4a, DstIP: ip4b})
	udp := serialize(t, u, gopacket.Payload(payload))
	var out [][]byte
	for off := 0; off < len(udp); off += size {
		end := min(off+size, len(udp))
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Protocol: layers.IPProtocolUDP, SrcIP: ip4a, DstIP: ip4b,
			FragOffset: uint16(off / 8)}
		if end < len(udp) {
			ip.Flags = layers.IPv4MoreFragments
		}
		out = append(out, serialize(t, ip, gopacket.Payload(udp[off:end])))
	}
	return out
}

func TestDecodeIPv4Fragments(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 300) // 3,000 bytes
	frags := fragments4(t, payload, 1200)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	d := NewDecoder()
	var out Decoded
	// Out of order: last, first, middle. The frame buffer is reused between
	// calls, as a capture source reuses it.
	buf := make([]byte, 2000)
	for i, k := range []int{2, 0, 1} {
		n := copy(buf, frags[k])
		err := d.Decode(layers.LinkTypeRaw, buf[:n], n, time.Unix(int64(i), 0), &out)
		for j := range buf {
			buf[j] = 0xee
		}
		if i < 2 {
			if !errors.Is(err, ErrFragment) {
				t.Fatalf("fragment %d: %v, want ErrFragment", i, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("last fragment: %v", err)
		}
	}
	if !out.Reassembled || out.Proto != layers.IPProtocolUDP || out.DstPort != 53 || !bytes.Equal(out.Payload, payload) {
		t.Fatalf("reassembled=%v proto=%v port=%d payload %d bytes (equal=%v)", out.Reassembled, out.Proto, out.DstPort, len(out.Payload), bytes.Equal(out.Payload, payload))
	}
	if d.Stats.Fragments != 3 || d.Stats.Reassembled != 1 {
		t.Errorf("stats %+v", d.Stats)
	}
}

func TestDecodeIPv6Fragments(t *testing.T) {
	payload := bytes.Repeat([]byte("abcdefgh"), 250) // 2,000 bytes
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: ip6a, DstIP: ip6b}
	udp := &layers.UDP{SrcPort: 6000, DstPort: 53}
	udp.SetNetworkLayerForChecksum(ip)
	whole := serialize(t, udp, gopacket.Payload(payload))
	var frags [][]byte
	for off := 0; off < len(whole); off += 1024 {
		end := min(off+1024, len(whole))
		more := uint16(0)
		if end < len(whole) {
			more = 1
		}
		fh := make([]byte, 8)
		fh[0] = byte(layers.IPProtocolUDP)
		binary.BigEndian.PutUint16(fh[2:4], uint16(off/8)<<3|more)
		binary.BigEndian.PutUint32(fh[4:8], 99)
		h := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment, SrcIP: ip6a, DstIP: ip6b}
		frags = append(frags, serialize(t, h, gopacket.Payload(append(fh, whole[off:end]...))))
	}
	d := NewDecoder()
	var out Decoded
	var err error
	for i := len(frags) - 1; i >= 0; i-- {
		err = d.Decode(layers.LinkTypeRaw, frags[i], len(frags[i]), time.Unix(0, 0), &out)
		if i > 0 && !errors.Is(err, ErrFragment) {
			t.Fatalf("fragment %d: %v", i, err)
		}
	}
	if err != nil || !out.Reassembled || out.DstPort != 53 || !bytes.Equal(out.Payload, payload) {
		t.Fatalf("err=%v reassembled=%v port=%d payload %d bytes", err, out.Reassembled, out.DstPort, len(out.Payload))
	}
}

// TestDecodeAllocs proves the per-packet decode path allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	frames := map[string]struct {
		lt    layers.LinkType
		frame []byte
	}{
		"ethernet-ipv4-tcp": {layers.LinkTypeEthernet, serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, tcp4("GET / HTTP/1.1\r\n\r\n")...)...)},
		"vlan-ipv6-udp":     {layers.LinkTypeEthernet, serialize(t, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 3, Type: layers.EthernetTypeIPv6}}, udp6("x")...)...)},
		"sll2-ipv6-udp":     {layers.LinkTypeLinuxSLL2, append(sll2Header(layers.EthernetTypeIPv6), serialize(t, udp6("dns")...)...)},
		"raw-ipv4-tcp":      {layers.LinkTypeRaw, serialize(t, tcp4("payload")...)},
	}
	d := NewDecoder()
	var out Decoded
	for name, f := range frames {
		allocs := testing.AllocsPerRun(1000, func() {
			if err := d.Decode(f.lt, f.frame, len(f.frame), time.Unix(1, 0), &out); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per decode, want 0", name, allocs)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	frame := serialize(b, append([]gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4)}, tcp4("GET / HTTP/1.1\r\nHost: x\r\n\r\n")...)...)
	d := NewDecoder()
	var out Decoded
	ts := time.Unix(1, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		d.Decode(layers.LinkTypeEthernet, frame, len(frame), ts, &out)
	}
}

// TestFragmentFlood sends first fragments of datagrams that never complete:
// the decoder keeps at most MaxHeldFragments of them and counts the rest.
func TestFragmentFlood(t *testing.T) {
	d := NewDecoder()
	var out Decoded
	for id := range MaxHeldFragments + 100 {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(id), Flags: layers.IPv4MoreFragments,
			Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, byte(id >> 16), byte(id >> 8), byte(id)}, DstIP: ip4b}
		f := serialize(t, ip, gopacket.Payload(make([]byte, 64)))
		if err := d.Decode(layers.LinkTypeRaw, f, len(f), time.Unix(0, 0), &out); !errors.Is(err, ErrFragment) {
			t.Fatalf("fragment %d: %v", id, err)
		}
	}
	if d.Stats.FragmentsDropped != MaxHeldFragments+1 || d.held != 99 {
		t.Errorf("dropped %d, holding %d", d.Stats.FragmentsDropped, d.held)
	}
}

// TestFragmentBytesFlood: fragments of 60 KB that never complete are
// bounded by their bytes, not only their count (16,384 of them would hold
// a gigabyte), and the live heap stays near the bound.
func TestFragmentBytesFlood(t *testing.T) {
	d := NewDecoder()
	var out Decoded
	const size = 60000
	n := MaxHeldFragmentBytes/size + 100
	payload := make([]byte, size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for id := range n {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: uint16(id), Flags: layers.IPv4MoreFragments,
			Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, byte(id >> 16), byte(id >> 8), byte(id)}, DstIP: ip4b}
		f := serialize(t, ip, gopacket.Payload(payload))
		if err := d.Decode(layers.LinkTypeRaw, f, len(f), time.Unix(0, 0), &out); !errors.Is(err, ErrFragment) {
			t.Fatalf("fragment %d: %v", id, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if want := uint64(MaxHeldFragmentBytes/size + 1); d.Stats.FragmentsDropped != want || d.held != n-int(want) {
		t.Errorf("dropped %d, holding %d; want %d dropped, %d held", d.Stats.FragmentsDropped, d.held, want, n-int(want))
	}
	if live := int64(after.HeapAlloc) - int64(before.HeapAlloc); live > 2*MaxHeldFragmentBytes {
		t.Errorf("%d MiB live after the flood, bound %d MiB", live>>20, MaxHeldFragmentBytes>>20)
	}
}
