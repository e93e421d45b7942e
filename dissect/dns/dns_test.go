package dns_test

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/dns"
	"github.com/wirescope/wirescope/dissect/proto"
)

type recorder struct{ calls []*proto.Call }

func (r *recorder) Emit(c *proto.Call) { r.calls = append(r.calls, c) }
func (r *recorder) Upgrade(string)     {}
func (r *recorder) Skipped(int)        {}

var t0 = time.Date(2026, 11, 21, 4, 30, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func msg(t *testing.T, d *layers.DNS) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func query(id uint16, name string, typ layers.DNSType) *layers.DNS {
	return &layers.DNS{ID: id, RD: true, Questions: []layers.DNSQuestion{{Name: []byte(name), Type: typ, Class: layers.DNSClassIN}}}
}

func answer(q *layers.DNS, rcode layers.DNSResponseCode, rrs ...layers.DNSResourceRecord) *layers.DNS {
	r := *q
	r.QR, r.RA, r.ResponseCode, r.Answers = true, true, rcode, rrs
	return &r
}

func rr(name string, typ layers.DNSType) layers.DNSResourceRecord {
	return layers.DNSResourceRecord{Name: []byte(name), Type: typ, Class: layers.DNSClassIN, TTL: 30}
}

func newFlow() (*recorder, proto.DatagramParser) {
	lim := proto.Limits{RequestTimeout: 5 * time.Second}.WithDefaults()
	r := &recorder{}
	return r, dns.Protocol{}.NewFlow(r, &lim)
}

func TestRecordTypes(t *testing.T) {
	a := rr("web.shop.svc.cluster.local", layers.DNSTypeA)
	a.IP = net.IP{10, 96, 0, 10}
	aaaa := rr("web.shop.svc.cluster.local", layers.DNSTypeAAAA)
	aaaa.IP = net.ParseIP("fd00::10")
	cname := rr("www.shop", layers.DNSTypeCNAME)
	cname.CNAME = []byte("web.shop.svc.cluster.local")
	srv := rr("_http._tcp.shop", layers.DNSTypeSRV)
	srv.SRV = layers.DNSSRV{Priority: 0, Weight: 100, Port: 8080, Name: []byte("web.shop")}
	txt := rr("shop", layers.DNSTypeTXT)
	txt.TXTs = [][]byte{[]byte("v=spf1 -all"), []byte("second")}
	ptr := rr("10.0.96.10.in-addr.arpa", layers.DNSTypePTR)
	ptr.PTR = []byte("web.shop.svc.cluster.local")
	mx := rr("shop", layers.DNSTypeMX)
	mx.MX = layers.DNSMX{Preference: 10, Name: []byte("mail.shop")}
	ns := rr("shop", layers.DNSTypeNS)
	ns.NS = []byte("ns1.shop")
	soa := rr("shop", layers.DNSTypeSOA)
	soa.SOA = layers.DNSSOA{MName: []byte("ns1.shop"), RName: []byte("hostmaster.shop"), Serial: 2026112101, Refresh: 3600, Retry: 600, Expire: 86400, Minimum: 30}
	cases := []struct {
		typ  layers.DNSType
		rr   layers.DNSResourceRecord
		name string
		want string
	}{
		{layers.DNSTypeA, a, "A", "web.shop.svc.cluster.local 30 A 10.96.0.10"},
		{layers.DNSTypeAAAA, aaaa, "AAAA", "web.shop.svc.cluster.local 30 AAAA fd00::10"},
		{layers.DNSTypeCNAME, cname, "CNAME", "www.shop 30 CNAME web.shop.svc.cluster.local"},
		{layers.DNSTypeSRV, srv, "SRV", "_http._tcp.shop 30 SRV 0 100 8080 web.shop"},
		{layers.DNSTypeTXT, txt, "TXT", `shop 30 TXT "v=spf1 -all" "second"`},
		{layers.DNSTypePTR, ptr, "PTR", "10.0.96.10.in-addr.arpa 30 PTR web.shop.svc.cluster.local"},
		{layers.DNSTypeMX, mx, "MX", "shop 30 MX 10 mail.shop"},
		{layers.DNSTypeNS, ns, "NS", "shop 30 NS ns1.shop"},
		{layers.DNSTypeSOA, soa, "SOA", "shop 30 SOA ns1.shop hostmaster.shop 2026112101 3600 600 86400 30"},
	}
	for i, c := range cases {
		r, p := newFlow()
		q := query(uint16(100+i), string(c.rr.Name), c.typ)
		p.Datagram(proto.Client, msg(t, q), at(0))
		p.Datagram(proto.Server, msg(t, answer(q, layers.DNSResponseCodeNoErr, c.rr)), at(2))
		if len(r.calls) != 1 {
			t.Fatalf("%s: %d calls", c.name, len(r.calls))
		}
		call := r.calls[0]
		ans, _ := call.Extra.Get("answers").([]string)
		if call.Method != c.name || call.Path != string(c.rr.Name) || call.Status != "NOERROR" || len(ans) != 1 || ans[0] != c.want {
			t.Errorf("%s: %s %s %s answers %q, want %q", c.name, call.Method, call.Path, call.Status, ans, c.want)
		}
		if call.LatencyNS != int64(2*time.Millisecond) || call.Extra.Get("transport") != "udp" {
			t.Errorf("%s: latency %d extra %v", c.name, call.LatencyNS, call.Extra)
		}
	}
}

// TestRcodes: the status is the RCODE's name, and the protocol's
// description classifies it (registered, as dissect registers it).
func TestRcodes(t *testing.T) {
	proto.Register(dns.Protocol{})
	for code, want := range map[layers.DNSResponseCode]struct {
		name    string
		outcome proto.Outcome
	}{
		0: {"NOERROR", proto.OK}, 1: {"FORMERR", proto.ClientError}, 2: {"SERVFAIL", proto.ServerError},
		3: {"NXDOMAIN", proto.ClientError}, 4: {"NOTIMP", proto.ServerError}, 5: {"REFUSED", proto.ServerError},
		9: {"NOTAUTH", proto.ClientError}, 15: {"RCODE15", proto.ClientError},
	} {
		r, p := newFlow()
		q := query(7, "x.example", layers.DNSTypeA)
		p.Datagram(proto.Client, msg(t, q), at(0))
		p.Datagram(proto.Server, msg(t, answer(q, code)), at(1))
		if len(r.calls) != 1 || r.calls[0].Status != want.name || r.calls[0].Outcome() != want.outcome {
			t.Errorf("rcode %d: %v, want %s (%v)", code, r.calls, want.name, want.outcome)
		}
	}
	// The upper eight bits of an extended rcode travel in the OPT record's
	// TTL: 1<<4 | 0 is BADVERS (16).
	r, p := newFlow()
	q := query(8, "x.example", layers.DNSTypeA)
	p.Datagram(proto.Client, msg(t, q), at(0))
	resp := answer(q, 0)
	resp.Additionals = []layers.DNSResourceRecord{{Type: layers.DNSTypeOPT, Class: 4096, TTL: 1 << 24}}
	p.Datagram(proto.Server, msg(t, resp), at(1))
	if r.calls[0].Status != "BADVERS" {
		t.Errorf("extended rcode: %s", r.calls[0].Status)
	}
}

func TestMatching(t *testing.T) {
	r, p := newFlow()
	qa := query(1, "a.example", layers.DNSTypeA)
	qb := query(2, "b.example", layers.DNSTypeAAAA)
	p.Datagram(proto.Client, msg(t, qa), at(0))
	p.Datagram(proto.Client, msg(t, qb), at(1))
	p.Datagram(proto.Client, msg(t, qa), at(1000)) // a retransmission
	p.Datagram(proto.Server, msg(t, answer(qb, 0)), at(1001))
	p.Datagram(proto.Server, msg(t, answer(qa, 3)), at(1002))
	// An answer to a query the capture does not hold.
	p.Datagram(proto.Server, msg(t, answer(query(9, "c.example", layers.DNSTypeA), 0)), at(1003))
	p.Datagram(proto.Client, msg(t, query(3, "slow.example", layers.DNSTypeA)), at(2000))
	p.Expire(at(2000 - 5000))
	if len(r.calls) != 3 {
		t.Fatalf("%d calls before expiry", len(r.calls))
	}
	p.Expire(at(7001))
	got := []string{}
	for _, c := range r.calls {
		got = append(got, c.Path+" "+c.Status+" "+c.Error)
	}
	want := []string{"b.example NOERROR ", "a.example NXDOMAIN ", "c.example NOERROR no request", "slow.example  no response"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("calls %q, want %q", got, want)
	}
	if r.calls[1].Extra.Get("retransmissions") != 1 || r.calls[1].LatencyNS != int64(1002*time.Millisecond) {
		t.Errorf("retransmitted query: %v latency %v", r.calls[1].Extra, time.Duration(r.calls[1].LatencyNS))
	}
	// End emits what is still waiting.
	p.Datagram(proto.Client, msg(t, query(4, "end.example", layers.DNSTypeA)), at(8000))
	p.End(proto.EndCapture, at(8000))
	if last := r.calls[len(r.calls)-1]; last.Path != "end.example" || last.Error != "no response" {
		t.Errorf("after End: %+v", last)
	}
}

// loop is a response whose answer name is a compression pointer to itself.
func loop(id uint16) []byte {
	b := []byte{byte(id >> 8), byte(id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}
	b = append(b, 1, 'x', 0, 0, 1, 0, 1) // question x. A IN
	off := len(b)
	b = append(b, 0xc0|byte(off>>8), byte(off)) // points at itself
	b = append(b, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1)
	return b
}

func TestHostileMessages(t *testing.T) {
	r, p := newFlow()
	p.Datagram(proto.Client, msg(t, query(0x4242, "x", layers.DNSTypeA)), at(0))
	p.Datagram(proto.Server, loop(0x4242), at(1))
	if len(r.calls) != 1 || r.calls[0].Path != "x" || !strings.HasPrefix(r.calls[0].Error, "malformed") {
		t.Fatalf("compression loop: %+v", r.calls)
	}
	// Short and garbage datagrams become malformed calls, not panics.
	for _, b := range [][]byte{{1}, {1, 2, 3, 4, 5}, make([]byte, 12), append(make([]byte, 12), 0xff, 0xff)} {
		r, p := newFlow()
		p.Datagram(proto.Client, b, at(0))
		p.End(proto.EndCapture, at(1))
		for _, c := range r.calls {
			if c.Status == "" && c.Error == "" {
				t.Errorf("% x: call without status or error", b)
			}
		}
	}
}

func tcpMsg(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func TestTCP(t *testing.T) {
	lim := proto.Limits{}.WithDefaults()
	r := &recorder{}
	s := dns.Protocol{}.NewStream(r, &lim)
	q1, q2 := query(1, "one.example", layers.DNSTypeA), query(2, "two.example", layers.DNSTypeMX)
	both := append(tcpMsg(msg(t, q1)), tcpMsg(msg(t, q2))...)
	// Two queries split at every awkward place: inside the length prefix
	// and inside the second message.
	s.Feed(proto.Client, both[:1], at(0))
	s.Feed(proto.Client, both[1:20], at(1))
	s.Feed(proto.Client, both[20:], at(2))
	resp := append(tcpMsg(msg(t, answer(q2, 0))), tcpMsg(msg(t, answer(q1, 3)))...)
	s.Feed(proto.Server, resp, at(5))
	s.End(proto.EndFIN, at(6))
	if len(r.calls) != 2 || r.calls[0].Path != "two.example" || r.calls[1].Status != "NXDOMAIN" || r.calls[1].Extra.Get("transport") != "tcp" {
		t.Fatalf("calls %+v", r.calls)
	}
	// A gap cuts the message in progress; the side resynchronises on the
	// next plausible message.
	r = &recorder{}
	s = dns.Protocol{}.NewStream(r, &lim)
	m := tcpMsg(msg(t, q1))
	s.Feed(proto.Client, m[:10], at(0))
	s.Gap(proto.Client, 5)
	s.Feed(proto.Client, []byte("garbage"), at(1))
	s.Feed(proto.Client, tcpMsg(msg(t, q2)), at(2))
	s.Feed(proto.Server, tcpMsg(msg(t, answer(q2, 0))), at(3))
	s.End(proto.EndFIN, at(4))
	if len(r.calls) != 2 || !strings.HasPrefix(r.calls[0].Error, "truncated") || r.calls[1].Status != "NOERROR" {
		for _, c := range r.calls {
			t.Logf("%s %s %q %q", c.Method, c.Path, c.Status, c.Error)
		}
		t.Fatalf("after gap: %d calls", len(r.calls))
	}
}

func TestDetect(t *testing.T) {
	p := dns.Protocol{}
	q := func() []byte {
		buf := gopacket.NewSerializeBuffer()
		query(5, "svc.example", layers.DNSTypeA).SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true})
		return buf.Bytes()
	}()
	if v, r := p.DetectDatagram(q, 40000, 53); v != proto.Yes || r != proto.Client {
		t.Errorf("query: %v %v", v, r)
	}
	for _, junk := range [][]byte{[]byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 40), {0x16, 3, 1, 0, 0x40, 1, 0, 0, 0x3c, 3, 3, 0}} {
		if v, _ := p.DetectDatagram(junk, 40000, 53); v != proto.No {
			t.Errorf("% x detected as DNS", junk[:8])
		}
	}
	if v, r := p.DetectStream(tcpMsg(q), 40000, 53); v != proto.Yes || r != proto.Client {
		t.Errorf("tcp query: %v %v", v, r)
	}
	if v, _ := p.DetectStream(tcpMsg(q)[:8], 40000, 53); v != proto.Maybe {
		t.Errorf("partial tcp query: %v", v)
	}
}
