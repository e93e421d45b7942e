package redis_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/redis"
)

func init() { proto.Register(redis.Protocol{}) }

// cmd encodes a command as redis-cli sends it.
func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func bulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

type session struct {
	t   *testing.T
	rec *prototest.Recorder
	p   proto.StreamParser
	ms  int
}

func newSession(t *testing.T, lim *proto.Limits) *session {
	if lim == nil {
		lim = &proto.Limits{}
	}
	rec := &prototest.Recorder{}
	return &session{t: t, rec: rec, p: redis.Protocol{}.NewStream(rec, lim)}
}

func (s *session) at() time.Time {
	s.ms++
	return time.Unix(1700000000, 0).Add(time.Duration(s.ms) * time.Millisecond)
}

func (s *session) client(data string) *session {
	s.p.Feed(proto.Client, []byte(data), s.at())
	return s
}
func (s *session) server(data string) *session {
	s.p.Feed(proto.Server, []byte(data), s.at())
	return s
}
func (s *session) end() []*proto.Call {
	s.p.End(proto.EndFIN, s.at())
	for i, c := range s.rec.Calls {
		prototest.CheckJSON(s.t, i, c)
	}
	return s.rec.Calls
}

// want is what a test checks of a call.
type want struct {
	method, path, status, err string
	oneWay                    bool
	req, resp                 string // bodies, when set
}

func check(t *testing.T, calls []*proto.Call, wants []want) {
	t.Helper()
	if len(calls) != len(wants) {
		for _, c := range calls {
			t.Logf("  %s %q %s err=%q oneway=%v req=%q resp=%q", c.Method, c.Path, c.Status, c.Error, c.OneWay, c.Request.Body, c.Response.Body)
		}
		t.Fatalf("%d calls, want %d", len(calls), len(wants))
	}
	for i, w := range wants {
		c := calls[i]
		if c.Method != w.method || c.Path != w.path || c.Status != w.status || c.Error != w.err || c.OneWay != w.oneWay {
			t.Errorf("call %d: %s %q %q err=%q oneway=%v, want %s %q %q err=%q oneway=%v", i, c.Method, c.Path, c.Status, c.Error, c.OneWay,
				w.method, w.path, w.status, w.err, w.oneWay)
		}
		if w.req != "" && c.Request.Body != w.req {
			t.Errorf("call %d: request body %q, want %q", i, c.Request.Body, w.req)
		}
		if w.resp != "" && c.Response.Body != w.resp {
			t.Errorf("call %d: response body %q, want %q", i, c.Response.Body, w.resp)
		}
		if c.Proto != "redis" {
			t.Errorf("call %d: proto %q", i, c.Proto)
		}
	}
}

