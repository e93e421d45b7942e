package workspace

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCoverage checks add and split against a set of covered seconds.
func TestCoverage(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var c coverage
		var truth [100]bool
		for range rng.IntN(8) {
			a := rng.IntN(100)
			b := a + rng.IntN(100-a+1)
			c = c.add(at(a), at(b))
			for s := a; s < b; s++ {
				truth[s] = true
			}
		}
		for i := 1; i < len(c); i++ {
			if !c[i-1].To.Before(c[i].From) {
				t.Fatalf("round %d: ranges %v and %v touch or overlap", round, c[i-1], c[i])
			}
		}
		for i := range c {
			if !c[i].From.Before(c[i].To) {
				t.Fatalf("round %d: empty range %v", round, c[i])
			}
		}
		a := rng.IntN(100)
		b := a + rng.IntN(100-a+1)
		gaps, covered := c.split(at(a), at(b))
		var got [100]byte
		for _, w := range gaps {
			for s := w.From; s.Before(w.To); s = s.Add(time.Second) {
				got[int(s.Sub(t0)/time.Second)] += 1
			}
		}
		for _, w := range covered {
			for s := w.From; s.Before(w.To); s = s.Add(time.Second) {
				got[int(s.Sub(t0)/time.Second)] += 2
			}
		}
		for s := range 100 {
			want := byte(0)
			switch {
			case s < a || s >= b:
			case truth[s]:
				want = 2
			default:
				want = 1
			}
			if got[s] != want {
				t.Fatalf("round %d: second %d of [%d,%d) marked %d, want %d (coverage %v, gaps %v, covered %v)",
					round, s, a, b, got[s], want, fmt.Sprint(c), gaps, covered)
			}
		}
	}
}
