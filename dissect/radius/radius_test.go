package radius_test

// No RADIUS capture is in ../shared/corpus: these tests build packets by
// hand (RFC 2865, 2866, 5176 framing), and the recorded test
// (cmd/wirescope/radius_test.go, scripts/record-radius.sh: a real
// FreeRADIUS and radclient, checked against tshark) is the truth.

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/radius"
)

func init() { proto.Register(radius.Protocol{}) }

var t0 = time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// authn is a Request Authenticator made of seed.
func authn(seed byte) []byte { return bytes.Repeat([]byte{seed}, 16) }

// packet builds a RADIUS packet: code, identifier, authenticator, then the
// attributes, its length field set to fit.
func packet(code, id byte, auth []byte, attrs ...[]byte) []byte {
	b := []byte{code, id, 0, 0}
	b = append(b, auth...)
	for _, a := range attrs {
		b = append(b, a...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// attr is an attribute of type typ holding the parts joined.
func attr(typ byte, parts ...any) []byte {
	var v []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			v = append(v, p...)
		case []byte:
			v = append(v, p...)
		case int:
			v = binary.BigEndian.AppendUint32(v, uint32(p))
		}
	}
	return append([]byte{typ, byte(len(v) + 2)}, v...)
}

// vsa is a Vendor-Specific attribute of vendor holding the sub-attributes.
func vsa(vendor int, subs ...[]byte) []byte {
	parts := []any{vendor}
	for _, s := range subs {
		parts = append(parts, s)
	}
	return attr(26, parts...)
}

func newFlow(lim proto.Limits) (*prototest.Recorder, proto.DatagramParser) {
	l := lim.WithDefaults()
	rec := &prototest.Recorder{}
	return rec, radius.Protocol{}.NewFlow(rec, &l)
}

// end ends the flow and returns its calls, each checked with CheckJSON.
func end(t *testing.T, rec *prototest.Recorder, p proto.DatagramParser) []*proto.Call {
	t.Helper()
	p.End(proto.EndCapture, at(100000))
	for i, c := range rec.Calls {
		prototest.CheckJSON(t, i, c)
		if c.Proto != "radius" {
			t.Errorf("call %d: proto %q", i, c.Proto)
		}
	}
	return rec.Calls
}

func TestCodes(t *testing.T) {
	user := attr(1, "alice")
	cases := []struct {
		req, resp byte
		method    string
		status    string
		outcome   proto.Outcome
	}{
		{1, 2, "Access-Request", "Access-Accept", proto.OK},
		{1, 3, "Access-Request", "Access-Reject", proto.ClientError},
		{1, 11, "Access-Request", "Access-Challenge", proto.OK},
		{4, 5, "Accounting-Request", "Accounting-Response", proto.OK},
		{43, 44, "CoA-Request", "CoA-ACK", proto.OK},
		{43, 45, "CoA-Request", "CoA-NAK", proto.ClientError},
		{40, 41, "Disconnect-Request", "Disconnect-ACK", proto.OK},
		{40, 42, "Disconnect-Request", "Disconnect-NAK", proto.ClientError},
		{12, 2, "Status-Server", "Access-Accept", proto.OK},
		{12, 5, "Status-Server", "Accounting-Response", proto.OK},
		{1, 52, "Access-Request", "Protocol-Error", proto.ServerError},
	}
	for _, tc := range cases {
		t.Run(tc.method+"/"+tc.status, func(t *testing.T) {
			rec, p := newFlow(proto.Limits{})
			p.Datagram(proto.Client, packet(tc.req, 9, authn(1), user), at(0))
			p.Datagram(proto.Server, packet(tc.resp, 9, authn(2)), at(3))
			calls := end(t, rec, p)
			prototest.Check(t, calls, []prototest.Want{{Method: tc.method, Path: "alice", Status: tc.status}})
			if o := calls[0].Outcome(); o != tc.outcome {
				t.Errorf("outcome %s, want %s", o, tc.outcome)
			}
			if calls[0].LatencyNS != int64(3*time.Millisecond) {
				t.Errorf("latency %d", calls[0].LatencyNS)
			}
			if !strings.Contains(string(calls[0].AppendJSON(nil)), `"status":"`+tc.status+`"`) {
				t.Errorf("status not a JSON string: %s", calls[0].AppendJSON(nil))
			}
		})
	}
}

func TestAttributes(t *testing.T) {
	const password, tunnelPass, mschap = "hunter2-in-the-clear", "tunnel-s3cret", "mschap2-response-bytes-secret"
	req := packet(1, 42, authn(7),
		attr(1, "bob@example.com"),
		attr(2, password),
		attr(4, []byte{192, 0, 2, 10}),
		attr(32, "ap-3.example"),
		attr(5, 42),
		attr(61, 19),
		attr(6, 2),
		attr(30, "02-00-00-00-00-01:corp"),
		attr(31, "02-00-00-00-00-99"),
		attr(69, []byte{1, 0x80, 0x01}, tunnelPass),
		vsa(311, attr(11, []byte{0xde, 0xad, 0xbe, 0xef}), attr(25, mschap)),
		vsa(9, attr(1, "shell:priv-lvl=15")),
		vsa(99999, attr(7, []byte{1, 2})),
		attr(80, bytes.Repeat([]byte{0xab}, 16)),
		attr(200, []byte{1, 2, 3}),
	)
	resp := packet(2, 42, authn(8),
		attr(18, "Welcome, "),
		attr(18, "bob"),
		attr(27, 3600),
		attr(8, []byte{10, 1, 2, 3}),
		attr(25, bytes.Repeat([]byte{0x01, 0x02}, 20)),
		attr(64, []byte{0, 0, 0, 13}),
		attr(81, "100"),
		vsa(311, attr(16, "send-key-material"), attr(17, "recv-key-material")),
		attr(80, bytes.Repeat([]byte{0xcd}, 16)),
	)
	rec, p := newFlow(proto.Limits{})
	p.Datagram(proto.Client, req, at(0))
	p.Datagram(proto.Server, resp, at(5))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{{Method: "Access-Request", Path: "bob@example.com", Status: "Access-Accept",
		Req: `User-Name = "bob@example.com"
User-Password = [redacted]
NAS-IP-Address = 192.0.2.10
NAS-Identifier = "ap-3.example"
NAS-Port = 42
NAS-Port-Type = Wireless-802.11
Service-Type = Framed-User
Called-Station-Id = "02-00-00-00-00-01:corp"
Calling-Station-Id = "02-00-00-00-00-99"
Tunnel-Password = [redacted]
MS-CHAP-Challenge = 0xdeadbeef
MS-CHAP2-Response = [redacted]
Cisco-AVPair = "shell:priv-lvl=15"
Attr-26.99999.7 = 0x0102
Message-Authenticator = [redacted]
Attr-200 = 0x010203`,
		Resp: `Reply-Message = "Welcome, "
Reply-Message = "bob"
Session-Timeout = 3600
Framed-IP-Address = 10.1.2.3
Class = 0x` + strings.Repeat("0102", 20) + `
Tunnel-Type = VLAN
Tunnel-Private-Group-Id = "100"
MS-MPPE-Send-Key = [redacted]
MS-MPPE-Recv-Key = [redacted]
Message-Authenticator = [redacted]`}})
	c := calls[0]
	j := string(c.AppendJSON(nil))
	for _, s := range []string{password, tunnelPass, mschap, "key-material", "abababab", "cdcdcdcd"} {
		if strings.Contains(j, s) {
			t.Errorf("the secret %q shows: %s", s, j)
		}
	}
	want := map[string]any{
		"id": 42, "nas_ip": "192.0.2.10", "nas_identifier": "ap-3.example", "nas_port": 42,
		"nas_port_type": "Wireless-802.11", "service_type": "Framed-User",
		"called_station_id": "02-00-00-00-00-01:corp", "calling_station_id": "02-00-00-00-00-99",
		"message_authenticator": true, "reply_message": "Welcome,  bob", "session_timeout": 3600,
		"framed_ip": "10.1.2.3", "class": "01020102010201020102010201020102…", "reply_message_authenticator": true,
	}
	for k, v := range want {
		if got := c.Extra.Get(k); got != v {
			t.Errorf("extra %s = %#v, want %#v", k, got, v)
		}
	}
	vendors, _ := c.Extra.Get("vendors").(proto.Extra)
	if vendors.Get("Microsoft") != 2 || vendors.Get("Cisco") != 1 || vendors.Get("99999") != 1 {
		t.Errorf("vendors %v", vendors)
	}
	if rv, _ := c.Extra.Get("reply_vendors").(proto.Extra); rv.Get("Microsoft") != 2 {
		t.Errorf("reply vendors %v", rv)
	}
	if c.Request.BodySize != int64(len(req)) || c.Response.BodySize != int64(len(resp)) {
		t.Errorf("body sizes %d/%d, want %d/%d", c.Request.BodySize, c.Response.BodySize, len(req), len(resp))
	}
}