func TestCommands(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("SET", "user:1", "alice")).server("+OK\r\n")
	s.client(cmd("get", "user:1")).server(bulk("alice"))
	s.client(cmd("GET", "missing")).server("$-1\r\n")
	s.client(cmd("LPUSH", "user:1", "x")).server("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
	s.client(cmd("FOO")).server("-ERR unknown command 'FOO', with args beginning with: \r\n")
	s.client(cmd("CONFIG", "GET", "maxmemory")).server("*2\r\n" + bulk("maxmemory") + bulk("0"))
	s.client(cmd("CLIENT", "SETNAME", "app1")).server("+OK\r\n")
	s.client(cmd("INCR", "n")).server(":42\r\n")
	s.client(cmd("OBJECT", "ENCODING", "user:1")).server(bulk("embstr"))
	s.client(cmd("EVAL", "return 1", "1", "k1")).server(":1\r\n")
	s.client(cmd("SET", "big", "x")).server("-OOM command not allowed when used memory > 'maxmemory'.\r\n")
	s.client(cmd("XREAD", "COUNT", "2", "STREAMS", "s1", "0")).server("*-1\r\n")
	calls := s.end()
	check(t, calls, []want{
		{method: "SET", path: "user:1", status: "OK", req: "SET user:1 alice", resp: "OK"},
		{method: "GET", path: "user:1", status: "OK", req: "get user:1", resp: "alice"},
		{method: "GET", path: "missing", status: "OK", resp: "(nil)"},
		{method: "LPUSH", path: "user:1", status: "WRONGTYPE", resp: "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{method: "FOO", status: "ERR"},
		{method: "CONFIG GET", status: "OK", req: "CONFIG GET maxmemory", resp: `["maxmemory","0"]`},
		{method: "CLIENT SETNAME", status: "OK"},
		{method: "INCR", path: "n", status: "OK", resp: "42"},
		{method: "OBJECT ENCODING", path: "user:1", status: "OK"},
		{method: "EVAL", path: "k1", status: "OK", req: `EVAL "return 1" 1 k1`},
		{method: "SET", path: "big", status: "OOM"},
		{method: "XREAD", path: "s1", status: "OK", resp: "(nil)"},
	})
	if got := calls[7].Extra.Get("client_name"); got != "app1" {
		t.Errorf("client_name after CLIENT SETNAME: %v", got)
	}
	outcomes := map[string]proto.Outcome{"OK": proto.OK, "WRONGTYPE": proto.ClientError, "ERR": proto.ClientError, "OOM": proto.ServerError}
	for _, c := range calls {
		if o, ok := outcomes[c.Status]; ok && c.Outcome() != o {
			t.Errorf("%s %s: outcome %v, want %v", c.Method, c.Status, c.Outcome(), o)
		}
	}
	if calls[0].LatencyNS != int64(time.Millisecond) {
		t.Errorf("latency %d", calls[0].LatencyNS)
	}
	if calls[5].Extra.Get("elements") != int64(2) || calls[5].Extra.Get("reply") != "array" {
		t.Errorf("CONFIG GET extra %v", calls[5].Extra)
	}
}

// TestPipelineSplit: pipelined commands and replies, fed whole and split
// at every byte, give the same calls.
func TestPipelineSplit(t *testing.T) {
	reqs := cmd("SET", "a", "1") + cmd("GET", "a") + "PING\r\n" + cmd("MGET", "a", "b") + cmd("HGETALL", "h")
	resps := "+OK\r\n" + bulk("1") + "+PONG\r\n" + "*2\r\n" + bulk("1") + "$-1\r\n" + "*4\r\n" + bulk("f1") + bulk("v1") + bulk("f2") + ":7\r\n"
	wants := []want{
		{method: "SET", path: "a", status: "OK"},
		{method: "GET", path: "a", status: "OK", resp: "1"},
		{method: "PING", status: "OK", resp: "PONG", req: "PING"},
		{method: "MGET", path: "a", status: "OK", resp: `["1",null]`},
		{method: "HGETALL", path: "h", status: "OK", resp: `["f1","v1","f2",7]`},
	}
	whole := newSession(t, nil).client(reqs).server(resps).end()
	check(t, whole, wants)
	for _, step := range []int{1, 2, 3, 7} {
		s := newSession(t, nil)
		for i := 0; i < len(reqs); i += step {
			s.client(reqs[i:min(i+step, len(reqs))])
		}
		for i := 0; i < len(resps); i += step {
			s.server(resps[i:min(i+step, len(resps))])
		}
		check(t, s.end(), wants)
	}
	if whole[2].Extra.Get("inline") != true {
		t.Errorf("inline PING not marked: %v", whole[2].Extra)
	}
}

func TestTransaction(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("MULTI")).server("+OK\r\n")
	s.client(cmd("SET", "k", "v")).server("+QUEUED\r\n")
	s.client(cmd("INCR", "k")).server("+QUEUED\r\n")
	s.client(cmd("EXEC")).server("*2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n")
	s.client(cmd("MULTI")).server("+OK\r\n")
	s.client(cmd("SET", "k2", "v")).server("+QUEUED\r\n")
	s.client(cmd("BADCMD")).server("-ERR unknown command 'BADCMD'\r\n")
	s.client(cmd("EXEC")).server("-EXECABORT Transaction discarded because of previous errors.\r\n")
	s.client(cmd("MULTI")).server("+OK\r\n")
	s.client(cmd("SET", "k3", "v")).server("+QUEUED\r\n")
	s.client(cmd("DISCARD")).server("+OK\r\n")
	s.client(cmd("WATCH", "k")).server("+OK\r\n")
	s.client(cmd("MULTI")).server("+OK\r\n")
	s.client(cmd("SET", "k", "w")).server("+QUEUED\r\n")
	s.client(cmd("EXEC")).server("*-1\r\n")
	calls := s.end()
	check(t, calls, []want{
		{method: "MULTI", status: "OK"},
		{method: "SET", path: "k", status: "OK"},
		{method: "INCR", path: "k", status: "ERR"},
		{method: "EXEC", status: "OK"},
		{method: "MULTI", status: "OK"},
		{method: "BADCMD", status: "ERR"},
		{method: "SET", path: "k2", status: "OK"},
		{method: "EXEC", status: "EXECABORT"},
		{method: "MULTI", status: "OK"},
		{method: "SET", path: "k3", status: "OK"},
		{method: "DISCARD", status: "OK"},
		{method: "WATCH", path: "k", status: "OK"},
		{method: "MULTI", status: "OK"},
		{method: "SET", path: "k", status: "OK"},
		{method: "EXEC", status: "OK"},
	})
	for i, w := range map[int]string{1: "exec", 2: "exec", 6: "aborted: EXECABORT", 9: "discarded", 13: "aborted: a watched key changed"} {
		if got := calls[i].Extra.Get("transaction"); got != w {
			t.Errorf("call %d (%s): transaction %v, want %q", i, calls[i].Method, got, w)
		}
	}
}

