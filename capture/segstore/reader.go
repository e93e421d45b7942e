package segstore

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// List reads the segments of the store in dir without opening it, for a
// reader in another process than the writer (`wirescope dissect --store`
// beside a running agent): closed segments are described by their
// indexes; a segment without one (open, or left by a crash) by its file,
// with its times unknown (zero) and Closed false. Oldest first.
func List(dir string) ([]Segment, error) {
	segDir := filepath.Join(dir, "segments")
	entries, err := os.ReadDir(segDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not a segment store (no segments directory)", dir)
		}
		return nil, err
	}
	var out []Segment
	for _, e := range entries {
		m := segName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		lt, _ := strconv.ParseUint(m[2], 10, 16)
		path := filepath.Join(segDir, e.Name())
		fi, err := os.Stat(path)
		if err != nil {
			continue // deleted by retention meanwhile
		}
		seg := Segment{Seq: seq, Path: path, LinkType: layers.LinkType(lt), Size: fi.Size()}
		if g, err := readIndex(indexPath(path)); err == nil && g.Seq == seq {
			seg.First, seg.Last, seg.Packets, seg.Other, seg.Closed = g.First, g.Last, g.Packets, g.Other, true
		}
		out = append(out, seg)
	}
	slices.SortFunc(out, func(a, b Segment) int { return cmpUint(a.Seq, b.Seq) })
	return out, nil
}

// Overlaps reports whether the segment may hold packets in [from, to)
// (zero is unbounded): one whose times are unknown (an open segment List
// found without an index) may; one without packets does not.
func (g Segment) Overlaps(from, to time.Time) bool {
	if g.First.IsZero() && !g.Closed {
		return true
	}
	return g.Packets > 0 && (to.IsZero() || g.First.Before(to)) && (from.IsZero() || !g.Last.Before(from))
}

// ReorderHorizon is how far back in time Packets looks to put packets in
// order: packets of several interfaces reach a segment in the order their
// rings delivered them, which can be out of time order by up to a ring
// block's timeout.
const ReorderHorizon = time.Second

// maxReorderBytes bounds what Packets holds back to reorder; past it,
// packets go out in the order they come.
const maxReorderBytes = 32 << 20

// Packets reads the packets of the segments given that fall in [from, to)
// (zero is unbounded), in time order, merged across segments and link
// types. Segments are opened one at a time per link type, as the reading
// reaches them; an open segment is read up to its Size (its last whole
// packet on disk). A segment deleted (by retention) before it is reached
// is skipped with a warning, as is a damaged tail.
func Packets(segs []Segment, from, to time.Time) capture.Source {
	byLink := map[layers.LinkType][]Segment{}
	var links []layers.LinkType
	for _, g := range segs {
		if !g.Overlaps(from, to) {
			continue
		}
		if _, ok := byLink[g.LinkType]; !ok {
			links = append(links, g.LinkType)
		}
		byLink[g.LinkType] = append(byLink[g.LinkType], g)
	}
	slices.Sort(links)
	var srcs []capture.Source
	for _, lt := range links {
		srcs = append(srcs, &chain{segs: byLink[lt]})
	}
	if len(srcs) == 0 {
		return &chain{}
	}
	return &ordered{src: capture.Merge(srcs...), from: from, to: to}
}

// chain reads segments one after the other.
type chain struct {
	segs []Segment
	cur  *capture.File
	f    *os.File
	warn []capture.Warning
}

func (c *chain) Name() string { return "segment store" }

func (c *chain) Warnings() []capture.Warning {
	w := slices.Clone(c.warn)
	if c.cur != nil {
		w = append(w, c.cur.Warnings()...)
	}
	return w
}

func (c *chain) Next(p *capture.Packet) error {
	for {
		if c.cur != nil {
			err := c.cur.Next(p)
			if err == nil {
				return nil
			}
			if err != io.EOF {
				c.warn = append(c.warn, capture.Warning{Source: c.cur.Name(), Err: err})
			}
			c.closeCur()
		}
		if len(c.segs) == 0 {
			return io.EOF
		}
		g := c.segs[0]
		c.segs = c.segs[1:]
		f, err := os.Open(g.Path)
		if err != nil {
			c.warn = append(c.warn, capture.Warning{Source: filepath.Base(g.Path), Err: fmt.Errorf("segment skipped: %w", err)})
			continue
		}
		var r io.Reader = f
		if !g.Closed && g.Size > 0 {
			r = io.LimitReader(f, g.Size)
		}
		cur, err := capture.NewReader(filepath.Base(g.Path), r)
		if err != nil {
			f.Close()
			c.warn = append(c.warn, capture.Warning{Source: filepath.Base(g.Path), Err: fmt.Errorf("segment skipped: %w", err)})
			continue
		}
		c.cur, c.f = cur, f
	}
}

func (c *chain) closeCur() {
	c.warn = append(c.warn, c.cur.Warnings()...)
	c.cur.Close()
	c.f.Close()
	c.cur, c.f = nil, nil
}

func (c *chain) Close() error {
	if c.cur != nil {
		c.closeCur()
	}
	c.segs = nil
	return nil
}

// ordered puts packets in time order within ReorderHorizon and keeps
// those in [from, to).
type ordered struct {
	src      capture.Source
	from, to time.Time
	held     packetHeap
	arrivals uint64
	bytes    int
	newest   time.Time
	eof      bool
	out      capture.Packet
}

func (o *ordered) Name() string                { return o.src.Name() }
func (o *ordered) Warnings() []capture.Warning { return o.src.Warnings() }
func (o *ordered) Close() error                { return o.src.Close() }

func (o *ordered) Next(p *capture.Packet) error {
	for {
		if len(o.held) > 0 && (o.eof || o.bytes > maxReorderBytes || !o.held[0].Timestamp.After(o.newest.Add(-ReorderHorizon))) {
			o.out = heap.Pop(&o.held).(held).Packet
			o.bytes -= len(o.out.Data)
			*p = o.out
			return nil
		}
		if o.eof {
			return io.EOF
		}
		var in capture.Packet
		if err := o.src.Next(&in); err == io.EOF {
			o.eof = true
			continue
		} else if err != nil {
			return err
		}
		if (!o.from.IsZero() && in.Timestamp.Before(o.from)) || (!o.to.IsZero() && !in.Timestamp.Before(o.to)) {
			continue
		}
		in.Data = slices.Clone(in.Data)
		if in.Timestamp.After(o.newest) {
			o.newest = in.Timestamp
		}
		o.arrivals++
		heap.Push(&o.held, held{in, o.arrivals})
		o.bytes += len(in.Data)
	}
}

// held is a packet held back, with its place in arrival order.
type held struct {
	capture.Packet
	n uint64
}

// packetHeap orders packets by time, then by arrival.
type packetHeap []held

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if !h[i].Timestamp.Equal(h[j].Timestamp) {
		return h[i].Timestamp.Before(h[j].Timestamp)
	}
	return h[i].n < h[j].n
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}
