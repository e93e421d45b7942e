package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// pcapng block types (pcapng specification, section 11.1).
const (
	ngIDB = 0x00000001 // interface description
	ngPB  = 0x00000002 // packet (obsolete)
	ngSPB = 0x00000003 // simple packet
	ngEPB = 0x00000006 // enhanced packet
	ngSHB = 0x0a0d0d0a // section header (the same in either byte order)

	ngByteOrderMagic = 0x1a2b3c4d
	// ngMaxInterfaces bounds the interfaces a section may describe.
	ngMaxInterfaces = 1 << 16
)

// ngState is what the blocks read so far in a pcapng section say about the
// ones that follow.
type ngState struct {
	order  binary.ByteOrder
	ifaces []ngIface
}

// ngIface is a pcapng interface description.
type ngIface struct {
	link layers.LinkType
	snap uint32
	// units is how many timestamp units make a second (if_tsresol); offset
	// is added to every timestamp's seconds (if_tsoffset).
	units  uint64
	offset int64
}

// timestamp converts a timestamp in the interface's units.
func (f *ngIface) timestamp(ts uint64) time.Time {
	hi, lo := bits.Mul64(ts%f.units, 1e9)
	nsec, _ := bits.Div64(hi, lo, f.units) // hi < units: no overflow
	return time.Unix(int64(ts/f.units)+f.offset, int64(nsec)).UTC()
}

// errNgShort wraps io.ErrUnexpectedEOF for a block cut by the end of input.
func errNgShort(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readSHB reads the section header block at the read position and starts a
// new section: byte order and version from the header, no interfaces yet.
func (s *File) readSHB() error {
	h, err := s.br.Peek(16)
	if err != nil {
		return errNgShort(err)
	}
	switch {
	case binary.LittleEndian.Uint32(h[8:12]) == ngByteOrderMagic:
		s.ng.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[8:12]) == ngByteOrderMagic:
		s.ng.order = binary.BigEndian
	default:
		return fmt.Errorf("section header: byte-order magic %#08x is wrong", binary.LittleEndian.Uint32(h[8:12]))
	}
	blen := int64(s.ng.order.Uint32(h[4:8]))
	if blen < 28 || blen%4 != 0 {
		return fmt.Errorf("section header: block length %d is not a multiple of 4 of at least 28", blen)
	}
	if major, minor := s.ng.order.Uint16(h[12:14]), s.ng.order.Uint16(h[14:16]); major != 1 || minor != 0 {
		return fmt.Errorf("section header: pcapng version %d.%d is not supported (1.0 is)", major, minor)
	}
	if _, err := s.discard(blen); err != nil {
		return errNgShort(err)
	}
	s.ng.ifaces = s.ng.ifaces[:0]
	return nil
}

// nextNg reads pcapng blocks up to the next packet. A packet block whose
// packet exceeds the limit is skipped without being read; a block length
// that cannot be right stops reading with an error that says so.
func (s *File) nextNg(p *Packet) error {
	o := s.ng.order
	for {
		start := s.offset()
		h, err := s.br.Peek(8)
		if err != nil {
			if len(h) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return s.stop(start, err)
		}
		typ := o.Uint32(h[0:4])
		if typ == ngSHB {
			if err := s.readSHB(); err != nil {
				return s.stop(start, err)
			}
			o = s.ng.order
			continue
		}
		blen := int64(o.Uint32(h[4:8]))
		if blen < 12 || blen%4 != 0 {
			return s.stop(start, fmt.Errorf("block of type %#x: block length %d is not a multiple of 4 of at least 12", typ, blen))
		}
		switch typ {
		case ngEPB, ngPB:
			if blen < 32 {
				return s.stop(start, fmt.Errorf("packet block: block length %d is shorter than its 32-byte header", blen))
			}
			h, err := s.br.Peek(28)
			if err != nil {
				return s.stop(start, errNgShort(err))
			}
			iface := int(o.Uint32(h[8:12]))
			if typ == ngPB {
				iface = int(o.Uint16(h[8:10]))
			}
			ts := uint64(o.Uint32(h[12:16]))<<32 | uint64(o.Uint32(h[16:20]))
			capLen, wireLen := int64(o.Uint32(h[20:24])), int(o.Uint32(h[24:28]))
			switch {
			case capLen > blen-32:
				return s.stop(start, fmt.Errorf("packet block: captured length %d exceeds block length %d", capLen, blen))
			case capLen > int64(s.maxPacket):
				if err := s.skip(start, blen, capLen); err != nil {
					return err
				}
				continue
			case iface >= len(s.ng.ifaces):
				return s.stop(start, fmt.Errorf("packet block: interface %d is not described in the section (it describes %d)", iface, len(s.ng.ifaces)))
			}
			data, err := s.ngBlock(blen, 28, int(capLen))
			if err != nil {
				return s.stop(start, err)
			}
			f := &s.ng.ifaces[iface]
			s.packets++
			*p = Packet{Timestamp: f.timestamp(ts), Data: data, Length: wireLen, LinkType: f.link, Interface: iface}
			return nil
		case ngSPB:
			if blen < 16 {
				return s.stop(start, fmt.Errorf("simple packet block: block length %d is shorter than its 16-byte header", blen))
			}
			if len(s.ng.ifaces) == 0 {
				return s.stop(start, errors.New("simple packet block: no interface is described before it"))
			}
			h, err := s.br.Peek(12)
			if err != nil {
				return s.stop(start, errNgShort(err))
			}
			wireLen := int(o.Uint32(h[8:12]))
			// The block holds the packet cut at the snap length of the
			// first interface.
			capLen := min(int64(wireLen), blen-16)
			if snap := s.ng.ifaces[0].snap; snap != 0 {
				capLen = min(capLen, int64(snap))
			}
			if capLen > int64(s.maxPacket) {
				if err := s.skip(start, blen, capLen); err != nil {
					return err
				}
				continue
			}
			data, err := s.ngBlock(blen, 12, int(capLen))
			if err != nil {
				return s.stop(start, err)
			}
			s.packets++
			*p = Packet{Data: data, Length: wireLen, LinkType: s.ng.ifaces[0].link}
			return nil
		case ngIDB:
			if err := s.readIDB(blen); err != nil {
				return s.stop(start, err)
			}
		default:
			// Statistics, name resolution, secrets, custom blocks: none
			// says anything about the packets.
			if _, err := s.discard(blen); err != nil {
				return s.stop(start, fmt.Errorf("block of type %#x and %d bytes: %w", typ, blen, errNgShort(err)))
			}
		}
	}
}

