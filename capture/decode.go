package capture

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/ip6defrag"
	"github.com/gopacket/gopacket/layers"
)

// Reasons a frame yields no Decoded. They are sentinels so that the decode
// path does not allocate even when it fails.
var (
	ErrUnsupportedLink = errors.New("unsupported link type")
	ErrNotIP           = errors.New("not an IP packet")
	ErrMalformed       = errors.New("malformed header")
	ErrFragment        = errors.New("IP fragment held for reassembly")
)

// Decoded summarises one IP packet. Slices and the TCP layer alias the frame
// and the Decoder: they are valid until the next call to Decode.
type Decoded struct {
	// Network is the IP endpoint pair, as gopacket's reassembly wants it.
	Network gopacket.Flow
	// Src and Dst are the IP addresses.
	Src, Dst netip.Addr
	// Proto is the transport protocol.
	Proto layers.IPProtocol
	// SrcPort and DstPort are valid iff Proto is TCP, UDP or SCTP.
	SrcPort, DstPort uint16
	// TCP is valid iff Proto == layers.IPProtocolTCP.
	TCP *layers.TCP
	// Payload is the transport payload (for TCP and UDP) or the IP payload.
	Payload []byte
	// IPLength is the IP packet's length as sent (header included).
	IPLength int
	// Truncated is set when the capture holds less of the packet than was
	// sent (snap length), so Payload is shorter than the real payload.
	Truncated bool
	// VLAN is the innermost 802.1Q VLAN id, 0 if none.
	VLAN uint16
	// Reassembled is set when the packet was rebuilt from IP fragments.
	Reassembled bool
	// Plaintext is set for a TLS plaintext record (LinkTypeTLSPlaintext):
	// the TCP payload is what a process read or wrote through its TLS
	// library, not bytes on the wire. PlaintextHeader is valid iff
	// Plaintext is set.
	Plaintext       bool
	PlaintextHeader PlaintextHeader
}

// DecodeStats counts what Decode could not use.
type DecodeStats struct {
	UnsupportedLink uint64 `json:"unsupported_link"`
	NotIP           uint64 `json:"not_ip"`
	Malformed       uint64 `json:"malformed"`
	Fragments       uint64 `json:"fragments"`
	Reassembled     uint64 `json:"reassembled"`
	// FragmentsDropped counts fragments given up on because more than
	// MaxHeldFragments, or MaxHeldFragmentBytes of payload, waited for the
	// rest of their datagrams.
	FragmentsDropped uint64 `json:"fragments_dropped"`
}

// Add adds o's counts to s.
func (s *DecodeStats) Add(o DecodeStats) {
	s.UnsupportedLink += o.UnsupportedLink
	s.NotIP += o.NotIP
	s.Malformed += o.Malformed
	s.Fragments += o.Fragments
	s.Reassembled += o.Reassembled
	s.FragmentsDropped += o.FragmentsDropped
}

// MaxHeldFragments bounds the IP fragments a Decoder keeps while waiting
// for the rest of their datagrams (a fragment flood would otherwise hold
// every one for the 30 seconds fragments wait); past it, every fragment
// held is dropped.
const MaxHeldFragments = 16384

// MaxHeldFragmentBytes bounds the payload of the fragments a Decoder keeps
// likewise: a fragment may carry up to 64 KiB, so the count alone would let
// a hostile capture hold a gigabyte.
const MaxHeldFragmentBytes = 32 << 20

// Decoder decodes frames into Decoded values. It is not safe for concurrent
// use; the zero value is not usable, use NewDecoder.
type Decoder struct {
	eth   layers.Ethernet
	dot1q layers.Dot1Q
	sll   layers.LinuxSLL
	sll2  layers.LinuxSLL2
	lo    layers.Loopback
	ip4   layers.IPv4
	ip6   layers.IPv6
	ext   layers.IPv6ExtensionSkipper
	frag6 layers.IPv6Fragment
	tcp   layers.TCP

	defrag4 *ip4defrag.IPv4Defragmenter
	defrag6 *ip6defrag.IPv6Defragmenter
	// held counts fragments kept since the defragmenters were last
	// emptied, and heldBytes their payload: upper bounds on what they hold.
	held, heldBytes int

	// Stats counts frames that produced no Decoded.
	Stats DecodeStats

	// noQuick turns quickIPv4 off, for the tests that compare it with
	// gopacket's path.
	noQuick bool
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	return &Decoder{
		defrag4: ip4defrag.NewIPv4Defragmenter(),
		defrag6: ip6defrag.NewIPv6Defragmenter(),
	}
}

