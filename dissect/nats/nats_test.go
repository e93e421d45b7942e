package nats_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/nats"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(nats.Protocol{}) }

const info = `INFO {"server_id":"NABC","server_name":"n1","version":"2.15.3","proto":1,"go":"go1.26.8","host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"auth_required":true}` + "\r\n"

func connect(verbose bool) string {
	return `CONNECT {"verbose":` + strconv.FormatBool(verbose) + `,"pedantic":false,"user":"alice","pass":"s3cret-pw","tls_required":false,"name":"orders","lang":"go","version":"1.56.0","protocol":1,"echo":true,"headers":true,"no_responders":true}` + "\r\n"
}

func pub(subj, reply, payload string) string {
	if reply != "" {
		subj += " " + reply
	}
	return "PUB " + subj + " " + strconv.Itoa(len(payload)) + "\r\n" + payload + "\r\n"
}

func msg(subj, sid, reply, payload string) string {
	if reply != "" {
		sid += " " + reply
	}
	return "MSG " + subj + " " + sid + " " + strconv.Itoa(len(payload)) + "\r\n" + payload + "\r\n"
}

func hmsg(subj, sid, reply, hdr, payload string) string {
	if reply != "" {
		sid += " " + reply
	}
	return "HMSG " + subj + " " + sid + " " + strconv.Itoa(len(hdr)) + " " + strconv.Itoa(len(hdr)+len(payload)) + "\r\n" + hdr + payload + "\r\n"
}

