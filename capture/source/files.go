package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/fileset"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// Files is a set of capture files read as one source.
type Files struct {
	set *fileset.Set
	fp  string
}

// OpenFiles scans the files (fileset.Open); span is the flow index's
// bucket span.
func OpenFiles(paths []string, span time.Duration) (*Files, error) {
	set, err := fileset.Open(paths, span)
	if err != nil {
		return nil, err
	}
	// The fingerprint is of the files' contents as scanned (names, sizes,
	// time ranges), not of where they lie: the same captures copied
	// elsewhere are the same data.
	h := sha256.New()
	for _, f := range set.Files() {
		fmt.Fprintf(h, "%s %d %d %d %d\n", f.Name, f.Packets, f.Bytes, f.First.UnixNano(), f.Last.UnixNano())
	}
	return &Files{set: set, fp: "files " + hex.EncodeToString(h.Sum(nil))}, nil
}

// Set returns the files.
func (f *Files) Set() *fileset.Set { return f.set }

// Name implements Source.
func (f *Files) Name() string {
	files := f.set.Files()
	if len(files) == 1 {
		return files[0].Name
	}
	return fmt.Sprintf("%d capture files", len(files))
}

// Bounds implements Source.
func (f *Files) Bounds() (time.Time, time.Time) { return f.set.Bounds() }

// Flows implements Source.
func (f *Files) Flows(_ context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	return f.set.Flows().Query(from, to, nil), nil
}

// Packets implements Source.
func (f *Files) Packets(_ context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	src, _, err := f.set.Window(from, to)
	if err != nil {
		return nil, err
	}
	return Select(src, sel), nil
}

// Count implements Source.
func (f *Files) Count(from, to time.Time) uint64 { return f.set.Count(from, to) }

// LinkTypes implements Source.
func (f *Files) LinkTypes(from, to time.Time) []layers.LinkType {
	var links []layers.LinkType
	for _, fi := range f.set.Files() {
		if (to.IsZero() || fi.First.Before(to)) && (from.IsZero() || !fi.Last.Before(from)) {
			for _, lt := range fi.LinkTypes {
				if !slices.Contains(links, lt) {
					links = append(links, lt)
				}
			}
		}
	}
	slices.Sort(links)
	return links
}

// Status implements Source.
func (f *Files) Status(context.Context) Status {
	st := Status{Decode: f.set.DecodeStats()}
	for _, fi := range f.set.Files() {
		p := Part{Name: fi.Name, Kind: "pcap", First: fi.First, Last: fi.Last, Packets: fi.Packets, Bytes: fi.Bytes, State: StateUp}
		for _, w := range fi.Warnings {
			p.Warnings = append(p.Warnings, w.String())
		}
		st.Parts = append(st.Parts, p)
	}
	return st
}

// Fingerprint implements Source.
func (f *Files) Fingerprint() string { return f.fp }

// Select returns the packets of src that sel keeps; nil keeps all.
func Select(src capture.Source, sel *flowindex.Selector) capture.Source {
	if sel == nil {
		return src
	}
	return &selected{Source: src, sel: sel}
}

type selected struct {
	capture.Source
	sel *flowindex.Selector
}

func (s *selected) Next(p *capture.Packet) error {
	for {
		if err := s.Source.Next(p); err != nil {
			return err
		}
		if s.sel.Keep(p) {
			return nil
		}
	}
}

// empty is a source of no packets.
type empty struct{ name string }

func (e empty) Next(*capture.Packet) error  { return io.EOF }
func (e empty) Warnings() []capture.Warning { return nil }
func (e empty) Name() string                { return e.name }
func (e empty) Close() error                { return nil }
