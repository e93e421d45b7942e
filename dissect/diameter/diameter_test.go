package diameter_test

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/diameter"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// The outcomes asked of calls are the registered protocol's.
func init() { proto.Register(diameter.Protocol{}) }

// avp builds an AVP (flag M set), padded; vendor 0 means none.
func avp(code, vendor uint32, data []byte) []byte {
	hdr := 8
	flags := byte(0x40)
	if vendor != 0 {
		hdr, flags = 12, 0xc0
	}
	n := hdr + len(data)
	b := binary.BigEndian.AppendUint32(nil, code)
	b = append(b, flags, byte(n>>16), byte(n>>8), byte(n))
	if vendor != 0 {
		b = binary.BigEndian.AppendUint32(b, vendor)
	}
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func str(code uint32, s string) []byte { return avp(code, 0, []byte(s)) }
func u32(code, v uint32) []byte        { return avp(code, 0, binary.BigEndian.AppendUint32(nil, v)) }
func group(code uint32, members ...[]byte) []byte {
	var b []byte
	for _, m := range members {
		b = append(b, m...)
	}
	return avp(code, 0, b)
}

// Header flags.
const (
	fR = 0x80
	fP = 0x40
	fE = 0x20
	fT = 0x10
)

// msg builds a message.
func msg(flags byte, cmd, app, hbh uint32, avps ...[]byte) []byte {
	b := []byte{1, 0, 0, 0, flags, byte(cmd >> 16), byte(cmd >> 8), byte(cmd)}
	b = binary.BigEndian.AppendUint32(b, app)
	b = binary.BigEndian.AppendUint32(b, hbh)
	b = binary.BigEndian.AppendUint32(b, hbh^0x5a5a0000)
	for _, a := range avps {
		b = append(b, a...)
	}
	n := len(b)
	b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
	return b
}

func origin(host string) [][]byte {
	return [][]byte{str(264, host), str(296, "example.net")}
}

func cer(hbh uint32, host string) []byte {
	return msg(fR, 257, 0, hbh, append(origin(host), avp(257, 0, []byte{0, 1, 10, 0, 0, 1}), u32(266, 0),
		str(269, "test-peer"), u32(258, 4), group(260, u32(266, 10415), u32(258, 16777251)))...)
}

func cea(hbh uint32, host string, rc uint32) []byte {
	return msg(0, 257, 0, hbh, append([][]byte{u32(268, rc)}, append(origin(host), str(269, "hss"), u32(258, 4))...)...)
}

func dwr(hbh uint32, host string) []byte { return msg(fR, 280, 0, hbh, origin(host)...) }
func dwa(hbh uint32, host string) []byte {
	return msg(0, 280, 0, hbh, append([][]byte{u32(268, 2001)}, origin(host)...)...)
}

func ccr(hbh uint32, session string, typ, num uint32, flags byte) []byte {
	return msg(fR|fP|flags, 272, 4, hbh, append([][]byte{str(263, session)}, append(origin("pcef.example.net"),
		str(283, "ocs.example.net"), u32(258, 4), str(461, "32251@3gpp.org"), u32(416, typ), u32(415, num), str(1, "alice"),
		group(437, avp(420, 0, []byte{0, 0, 0, 60})))...)...)
}

func cca(hbh uint32, session string, rc uint32, typ, num uint32) []byte {
	return msg(fP, 272, 4, hbh, append([][]byte{str(263, session), u32(268, rc)}, append(origin("ocs.example.net"),
		u32(258, 4), u32(416, typ), u32(415, num))...)...)
}

func TestDetect(t *testing.T) {
	req := cer(1, "mme.example.net")
	ans := cea(1, "hss.example.net", 2001)
	bad := func(f func(b []byte)) []byte {
		b := append([]byte(nil), req...)
		f(b)
		return b
	}
	cases := []struct {
		name string
		data []byte
		want proto.Verdict
		role proto.Role
	}{
		{"CER", req, proto.Yes, proto.Client},
		{"CEA", ans, proto.Yes, proto.Server},
		{"header only", req[:20], proto.Maybe, proto.RoleUnknown},
		{"first AVP's header", req[:28], proto.Yes, proto.Client},
		{"cut", req[:3], proto.Maybe, proto.RoleUnknown},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), proto.No, proto.RoleUnknown},
		{"TLS", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), proto.No, proto.RoleUnknown},
		{"version 2", bad(func(b []byte) { b[0] = 2 }), proto.No, proto.RoleUnknown},
		{"length not a multiple of 4", bad(func(b []byte) { b[3]++ }), proto.No, proto.RoleUnknown},
		{"length 2^24-4", bad(func(b []byte) { b[1], b[2], b[3] = 0xff, 0xff, 0xfc }), proto.No, proto.RoleUnknown},
		{"reserved flags", bad(func(b []byte) { b[4] |= 1 }), proto.No, proto.RoleUnknown},
		{"E flag on a request", bad(func(b []byte) { b[4] |= fE }), proto.No, proto.RoleUnknown},
		{"RADIUS-range command", bad(func(b []byte) { b[5], b[6], b[7] = 0, 0, 1 }), proto.No, proto.RoleUnknown},
		{"first AVP of length 7", bad(func(b []byte) { b[25], b[26], b[27] = 0, 0, 7 }), proto.No, proto.RoleUnknown},
		{"first AVP overruns", bad(func(b []byte) { b[25], b[26], b[27] = 0, 0x10, 0 }), proto.No, proto.RoleUnknown},
	}
	for _, c := range cases {
		v, r := diameter.Protocol{}.DetectStream(c.data, 40000, 3868)
		if v != c.want || r != c.role {
			t.Errorf("%s: %v %v, want %v %v", c.name, v, r, c.want, c.role)
		}
	}
}

