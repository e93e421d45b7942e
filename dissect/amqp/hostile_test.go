package amqp_test

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/amqp"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHostile: sizes and nesting that lie are bounded, reported, and the
// connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("a frame claiming 2^32 bytes", func(t *testing.T) {
		s := prototest.NewSession(t, amqp.Protocol{}, nil)
		handshake(s)
		base := liveHeap()
		s.Client("\x01\x00\x01\xff\xff\xff\xff\x00\x32\x00\x0a" + strings.Repeat("x", 1<<16))
		grown := int64(liveHeap()) - int64(base)
		s.Client(queueDeclare(1, "next", 0)).Server(queueDeclareOK(1, "next"))
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, with(prototest.Want{Err: "malformed: frame of 4294967295 bytes"}, prototest.Want{Method: "queue.declare", Path: "next", Status: "OK"}))
		if grown > 1<<20 {
			t.Errorf("the heap grew %d bytes", grown)
		}
		t.Logf("heap grew %d bytes", grown)
	})
	t.Run("a 300 MiB content body streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := amqp.Protocol{}.NewStream(rec, &proto.Limits{})
		const size = 300 << 20
		const frameMax = 128 << 10
		p.Feed(proto.Client, []byte(publish(1, "big", "rk")+contentHeader(1, size, "application/octet-stream")), at)
		chunk := []byte(frame(3, 1, make([]byte, frameMax)))
		base := liveHeap()
		most := 0
		for sent := 0; sent < size; sent += frameMax {
			p.Feed(proto.Client, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(chunk)
		p.End(proto.EndFIN, at.Add(time.Second))
		if most > 1<<20 || grown > 2<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if len(rec.Calls) != 1 || rec.Calls[0].Path != "big/rk" || rec.Calls[0].Request.BodySize != size || !rec.Calls[0].Request.BodyTruncated || rec.Calls[0].Error != "" {
			t.Fatalf("calls %+v", rec.Calls)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
	t.Run("field tables nested a million deep and claiming 2^31 bytes", func(t *testing.T) {
		// A million nested tables: each 'F' value's size says what
		// follows; the frame is cut to what the parser keeps.
		const depth = 1 << 20
		var nested []byte
		for d := 0; d < depth; d++ {
			// name "a", type 'F', size of the rest (a lie past the kept part).
			nested = append(nested, 1, 'a', 'F')
			nested = binary.BigEndian.AppendUint32(nested, uint32(6*(depth-d-1)))
		}
		args := cat(u16(0), sstr("q"), u8(0), u32(len(nested)), nested)
		deep := method(1, 50, 10, args)
		huge := method(1, 50, 10, u16(0), sstr("q2"), u8(0), u32(1<<31), []byte("\x01aS\x7f\xff\xff\xff"))
		s := prototest.NewSession(t, amqp.Protocol{}, nil)
		handshake(s)
		base := liveHeap()
		s.Client(deep)
		s.Server(queueDeclareOK(1, "q"))
		s.Client(huge).Server(queueDeclareOK(1, "q2"))
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(deep)
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, with(prototest.Want{Method: "queue.declare", Path: "q", Status: "OK"}, prototest.Want{Method: "queue.declare", Path: "q2", Status: "OK"}))
		if grown > 1<<20 {
			t.Errorf("the heap grew %d bytes", grown)
		}
		if calls[4].Extra.Get("undecoded") == nil {
			t.Errorf("the 2^31-byte table is not reported: %v", calls[4].Extra)
		}
		t.Logf("heap grew %d bytes", grown)
	})
	t.Run("a million publishes with confirms never acked", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := amqp.Protocol{}.NewStream(rec, &proto.Limits{MaxPending: 1000})
		p.Feed(proto.Client, []byte(header+method(1, 85, 10, u8(1))), at)
		one := publish(1, "ex", "rk") + contentHeader(1, 4, "text/plain") + body(1, "data")
		batch := []byte(strings.Repeat(one, 1000))
		base := liveHeap()
		most := 0
		for i := range 1000 {
			p.Feed(proto.Client, batch, at)
			most = max(most, p.(proto.Buffering).Buffered())
			if i%100 == 99 {
				rec.Calls = rec.Calls[:0] // what a reader would have taken
			}
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(batch)
		if most > 1<<20 || grown > 8<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
}
