package proto

import (
	"slices"
	"testing"
	"time"
)

// TestPending: in order and by key, several requests under one key taken
// oldest first, the bound giving up the oldest, expiry by time, and the
// memory count following what is held.
func TestPending(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	p := Pending[uint16, string]{Max: 4, Size: func(s string) int { return len(s) }}
	for i, r := range []struct {
		id uint16
		v  string
	}{{7, "a"}, {9, "bb"}, {7, "ccc"}, {8, "dddd"}} {
		if _, full := p.Add(r.id, at(i), r.v); full {
			t.Fatalf("full at %d", i)
		}
	}
	if p.Len() != 4 || p.Kept() != 10 {
		t.Fatalf("len %d kept %d", p.Len(), p.Kept())
	}
	// A fifth gives up the oldest.
	if old, full := p.Add(1, at(4), "eeeee"); !full || old != "a" || p.Kept() != 14 {
		t.Fatalf("bound: %q %v kept %d", old, full, p.Kept())
	}
	// By key: the oldest under 7 that matches; none under 3.
	if v, ok := p.Find(7, nil); !ok || v != "ccc" || p.Len() != 4 {
		t.Fatalf("find 7: %q %v", v, ok)
	}
	if _, ok := p.Take(3, nil); ok {
		t.Fatal("took an unknown key")
	}
	if _, ok := p.Take(9, func(v string) bool { return v == "zz" }); ok {
		t.Fatal("took what match refused")
	}
	if v, ok := p.Take(9, nil); !ok || v != "bb" {
		t.Fatalf("take 9: %q %v", v, ok)
	}
	// By position, and all of them oldest first.
	if v, ok := p.At(1); !ok || v != "dddd" {
		t.Fatalf("at 1: %q %v", v, ok)
	}
	if _, ok := p.At(3); ok {
		t.Fatal("at 3 of 3")
	}
	if all := slices.Collect(p.All()); !slices.Equal(all, []string{"ccc", "dddd", "eeeee"}) {
		t.Fatalf("all: %q", all)
	}
	// In order.
	if v, ok := p.Oldest(); !ok || v != "ccc" {
		t.Fatalf("oldest %q", v)
	}
	if v, ok := p.TakeOldest(); !ok || v != "ccc" || p.Kept() != 9 {
		t.Fatalf("take oldest %q kept %d", v, p.Kept())
	}
	// Expiry: sent before 4 s.
	var gone []string
	p.Expire(at(4), func(v string) { gone = append(gone, v) })
	if !slices.Equal(gone, []string{"dddd"}) || p.Len() != 1 || p.Kept() != 5 {
		t.Fatalf("expired %q, left %d kept %d", gone, p.Len(), p.Kept())
	}
	p.Expire(time.Time{}, func(v string) { gone = append(gone, v) })
	if !slices.Equal(gone, []string{"dddd", "eeeee"}) || p.Len() != 0 || p.Kept() != 0 {
		t.Fatalf("drained %q, left %d kept %d", gone, p.Len(), p.Kept())
	}
	if _, ok := p.TakeOldest(); ok {
		t.Fatal("took from nothing")
	}
}
