package analysis

import "math"

// ZTwoProportions is the one-sided z score of p2 > p1 (x1 of n1 against
// x2 of n2), pooled; 0 when either side is empty or the pooled rate is 0
// or 1.
func ZTwoProportions(x1, n1, x2, n2 uint64) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (p2 - p1) / se
}

// ZCount is the z score of seeing n events where expected were predicted
// (Poisson, with one event of slack so that an expectation of zero does
// not make any count infinitely significant).
func ZCount(n uint64, expected float64) float64 {
	return (float64(n) - expected) / math.Sqrt(expected+1)
}

// WilsonLow is the lower bound of the Wilson score interval of x in n at
// z; 0 when n is 0.
func WilsonLow(x, n uint64, z float64) float64 {
	if n == 0 {
		return 0
	}
	p, nf := float64(x)/float64(n), float64(n)
	return (p + z*z/(2*nf) - z*math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))) / (1 + z*z/nf)
}
