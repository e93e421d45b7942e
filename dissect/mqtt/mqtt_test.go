package mqtt_test

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/mqtt"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(mqtt.Protocol{}) }

// Packet builders, as the specification lays the fields out.

func varint(n int) []byte {
	var b []byte
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

func pkt(first byte, body ...[]byte) string {
	var p []byte
	for _, b := range body {
		p = append(p, b...)
	}
	return string(append(append([]byte{first}, varint(len(p))...), p...))
}

func str(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }
func u16(n int) []byte    { return binary.BigEndian.AppendUint16(nil, uint16(n)) }
func b(v ...byte) []byte  { return v }

// props builds a 5.0 property block from identifier/value pairs.
func props(fields ...[]byte) []byte {
	var p []byte
	for _, f := range fields {
		p = append(p, f...)
	}
	return append(varint(len(p)), p...)
}

func userProp(k, v string) []byte { return append(append([]byte{0x26}, str(k)...), str(v)...) }
func reasonStr(s string) []byte   { return append([]byte{0x1F}, str(s)...) }
func alias(n int) []byte          { return append([]byte{0x23}, u16(n)...) }

// connect builds a CONNECT: level 3 ("MQIsdp"), 4 or 5.
func connect(level byte, clientID, user, pass string) string {
	name := "MQTT"
	if level == 3 {
		name = "MQIsdp"
	}
	flags := byte(0x02)
	var tail []byte
	if user != "" {
		flags |= 0x80
		tail = append(tail, str(user)...)
	}
	if pass != "" {
		flags |= 0x40
		tail = append(tail, str(pass)...)
	}
	var pr []byte
	if level == 5 {
		pr = props(append([]byte{0x11}, 0, 0, 0x0e, 0x10)) // session expiry 3600
	}
	return pkt(0x10, str(name), b(level, flags), u16(60), pr, str(clientID), tail)
}

func publish(qos byte, retain bool, topic string, id int, pr []byte, payload string) string {
	first := byte(0x30 | qos<<1)
	if retain {
		first |= 1
	}
	var idb []byte
	if qos > 0 {
		idb = u16(id)
	}
	return pkt(first, str(topic), idb, pr, []byte(payload))
}

func newSession(t *testing.T, lim *proto.Limits) *prototest.Session {
	return prototest.NewSession(t, mqtt.Protocol{}, lim)
}

func TestMQTT311(t *testing.T) {
	s := newSession(t, nil)
	s.Client(connect(4, "sensor-1", "alice", "hunter2")).Server(pkt(0x20, b(0, 0)))
	s.Client(publish(0, false, "a/b", 0, nil, "hello"))
	s.Client(publish(1, true, "a/c", 7, nil, "qos1")).Server(pkt(0x40, u16(7)))
	s.Client(publish(2, false, "a/d", 8, nil, "qos2")).Server(pkt(0x50, u16(8)))
	s.Client(pkt(0x62, u16(8))).Server(pkt(0x70, u16(8)))
	s.Client(pkt(0x82, u16(9), str("a/#"), b(1), str("b/+"), b(2))).Server(pkt(0x90, u16(9), b(1, 0x80)))
	s.Client(pkt(0x82, u16(10), str("x"), b(2), str("y"), b(1))).Server(pkt(0x90, u16(10), b(2, 1)))
	s.Client(pkt(0xA2, u16(11), str("a/#"))).Server(pkt(0xB0, u16(11)))
	s.Client(pkt(0xC0)).Server(pkt(0xD0))
	// The server publishes to the client at QoS 0, 1 and 2.
	s.Server(publish(0, false, "a/b", 0, nil, "pushed"))
	s.Server(publish(1, false, "a/b", 1, nil, "pushed1")).Client(pkt(0x40, u16(1)))
	s.Server(publish(2, false, "a/b", 2, nil, "pushed2")).Client(pkt(0x50, u16(2)))
	s.Server(pkt(0x62, u16(2))).Client(pkt(0x70, u16(2)))
	s.Client(pkt(0xE0))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "sensor-1", Status: "Success"},
		{Method: "PUBLISH", Path: "a/b", OneWay: true, Req: "hello"},
		{Method: "PUBLISH", Path: "a/c", Status: "Success", Req: "qos1"},
		{Method: "PUBLISH", Path: "a/d", Status: "Success", Req: "qos2"},
		{Method: "SUBSCRIBE", Path: "a/#,b/+", Status: "Failure"},
		{Method: "SUBSCRIBE", Path: "x,y", Status: "Granted QoS 1"},
		{Method: "UNSUBSCRIBE", Path: "a/#", Status: "Success"},
		{Method: "PINGREQ", Status: "Success"},
		{Method: "PUBLISH", Path: "a/b", OneWay: true, Resp: "pushed"},
		{Method: "PUBLISH", Path: "a/b", Status: "Success", Resp: "pushed1"},
		{Method: "PUBLISH", Path: "a/b", Status: "Success", Resp: "pushed2"},
		{Method: "DISCONNECT", OneWay: true},
	})
	c := calls[0]
	if c.Extra.Get("username") != "alice" || c.Extra.Get("version") != "3.1.1" || c.Extra.Get("keep_alive") != 60 ||
		c.Extra.Get("return_code") != 0 || c.Extra.Get("clean_start") != true {
		t.Errorf("CONNECT extra %v", c.Extra)
	}
	if strings.Contains(string(c.AppendJSON(nil)), "hunter2") || !strings.Contains(c.Request.Body, `"password":"[redacted]"`) {
		t.Errorf("CONNECT body %s", c.Request.Body)
	}
	if got := calls[2].Extra; got.Get("qos") != 1 || got.Get("retain") != true || got.Get("packet_id") != 7 || got.Get("payload_size") != 4 {
		t.Errorf("QoS 1 extra %v", got)
	}
	if got := calls[3].Extra; got.Get("pubrec") != "Success" || got.Get("pubcomp") != "Success" {
		t.Errorf("QoS 2 extra %v", got)
	}
	if got := calls[4].Extra.Get("reason_codes"); strings.Join(got.([]string), ",") != "Granted QoS 1,Failure" {
		t.Errorf("SUBACK codes %v", got)
	}
	for _, i := range []int{8, 9, 10} {
		if calls[i].Extra.Get("direction") != "server→client" {
			t.Errorf("call %d: direction %v", i, calls[i].Extra.Get("direction"))
		}
	}
	if calls[2].LatencyNS != int64(time.Millisecond) || calls[3].LatencyNS != int64(time.Millisecond) {
		t.Errorf("latencies %d %d", calls[2].LatencyNS, calls[3].LatencyNS)
	}
	if calls[1].Outcome() != proto.OneWay || calls[2].Outcome() != proto.OK || calls[4].Outcome() != proto.ClientError {
		t.Errorf("outcomes %v %v %v", calls[1].Outcome(), calls[2].Outcome(), calls[4].Outcome())
	}
}

