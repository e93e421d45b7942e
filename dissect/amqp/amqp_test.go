package amqp_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect/amqp"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(amqp.Protocol{}) }

// Frame builders, as the specification lays the fields out.

const header = "AMQP\x00\x00\x09\x01"

func frame(typ byte, ch uint16, payload []byte) string {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, ch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	return string(append(b, 0xCE))
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func method(ch, class, id uint16, args ...[]byte) string {
	p := binary.BigEndian.AppendUint16(nil, class)
	p = binary.BigEndian.AppendUint16(p, id)
	return frame(1, ch, append(p, cat(args...)...))
}

func sstr(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func lstr(s string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...) }
func u8(v byte) []byte     { return []byte{v} }
func u16(v int) []byte     { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
func u32(v int) []byte     { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func u64(v int) []byte     { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// table builds a field table of string values.
func table(kv ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, sstr(kv[i])...)
		b = append(b, 'S')
		b = append(b, lstr(kv[i+1])...)
	}
	return append(u32(len(b)), b...)
}

// The handshake, as RabbitMQ and a client send it.
func start() string {
	return method(0, 10, 10, u8(0), u8(9), table("product", "RabbitMQ", "version", "3.12.1"), lstr("PLAIN AMQPLAIN"), lstr("en_US"))
}
func startOK(user, pass string) string {
	return method(0, 10, 11, table("product", "test"), sstr("PLAIN"), lstr("\x00"+user+"\x00"+pass), sstr("en_US"))
}
func tune() string              { return method(0, 10, 30, u16(2047), u32(131072), u16(60)) }
func tuneOK() string            { return method(0, 10, 31, u16(2047), u32(131072), u16(60)) }
func open(vhost string) string  { return method(0, 10, 40, sstr(vhost), sstr(""), u8(0)) }
func openOK() string            { return method(0, 10, 41, sstr("")) }
func chOpen(ch uint16) string   { return method(ch, 20, 10, sstr("")) }
func chOpenOK(ch uint16) string { return method(ch, 20, 11, lstr("")) }
func closeM(ch, class uint16, code int, text string, fc, fm int) string {
	return method(ch, class, map[uint16]uint16{10: 50, 20: 40}[class], u16(code), sstr(text), u16(fc), u16(fm))
}
func closeOK(ch, class uint16) string {
	return method(ch, class, map[uint16]uint16{10: 51, 20: 41}[class])
}
func queueDeclare(ch uint16, q string, bits byte) string {
	return method(ch, 50, 10, u16(0), sstr(q), u8(bits), table("x-queue-type", "classic"))
}
func queueDeclareOK(ch uint16, q string) string { return method(ch, 50, 11, sstr(q), u32(3), u32(1)) }
func publish(ch uint16, ex, rk string) string {
	return method(ch, 60, 40, u16(0), sstr(ex), sstr(rk), u8(0))
}

// contentHeader builds a basic content header with content type,
// headers, delivery mode, correlation id and message id.
func contentHeader(ch uint16, size int, ctype string) string {
	p := cat(u16(60), u16(0), u64(size), u16(0x8000|0x2000|0x1000|0x0400|0x0080))
	p = cat(p, sstr(ctype), table("trace", "abc"), u8(2), sstr("corr-1"), sstr("msg-9"))
	return frame(2, ch, p)
}
func body(ch uint16, s string) string { return frame(3, ch, []byte(s)) }
func deliver(ch uint16, tag int, ex, rk string) string {
	return method(ch, 60, 60, sstr("ctag"), u64(tag), u8(0), sstr(ex), sstr(rk))
}
func ack(ch uint16, tag int, multiple bool) string {
	var b byte
	if multiple {
		b = 1
	}
	return method(ch, 60, 80, u64(tag), u8(b))
}

func handshake(s *prototest.Session) {
	s.Client(header).Server(start()).Client(startOK("guest", "s3cret")).Server(tune()).Client(tuneOK(), open("/")).Server(openOK())
}

var handshakeWant = []prototest.Want{
	{Method: "connection.start", Status: "OK"},
	{Method: "connection.tune", Status: "OK"},
	{Method: "connection.open", Path: "/", Status: "OK"},
}

func with(ws ...prototest.Want) []prototest.Want {
	return append(append([]prototest.Want{}, handshakeWant...), ws...)
}

func TestCalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(s *prototest.Session)
		want []prototest.Want
	}{
		{"declare, bind, consume, qos, get, tx, confirm", func(s *prototest.Session) {
			handshake(s)
			s.Client(chOpen(1)).Server(chOpenOK(1))
			s.Client(method(1, 40, 10, u16(0), sstr("orders"), sstr("topic"), u8(0x02), table())).Server(method(1, 40, 11))
			s.Client(queueDeclare(1, "q1", 0x02)).Server(queueDeclareOK(1, "q1"))
			s.Client(method(1, 50, 20, u16(0), sstr("q1"), sstr("orders"), sstr("new.eu"), u8(0), table())).Server(method(1, 50, 21))
			s.Client(method(1, 60, 10, u32(0), u16(10), u8(0))).Server(method(1, 60, 11))
			s.Client(method(1, 60, 20, u16(0), sstr("q1"), sstr(""), u8(0), table())).Server(method(1, 60, 21, sstr("amq.ctag-1")))
			s.Client(method(1, 60, 70, u16(0), sstr("q1"), u8(1))).Server(method(1, 60, 72, sstr("")))
			s.Client(method(1, 90, 10)).Server(method(1, 90, 11))
			s.Client(method(2, 85, 10, u8(0))).Server(method(2, 85, 11))
			s.Client(method(1, 50, 40, u16(0), sstr("q1"), u8(0))).Server(method(1, 50, 41, u32(0)))
			s.Client(method(1, 40, 20, u16(0), sstr("orders"), u8(0))).Server(method(1, 40, 21))
		}, with(
			prototest.Want{Method: "channel.open", Status: "OK"},
			prototest.Want{Method: "exchange.declare", Path: "orders", Status: "OK"},
			prototest.Want{Method: "queue.declare", Path: "q1", Status: "OK"},
			prototest.Want{Method: "queue.bind", Path: "orders/new.eu", Status: "OK"},
			prototest.Want{Method: "basic.qos", Status: "OK"},
			prototest.Want{Method: "basic.consume", Path: "q1", Status: "OK"},
			prototest.Want{Method: "basic.get", Path: "q1", Status: "OK"},
			prototest.Want{Method: "tx.select", Status: "OK"},
			prototest.Want{Method: "confirm.select", Status: "OK"},
			prototest.Want{Method: "queue.delete", Path: "q1", Status: "OK"},
			prototest.Want{Method: "exchange.delete", Path: "orders", Status: "OK"},
		)},
		{"publish with content split across frames and feeds, byte by byte", func(s *prototest.Session) {
			handshake(s)
			all := publish(1, "orders", "new.eu") + contentHeader(1, 11, "text/plain") + body(1, "hello") + body(1, " world")
			for i := range len(all) {
				s.Client(all[i : i+1])
			}
		}, with(prototest.Want{Method: "basic.publish", Path: "orders/new.eu", OneWay: true, Req: "hello world"})},
		{"deliver, ack, nack, reject", func(s *prototest.Session) {
			handshake(s)
			s.Server(deliver(1, 1, "orders", "new.eu"), contentHeader(1, 2, "application/json"), body(1, "{}"))
			s.Client(ack(1, 1, false))
			s.Server(deliver(1, 2, "", "q1") + contentHeader(1, 0, "text/plain"))
			s.Client(method(1, 60, 120, u64(2), u8(2)), method(1, 60, 90, u64(3), u8(0)))
		}, with(
			prototest.Want{Method: "basic.deliver", Path: "orders/new.eu", OneWay: true, Resp: "{}"},
			prototest.Want{Method: "basic.ack", OneWay: true},
			prototest.Want{Method: "basic.deliver", Path: "/q1", OneWay: true},
			prototest.Want{Method: "basic.nack", OneWay: true},
			prototest.Want{Method: "basic.reject", OneWay: true},
		)},
		{"a declare answered by a channel.close", func(s *prototest.Session) {
			handshake(s)
			s.Client(chOpen(1)).Server(chOpenOK(1))
			s.Client(queueDeclare(1, "q1", 0))
			s.Server(closeM(1, 20, 406, "PRECONDITION_FAILED - inequivalent arg 'durable'", 50, 10))
			s.Client(closeOK(1, 20))
			s.Client(chOpen(2)).Server(chOpenOK(2))
			s.Client(closeM(0, 10, 200, "bye", 0, 0)).Server(closeOK(0, 10))
		}, with(
			prototest.Want{Method: "channel.open", Status: "OK"},
			prototest.Want{Method: "queue.declare", Path: "q1", Status: "PRECONDITION_FAILED"},
			prototest.Want{Method: "channel.open", Status: "OK"},
			prototest.Want{Method: "connection.close", Status: "OK"},
		)},
		{"connection.close 403 on login", func(s *prototest.Session) {
			s.Client(header).Server(start()).Client(startOK("guest", "wrong"))
			s.Server(closeM(0, 10, 403, "ACCESS_REFUSED - Login was refused", 0, 0))
		}, []prototest.Want{
			// The login's call takes the refusal as its status.
			{Method: "connection.start", Status: "ACCESS_REFUSED"},
		}},
		{"a login refused by closing the socket (RabbitMQ without authentication_failure_close)", func(s *prototest.Session) {
			s.Client(header).Server(start()).Client(startOK("guest", "wrong"))
		}, []prototest.Want{
			{Method: "connection.start", Err: "no response: the server closed the connection after connection.start-ok instead of tuning it: RabbitMQ does so when it refuses the login"},
		}},
		{"an open refused", func(s *prototest.Session) {
			s.Client(header).Server(start()).Client(startOK("guest", "guest")).Server(tune()).Client(tuneOK(), open("/bad"))
			s.Server(closeM(0, 10, 530, "NOT_ALLOWED - vhost /bad not found", 10, 40))
		}, []prototest.Want{
			{Method: "connection.start", Status: "OK"},
			{Method: "connection.tune", Status: "OK"},
			{Method: "connection.open", Path: "/bad", Status: "NOT_ALLOWED"},
		}},
		{"a publish to a missing exchange: the server closes the channel unprompted", func(s *prototest.Session) {
			handshake(s)
			s.Client(publish(1, "nope", "k"), contentHeader(1, 1, "text/plain"), body(1, "x"))
			s.Server(closeM(1, 20, 404, "NOT_FOUND - no exchange 'nope'", 60, 40))
			s.Client(closeOK(1, 20))
		}, with(
			prototest.Want{Method: "basic.publish", Path: "nope/k", OneWay: true, Req: "x"},
			prototest.Want{Method: "channel.close", Status: "NOT_FOUND"},
		)},
		{"heartbeats are not calls", func(s *prototest.Session) {
			handshake(s)
			hb := frame(8, 0, nil)
			s.Client(hb).Server(hb, hb)
			s.Client(closeM(0, 10, 200, "", 0, 0)).Server(closeOK(0, 10))
		}, with(prototest.Want{Method: "connection.close", Status: "OK"})},
		{"version mismatch", func(s *prototest.Session) {
			s.Client(header).Server("AMQP\x00\x00\x09\x00")
		}, []prototest.Want{{Method: "protocol-header", Path: "AMQP 0-9-1", Status: "VERSION_MISMATCH"}}},
		{"AMQP 1.0", func(s *prototest.Session) {
			s.Client("AMQP\x03\x01\x00\x00", "\x00\x00\x00\x20garbage-sasl-init").Server("AMQP\x03\x01\x00\x00", "\x00\x00\x00\x10mechs")
		}, []prototest.Want{{Method: "protocol-header", Path: "AMQP 1.0 SASL", Status: "OK"}}},
		{"a gap inside a body, and one between frames", func(s *prototest.Session) {
			handshake(s)
			s.Client(publish(1, "ex", "rk"), contentHeader(1, 10, "text/plain"), frame(3, 1, []byte("abcdefghij"))[:13])
			s.P.Gap(proto.Client, 4)
			s.Client("\xce")
			s.Client(queueDeclare(1, "q2", 0))
			s.P.Gap(proto.Server, 20)
			s.Client(queueDeclare(1, "q3", 0))
			s.Server(queueDeclareOK(1, "q3"))
		}, with(
			prototest.Want{Method: "basic.publish", Path: "ex/rk", OneWay: true, Err: "truncated: 4 bytes of the body missing from the capture"},
			prototest.Want{Method: "queue.declare", Path: "q3", Status: "OK"},
			prototest.Want{Method: "queue.declare", Path: "q2", Err: "truncated: the reply may be among bytes missing from the capture"},
		)},
		{"a frame claiming 2^32 bytes", func(s *prototest.Session) {
			handshake(s)
			s.Client("\x01\x00\x01\xff\xff\xff\xff\x00\x3c\x00\x28")
			s.Client(queueDeclare(1, "after", 0)).Server(queueDeclareOK(1, "after"))
		}, with(
			prototest.Want{Err: "malformed: frame of 4294967295 bytes"},
			prototest.Want{Method: "queue.declare", Path: "after", Status: "OK"},
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := prototest.NewSession(t, amqp.Protocol{}, nil)
			tc.run(s)
			calls := s.End(proto.EndFIN)
			prototest.Check(t, calls, tc.want)
		})
	}
}

