package analysis

import (
	"math"
	"testing"
)

func near(got, want float64) bool { return math.Abs(got-want) < 1e-9 }

// TestWilsonLow checks the bound against values worked out by hand.
func TestWilsonLow(t *testing.T) {
	for _, tc := range []struct {
		x, n uint64
		z    float64
		want float64
	}{
		// p = 0.3, z² = 9: (0.3 + 9/400 − 3·√(0.21/200 + 9/160000)) / (1 + 9/200)
		// = (0.3225 − 3·√0.00110625) / 1.045 = (0.3225 − 0.0997810…) / 1.045.
		{60, 200, 3, (0.3225 - 3*math.Sqrt(0.00110625)) / 1.045},
		// All of them: the bound is n / (n + z²).
		{10, 10, 1.96, 10 / (10 + 1.96*1.96)},
		{1, 1, 3, 0.1},
		// None of them: the bound is 0 whatever n.
		{0, 50, 3, 0},
		// No calls: nothing is known.
		{0, 0, 3, 0},
	} {
		if got := WilsonLow(tc.x, tc.n, tc.z); !near(got, tc.want) {
			t.Errorf("WilsonLow(%d, %d, %g) = %.12f, want %.12f", tc.x, tc.n, tc.z, got, tc.want)
		}
	}
	// 60 of 200 is 0.213 at z=3, below the observed 0.3; more calls at the
	// same rate tighten it.
	if lo, more := WilsonLow(60, 200, 3), WilsonLow(600, 2000, 3); !(lo < more && more < 0.3) {
		t.Errorf("60/200: %f, 600/2000: %f: the bound must rise toward 0.3 with volume", lo, more)
	}
}

// TestZTwoProportions checks the pooled z score by hand and its edges.
func TestZTwoProportions(t *testing.T) {
	for _, tc := range []struct {
		x1, n1, x2, n2 uint64
		want           float64
	}{
		// 0 of 200, then 60 of 200: p = 0.15, se = √(0.15·0.85·(2/200)).
		{0, 200, 60, 200, 0.3 / math.Sqrt(0.15*0.85*0.01)},
		// The other way round is as far below.
		{60, 200, 0, 200, -0.3 / math.Sqrt(0.15*0.85*0.01)},
		// 3 of 300, then 4 of 300: p = 7/600.
		{3, 300, 4, 300, (1.0 / 300) / math.Sqrt(7.0/600*593.0/600*(2.0/300))},
		// Equal rates, an empty side, and nothing or everything failing
		// (no variance) all score 0.
		{10, 100, 20, 200, 0},
		{0, 0, 5, 10, 0},
		{0, 100, 0, 100, 0},
		{100, 100, 100, 100, 0},
	} {
		if got := ZTwoProportions(tc.x1, tc.n1, tc.x2, tc.n2); !near(got, tc.want) {
			t.Errorf("ZTwoProportions(%d, %d, %d, %d) = %.12f, want %.12f", tc.x1, tc.n1, tc.x2, tc.n2, got, tc.want)
		}
	}
	// 3 more failures in 300 calls is noise; 60 in 200 is not.
	if z := ZTwoProportions(3, 300, 4, 300); z >= ZSignificant {
		t.Errorf("3 → 4 of 300: z = %f, significant", z)
	}
	if z := ZTwoProportions(0, 200, 60, 200); z < ZSignificant {
		t.Errorf("0 → 60 of 200: z = %f, not significant", z)
	}
}

// TestZCount checks the count score, with its one event of slack.
func TestZCount(t *testing.T) {
	for _, tc := range []struct {
		n        uint64
		expected float64
		want     float64
	}{
		{25, 0, 25},  // (25 − 0) / √1
		{10, 3, 3.5}, // (10 − 3) / √4
		{3, 3, 0},
		{0, 8, -8.0 / 3}, // (0 − 8) / √9
	} {
		if got := ZCount(tc.n, tc.expected); !near(got, tc.want) {
			t.Errorf("ZCount(%d, %g) = %.12f, want %.12f", tc.n, tc.expected, got, tc.want)
		}
	}
}