func TestMQTT5(t *testing.T) {
	s := newSession(t, nil)
	s.Client(connect(5, "dev-5", "", "")).Server(pkt(0x20, b(0, 0), props(append([]byte{0x22}, u16(10)...))))
	// A topic alias set, then used; the server's aliases are its own.
	s.Client(publish(1, false, "sensors/temp", 1, props(alias(1), userProp("unit", "C"), []byte{0x03, 0, 4, 't', 'e', 'x', 't'}), "21.5")).
		Server(pkt(0x40, u16(1)))
	s.Client(publish(0, false, "", 0, props(alias(1)), "21.6"))
	s.Client(publish(0, false, "", 0, props(alias(2)), "?"))
	s.Server(publish(0, false, "cmd/x", 0, props(alias(1)), "go"))
	s.Server(publish(0, false, "", 0, props(alias(1)), "again"))
	// Failures and reason strings.
	s.Client(publish(1, false, "forbidden", 2, props(), "x")).Server(pkt(0x40, u16(2), b(0x87), props(reasonStr("acl"))))
	s.Client(publish(1, false, "nobody", 3, props(), "x")).Server(pkt(0x40, u16(3), b(0x10), props()))
	s.Client(publish(2, false, "q2", 4, props(), "x")).Server(pkt(0x50, u16(4), b(0x97)))
	s.Client(publish(2, false, "q2", 5, props(), "y")).Server(pkt(0x50, u16(5)))
	s.Client(pkt(0x62, u16(5))).Server(pkt(0x70, u16(5), b(0x92)))
	s.Client(pkt(0x82, u16(6), props(), str("a/#"), b(1))).Server(pkt(0x90, u16(6), props(), b(1)))
	s.Client(pkt(0xA2, u16(7), props(), str("a/#"), str("zz"))).Server(pkt(0xB0, u16(7), props(), b(0, 0x11)))
	s.Client(pkt(0xF0, b(0x19), props([]byte{0x15, 0, 1, 'X'}))).Server(pkt(0xF0, b(0), props()))
	s.Server(pkt(0xE0, b(0x8B), props(reasonStr("bye"))))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "dev-5", Status: "Success"},
		{Method: "PUBLISH", Path: "sensors/temp", Status: "Success", Req: "21.5"},
		{Method: "PUBLISH", Path: "sensors/temp", OneWay: true, Req: "21.6"},
		{Method: "PUBLISH", OneWay: true, Req: "?"},
		{Method: "PUBLISH", Path: "cmd/x", OneWay: true, Resp: "go"},
		{Method: "PUBLISH", Path: "cmd/x", OneWay: true, Resp: "again"},
		{Method: "PUBLISH", Path: "forbidden", Status: "Not authorized"},
		{Method: "PUBLISH", Path: "nobody", Status: "No matching subscribers"},
		{Method: "PUBLISH", Path: "q2", Status: "Quota exceeded"},
		{Method: "PUBLISH", Path: "q2", Status: "Packet Identifier not found"},
		{Method: "SUBSCRIBE", Path: "a/#", Status: "Granted QoS 1"},
		{Method: "UNSUBSCRIBE", Path: "a/#,zz", Status: "No subscription existed"},
		{Method: "AUTH", Status: "Success"},
		{Method: "DISCONNECT", Status: "Server shutting down", OneWay: true},
	})
	if x := calls[0].Extra; x.Get("version") != "5.0" || x.Get("session_expiry") != int64(3600) || x.Get("topic_alias_maximum") != 10 {
		t.Errorf("CONNECT extra %v", x)
	}
	if x := calls[1].Extra; x.Get("topic_alias") != 1 || x.Get("content_type") != "text" ||
		x.Get("user_properties") == nil || x.Get("user_properties").(proto.Extra).Get("unit") != "C" {
		t.Errorf("PUBLISH extra %v", x)
	}
	if calls[3].Extra.Get("topic_alias_unresolved") != true {
		t.Errorf("unknown alias: %v", calls[3].Extra)
	}
	if calls[6].Extra.Get("reason_string") != "acl" || calls[6].Outcome() != proto.ClientError {
		t.Errorf("denied publish: %v %v", calls[6].Extra, calls[6].Outcome())
	}
	if calls[7].Outcome() != proto.OK || calls[8].Outcome() != proto.ClientError {
		t.Errorf("outcomes %v %v", calls[7].Outcome(), calls[8].Outcome())
	}
	if calls[13].Extra.Get("direction") != "server→client" || calls[13].Extra.Get("reason_string") != "bye" {
		t.Errorf("DISCONNECT %v", calls[13].Extra)
	}
}

