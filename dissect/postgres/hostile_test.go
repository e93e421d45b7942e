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
		s := newSession(t, nil).login()
		s.client([]byte("Q\x80\x00\x00\x00SELECT 1"))
		s.client(query("SELECT 2"))
		s.server(complete("SELECT 1"), readyIdle)
		calls := s.end(proto.EndFIN)
		check(t, calls, []want{
			{method: "STARTUP", path: "shop", status: "OK"},
			{err: "malformed: a message length of 2147483648"},
			{method: "QUERY", path: "SELECT ?", status: "OK"},
		})
	})
	t.Run("a reply claiming 2 GiB", func(t *testing.T) {
		s := newSession(t, nil).login()
		s.client(query("SELECT 1"))
		s.server([]byte("D\x7f\xff\xff\xff\x00\x01"))
		s.client(query("SELECT 2"))
		s.server(complete("SELECT 1"), readyIdle)
		calls := s.end(proto.EndFIN)
		check(t, calls, []want{
			{method: "STARTUP", path: "shop", status: "OK"},
			{method: "QUERY", path: "SELECT ?", err: "malformed: a message length of 2147483647"},
			{method: "QUERY", path: "SELECT ?", err: "no response"},
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
		s := newSession(t, nil).login()
		var b bytes.Buffer
		most := 0
		for i := range 1_000_000 {
			b.Write(parse("s"+strings.Repeat("x", 20)+string(rune('a'+i%26))+itoa(i), "SELECT "+itoa(i)))
			if b.Len() > 64<<10 {
				s.client(b.Bytes())
				b.Reset()
				most = max(most, s.p.(proto.Buffering).Buffered())
			}
		}
		s.client(b.Bytes(), sync)
		s.server(readyIdle)
		s.p.End(proto.EndFIN, s.at())
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
		lim := proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512, MaxPending: 16}
		rec := &noter{}
		p := postgres.Protocol{}.NewStream(rec, &lim)
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
			if b := p.(proto.Buffering).Buffered(); b > 1<<20 {
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
