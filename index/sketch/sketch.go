// Package sketch is a mergeable quantile sketch with a relative-error
// guarantee, after DDSketch (Masson, Rim and Lee, VLDB 2019).
//
// A positive value v falls in bin i = ⌈log_γ v⌉ with γ = (1+α)/(1−α), so
// bin i holds (γ^(i−1), γ^i]. Reporting a bin as 2γ^i/(γ+1) is within α of
// every value in it, so any quantile read from the counts is within α of
// the true value of that rank. Bins are plain counts, so two sketches merge
// by adding counts, exactly and in any order: per-minute sketches summed
// over an hour give the sketch of the hour.
//
// With α = 1% the bins from a nanosecond to an hour number about 1,300;
// a latency sketch holds only the bins its values fell in.
package sketch

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// Alpha is the relative accuracy: a quantile is within Alpha of the value
// of its rank.
const Alpha = 0.01

var (
	gamma    = (1 + Alpha) / (1 - Alpha)
	invLnGam = 1 / math.Log(gamma)
)

// Index returns the bin of v, which must be positive.
func Index(v float64) int32 { return int32(math.Ceil(math.Log(v) * invLnGam)) }

// Value returns the value reported for bin i.
func Value(i int32) float64 { return 2 * math.Pow(gamma, float64(i)) / (gamma + 1) }

// Sketch counts values by bin. The zero value is an empty sketch.
type Sketch struct {
	// bins[k] counts bin offset+k.
	offset int32
	bins   []uint64
	count  uint64
}

// Add counts v; values that are not positive are ignored.
func (s *Sketch) Add(v float64) {
	if v > 0 {
		s.AddBin(Index(v), 1)
	}
}

// AddBin adds n to bin i.
func (s *Sketch) AddBin(i int32, n uint64) {
	if n == 0 {
		return
	}
	if len(s.bins) == 0 {
		s.offset = i
		s.bins = append(s.bins[:0], 0)
	} else if i < s.offset {
		grow := int(s.offset - i)
		s.bins = slices.Insert(s.bins, 0, make([]uint64, grow)...)
		s.offset = i
	} else if k := int(i - s.offset); k >= len(s.bins) {
		s.bins = append(s.bins, make([]uint64, k-len(s.bins)+1)...)
	}
	s.bins[i-s.offset] += n
	s.count += n
}

// Merge adds o's counts to s.
func (s *Sketch) Merge(o *Sketch) {
	if o.count == 0 {
		return
	}
	// Make room for o's range once, then add.
	if len(s.bins) == 0 {
		s.offset = o.offset
		s.bins = make([]uint64, len(o.bins))
	} else {
		lo := min(s.offset, o.offset)
		hi := max(s.offset+int32(len(s.bins)), o.offset+int32(len(o.bins)))
		if lo < s.offset || hi > s.offset+int32(len(s.bins)) {
			nb := make([]uint64, hi-lo)
			copy(nb[s.offset-lo:], s.bins)
			s.bins, s.offset = nb, lo
		}
	}
	for k, n := range o.bins {
		s.bins[o.offset-s.offset+int32(k)] += n
	}
	s.count += o.count
}

// Count returns the number of values counted.
func (s *Sketch) Count() uint64 { return s.count }

// Quantile returns the value of rank ⌊q·(n−1)⌋ (0 ≤ q ≤ 1) among the n
// values counted, within Alpha; 0 for an empty sketch.
func (s *Sketch) Quantile(q float64) float64 {
	if s.count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(s.count-1))
	var seen uint64
	for k, n := range s.bins {
		seen += n
		if seen > rank {
			return Value(s.offset + int32(k))
		}
	}
	return Value(s.offset + int32(len(s.bins)) - 1)
}

// Bins calls fn with every non-empty bin and its count, in bin order.
func (s *Sketch) Bins(fn func(i int32, n uint64)) {
	for k, n := range s.bins {
		if n > 0 {
			fn(s.offset+int32(k), n)
		}
	}
}

// Reset empties the sketch, keeping its memory.
func (s *Sketch) Reset() {
	clear(s.bins)
	s.bins = s.bins[:0]
	s.count = 0
}