func hpub(subj, reply, hdr, payload string) string {
	if reply != "" {
		subj += " " + reply
	}
	return "HPUB " + subj + " " + strconv.Itoa(len(hdr)) + " " + strconv.Itoa(len(hdr)+len(payload)) + "\r\n" + hdr + payload + "\r\n"
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		in   string
		want proto.Verdict
		role proto.Role
	}{
		{info, proto.Yes, proto.Server},
		{"INFO {}", proto.Yes, proto.Server},
		{"IN", proto.Maybe, proto.Server},
		{"INFO", proto.Maybe, proto.Server},
		{connect(false), proto.Yes, proto.Client},
		{"connect {", proto.Yes, proto.Client},
		{"CONNECT ", proto.Maybe, proto.Client},
		{"INFO\r\n", proto.No, proto.RoleUnknown},    // Redis' inline INFO
		{"INFOx {", proto.No, proto.RoleUnknown},     // not the operation
		{"PUB a 1\r\n", proto.No, proto.RoleUnknown}, // mid-connection: not claimed
		{"GET / HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
		{"CONNECT example.com:443 HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
	} {
		v, r := nats.Protocol{}.DetectStream([]byte(c.in), 40000, 4222)
		if v != c.want || (v != proto.No && r != c.role) {
			t.Errorf("%q: %v %v, want %v %v", c.in, v, r, c.want, c.role)
		}
	}
}

func TestSession(t *testing.T) {
	ok := "OK"
	for _, tc := range []struct {
		name   string
		run    func(s *prototest.Session)
		want   []prototest.Want
		check  func(t *testing.T, calls []*proto.Call)
		limits *proto.Limits
	}{
		{
			name: "connect, publish, subscribe, unsubscribe, ping",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("SUB orders.* workers 1\r\n", pub("orders.new", "", `{"id":1}`), "UNSUB 1\r\n", "PING\r\n")
				s.Server("PONG\r\n")
				s.Server("PING\r\n")
				s.Client("PONG\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "SUB", Path: "orders.*", OneWay: true},
				{Method: "PUB", Path: "orders.new", OneWay: true, Req: `{"id":1}`},
				{Method: "UNSUB", Path: "orders.*", OneWay: true},
				{Method: "PING", Status: ok},
				{Method: "PING", Status: ok},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				c := calls[0]
				if c.Extra.Get("server_name") != "n1" || c.Extra.Get("server_version") != "2.15.3" || c.Extra.Get("max_payload") != int64(1048576) ||
					c.Extra.Get("auth_required") != true || c.Extra.Get("user") != "alice" || c.Extra.Get("lang") != "go" || c.Extra.Get("auth") != "user/password" {
					t.Errorf("CONNECT extra %v", c.Extra)
				}
				if strings.Contains(c.Request.Body, "s3cret") || !strings.Contains(c.Request.Body, `"pass":"[redacted]"`) {
					t.Errorf("CONNECT body %s", c.Request.Body)
				}
				if calls[2].Extra.Get("queue") != "workers" || calls[2].Extra.Get("sid") != "1" {
					t.Errorf("SUB extra %v", calls[2].Extra)
				}
				if calls[6].Extra.Get("direction") != "server→client" {
					t.Errorf("the server's PING: %v", calls[6].Extra)
				}
			},
		},
		{
			name: "verbose: every operation answered",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(true), "PING\r\n")
				s.Server("+OK\r\nPONG\r\n")
				s.Client("SUB a 1\r\n", pub("a", "", "x"), pub("secret.x", "", "y"), "UNSUB 1 5\r\n")
				s.Server("+OK\r\n+OK\r\n-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\n+OK\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "SUB", Path: "a", Status: ok},
				{Method: "PUB", Path: "a", Status: ok, Req: "x"},
				{Method: "PUB", Path: "secret.x", Status: `Permissions Violation for Publish to "secret.x"`},
				{Method: "UNSUB", Path: "a", Status: ok},
			},
		},
		{
			name: "request/reply, requester's side",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("SUB _INBOX.abc.* 1\r\n", pub("svc.echo", "_INBOX.abc.1", "ping"))
				s.Client(pub("svc.none", "_INBOX.abc.2", "q"))
				s.Client(pub("svc.slow", "_INBOX.abc.3", "q"))
				s.Server(msg("_INBOX.abc.1", "1", "", "pong"))
				s.Server(hmsg("_INBOX.abc.2", "1", "", "NATS/1.0 503\r\n\r\n", ""))
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				// The one-way SUB is held for an -ERR that would name it.
				{Method: "PUB", Path: "svc.echo", Status: ok, Req: "ping", Resp: "pong"},
				{Method: "PUB", Path: "svc.none", Status: nats.StatusNoResponders},
				{Method: "SUB", Path: "_INBOX.abc.*", OneWay: true},
				{Method: "PUB", Path: "svc.slow", Err: "no response"},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				if calls[2].Extra.Get("reply_to") != "_INBOX.abc.1" || calls[2].LatencyNS != int64(3*time.Millisecond) {
					t.Errorf("request: latency %d, extra %v", calls[2].LatencyNS, calls[2].Extra)
				}
				if calls[3].Outcome() != proto.ServerError {
					t.Errorf("no responders: outcome %v", calls[3].Outcome())
				}
			},
		},
		{
			name: "request/reply, responder's side",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("SUB svc.echo workers 7\r\n")
				s.Server(msg("svc.echo", "7", "_INBOX.abc.1", "ping"))
				s.Client(pub("_INBOX.abc.1", "", "pong"))
				s.Server(msg("svc.echo", "7", "_INBOX.abc.2", "ignored"))
				s.Server(msg("svc.echo", "7", "", "plain"))
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "MSG", Path: "svc.echo", Status: ok, Req: "ping", Resp: "pong"},
				{Method: "MSG", Path: "svc.echo", OneWay: true, Resp: "plain"},
				{Method: "SUB", Path: "svc.echo", OneWay: true},
				{Method: "MSG", Path: "svc.echo", OneWay: true, Resp: "ignored"},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				if calls[2].Extra.Get("direction") != "server→client" || calls[2].Extra.Get("reply_to") != "_INBOX.abc.1" {
					t.Errorf("served: %v", calls[2].Extra)
				}
			},
		},
		{
			name: "headers",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client(hpub("events", "", "NATS/1.0\r\nTrace-Id: abc\r\nX-K: 1\r\nX-K: 2\r\n\r\n", "body"))
				s.Server(hmsg("events", "1", "", "NATS/1.0\r\nTrace-Id: abc\r\n\r\n", "body"))
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "HMSG", Path: "events", OneWay: true, Resp: "body"},
				{Method: "HPUB", Path: "events", OneWay: true, Req: "body"},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				if h := calls[3].Request.Headers; h.Get("trace-id") != "abc" || h.Get("x-k") != "1, 2" || calls[3].Request.BodySize != 4 {
					t.Errorf("HPUB headers %v size %d", h, calls[3].Request.BodySize)
				}
				if calls[2].Response.Headers.Get("trace-id") != "abc" {
					t.Errorf("HMSG headers %v", calls[2].Response.Headers)
				}
			},
		},
		{
			name: "wrong password",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("-ERR 'Authorization Violation'\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: "Authorization Violation"},
				{Method: "PING", Err: "no response: the server closed the connection after -ERR 'Authorization Violation'"},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				if calls[0].Outcome() != proto.ClientError {
					t.Errorf("outcome %v", calls[0].Outcome())
				}
			},
		},
		{
			name: "permissions violations, not verbose",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client(pub("a", "", "1"), pub("secret.x", "", "2"), "SUB secret.> 2\r\n", pub("b", "", "3"))
				s.Server("-ERR 'Permissions Violation for Publish to \"secret.x\"'\r\n")
				s.Server("-ERR 'Permissions Violation for Subscription to \"secret.>\"'\r\n")
				s.Server("-ERR 'Permissions Violation for Publish to \"gone\"'\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "PUB", Path: "secret.x", Status: `Permissions Violation for Publish to "secret.x"`},
				{Method: "SUB", Path: "secret.>", Status: `Permissions Violation for Subscription to "secret.>"`},
				{Method: "-ERR", Status: `Permissions Violation for Publish to "gone"`, OneWay: true},
				{Method: "PUB", Path: "a", OneWay: true},
				{Method: "PUB", Path: "b", OneWay: true},
			},
		},
		{
			name: "maximum payload violation",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client(pub("big", "", strings.Repeat("x", 5000)))
				s.Server("-ERR 'Maximum Payload Violation'\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "PUB", Path: "big", Status: "Maximum Payload Violation"},
			},
			check: func(t *testing.T, calls []*proto.Call) {
				if calls[2].Request.BodySize != 5000 || !calls[2].Request.BodyTruncated {
					t.Errorf("body %d truncated %v", calls[2].Request.BodySize, calls[2].Request.BodyTruncated)
				}
			},
		},
		{
			name: "stale connection and an unknown operation",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("FOO bar\r\n")
				s.Server("-ERR 'Unknown Protocol Operation'\r\n")
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "", Err: "malformed: an unknown operation"},
				{Method: "-ERR", Status: "Unknown Protocol Operation", OneWay: true},
			},
		},
		{
			name:   "a long line is malformed; the side reads on at the next operation",
			limits: &proto.Limits{MaxHeaderBytes: 128},
			run: func(s *prototest.Session) {
				s.Server(info[:100] + "}\r\n")
				s.Client(connect(false)[:60] + `"x":"` + strings.Repeat("y", 200) + "\"}\r\n")
				s.Client(strings.Repeat("z", 300), "\r\n", pub("after", "", "ok"))
			},
			want: []prototest.Want{
				{Err: "malformed: a line longer than 128 bytes"},
				{Method: "PUB", Path: "after", OneWay: true, Req: "ok"},
			},
		},
		{
			name: "a payload claiming 2^63 bytes",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("PUB huge 9223372036854775807\r\nxxxx\r\n", pub("next", "", "1"))
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "PUB", Err: "malformed: a payload of 9223372036854775807 bytes claimed, above the 64 MiB any server allows"},
				{Method: "PUB", Path: "next", OneWay: true},
			},
		},
		{
			name: "a gap inside a payload, then a gap between lines",
			run: func(s *prototest.Session) {
				s.Server(info)
				s.Client(connect(false), "PING\r\n")
				s.Server("PONG\r\n")
				s.Client("PUB a 10\r\n01")
				s.P.Gap(proto.Client, 4)
				s.Client("6789\r\n")
				s.Client(pub("req", "_INBOX.1", "q"))
				s.P.Gap(proto.Server, 50)
				s.Server(msg("x", "1", "", "y"))
			},
			want: []prototest.Want{
				{Method: "CONNECT", Path: "orders", Status: ok},
				{Method: "PING", Status: ok},
				{Method: "MSG", Path: "x", OneWay: true},
				{Method: "PUB", Path: "a", Err: "truncated: 4 bytes of the payload missing from the capture"},
				{Method: "PUB", Path: "req", Err: "truncated: no reply seen: it may be among bytes missing from the capture"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := prototest.NewSession(t, nats.Protocol{}, tc.limits)
			tc.run(s)
			calls := s.End(proto.EndFIN)
			prototest.Check(t, calls, tc.want)
			if tc.check != nil && !t.Failed() {
				tc.check(t, calls)
			}
		})
	}
}