// Expire forgets IP fragments held since before t (capture time for IPv4;
// gopacket's IPv6 defragmenter keeps wall-clock time, so IPv6 fragments are
// forgotten a minute of wall time after they arrived).
func (d *Decoder) Expire(t time.Time) {
	d.defrag4.DiscardOlderThan(t)
	d.defrag6.DiscardOlderThan(time.Now().Add(-time.Minute))
}

// holdFragment accounts for a fragment of n payload bytes the
// defragmenters keep, emptying them when they may hold more than
// MaxHeldFragments fragments or MaxHeldFragmentBytes bytes.
func (d *Decoder) holdFragment(n int) {
	d.held++
	d.heldBytes += n
	if d.held > MaxHeldFragments || d.heldBytes > MaxHeldFragmentBytes {
		far := time.Unix(1<<62, 0)
		d.defrag4.DiscardOlderThan(far)
		d.defrag6.DiscardOlderThan(far)
		d.Stats.FragmentsDropped += uint64(d.held)
		d.held, d.heldBytes = 0, 0
	}
}

const (
	ethIPv4  = layers.EthernetTypeIPv4
	ethIPv6  = layers.EthernetTypeIPv6
	ethDot1Q = layers.EthernetTypeDot1Q
	ethQinQ  = layers.EthernetTypeQinQ
)

