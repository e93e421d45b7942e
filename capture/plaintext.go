package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"

	"github.com/gopacket/gopacket/layers"
)

// LinkTypeTLSPlaintext is the link type of TLS plaintext records: the bytes
// a process handed to or got from its TLS library (read by the node agent's
// uprobes), stored beside the connection's packets. It is LINKTYPE_USER0,
// reserved for private use. A record is PlaintextHeaderLen bytes of
// PlaintextHeader, then one IPv4 or IPv6 packet with a 20-byte TCP header
// (PSH|ACK) whose payload is the plaintext: src is the sender of these
// bytes, seq is 1 + the plaintext bytes recorded before in that direction
// of the connection, ack 1 + those recorded the other way
// (capture/segstore/FORMAT.md, "TLS plaintext records").
const LinkTypeTLSPlaintext layers.LinkType = 147

// PlaintextHeaderLen is the length of a plaintext record's header.
const PlaintextHeaderLen = 16

// PlaintextMagic opens every plaintext record; PlaintextVersion is the
// version of the record format this package reads and writes.
const (
	PlaintextMagic   = "WSTP"
	PlaintextVersion = 1
)

// The TLS libraries a plaintext record may come from
// (PlaintextHeader.Library).
const (
	LibOpenSSL   uint8 = 1
	LibBoringSSL uint8 = 2
	LibGoTLS     uint8 = 3
	LibGnuTLS    uint8 = 4
)

// ErrPlaintextHeader is returned by ParsePlaintextHeader for bytes that are
// not a plaintext record's header of a known version.
var ErrPlaintextHeader = errors.New("not a TLS plaintext record header")

// PlaintextHeader is what a plaintext record says besides its packet: which
// library the bytes went through, in which direction, and in which process.
type PlaintextHeader struct {
	// Library is one of LibOpenSSL, LibBoringSSL, LibGoTLS, LibGnuTLS (0:
	// unknown).
	Library uint8
	// Read is set when the process read these bytes (SSL_read: they came
	// from the peer); else it wrote them (SSL_write).
	Read bool
	// PID is the process's ID (as the root PID namespace sees it).
	PID uint32
	// Major and Minor are the library's version (Go 1.26: 1, 26; OpenSSL
	// 3.0: 3, 0), both 0 when not known.
	Major, Minor uint8
}

// Describe names the library and its version: "OpenSSL 3.0", "BoringSSL",
// "Go 1.26 crypto/tls", "GnuTLS 3.7".
func (h PlaintextHeader) Describe() string {
	ver := ""
	if h.Major != 0 || h.Minor != 0 {
		ver = " " + strconv.Itoa(int(h.Major)) + "." + strconv.Itoa(int(h.Minor))
	}
	switch h.Library {
	case LibOpenSSL:
		return "OpenSSL" + ver
	case LibBoringSSL:
		return "BoringSSL" // BoringSSL has no versions
	case LibGoTLS:
		return "Go" + ver + " crypto/tls"
	case LibGnuTLS:
		return "GnuTLS" + ver
	}
	return "TLS library " + strconv.Itoa(int(h.Library)) + ver
}

// ParsePlaintextHeader reads the header at the start of a plaintext record.
// It refuses a short one, a wrong magic and another version with
// ErrPlaintextHeader.
func ParsePlaintextHeader(b []byte) (PlaintextHeader, error) {
	if len(b) < PlaintextHeaderLen || string(b[:4]) != PlaintextMagic || b[4] != PlaintextVersion {
		return PlaintextHeader{}, ErrPlaintextHeader
	}
	return PlaintextHeader{
		Library: b[5],
		Read:    b[6]&1 != 0,
		PID:     binary.LittleEndian.Uint32(b[8:12]),
		Major:   b[12],
		Minor:   b[13],
	}, nil
}

// appendHeader appends h as a record's header.
func (h PlaintextHeader) appendHeader(b []byte) []byte {
	var flags byte
	if h.Read {
		flags = 1
	}
	b = append(b, PlaintextMagic...)
	b = append(b, PlaintextVersion, h.Library, flags, 0)
	b = binary.LittleEndian.AppendUint32(b, h.PID)
	return append(b, h.Major, h.Minor, 0, 0)
}

// AppendPlaintext appends a whole plaintext record to dst: h, then an IP
// packet from src to dst (IPv4 when both addresses are IPv4 or IPv4-mapped,
// else IPv6) with a TCP header (seq, ack, PSH|ACK, window 65535) and
// payload. The IP length field counts the payload given: a chunk cut short
// is stored with a capture.Packet.Length that counts its whole length.
// Checksums are left 0.
func AppendPlaintext(dst []byte, h PlaintextHeader, src, to netip.AddrPort, seq, ack uint32, payload []byte) []byte {
	dst = h.appendHeader(dst)
	sa, da := src.Addr().Unmap(), to.Addr().Unmap()
	if sa.Is4() && da.Is4() {
		n := 20 + 20 + len(payload)
		dst = append(dst, 0x45, 0)
		dst = binary.BigEndian.AppendUint16(dst, uint16(min(n, 0xffff)))
		dst = append(dst, 0, 0, 0x40, 0, 64, byte(layers.IPProtocolTCP), 0, 0) // id, DF, TTL, proto, checksum
		s4, d4 := sa.As4(), da.As4()
		dst = append(dst, s4[:]...)
		dst = append(dst, d4[:]...)
	} else {
		dst = append(dst, 0x60, 0, 0, 0)
		dst = binary.BigEndian.AppendUint16(dst, uint16(min(20+len(payload), 0xffff)))
		dst = append(dst, byte(layers.IPProtocolTCP), 64)
		s16, d16 := src.Addr().As16(), to.Addr().As16()
		dst = append(dst, s16[:]...)
		dst = append(dst, d16[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, src.Port())
	dst = binary.BigEndian.AppendUint16(dst, to.Port())
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = binary.BigEndian.AppendUint32(dst, ack)
	dst = append(dst, 5<<4, 0x18, 0xff, 0xff, 0, 0, 0, 0) // data offset, PSH|ACK, window, checksum, urgent
	return append(dst, payload...)
}