func TestAccounting(t *testing.T) {
	rec, p := newFlow(proto.Limits{})
	for i, status := range []int{1, 3, 2, 7} {
		id := byte(10 + i)
		p.Datagram(proto.Client, packet(4, id, authn(id), attr(1, "bob"), attr(40, status), attr(44, "sess-1"),
			attr(46, 60*i), attr(49, 1), attr(55, 1796522400)), at(i*10))
		p.Datagram(proto.Server, packet(5, id, authn(99)), at(i*10+1))
	}
	calls := end(t, rec, p)
	var got []string
	for _, c := range calls {
		got = append(got, c.Extra.Get("acct_status_type").(string)+"/"+c.Extra.Get("acct_session").(string)+"/"+c.Status)
	}
	if strings.Join(got, " ") != "Start/sess-1/Accounting-Response Interim-Update/sess-1/Accounting-Response Stop/sess-1/Accounting-Response Accounting-On/sess-1/Accounting-Response" {
		t.Errorf("got %v", got)
	}
	if !strings.Contains(calls[2].Request.Body, "Acct-Status-Type = Stop\nAcct-Session-Id = \"sess-1\"\nAcct-Session-Time = 120\nAcct-Terminate-Cause = User-Request\nEvent-Timestamp = 2026-12-06T02:00:00Z") {
		t.Errorf("body %q", calls[2].Request.Body)
	}
}

