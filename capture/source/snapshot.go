package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
)

// CreateSnapshot implements Snapshotter: on every part that answers, can
// snapshot and holds packets in [from, to). A part that fails is named in
// the error, after the others were frozen (those stay: nothing is undone).
func (f *Fanout) CreateSnapshot(ctx context.Context, name string, from, to time.Time) ([]SnapshotInfo, error) {
	var out []SnapshotInfo
	var errs []string
	for _, p := range f.Parts() {
		sn, ok := p.(Snapshotter)
		if !ok || p.Count(from, to) == 0 {
			continue
		}
		infos, err := sn.CreateSnapshot(ctx, name, from, to)
		if err != nil {
			errs = append(errs, p.Name()+": "+err.Error())
			continue
		}
		out = append(out, infos...)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("snapshot %q: %s", name, strings.Join(errs, "; "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("snapshot %q: no capture source holds packets in that window (or can snapshot)", name)
	}
	return out, nil
}

// Snapshots implements Snapshotter: every part's, by name then part.
func (f *Fanout) Snapshots(ctx context.Context) ([]SnapshotInfo, error) {
	var out []SnapshotInfo
	for _, p := range f.Parts() {
		if sn, ok := p.(Snapshotter); ok {
			infos, err := sn.Snapshots(ctx)
			if err != nil {
				f.markDown(p, err)
				continue
			}
			out = append(out, infos...)
		}
	}
	slices.SortFunc(out, func(a, b SnapshotInfo) int {
		return strings.Compare(a.Name+"\x00"+a.Part, b.Name+"\x00"+b.Part)
	})
	return out, nil
}

// DeleteSnapshot implements Snapshotter.
func (f *Fanout) DeleteSnapshot(ctx context.Context, name string) error {
	var errs []error
	for _, p := range f.Parts() {
		if sn, ok := p.(Snapshotter); ok {
			if err := sn.DeleteSnapshot(ctx, name); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// OpenSnapshot implements Snapshotter: a fan-out over the parts holding
// the snapshot. Parts that are down now are missing from it (and said to
// be).
func (f *Fanout) OpenSnapshot(ctx context.Context, name string) (Source, error) {
	var parts []Source
	for _, p := range f.Parts() {
		sn, ok := p.(Snapshotter)
		if !ok {
			continue
		}
		s, err := sn.OpenSnapshot(ctx, name)
		if errors.Is(err, ErrNoSnapshot) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %q on %s: %w", name, p.Name(), err)
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoSnapshot, name)
	}
	return NewFanout(FanoutOptions{Parts: parts, Timeout: f.o.Timeout, Now: f.o.Now}), nil
}

// CreateSnapshot implements Snapshotter.
func (s *Store) CreateSnapshot(_ context.Context, name string, from, to time.Time) ([]SnapshotInfo, error) {
	snap, err := s.st.Snapshot(name, from, to)
	if err != nil {
		return nil, err
	}
	return []SnapshotInfo{s.info(snap)}, nil
}

func (s *Store) info(snap segstore.Snapshot) SnapshotInfo {
	return SnapshotInfo{Name: snap.Name, Part: s.name, From: snap.From, To: snap.To, Created: snap.Created, Segments: len(snap.Segments)}
}

// Snapshots implements Snapshotter.
func (s *Store) Snapshots(context.Context) ([]SnapshotInfo, error) {
	snaps, err := s.st.Snapshots()
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, len(snaps))
	for i, snap := range snaps {
		out[i] = s.info(snap)
	}
	return out, nil
}

// DeleteSnapshot implements Snapshotter.
func (s *Store) DeleteSnapshot(_ context.Context, name string) error {
	err := s.st.DeleteSnapshot(name)
	if errors.Is(err, segstore.ErrNoSnapshot) {
		return nil
	}
	return err
}

// OpenSnapshot implements Snapshotter.
func (s *Store) OpenSnapshot(_ context.Context, name string) (Source, error) {
	snap, segs, err := s.st.SnapshotSegments(name)
	if errors.Is(err, segstore.ErrNoSnapshot) {
		return nil, fmt.Errorf("%w: %q", ErrNoSnapshot, name)
	}
	if err != nil {
		return nil, err
	}
	return &frozen{name: s.name + " snapshot " + snap.Name, segs: segs}, nil
}

// frozen is a snapshot of a store: segments that no longer change.
type frozen struct {
	name string
	segs []segstore.Segment
}

func (z *frozen) Name() string                    { return z.name }
func (z *frozen) Bounds() (first, last time.Time) { return SegmentBounds(z.segs) }

func (z *frozen) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	set := NewFlowSet()
	err := segstore.EachSnapshotFlow(z.segs, from, to, func(_ segstore.Segment, fl *segstore.Flow) bool {
		set.Add(fl)
		return ctx.Err() == nil
	})
	return set.Summaries(), errors.Join(err, ctx.Err())
}

func (z *frozen) Packets(_ context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	return Select(segstore.Packets(z.segs, from, to), sel), nil
}

func (z *frozen) Count(from, to time.Time) uint64 { return SegmentCount(z.segs, from, to) }

func (z *frozen) LinkTypes(from, to time.Time) []layers.LinkType {
	return SegmentLinkTypes(z.segs, from, to)
}

func (z *frozen) Status(context.Context) Status {
	p := Part{Name: z.name, Kind: "snapshot", State: StateUp}
	p.First, p.Last = z.Bounds()
	for _, g := range z.segs {
		p.Packets += g.Packets
		p.Bytes += uint64(g.Size)
	}
	return Status{Parts: []Part{p}}
}

func (z *frozen) Fingerprint() string {
	var b strings.Builder
	for _, g := range z.segs {
		fmt.Fprintf(&b, "%d %d %d;", g.Seq, g.Packets, g.Last.UnixNano())
	}
	return "snapshot " + z.name + " " + b.String()
}

// Only returns src narrowed to the flows given (a snapshot made with
// filters reads the flows that matched them then).
func Only(src Source, flows []flowindex.Key) Source {
	keys := make(map[flowindex.Key]bool, len(flows))
	for _, k := range flows {
		keys[k] = true
	}
	return &only{Source: src, keys: keys, flows: flows}
}

type only struct {
	Source
	keys  map[flowindex.Key]bool
	flows []flowindex.Key
}

func (o *only) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	all, err := o.Source.Flows(ctx, from, to)
	return slices.DeleteFunc(all, func(s flowindex.Summary) bool { return !o.keys[s.Key()] }), err
}

func (o *only) Packets(ctx context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	mine := flowindex.NewSelector()
	for _, k := range o.flows {
		mine.Add(k.A, k.B, k.Proto)
	}
	src, err := o.Source.Packets(ctx, from, to, mine)
	if err != nil {
		return nil, err
	}
	return Select(src, sel), nil
}

func (o *only) Fingerprint() string {
	return fmt.Sprintf("%s, %d flows", o.Source.Fingerprint(), len(o.flows))
}

// Parts keeps a fan-out's parts visible (each narrowed the same way), so
// that calls seen on two nodes are still merged.
func (o *only) Parts() []Source {
	m, ok := o.Source.(Multi)
	if !ok {
		return []Source{o}
	}
	var out []Source
	for _, p := range m.Parts() {
		out = append(out, &only{Source: p, keys: o.keys, flows: o.flows})
	}
	return out
}
