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
		s.client("*2\r\n$3\r\nGET\r\n$9223372036854775808\r\n")
		s.server("-ERR Protocol error: invalid bulk length\r\n")
		s.client(cmd("GET", "after"))
		s.server(bulk("v"))
		calls := s.end()
		check(t, calls, []want{
			{method: "GET", status: "ERR", err: `malformed: a bulk length of "9223372036854775808"`},
			{method: "GET", path: "after", status: "OK"},
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
		s.client(cmd("GET", "deep"))
		s.server(strings.Repeat("*1\r\n", 1_000_000) + ":1\r\n")
		s.client(cmd("GET", "after")).server(bulk("v"))
		most := s.p.(proto.Buffering).Buffered()
		calls := s.end()
		if most > 64<<10 {
			t.Errorf("the parser holds %d bytes", most)
		}
		check(t, calls, []want{
			{method: "GET", path: "deep", err: "malformed: aggregates nested deeper than 64"},
			{method: "GET", path: "after", status: "OK"},
		})
	})
	t.Run("an endless line", func(t *testing.T) {
		s := newSession(t, nil)
		s.client(cmd("GET", "k"))
		most := 0
		s.server("+")
		for range 1000 {
			s.server(strings.Repeat("x", 10000))
			most = max(most, s.p.(proto.Buffering).Buffered())
		}
		s.server("\r\n")
		s.client(cmd("GET", "after")).server(bulk("v"))
		calls := s.end()
		if most > 200<<10 {
			t.Errorf("the parser held %d bytes", most)
		}
		check(t, calls, []want{
			{method: "GET", path: "k", err: "malformed: a line longer than 65536 bytes"},
			{method: "GET", path: "after", status: "OK"},
		})
	})
	t.Run("a million pipelined commands, no reply", func(t *testing.T) {
		s := newSession(t, &proto.Limits{MaxPending: 1000})
		one := cmd("GET", "k")
		batch := strings.Repeat(one, 10000)
		most := 0
		for range 100 {
			s.client(batch)
			most = max(most, s.p.(proto.Buffering).Buffered())
		}
		s.p.End(proto.EndFIN, s.at())
		calls := s.rec.Calls
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
		s.client("*1000001\r\n$4\r\nMSET\r\n")
		for range 1000 {
			s.client(strings.Repeat("$1\r\nk\r\n", 1000))
		}
		s.server("+OK\r\n")
		calls := s.end()
		check(t, calls, []want{{method: "MSET", path: "k", status: "OK"}})
		if !strings.HasSuffix(calls[0].Request.Body, "more arguments)") || len(calls[0].Request.Body) > 4200 {
			t.Errorf("body %d bytes, ends %q", len(calls[0].Request.Body), calls[0].Request.Body[max(0, len(calls[0].Request.Body)-40):])
		}
	})
}
