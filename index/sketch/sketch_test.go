package sketch

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// exact returns the value of rank ⌊q·(n−1)⌋ in sorted.
func exact(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1))]
}

func TestQuantilesWithinAlpha(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() float64{
		// Latencies in nanoseconds: log-normal around 5 ms.
		"lognormal": func() float64 { return 5e6 * math.Exp(r.NormFloat64()) },
		"uniform":   func() float64 { return 1 + r.Float64()*1e9 },
		// Two modes: cache hits and misses.
		"bimodal": func() float64 {
			if r.IntN(10) == 0 {
				return 2e8 * (1 + r.Float64())
			}
			return 3e5 * (1 + r.Float64())
		},
		"below one": func() float64 { return r.Float64() * 0.5 },
		"constant":  func() float64 { return 42 },
	}
	qs := []float64{0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 10, 1000, 100_000} {
			var s Sketch
			var p Sparse
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = gen()
				s.Add(vals[i])
				if n <= 1000 {
					p.Add(vals[i])
				}
			}
			slices.Sort(vals)
			if s.Count() != uint64(n) {
				t.Fatalf("%s n=%d: count %d", name, n, s.Count())
			}
			for _, q := range qs {
				want, got := exact(vals, q), s.Quantile(q)
				if rel := math.Abs(got-want) / want; rel > Alpha {
					t.Errorf("%s n=%d q=%v: got %v, want %v (error %.4f > %v)", name, n, q, got, want, rel, Alpha)
				}
				if n <= 1000 {
					var d Sketch
					p.AddTo(&d)
					if d.Quantile(q) != got {
						t.Errorf("%s n=%d q=%v: sparse gives %v, dense %v", name, n, q, d.Quantile(q), got)
					}
				}
			}
		}
	}
}

func TestMergeEqualsWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var whole Sketch
	parts := make([]Sketch, 7)
	var vals []float64
	for i := range 50_000 {
		// Each part covers a different range, so merges must grow both ways.
		v := math.Exp(float64(i%7)*3 + r.NormFloat64())
		vals = append(vals, v)
		whole.Add(v)
		parts[(i*31)%7].Add(v)
	}
	var merged Sketch
	for _, k := range []int{3, 0, 6, 1, 5, 2, 4} {
		merged.Merge(&parts[k])
	}
	slices.Sort(vals)
	for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
		if merged.Quantile(q) != whole.Quantile(q) {
			t.Errorf("q=%v: merged %v, whole %v", q, merged.Quantile(q), whole.Quantile(q))
		}
		if want := exact(vals, q); math.Abs(merged.Quantile(q)-want)/want > Alpha {
			t.Errorf("q=%v: merged %v, exact %v", q, merged.Quantile(q), want)
		}
	}
	if merged.Count() != whole.Count() {
		t.Errorf("count %d, want %d", merged.Count(), whole.Count())
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	var s Sketch
	var p Sparse
	for _, v := range []float64{0.001, 1, 2, 3, 1e3, 1e3, 5e6, 7e9, 7e9, 7e9} {
		s.Add(v)
		p.Add(v)
	}
	b, _ := s.AppendBinary(nil)
	if pb := p.AppendBinary(nil); string(pb) != string(b) {
		t.Fatalf("sparse encodes %x, dense %x", pb, b)
	}
	b = append(b, 0xAA)
	var d Sketch
	rest, err := d.Decode(b)
	if err != nil || len(rest) != 1 || rest[0] != 0xAA {
		t.Fatalf("decode: rest %x, err %v", rest, err)
	}
	dp, rest, err := DecodeSparse(b)
	if err != nil || len(rest) != 1 {
		t.Fatalf("decode sparse: rest %x, err %v", rest, err)
	}
	if !slices.Equal(dp, p) {
		t.Errorf("sparse round trip: %x, want %x", dp, p)
	}
	for _, q := range []float64{0, 0.3, 0.5, 0.8, 1} {
		if d.Quantile(q) != s.Quantile(q) {
			t.Errorf("q=%v: decoded %v, want %v", q, d.Quantile(q), s.Quantile(q))
		}
	}
	for cut := range len(b) - 1 {
		var x Sketch
		if _, err := x.Decode(b[:cut]); err == nil && cut < len(b)-1 {
			// A prefix may decode as a shorter sketch only if it ends on
			// a bin boundary with a smaller declared count, which the
			// encoding does not allow: the count comes first.
			t.Errorf("decoding %d of %d bytes: no error", cut, len(b)-1)
		}
	}
}

func TestEmpty(t *testing.T) {
	var s Sketch
	if s.Quantile(0.5) != 0 || s.Count() != 0 {
		t.Errorf("empty sketch: quantile %v, count %d", s.Quantile(0.5), s.Count())
	}
	s.Add(0)
	s.Add(-3)
	if s.Count() != 0 {
		t.Errorf("non-positive values counted: %d", s.Count())
	}
}

func BenchmarkAdd(b *testing.B) {
	var s Sparse
	r := rand.New(rand.NewPCG(1, 1))
	vals := make([]float64, 1024)
	for i := range vals {
		vals[i] = 5e6 * math.Exp(r.NormFloat64())
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if len(s) > 64 {
			s = s[:0]
		}
		s.Add(vals[i&1023])
		i++
	}
}
