package mongodb_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/wirescope/wirescope/dissect/mongodb"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func init() { proto.Register(mongodb.Protocol{}) }

// doc builds a BSON document from elements.
func doc(elems ...[]byte) []byte { return bsoncore.BuildDocument(nil, elems...) }

func str(k, v string) []byte     { return bsoncore.AppendStringElement(nil, k, v) }
func i32(k string, v int) []byte { return bsoncore.AppendInt32Element(nil, k, int32(v)) }
func i64(k string, v int64) []byte {
	return bsoncore.AppendInt64Element(nil, k, v)
}
func dbl(k string, v float64) []byte { return bsoncore.AppendDoubleElement(nil, k, v) }
func sub(k string, d []byte) []byte  { return bsoncore.AppendDocumentElement(nil, k, d) }
func arr(k string, docs ...[]byte) []byte {
	var els [][]byte
	for i, d := range docs {
		els = append(els, bsoncore.AppendDocumentElement(nil, itoa(i), d))
	}
	return bsoncore.AppendArrayElement(nil, k, bsoncore.BuildDocument(nil, els...))
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// message frames a body with a header.
func message(id, to int32, op int32, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	h := make([]byte, 16)
	binary.LittleEndian.PutUint32(h, uint32(16+len(b)))
	binary.LittleEndian.PutUint32(h[4:], uint32(id))
	binary.LittleEndian.PutUint32(h[8:], uint32(to))
	binary.LittleEndian.PutUint32(h[12:], uint32(op))
	return append(h, b...)
}

func u32(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

// opMsg is an OP_MSG with a body section and optional document sequences.
func opMsg(id, to int32, flags uint32, body []byte, seqs ...[]byte) []byte {
	parts := [][]byte{u32(flags), {0}, body}
	parts = append(parts, seqs...)
	return message(id, to, 2013, parts...)
}

// sequence is a kind-1 section.
func sequence(name string, docs ...[]byte) []byte {
	b := append([]byte(name), 0)
	for _, d := range docs {
		b = append(b, d...)
	}
	return append(append([]byte{1}, u32(uint32(4+len(b)))...), b...)
}

var okDoc = dbl("ok", 1)

type session struct {
	t   *testing.T
	rec *prototest.Recorder
	p   proto.StreamParser
	ms  int
}

func newSession(t *testing.T) *session {
	rec := &prototest.Recorder{}
	return &session{t: t, rec: rec, p: mongodb.Protocol{}.NewStream(rec, &proto.Limits{})}
}

func (s *session) at() time.Time {
	s.ms++
	return time.Unix(1700000000, 0).Add(time.Duration(s.ms) * time.Millisecond)
}

func (s *session) client(b []byte) *session { s.p.Feed(proto.Client, b, s.at()); return s }
func (s *session) server(b []byte) *session { s.p.Feed(proto.Server, b, s.at()); return s }
func (s *session) end() []*proto.Call {
	s.p.End(proto.EndFIN, s.at())
	for i, c := range s.rec.Calls {
		prototest.CheckJSON(s.t, i, c)
	}
	return s.rec.Calls
}

type want struct {
	method, path, status, err string
	oneWay                    bool
}

func check(t *testing.T, calls []*proto.Call, wants []want) {
	t.Helper()
	if len(calls) != len(wants) {
		for _, c := range calls {
			t.Logf("  %s %q %s err=%q extra=%v", c.Method, c.Path, c.Status, c.Error, c.Extra)
		}
		t.Fatalf("%d calls, want %d", len(calls), len(wants))
	}
	for i, w := range wants {
		c := calls[i]
		if c.Method != w.method || c.Path != w.path || c.Status != w.status || c.Error != w.err || c.OneWay != w.oneWay {
			t.Errorf("call %d: %s %q %q err=%q oneway=%v, want %s %q %q err=%q oneway=%v", i, c.Method, c.Path, c.Status, c.Error, c.OneWay,
				w.method, w.path, w.status, w.err, w.oneWay)
		}
	}
}

func TestCommands(t *testing.T) {
	s := newSession(t)
	// The driver's first hello, the old way, with a speculative SASL
	// start it must not show.
	s.client(message(1, 0, 2004, u32(0), []byte("admin.$cmd\x00"), u32(0), u32(0xffffffff),
		doc(i32("isMaster", 1), sub("speculativeAuthenticate", doc(str("payload", "s3cret-client-first"))))))
	s.server(message(100, 1, 1, u32(8), make([]byte, 8), u32(0), u32(1), doc(bsoncore.AppendBooleanElement(nil, "ismaster", true), okDoc)))
	// A find over ten documents in batches of two, then its getMores.
	var batch [][]byte
	for i := range 2 {
		batch = append(batch, doc(i32("_id", i)))
	}
	s.client(opMsg(2, 0, 0, doc(str("find", "users"), doc(i32("age", 30))[:0], i32("batchSize", 2), str("$db", "shop"))))
	s.server(opMsg(101, 2, 0, doc(sub("cursor", doc(arr("firstBatch", batch...), i64("id", 77), str("ns", "shop.users"))), okDoc)))
	s.client(opMsg(3, 0, 0, doc(i64("getMore", 77), str("collection", "users"), str("$db", "shop"))))
	s.server(opMsg(102, 3, 0, doc(sub("cursor", doc(arr("nextBatch", batch[0]), i64("id", 0), str("ns", "shop.users"))), okDoc)))
	// An insert with its documents in a sequence, one a duplicate.
	s.client(opMsg(4, 0, 0, doc(str("insert", "users"), bsoncore.AppendBooleanElement(nil, "ordered", true), str("$db", "shop")),
		sequence("documents", doc(i32("_id", 1)), doc(i32("_id", 1)), doc(i32("_id", 2)))))
	s.server(opMsg(103, 4, 0, doc(i32("n", 1), arr("writeErrors", doc(i32("index", 1), i32("code", 11000), str("errmsg", "E11000 duplicate key error"))), okDoc)))
	// A command the server does not know.
	s.client(opMsg(5, 0, 0, doc(i32("nosuchcommand", 1), str("$db", "shop"))))
	s.server(opMsg(104, 5, 0, doc(dbl("ok", 0), str("errmsg", "no such command: 'nosuchcommand'"), i32("code", 59), str("codeName", "CommandNotFound"))))
	// A w:0 write: nothing answers it.
	s.client(opMsg(6, 0, 2, doc(str("delete", "users"), str("$db", "shop")), sequence("deletes", doc(sub("q", doc()), i32("limit", 0)))))
	// SASL: never shown.
	s.client(opMsg(7, 0, 0, doc(i32("saslStart", 1), str("mechanism", "SCRAM-SHA-256"), bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("n,,n=app,r=s3cret")), str("$db", "admin"))))
	s.server(opMsg(105, 7, 0, doc(i32("conversationId", 1), bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("r=s3cret")), okDoc)))
	// A primary stepping down: the server's trouble.
	s.client(opMsg(8, 0, 0, doc(str("update", "users"), str("$db", "shop"))))
	s.server(opMsg(106, 8, 0, doc(dbl("ok", 0), i32("code", 10107), str("codeName", "NotWritablePrimary"))))
	calls := s.end()
	check(t, calls, []want{
		{method: "isMaster", path: "admin", status: "ok"},
		{method: "find", path: "shop.users", status: "ok"},
		{method: "getMore", path: "shop.users", status: "ok"},
		{method: "insert", path: "shop.users", status: "DuplicateKey"},
		{method: "nosuchcommand", path: "shop", status: "CommandNotFound"},
		{method: "delete", path: "shop.users", oneWay: true},
		{method: "saslStart", path: "admin", status: "ok"},
		{method: "update", path: "shop.users", status: "NotWritablePrimary"},
	})
	if calls[0].Extra.Get("opcode") != "OP_QUERY" || !strings.Contains(calls[0].Request.Body, `"speculativeAuthenticate": "[redacted]"`) {
		t.Errorf("hello: %v %q", calls[0].Extra, calls[0].Request.Body)
	}
	if calls[1].Extra.Get("returned") != int64(2) || calls[1].Extra.Get("cursor_id") != int64(77) {
		t.Errorf("find: %v", calls[1].Extra)
	}
	if calls[2].Extra.Get("cursor_of") != "find shop.users" || calls[2].Extra.Get("returned") != int64(1) {
		t.Errorf("getMore: %v", calls[2].Extra)
	}
	if calls[3].Extra.Get("documents") != int64(3) || calls[3].Extra.Get("write_errors") != int64(1) || calls[3].Outcome() != proto.ClientError {
		t.Errorf("insert: %v", calls[3].Extra)
	}
	if calls[7].Outcome() != proto.ServerError {
		t.Errorf("NotWritablePrimary: %v", calls[7].Outcome())
	}
	for _, c := range calls {
		if bytes.Contains(c.AppendJSON(nil), []byte("s3cret")) {
			t.Errorf("a secret in %s", c.AppendJSON(nil))
		}
	}
}