func TestPubSubRESP2(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("SUBSCRIBE", "chan1", "chan2"))
	s.server("*3\r\n" + bulk("subscribe") + bulk("chan1") + ":1\r\n")
	s.server("*3\r\n" + bulk("subscribe") + bulk("chan2") + ":2\r\n")
	s.client(cmd("PSUBSCRIBE", "news.*"))
	s.server("*3\r\n" + bulk("psubscribe") + bulk("news.*") + ":3\r\n")
	s.server("*3\r\n" + bulk("message") + bulk("chan1") + bulk("hello"))
	s.server("*4\r\n" + bulk("pmessage") + bulk("news.*") + bulk("news.sport") + bulk("goal"))
	s.client(cmd("PING")).server("*2\r\n" + bulk("pong") + bulk(""))
	s.client(cmd("UNSUBSCRIBE"))
	s.server("*3\r\n" + bulk("unsubscribe") + bulk("chan1") + ":2\r\n")
	s.server("*3\r\n" + bulk("unsubscribe") + bulk("chan2") + ":1\r\n")
	s.client(cmd("PUNSUBSCRIBE", "news.*"))
	s.server("*3\r\n" + bulk("punsubscribe") + bulk("news.*") + ":0\r\n")
	// Not subscribed any more: an array that starts "message" is a reply.
	s.client(cmd("LRANGE", "l", "0", "-1")).server("*3\r\n" + bulk("message") + bulk("a") + bulk("b"))
	calls := s.end()
	check(t, calls, []want{
		{method: "SUBSCRIBE", path: "chan1", status: "OK"},
		{method: "PSUBSCRIBE", path: "news.*", status: "OK"},
		{method: "MESSAGE", path: "chan1", oneWay: true, resp: "hello"},
		{method: "PMESSAGE", path: "news.sport", oneWay: true, resp: "goal"},
		{method: "PING", status: "OK", resp: `["pong",""]`},
		{method: "UNSUBSCRIBE", status: "OK"},
		{method: "PUNSUBSCRIBE", path: "news.*", status: "OK"},
		{method: "LRANGE", path: "l", status: "OK"},
	})
	if calls[0].Extra.Get("confirmations") != int64(2) || calls[5].Extra.Get("confirmations") != int64(2) {
		t.Errorf("confirmations: %v %v", calls[0].Extra, calls[5].Extra)
	}
	if calls[3].Extra.Get("pattern") != "news.*" || calls[2].Outcome() != proto.OneWay {
		t.Errorf("pmessage %v, outcome %v", calls[3].Extra, calls[2].Outcome())
	}
}

