package mqtt_test

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/mqtt"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHostile: lengths that lie, floods and noise are bounded, reported,
// and the connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("a 268 MB PUBLISH streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := mqtt.Protocol{}.NewStream(rec, &proto.Limits{})
		p.Feed(proto.Client, []byte(connect(4, "big", "", "")), at)
		p.Feed(proto.Server, []byte(pkt(0x20, b(0, 0))), at)
		const rem = 268_435_455 // the largest remaining length
		head := append([]byte{0x32}, varint(rem)...)
		head = append(head, str("huge/topic")...)
		head = append(head, u16(1)...)
		payload := rem - len("huge/topic") - 2 - 2
		p.Feed(proto.Client, head, at)
		chunk := []byte(strings.Repeat("v", 1<<20))
		most := 0
		base := liveHeap()
		for sent := 0; sent < payload; sent += len(chunk) {
			p.Feed(proto.Client, chunk[:min(len(chunk), payload-sent)], at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		p.Feed(proto.Server, []byte(pkt(0x40, u16(1))), at.Add(time.Second))
		p.End(proto.EndFIN, at.Add(2*time.Second))
		t.Logf("268 MB PUBLISH: the parser held at most %d bytes; the live heap grew %d bytes", most, grown)
		if most > 200<<10 || grown > 1<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if len(rec.Calls) != 2 {
			t.Fatalf("%d calls", len(rec.Calls))
		}
		c := rec.Calls[1]
		if c.Method != "PUBLISH" || c.Path != "huge/topic" || c.Status != "Success" || c.Request.BodySize != int64(payload) ||
			!c.Request.BodyTruncated || len(c.Request.Body) != 4096 {
			t.Fatalf("call %s %q %s size %d truncated %v body %d", c.Method, c.Path, c.Status, c.Request.BodySize,
				c.Request.BodyTruncated, len(c.Request.Body))
		}
	})
	t.Run("a million QoS 1 publishes, no acknowledgement", func(t *testing.T) {
		s := newSession(t, &proto.Limits{MaxPending: 1000})
		s.Client(connect(4, "flood", "", "")).Server(pkt(0x20, b(0, 0)))
		var batch strings.Builder
		most := 0
		id := 0
		for range 100 {
			batch.Reset()
			for range 10000 {
				id = id%65535 + 1
				batch.WriteString(publish(1, false, "f", id, nil, "m"))
			}
			s.Client(batch.String())
			most = max(most, s.P.(proto.Buffering).Buffered())
		}
		s.P.End(proto.EndFIN, s.At())
		calls := s.Rec.Calls
		t.Logf("a million unacknowledged QoS 1 publishes: the parser held at most %d bytes", most)
		if most > 1<<20 {
			t.Errorf("the parser held %d bytes", most)
		}
		if len(calls) != 1_000_001 {
			t.Fatalf("%d calls", len(calls))
		}
		// Identifiers wrap at 65535: a PUBLISH reusing one still waiting
		// gives the older one up, as the bound does.
		if calls[1].ProblemKind() != proto.Unanswered || calls[len(calls)-1].Error != "no response" {
			t.Errorf("first %q, last %q", calls[1].Error, calls[len(calls)-1].Error)
		}
	})
	t.Run("a remaining length of 5 bytes", func(t *testing.T) {
		s := newSession(t, nil)
		s.Client(connect(4, "v", "", "")).Server(pkt(0x20, b(0, 0)))
		s.Client(publish(1, false, "w", 1, nil, "x"))
		s.Server("\x40\x80\x80\x80\x80\x01\x00\x01")
		s.Client(pkt(0xC0))
		s.Server(pkt(0xD0))
		prototest.Check(t, s.End(proto.EndFIN), []prototest.Want{
			{Method: "CONNECT", Path: "v", Status: "Success"},
			{Method: "PUBACK", Err: "malformed: a remaining length of 5 or more bytes"},
			{Method: "PUBLISH", Path: "w", Err: "truncated: the answer may be among the bytes skipped after a malformed packet"},
			{Method: "PINGREQ", Status: "Success"},
		})
	})
	t.Run("random bytes", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		s := newSession(t, nil)
		s.Client(connect(5, "r", "", "")).Server(pkt(0x20, b(0, 0), props()))
		most := 0
		buf := make([]byte, 1500)
		for i := range 20000 {
			for j := range buf {
				buf[j] = byte(r.Uint32())
			}
			if i%2 == 0 {
				s.Client(buf)
			} else {
				s.Server(buf)
			}
			most = max(most, s.P.(proto.Buffering).Buffered())
		}
		calls := s.End(proto.EndFIN)
		t.Logf("30 MB of random bytes: %d calls, the parser held at most %d bytes", len(calls), most)
		if most > 1<<20 {
			t.Errorf("the parser held %d bytes", most)
		}
		for i, c := range calls {
			if c.Status == "" && c.Error == "" && !c.OneWay {
				t.Fatalf("call %d: neither status nor error", i)
			}
		}
	})
}
