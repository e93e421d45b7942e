package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// Listed is capture files that keep changing: a segment store another
// process writes (wirescope mcp --store), or a file still being written.
// Refresh lists them again and, when they changed (other files, or the
// same ones grown), scans them afresh. Listed implements Source and
// Refresher.
type Listed struct {
	name string
	list func() ([]string, error)
	span time.Duration

	mu    sync.Mutex
	paths []string
	seen  []fileState
	files *Files
}

// fileState is what says a capture file changed: a segment still being
// written keeps its path and grows.
type fileState struct {
	size, mod int64
}

// NewListed returns a source of the files list returns; name says what
// they are. Nothing is read before Refresh.
func NewListed(name string, list func() ([]string, error), span time.Duration) *Listed {
	return &Listed{name: name, list: list, span: span}
}

// ErrNoFiles is what a Listed source answers while there are no files.
var ErrNoFiles = errors.New("no capture files yet")

// Refresh implements Refresher.
func (l *Listed) Refresh(context.Context) (bool, error) {
	paths, err := l.list()
	if err != nil {
		return false, err
	}
	seen := make([]fileState, len(paths))
	for i, p := range paths {
		seen[i] = fileState{size: -1}
		if fi, err := os.Stat(p); err == nil {
			seen[i] = fileState{size: fi.Size(), mod: fi.ModTime().UnixNano()}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.files != nil && slices.Equal(paths, l.paths) && slices.Equal(seen, l.seen) {
		return false, nil
	}
	if len(paths) == 0 {
		l.paths, l.seen, l.files = nil, nil, nil
		return true, ErrNoFiles
	}
	files, err := OpenFiles(paths, l.span)
	if err != nil {
		return false, fmt.Errorf("opening %d capture files: %w", len(paths), err)
	}
	l.paths, l.seen, l.files = paths, seen, files
	return true, nil
}

// Paths lists the files read.
func (l *Listed) Paths() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.paths)
}

func (l *Listed) cur() *Files {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.files
}

// Name implements Source.
func (l *Listed) Name() string { return l.name }

// Bounds implements Source.
func (l *Listed) Bounds() (time.Time, time.Time) {
	if f := l.cur(); f != nil {
		return f.Bounds()
	}
	return time.Time{}, time.Time{}
}

// Flows implements Source.
func (l *Listed) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	if f := l.cur(); f != nil {
		return f.Flows(ctx, from, to)
	}
	return nil, nil
}

// Packets implements Source.
func (l *Listed) Packets(ctx context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	if f := l.cur(); f != nil {
		return f.Packets(ctx, from, to, sel)
	}
	return empty{name: l.name}, nil
}

// Count implements Source.
func (l *Listed) Count(from, to time.Time) uint64 {
	if f := l.cur(); f != nil {
		return f.Count(from, to)
	}
	return 0
}

// LinkTypes implements Source.
func (l *Listed) LinkTypes(from, to time.Time) []layers.LinkType {
	if f := l.cur(); f != nil {
		return f.LinkTypes(from, to)
	}
	return nil
}

// Status implements Source.
func (l *Listed) Status(ctx context.Context) Status {
	if f := l.cur(); f != nil {
		return f.Status(ctx)
	}
	return Status{}
}

// Fingerprint implements Source.
func (l *Listed) Fingerprint() string {
	if f := l.cur(); f != nil {
		return f.Fingerprint()
	}
	return "listed, empty"
}