// TestCompressed: OP_COMPRESSED with each compressor gives the call its
// uncompressed message would.
func TestCompressed(t *testing.T) {
	compressors := map[byte]func([]byte) []byte{
		1: func(b []byte) []byte { return snappy.Encode(nil, b) },
		2: func(b []byte) []byte {
			var out bytes.Buffer
			w := zlib.NewWriter(&out)
			w.Write(b)
			w.Close()
			return out.Bytes()
		},
		3: func(b []byte) []byte {
			e, _ := zstd.NewWriter(nil)
			return e.EncodeAll(b, nil)
		},
	}
	for id, compress := range compressors {
		compressed := func(msg []byte) []byte {
			h := msg[:16]
			id32 := int32(binary.LittleEndian.Uint32(h[4:]))
			to := int32(binary.LittleEndian.Uint32(h[8:]))
			body := msg[16:]
			return message(id32, to, 2012, u32(2013), u32(uint32(len(body))), []byte{id}, compress(body))
		}
		s := newSession(t)
		s.client(compressed(opMsg(1, 0, 0, doc(str("count", "users"), str("$db", "shop")))))
		s.server(compressed(opMsg(9, 1, 0, doc(i32("n", 5), okDoc))))
		calls := s.end()
		check(t, calls, []want{{method: "count", path: "shop.users", status: "ok"}})
		if calls[0].Extra.Get("n") != int64(5) || calls[0].Extra.Get("compressed") == nil {
			t.Errorf("compressor %d: %v", id, calls[0].Extra)
		}
	}
}

