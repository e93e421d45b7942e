// Package fileset reads several capture files as one time-ordered source of
// packets, for serving a capture offline (wirescope mcp --pcap).
//
// Open scans every file once: it records each file's time range, packet
// count and damage, builds a flow index of all packets (capture/flowindex),
// and keeps a checkpoint every 1,024 packets so that a time window can be
// read without reading the whole capture. A checkpoint knows the latest
// timestamp of the packets before it and the earliest of the packets from
// it on, so windows are exact even when timestamps are slightly out of
// order: reading starts at the last checkpoint before which no packet is in
// the window, and stops at the first from which none is. Uncompressed
// classic pcap files are read from that checkpoint's offset; pcapng and
// gzip files, which cannot be entered in the middle, are read from their
// start and skipped forward.
package fileset

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// checkpointEvery is how many packets lie between checkpoints.
const checkpointEvery = 1024

// File describes one file of a Set.
type File struct {
	Path        string
	Name        string
	First, Last time.Time
	Packets     uint64
	Bytes       uint64 // captured bytes of the packets
	LinkTypes   []layers.LinkType
	Warnings    []capture.Warning
	// Seekable is set for uncompressed classic pcap files, whose windows
	// are read from the nearest checkpoint.
	Seekable bool
}

type checkpoint struct {
	index     uint64    // packets before it
	offset    int64     // byte offset of its record
	maxBefore time.Time // latest timestamp of the packets before it
	minFrom   time.Time // earliest timestamp of the packets from it on
}

type file struct {
	File
	checkpoints []checkpoint
}

// Set is a collection of capture files read as one.
type Set struct {
	files       []*file
	flows       *flowindex.Index
	decode      capture.DecodeStats
	first, last time.Time
	packets     uint64
	bytes       uint64
}

// Open scans the files. A file that cannot be read at all is an error; a
// damaged one keeps the packets before the damage and its warning. span is
// the flow index's bucket span (0: a minute).
func Open(paths []string, span time.Duration) (*Set, error) {
	if len(paths) == 0 {
		return nil, errors.New("no capture files")
	}
	s := &Set{flows: flowindex.New(span)}
	dec := capture.NewDecoder()
	for _, p := range paths {
		f, err := s.scan(p, dec)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, f)
		if f.Packets == 0 {
			continue
		}
		if s.first.IsZero() || f.First.Before(s.first) {
			s.first = f.First
		}
		if f.Last.After(s.last) {
			s.last = f.Last
		}
		s.packets += f.Packets
		s.bytes += f.Bytes
	}
	s.decode = dec.Stats
	return s, nil
}

func (s *Set) scan(path string, dec *capture.Decoder) (*file, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	f := &file{File: File{Path: path, Name: filepath.Base(path), Seekable: src.Seekable()}}
	var (
		p       capture.Packet
		d       capture.Decoded
		maxSeen time.Time
	)
	for {
		off := src.Offset()
		if err := src.Next(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("scan %s: %w", path, err)
		}
		if f.Packets%checkpointEvery == 0 {
			f.checkpoints = append(f.checkpoints, checkpoint{index: f.Packets, offset: off, maxBefore: maxSeen})
		}
		ts := p.Timestamp
		if ts.After(maxSeen) {
			maxSeen = ts
		}
		if f.First.IsZero() || ts.Before(f.First) {
			f.First = ts
		}
		f.Packets++
		f.Bytes += uint64(len(p.Data))
		if !slices.Contains(f.LinkTypes, p.LinkType) {
			f.LinkTypes = append(f.LinkTypes, p.LinkType)
		}
		// The earliest timestamp from each checkpoint on: every open
		// checkpoint whose minimum this packet lowers.
		for i := len(f.checkpoints) - 1; i >= 0; i-- {
			c := &f.checkpoints[i]
			if !c.minFrom.IsZero() && !ts.Before(c.minFrom) {
				break
			}
			c.minFrom = ts
		}
		if dec.Decode(p.LinkType, p.Data, p.Length, ts, &d) == nil {
			s.flows.Add(&d, ts)
		}
	}
	f.Last = maxSeen
	f.Warnings = src.Warnings()
	return f, nil
}

// Files describes the files.
func (s *Set) Files() []File {
	out := make([]File, len(s.files))
	for i, f := range s.files {
		out[i] = f.File
	}
	return out
}