// ngBlock consumes the packet block of blen bytes at the read position and
// returns its packet: capLen bytes after a header of hlen bytes.
func (s *File) ngBlock(blen int64, hlen, capLen int) ([]byte, error) {
	if blen <= int64(s.br.Size()) {
		b, err := s.br.Peek(int(blen))
		if err != nil {
			return nil, errNgShort(err)
		}
		if err := s.ngTrailer(blen, b[blen-4:]); err != nil {
			return nil, err
		}
		s.br.Discard(int(blen))
		return b[hlen : hlen+capLen], nil
	}
	// Options longer than the read buffer, or a limit that is: the packet
	// is copied out before the rest of the block is read.
	s.br.Discard(hlen)
	if cap(s.big) < capLen {
		s.big = make([]byte, capLen)
	}
	data := s.big[:capLen]
	if _, err := io.ReadFull(s.br, data); err != nil {
		return nil, errNgShort(err)
	}
	if _, err := s.discard(blen - int64(hlen+capLen) - 4); err != nil {
		return nil, errNgShort(err)
	}
	var t [4]byte
	if _, err := io.ReadFull(s.br, t[:]); err != nil {
		return nil, errNgShort(err)
	}
	return data, s.ngTrailer(blen, t[:])
}

// ngTrailer checks the block length repeated at the end of a block.
func (s *File) ngTrailer(blen int64, t []byte) error {
	if end := int64(s.ng.order.Uint32(t)); end != blen {
		return fmt.Errorf("block length %d at the end of the block differs from %d at its start", end, blen)
	}
	return nil
}

// readIDB reads the interface description block of blen bytes at the read
// position and adds the interface to the section.
func (s *File) readIDB(blen int64) error {
	switch {
	case blen < 20:
		return fmt.Errorf("interface description block: block length %d is shorter than its 20-byte header", blen)
	case blen > int64(s.br.Size()):
		return fmt.Errorf("interface description block: block length %d exceeds the %d-byte read buffer", blen, s.br.Size())
	case len(s.ng.ifaces) >= ngMaxInterfaces:
		return fmt.Errorf("interface description block: the section describes more than %d interfaces", ngMaxInterfaces)
	}
	b, err := s.br.Peek(int(blen))
	if err != nil {
		return errNgShort(err)
	}
	if err := s.ngTrailer(blen, b[blen-4:]); err != nil {
		return err
	}
	o := s.ng.order
	f := ngIface{link: layers.LinkType(o.Uint16(b[8:10])), snap: o.Uint32(b[12:16])}
	res := byte(6) // microseconds when if_tsresol is absent
	// Options: code, length, value padded to 4 bytes; a truncated option
	// ends them.
	for opts := b[16 : blen-4]; len(opts) >= 4; {
		code, n := o.Uint16(opts[0:2]), int(o.Uint16(opts[2:4]))
		if code == 0 || 4+n > len(opts) {
			break
		}
		v := opts[4 : 4+n]
		switch {
		case code == 9 && n >= 1: // if_tsresol
			res = v[0]
		case code == 14 && n >= 8: // if_tsoffset
			f.offset = int64(o.Uint64(v))
		}
		opts = opts[min(4+(n+3)&^3, len(opts)):]
	}
	if res&0x80 != 0 {
		if e := res & 0x7f; e <= 63 {
			f.units = 1 << e
		} else {
			return fmt.Errorf("interface description block: timestamp resolution 2^-%d is too fine", e)
		}
	} else {
		if res > 19 {
			return fmt.Errorf("interface description block: timestamp resolution 10^-%d is too fine", res)
		}
		f.units = 1
		for range res {
			f.units *= 10
		}
	}
	s.br.Discard(int(blen))
	s.ng.ifaces = append(s.ng.ifaces, f)
	return nil
}
