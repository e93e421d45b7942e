package segstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Snapshot is a frozen time range.
type Snapshot struct {
	Name     string    `json:"name"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Created  time.Time `json:"created"`
	Segments []string  `json:"segments"` // file names, in the snapshot's directory
	Dir      string    `json:"-"`
}

var snapName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// ValidSnapshotName reports whether a snapshot may be called name: letters,
// digits, '.', '_' and '-', at most 100, beginning with a letter or digit
// (so never "..", an option or a path).
func ValidSnapshotName(name string) bool { return snapName.MatchString(name) }

// Snapshot freezes the segments holding packets in [from, to) under name:
// they are hard-linked into snapshots/NAME, so retention deleting them
// from the store keeps them there. Open segments in the range are closed
// first.
func (s *Store) Snapshot(name string, from, to time.Time) (Snapshot, error) {
	if !snapName.MatchString(name) {
		return Snapshot{}, fmt.Errorf("snapshot name %q: use letters, digits, '.', '_' and '-'", name)
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return Snapshot{}, errors.New("snapshot: from must be before to")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Join(s.dir, "snapshots", name)
	if _, err := os.Stat(dir); err == nil {
		return Snapshot{}, fmt.Errorf("snapshot %q exists", name)
	}
	if err := s.closeAll(func(g *segment) bool { return g.Overlaps(from, to) }); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %s: closing the open segment: %w", name, err)
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, dirMode); err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Name: name, From: from, To: to, Created: s.opts.Now().UTC(), Segments: []string{}}
	for _, g := range s.closed {
		if !g.Overlaps(from, to) {
			continue
		}
		for _, p := range []string{g.Path, indexPath(g.Path)} {
			if err := os.Link(p, filepath.Join(tmp, filepath.Base(p))); err != nil && !errors.Is(err, os.ErrNotExist) {
				os.RemoveAll(tmp)
				return Snapshot{}, fmt.Errorf("snapshot %s: %w", name, err)
			}
		}
		snap.Segments = append(snap.Segments, filepath.Base(g.Path))
	}
	b, _ := json.MarshalIndent(snap, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, "snapshot.json"), b, fileMode); err != nil {
		os.RemoveAll(tmp)
		return Snapshot{}, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return Snapshot{}, err
	}
	snap.Dir = dir
	return snap, nil
}

// Snapshots lists the snapshots, by name.
func (s *Store) Snapshots() ([]Snapshot, error) {
	root := filepath.Join(s.dir, "snapshots")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "snapshot.json"))
		if err != nil {
			continue
		}
		var snap Snapshot
		if json.Unmarshal(b, &snap) != nil {
			continue
		}
		snap.Dir = filepath.Join(root, e.Name())
		out = append(out, snap)
	}
	return out, nil
}

// DeleteSnapshot removes a snapshot; segments the store still holds stay.
func (s *Store) DeleteSnapshot(name string) error {
	if !snapName.MatchString(name) {
		return fmt.Errorf("snapshot name %q is not valid", name)
	}
	dir := filepath.Join(s.dir, "snapshots", name)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %q", ErrNoSnapshot, name)
		}
		return fmt.Errorf("snapshot %q: %w", name, err)
	}
	return os.RemoveAll(dir)
}

// snapshotOnlyBytes is what snapshot files take whose segment the store
// no longer holds (their only link is the snapshot's). Callers hold mu.
func (s *Store) snapshotOnlyBytes() int64 {
	var n int64
	filepath.WalkDir(filepath.Join(s.dir, "snapshots"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 1 {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// SnapshotSegments lists a snapshot's segments, oldest first, described
// by their indexes (every segment of a snapshot is closed), with Path in
// the snapshot's directory: Packets reads them as it reads the store's.
func (s *Store) SnapshotSegments(name string) (Snapshot, []Segment, error) {
	if !snapName.MatchString(name) {
		return Snapshot{}, nil, fmt.Errorf("snapshot name %q is not valid", name)
	}
	dir := filepath.Join(s.dir, "snapshots", name)
	b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Snapshot{}, nil, fmt.Errorf("%w: %q", ErrNoSnapshot, name)
		}
		return Snapshot{}, nil, err
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return Snapshot{}, nil, fmt.Errorf("snapshot %q: %w", name, err)
	}
	snap.Dir = dir
	var segs []Segment
	for _, file := range snap.Segments {
		if filepath.Base(file) != file {
			return snap, nil, fmt.Errorf("snapshot %q names %q, not a file of its own", name, file)
		}
		path := filepath.Join(dir, file)
		g, err := readIndex(indexPath(path))
		if err != nil {
			return snap, nil, fmt.Errorf("snapshot %q: segment %s: %w", name, file, err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return snap, nil, fmt.Errorf("snapshot %q: %w", name, err)
		}
		seg := g.Segment
		seg.Path, seg.Size, seg.Closed = path, fi.Size(), true
		segs = append(segs, seg)
	}
	return snap, segs, nil
}

// ErrNoSnapshot is returned for a snapshot the store does not hold.
var ErrNoSnapshot = errors.New("no such snapshot")

// EachSnapshotFlow calls fn with the flows of the snapshot's segments
// active in [from, to), segment by segment, until fn returns false.
func EachSnapshotFlow(segs []Segment, from, to time.Time, fn func(Segment, *Flow) bool) error {
	for _, seg := range segs {
		if !seg.Overlaps(from, to) {
			continue
		}
		g, err := readIndex(indexPath(seg.Path))
		if err != nil {
			return fmt.Errorf("segment %s: %w", seg.Path, err)
		}
		for _, fl := range g.order {
			if (to.IsZero() || fl.First.Before(to)) && (from.IsZero() || !fl.Last.Before(from)) && !fn(seg, fl) {
				return nil
			}
		}
	}
	return nil
}