// Decode decodes frame (of link type lt, captured at ts; wireLen is its length
// on the wire) into out. It returns one of the package's sentinel errors when
// the frame carries nothing to decode.
func (d *Decoder) Decode(lt layers.LinkType, frame []byte, wireLen int, ts time.Time, out *Decoded) error {
	out.VLAN = 0
	out.Reassembled = false
	out.Plaintext = false
	out.Truncated = wireLen > len(frame)
	var et layers.EthernetType
	var payload []byte
	switch lt {
	case layers.LinkTypeEthernet:
		if len(frame) >= 14+20 && frame[12] == 0x08 && frame[13] == 0x00 && frame[14] == 0x45 && !d.noQuick && d.quickIPv4(frame[14:], out) {
			return d.decodeTransport(layers.IPProtocol(frame[14+9]), out.Payload, out)
		}
		if d.eth.DecodeFromBytes(frame, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		et, payload = d.eth.EthernetType, d.eth.Payload
	case layers.LinkTypeLinuxSLL:
		if d.sll.DecodeFromBytes(frame, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		et, payload = d.sll.EthernetType, d.sll.Payload
	case layers.LinkTypeLinuxSLL2:
		if d.sll2.DecodeFromBytes(frame, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		et, payload = d.sll2.ProtocolType, d.sll2.Payload
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		if d.lo.DecodeFromBytes(frame, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		et, payload = ipVersion(d.lo.Payload), d.lo.Payload
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12, 14:
		et, payload = ipVersion(frame), frame
	case LinkTypeTLSPlaintext:
		return d.decodePlaintext(frame, wireLen, ts, out)
	default:
		d.Stats.UnsupportedLink++
		return ErrUnsupportedLink
	}
	for et == ethDot1Q || et == ethQinQ {
		if d.dot1q.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		out.VLAN = d.dot1q.VLANIdentifier
		et, payload = d.dot1q.Type, d.dot1q.Payload
	}
	switch et {
	case ethIPv4:
		return d.decodeIPv4(payload, ts, out)
	case ethIPv6:
		return d.decodeIPv6(payload, out)
	}
	d.Stats.NotIP++
	return ErrNotIP
}

// decodePlaintext decodes a TLS plaintext record: its header, then an IP
// packet (no fragment, no IPv6 extension header) carrying TCP. Another
// user's LINKTYPE_USER0 frames (another magic) and another version of the
// record are unsupported; a record of ours that does not hold what it
// should is malformed.
func (d *Decoder) decodePlaintext(frame []byte, wireLen int, ts time.Time, out *Decoded) error {
	if len(frame) >= 5 && (string(frame[:4]) != PlaintextMagic || frame[4] != PlaintextVersion) ||
		len(frame) < 5 && string(frame) != PlaintextMagic[:min(len(frame), 4)] {
		d.Stats.UnsupportedLink++
		return ErrUnsupportedLink
	}
	h, err := ParsePlaintextHeader(frame)
	if err != nil {
		return d.malformed()
	}
	b := frame[PlaintextHeaderLen:]
	switch ipVersion(b) {
	case ethIPv4:
		if len(b) < 20 || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 || b[9] != byte(layers.IPProtocolTCP) {
			return d.malformed()
		}
		if err := d.decodeIPv4(b, ts, out); err != nil {
			return err
		}
	case ethIPv6:
		if len(b) < 40 || b[6] != byte(layers.IPProtocolTCP) {
			return d.malformed()
		}
		if err := d.decodeIPv6(b, out); err != nil {
			return err
		}
	default:
		return d.malformed()
	}
	if out.TCP == nil {
		return d.malformed()
	}
	if out.Truncated {
		// The IP length counts the bytes stored; the record's length as
		// sent counts the whole chunk.
		out.IPLength = max(out.IPLength, wireLen-PlaintextHeaderLen)
	}
	out.Plaintext, out.PlaintextHeader = true, h
	return nil
}

// ipVersion maps the version nibble of a raw IP packet to an EthernetType.
func ipVersion(b []byte) layers.EthernetType {
	if len(b) == 0 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		return ethIPv4
	case 6:
		return ethIPv6
	}
	return 0
}

func (d *Decoder) malformed() error {
	d.Stats.Malformed++
	return ErrMalformed
}

// quickIPv4 reads the IPv4 header of most frames, one without options or
// fragmentation, as decodeIPv4 would with gopacket's layers, which cost
// (with the Ethernet header) a twentieth of a dissection's CPU. It fills
// out's addresses, lengths and the IP payload (in out.Payload), and
// returns false, having changed nothing the slow path relies on, for any
// other header.
func (d *Decoder) quickIPv4(b []byte, out *Decoded) bool {
	length := int(binary.BigEndian.Uint16(b[2:4]))
	if length == 0 {
		length = len(b) // TSO, as layers.IPv4 reads it
	}
	if length < 20 || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
		return false
	}
	out.IPLength = min(length, math.MaxUint16)
	out.Truncated = out.Truncated || out.IPLength > len(b)
	out.Network = gopacket.NewFlow(layers.EndpointIPv4, b[12:16], b[16:20])
	out.Src = netip.AddrFrom4([4]byte(b[12:16]))
	out.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	out.Payload = b[20:min(length, len(b))]
	return true
}

func (d *Decoder) decodeIPv4(b []byte, ts time.Time, out *Decoded) error {
	ip := &d.ip4
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return d.malformed()
	}
	out.IPLength = int(ip.Length)
	if int(ip.Length) > len(b) {
		out.Truncated = true
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		d.Stats.Fragments++
		// The defragmenter keeps the layer and its payload: give it a copy,
		// as ours are reused for the next frame.
		cp := *ip
		cp.SrcIP = append([]byte(nil), ip.SrcIP...)
		cp.DstIP = append([]byte(nil), ip.DstIP...)
		cp.Payload = append([]byte(nil), ip.Payload...)
		cp.Options = nil
		whole, err := d.defrag4.DefragIPv4WithTimestamp(&cp, ts)
		if err != nil {
			return d.malformed()
		}
		if whole == nil {
			d.holdFragment(len(cp.Payload))
			return ErrFragment
		}
		d.Stats.Reassembled++
		ip = whole
		out.Reassembled = true
		out.IPLength = int(ip.IHL)*4 + len(ip.Payload)
	}
	out.Network = ip.NetworkFlow()
	out.Src, _ = netip.AddrFromSlice(ip.SrcIP)
	out.Dst, _ = netip.AddrFromSlice(ip.DstIP)
	return d.decodeTransport(ip.Protocol, ip.Payload, out)
}

func (d *Decoder) decodeIPv6(b []byte, out *Decoded) error {
	ip := &d.ip6
	if ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
		return d.malformed()
	}
	out.IPLength = 40 + int(ip.Length)
	if out.IPLength > len(b) {
		out.Truncated = true
	}
	next, payload := ip.NextHeader, ip.Payload
	if ip.HopByHop != nil {
		next = ip.HopByHop.NextHeader
	}
	for range 8 { // a bound on chained extension headers
		switch next {
		case layers.IPProtocolIPv6HopByHop, layers.IPProtocolIPv6Routing, layers.IPProtocolIPv6Destination:
			if d.ext.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
				return d.malformed()
			}
			next, payload = d.ext.NextHeader, d.ext.Payload
			continue
		case layers.IPProtocolAH:
			if len(payload) < 8 {
				return d.malformed()
			}
			n := (int(payload[1]) + 2) * 4
			if n > len(payload) {
				return d.malformed()
			}
			next, payload = layers.IPProtocol(payload[0]), payload[n:]
			continue
		case layers.IPProtocolIPv6Fragment:
			f := &d.frag6
			if f.DecodeFromBytes(payload, gopacket.NilDecodeFeedback) != nil {
				return d.malformed()
			}
			if f.FragmentOffset == 0 && !f.MoreFragments {
				next, payload = f.NextHeader, f.Payload // an atomic fragment
				continue
			}
			d.Stats.Fragments++
			hdr := *ip
			hdr.SrcIP = append([]byte(nil), ip.SrcIP...)
			hdr.DstIP = append([]byte(nil), ip.DstIP...)
			hdr.HopByHop, hdr.Contents, hdr.Payload = nil, nil, nil
			fc := *f
			fc.Payload = append([]byte(nil), f.Payload...)
			whole := d.defrag6.DefragIPv6(&hdr, &fc)
			if whole == nil {
				d.holdFragment(len(fc.Payload))
				return ErrFragment
			}
			d.Stats.Reassembled++
			out.Reassembled = true
			out.IPLength = 40 + len(whole.Payload)
			next, payload = whole.NextHeader, whole.Payload
			continue
		}
		break
	}
	out.Network = ip.NetworkFlow()
	out.Src, _ = netip.AddrFromSlice(ip.SrcIP)
	out.Dst, _ = netip.AddrFromSlice(ip.DstIP)
	return d.decodeTransport(next, payload, out)
}

