package tools

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// TestAnswerCache: an answer is computed once per key and index version,
// askers at once share one computation, and what was computed while the
// index changed, failed or panicked is not kept.
func TestAnswerCache(t *testing.T) {
	ix, err := index.Open(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	c := newAnswerCache(16, 1<<20)
	var computed atomic.Int32
	compute := func() (string, error) {
		computed.Add(1)
		time.Sleep(10 * time.Millisecond)
		return "answer", nil
	}
	v := ix.Version()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if text, err := c.answer(ctx, ix, v, "k", compute); err != nil || text != "answer" {
				t.Errorf("answer: %q, %v", text, err)
			}
		})
	}
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Errorf("8 askers at once, then: computed %d times, want 1", n)
	}

	// The index changes while an answer is computed: not kept.
	add := func(id string) {
		call := &proto.Call{ID: id, Proto: "http", TS: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), Method: "GET", Path: "/", Status: "200",
			Src: proto.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Port: 40000}, Dst: proto.Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Port: 80}}
		if err := ix.Add(ctx, []*proto.Call{call}); err != nil {
			t.Fatal(err)
		}
	}
	v = ix.Version()
	changing := func() (string, error) { computed.Add(1); add("a"); return "stale", nil }
	computed.Store(0)
	for range 2 {
		c.answer(ctx, ix, v, "changing", changing)
	}
	if n := computed.Load(); n != 2 {
		t.Errorf("an answer computed while the index changed was kept: computed %d times, want 2", n)
	}
	if ix.Version() == v {
		t.Fatal("Add did not change the version")
	}

	// A panic is not an answer.
	computed.Store(0)
	func() {
		defer func() { recover() }()
		c.answer(ctx, ix, ix.Version(), "panics", func() (string, error) { computed.Add(1); panic("boom") })
	}()
	if text, err := c.answer(ctx, ix, ix.Version(), "panics", func() (string, error) { computed.Add(1); return "fine", nil }); text != "fine" || err != nil {
		t.Errorf("after a panic: %q, %v", text, err)
	}
	if n := computed.Load(); n != 2 {
		t.Errorf("after a panic: computed %d times, want 2", n)
	}

	// Bounded: more keys than entries keep at most the entries.
	for i := range 40 {
		c.answer(ctx, ix, ix.Version(), string(rune('a'+i)), compute)
	}
	if n := c.lru.Len(); n > 16 {
		t.Errorf("%d answers kept, at most 16 allowed", n)
	}
}
