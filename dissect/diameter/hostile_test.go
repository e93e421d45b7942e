package diameter_test

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/diameter"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// FuzzStream feeds arbitrary client and server bytes in arbitrary pieces,
// with gaps: no panic, bounded memory, every call valid JSON with a
// status or an error.
func FuzzStream(f *testing.F) {
	const sid = "pcef;1;2"
	f.Add(append(cer(1, "a"), ccr(2, sid, 1, 0, 0)...), append(cea(1, "b", 2001), cca(2, sid, 2001, 1, 0)...), byte(0))
	f.Add(ccr(3, sid, 2, 1, fT), append(dwr(9, "b"), msg(fE, 272, 4, 3, u32(268, 3002), group(279, u32(263, 0)))...), byte(0x81))
	f.Add(msg(fR, 316, 16777251, 4, group(260, group(260, group(260, u32(258, 1))))), msg(0, 316, 16777251, 4, group(297, u32(266, 10415), u32(298, 5420))), byte(0x90))
	f.Add([]byte{1, 0xff, 0xff, 0xfc, 0x80, 0, 1, 1, 0, 0, 0, 0}, []byte{1, 0, 0, 28, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 12, 0, 0, 0, 3}, byte(7))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, diameter.Protocol{}, client, server, split, 64<<10)
	})
}

// TestHostile: lengths that lie, AVPs that cannot be, nesting and floods
// are bounded, reported, and the connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("a length of 2^24-4", func(t *testing.T) {
		s := prototest.NewSession(t, diameter.Protocol{}, nil)
		base := liveHeap()
		s.Client([]byte{1, 0xff, 0xff, 0xfc, 0x80, 0, 1, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1})
		s.Client(make([]byte, 64<<10)) // what follows, skipped
		grown := int64(liveHeap()) - int64(base)
		s.Client(dwr(2, "a"))
		s.Server(dwa(2, "b"))
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{{Err: "malformed: message length 16777212 over 8 MiB"}, {Method: "DWR", Status: "DIAMETER_SUCCESS"}})
		if grown > 64<<10 {
			t.Errorf("the heap grew %d bytes", grown)
		}
		if s.Rec.SkippedBytes < 64<<10 {
			t.Errorf("skipped %d bytes", s.Rec.SkippedBytes)
		}
	})
	t.Run("AVPs of length 0 to 7", func(t *testing.T) {
		for n := range 8 {
			s := prototest.NewSession(t, diameter.Protocol{}, nil)
			bad := []byte{0, 0, 1, 7, 0x40, 0, 0, byte(n)}
			s.Client(msg(fR, 272, 4, 1, str(263, "s"), bad))
			s.Server(msg(0, 272, 4, 1, u32(268, 5014), bad))
			calls := s.End(proto.EndFIN)
			prototest.Check(t, calls, []prototest.Want{{Method: "CCR", Path: "s", Status: "DIAMETER_INVALID_AVP_LENGTH"}})
			if u, _ := calls[0].Extra.Get("undecoded").(string); !strings.Contains(u, "shorter than its header") {
				t.Errorf("length %d: undecoded %q", n, u)
			}
		}
	})
	t.Run("Grouped AVPs nested as deep as a message goes", func(t *testing.T) {
		const size = 8 << 20
		levels := (size - 20) / 8
		b := msg(fR, 272, 4, 1)
		b = append(b, make([]byte, levels*8)...)
		binary.BigEndian.PutUint32(b[0:], 1<<24|uint32(len(b)))
		for i := range levels {
			o := 20 + 8*i
			binary.BigEndian.PutUint32(b[o:], 456) // Multiple-Services-Credit-Control
			binary.BigEndian.PutUint32(b[o+4:], 0x40<<24|uint32(8*(levels-i)))
		}
		rec := &prototest.Recorder{}
		p := diameter.Protocol{}.NewStream(rec, &proto.Limits{})
		base := liveHeap()
		p.Feed(proto.Client, b, at)
		held := p.(proto.Buffering).Buffered()
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(b)
		p.Feed(proto.Server, msg(0, 272, 4, 1, u32(268, 5004)), at.Add(time.Millisecond))
		p.End(proto.EndFIN, at.Add(time.Second))
		if len(rec.Calls) != 1 || rec.Calls[0].Status != "DIAMETER_INVALID_AVP_VALUE" || !strings.Contains(rec.Calls[0].Request.Body, "(nested deeper than 16, not decoded)") {
			for _, c := range rec.Calls {
				t.Logf("%s %q %s %q %v\n%.300s", c.Method, c.Path, c.Status, c.Error, c.Extra, c.Request.Body)
			}
			t.Fatal("want the CCR answered and its nesting cut")
		}
		if grown > 1<<20 || held > 1<<20 {
			t.Errorf("held %d bytes, the heap grew %d", held, grown)
		}
		t.Logf("%d levels in %d bytes: held %d bytes, heap grew %d", levels, len(b), held, grown)
	})
	t.Run("a million requests never answered", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := diameter.Protocol{}.NewStream(rec, &proto.Limits{MaxPending: 1000})
		one := ccr(0, "pcef.example.net;1;1", 2, 0, 0)
		batch := make([]byte, 0, len(one)*1000)
		base := liveHeap()
		most := 0
		emitted := 0
		for i := range 1000 {
			for j := range 1000 {
				m := append(batch[len(batch):], one...)
				binary.BigEndian.PutUint32(m[12:], uint32(i*1000+j))
				batch = batch[:len(batch)+len(one)]
			}
			p.Feed(proto.Client, batch, at)
			batch = batch[:0]
			most = max(most, p.(proto.Buffering).Buffered())
			if i%100 == 99 {
				emitted += len(rec.Calls)
				rec.Calls = rec.Calls[:0] // what a reader would have taken
			}
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(batch)
		if most > 4<<20 || grown > 8<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if emitted != 999000 {
			t.Errorf("%d calls given up, want 999000", emitted)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
}