// feedings are the ways a test feeds a conversation: one message per Feed
// (as SCTP delivers them), everything a side sends at once, byte by byte.
var feedings = []struct {
	name string
	feed func(s *prototest.Session, r proto.Role, b []byte)
}{
	{"message per feed", func(s *prototest.Session, r proto.Role, b []byte) { s.P.Feed(r, b, s.At()) }},
	{"byte by byte", func(s *prototest.Session, r proto.Role, b []byte) {
		for i := range b {
			s.P.Feed(r, b[i:i+1], s.At())
		}
	}},
	{"odd pieces", func(s *prototest.Session, r proto.Role, b []byte) {
		for len(b) > 0 {
			n := min(len(b), 13)
			s.P.Feed(r, b[:n], s.At())
			b = b[n:]
		}
	}},
}

type step struct {
	r proto.Role
	b []byte
}

func c(b ...[]byte) step { return step{proto.Client, join(b)} }
func s(b ...[]byte) step { return step{proto.Server, join(b)} }
func join(b [][]byte) []byte {
	var out []byte
	for _, x := range b {
		out = append(out, x...)
	}
	return out
}

func TestCalls(t *testing.T) {
	const sid = "pcef.example.net;1096298391;1"
	type check func(t *testing.T, calls []*proto.Call)
	extra := func(i int, k string, want any) check {
		return func(t *testing.T, calls []*proto.Call) {
			if got := calls[i].Extra.Get(k); got != want {
				t.Errorf("call %d: extra %s = %#v, want %#v", i, k, got, want)
			}
		}
	}
	cases := []struct {
		name   string
		steps  []step
		want   []prototest.Want
		checks []check
	}{
		{"CER/CEA, DWR both ways, DPR/DPA",
			[]step{c(cer(1, "mme.example.net")), s(cea(1, "hss.example.net", 2001)),
				c(dwr(2, "mme.example.net")), s(dwa(2, "hss.example.net")),
				s(dwr(77, "hss.example.net")), c(dwa(77, "mme.example.net")),
				c(msg(fR, 282, 0, 3, append(origin("mme.example.net"), u32(273, 0))...)),
				s(msg(0, 282, 0, 3, append([][]byte{u32(268, 2001)}, origin("hss.example.net")...)...))},
			[]prototest.Want{{Method: "CER", Status: "DIAMETER_SUCCESS"}, {Method: "DWR", Status: "DIAMETER_SUCCESS"},
				{Method: "DWR", Status: "DIAMETER_SUCCESS"}, {Method: "DPR", Status: "DIAMETER_SUCCESS"}},
			[]check{extra(0, "product_name", "test-peer"), extra(0, "answer_product_name", "hss"),
				extra(0, "application", "Diameter Common Messages"), extra(0, "origin_host", "mme.example.net"),
				extra(0, "answered_by", "hss.example.net"), extra(1, "direction", nil), extra(2, "direction", "server"),
				extra(2, "hop_by_hop", int64(77)), extra(3, "disconnect_cause", "REBOOTING"),
				func(t *testing.T, calls []*proto.Call) {
					apps, _ := calls[0].Extra.Get("auth_application_ids").([]string)
					if strings.Join(apps, ",") != "Credit-Control (4),3GPP S6a (16777251)" {
						t.Errorf("CER's applications %q", apps)
					}
					if !strings.Contains(calls[0].Request.Body, "Vendor-Specific-Application-Id:\n  Vendor-Id: 10415\n  Auth-Application-Id: 16777251 (3GPP S6a)") ||
						!strings.Contains(calls[0].Request.Body, "Host-IP-Address: 10.0.0.1") {
						t.Errorf("CER's body:\n%s", calls[0].Request.Body)
					}
					if !strings.HasPrefix(calls[0].Response.Body, "Result-Code: 2001 (DIAMETER_SUCCESS)\nOrigin-Host: hss.example.net") {
						t.Errorf("CEA's body:\n%s", calls[0].Response.Body)
					}
				}},
		},
		{"CCR initial, update, termination",
			[]step{c(ccr(10, sid, 1, 0, 0)), s(cca(10, sid, 2001, 1, 0)), c(ccr(11, sid, 2, 1, 0)), s(cca(11, sid, 4012, 2, 1)),
				c(ccr(12, sid, 3, 2, 0)), s(cca(12, sid, 5002, 3, 2))},
			[]prototest.Want{{Method: "CCR", Path: sid, Status: "DIAMETER_SUCCESS"}, {Method: "CCR", Path: sid, Status: "DIAMETER_CREDIT_LIMIT_REACHED"},
				{Method: "CCR", Path: sid, Status: "DIAMETER_UNKNOWN_SESSION_ID"}},
			[]check{extra(0, "cc_request_type", "INITIAL_REQUEST"), extra(0, "cc_request_number", int64(0)),
				extra(1, "cc_request_type", "UPDATE_REQUEST"), extra(2, "cc_request_number", int64(2)),
				extra(0, "application", "Credit-Control"), extra(0, "user_name", "alice"),
				extra(0, "destination_realm", "ocs.example.net"), extra(2, "result_code", int64(5002)),
				func(t *testing.T, calls []*proto.Call) {
					if !strings.Contains(calls[0].Request.Body, "CC-Request-Type: INITIAL_REQUEST (1)\nCC-Request-Number: 0\nUser-Name: alice\nRequested-Service-Unit:\n  CC-Time: 60") {
						t.Errorf("CCR's body:\n%s", calls[0].Request.Body)
					}
				}},
		},
		{"error answer with E bit and Failed-AVP",
			[]step{c(msg(fR|fP, 265, 1, 5, append(origin("nas.example.net"), str(283, "aaa.example.net"), u32(274, 3))...)),
				s(msg(fP|fE, 265, 1, 5, u32(268, 3009), str(264, "aaa.example.net"), str(296, "example.net"),
					str(281, "the M bit of an AVP it does not know"), group(279, u32(99999, 1))))},
			[]prototest.Want{{Method: "AAR", Path: "aaa.example.net", Status: "DIAMETER_INVALID_AVP_BITS"}},
			[]check{extra(0, "error_bit", true), extra(0, "failed_avp", "AVP 99999 (99999)"),
				extra(0, "error_message", "the M bit of an AVP it does not know"), extra(0, "application", "NASREQ")},
		},
		{"Experimental-Result",
			[]step{c(msg(fR|fP, 316, 16777251, 6, append(origin("mme.example.net"), str(263, "mme;1"), str(283, "epc.example.net"), str(1, "001010123456789"))...)),
				s(msg(fP, 316, 16777251, 6, str(263, "mme;1"), group(297, u32(266, 10415), u32(298, 5001)), str(264, "hss.example.net"))),
				c(msg(fR|fP, 318, 16777251, 7, str(263, "mme;2"))),
				s(msg(fP, 318, 16777251, 7, str(263, "mme;2"), group(297, u32(266, 9), u32(298, 5555))))},
			[]prototest.Want{{Method: "ULR", Path: "mme;1", Status: "DIAMETER_ERROR_USER_UNKNOWN"}, {Method: "AIR", Path: "mme;2", Status: "5555"}},
			[]check{extra(0, "experimental_result_vendor", int64(10415)), extra(0, "application", "3GPP S6a"),
				extra(1, "experimental_result_vendor", int64(9))},
		},
		{"retransmission with the T bit",
			[]step{c(ccr(20, sid, 4, 0, 0)), c(ccr(20, sid, 4, 0, fT)), c(ccr(20, sid, 4, 0, fT)), s(cca(20, sid, 2001, 4, 0))},
			[]prototest.Want{{Method: "CCR", Path: sid, Status: "DIAMETER_SUCCESS"}},
			[]check{extra(0, "retransmissions", 2), extra(0, "cc_request_type", "EVENT_REQUEST")},
		},
		{"answers out of order, same Hop-by-Hop from both sides",
			[]step{c(ccr(30, "a", 1, 0, 0), ccr(31, "b", 1, 0, 0)), s(dwr(30, "hss")), s(cca(31, "b", 2001, 1, 0)),
				c(dwa(30, "mme")), s(cca(30, "a", 3004, 1, 0))},
			[]prototest.Want{{Method: "CCR", Path: "b", Status: "DIAMETER_SUCCESS"}, {Method: "DWR", Status: "DIAMETER_SUCCESS"},
				{Method: "CCR", Path: "a", Status: "DIAMETER_TOO_BUSY"}},
			nil,
		},
		{"unknown command, orphan answer, unanswered",
			[]step{c(msg(fR, 9999, 77, 40, str(283, "x.example.net"))), s(msg(0, 9999, 77, 40, u32(268, 2001))),
				s(cca(41, "z", 2001, 1, 0)), c(ccr(42, "y", 1, 0, 0))},
			[]prototest.Want{{Method: "cmd-9999", Path: "x.example.net", Status: "DIAMETER_SUCCESS"}, {Err: "no request"},
				{Method: "CCR", Path: "y", Err: "no response"}},
			[]check{extra(0, "application", "application 77"), extra(1, "command", "CCA")},
		},
	}
	for _, tc := range cases {
		for _, f := range feedings {
			t.Run(tc.name+"/"+f.name, func(t *testing.T) {
				sess := prototest.NewSession(t, diameter.Protocol{}, nil)
				for _, st := range tc.steps {
					f.feed(sess, st.r, st.b)
				}
				calls := sess.End(proto.EndFIN)
				prototest.Check(t, calls, tc.want)
				if t.Failed() {
					return
				}
				for _, ch := range tc.checks {
					ch(t, calls)
				}
			})
		}
	}
}