// TestConnack: return codes and reason codes, and their outcomes.
func TestConnack(t *testing.T) {
	for _, tc := range []struct {
		level   byte
		connack string
		status  string
		outcome proto.Outcome
	}{
		{3, pkt(0x20, b(0, 0)), "Success", proto.OK},
		{4, pkt(0x20, b(0, 4)), "Bad User Name or Password", proto.ClientError},
		{4, pkt(0x20, b(0, 5)), "Not authorized", proto.ClientError},
		{4, pkt(0x20, b(0, 3)), "Server unavailable", proto.ServerError},
		{4, pkt(0x20, b(0, 1)), "Unsupported Protocol Version", proto.ClientError},
		{5, pkt(0x20, b(0, 0x86), props()), "Bad User Name or Password", proto.ClientError},
		{5, pkt(0x20, b(0, 0x89), props(reasonStr("busy"))), "Server busy", proto.ServerError},
		{5, pkt(0x20, b(0, 0x80), props()), "Unspecified error", proto.ServerError},
		{5, pkt(0x20, b(0, 0x85), props()), "Client Identifier not valid", proto.ClientError},
	} {
		s := newSession(t, nil)
		calls := s.Client(connect(tc.level, "c", "u", "secret-pw")).Server(tc.connack).End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{{Method: "CONNECT", Path: "c", Status: tc.status}})
		if calls[0].Outcome() != tc.outcome {
			t.Errorf("%s: outcome %v, want %v", tc.status, calls[0].Outcome(), tc.outcome)
		}
		if strings.Contains(string(calls[0].AppendJSON(nil)), "secret-pw") {
			t.Errorf("the password is in %s", calls[0].AppendJSON(nil))
		}
	}
}

