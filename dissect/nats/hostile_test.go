package nats_test

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/nats"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHostile: sizes that lie, endless lines and floods are bounded,
// reported, and the connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	start := func(lim *proto.Limits) (*prototest.Recorder, proto.StreamParser) {
		rec := &prototest.Recorder{}
		p := nats.Protocol{}.NewStream(rec, lim)
		p.Feed(proto.Server, []byte(info), at)
		p.Feed(proto.Client, []byte(connect(false)+"PING\r\n"), at)
		p.Feed(proto.Server, []byte("PONG\r\n"), at)
		return rec, p
	}
	t.Run("a payload claiming 2^63 bytes", func(t *testing.T) {
		rec, p := start(nil)
		base := liveHeap()
		p.Feed(proto.Client, []byte("PUB x 9223372036854775808\r\nHMSG a 1 2 9223372036854775807\r\n"), at)
		p.Feed(proto.Client, []byte("HPUB y 9223372036854775807 9223372036854775807\r\n"), at)
		p.Feed(proto.Client, []byte(pub("after", "", "ok")), at)
		grown := int64(liveHeap()) - int64(base)
		p.End(proto.EndFIN, at)
		if grown > 1<<20 {
			t.Errorf("the heap grew %d bytes", grown)
		}
		var got []string
		for _, c := range rec.Calls[2:] {
			got = append(got, c.Method+" "+c.Path+" "+c.Error)
		}
		want := []string{"PUB  malformed: a payload of 9223372036854775808 bytes claimed, above the 64 MiB any server allows",
			"HPUB  malformed: a payload of 9223372036854775807 bytes claimed, above the 64 MiB any server allows", "PUB after "}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("a 60 MiB payload streams through", func(t *testing.T) {
		rec, p := start(nil)
		const size = 60 << 20
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		base := liveHeap()
		most := 0
		p.Feed(proto.Client, []byte("PUB big _INBOX.big "+strconv.Itoa(size)+"\r\n"), at)
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Client, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(chunk)
		p.Feed(proto.Client, []byte("\r\n"), at)
		p.Feed(proto.Server, []byte(msg("_INBOX.big", "1", "", "thanks")), at.Add(time.Second))
		p.End(proto.EndFIN, at.Add(2*time.Second))
		if most > 1<<20 || grown > 2<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		c := rec.Calls[len(rec.Calls)-1]
		if c.Path != "big" || c.Status != "OK" || c.Request.BodySize != size || !c.Request.BodyTruncated || c.Response.Body != "thanks" {
			t.Fatalf("call %s %s %s size %d", c.Method, c.Path, c.Status, c.Request.BodySize)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
	t.Run("a 200 MiB payload, above any max_payload, is skipped", func(t *testing.T) {
		rec, p := start(nil)
		const size = 200 << 20
		chunk := make([]byte, 1<<20)
		base := liveHeap()
		most := 0
		p.Feed(proto.Client, []byte("PUB big "+strconv.Itoa(size)+"\r\n"), at)
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Client, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(chunk)
		p.Feed(proto.Client, []byte("\r\n"+pub("next", "", "n")), at)
		p.End(proto.EndFIN, at)
		if most > 1<<20 || grown > 2<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		n := len(rec.Calls)
		if n < 2 || rec.Calls[n-2].Problem != proto.Malformed || rec.Calls[n-1].Path != "next" {
			for _, c := range rec.Calls {
				t.Logf("%s %s %q", c.Method, c.Path, c.Error)
			}
			t.Fatal("want the PUB malformed and the next one read")
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
	t.Run("an endless line", func(t *testing.T) {
		rec, p := start(nil)
		chunk := bytes.Repeat([]byte("PUB "), 1<<18)
		base := liveHeap()
		most := 0
		for range 100 {
			p.Feed(proto.Client, chunk, at)
			p.Feed(proto.Server, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(chunk)
		p.Feed(proto.Client, []byte("\r\n"+pub("next", "", "n")), at)
		p.End(proto.EndFIN, at)
		if most > 256<<10 || grown > 1<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if n := len(rec.Calls); n != 5 || rec.Calls[2].Error != "malformed: a line longer than 65536 bytes" || rec.Calls[4].Path != "next" {
			for _, c := range rec.Calls {
				t.Logf("%s %s %q", c.Method, c.Path, c.Error)
			}
			t.Fatal("want each side's line malformed once and the next PUB read")
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
	t.Run("a million requests never answered", func(t *testing.T) {
		rec, p := start(&proto.Limits{MaxPending: 1000})
		var batch []byte
		base := liveHeap()
		most := 0
		emitted := 0
		for i := range 1000 {
			batch = batch[:0]
			for j := range 1000 {
				n := strconv.Itoa(i*1000 + j)
				batch = append(batch, "PUB svc.work _INBOX.flood."+n+" 5\r\nhello\r\n"...)
			}
			p.Feed(proto.Client, batch, at.Add(time.Duration(i)*time.Millisecond))
			most = max(most, p.(proto.Buffering).Buffered())
			if i%100 == 99 {
				emitted += len(rec.Calls)
				rec.Calls = nil // what a reader would have taken
			}
		}
		grown := int64(liveHeap()) - int64(base)
		p.End(proto.EndFIN, at.Add(time.Hour))
		emitted += len(rec.Calls)
		if most > 2<<20 || grown > 4<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if emitted != 1000000+2 {
			t.Errorf("%d calls, want every request reported", emitted)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
}
