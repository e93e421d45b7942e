package redis_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/redis"
)

// heapGrowth runs f and returns how much the live heap grew meanwhile (its
// peak is what f keeps reachable through the parser, sampled by f).
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestHostile: lengths that lie, nesting without end and endless lines
// are bounded, reported, and the connection reads on where it can.
func TestHostile(t *testing.T) {
	at := time.Unix(1e9, 0)
	t.Run("bulk length 2^63", func(t *testing.T) {
		s := newSession(t, nil)
		s.Client("*2\r\n$3\r\nGET\r\n$9223372036854775808\r\n")
		s.Server("-ERR Protocol error: invalid bulk length\r\n")
		s.Client(cmd("GET", "after"))
		s.Server(bulk("v"))
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{
			{Method: "GET", Status: "ERR", Err: `malformed: a bulk length of "9223372036854775808"`},
			{Method: "GET", Path: "after", Status: "OK"},
		})
	})
	t.Run("a 1 GiB bulk string streams through", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := redis.Protocol{}.NewStream(rec, &proto.Limits{})
		const size = 1 << 30
		head := "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1073741824\r\n"
		p.Feed(proto.Client, []byte(head), at)
		chunk := []byte(strings.Repeat("v", 1<<20))
		most := 0
		base := liveHeap()
		for sent := 0; sent < size; sent += len(chunk) {
			p.Feed(proto.Client, chunk, at)
			most = max(most, p.(proto.Buffering).Buffered())
		}
		grown := int64(liveHeap()) - int64(base)
		p.Feed(proto.Client, []byte("\r\n"), at)
		p.Feed(proto.Server, []byte("+OK\r\n"), at.Add(time.Second))
		p.End(proto.EndFIN, at.Add(2*time.Second))
		if most > 64<<10 || grown > 1<<20 {
			t.Errorf("the parser held %d bytes, the heap grew %d", most, grown)
		}
		if len(rec.Calls) != 1 || rec.Calls[0].Status != "OK" || rec.Calls[0].Request.BodySize != int64(len(head)+size+2) || !rec.Calls[0].Request.BodyTruncated {
			t.Fatalf("calls %+v", rec.Calls)
		}
	})
	t.Run("arrays nested a million deep", func(t *testing.T) {
		s := newSession(t, nil)
		s.Client(cmd("GET", "deep"))
		s.Server(strings.Repeat("*1\r\n", 1_000_000) + ":1\r\n")
		s.Client(cmd("GET", "after")).Server(bulk("v"))
		most := s.P.(proto.Buffering).Buffered()
		calls := s.End(proto.EndFIN)
		if most > 64<<10 {
			t.Errorf("the parser holds %d bytes", most)
		}
		prototest.Check(t, calls, []prototest.Want{
			{Method: "GET", Path: "deep", Err: "malformed: aggregates nested deeper than 64"},
			{Method: "GET", Path: "after", Status: "OK"},
		})
	})
	t.Run("an endless line", func(t *testing.T) {
		s := newSession(t, nil)
		s.Client(cmd("GET", "k"))
		most := 0
		s.Server("+")
		for range 1000 {
			s.Server(strings.Repeat("x", 10000))
			most = max(most, s.P.(proto.Buffering).Buffered())
		}
		s.Server("\r\n")
		s.Client(cmd("GET", "after")).Server(bulk("v"))
		calls := s.End(proto.EndFIN)
		if most > 200<<10 {
			t.Errorf("the parser held %d bytes", most)
		}
		prototest.Check(t, calls, []prototest.Want{
			{Method: "GET", Path: "k", Err: "malformed: a line longer than 65536 bytes"},
			{Method: "GET", Path: "after", Status: "OK"},
		})
	})
	t.Run("a million pipelined commands, no reply", func(t *testing.T) {
		s := newSession(t, &proto.Limits{MaxPending: 1000})
		one := cmd("GET", "k")
		batch := strings.Repeat(one, 10000)
		most := 0
		for range 100 {
			s.Client(batch)
			most = max(most, s.P.(proto.Buffering).Buffered())
		}
		s.P.End(proto.EndFIN, s.At())
		calls := s.Rec.Calls
		if most > 1<<20 {
			t.Errorf("the parser held %d bytes", most)
		}
		if len(calls) != 1_000_000 {
			t.Fatalf("%d calls", len(calls))
		}
		if calls[0].Error != "no response: more than 1000 commands waiting for replies" || calls[len(calls)-1].Error != "no response" {
			t.Errorf("first %q, last %q", calls[0].Error, calls[len(calls)-1].Error)
		}
	})
	t.Run("a command of a million arguments", func(t *testing.T) {
		s := newSession(t, nil)
		s.Client("*1000001\r\n$4\r\nMSET\r\n")
		for range 1000 {
			s.Client(strings.Repeat("$1\r\nk\r\n", 1000))
		}
		s.Server("+OK\r\n")
		calls := s.End(proto.EndFIN)
		prototest.Check(t, calls, []prototest.Want{{Method: "MSET", Path: "k", Status: "OK"}})
		if !strings.HasSuffix(calls[0].Request.Body, "more arguments)") || len(calls[0].Request.Body) > 4200 {
			t.Errorf("body %d bytes, ends %q", len(calls[0].Request.Body), calls[0].Request.Body[max(0, len(calls[0].Request.Body)-40):])
		}
	})
}