func TestOutcome(t *testing.T) {
	for status, want := range map[string]proto.Outcome{
		"DIAMETER_SUCCESS": proto.OK, "DIAMETER_MULTI_ROUND_AUTH": proto.OK, "DIAMETER_LIMITED_SUCCESS": proto.OK,
		"DIAMETER_UNABLE_TO_DELIVER": proto.ServerError, "DIAMETER_TOO_BUSY": proto.ServerError,
		"DIAMETER_APPLICATION_UNSUPPORTED": proto.ServerError, "DIAMETER_REDIRECT_INDICATION": proto.OK,
		"DIAMETER_INVALID_AVP_BITS": proto.ClientError, "DIAMETER_OUT_OF_SPACE": proto.ServerError,
		"ELECTION_LOST": proto.OK, "DIAMETER_AUTHENTICATION_REJECTED": proto.ClientError,
		"DIAMETER_UNKNOWN_SESSION_ID": proto.ClientError, "DIAMETER_AUTHORIZATION_REJECTED": proto.ClientError,
		"DIAMETER_UNABLE_TO_COMPLY": proto.ServerError, "DIAMETER_NO_COMMON_APPLICATION": proto.ServerError,
		"DIAMETER_UNSUPPORTED_VERSION": proto.ClientError, "DIAMETER_ERROR_USER_UNKNOWN": proto.ClientError,
		"DIAMETER_AUTHENTICATION_DATA_UNAVAILABLE": proto.ServerError, "DIAMETER_FIRST_REGISTRATION": proto.OK,
		"4999": proto.ServerError, "5999": proto.ClientError, "2999": proto.OK,
	} {
		call := &proto.Call{Proto: "diameter", Status: status}
		if got := call.Outcome(); got != want {
			t.Errorf("%s: %v, want %v", status, got, want)
		}
	}
}

