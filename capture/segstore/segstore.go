// Package segstore keeps captured packets on disk as a rolling series of
// PCAP segments, each with a compact flow index, for a node agent to record
// everything it sees within a bounded amount of disk.
//
// A segment is a classic PCAP file (nanosecond timestamps) that Wireshark
// and tshark open as it is, of one link type. Segments rotate by size and
// age; whole segments are deleted, oldest first, to keep the store within
// its byte and age limits. When a segment closes, its flow index is written
// beside it: for every flow, the 5-tuple, first and last time, packets and
// bytes each way, the TCP flags seen, the interface, and the process and
// cgroup when known. FORMAT.md has the bytes.
//
// Write only copies a packet into the open segment's buffer; full buffers
// are written with O_DIRECT (see fileWriter), and a segment closed by
// rotation is finished beside Write (see finish).
//
// Crash safety: a closed segment is synced before its index is written, and
// the index is written to a temporary file, synced and renamed. After a
// crash (kill -9, power loss) every closed segment is intact; the segments
// that were open or closing are readable up to their last whole packet, and
// Open rebuilds the index of any segment that lacks one from the PCAP
// itself, cutting off a record the crash left partial.
//
// A full disk stops writing cleanly: the open segment is cut back to its
// last whole packet and closed, Write reports ErrFull and counts what it
// drops, and writing resumes when space comes back. Nothing already written
// is damaged.
//
// Snapshots freeze a time range against deletion by hard-linking its
// segments into a directory of their own, which costs no copy.
package segstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// Defaults of Options.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultSegmentAge   = 5 * time.Minute
	DefaultSnapLen      = 262144
	DefaultFlushEvery   = time.Second
	// retryFull is how often a full store tries to write again.
	retryFull = 5 * time.Second
)

// The modes of what the store creates: its owner's alone, like the PCAP
// files the server exports.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// ErrFull is returned by Write while the disk is full: the packet is
// dropped and counted.
var ErrFull = errors.New("segment store: disk full, packet dropped")

// Options configure a Store. Zero fields take defaults.
type Options struct {
	// SegmentBytes and SegmentAge rotate the open segment when it would
	// grow past SegmentBytes or has been open for SegmentAge.
	SegmentBytes int64
	SegmentAge   time.Duration
	// MaxBytes and MaxAge bound what is kept: past either, the oldest
	// closed segments are deleted. Zero is unbounded.
	MaxBytes int64
	MaxAge   time.Duration
	// SnapLen is written into each segment's header as the snap length.
	SnapLen int
	// FlushEvery bounds how long written packets may wait in memory
	// before reaching the file (Write flushes when it is due; Flush
	// flushes now).
	FlushEvery time.Duration
	// Now is the clock for segment and retention ages; default time.Now.
	Now func() time.Time
	// Logger receives what recovery and retention do; nil discards it.
	Logger *slog.Logger
	// Attribute, when set, names the processes of each flow's sockets;
	// Store.Attribute asks it about new flows, and a closing segment about
	// those not asked yet.
	Attribute Attributor
}

// Segment describes one segment.
type Segment struct {
	Seq      uint64
	Path     string // the PCAP file
	LinkType layers.LinkType
	// First and Last are the times of its first and last packets.
	First, Last time.Time
	Packets     uint64
	Size        int64 // bytes of the file
	// Other counts packets that are in the file but in no flow (not IP,
	// or not decodable); TLS plaintext records, in no flow either, are not
	// counted in it.
	Other  uint64
	Closed bool
}

// Stats is what a store has done.
type Stats struct {
	// Packets and Bytes count what was written (frames, file bytes).
	Packets uint64
	Bytes   uint64
	// Dropped counts packets Write could not store (disk full).
	Dropped  uint64
	Segments int
	// Oldest and Newest bound the packets held.
	Oldest, Newest time.Time
	// DiskBytes is what the segments take, and SnapshotBytes what
	// snapshots alone keep (segments retention already deleted).
	DiskBytes, SnapshotBytes int64
	// Full is set while the disk is full; LastError says what failed last.
	Full      bool
	LastError string
}

// Store is a directory of segments. Write is for one goroutine at a time;
// everything else is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	mu     sync.Mutex
	closed []*segment // oldest first
	// closing holds segments closed by Write whose last bytes and index
	// are being written; idle is signalled as each leaves.
	closing []*segment
	idle    *sync.Cond
	open    map[layers.LinkType]*segment
	// last holds the flows of the segment closed last, per link type,
	// until the next segment of that link type opens and takes them.
	last    map[layers.LinkType]map[flowindex.Key]*Flow
	nextSeq uint64
	// now is Options.Now as Write last read it, at packet time nowAt.
	now, nowAt time.Time
	dec        *capture.Decoder
	decoded    capture.Decoded
	stats      Stats
	full       time.Time // when the disk filled; zero when not full
	done       bool
}

