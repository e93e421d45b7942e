package capture_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

func TestPlaintextDescribe(t *testing.T) {
	for _, c := range []struct {
		h    capture.PlaintextHeader
		want string
	}{
		{capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3, Minor: 0}, "OpenSSL 3.0"},
		{capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 1, Minor: 1}, "OpenSSL 1.1"},
		{capture.PlaintextHeader{Library: capture.LibOpenSSL}, "OpenSSL"},
		{capture.PlaintextHeader{Library: capture.LibBoringSSL}, "BoringSSL"},
		{capture.PlaintextHeader{Library: capture.LibGoTLS, Major: 1, Minor: 26}, "Go 1.26 crypto/tls"},
		{capture.PlaintextHeader{Library: capture.LibGnuTLS, Major: 3, Minor: 7}, "GnuTLS 3.7"},
		{capture.PlaintextHeader{Library: 9, Major: 2, Minor: 1}, "TLS library 9 2.1"},
	} {
		if got := c.h.Describe(); got != c.want {
			t.Errorf("%+v.Describe() = %q, want %q", c.h, got, c.want)
		}
	}
}

// TestAppendPlaintext builds records and reads them back with gopacket (the
// IP packet after the header) and with the Decoder.
func TestAppendPlaintext(t *testing.T) {
	h := capture.PlaintextHeader{Library: capture.LibGoTLS, Read: true, PID: 0x01020304, Major: 1, Minor: 26}
	for _, c := range []struct {
		name     string
		src, dst string
		v6       bool
	}{
		{"v4", "10.0.0.1:443", "10.0.0.2:50000", false},
		{"4in6", "[::ffff:10.0.0.1]:443", "[::ffff:10.0.0.2]:50000", false},
		{"v6", "[2001:db8::1]:443", "[2001:db8::2]:50000", true},
		{"mixed", "10.0.0.1:443", "[2001:db8::2]:50000", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
			payload := []byte("HTTP/1.1 200 OK\r\n\r\n")
			rec := capture.AppendPlaintext([]byte("prefix"), h, src, dst, 77, 99, payload)
			if string(rec[:6]) != "prefix" {
				t.Fatalf("the prefix was overwritten: %q", rec[:6])
			}
			rec = rec[6:]
			got, err := capture.ParsePlaintextHeader(rec)
			if err != nil || got != h {
				t.Fatalf("ParsePlaintextHeader = %+v, %v; want %+v", got, err, h)
			}
			wantHdr := []byte{'W', 'S', 'T', 'P', 1, 3, 1, 0, 4, 3, 2, 1, 1, 26, 0, 0}
			if string(rec[:16]) != string(wantHdr) {
				t.Fatalf("header % x, want % x", rec[:16], wantHdr)
			}
			first := layers.LayerTypeIPv4
			if c.v6 {
				first = layers.LayerTypeIPv6
			}
			pkt := gopacket.NewPacket(rec[16:], first, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if tcp == nil || tcp.Seq != 77 || tcp.Ack != 99 || !tcp.PSH || !tcp.ACK || tcp.SYN || tcp.Window != 65535 ||
				int(tcp.SrcPort) != int(src.Port()) || int(tcp.DstPort) != int(dst.Port()) || string(tcp.Payload) != string(payload) {
				t.Fatalf("TCP layer %+v", tcp)
			}
			dec := capture.NewDecoder()
			var d capture.Decoded
			if err := dec.Decode(capture.LinkTypeTLSPlaintext, rec, len(rec), time.Unix(1, 0), &d); err != nil {
				t.Fatal(err)
			}
			if !d.Plaintext || d.PlaintextHeader != h || d.Src.Unmap() != src.Addr().Unmap() || d.Dst.Unmap() != dst.Addr().Unmap() ||
				d.SrcPort != src.Port() || d.DstPort != dst.Port() || string(d.Payload) != string(payload) || d.Truncated ||
				d.IPLength != len(rec)-16 {
				t.Fatalf("decoded %+v", d)
			}
		})
	}
}

// TestDecodePlaintextRejects: bytes that are not one of our records, or not
// whole, give errors (and counts), never a Decoded.
func TestDecodePlaintextRejects(t *testing.T) {
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3}
	good := capture.AppendPlaintext(nil, h, netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:443"), 1, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
	good6 := capture.AppendPlaintext(nil, h, netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:443"), 1, 1, []byte("x"))
	mod := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	udp := mod(good, func(b []byte) { b[16+9] = byte(layers.IPProtocolUDP) })
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, capture.ErrMalformed},
		{"magic only", []byte("WSTP"), capture.ErrMalformed},
		{"header only", good[:16], capture.ErrMalformed},
		{"short header", good[:10], capture.ErrMalformed},
		{"other user's data", []byte("hello, world, this is not ours at all"), capture.ErrUnsupportedLink},
		{"short other", []byte("ab"), capture.ErrUnsupportedLink},
		{"bad magic", mod(good, func(b []byte) { b[0] = 'X' }), capture.ErrUnsupportedLink},
		{"version 2", mod(good, func(b []byte) { b[4] = 2 }), capture.ErrUnsupportedLink},
		{"version 0", mod(good, func(b []byte) { b[4] = 0 }), capture.ErrUnsupportedLink},
		{"not IP", mod(good, func(b []byte) { b[16] = 0x15 }), capture.ErrMalformed},
		{"UDP", udp, capture.ErrMalformed},
		{"IPv4 fragment", mod(good, func(b []byte) { b[16+6] = 0x20 }), capture.ErrMalformed},
		{"IPv4 length below header", mod(good, func(b []byte) { binary.BigEndian.PutUint16(b[16+2:], 12) }), capture.ErrMalformed},
		{"IPv4 header cut", good[:16+15], capture.ErrMalformed},
		{"TCP header cut", good[:16+20+10], capture.ErrMalformed},
		{"TCP offset past the end", mod(good, func(b []byte) { b[16+20+12] = 0xf0 }), capture.ErrMalformed},
		{"IPv6 next header UDP", mod(good6, func(b []byte) { b[16+6] = 17 }), capture.ErrMalformed},
		{"IPv6 extension header", mod(good6, func(b []byte) { b[16+6] = 0 }), capture.ErrMalformed},
		{"IPv6 header cut", good6[:16+30], capture.ErrMalformed},
	} {
		dec := capture.NewDecoder()
		var d capture.Decoded
		err := dec.Decode(capture.LinkTypeTLSPlaintext, c.b, len(c.b), time.Unix(1, 0), &d)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if d.Plaintext {
			t.Errorf("%s: Decoded says plaintext", c.name)
		}
		st := dec.Stats
		if (c.want == capture.ErrMalformed && st.Malformed != 1) || (c.want == capture.ErrUnsupportedLink && st.UnsupportedLink != 1) {
			t.Errorf("%s: stats %+v", c.name, st)
		}
	}
}