// TestDetails: properties, the SASL user without its password, reply
// codes and texts, confirms.
func TestDetails(t *testing.T) {
	s := prototest.NewSession(t, amqp.Protocol{}, nil)
	handshake(s)
	s.Client(chOpen(1)).Server(chOpenOK(1))
	s.Client(method(1, 85, 10, u8(0))).Server(method(1, 85, 11))
	for range 3 {
		s.Client(publish(1, "orders", "new.eu"), contentHeader(1, 2, "text/plain"), body(1, "hi"))
	}
	s.Server(ack(1, 2, true), ack(1, 3, false))
	s.Client(queueDeclare(1, "q1", 0))
	s.Server(closeM(1, 20, 406, "PRECONDITION_FAILED - x", 50, 10))
	s.Client(closeOK(1, 20))
	calls := s.End(proto.EndFIN)
	var all strings.Builder
	for _, c := range calls {
		all.Write(c.AppendJSON(nil))
	}
	if strings.Contains(all.String(), "s3cret") {
		t.Errorf("the password is in the calls: %s", all.String())
	}
	if u := calls[0].Extra.Get("user"); u != "guest" {
		t.Errorf("start's user %v", u)
	}
	pub := calls[5]
	for k, v := range map[string]any{"content_type": "text/plain", "delivery_mode": 2, "correlation_id": "corr-1", "message_id": "msg-9", "publish_seq": int64(1)} {
		if got := pub.Extra.Get(k); got != v {
			t.Errorf("publish extra %s = %v (%T), want %v", k, got, got, v)
		}
	}
	if h, ok := pub.Extra.Get("headers").(proto.Extra); !ok || h.Get("trace") != "abc" {
		t.Errorf("publish headers %v", pub.Extra.Get("headers"))
	}
	if n := calls[8].Extra.Get("confirms"); n != int64(2) {
		t.Errorf("a multiple ack confirms %v, want 2", n)
	}
	if n := calls[9].Extra.Get("confirms"); n != int64(1) {
		t.Errorf("a single ack confirms %v, want 1", n)
	}
	d := calls[10]
	if d.Status != "PRECONDITION_FAILED" || d.Extra.Get("reply_code") != 406 || d.Extra.Get("reply_text") != "PRECONDITION_FAILED - x" ||
		d.Extra.Get("close_ok") != true || d.Outcome() != proto.ClientError {
		t.Errorf("declare %s %v %v", d.Status, d.Extra, d.Outcome())
	}
}