// TestSplit: a conversation fed whole and byte by byte gives the same
// calls.
func TestSplit(t *testing.T) {
	client := connect(5, "split", "u", "p") + publish(1, false, "t/1", 1, props(alias(3)), "one") +
		publish(0, false, "", 0, props(alias(3)), "two") + pkt(0x82, u16(2), props(), str("t/#"), b(2)) + pkt(0xC0) +
		publish(2, false, "t/2", 3, props(), strings.Repeat("z", 300))
	server := pkt(0x20, b(0, 0), props()) + pkt(0x40, u16(1)) + pkt(0x90, u16(2), props(), b(2)) + pkt(0xD0) +
		pkt(0x50, u16(3))
	client2 := pkt(0x62, u16(3))
	server2 := pkt(0x70, u16(3)) + publish(1, false, "t/9", 4, props(), "down")
	// Calls are emitted when they end: the one-way publish first.
	wants := []prototest.Want{
		{Method: "PUBLISH", Path: "t/1", OneWay: true, Req: "two"},
		{Method: "CONNECT", Path: "split", Status: "Success"},
		{Method: "PUBLISH", Path: "t/1", Status: "Success", Req: "one"},
		{Method: "SUBSCRIBE", Path: "t/#", Status: "Granted QoS 2"},
		{Method: "PINGREQ", Status: "Success"},
		{Method: "PUBLISH", Path: "t/2", Status: "Success"},
		{Method: "PUBLISH", Path: "t/9", Err: "no response", Resp: "down"},
	}
	// The client's questions, the server's answers, the PUBREL, the
	// PUBCOMP: each in pieces of step bytes.
	feed := func(s *prototest.Session, step int) {
		for i, part := range []string{client, server, client2, server2} {
			for len(part) > 0 {
				n := min(step, len(part))
				if i%2 == 0 {
					s.Client(part[:n])
				} else {
					s.Server(part[:n])
				}
				part = part[n:]
			}
		}
	}
	for _, step := range []int{1 << 20, 1, 2, 3, 7} {
		s := newSession(t, nil)
		feed(s, step)
		prototest.Check(t, s.End(proto.EndFIN), wants)
	}
}

// TestGaps: a gap inside a PUBLISH's payload keeps the call (truncated);
// a gap that loses the framing reports what waited and resynchronises.
func TestGaps(t *testing.T) {
	s := newSession(t, nil)
	s.Client(connect(4, "g", "", "")).Server(pkt(0x20, b(0, 0)))
	full := publish(1, false, "big", 5, nil, strings.Repeat("p", 1000))
	s.Client(full[:100])
	s.P.Gap(proto.Client, 800)
	s.Client(full[900:]).Server(pkt(0x40, u16(5)))
	// The server's bytes go missing while a QoS 1 publish waits.
	s.Client(publish(1, false, "lost", 6, nil, "x"))
	s.P.Gap(proto.Server, -1)
	s.Server("\x00\x01garbage") // not a plausible start: skipped
	s.Client(publish(1, false, "after", 7, nil, "y")).Server(pkt(0x40, u16(7)))
	// A gap in the client's fixed header.
	s.Client("\x32")
	s.P.Gap(proto.Client, 10)
	s.Client("junk that is not a packet")
	s.Client(pkt(0xC0)).Server(pkt(0xD0))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "g", Status: "Success"},
		{Method: "PUBLISH", Path: "big", Status: "Success", Err: "truncated: 800 bytes of the packet missing from the capture"},
		{Method: "PUBLISH", Path: "lost", Err: "truncated: the answer may be among bytes missing from the capture"},
		{Method: "PUBLISH", Path: "after", Status: "Success"},
		{Method: "PINGREQ", Status: "Success"},
	})
	if calls[1].Request.BodySize != 1000 || !calls[1].Request.BodyTruncated {
		t.Errorf("gapped payload: size %d truncated %v", calls[1].Request.BodySize, calls[1].Request.BodyTruncated)
	}
}