// TestDecodePlaintextLengths: a chunk cut by the agent's cap (the record's
// length as sent exceeds what it holds) and IP length fields that lie.
func TestDecodePlaintextLengths(t *testing.T) {
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3}
	src, dst := netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:443")
	rec := capture.AppendPlaintext(nil, h, src, dst, 1, 1, []byte("0123456789"))
	dec := capture.NewDecoder()
	var d capture.Decoded

	// Cut: the agent stored 10 of 1000 bytes.
	if err := dec.Decode(capture.LinkTypeTLSPlaintext, rec, len(rec)+990, time.Unix(1, 0), &d); err != nil {
		t.Fatal(err)
	}
	if !d.Truncated || string(d.Payload) != "0123456789" || d.IPLength != 40+1000 {
		t.Fatalf("cut chunk: truncated %v payload %q IP length %d", d.Truncated, d.Payload, d.IPLength)
	}
	// The IP length claims more than the record holds: what it holds, truncated.
	long := append([]byte(nil), rec...)
	binary.BigEndian.PutUint16(long[16+2:], 60000)
	if err := dec.Decode(capture.LinkTypeTLSPlaintext, long, len(long), time.Unix(1, 0), &d); err != nil {
		t.Fatal(err)
	}
	if !d.Truncated || string(d.Payload) != "0123456789" {
		t.Fatalf("long IP length: truncated %v payload %q", d.Truncated, d.Payload)
	}
	// Less: the payload ends where the IP packet does.
	short := append([]byte(nil), rec...)
	binary.BigEndian.PutUint16(short[16+2:], 40+4)
	if err := dec.Decode(capture.LinkTypeTLSPlaintext, short, len(short), time.Unix(1, 0), &d); err != nil {
		t.Fatal(err)
	}
	if d.Truncated || string(d.Payload) != "0123" {
		t.Fatalf("short IP length: truncated %v payload %q", d.Truncated, d.Payload)
	}
	// The same bytes as an Ethernet frame are no plaintext (and the flag
	// does not stick from the record before).
	if err := dec.Decode(layers.LinkTypeEthernet, rec, len(rec), time.Unix(1, 0), &d); err == nil && d.Plaintext {
		t.Fatal("an Ethernet frame decoded as plaintext")
	}
	if err := dec.Decode(layers.LinkTypeRaw, rec[16:], len(rec)-16, time.Unix(1, 0), &d); err != nil || d.Plaintext {
		t.Fatalf("raw IP after a record: err %v plaintext %v", err, d.Plaintext)
	}
}

// TestDecodePlaintextAllocs: decoding a record allocates nothing.
func TestDecodePlaintextAllocs(t *testing.T) {
	rec := capture.AppendPlaintext(nil, capture.PlaintextHeader{Library: 1}, netip.MustParseAddrPort("10.0.0.1:5000"),
		netip.MustParseAddrPort("10.0.0.2:443"), 1, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
	dec := capture.NewDecoder()
	var d capture.Decoded
	if n := testing.AllocsPerRun(100, func() {
		_ = dec.Decode(capture.LinkTypeTLSPlaintext, rec, len(rec), time.Unix(1, 0), &d)
	}); n != 0 {
		t.Fatalf("%v allocations per record", n)
	}
}

// FuzzDecodePlaintext decodes arbitrary records: no panic, and a record
// decoded is plaintext whose payload lies within it.
func FuzzDecodePlaintext(f *testing.F) {
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Read: true, PID: 42, Major: 3}
	f.Add(capture.AppendPlaintext(nil, h, netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:443"), 1, 1, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), 0)
	f.Add(capture.AppendPlaintext(nil, h, netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:443"), 9, 3, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), 100)
	f.Add([]byte("WSTP\x01"), 0)
	f.Add([]byte("WSTP\x01\x01\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x45"), 0)
	f.Fuzz(func(t *testing.T, b []byte, extra int) {
		dec := capture.NewDecoder()
		var d capture.Decoded
		wire := len(b) + max(0, extra%65536)
		if err := dec.Decode(capture.LinkTypeTLSPlaintext, b, wire, time.Unix(1, 0), &d); err != nil {
			if d.Plaintext {
				t.Fatal("error with Plaintext set")
			}
			return
		}
		if !d.Plaintext || d.TCP == nil || len(d.Payload) > len(b) {
			t.Fatalf("decoded %+v from %d bytes", d, len(b))
		}
		if _, err := capture.ParsePlaintextHeader(b); err != nil {
			t.Fatalf("decoded, but the header does not parse: %v", err)
		}
	})
}