// TestBigReply: a reply bigger than what is kept of it still gives its
// status and its cursor, read after the hole; a gap in it too.
func TestBigReply(t *testing.T) {
	var batch [][]byte
	for i := range 3000 {
		batch = append(batch, doc(i32("_id", i), str("pad", strings.Repeat("x", 1000))))
	}
	reply := opMsg(100, 1, 0, doc(sub("cursor", doc(arr("firstBatch", batch...), i64("id", 5), str("ns", "shop.big"))), okDoc))
	for _, gap := range []bool{false, true} {
		s := newSession(t)
		s.client(opMsg(1, 0, 0, doc(str("find", "big"), str("$db", "shop"))))
		most := 0
		for i := 0; i < len(reply); i += 64 << 10 {
			chunk := reply[i:min(i+64<<10, len(reply))]
			if gap && i == 20*64<<10 {
				s.p.Gap(proto.Server, len(chunk))
				continue
			}
			s.server(chunk)
			most = max(most, s.p.(proto.Buffering).Buffered())
		}
		calls := s.end()
		check(t, calls, []want{{method: "find", path: "shop.big", status: "ok"}})
		if calls[0].Extra.Get("cursor_id") != int64(5) || calls[0].Response.BodySize != int64(len(reply)) {
			t.Errorf("gap %v: %v, %d bytes", gap, calls[0].Extra, calls[0].Response.BodySize)
		}
		if gap != (calls[0].Extra.Get("bytes_missing") != nil) {
			t.Errorf("gap %v: %v", gap, calls[0].Extra)
		}
		if most > 2<<20 {
			t.Errorf("held %d bytes", most)
		}
	}
}

