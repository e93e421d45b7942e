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

func newSession(t *testing.T, lim *proto.Limits) *prototest.Session {
	return prototest.NewSession(t, redis.Protocol{}, lim)
}

func TestCommands(t *testing.T) {
	s := newSession(t, nil)
	s.Client(cmd("SET", "user:1", "alice")).Server("+OK\r\n")
	s.Client(cmd("get", "user:1")).Server(bulk("alice"))
	s.Client(cmd("GET", "missing")).Server("$-1\r\n")
	s.Client(cmd("LPUSH", "user:1", "x")).Server("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
	s.Client(cmd("FOO")).Server("-ERR unknown command 'FOO', with args beginning with: \r\n")
	s.Client(cmd("CONFIG", "GET", "maxmemory")).Server("*2\r\n" + bulk("maxmemory") + bulk("0"))
	s.Client(cmd("CLIENT", "SETNAME", "app1")).Server("+OK\r\n")
	s.Client(cmd("INCR", "n")).Server(":42\r\n")
	s.Client(cmd("OBJECT", "ENCODING", "user:1")).Server(bulk("embstr"))
	s.Client(cmd("EVAL", "return 1", "1", "k1")).Server(":1\r\n")
	s.Client(cmd("SET", "big", "x")).Server("-OOM command not allowed when used memory > 'maxmemory'.\r\n")
	s.Client(cmd("XREAD", "COUNT", "2", "STREAMS", "s1", "0")).Server("*-1\r\n")
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "SET", Path: "user:1", Status: "OK", Req: "SET user:1 alice", Resp: "OK"},
		{Method: "GET", Path: "user:1", Status: "OK", Req: "get user:1", Resp: "alice"},
		{Method: "GET", Path: "missing", Status: "OK", Resp: "(nil)"},
		{Method: "LPUSH", Path: "user:1", Status: "WRONGTYPE", Resp: "WRONGTYPE Operation against a key holding the wrong kind of value"},
		{Method: "FOO", Status: "ERR"},
		{Method: "CONFIG GET", Status: "OK", Req: "CONFIG GET maxmemory", Resp: `["maxmemory","0"]`},
		{Method: "CLIENT SETNAME", Status: "OK"},
		{Method: "INCR", Path: "n", Status: "OK", Resp: "42"},
		{Method: "OBJECT ENCODING", Path: "user:1", Status: "OK"},
		{Method: "EVAL", Path: "k1", Status: "OK", Req: `EVAL "return 1" 1 k1`},
		{Method: "SET", Path: "big", Status: "OOM"},
		{Method: "XREAD", Path: "s1", Status: "OK", Resp: "(nil)"},
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
	wants := []prototest.Want{
		{Method: "SET", Path: "a", Status: "OK"},
		{Method: "GET", Path: "a", Status: "OK", Resp: "1"},
		{Method: "PING", Status: "OK", Resp: "PONG", Req: "PING"},
		{Method: "MGET", Path: "a", Status: "OK", Resp: `["1",null]`},
		{Method: "HGETALL", Path: "h", Status: "OK", Resp: `["f1","v1","f2",7]`},
	}
	whole := newSession(t, nil).Client(reqs).Server(resps).End(proto.EndFIN)
	prototest.Check(t, whole, wants)
	for _, step := range []int{1, 2, 3, 7} {
		s := newSession(t, nil)
		for i := 0; i < len(reqs); i += step {
			s.Client(reqs[i:min(i+step, len(reqs))])
		}
		for i := 0; i < len(resps); i += step {
			s.Server(resps[i:min(i+step, len(resps))])
		}
		prototest.Check(t, s.End(proto.EndFIN), wants)
	}
	if whole[2].Extra.Get("inline") != true {
		t.Errorf("inline PING not marked: %v", whole[2].Extra)
	}
}