// TestMalformed: bad fixed headers and fields.
func TestMalformed(t *testing.T) {
	s := newSession(t, nil)
	s.Client(connect(4, "m", "", "")).Server(pkt(0x20, b(0, 0)))
	s.Client(pkt(0x30, str("toolong-topic-claims-more")[:5])) // topic length past the packet
	s.Client("\x30\xff\xff\xff\xff\x01")                      // a 5-byte remaining length
	s.Client(pkt(0xC0)).Server(pkt(0xD0))
	s.Client(pkt(0x83, u16(1), str("a"), b(0))) // SUBSCRIBE with wrong flags
	s.Client(pkt(0xC0)).Server(pkt(0xD0))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "CONNECT", Path: "m", Status: "Success"},
		{Method: "PUBLISH", Err: "malformed: a PUBLISH whose fields overrun its 5 bytes"},
		{Method: "PUBLISH", Err: "malformed: a remaining length of 5 or more bytes"},
		{Method: "PINGREQ", Status: "Success"},
		{Err: "malformed: a fixed header of 0x83"},
		{Method: "PINGREQ", Status: "Success"},
	})
}

// TestDetect: CONNECTs of every level and CONNACKs are recognised, other
// bytes not.
func TestDetect(t *testing.T) {
	p := mqtt.Protocol{}
	for _, tc := range []struct {
		data string
		v    proto.Verdict
		r    proto.Role
	}{
		{connect(3, "a", "", ""), proto.Yes, proto.Client},
		{connect(4, "a", "", ""), proto.Yes, proto.Client},
		{connect(5, "a", "", ""), proto.Yes, proto.Client},
		{connect(4, "a", "", "")[:6], proto.Maybe, proto.RoleUnknown},
		{"\x10", proto.Maybe, proto.RoleUnknown},
		{pkt(0x10, str("MQTT"), b(9, 2), u16(60), str("a")), proto.No, proto.RoleUnknown},
		{pkt(0x20, b(0, 0)), proto.Yes, proto.Server},
		{pkt(0x20, b(1, 0x87), props(reasonStr("no"))), proto.Yes, proto.Server},
		{pkt(0x20, b(0, 9)), proto.No, proto.RoleUnknown},
		{"\x20\x02", proto.Maybe, proto.RoleUnknown},
		{"GET / HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
		{publish(0, false, "a", 0, nil, "x"), proto.No, proto.RoleUnknown},
	} {
		v, r := p.DetectStream([]byte(tc.data), 40000, 1883)
		if v != tc.v || r != tc.r {
			t.Errorf("%q: %v %v, want %v %v", tc.data, v, r, tc.v, tc.r)
		}
	}
}

// TestExpire: a QoS 1 publish unanswered past the timeout surfaces; a
// PINGREQ (answered in order) does not.
func TestExpire(t *testing.T) {
	s := newSession(t, nil)
	s.Client(connect(4, "e", "", "")).Server(pkt(0x20, b(0, 0)))
	s.Client(publish(1, false, "slow", 1, nil, "x")).Client(pkt(0xC0))
	s.P.(proto.Expiring).Expire(s.At().Add(time.Minute))
	if len(s.Rec.Calls) != 2 || s.Rec.Calls[1].Error != "no response: no acknowledgement within the request timeout" {
		t.Fatalf("calls after Expire: %d", len(s.Rec.Calls))
	}
	s.Server(pkt(0xD0))
	prototest.Check(t, s.End(proto.EndFIN), []prototest.Want{
		{Method: "CONNECT", Path: "e", Status: "Success"},
		{Method: "PUBLISH", Path: "slow", Err: "no response: no acknowledgement within the request timeout"},
		{Method: "PINGREQ", Status: "Success"},
	})
}

// TestSummary: no bodies, the same calls.
func TestSummary(t *testing.T) {
	run := func(lim *proto.Limits) []*proto.Call {
		s := newSession(t, lim)
		s.Client(connect(4, "s", "u", "pw")).Server(pkt(0x20, b(0, 0)))
		s.Client(publish(1, false, "t", 1, nil, "payload")).Server(pkt(0x40, u16(1)))
		return s.End(proto.EndFIN)
	}
	full, sum := run(nil), run(&proto.Limits{Summary: true})
	for i := range full {
		if full[i].Method != sum[i].Method || full[i].Status != sum[i].Status || sum[i].Request.Body != "" {
			t.Errorf("call %d differs: %+v", i, sum[i])
		}
	}
}
