package segstore

import (
	"errors"
	"os"
	"slices"
	"time"
)

// retire adds a segment whose index is written to the closed ones, in
// sequence order. Its flows leave memory (Flows reads them back from the
// index); the next segment of its link type may still hold them, to
// orient connections that continue.
func (s *Store) retire(seg *segment) {
	seg.flows, seg.order = nil, nil
	i, _ := slices.BinarySearchFunc(s.closed, seg.Seq, func(g *segment, seq uint64) int { return cmpUint(g.Seq, seq) })
	s.closed = slices.Insert(s.closed, i, seg)
}

// retain deletes the oldest closed segments while the store is over its
// byte or age limit. Callers hold mu (or own the store).
func (s *Store) retain() {
	total := int64(0)
	for _, g := range s.closed {
		total += g.Size
	}
	oldestClosing := uint64(0)
	for _, g := range s.closing {
		total += g.logical
		if oldestClosing == 0 || g.Seq < oldestClosing {
			oldestClosing = g.Seq
		}
	}
	for _, g := range s.open {
		total += g.logical
	}
	cutoff := time.Time{}
	if s.opts.MaxAge > 0 {
		cutoff = s.opts.Now().Add(-s.opts.MaxAge)
	}
	for len(s.closed) > 0 {
		g := s.closed[0]
		if oldestClosing != 0 && oldestClosing < g.Seq {
			break // oldest first: an older segment is still closing
		}
		over := s.opts.MaxBytes > 0 && total > s.opts.MaxBytes
		old := !cutoff.IsZero() && g.Last.Before(cutoff)
		if !over && !old {
			break
		}
		if err := os.Remove(g.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("retention: cannot delete segment", "segment", g.Path, "err", err)
			break
		}
		os.Remove(indexPath(g.Path))
		total -= g.Size
		s.closed = s.closed[1:]
		s.log.Debug("retention: segment deleted", "segment", g.Path, "over_bytes", over, "too_old", old)
	}
}