func TestTransaction(t *testing.T) {
	s := newSession(t, nil)
	s.Client(cmd("MULTI")).Server("+OK\r\n")
	s.Client(cmd("SET", "k", "v")).Server("+QUEUED\r\n")
	s.Client(cmd("INCR", "k")).Server("+QUEUED\r\n")
	s.Client(cmd("EXEC")).Server("*2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n")
	s.Client(cmd("MULTI")).Server("+OK\r\n")
	s.Client(cmd("SET", "k2", "v")).Server("+QUEUED\r\n")
	s.Client(cmd("BADCMD")).Server("-ERR unknown command 'BADCMD'\r\n")
	s.Client(cmd("EXEC")).Server("-EXECABORT Transaction discarded because of previous errors.\r\n")
	s.Client(cmd("MULTI")).Server("+OK\r\n")
	s.Client(cmd("SET", "k3", "v")).Server("+QUEUED\r\n")
	s.Client(cmd("DISCARD")).Server("+OK\r\n")
	s.Client(cmd("WATCH", "k")).Server("+OK\r\n")
	s.Client(cmd("MULTI")).Server("+OK\r\n")
	s.Client(cmd("SET", "k", "w")).Server("+QUEUED\r\n")
	s.Client(cmd("EXEC")).Server("*-1\r\n")
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "MULTI", Status: "OK"},
		{Method: "SET", Path: "k", Status: "OK"},
		{Method: "INCR", Path: "k", Status: "ERR"},
		{Method: "EXEC", Status: "OK"},
		{Method: "MULTI", Status: "OK"},
		{Method: "BADCMD", Status: "ERR"},
		{Method: "SET", Path: "k2", Status: "OK"},
		{Method: "EXEC", Status: "EXECABORT"},
		{Method: "MULTI", Status: "OK"},
		{Method: "SET", Path: "k3", Status: "OK"},
		{Method: "DISCARD", Status: "OK"},
		{Method: "WATCH", Path: "k", Status: "OK"},
		{Method: "MULTI", Status: "OK"},
		{Method: "SET", Path: "k", Status: "OK"},
		{Method: "EXEC", Status: "OK"},
	})
	for i, w := range map[int]string{1: "exec", 2: "exec", 6: "aborted: EXECABORT", 9: "discarded", 13: "aborted: a watched key changed"} {
		if got := calls[i].Extra.Get("transaction"); got != w {
			t.Errorf("call %d (%s): transaction %v, want %q", i, calls[i].Method, got, w)
		}
	}
}

func TestPubSubRESP2(t *testing.T) {
	s := newSession(t, nil)
	s.Client(cmd("SUBSCRIBE", "chan1", "chan2"))
	s.Server("*3\r\n" + bulk("subscribe") + bulk("chan1") + ":1\r\n")
	s.Server("*3\r\n" + bulk("subscribe") + bulk("chan2") + ":2\r\n")
	s.Client(cmd("PSUBSCRIBE", "news.*"))
	s.Server("*3\r\n" + bulk("psubscribe") + bulk("news.*") + ":3\r\n")
	s.Server("*3\r\n" + bulk("message") + bulk("chan1") + bulk("hello"))
	s.Server("*4\r\n" + bulk("pmessage") + bulk("news.*") + bulk("news.sport") + bulk("goal"))
	s.Client(cmd("PING")).Server("*2\r\n" + bulk("pong") + bulk(""))
	s.Client(cmd("UNSUBSCRIBE"))
	s.Server("*3\r\n" + bulk("unsubscribe") + bulk("chan1") + ":2\r\n")
	s.Server("*3\r\n" + bulk("unsubscribe") + bulk("chan2") + ":1\r\n")
	s.Client(cmd("PUNSUBSCRIBE", "news.*"))
	s.Server("*3\r\n" + bulk("punsubscribe") + bulk("news.*") + ":0\r\n")
	// Not subscribed any more: an array that starts "message" is a reply.
	s.Client(cmd("LRANGE", "l", "0", "-1")).Server("*3\r\n" + bulk("message") + bulk("a") + bulk("b"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "SUBSCRIBE", Path: "chan1", Status: "OK"},
		{Method: "PSUBSCRIBE", Path: "news.*", Status: "OK"},
		{Method: "MESSAGE", Path: "chan1", OneWay: true, Resp: "hello"},
		{Method: "PMESSAGE", Path: "news.sport", OneWay: true, Resp: "goal"},
		{Method: "PING", Status: "OK", Resp: `["pong",""]`},
		{Method: "UNSUBSCRIBE", Status: "OK"},
		{Method: "PUNSUBSCRIBE", Path: "news.*", Status: "OK"},
		{Method: "LRANGE", Path: "l", Status: "OK"},
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
	s.Client(cmd("HELLO", "3", "AUTH", "default", "hunter2", "SETNAME", "svc"))
	s.Server("%3\r\n" + bulk("server") + bulk("redis") + bulk("proto") + ":3\r\n" + bulk("modules") + "*0\r\n")
	s.Client(cmd("HGETALL", "h")).Server("%2\r\n" + bulk("a") + ":1\r\n" + bulk("b") + "_\r\n")
	s.Client(cmd("SMEMBERS", "s")).Server("~2\r\n+x\r\n+y\r\n")
	s.Client(cmd("ZSCORE", "z", "m")).Server(",3.5\r\n")
	s.Client(cmd("EXISTS", "k")).Server("#t\r\n")
	s.Client(cmd("GET", "n")).Server("_\r\n")
	s.Client(cmd("SUBSCRIBE", "c")).Server(">3\r\n" + bulk("subscribe") + bulk("c") + ":1\r\n")
	s.Server(">3\r\n" + bulk("message") + bulk("c") + bulk("payload"))
	// A reply with an attribute before it.
	s.Client(cmd("CLIENT", "TRACKINGINFO")).Server("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n+OK\r\n")
	s.Client(cmd("FCALL", "f", "0")).Server("!21\r\nSYNTAX invalid syntax\r\n")
	s.Client(cmd("INFO")).Server("=15\r\ntxt:Some string\r\n")
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "HELLO", Status: "OK", Req: "HELLO 3 AUTH [redacted] [redacted] SETNAME svc"},
		{Method: "HGETALL", Path: "h", Status: "OK", Resp: `{"a":1,"b":null}`},
		{Method: "SMEMBERS", Path: "s", Status: "OK", Resp: `["x","y"]`},
		{Method: "ZSCORE", Path: "z", Status: "OK", Resp: "3.5"},
		{Method: "EXISTS", Path: "k", Status: "OK"},
		{Method: "GET", Path: "n", Status: "OK", Resp: "(nil)"},
		{Method: "SUBSCRIBE", Path: "c", Status: "OK"},
		{Method: "MESSAGE", Path: "c", OneWay: true, Resp: "payload"},
		{Method: "CLIENT TRACKINGINFO", Status: "OK", Resp: "OK"},
		{Method: "FCALL", Status: "SYNTAX"},
		{Method: "INFO", Status: "OK", Resp: "txt:Some string"},
	})
	if calls[1].Extra.Get("client_name") != "svc" {
		t.Errorf("HELLO SETNAME: %v", calls[1].Extra)
	}
}