// TestByteByByte: the same calls whatever the segmentation.
func TestByteByByte(t *testing.T) {
	client := connect(false) + "PING\r\n" + "SUB _INBOX.a.* 1\r\n" + pub("svc", "_INBOX.a.1", "hello") +
		hpub("ev", "", "NATS/1.0\r\nA: b\r\n\r\n", "p") + "PING\r\n"
	server := info + "PONG\r\n" + msg("_INBOX.a.1", "1", "", "world") + "PONG\r\n"
	whole := prototest.NewSession(t, nats.Protocol{}, nil)
	whole.Server(info)
	whole.Client(client)
	whole.Server(server[len(info):])
	want := whole.End(proto.EndFIN)

	rec := &prototest.Recorder{}
	p := nats.Protocol{}.NewStream(rec, &proto.Limits{})
	at := time.Unix(1700000000, 0)
	for i := range len(info) {
		p.Feed(proto.Server, []byte{info[i]}, at)
	}
	for i := range len(client) {
		p.Feed(proto.Client, []byte{client[i]}, at)
	}
	rest := server[len(info):]
	for i := range len(rest) {
		p.Feed(proto.Server, []byte{rest[i]}, at)
	}
	p.End(proto.EndFIN, at)
	if len(rec.Calls) != len(want) {
		t.Fatalf("%d calls byte by byte, %d whole", len(rec.Calls), len(want))
	}
	for i, c := range rec.Calls {
		w := want[i]
		if c.Method != w.Method || c.Path != w.Path || c.Status != w.Status || c.Error != w.Error || c.Request.Body != w.Request.Body ||
			c.Response.Body != w.Response.Body || c.Request.Headers.Get("a") != w.Request.Headers.Get("a") {
			t.Errorf("call %d: %s %s %s %q, whole: %s %s %s %q", i, c.Method, c.Path, c.Status, c.Error, w.Method, w.Path, w.Status, w.Error)
		}
	}
	if len(want) != 6 || want[2].Status != "OK" || want[2].Response.Body != "world" {
		for _, c := range want {
			t.Logf("%s %s %s %q", c.Method, c.Path, c.Status, c.Error)
		}
		t.Errorf("want CONNECT, PING, the request answered, SUB and HPUB (read before the last PING), PING")
	}
}