func TestGaps(t *testing.T) {
	const sid = "s;1"
	t.Run("inside a request, length known", func(t *testing.T) {
		sess := prototest.NewSession(t, diameter.Protocol{}, nil)
		r := ccr(1, sid, 1, 0, 0)
		sess.Client(r[:40])
		sess.P.Gap(proto.Client, 16)
		sess.Client(r[56:])
		sess.Server(cca(1, sid, 2001, 1, 0))
		prototest.Check(t, sess.End(proto.EndFIN), []prototest.Want{
			{Method: "CCR", Path: sid, Status: "DIAMETER_SUCCESS", Err: "truncated: 16 bytes of the request missing from the capture"}})
	})
	t.Run("unknown amount: the side resyncs on the next message", func(t *testing.T) {
		sess := prototest.NewSession(t, diameter.Protocol{}, nil)
		sess.Client(ccr(1, sid, 1, 0, 0))
		a := cca(1, sid, 2001, 1, 0)
		sess.Server(a[:44]) // up to the Result-Code
		sess.P.Gap(proto.Server, -1)
		sess.Server([]byte("junk that is not diameter"))
		sess.Client(ccr(2, sid, 2, 1, 0))
		sess.Server(cca(2, sid, 2001, 2, 1))
		want := []prototest.Want{
			{Method: "CCR", Path: sid, Status: "DIAMETER_SUCCESS", Err: "truncated: " + strconv.Itoa(len(a)-44) + " bytes of the answer missing from the capture"},
			{Method: "CCR", Path: sid, Status: "DIAMETER_SUCCESS"}}
		prototest.Check(t, sess.End(proto.EndFIN), want)
	})
	t.Run("the answer lost in a gap", func(t *testing.T) {
		sess := prototest.NewSession(t, diameter.Protocol{}, nil)
		sess.Client(ccr(1, sid, 1, 0, 0))
		sess.P.Gap(proto.Server, 120)
		prototest.Check(t, sess.End(proto.EndFIN), []prototest.Want{
			{Method: "CCR", Path: sid, Err: "truncated: the answer may be among bytes missing from the capture"}})
	})
	t.Run("malformed length, then a message", func(t *testing.T) {
		sess := prototest.NewSession(t, diameter.Protocol{}, nil)
		sess.Client([]byte{1, 0, 0, 21, 0x80, 0, 1, 1})
		sess.Client(dwr(5, "a"))
		sess.Server(dwa(5, "b"))
		prototest.Check(t, sess.End(proto.EndFIN), []prototest.Want{
			{Err: "malformed: message length 21 is not a multiple of 4 of at least 20"}, {Method: "DWR", Status: "DIAMETER_SUCCESS"}})
	})
	t.Run("connection ends inside an answer", func(t *testing.T) {
		sess := prototest.NewSession(t, diameter.Protocol{}, nil)
		sess.Client(dwr(5, "a"))
		sess.Server(dwa(5, "b")[:24])
		prototest.Check(t, sess.End(proto.EndRST), []prototest.Want{{Method: "DWR", Err: "truncated: connection reset during the answer"}})
	})
}

