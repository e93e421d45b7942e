package postgres_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/postgres"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// TestHostile: lengths that lie and floods stay bounded.
func TestHostile(t *testing.T) {
	t.Run("a message claiming 2 GiB", func(t *testing.T) {
		s := login(newSession(t, nil))
		s.Client([]byte("Q\x80\x00\x00\x00SELECT 1"))
		s.Client(query("SELECT 2"))
		s.Server(complete("SELECT 1"), readyIdle)
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{
			{Method: "STARTUP", Path: "shop", Status: "OK"},
			{Err: "malformed: a message length of 2147483648"},
			{Method: "QUERY", Path: "SELECT ?", Status: "OK"},
		})
	})
	t.Run("a reply claiming 2 GiB", func(t *testing.T) {
		s := login(newSession(t, nil))
		s.Client(query("SELECT 1"))
		s.Server([]byte("D\x7f\xff\xff\xff\x00\x01"))
		s.Client(query("SELECT 2"))
		s.Server(complete("SELECT 1"), readyIdle)
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{
			{Method: "STARTUP", Path: "shop", Status: "OK"},
			{Method: "QUERY", Path: "SELECT ?", Err: "malformed: a message length of 2147483647"},
			{Method: "QUERY", Path: "SELECT ?", Err: "no response"},
		})
	})
	t.Run("a 1 GiB row streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := postgres.Protocol{}.NewStream(rec, &proto.Limits{})
		at := time.Unix(1e9, 0)
		p.Feed(proto.Client, query("SELECT big FROM t"), at)
		const size = 1 << 30
		head := []byte{'D', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}
		putU32(head[1:], 4+2+4+size)
		putU32(head[7:], size)
		p.Feed(proto.Server, head, at)
		chunk := bytes.Repeat([]byte("x"), 1<<20)
		most := 0
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Server, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		p.Feed(proto.Server, append(complete("SELECT 1"), readyIdle...), at)
		p.End(proto.EndFIN, at)
		if most > 128<<10 {
			t.Errorf("held %d bytes", most)
		}
		if len(rec.Calls) != 1 || rec.Calls[0].Status != "OK" || rec.Calls[0].Response.BodySize < size || len(rec.Calls[0].Response.Body) > 4096 {
			for _, c := range rec.Calls {
				t.Errorf("call %s %s %q size %d body %d", c.Method, c.Status, c.Error, c.Response.BodySize, len(c.Response.Body))
			}
			t.FailNow()
		}
	})
	t.Run("a million statements prepared", func(t *testing.T) {
		s := login(newSession(t, nil))
		var b bytes.Buffer
		most := 0
		for i := range 1_000_000 {
			b.Write(parse("s"+strings.Repeat("x", 20)+string(rune('a'+i%26))+itoa(i), "SELECT "+itoa(i)))
			if b.Len() > 64<<10 {
				s.Client(b.Bytes())
				b.Reset()
				most = max(most, s.P.(proto.Buffering).Buffered())
			}
		}
		s.Client(b.Bytes(), sync)
		s.Server(readyIdle)
		s.P.End(proto.EndFIN, s.At())
		if most > 8<<20 {
			t.Errorf("held %d bytes", most)
		}
	})
}

func putU32(b []byte, n int) { b[0], b[1], b[2], b[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n) }

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

// FuzzStream feeds arbitrary bytes in arbitrary pieces, with gaps: no
// panic, bounded memory, valid calls.
func FuzzStream(f *testing.F) {
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	f.Add(join(startup("user", "u"), query("SELECT 1")), join(authOK, readyIdle, rowDesc("a"), dataRow("1"), complete("SELECT 1"), readyIdle), byte(0))
	f.Add(join(parse("", "SELECT $1"), bind("", ""), describe('P', ""), execute(""), sync), join(parseOK, bindOK, noData, pgError("22012", "x"), readyIdle), byte(3))
	f.Add(join(append(i32(8), i32(80877103)...), startup("user", "u")), []byte("N"), byte(0x81))
	f.Add(join(query("COPY t FROM STDIN"), msg('d', []byte("1\n")), msg('c')), join(msg('G', []byte{0}, i16(0)), complete("COPY 1"), msg('A', i32(1), cstr("c"), cstr("p")), readyIdle), byte(9))
	f.Add([]byte("Q\x80\x00\x00\x00"), []byte("D\x7f\xff\xff\xff"), byte(0x80))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, postgres.Protocol{}, client, server, split, 1<<20)
	})
}