// TestSummary: no headers or bodies, the same calls otherwise.
func TestSummary(t *testing.T) {
	run := func(lim *proto.Limits) []*proto.Call {
		s := prototest.NewSession(t, nats.Protocol{}, lim)
		s.Server(info)
		s.Client(connect(false), "PING\r\n", pub("svc", "_INBOX.a.1", "hello"), pub("svc", "_INBOX.a.2", "hello"))
		s.Server("PONG\r\n", msg("_INBOX.a.1", "1", "", "world"), hmsg("_INBOX.a.2", "1", "", "NATS/1.0 503\r\n\r\n", ""))
		return s.End(proto.EndFIN)
	}
	full, sum := run(nil), run(&proto.Limits{Summary: true})
	if len(full) != len(sum) {
		t.Fatalf("%d calls, %d in summary", len(full), len(sum))
	}
	for i := range full {
		if full[i].Status != sum[i].Status || full[i].Method != sum[i].Method || sum[i].Request.Body != "" || sum[i].Response.Body != "" ||
			full[i].Request.BodySize != sum[i].Request.BodySize {
			t.Errorf("call %d: full %s %s, summary %s %s body %q", i, full[i].Method, full[i].Status, sum[i].Method, sum[i].Status, sum[i].Request.Body)
		}
	}
	if full[3].Status != nats.StatusNoResponders {
		t.Errorf("status %q", full[3].Status)
	}
}

// TestExpire: a request unanswered past the timeout is reported before
// the connection ends; one-way operations held go out.
func TestExpire(t *testing.T) {
	rec := &prototest.Recorder{}
	p := nats.Protocol{}.NewStream(rec, &proto.Limits{StreamRequestTimeout: time.Minute})
	at := time.Unix(1700000000, 0)
	p.Feed(proto.Server, []byte(info), at)
	p.Feed(proto.Client, []byte(connect(false)+"PING\r\n"), at)
	p.Feed(proto.Server, []byte("PONG\r\n"), at)
	p.Feed(proto.Client, []byte(pub("svc", "_INBOX.x", "q")+pub("plain", "", "p")), at)
	p.(proto.Expiring).Expire(at.Add(-time.Minute)) // a moment after at
	if len(rec.Calls) != 2 {
		t.Fatalf("%d calls before the timeout", len(rec.Calls))
	}
	p.(proto.Expiring).Expire(at.Add(time.Millisecond)) // a minute later
	if len(rec.Calls) != 4 || rec.Calls[2].Path != "svc" || rec.Calls[2].Error != "no response: no reply within the request timeout" ||
		rec.Calls[3].Path != "plain" || !rec.Calls[3].OneWay {
		for _, c := range rec.Calls {
			t.Logf("%s %s %q", c.Method, c.Path, c.Error)
		}
		t.Fatal("want the request expired and the one-way publish out")
	}
}