// AppendBinary appends the sketch's encoding: the number of non-empty
// bins, then each bin's index (zig-zag varint, as a delta from the previous
// one) and count (uvarint).
func (s *Sketch) AppendBinary(b []byte) ([]byte, error) {
	var nonEmpty uint64
	for _, n := range s.bins {
		if n > 0 {
			nonEmpty++
		}
	}
	b = binary.AppendUvarint(b, nonEmpty)
	prev := int32(0)
	s.Bins(func(i int32, n uint64) {
		b = binary.AppendVarint(b, int64(i-prev))
		b = binary.AppendUvarint(b, n)
		prev = i
	})
	return b, nil
}

var errShort = errors.New("sketch: truncated encoding")

// Decode reads a sketch AppendBinary wrote at the start of b into s
// (replacing what s held) and returns the bytes after it.
func (s *Sketch) Decode(b []byte) ([]byte, error) {
	s.Reset()
	nb, k := binary.Uvarint(b)
	if k <= 0 || nb > uint64(len(b)) {
		return nil, errShort
	}
	b = b[k:]
	prev := int32(0)
	for j := range nb {
		d, k := binary.Varint(b)
		if k <= 0 {
			return nil, errShort
		}
		b = b[k:]
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errShort
		}
		b = b[k:]
		i := prev + int32(d)
		if j > 0 && d <= 0 || i < -1<<20 || i > 1<<20 {
			return nil, errors.New("sketch: bins out of order or range")
		}
		s.AddBin(i, n)
		prev = i
	}
	return b, nil
}

// Sparse is a sketch for few values: its non-empty bins, sorted, each
// packed in a uint64 (the bin index biased by 2^31 in the high half, the
// count in the low half). Aggregates keep thousands of small sketches, most
// holding a handful of values; a Sparse of one bin costs one word.
type Sparse []uint64

func pack(i int32, n uint32) uint64 { return uint64(uint32(i)+1<<31)<<32 | uint64(n) }

func unpack(x uint64) (int32, uint32) { return int32(uint32(x>>32) - 1<<31), uint32(x) }

// Add counts v; values that are not positive are ignored.
func (p *Sparse) Add(v float64) {
	if v > 0 {
		p.AddBin(Index(v), 1)
	}
}

// AddBin adds n to bin i.
func (p *Sparse) AddBin(i int32, n uint32) {
	s := *p
	k, found := slices.BinarySearchFunc(s, i, func(x uint64, i int32) int {
		xi, _ := unpack(x)
		return int(xi) - int(i)
	})
	if found {
		_, c := unpack(s[k])
		if uint64(c)+uint64(n) > math.MaxUint32 {
			// A bin this full belongs in a dense Sketch; saturate.
			n = math.MaxUint32 - c
		}
		s[k] = pack(i, c+n)
		return
	}
	*p = slices.Insert(s, k, pack(i, n))
}

// Merge adds o's counts to p.
func (p *Sparse) Merge(o Sparse) {
	for _, x := range o {
		i, n := unpack(x)
		p.AddBin(i, n)
	}
}

// AddTo adds p's counts to s.
func (p Sparse) AddTo(s *Sketch) {
	for _, x := range p {
		i, n := unpack(x)
		s.AddBin(i, uint64(n))
	}
}

// Count returns the number of values counted.
func (p Sparse) Count() uint64 {
	var c uint64
	for _, x := range p {
		_, n := unpack(x)
		c += uint64(n)
	}
	return c
}

// AppendBinary appends the encoding Sketch.AppendBinary uses.
func (p Sparse) AppendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	prev := int32(0)
	for _, x := range p {
		i, n := unpack(x)
		b = binary.AppendVarint(b, int64(i-prev))
		b = binary.AppendUvarint(b, uint64(n))
		prev = i
	}
	return b
}

// DecodeSparse reads a sketch AppendBinary wrote at the start of b and
// returns it and the bytes after it.
func DecodeSparse(b []byte) (Sparse, []byte, error) {
	var s Sketch
	rest, err := s.Decode(b)
	if err != nil {
		return nil, nil, err
	}
	p := make(Sparse, 0, len(s.bins))
	var ferr error
	s.Bins(func(i int32, n uint64) {
		if n > math.MaxUint32 {
			ferr = errors.New("sketch: count too large for a sparse sketch")
		}
		p = append(p, pack(i, uint32(n)))
	})
	return p, rest, ferr
}