// segment is a segment's state: its file while open, and its flows.
type segment struct {
	Segment
	flows map[flowindex.Key]*Flow
	order []*Flow // flows in order of first packet
	// prev holds the flows of the segment before it while it is written:
	// a connection continuing from it keeps its orientation.
	prev map[flowindex.Key]*Flow
	// asked counts the flows of order whose processes were asked for.
	asked int

	// While open and closing:
	f        *os.File
	w        *fileWriter
	pw       *pcapgo.Writer
	opened   time.Time
	logical  int64 // bytes written to w, header included
	lastSync time.Time
	closeErr error // what failed while it closed
}

// durable is the end of the segment's last whole record in its file.
func (g *segment) durable() int64 {
	if g.Closed {
		return g.Size
	}
	return g.w.durable.Load()
}

var segName = regexp.MustCompile(`^(\d{12})-lt(\d+)\.pcap$`)

// Open opens (creating it if needed) the store in dir, taking an exclusive
// lock on it, and recovers from an earlier crash: indexes missing or
// damaged are rebuilt from their segments.
func Open(dir string, o Options) (*Store, error) {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentAge <= 0 {
		o.SegmentAge = DefaultSegmentAge
	}
	if o.SnapLen <= 0 {
		o.SnapLen = DefaultSnapLen
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Segments hold whatever crossed the wire: readable by the agent's
	// user alone. The directories an older version made world-readable are
	// tightened; dir itself, which the user may have made, is not.
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(dir, "segments"), filepath.Join(dir, "snapshots")} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return nil, err
		}
		if err := os.Chmod(d, dirMode); err != nil {
			return nil, err
		}
	}
	lock, err := lockFile(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: o, log: log, lock: lock, open: map[layers.LinkType]*segment{}, last: map[layers.LinkType]map[flowindex.Key]*Flow{},
		nextSeq: 1, dec: capture.NewDecoder()}
	s.idle = sync.NewCond(&s.mu)
	if err := s.recover(); err != nil {
		s.unlock()
		return nil, err
	}
	s.retain()
	return s, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func indexPath(pcap string) string { return strings.TrimSuffix(pcap, ".pcap") + ".flows" }

// Close closes the open segments, writing their indexes, and releases the
// store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	first := s.closeAll(func(*segment) bool { return true })
	s.done = true
	s.unlock()
	return first
}

func (s *Store) unlock() {
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	_ = s.lock.Close()
}

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock store: %s is in use by another process", filepath.Dir(path))
		}
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return f, nil
}

// Segments lists the segments, oldest first; those not closed yet (open,
// or being closed) last, with Size the bytes up to their last whole
// packet known to be in the file (a reader reading that far reads whole
// packets only).
func (s *Store) Segments() []Segment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Segment
	for _, g := range s.closed {
		out = append(out, g.Segment)
	}
	for _, g := range s.unclosed() {
		seg := g.Segment
		seg.Size = g.durable()
		out = append(out, seg)
	}
	return out
}

// openSorted lists the open segments in sequence order. Callers hold mu.
func (s *Store) openSorted() []*segment {
	var open []*segment
	for _, g := range s.open {
		open = append(open, g)
	}
	slices.SortFunc(open, func(a, b *segment) int { return cmpUint(a.Seq, b.Seq) })
	return open
}

// unclosed lists the segments being closed and the open ones, in sequence
// order. Callers hold mu.
func (s *Store) unclosed() []*segment {
	all := append(slices.Clone(s.closing), s.openSorted()...)
	slices.SortFunc(all, func(a, b *segment) int { return cmpUint(a.Seq, b.Seq) })
	return all
}

// Stats reports what the store holds and has done.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Full = !s.full.IsZero()
	all := append(slices.Clone(s.closed), s.unclosed()...)
	st.Segments = len(all)
	for _, g := range all {
		if g.Packets > 0 {
			if st.Oldest.IsZero() || g.First.Before(st.Oldest) {
				st.Oldest = g.First
			}
			if g.Last.After(st.Newest) {
				st.Newest = g.Last
			}
		}
		if g.Closed {
			st.DiskBytes += g.Size
		} else {
			st.DiskBytes += g.durable()
		}
	}
	st.SnapshotBytes = s.snapshotOnlyBytes()
	return st
}