func TestRESP3(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("HELLO", "3", "AUTH", "default", "hunter2", "SETNAME", "svc"))
	s.server("%3\r\n" + bulk("server") + bulk("redis") + bulk("proto") + ":3\r\n" + bulk("modules") + "*0\r\n")
	s.client(cmd("HGETALL", "h")).server("%2\r\n" + bulk("a") + ":1\r\n" + bulk("b") + "_\r\n")
	s.client(cmd("SMEMBERS", "s")).server("~2\r\n+x\r\n+y\r\n")
	s.client(cmd("ZSCORE", "z", "m")).server(",3.5\r\n")
	s.client(cmd("EXISTS", "k")).server("#t\r\n")
	s.client(cmd("GET", "n")).server("_\r\n")
	s.client(cmd("SUBSCRIBE", "c")).server(">3\r\n" + bulk("subscribe") + bulk("c") + ":1\r\n")
	s.server(">3\r\n" + bulk("message") + bulk("c") + bulk("payload"))
	// A reply with an attribute before it.
	s.client(cmd("CLIENT", "TRACKINGINFO")).server("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n+OK\r\n")
	s.client(cmd("FCALL", "f", "0")).server("!21\r\nSYNTAX invalid syntax\r\n")
	s.client(cmd("INFO")).server("=15\r\ntxt:Some string\r\n")
	calls := s.end()
	check(t, calls, []want{
		{method: "HELLO", status: "OK", req: "HELLO 3 AUTH [redacted] [redacted] SETNAME svc"},
		{method: "HGETALL", path: "h", status: "OK", resp: `{"a":1,"b":null}`},
		{method: "SMEMBERS", path: "s", status: "OK", resp: `["x","y"]`},
		{method: "ZSCORE", path: "z", status: "OK", resp: "3.5"},
		{method: "EXISTS", path: "k", status: "OK"},
		{method: "GET", path: "n", status: "OK", resp: "(nil)"},
		{method: "SUBSCRIBE", path: "c", status: "OK"},
		{method: "MESSAGE", path: "c", oneWay: true, resp: "payload"},
		{method: "CLIENT TRACKINGINFO", status: "OK", resp: "OK"},
		{method: "FCALL", status: "SYNTAX"},
		{method: "INFO", status: "OK", resp: "txt:Some string"},
	})
	if calls[1].Extra.Get("client_name") != "svc" {
		t.Errorf("HELLO SETNAME: %v", calls[1].Extra)
	}
}

// TestSecrets: passwords in commands are never kept.
func TestSecrets(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("AUTH", "s3cret-1")).server("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	s.client(cmd("AUTH", "admin", "s3cret-2")).server("+OK\r\n")
	s.client("AUTH s3cret-3\r\n").server("+OK\r\n")
	s.client(cmd("CONFIG", "SET", "requirepass", "s3cret-4", "maxmemory", "10mb")).server("+OK\r\n")
	s.client(cmd("ACL", "SETUSER", "bob", "on", ">s3cret-5", "~*")).server("+OK\r\n")
	s.client(cmd("MIGRATE", "10.0.0.1", "6379", "", "0", "5000", "AUTH2", "u", "s3cret-6", "KEYS", "a")).server("+NOKEY\r\n")
	calls := s.end()
	check(t, calls, []want{
		{method: "AUTH", status: "WRONGPASS", req: "AUTH [redacted]"},
		{method: "AUTH", status: "OK", req: "AUTH [redacted] [redacted]"},
		{method: "AUTH", status: "OK", req: "AUTH [redacted]"},
		{method: "CONFIG SET", status: "OK", req: "CONFIG SET requirepass [redacted] maxmemory 10mb"},
		{method: "ACL SETUSER", status: "OK", req: "ACL SETUSER bob on [redacted] ~*"},
		{method: "MIGRATE", status: "OK", req: `MIGRATE 10.0.0.1 6379 "" 0 5000 AUTH2 [redacted] [redacted] KEYS a`},
	})
	for _, c := range calls {
		if j := c.AppendJSON(nil); bytes.Contains(j, []byte("s3cret")) {
			t.Errorf("a secret in %s", j)
		}
	}
}