// TestRetransmission: a request sent again with the same identifier and
// authenticator is one call; another authenticator under the same
// identifier is a new request, the first given up.
func TestRetransmission(t *testing.T) {
	rec, p := newFlow(proto.Limits{})
	req := packet(1, 5, authn(1), attr(1, "alice"))
	p.Datagram(proto.Client, req, at(0))
	p.Datagram(proto.Client, req, at(1000))
	p.Datagram(proto.Client, req, at(2000))
	p.Datagram(proto.Server, packet(3, 5, authn(2)), at(2001))
	// The identifier reused: the first waits no more.
	p.Datagram(proto.Client, packet(1, 6, authn(3), attr(1, "bob")), at(3000))
	p.Datagram(proto.Client, packet(1, 6, authn(4), attr(1, "carol")), at(4000))
	p.Datagram(proto.Server, packet(2, 6, authn(5)), at(4002))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Access-Request", Path: "alice", Status: "Access-Reject"},
		{Method: "Access-Request", Path: "bob", Err: "no response: identifier reused by a new request"},
		{Method: "Access-Request", Path: "carol", Status: "Access-Accept"},
	})
	if n := calls[0].Extra.Get("retransmissions"); n != 2 {
		t.Errorf("retransmissions %v, want 2", n)
	}
	if calls[0].LatencyNS != int64(2001*time.Millisecond) {
		t.Errorf("latency %d, from the first request", calls[0].LatencyNS)
	}
	if calls[1].Extra.Get("retransmissions") != nil || calls[1].ProblemKind() != proto.Unanswered {
		t.Errorf("the reused one: %v %v", calls[1].Extra, calls[1].ProblemKind())
	}
}

// TestMatching: responses answer by identifier whatever the order, a
// response to nothing is "no request", and requests sent by both sides of
// a flow are kept apart.
func TestMatching(t *testing.T) {
	rec, p := newFlow(proto.Limits{})
	p.Datagram(proto.Client, packet(1, 1, authn(1), attr(1, "a")), at(0))
	p.Datagram(proto.Client, packet(1, 2, authn(2), attr(1, "b")), at(1))
	p.Datagram(proto.Server, packet(2, 2, authn(3)), at(2))
	p.Datagram(proto.Server, packet(3, 1, authn(4)), at(3))
	p.Datagram(proto.Server, packet(2, 77, authn(5), attr(1, "ghost")), at(4))
	// The server side asks (a CoA from the same 5-tuple) with identifier
	// 1: the client's answer is to it, not to a client request.
	p.Datagram(proto.Client, packet(1, 3, authn(6), attr(1, "c")), at(5))
	p.Datagram(proto.Server, packet(43, 3, authn(7), attr(1, "c")), at(6))
	p.Datagram(proto.Client, packet(44, 3, authn(8)), at(7))
	p.Datagram(proto.Server, packet(2, 3, authn(9)), at(8))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Access-Request", Path: "b", Status: "Access-Accept"},
		{Method: "Access-Request", Path: "a", Status: "Access-Reject"},
		{Path: "ghost", Status: "Access-Accept", Err: "no request"},
		{Method: "CoA-Request", Path: "c", Status: "CoA-ACK"},
		{Method: "Access-Request", Path: "c", Status: "Access-Accept"},
	})
	if calls[2].Outcome() != proto.Incomplete && calls[2].ProblemKind() != proto.Orphan {
		t.Errorf("orphan: %v", calls[2].ProblemKind())
	}
}

