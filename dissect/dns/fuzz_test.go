package dns_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/dns"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// fuzzEmitter is a proto.Emitter that keeps what a parser produces.
type fuzzEmitter struct {
	calls   []*proto.Call
	skipped int
}

func (c *fuzzEmitter) Emit(call *proto.Call) { c.calls = append(c.calls, call) }
func (c *fuzzEmitter) Upgrade(string)        {}
func (c *fuzzEmitter) Skipped(n int)         { c.skipped += n }

var fuzzT0 = time.Date(2026, 11, 21, 4, 30, 1, 0, time.UTC)

// FuzzDatagram sends arbitrary bytes through the UDP parser, first as a
// query from the client, then as the server's response (the header's QR
// bit cleared, then set, so that the two pair up). The invariant:
// every call is a well-formed DNS call (Proto "dns", an Error whenever
// Status is empty) whose JSON is valid and reads back to the same call.
func FuzzDatagram(f *testing.F) {
	for _, m := range fuzzDNSSeeds(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := proto.Limits{}.WithDefaults()
		var out fuzzEmitter
		p := dns.Protocol{}.NewFlow(&out, &lim)
		query, resp := bytes.Clone(b), bytes.Clone(b)
		if len(b) > 2 {
			query[2] &^= 0x80
			resp[2] |= 0x80
		}
		p.Datagram(proto.Client, query, fuzzT0)
		p.Datagram(proto.Server, resp, fuzzT0.Add(time.Millisecond))
		p.End(proto.EndCapture, fuzzT0.Add(time.Second))
		fuzzCheckCalls(t, out.calls)
	})
}

// FuzzStream sends arbitrary bytes through the TCP parser, split in two
// segments at split, first as the client's stream and then as the
// server's. The invariant is FuzzDatagram's.
func FuzzStream(f *testing.F) {
	seeds := fuzzDNSSeeds(f)
	for i, m := range seeds {
		f.Add(fuzzFrame(m), byte(i*7))
	}
	// A query and its answer in one stream, and a length longer than what
	// follows it.
	f.Add(append(fuzzFrame(seeds[0]), fuzzFrame(seeds[1])...), byte(20))
	f.Add(append([]byte{0xff, 0xff}, seeds[1]...), byte(3))
	f.Fuzz(func(t *testing.T, b []byte, split byte) {
		lim := proto.Limits{}.WithDefaults()
		var out fuzzEmitter
		p := dns.Protocol{}.NewStream(&out, &lim)
		k := int(split) % (len(b) + 1)
		tm := fuzzT0
		for _, r := range []proto.Role{proto.Client, proto.Server} {
			p.Feed(r, b[:k], tm)
			tm = tm.Add(time.Millisecond)
			p.Feed(r, b[k:], tm)
			tm = tm.Add(time.Millisecond)
		}
		p.End(proto.EndFIN, tm)
		fuzzCheckCalls(t, out.calls)
	})
}

// fuzzFrame prefixes m with its two-byte length, as DNS over TCP sends it.
func fuzzFrame(m []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(m))), m...)
}

// fuzzCheckCalls asserts the fuzz targets' invariant on every call.
func fuzzCheckCalls(t *testing.T, calls []*proto.Call) {
	t.Helper()
	for i, c := range calls {
		if c.Proto != "dns" {
			t.Errorf("call %d: Proto %q, want dns", i, c.Proto)
		}
		if c.Status == "" && c.Error == "" {
			t.Errorf("call %d: no status and no error: %+v", i, c)
		}
		prototest.CheckJSON(t, i, c)
	}
}

