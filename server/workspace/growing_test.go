package workspace_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/server/workspace"
)

// TestGrowing: a workspace over a segment store being written sees new
// segments at the next tool call (when due), dissects them, and answers
// ErrNothingYet before anything was captured.
func TestGrowing(t *testing.T) {
	dir := t.TempDir()
	store, err := segstore.Open(filepath.Join(dir, "store"), segstore.Options{SegmentBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	list := func() ([]string, error) {
		store.Rotate()
		var paths []string
		for _, g := range store.Segments() {
			if g.Packets > 0 {
				paths = append(paths, g.Path)
			}
		}
		return paths, nil
	}
	g, err := workspace.OpenGrowing(workspace.Options{Dir: filepath.Join(dir, "ws")}, "a test store", source.NewListed("a test store", list, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Hold(); !errors.Is(err, workspace.ErrNothingYet) {
		t.Fatalf("an empty store: %v", err)
	}
	// capture_status still answers: the source, and that nothing came yet.
	if st, err := g.Status(t.Context()); err != nil || st.Packets != 0 ||
		!slices.ContainsFunc(st.Notes, func(n string) bool { return strings.HasPrefix(n, "nothing captured yet") }) {
		t.Fatalf("Status of an empty store: %v, %+v", err, st)
	}

	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	write := func(conns int, start time.Time) time.Time {
		var pkts []capture.Packet
		end := capturetest.Load{Conns: conns, Requests: 2, Start: start}.Emit(func(p capture.Packet) {
			p.Data = slices.Clone(p.Data)
			pkts = append(pkts, p)
		})
		for i := range pkts {
			if err := store.Write(&pkts[i], "eth0"); err != nil {
				t.Fatal(err)
			}
		}
		return end
	}
	calls := func() uint64 { return growingCalls(t, g) }
	end := write(10, t0)
	if n := calls(); n != 20 {
		t.Errorf("after the first batch: %d calls, want 20", n)
	}
	write(15, end.Add(time.Minute))
	if n := calls(); n != 50 {
		t.Errorf("after the second batch: %d calls, want 50", n)
	}
	if first, last := g.Bounds(); !first.Equal(t0) || !last.After(end.Add(time.Minute)) {
		t.Errorf("bounds %v – %v", first, last)
	}
	if !g.Live() {
		t.Error("a growing workspace is not live")
	}
}

// TestGrowingFileGrows: a capture file still being written keeps its path
// (the open segment of an agent's store) and grows; the next tool call
// sees what was added, not the file as it was when first opened.
func TestGrowingFileGrows(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "open.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pw, err := capturetest.NewPCAPWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	list := func() ([]string, error) { return []string{path}, nil }
	g, err := workspace.OpenGrowing(workspace.Options{Dir: filepath.Join(dir, "ws")}, "a growing file", source.NewListed("a growing file", list, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	calls := func() uint64 { return growingCalls(t, g) }
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	end := capturetest.Load{Conns: 3, Requests: 2, Start: t0}.Emit(pw.Emit)
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := calls(); n != 6 {
		t.Fatalf("the file's first part: %d calls, want 6", n)
	}
	capturetest.Load{Conns: 4, Requests: 2, Start: end.Add(time.Second)}.Emit(pw.Emit)
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := calls(); n != 14 {
		t.Errorf("after the file grew: %d calls, want 14", n)
	}
}

// growingCalls holds g as a tool call would, dissects all it serves and
// returns the number of calls indexed.
func growingCalls(t *testing.T, g *workspace.Growing) uint64 {
	t.Helper()
	release, err := g.Hold()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx := context.Background()
	if _, err := g.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range st.Calls {
		n += c
	}
	return n
}