// Flows returns the flow index of all packets.
func (s *Set) Flows() *flowindex.Index { return s.flows }

// Bounds returns the first and last packet times.
func (s *Set) Bounds() (first, last time.Time) { return s.first, s.last }

// Packets returns the number of packets and their captured bytes.
func (s *Set) Packets() (packets, bytes uint64) { return s.packets, s.bytes }

// DecodeStats reports the packets the scan could not decode.
func (s *Set) DecodeStats() capture.DecodeStats { return s.decode }

// Window returns a source of the packets captured in [from, to) (zero
// times are unbounded), merged across files in time order, and an upper
// bound of how many packets it reads. Its Next returns packets one by one;
// closing it closes the files.
func (s *Set) Window(from, to time.Time) (capture.Source, uint64, error) {
	var srcs []capture.Source
	var total uint64
	for _, f := range s.files {
		if !f.overlaps(from, to) {
			continue
		}
		w, n, err := f.window(from, to)
		if err != nil {
			for _, o := range srcs {
				o.Close()
			}
			return nil, 0, err
		}
		srcs = append(srcs, w)
		total += n
	}
	if len(srcs) == 0 {
		return empty{}, 0, nil
	}
	return capture.Merge(srcs...), total, nil
}

// Count returns an upper bound of how many packets Window(from, to) reads,
// without opening any file.
func (s *Set) Count(from, to time.Time) uint64 {
	var total uint64
	for _, f := range s.files {
		if f.overlaps(from, to) {
			start, stop := f.span(from, to)
			total += stop - f.checkpoints[start].index
		}
	}
	return total
}

// overlaps reports whether the file may hold packets in [from, to).
func (f *file) overlaps(from, to time.Time) bool {
	return f.Packets > 0 && (to.IsZero() || f.First.Before(to)) && (from.IsZero() || !f.Last.Before(from))
}

// span returns the checkpoint reading [from, to) starts at (the last before
// which no packet is in the window) and the index of the packet it stops
// at (the first checkpoint from which none is).
func (f *file) span(from, to time.Time) (start int, stop uint64) {
	if !from.IsZero() {
		for i, c := range f.checkpoints {
			if !c.maxBefore.Before(from) {
				break
			}
			start = i
		}
	}
	stop = f.Packets
	if !to.IsZero() {
		for _, c := range f.checkpoints[start:] {
			if !c.minFrom.Before(to) {
				stop = c.index
				break
			}
		}
	}
	return start, stop
}

// window opens a file positioned for [from, to).
func (f *file) window(from, to time.Time) (capture.Source, uint64, error) {
	start, stop := f.span(from, to)
	src, err := capture.OpenFile(f.Path)
	if err != nil {
		return nil, 0, err
	}
	w := &windowed{src: src, from: from, to: to, next: 0, stop: stop}
	cp := f.checkpoints[start]
	if cp.index > 0 {
		if src.Seekable() {
			if err := src.SeekRecord(cp.offset, int(cp.index)); err != nil {
				src.Close()
				return nil, 0, err
			}
			w.next = cp.index
		} else {
			w.skip = cp.index
		}
	}
	return w, stop - cp.index, nil
}

// windowed yields a file's packets inside a time window.
type windowed struct {
	src      *capture.File
	from, to time.Time
	next     uint64 // index of the next packet read
	skip     uint64 // packets to pass over first (files that cannot seek)
	stop     uint64 // index at which no later packet is in the window
}

func (w *windowed) Next(p *capture.Packet) error {
	for {
		if w.next >= w.stop {
			return io.EOF
		}
		if err := w.src.Next(p); err != nil {
			return err
		}
		w.next++
		if w.next <= w.skip {
			continue
		}
		ts := p.Timestamp
		if (w.from.IsZero() || !ts.Before(w.from)) && (w.to.IsZero() || ts.Before(w.to)) {
			return nil
		}
	}
}

func (w *windowed) Warnings() []capture.Warning { return w.src.Warnings() }
func (w *windowed) Name() string                { return w.src.Name() }
func (w *windowed) Close() error                { return w.src.Close() }

type empty struct{}

func (empty) Next(*capture.Packet) error  { return io.EOF }
func (empty) Warnings() []capture.Warning { return nil }
func (empty) Name() string                { return "empty window" }
func (empty) Close() error                { return nil }
