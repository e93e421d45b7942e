package capture

import (
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Dedup recognises a packet seen a second time on another interface (a
// pod's veth and the bridge it is attached to each show it) or, on
// loopback, in its other direction (AF_PACKET shows a loopback packet as
// sent and as received). The same bytes twice on one other interface are
// two packets, and both are kept. Two packets are the same when their
// IP header (without TTL or hop limit and checksum, which routing changes)
// and the first DedupPayload bytes after it are equal and they were
// captured less than Window apart. A TCP retransmission differs in its IP
// ID (IPv4) and comes later than Window on all but the shortest paths.
// Frames that are not IP are compared whole, up to DedupPayload bytes.
type Dedup struct {
	// Window is how long a packet is remembered.
	Window time.Duration
	seed   maphash.Seed
	seen   map[uint64]sighting
	queue  []dedupEntry // in capture order, for expiry
	head   int
	// Duplicates counts the packets Duplicate reported.
	Duplicates uint64
}

type dedupEntry struct {
	hash uint64
	ts   int64
}

// sighting is when and where a packet was seen.
type sighting struct {
	ts    int64 // Unix ns
	iface int
}

// DedupPayload is how many bytes after the IP header take part in the
// comparison.
const DedupPayload = 64

// DefaultDedupWindow is Dedup's default window.
const DefaultDedupWindow = 2 * time.Millisecond

// maxDedup bounds the packets remembered (at 10 Mpps, 2 ms is 20,000).
const maxDedup = 1 << 16

// NewDedup returns a Dedup remembering packets for window (default
// DefaultDedupWindow).
func NewDedup(window time.Duration) *Dedup {
	if window <= 0 {
		window = DefaultDedupWindow
	}
	return &Dedup{Window: window, seed: maphash.MakeSeed(), seen: map[uint64]sighting{}}
}

// Duplicate reports whether p, captured on interface iface (any number
// that tells interfaces apart), was seen within the window on another
// interface — or on the same one when loopback is set — and remembers it
// otherwise. Packets must come in (roughly) capture order.
func (d *Dedup) Duplicate(p *Packet, iface int, loopback bool) bool {
	ts := p.Timestamp.UnixNano()
	// Forget what is older than the window, or past the bound.
	for d.head < len(d.queue) && (ts-d.queue[d.head].ts > int64(d.Window) || len(d.queue)-d.head > maxDedup) {
		e := d.queue[d.head]
		if d.seen[e.hash].ts == e.ts {
			delete(d.seen, e.hash)
		}
		d.head++
	}
	if d.head > 4096 && d.head*2 > len(d.queue) {
		d.queue = append(d.queue[:0], d.queue[d.head:]...)
		d.head = 0
	}
	h := d.hash(p)
	if at, ok := d.seen[h]; ok && ts-at.ts <= int64(d.Window) && ts >= at.ts && (at.iface != iface || loopback) {
		d.Duplicates++
		delete(d.seen, h) // a third sighting is a new packet
		return true
	}
	d.seen[h] = sighting{ts, iface}
	d.queue = append(d.queue, dedupEntry{h, ts})
	return false
}

// hash digests what identifies a packet across interfaces.
func (d *Dedup) hash(p *Packet) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	ip := ipStart(p.LinkType, p.Data)
	if ip < 0 || ip >= len(p.Data) {
		h.Write(p.Data[:min(len(p.Data), DedupPayload+64)])
		return h.Sum64()
	}
	b := p.Data[ip:]
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < 20 || ihl < 20 {
			break
		}
		h.Write(b[:8])   // version … fragment offset
		h.Write(b[9:10]) // protocol (not TTL)
		h.Write(b[12:20])
		h.Write(b[min(ihl, len(b)):min(ihl+DedupPayload, len(b))])
		return h.Sum64()
	case 6:
		if len(b) < 40 {
			break
		}
		h.Write(b[:7]) // version … next header (not hop limit)
		h.Write(b[8:40])
		h.Write(b[40:min(40+DedupPayload, len(b))])
		return h.Sum64()
	}
	h.Write(b[:min(len(b), DedupPayload+64)])
	return h.Sum64()
}

// ipStart returns the offset of the IP header in a frame, or -1 when the
// frame does not carry IP.
func ipStart(lt layers.LinkType, b []byte) int {
	switch lt {
	case layers.LinkTypeEthernet:
		off := 12
		for off+2 <= len(b) {
			switch binary.BigEndian.Uint16(b[off:]) {
			case 0x8100, 0x88a8: // VLAN tags
				off += 4
				continue
			case 0x0800, 0x86dd:
				return off + 2
			}
			return -1
		}
		return -1
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		return 0
	case layers.LinkTypeLinuxSLL:
		return 16
	case layers.LinkType(276): // LINUX_SLL2
		return 20
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return 4
	}
	return -1
}