func (d *Decoder) decodeTransport(proto layers.IPProtocol, b []byte, out *Decoded) error {
	out.Proto = proto
	out.TCP = nil
	out.SrcPort, out.DstPort = 0, 0
	switch proto {
	case layers.IPProtocolTCP:
		if d.tcp.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
			return d.malformed()
		}
		out.TCP = &d.tcp
		out.SrcPort, out.DstPort = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
		out.Payload = d.tcp.Payload
	case layers.IPProtocolUDP:
		if len(b) < 8 {
			return d.malformed()
		}
		// Decoded by hand rather than with layers.UDP: a truncated capture
		// must still yield the bytes it has.
		out.SrcPort = binary.BigEndian.Uint16(b[0:2])
		out.DstPort = binary.BigEndian.Uint16(b[2:4])
		n := int(binary.BigEndian.Uint16(b[4:6]))
		switch {
		case n < 8:
			if n != 0 { // 0 is a jumbogram's length field
				return d.malformed()
			}
			out.Payload = b[8:]
		case n > len(b):
			out.Truncated = true
			out.Payload = b[8:]
		default:
			out.Payload = b[8:n]
		}
	case layers.IPProtocolSCTP:
		// The ports make an association's flow; the payload keeps the
		// common header, which the engine reads with the chunks.
		if len(b) < 12 {
			return d.malformed()
		}
		out.SrcPort = binary.BigEndian.Uint16(b[0:2])
		out.DstPort = binary.BigEndian.Uint16(b[2:4])
		out.Payload = b
	default:
		out.Payload = b
	}
	return nil
}