// TestGaps: bytes missing inside a value are counted; elsewhere the side
// finds the next message.
func TestGaps(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("SET", "k", strings.Repeat("v", 100))[:30])
	s.p.Gap(proto.Client, 50)
	s.client(strings.Repeat("v", 100-50-(30-len("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n"))) + "\r\n")
	s.server("+OK\r\n")
	s.client(cmd("GET", "a")[:5])
	s.p.Gap(proto.Client, -1)
	s.client("garbage\r\n" + cmd("GET", "b"))
	s.server("$1\r\nx\r\n") // the reply to the GET cut by the gap
	s.server(bulk("y"))
	s.client(cmd("GET", "c"))
	s.p.Gap(proto.Server, 100)
	s.server("ue\r\n" + bulk("zz")) // resynchronised only at a segment's start
	s.client(cmd("GET", "d")).server(bulk("dd"))
	calls := s.end()
	check(t, calls, []want{
		{method: "SET", path: "k", status: "OK", err: "truncated: 50 bytes of the command missing from the capture"},
		{method: "", status: "OK", err: "truncated: bytes of the command missing from the capture"},
		{method: "GET", path: "b", status: "OK", resp: "y"},
		{method: "GET", path: "c", err: "truncated: the reply may be among 100 bytes missing from the capture"},
		{method: "GET", path: "d", status: "OK", resp: "dd"},
	})
}

func TestEnd(t *testing.T) {
	s := newSession(t, nil)
	s.client(cmd("BLPOP", "q", "0"))
	s.client(cmd("MULTI")).client(cmd("SET", "a", "b"))
	s.client(cmd("GET", "partial")[:9])
	calls := s.end()
	check(t, calls, []want{
		{method: "", err: "truncated: connection fin during the command"},
		{method: "BLPOP", path: "q", err: "no response"},
		{method: "MULTI", err: "no response"},
		{method: "SET", path: "a", err: "no response"},
	})
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		data string
		v    proto.Verdict
		r    proto.Role
	}{
		{cmd("GET", "a"), proto.Yes, proto.Client},
		{"*2\r\n$3\r\n", proto.Maybe, proto.RoleUnknown},
		{"*2", proto.Maybe, proto.RoleUnknown},
		{"*2\r\n$3\r\n123", proto.No, proto.RoleUnknown},
		{"PING\r\n", proto.Yes, proto.Client},
		{"ping\r\n", proto.Yes, proto.Client},
		{"PI", proto.Maybe, proto.RoleUnknown},
		{"GET /index.html HTTP/1.1\r\n", proto.No, proto.RoleUnknown},
		{"GET key\r\n", proto.Yes, proto.Client},
		{"GET key", proto.Maybe, proto.RoleUnknown},
		{"HELLOWORLD\r\n", proto.No, proto.RoleUnknown},
		{"-ERR unknown command\r\n", proto.Yes, proto.Server},
		{"-NOAUTH Authentication required.\r\n", proto.Yes, proto.Server},
		{"+PONG\r\n", proto.Yes, proto.Server},
		{"+OK POP3 ready\r\n", proto.No, proto.RoleUnknown},
		{"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n", proto.Yes, proto.Server},
		{"\x16\x03\x01\x02\x00", proto.No, proto.RoleUnknown},
		{"SSH-2.0-OpenSSH\r\n", proto.No, proto.RoleUnknown},
	} {
		v, r := redis.Protocol{}.DetectStream([]byte(c.data), 40000, 6379)
		if v != c.v || r != c.r {
			t.Errorf("%q: %v %v, want %v %v", c.data, v, r, c.v, c.r)
		}
	}
}

// TestSummaryLimits: in summary runs calls carry no bodies, and the same
// methods, paths and statuses.
func TestSummaryLimits(t *testing.T) {
	s := newSession(t, &proto.Limits{Summary: true})
	s.client(cmd("SET", "k", "v") + cmd("GET", "k")).server("+OK\r\n" + bulk("v"))
	calls := s.end()
	check(t, calls, []want{{method: "SET", path: "k", status: "OK"}, {method: "GET", path: "k", status: "OK"}})
	for _, c := range calls {
		if c.Request.Body != "" || c.Response.Body != "" || c.Request.BodySize == 0 || c.Response.BodySize == 0 {
			t.Errorf("summary call %+v", c)
		}
	}
	b, _ := json.Marshal(calls[1].Extra)
	if !bytes.Contains(b, []byte(`"reply":"bulk"`)) {
		t.Errorf("extra %s", b)
	}
}