func TestExpire(t *testing.T) {
	rec := &prototest.Recorder{}
	p := diameter.Protocol{}.NewStream(rec, &proto.Limits{})
	at := time.Unix(1e9, 0)
	p.Feed(proto.Client, ccr(1, "s", 1, 0, 0), at)
	p.Feed(proto.Client, ccr(2, "s", 2, 1, 0), at.Add(time.Minute))
	p.(proto.Expiring).Expire(at.Add(30 * time.Second))
	if len(rec.Calls) != 1 || rec.Calls[0].Error != "no response: no answer within the request timeout" {
		t.Fatalf("calls %+v", rec.Calls)
	}
	p.Feed(proto.Server, cca(2, "s", 2001, 2, 1), at.Add(61*time.Second))
	if len(rec.Calls) != 2 || rec.Calls[1].Status != "DIAMETER_SUCCESS" || rec.Calls[1].LatencyNS != int64(time.Second) {
		t.Fatalf("calls %+v", rec.Calls[1])
	}
}

func TestSummary(t *testing.T) {
	full := prototest.NewSession(t, diameter.Protocol{}, nil)
	sum := prototest.NewSession(t, diameter.Protocol{}, &proto.Limits{Summary: true})
	for _, sess := range []*prototest.Session{full, sum} {
		sess.Client(cer(1, "a"))
		sess.Server(cea(1, "b", 5010))
	}
	f, s := full.End(proto.EndFIN), sum.End(proto.EndFIN)
	if len(f) != 1 || len(s) != 1 || f[0].Status != s[0].Status || f[0].Method != s[0].Method || s[0].Request.Body != "" || s[0].Response.Body != "" || f[0].Request.Body == "" {
		t.Fatalf("full %+v\nsummary %+v", f, s)
	}
}

func TestSecretsNotShown(t *testing.T) {
	sess := prototest.NewSession(t, diameter.Protocol{}, nil)
	sess.Client(msg(fR, 265, 1, 1, str(1, "bob"), str(2, "hunter2-secret")))
	sess.Server(msg(0, 265, 1, 1, u32(268, 4001)))
	calls := sess.End(proto.EndFIN)
	if len(calls) != 1 || strings.Contains(calls[0].Request.Body, "hunter2") || !strings.Contains(calls[0].Request.Body, "User-Password: (14 bytes, not shown)") {
		t.Fatalf("body %q", calls[0].Request.Body)
	}
	if calls[0].Outcome() != proto.ClientError {
		t.Errorf("outcome %v", calls[0].Outcome())
	}
}