// TestHostile: documents nested 100k deep, lengths that lie, exhaust
// cursors, replies to nothing.
func TestHostile(t *testing.T) {
	// {a: {a: … {x: 1}}}, 100,000 deep, written outside in.
	const levels = 100_000
	inner := doc(i32("x", 1))
	var deep []byte
	for i := range levels {
		deep = binary.LittleEndian.AppendUint32(deep, uint32(len(inner)+8*(levels-i)))
		deep = append(deep, 3, 'a', 0)
	}
	deep = append(deep, inner...)
	deep = append(deep, bytes.Repeat([]byte{0}, levels)...)
	s := newSession(t)
	s.client(opMsg(1, 0, 0, doc(str("find", "t"), sub("filter", deep), str("$db", "d"))))
	s.server(opMsg(2, 1, 0, doc(okDoc)))
	s.client(append([]byte{0xff, 0xff, 0xff, 0x7f}, message(3, 0, 2013)[4:16]...)) // a length of 2 GiB
	s.client(opMsg(4, 0, 0, doc(i32("ping", 1), str("$db", "admin"))))
	s.server(opMsg(5, 4, 0, doc(okDoc)))
	// An exhaust cursor: replies answer the previous reply.
	s.client(opMsg(6, 0, 1<<16, doc(i64("getMore", 9), str("collection", "c"), str("$db", "d"))))
	s.server(opMsg(7, 6, 2, doc(sub("cursor", doc(arr("nextBatch"), i64("id", 9))), okDoc)))
	s.server(opMsg(8, 7, 0, doc(sub("cursor", doc(arr("nextBatch"), i64("id", 0))), okDoc)))
	s.server(opMsg(9, 999, 0, doc(okDoc)))
	calls := s.end()
	check(t, calls, []want{
		{method: "find", path: "d.t", status: "ok"},
		{err: "malformed: a message length of 2147483647"},
		{method: "ping", path: "admin", status: "ok"},
		{method: "getMore", path: "d.c", status: "ok"},
		{method: "getMore", path: "d.c", status: "ok"},
		{status: "ok", err: "no request"},
	})
	if !strings.Contains(calls[0].Request.Body, "nested deeper") || calls[4].Extra.Get("exhaust") != true {
		t.Errorf("deep body %q; exhaust %v", calls[0].Request.Body[:min(80, len(calls[0].Request.Body))], calls[4].Extra)
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		data []byte
		v    proto.Verdict
		r    proto.Role
	}{
		{opMsg(1, 0, 0, doc(i32("ping", 1))), proto.Yes, proto.Client},
		{opMsg(2, 1, 0, doc(okDoc)), proto.Yes, proto.Server},
		{message(1, 0, 2004, u32(0), []byte("admin.$cmd\x00")), proto.Yes, proto.Client},
		{opMsg(1, 0, 0, doc(i32("ping", 1)))[:10], proto.Maybe, proto.RoleUnknown},
		{[]byte("GET / HTTP/1.1\r\n\r\n"), proto.No, proto.RoleUnknown},
		{[]byte("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x00\x00\x00\x00\x00\x00"), proto.No, proto.RoleUnknown},
		{opMsg(1, 0, 0xff, doc(i32("ping", 1))), proto.No, proto.RoleUnknown},
	} {
		v, r := mongodb.Protocol{}.DetectStream(c.data, 40000, 27017)
		if v != c.v || r != c.r {
			t.Errorf("%q: %v %v, want %v %v", c.data, v, r, c.v, c.r)
		}
	}
}

func FuzzStream(f *testing.F) {
	f.Add(opMsg(1, 0, 0, doc(str("find", "u"), str("$db", "d"))), opMsg(2, 1, 0, doc(sub("cursor", doc(arr("firstBatch", doc(i32("a", 1))), i64("id", 3))), okDoc)), byte(0))
	f.Add(append(opMsg(1, 0, 1, doc(str("insert", "u")), sequence("documents", doc(i32("a", 1)))), 1, 2, 3, 4), message(2, 1, 1, u32(0), make([]byte, 8), u32(0), u32(1), doc(okDoc)), byte(3))
	f.Add(message(1, 0, 2012, u32(2013), u32(10), []byte{1}, []byte{10, 36, 0, 0, 0, 0, 0, 0, 0, 0, 0}), []byte{}, byte(0x81))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		lim := proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512, MaxPending: 16}
		rec := &prototest.Recorder{}
		p := mongodb.Protocol{}.NewStream(rec, &lim)
		rng := uint32(split)*2654435761 + 1
		at := time.Unix(1e9, 0)
		for len(client) > 0 || len(server) > 0 {
			rng = rng*1103515245 + 12345
			n := int(rng>>16)%64 + 1
			side, data := proto.Client, &client
			if rng&0x100 != 0 && len(server) > 0 || len(client) == 0 {
				side, data = proto.Server, &server
			}
			n = min(n, len(*data))
			if split&0x80 != 0 && rng&0x3000 == 0 {
				p.Gap(side, n)
			} else {
				p.Feed(side, (*data)[:n], at)
			}
			*data = (*data)[n:]
			at = at.Add(time.Millisecond)
			if b := p.(proto.Buffering).Buffered(); b > 4<<20 {
				t.Fatalf("keeps %d bytes", b)
			}
		}
		p.End(proto.EndFIN, at)
		for i, c := range rec.Calls {
			if c.Status == "" && c.Error == "" && !c.OneWay {
				t.Errorf("call %d has neither status nor error: %+v", i, c)
			}
			prototest.CheckJSON(t, i, c)
		}
	})
}