// TestExpire: a request waits Limits.RequestTimeout for its answer.
func TestExpire(t *testing.T) {
	rec, p := newFlow(proto.Limits{RequestTimeout: 5 * time.Second})
	p.Datagram(proto.Client, packet(12, 1, authn(1), attr(80, make([]byte, 16))), at(0))
	p.Datagram(proto.Client, packet(1, 2, authn(2), attr(1, "late")), at(4000))
	p.Expire(at(6000).Add(-5 * time.Second)) // the engine's deadline: now - RequestTimeout
	if len(rec.Calls) != 1 {
		t.Fatalf("%d calls after the first timeout, want 1", len(rec.Calls))
	}
	p.Datagram(proto.Server, packet(2, 2, authn(3)), at(7000))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Status-Server", Err: "no response"},
		{Method: "Access-Request", Path: "late", Status: "Access-Accept"},
	})
	if calls[0].Outcome() != proto.NoResponse {
		t.Errorf("outcome %s", calls[0].Outcome())
	}
	// Flows ended to bound memory say so.
	rec, p = newFlow(proto.Limits{})
	p.Datagram(proto.Client, packet(1, 2, authn(2), attr(1, "x")), at(0))
	p.End(proto.EndMemory, at(1))
	prototest.Check(t, rec.Calls, []prototest.Want{{Method: "Access-Request", Path: "x", Err: "no response: flow ended early for memory bounds"}})
}

// eap is an EAP packet: code, identifier, length, then type and data for
// a request or response.
func eap(code, id byte, data ...byte) []byte {
	b := []byte{code, id, 0, byte(4 + len(data))}
	return append(b, data...)
}

func TestEAP(t *testing.T) {
	identity := eap(2, 0, append([]byte{1}, "anonymous-identity@example.com"...)...)
	tlsData := append([]byte{13, 0x80}, bytes.Repeat([]byte("TLSDATA-"), 40)...)
	challenge := eap(1, 1, tlsData...)
	rec, p := newFlow(proto.Limits{})
	// The identity split over two EAP-Message attributes.
	p.Datagram(proto.Client, packet(1, 1, authn(1), attr(1, "anonymous"), attr(79, identity[:3]), attr(79, identity[3:]),
		attr(80, make([]byte, 16))), at(0))
	p.Datagram(proto.Server, packet(11, 1, authn(2), attr(79, challenge[:200]), attr(79, challenge[200:]),
		attr(24, []byte{0xaa, 0xbb}), attr(80, make([]byte, 16))), at(1))
	p.Datagram(proto.Client, packet(1, 2, authn(3), attr(1, "anonymous"), attr(79, eap(2, 1, 13, 0)), attr(24, []byte{0xaa, 0xbb})), at(2))
	p.Datagram(proto.Server, packet(3, 2, authn(4), attr(79, eap(4, 1)), attr(18, "no")), at(3))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "Access-Request", Path: "anonymous", Status: "Access-Challenge",
			Req:  "User-Name = \"anonymous\"\nEAP-Message = EAP-Response/Identity (35 bytes)\nMessage-Authenticator = [redacted]",
			Resp: "EAP-Message = EAP-Request/EAP-TLS (326 bytes)\nState = 0xaabb\nMessage-Authenticator = [redacted]"},
		{Method: "Access-Request", Path: "anonymous", Status: "Access-Reject"},
	})
	if calls[0].Extra.Get("eap") != "EAP-Response/Identity" || calls[0].Extra.Get("eap_reply") != "EAP-Request/EAP-TLS" {
		t.Errorf("extra %v", calls[0].Extra)
	}
	if calls[1].Extra.Get("eap") != "EAP-Response/EAP-TLS" || calls[1].Extra.Get("eap_reply") != "EAP-Failure" {
		t.Errorf("extra %v", calls[1].Extra)
	}
	for _, c := range calls {
		if j := string(c.AppendJSON(nil)); strings.Contains(j, "identity@") || strings.Contains(j, "TLSDATA") {
			t.Errorf("an EAP payload shows: %s", j)
		}
	}
}