// fuzzDNSSeeds returns real DNS messages, built with gopacket: a query (first)
// and its response with records of many types (second), then more
// responses, and hand-made damaged messages.
func fuzzDNSSeeds(tb testing.TB) [][]byte {
	ser := func(d *layers.DNS) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
			tb.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	q := func(name string, typ layers.DNSType) []layers.DNSQuestion {
		return []layers.DNSQuestion{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN}}
	}
	rr := func(name string, typ layers.DNSType, set func(*layers.DNSResourceRecord)) layers.DNSResourceRecord {
		r := layers.DNSResourceRecord{Name: []byte(name), Type: typ, Class: layers.DNSClassIN, TTL: 300}
		set(&r)
		return r
	}
	query := ser(&layers.DNS{ID: 0xbeef, RD: true, Questions: q("www.example.com", layers.DNSTypeA)})
	answer := ser(&layers.DNS{ID: 0xbeef, QR: true, RD: true, RA: true, Questions: q("www.example.com", layers.DNSTypeA),
		Answers: []layers.DNSResourceRecord{
			rr("www.example.com", layers.DNSTypeCNAME, func(r *layers.DNSResourceRecord) { r.CNAME = []byte("web.example.com") }),
			rr("web.example.com", layers.DNSTypeA, func(r *layers.DNSResourceRecord) { r.IP = net.IP{93, 184, 215, 14} }),
			rr("web.example.com", layers.DNSTypeAAAA, func(r *layers.DNSResourceRecord) { r.IP = net.ParseIP("2606:2800:21f:cb07:6820:80da:af6b:8b2c") }),
		}})
	mx := ser(&layers.DNS{ID: 2, QR: true, RA: true, Questions: q("example.org", layers.DNSTypeMX),
		Answers: []layers.DNSResourceRecord{
			rr("example.org", layers.DNSTypeMX, func(r *layers.DNSResourceRecord) {
				r.MX = layers.DNSMX{Preference: 10, Name: []byte("mail.example.org")}
			}),
			rr("example.org", layers.DNSTypeTXT, func(r *layers.DNSResourceRecord) {
				r.TXTs = [][]byte{[]byte("v=spf1 -all"), []byte("quoted \"text\"")}
			}),
		}})
	srv := ser(&layers.DNS{ID: 3, QR: true, AA: true, Questions: q("_http._tcp.svc.cluster.local", layers.DNSTypeSRV),
		Answers: []layers.DNSResourceRecord{
			rr("_http._tcp.svc.cluster.local", layers.DNSTypeSRV, func(r *layers.DNSResourceRecord) {
				r.SRV = layers.DNSSRV{Priority: 0, Weight: 100, Port: 8080, Name: []byte("web-0.svc.cluster.local")}
			}),
		}})
	nx := ser(&layers.DNS{ID: 4, QR: true, ResponseCode: layers.DNSResponseCodeNXDomain, Questions: q("nope.example", layers.DNSTypeAAAA),
		Authorities: []layers.DNSResourceRecord{
			rr("example", layers.DNSTypeSOA, func(r *layers.DNSResourceRecord) {
				r.SOA = layers.DNSSOA{MName: []byte("ns.example"), RName: []byte("hostmaster.example"),
					Serial: 2026112101, Refresh: 7200, Retry: 3600, Expire: 1209600, Minimum: 300}
			}),
		}})
	// Answers whose names are compression pointers: one pointing at itself
	// (offset 12 holds 0xc00c), one pointing forward, past itself.
	loop := append(fuzzHeader(0xbeef, 0x8180, 1, 1), 0xc0, 12, 0, 1, 0, 1)
	loop = append(loop, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1)
	forward := append(fuzzHeader(5, 0x8180, 1, 0), 0xc0, 18, 0, 1, 0, 1, 3, 'f', 'o', 'o', 0)
	// Counts far larger than the message.
	huge := append(fuzzHeader(6, 0x8180, 0xffff, 0xffff), 1, 'a', 0, 0, 1, 0, 1)
	return [][]byte{query, answer, mx, srv, nx, loop, forward, huge, answer[:len(answer)-5], fuzzHeader(7, 0, 0, 0)}
}

// fuzzHeader returns a DNS header with the given ID, flags, question count and
// answer count.
func fuzzHeader(id, flags, qd, an uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], qd)
	binary.BigEndian.PutUint16(b[6:], an)
	return b
}

// TestFuzzSeeds checks the seeds parse as intended: the query and its answer
// make one successful call, the damaged ones are reported malformed.
func TestFuzzSeeds(t *testing.T) {
	seeds := fuzzDNSSeeds(t)
	lim := proto.Limits{}.WithDefaults()
	var out fuzzEmitter
	p := dns.Protocol{}.NewFlow(&out, &lim)
	p.Datagram(proto.Client, seeds[0], fuzzT0)
	for _, m := range seeds[1:] {
		p.Datagram(proto.Server, m, fuzzT0.Add(time.Millisecond))
	}
	p.End(proto.EndCapture, fuzzT0.Add(time.Second))
	fuzzCheckCalls(t, out.calls)
	for _, c := range out.calls {
		t.Logf("%s %s -> %s %q %v", c.Method, c.Path, c.Status, c.Error, c.Extra)
	}
	if len(out.calls) == 0 || out.calls[0].Status != "NOERROR" || out.calls[0].Error != "" || out.calls[0].Path != "www.example.com" {
		t.Fatalf("first call %+v, want www.example.com answered", out.calls[0])
	}
}
