package kafka_test

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/kafka"
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
// status, an error, or marked one-way.
func FuzzStream(f *testing.F) {
	p := request(produce(9, 1, map[string][]byte{"orders": batch(2, 1, "x")}), 1, "c")
	pr := response(produceResponse(9, map[string]int16{"orders": 6}), 1)
	m := kmsg.NewPtrMetadataRequest()
	m.Version = 12
	mr := kmsg.NewPtrMetadataResponse()
	mr.Version = 12
	f.Add(append(p, request(m, 2, "c")...), append(pr, response(mr, 2)...), byte(0))
	f.Add(request(produce(3, 0, map[string][]byte{"a": batch(1, 0, "y")}), 9, ""), []byte{}, byte(7))
	f.Add(p, pr, byte(0x81))
	f.Add([]byte("\x00\x00\x00\x10\x00\x00\x00\x09\x00\x00\x00\x01\x00\x00\x7f\xff\xff\xff\x00\x00"), []byte("\x7f\xff\xff\xff"), byte(0x90))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, kafka.Protocol{}, client, server, split, 8<<20)
	})
}

// TestHostile: counts and sizes that lie are bounded, reported, and the
// connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("arrays claiming 2^31 elements", func(t *testing.T) {
		s := prototest.NewSession(t, kafka.Protocol{}, nil)
		// Produce v3: transactional ID (null), acks, timeout, then a
		// topics array of 2^31-1.
		body := []byte{0xff, 0xff, 0, 1, 0, 0, 0x75, 0x30, 0x7f, 0xff, 0xff, 0xff}
		msg := binary.BigEndian.AppendUint32(nil, uint32(10+len(body)))
		msg = append(msg, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0)
		msg = append(msg, body...)
		base := liveHeap()
		s.Client(msg)
		grown := int64(liveHeap()) - int64(base)
		a := kmsg.NewPtrApiVersionsRequest()
		s.Client(request(a, 2, "c"))
		s.Server(response(kmsg.NewPtrApiVersionsResponse(), 2))
		calls := s.End(proto.EndFIN)
		if grown > 1<<20 {
			t.Errorf("the heap grew %d bytes", grown)
		}
		// The broker would have closed the connection; this one answers
		// the next request, and the produce stays unanswered.
		if len(calls) != 2 || calls[0].Method != "ApiVersions" || calls[0].Status != "OK" || calls[1].Method != "Produce" || calls[1].Extra.Get("undecoded") == nil || calls[1].Error != "no response" {
			for _, c := range calls {
				t.Logf("%s %s %q %v", c.Method, c.Status, c.Error, c.Extra)
			}
			t.Fatal("want the produce undecoded and the next request read")
		}
	})
	t.Run("a 200 MiB produce streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := kafka.Protocol{}.NewStream(rec, &proto.Limits{})
		const size = 200 << 20
		head := produce(8, 1, map[string][]byte{"big": nil})
		head.Topics[0].Partitions[0].Records = make([]byte, size)
		// Frame the request by hand without building 200 MiB: the header,
		// the body up to the records' length, then the records streamed.
		full := request(head, 1, "bulk")
		prefix := full[:len(full)-size]
		base := liveHeap()
		most := 0
		p.Feed(proto.Client, prefix, at)
		chunk := full[len(prefix) : len(prefix)+1<<20]
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Client, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		runtime.KeepAlive(full) // measured with the input alive, as before
		p.Feed(proto.Server, response(produceResponse(8, map[string]int16{"big": 0}), 1), at.Add(time.Second))
		p.End(proto.EndFIN, at.Add(2*time.Second))
		if most > 5<<20 || grown > 6<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if len(rec.Calls) != 1 || rec.Calls[0].Path != "big" || rec.Calls[0].Status != "OK" || rec.Calls[0].Request.BodySize != int64(len(prefix)+size-4) {
			t.Fatalf("calls %+v", rec.Calls)
		}
		if d, _ := rec.Calls[0].Extra.Get("decoded").(string); d == "" {
			t.Errorf("the call does not say it was decoded in part: %v", rec.Calls[0].Extra)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
	t.Run("a million requests without responses", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := kafka.Protocol{}.NewStream(rec, &proto.Limits{MaxPending: 1000})
		m := kmsg.NewPtrMetadataRequest()
		m.Version = 9
		one := request(m, 0, "flood")
		batch := make([]byte, 0, len(one)*1000)
		base := liveHeap()
		most := 0
		for i := range 1000 {
			for j := range 1000 {
				b := append([]byte(nil), one...)
				binary.BigEndian.PutUint32(b[8:], uint32(i*1000+j))
				batch = append(batch, b...)
			}
			p.Feed(proto.Client, batch, at)
			batch = batch[:0]
			most = max(most, p.(proto.Buffering).Buffered())
			if i%100 == 99 {
				rec.Calls = rec.Calls[:0] // what a reader would have taken
			}
		}
		grown := int64(liveHeap()) - int64(base)
		if most > 2<<20 || grown > 8<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
}