// TestCoANAK: a NAK's Error-Cause is an extra field.
func TestCoANAK(t *testing.T) {
	rec, p := newFlow(proto.Limits{})
	p.Datagram(proto.Client, packet(40, 1, authn(1), attr(1, "bob"), attr(44, "s-9")), at(0))
	p.Datagram(proto.Server, packet(42, 1, authn(2), attr(101, 503)), at(1))
	calls := end(t, rec, p)
	prototest.Check(t, calls, []prototest.Want{{Method: "Disconnect-Request", Path: "bob", Status: "Disconnect-NAK",
		Resp: "Error-Cause = Session-Context-Not-Found"}})
	if calls[0].Extra.Get("error_cause") != "Session-Context-Not-Found" || calls[0].Outcome() != proto.ClientError {
		t.Errorf("extra %v, outcome %s", calls[0].Extra, calls[0].Outcome())
	}
}

// TestBodyLimits: bodies are cut to Limits.MaxBodyDisplay, and absent in
// Summary runs, whose calls are otherwise the same.
func TestBodyLimits(t *testing.T) {
	var attrs [][]byte
	for i := range 40 {
		attrs = append(attrs, attr(18, strings.Repeat(string(rune('a'+i%26)), 80)))
	}
	req := packet(1, 1, authn(1), append([][]byte{attr(1, "u")}, attrs...)...)
	resp := packet(2, 1, authn(2), attrs...)
	var all [2][]*proto.Call
	for i, lim := range []proto.Limits{{MaxBodyDisplay: 300}, {Summary: true}} {
		rec, p := newFlow(lim)
		p.Datagram(proto.Client, req, at(0))
		p.Datagram(proto.Server, resp, at(1))
		all[i] = end(t, rec, p)
	}
	full, sum := all[0][0], all[1][0]
	if len(full.Request.Body) > 300 || !full.Request.BodyTruncated || !full.Response.BodyTruncated || len(full.Response.Body) > 300 {
		t.Errorf("bodies %d/%d bytes, truncated %v/%v", len(full.Request.Body), len(full.Response.Body),
			full.Request.BodyTruncated, full.Response.BodyTruncated)
	}
	if sum.Request.Body != "" || sum.Response.Body != "" || sum.Request.BodySize != full.Request.BodySize {
		t.Errorf("summary bodies %q/%q sizes %d", sum.Request.Body, sum.Response.Body, sum.Request.BodySize)
	}
	if string(sum.Extra.AppendJSON(nil)) != string(full.Extra.AppendJSON(nil)) || sum.Status != full.Status || sum.Path != full.Path {
		t.Errorf("summary differs: %s vs %s", sum.Extra.AppendJSON(nil), full.Extra.AppendJSON(nil))
	}
}

func TestDetect(t *testing.T) {
	good := packet(1, 1, authn(1), attr(1, "alice"), attr(4, []byte{10, 0, 0, 1}))
	dnsQuery := []byte{0x01, 0x00, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
	cases := []struct {
		name     string
		b        []byte
		src, dst uint16
		want     proto.Verdict
		role     proto.Role
	}{
		{"request on any port", good, 40000, 5000, proto.Yes, proto.Client},
		{"response", packet(2, 1, authn(2), attr(18, "hi")), 1812, 40000, proto.Yes, proto.Server},
		{"accounting response without attributes on 1813", packet(5, 1, authn(2)), 1813, 40000, proto.Yes, proto.Server},
		{"no attributes, not a RADIUS port", packet(5, 1, authn(2)), 5000, 40000, proto.No, 0},
		{"zero padding", append(bytes.Clone(good), 0, 0, 0), 40000, 5000, proto.Yes, proto.Client},
		{"other padding, not a RADIUS port", append(bytes.Clone(good), 1, 2), 40000, 5000, proto.No, 0},
		{"other padding on 1812", append(bytes.Clone(good), 1, 2), 40000, 1812, proto.Yes, proto.Client},
		{"length over the datagram", good[:len(good)-1], 40000, 1812, proto.No, 0},
		{"unknown code", append([]byte{99}, good[1:]...), 40000, 1812, proto.No, 0},
		{"attributes short of the length", packet(1, 1, authn(1), attr(1, "alice"), []byte{4}), 40000, 1812, proto.No, 0},
		{"attribute of type 0", packet(1, 1, authn(1), attr(0, "x")), 40000, 1812, proto.No, 0},
		{"attribute of length 1", packet(1, 1, authn(1), []byte{1, 1}), 40000, 1812, proto.No, 0},
		{"DNS query", dnsQuery, 40000, 53, proto.No, 0},
		{"short", good[:19], 40000, 1812, proto.No, 0},
	}
	for _, tc := range cases {
		v, r := radius.Protocol{}.DetectDatagram(tc.b, tc.src, tc.dst)
		if v != tc.want || (v == proto.Yes && r != tc.role) {
			t.Errorf("%s: %v %v, want %v %v", tc.name, v, r, tc.want, tc.role)
		}
	}
}