// TestSecrets: passwords in commands are never kept.
func TestSecrets(t *testing.T) {
	s := newSession(t, nil)
	s.Client(cmd("AUTH", "s3cret-1")).Server("-WRONGPASS invalid username-password pair or user is disabled.\r\n")
	s.Client(cmd("AUTH", "admin", "s3cret-2")).Server("+OK\r\n")
	s.Client("AUTH s3cret-3\r\n").Server("+OK\r\n")
	s.Client(cmd("CONFIG", "SET", "requirepass", "s3cret-4", "maxmemory", "10mb")).Server("+OK\r\n")
	s.Client(cmd("ACL", "SETUSER", "bob", "on", ">s3cret-5", "~*")).Server("+OK\r\n")
	s.Client(cmd("MIGRATE", "10.0.0.1", "6379", "", "0", "5000", "AUTH2", "u", "s3cret-6", "KEYS", "a")).Server("+NOKEY\r\n")
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "AUTH", Status: "WRONGPASS", Req: "AUTH [redacted]"},
		{Method: "AUTH", Status: "OK", Req: "AUTH [redacted] [redacted]"},
		{Method: "AUTH", Status: "OK", Req: "AUTH [redacted]"},
		{Method: "CONFIG SET", Status: "OK", Req: "CONFIG SET requirepass [redacted] maxmemory 10mb"},
		{Method: "ACL SETUSER", Status: "OK", Req: "ACL SETUSER bob on [redacted] ~*"},
		{Method: "MIGRATE", Status: "OK", Req: `MIGRATE 10.0.0.1 6379 "" 0 5000 AUTH2 [redacted] [redacted] KEYS a`},
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
	s.Client(cmd("SET", "k", strings.Repeat("v", 100))[:30])
	s.P.Gap(proto.Client, 50)
	s.Client(strings.Repeat("v", 100-50-(30-len("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n"))) + "\r\n")
	s.Server("+OK\r\n")
	s.Client(cmd("GET", "a")[:5])
	s.P.Gap(proto.Client, -1)
	s.Client("garbage\r\n" + cmd("GET", "b"))
	s.Server("$1\r\nx\r\n") // the reply to the GET cut by the gap
	s.Server(bulk("y"))
	s.Client(cmd("GET", "c"))
	s.P.Gap(proto.Server, 100)
	s.Server("ue\r\n" + bulk("zz")) // resynchronised only at a segment's start
	s.Client(cmd("GET", "d")).Server(bulk("dd"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "SET", Path: "k", Status: "OK", Err: "truncated: 50 bytes of the command missing from the capture"},
		{Method: "", Status: "OK", Err: "truncated: bytes of the command missing from the capture"},
		{Method: "GET", Path: "b", Status: "OK", Resp: "y"},
		{Method: "GET", Path: "c", Err: "truncated: the reply may be among 100 bytes missing from the capture"},
		{Method: "GET", Path: "d", Status: "OK", Resp: "dd"},
	})
}

func TestEnd(t *testing.T) {
	s := newSession(t, nil)
	s.Client(cmd("BLPOP", "q", "0"))
	s.Client(cmd("MULTI")).Client(cmd("SET", "a", "b"))
	s.Client(cmd("GET", "partial")[:9])
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "", Err: "truncated: connection fin during the command"},
		{Method: "BLPOP", Path: "q", Err: "no response"},
		{Method: "MULTI", Err: "no response"},
		{Method: "SET", Path: "a", Err: "no response"},
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
		{"INFO server\r\n", proto.Yes, proto.Client},
		{"INFO {\"server_id\":\"N\",\"version\":\"2.15.3\"}\r\n", proto.No, proto.RoleUnknown}, // a NATS server's greeting
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
	s.Client(cmd("SET", "k", "v") + cmd("GET", "k")).Server("+OK\r\n" + bulk("v"))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{{Method: "SET", Path: "k", Status: "OK"}, {Method: "GET", Path: "k", Status: "OK"}})
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