// TestDetect: the client's header, AMQP 1.0's, a method frame mid-stream,
// and other protocols' bytes refused.
func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		data string
		v    proto.Verdict
		r    proto.Role
	}{
		{header, proto.Yes, proto.Client},
		{"AMQP\x00\x01\x00\x00", proto.Yes, proto.Client},
		{"AMQ", proto.Maybe, proto.RoleUnknown},
		{"AMQP\x00\x00\x07\x07", proto.No, proto.RoleUnknown},
		{publish(1, "x", "y"), proto.Yes, proto.Client},
		{deliver(1, 1, "x", "y"), proto.Yes, proto.Server},
		{start(), proto.Yes, proto.Server},
		{frame(8, 0, nil) + publish(1, "x", "y"), proto.Yes, proto.Client},
		{publish(1, "x", "y")[:10], proto.Maybe, proto.RoleUnknown},
		{"GET / HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
		{"\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x28\x00", proto.No, proto.RoleUnknown},
		{"*1\r\n$4\r\nPING\r\n", proto.No, proto.RoleUnknown},
	} {
		v, r := amqp.Protocol{}.DetectStream([]byte(tc.data), 40000, 5672)
		if v != tc.v || r != tc.r {
			t.Errorf("%q: %v %v, want %v %v", tc.data, v, r, tc.v, tc.r)
		}
	}
}

// TestSummary: Summary mode gives the same calls without bodies.
func TestSummary(t *testing.T) {
	s := prototest.NewSession(t, amqp.Protocol{}, &proto.Limits{Summary: true})
	handshake(s)
	s.Client(publish(1, "a", "b"), contentHeader(1, 3, "text/plain"), body(1, "abc"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, with(prototest.Want{Method: "basic.publish", Path: "a/b", OneWay: true}))
	if c := calls[3]; c.Request.Body != "" || c.Request.BodySize != 3 {
		t.Errorf("summary publish body %q size %d", c.Request.Body, c.Request.BodySize)
	}
}
