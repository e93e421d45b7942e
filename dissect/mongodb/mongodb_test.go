package mongodb_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"strings"
	"testing"

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

func newSession(t *testing.T) *prototest.Session {
	return prototest.NewSession(t, mongodb.Protocol{}, nil)
}

func TestCommands(t *testing.T) {
	s := newSession(t)
	// The driver's first hello, the old way, with a speculative SASL
	// start it must not show.
	s.Client(message(1, 0, 2004, u32(0), []byte("admin.$cmd\x00"), u32(0), u32(0xffffffff),
		doc(i32("isMaster", 1), sub("speculativeAuthenticate", doc(str("payload", "s3cret-client-first"))))))
	s.Server(message(100, 1, 1, u32(8), make([]byte, 8), u32(0), u32(1), doc(bsoncore.AppendBooleanElement(nil, "ismaster", true), okDoc)))
	// A find over ten documents in batches of two, then its getMores.
	var batch [][]byte
	for i := range 2 {
		batch = append(batch, doc(i32("_id", i)))
	}
	s.Client(opMsg(2, 0, 0, doc(str("find", "users"), doc(i32("age", 30))[:0], i32("batchSize", 2), str("$db", "shop"))))
	s.Server(opMsg(101, 2, 0, doc(sub("cursor", doc(arr("firstBatch", batch...), i64("id", 77), str("ns", "shop.users"))), okDoc)))
	s.Client(opMsg(3, 0, 0, doc(i64("getMore", 77), str("collection", "users"), str("$db", "shop"))))
	s.Server(opMsg(102, 3, 0, doc(sub("cursor", doc(arr("nextBatch", batch[0]), i64("id", 0), str("ns", "shop.users"))), okDoc)))
	// An insert with its documents in a sequence, one a duplicate.
	s.Client(opMsg(4, 0, 0, doc(str("insert", "users"), bsoncore.AppendBooleanElement(nil, "ordered", true), str("$db", "shop")),
		sequence("documents", doc(i32("_id", 1)), doc(i32("_id", 1)), doc(i32("_id", 2)))))
	s.Server(opMsg(103, 4, 0, doc(i32("n", 1), arr("writeErrors", doc(i32("index", 1), i32("code", 11000), str("errmsg", "E11000 duplicate key error"))), okDoc)))
	// A command the server does not know.
	s.Client(opMsg(5, 0, 0, doc(i32("nosuchcommand", 1), str("$db", "shop"))))
	s.Server(opMsg(104, 5, 0, doc(dbl("ok", 0), str("errmsg", "no such command: 'nosuchcommand'"), i32("code", 59), str("codeName", "CommandNotFound"))))
	// A w:0 write: nothing answers it.
	s.Client(opMsg(6, 0, 2, doc(str("delete", "users"), str("$db", "shop")), sequence("deletes", doc(sub("q", doc()), i32("limit", 0)))))
	// SASL: never shown.
	s.Client(opMsg(7, 0, 0, doc(i32("saslStart", 1), str("mechanism", "SCRAM-SHA-256"), bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("n,,n=app,r=s3cret")), str("$db", "admin"))))
	s.Server(opMsg(105, 7, 0, doc(i32("conversationId", 1), bsoncore.AppendBinaryElement(nil, "payload", 0, []byte("r=s3cret")), okDoc)))
	// A primary stepping down: the server's trouble.
	s.Client(opMsg(8, 0, 0, doc(str("update", "users"), str("$db", "shop"))))
	s.Server(opMsg(106, 8, 0, doc(dbl("ok", 0), i32("code", 10107), str("codeName", "NotWritablePrimary"))))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "isMaster", Path: "admin", Status: "ok"},
		{Method: "find", Path: "shop.users", Status: "ok"},
		{Method: "getMore", Path: "shop.users", Status: "ok"},
		{Method: "insert", Path: "shop.users", Status: "DuplicateKey"},
		{Method: "nosuchcommand", Path: "shop", Status: "CommandNotFound"},
		{Method: "delete", Path: "shop.users", OneWay: true},
		{Method: "saslStart", Path: "admin", Status: "ok"},
		{Method: "update", Path: "shop.users", Status: "NotWritablePrimary"},
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
		s.Client(compressed(opMsg(1, 0, 0, doc(str("count", "users"), str("$db", "shop")))))
		s.Server(compressed(opMsg(9, 1, 0, doc(i32("n", 5), okDoc))))
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{{Method: "count", Path: "shop.users", Status: "ok"}})
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
		s.Client(opMsg(1, 0, 0, doc(str("find", "big"), str("$db", "shop"))))
		most := 0
		for i := 0; i < len(reply); i += 64 << 10 {
			chunk := reply[i:min(i+64<<10, len(reply))]
			if gap && i == 20*64<<10 {
				s.P.Gap(proto.Server, len(chunk))
				continue
			}
			s.Server(chunk)
			most = max(most, s.P.(proto.Buffering).Buffered())
		}
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{{Method: "find", Path: "shop.big", Status: "ok"}})
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
	s.Client(opMsg(1, 0, 0, doc(str("find", "t"), sub("filter", deep), str("$db", "d"))))
	s.Server(opMsg(2, 1, 0, doc(okDoc)))
	s.Client(append([]byte{0xff, 0xff, 0xff, 0x7f}, message(3, 0, 2013)[4:16]...)) // a length of 2 GiB
	s.Client(opMsg(4, 0, 0, doc(i32("ping", 1), str("$db", "admin"))))
	s.Server(opMsg(5, 4, 0, doc(okDoc)))
	// An exhaust cursor: replies answer the previous reply.
	s.Client(opMsg(6, 0, 1<<16, doc(i64("getMore", 9), str("collection", "c"), str("$db", "d"))))
	s.Server(opMsg(7, 6, 2, doc(sub("cursor", doc(arr("nextBatch"), i64("id", 9))), okDoc)))
	s.Server(opMsg(8, 7, 0, doc(sub("cursor", doc(arr("nextBatch"), i64("id", 0))), okDoc)))
	s.Server(opMsg(9, 999, 0, doc(okDoc)))
	calls := s.End(proto.EndFIN)
	prototest.Check(t, calls, []prototest.Want{
		{Method: "find", Path: "d.t", Status: "ok"},
		{Err: "malformed: a message length of 2147483647"},
		{Method: "ping", Path: "admin", Status: "ok"},
		{Method: "getMore", Path: "d.c", Status: "ok"},
		{Method: "getMore", Path: "d.c", Status: "ok"},
		{Status: "ok", Err: "no request"},
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
		prototest.FuzzFeed(t, mongodb.Protocol{}, client, server, split, 4<<20)
	})
}
