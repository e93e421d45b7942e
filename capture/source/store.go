package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
)

// Store is a segment store this process writes (wirescope hub --iface,
// make run), read through its own flow indexes: Flows reads the indexes
// of the segments in the window, Packets only those segments.
type Store struct {
	st *segstore.Store
	// Drops reports packets the capture lost before the store (kernel ring
	// drops); nil reports none.
	drops func() uint64
	name  string

	mu   sync.Mutex
	segs []segstore.Segment // as of the last Refresh
}

// NewStore reads st; name says what it captures (for capture_status).
func NewStore(st *segstore.Store, name string, drops func() uint64) *Store {
	s := &Store{st: st, name: name, drops: drops}
	s.Refresh(context.Background())
	return s
}

// Refresh implements Refresher: what was written so far becomes readable
// (the store is flushed) and the segments are listed again.
func (s *Store) Refresh(context.Context) (bool, error) {
	err := s.st.Flush()
	segs := s.st.Segments()
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := !slices.Equal(segs, s.segs)
	s.segs = segs
	return changed, err
}

func (s *Store) segments() []segstore.Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.segs
}

// Name implements Source.
func (s *Store) Name() string { return s.name }

// Bounds implements Source.
func (s *Store) Bounds() (first, last time.Time) { return SegmentBounds(s.segments()) }

// SegmentBounds returns the times of the first and last packets of
// segments.
func SegmentBounds(segs []segstore.Segment) (first, last time.Time) {
	for _, g := range segs {
		if g.Packets == 0 {
			continue
		}
		if first.IsZero() || g.First.Before(first) {
			first = g.First
		}
		if g.Last.After(last) {
			last = g.Last
		}
	}
	return first, last
}

// Flows implements Source.
func (s *Store) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	set := NewFlowSet()
	err := s.st.EachFlow(from, to, func(_ segstore.Segment, fl *segstore.Flow) bool {
		set.Add(fl)
		return ctx.Err() == nil
	})
	if err == nil {
		err = ctx.Err()
	}
	return set.Summaries(), err
}

// Packets implements Source.
func (s *Store) Packets(_ context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	return Select(segstore.Packets(s.segments(), from, to), sel), nil
}

// Count implements Source.
func (s *Store) Count(from, to time.Time) uint64 { return SegmentCount(s.segments(), from, to) }

// SegmentCount bounds the packets of segments in [from, to): those of
// every segment overlapping it.
func SegmentCount(segs []segstore.Segment, from, to time.Time) uint64 {
	var n uint64
	for _, g := range segs {
		if g.Overlaps(from, to) {
			n += g.Packets
		}
	}
	return n
}

// LinkTypes implements Source.
func (s *Store) LinkTypes(from, to time.Time) []layers.LinkType {
	return SegmentLinkTypes(s.segments(), from, to)
}

// SegmentLinkTypes lists the link types of the segments overlapping
// [from, to).
func SegmentLinkTypes(segs []segstore.Segment, from, to time.Time) []layers.LinkType {
	var links []layers.LinkType
	for _, g := range segs {
		if g.Overlaps(from, to) && !slices.Contains(links, g.LinkType) {
			links = append(links, g.LinkType)
		}
	}
	slices.Sort(links)
	return links
}

// Status implements Source.
func (s *Store) Status(context.Context) Status {
	st := s.st.Stats()
	p := Part{Name: s.name, Kind: "store", Packets: st.Packets, Bytes: st.Bytes, Drops: st.Dropped, State: StateUp}
	p.First, p.Last = s.Bounds()
	if s.drops != nil {
		p.Drops += s.drops()
	}
	if st.LastError != "" {
		p.Warnings = append(p.Warnings, "store: "+st.LastError)
	}
	return Status{Parts: []Part{p}}
}

// Fingerprint implements Source: the segments held, so that it changes as
// the store grows.
func (s *Store) Fingerprint() string {
	h := sha256.New()
	for _, g := range s.segments() {
		fmt.Fprintf(h, "%d %d %d %d %d\n", g.Seq, g.LinkType, g.Packets, g.First.UnixNano(), g.Last.UnixNano())
	}
	return "store " + hex.EncodeToString(h.Sum(nil))
}
