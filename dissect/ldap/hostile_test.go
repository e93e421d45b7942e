package ldap_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/wirescope/wirescope/dissect/ldap"
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
	present := ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", "")
	f.Add(append(bind(1, "cn=a", "b"), search(2, "dc=x", 2, present)...), append(append(result(1, 1, 0, ""), entry(2, "cn=e")...), result(2, 5, 0, "")...), byte(0))
	f.Add(msg(1, app(23, true, ctx(0, "1.3.6.1.4.1.1466.20037"))), result(1, 24, 0, ""), byte(5))
	f.Add([]byte("\x30\x84\xff\xff\xff\xff\x02\x01\x01"), []byte("\x30\x03\x02\x01\x00"), byte(0x81))
	f.Add(nested(200), result(1, 5, 0, ""), byte(0x90))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, ldap.Protocol{}, client, server, split, 3<<20)
	})
}

// nested is a search whose filter is depth nots deep, built by hand (the
// BER lengths grow outward).
func nested(depth int) []byte {
	inner := []byte{0x87, 0x02, 'c', 'n'} // (cn=*)
	// Headers from the inside out, then written outside in.
	heads := make([][]byte, depth)
	n := len(inner)
	for k := range depth {
		heads[k] = berHeader(0xa2, n)
		n += len(heads[k])
	}
	filter := make([]byte, 0, n)
	for k := depth - 1; k >= 0; k-- {
		filter = append(filter, heads[k]...)
	}
	filter = append(filter, inner...)
	op := []byte{0x04, 0x04, 'd', 'c', '=', 'x', 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00}
	op = append(op, filter...)
	op = append(op, 0x30, 0x00)
	op = append(berHeader(0x63, len(op)), op...)
	m := append([]byte{0x02, 0x01, 0x01}, op...)
	return append(berHeader(0x30, len(m)), m...)
}

func berHeader(tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return []byte{tag, byte(n)}
	case n < 1<<8:
		return []byte{tag, 0x81, byte(n)}
	case n < 1<<16:
		return []byte{tag, 0x82, byte(n >> 8), byte(n)}
	case n < 1<<24:
		return []byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return []byte{tag, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// TestHostile: lengths that lie and nesting without end are bounded,
// reported, and the connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("lengths of 4 GiB and 2^63", func(t *testing.T) {
		s := prototest.NewSession(t, ldap.Protocol{}, nil)
		s.Client("\x30\x84\xff\xff\xff\xff\x02\x01\x01\x60")
		s.Client(bind(2, "cn=after", "x"))
		s.Server("\x30\x88\x7f\xff\xff\xff\xff\xff\xff\xff")
		s.Server(result(2, 1, 0, ""))
		calls := s.End(proto.EndFIN)
		// Results are matched by message ID: the server's malformed bytes
		// are their own record, and the bind still gets its result.
		prototest.Check(t, calls, []prototest.Want{
			{Err: "malformed: a message whose length is not a definite length under 256 MiB"},
			{Err: "malformed: response: a message whose length is not a definite length under 256 MiB"},
			{Method: "bind", Path: "cn=after", Status: "success"},
		})
	})
	for _, depth := range []int{100_000, 1_000_000} {
		t.Run("a filter nested "+strconv.Itoa(depth)+" deep", func(t *testing.T) {
			m := nested(depth)
			rec := &prototest.Recorder{}
			p := ldap.Protocol{}.NewStream(rec, &proto.Limits{})
			base := liveHeap()
			for off := 0; off < len(m); off += 64 << 10 {
				p.Feed(proto.Client, m[off:min(off+64<<10, len(m))], at)
			}
			grown := int64(liveHeap()) - int64(base)
			runtime.KeepAlive(m)
			p.Feed(proto.Server, result(1, 5, 0, ""), at.Add(time.Millisecond))
			p.End(proto.EndFIN, at.Add(time.Second))
			if grown > 3<<20 {
				t.Errorf("the heap grew %d bytes for a %d-byte message", grown, len(m))
			}
			if len(rec.Calls) != 1 || rec.Calls[0].Method != "search" || rec.Calls[0].Path != "dc=x" || rec.Calls[0].Status != "success" {
				t.Fatalf("calls %+v", rec.Calls)
			}
			t.Logf("%d bytes, heap grew %d", len(m), grown)
		})
	}
	t.Run("a 200 MiB entry streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := ldap.Protocol{}.NewStream(rec, &proto.Limits{})
		p.Feed(proto.Client, search(7, "dc=x", 2, ber.NewString(ber.ClassContext, ber.TypePrimitive, 7, "objectClass", "")), at)
		const size = 200 << 20
		// entry: SEQUENCE { id, [APPLICATION 4] { dn, SEQUENCE { SEQUENCE { "jpegPhoto", SET { OCTET STRING of size } } } } }
		val := berHeader(0x04, size)
		setH := berHeader(0x31, len(val)+size)
		attr := append(append([]byte{0x04, 0x09}, "jpegPhoto"...), setH...)
		attrH := berHeader(0x30, len(attr)+len(val)+size)
		listH := berHeader(0x30, len(attrH)+len(attr)+len(val)+size)
		dn := append([]byte{0x04, 0x06}, "cn=big"...)
		opLen := len(dn) + len(listH) + len(attrH) + len(attr) + len(val) + size
		opH := berHeader(0x64, opLen)
		msgLen := 3 + len(opH) + opLen
		headBytes := append(berHeader(0x30, msgLen), 0x02, 0x01, 0x07)
		headBytes = append(headBytes, opH...)
		headBytes = append(headBytes, dn...)
		headBytes = append(headBytes, listH...)
		headBytes = append(headBytes, attrH...)
		headBytes = append(headBytes, attr...)
		headBytes = append(headBytes, val...)
		chunk := make([]byte, 1<<20)
		base := liveHeap()
		most := 0
		p.Feed(proto.Server, headBytes, at)
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Server, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		p.Feed(proto.Server, result(7, 5, 0, ""), at)
		p.End(proto.EndFIN, at.Add(time.Second))
		if most > 2<<20 || grown > 3<<20 {
			t.Errorf("held at most %d bytes; the heap grew %d", most, grown)
		}
		if len(rec.Calls) != 1 || rec.Calls[0].Status != "success" || rec.Calls[0].Extra.Get("entries") != 1 {
			t.Fatalf("calls %+v", rec.Calls)
		}
		t.Logf("held at most %d bytes; heap grew %d", most, grown)
	})
}
