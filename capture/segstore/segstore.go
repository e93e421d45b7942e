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
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
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

// Flow is one flow of a segment. Src is the side that opened it: the
// sender of its first packet, or of the SYN when the first packet seen
// was a SYN-ACK.
type Flow struct {
	Proto       layers.IPProtocol
	Src, Dst    netip.AddrPort
	First, Last time.Time
	// Packets and Bytes (frame lengths on the wire) are Src→Dst, then
	// Dst→Src; Flags are the flowindex TCP flags (FlagSYN, …) each side
	// sent.
	Packets, Bytes [2]uint64
	Flags          [2]uint8
	// Interface is where the flow's first packet was captured.
	Interface string
	// Procs are the processes holding the flow's sockets on this node,
	// Src's then Dst's, where known (Options.Attribute); zero otherwise.
	Procs [2]Proc
}

// Proc is a process holding a socket, with its cgroup and, when the cgroup
// is a container's, the container and Kubernetes pod.
type Proc struct {
	PID         uint32 `json:"pid,omitempty"`
	Comm        string `json:"comm,omitempty"`
	CgroupID    uint64 `json:"cgroup_id,omitempty"`
	Cgroup      string `json:"cgroup,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	PodUID      string `json:"pod_uid,omitempty"`
}

// IsZero reports whether nothing is known of the process.
func (p Proc) IsZero() bool { return p == Proc{} }

// Attributor names the process holding the socket at local talking to
// remote, if it knows it.
type Attributor func(proto layers.IPProtocol, local, remote netip.AddrPort) (Proc, bool)

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
	// or not decodable).
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

// recover loads every segment's index, rebuilding those missing or
// damaged.
func (s *Store) recover() error {
	segDir := filepath.Join(s.dir, "segments")
	entries, err := os.ReadDir(segDir)
	if err != nil {
		return err
	}
	var loaded []*segment
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(segDir, name)) // an index being written when the process died
			continue
		}
		m := segName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		seq, _ := strconv.ParseUint(m[1], 10, 64)
		lt, _ := strconv.ParseUint(m[2], 10, 16)
		path := filepath.Join(segDir, name)
		// Even a segment left as it is (unreadable) keeps its number:
		// a new segment must not be created over it.
		s.nextSeq = max(s.nextSeq, seq+1)
		seg, err := readIndex(indexPath(path))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("segment index damaged: rebuilding it from the segment", "segment", path, "err", err)
			}
			if fi, err := os.Stat(path); err == nil && fi.Size() <= pcapHeaderLen {
				// Created, not written to: nothing to keep.
				os.Remove(path)
				continue
			}
			if seg, err = rebuild(path, seq, layers.LinkType(lt), nil); err != nil {
				s.log.Error("segment unreadable: left as it is", "segment", path, "err", err)
				continue
			}
			s.cutPartialRecord(path, seg.Size)
			if err := writeIndex(indexPath(path), seg); err != nil {
				s.log.Warn("cannot write the rebuilt index; it is rebuilt again at the next start", "segment", path, "err", err)
			} else {
				s.log.Info("segment index rebuilt", "segment", path, "packets", seg.Packets, "flows", len(seg.order))
			}
		}
		seg.Path, seg.Closed = path, true
		if fi, err := os.Stat(path); err == nil {
			seg.Size = fi.Size()
		}
		loaded = append(loaded, seg)
	}
	slices.SortFunc(loaded, func(a, b *segment) int { return cmpUint(a.Seq, b.Seq) })
	for _, seg := range loaded {
		s.last[seg.LinkType] = seg.flows
		s.retire(seg)
	}
	return nil
}

// cutPartialRecord truncates a segment to end, its last whole record,
// when what follows is the start of a record a crash cut short, so that
// the segment reads whole from now on. Anything else after end (a damaged
// record followed by more) is left for other tools to make sense of.
func (s *Store) cutPartialRecord(path string, end int64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() <= end {
		return
	}
	rest := fi.Size() - end
	if rest >= 16 {
		var hdr [16]byte
		if _, err := f.ReadAt(hdr[:], end); err != nil {
			return
		}
		// pcapgo writes segments little-endian.
		caplen := int64(binary.LittleEndian.Uint32(hdr[8:12]))
		if caplen <= rest-16 || caplen > DefaultSnapLen {
			s.log.Warn("segment damaged after its last whole record: left as it is", "segment", path, "offset", end, "bytes", rest)
			return
		}
	}
	if err := f.Truncate(end); err != nil {
		s.log.Warn("cannot cut the partial last record off the segment", "segment", path, "err", err)
		return
	}
	s.log.Info("partial last record cut off", "segment", path, "bytes", rest)
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

// pcapHeaderLen is the size of a PCAP file header.
const pcapHeaderLen = 24

// rebuild reads a segment's packets to make its index; a damaged tail
// ends the reading (it is what a crash leaves), and Size is set to the end
// of the last whole record. prev, when known, is the segment before it,
// whose flows say which side opened a connection.
func rebuild(path string, seq uint64, lt layers.LinkType, prev map[flowindex.Key]*Flow) (*segment, error) {
	f, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	seg := newSegment(seq, lt)
	seg.prev = prev
	defer func() { seg.prev = nil }()
	dec := capture.NewDecoder()
	var d capture.Decoded
	var p capture.Packet
	seg.Size = pcapHeaderLen
	for {
		if err := f.Next(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		seg.count(dec, &d, &p, "")
		seg.Size += 16 + int64(len(p.Data))
	}
	return seg, nil
}

// opener says which side opened a flow whose first packet in a segment
// goes from src to dst: the side the previous segment says, else the
// sender of a SYN (the receiver of a SYN-ACK), else the side with the
// higher port (clients use ephemeral ports), else src.
func opener(prev map[flowindex.Key]*Flow, k flowindex.Key, d *capture.Decoded, src, dst netip.AddrPort) netip.AddrPort {
	if fl := prev[k]; fl != nil {
		return fl.Src
	}
	if t := d.TCP; t != nil && t.SYN {
		if t.ACK {
			return dst
		}
		return src
	}
	if dst.Port() > src.Port() {
		return dst
	}
	return src
}

func newSegment(seq uint64, lt layers.LinkType) *segment {
	return &segment{Segment: Segment{Seq: seq, LinkType: lt}, flows: map[flowindex.Key]*Flow{}}
}

// count adds a packet to the segment's counts and flows.
func (g *segment) count(dec *capture.Decoder, d *capture.Decoded, p *capture.Packet, iface string) {
	if g.Packets == 0 || p.Timestamp.Before(g.First) {
		g.First = p.Timestamp
	}
	if p.Timestamp.After(g.Last) {
		g.Last = p.Timestamp
	}
	g.Packets++
	if err := dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, d); err != nil || !d.Src.IsValid() {
		g.Other++
		return
	}
	src, dst := netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort)
	k := flowindex.NewKey(src, dst, d.Proto)
	fl := g.flows[k]
	if fl == nil {
		fl = &Flow{Proto: d.Proto, Src: src, Dst: dst, First: p.Timestamp, Interface: iface}
		if opener(g.prev, k, d, src, dst) == dst {
			fl.Src, fl.Dst = dst, src
		}
		g.flows[k] = fl
		g.order = append(g.order, fl)
	}
	dir := 0
	if src != fl.Src {
		dir = 1
	}
	fl.Packets[dir]++
	fl.Bytes[dir] += uint64(p.Length)
	if p.Timestamp.Before(fl.First) {
		fl.First = p.Timestamp
	}
	if p.Timestamp.After(fl.Last) {
		fl.Last = p.Timestamp
	}
	if t := d.TCP; t != nil {
		switch {
		case t.SYN && t.ACK:
			fl.Flags[dir] |= flowindex.FlagSYNACK
		case t.SYN:
			fl.Flags[dir] |= flowindex.FlagSYN
		}
		if t.FIN {
			fl.Flags[dir] |= flowindex.FlagFIN
		}
		if t.RST {
			fl.Flags[dir] |= flowindex.FlagRST
		}
	}
}

// Write appends a packet to the open segment of its link type, rotating
// and deleting old segments as the options say. iface names where it was
// captured. While the disk is full it returns ErrFull.
//
// Write copies the packet into the segment's buffer; a full buffer is
// written (see fileWriter) before it returns, the rest within
// Options.FlushEvery. A segment closed by rotation is finished (its last
// bytes written and synced, its index written) by a goroutine of its own.
func (s *Store) Write(p *capture.Packet, iface string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return errors.New("segment store: closed")
	}
	now := s.clock(p.Timestamp)
	if !s.full.IsZero() {
		if now.Sub(s.full) < retryFull {
			s.stats.Dropped++
			return ErrFull
		}
		s.full = time.Time{} // try again
	}
	rec := int64(16 + len(p.Data))
	seg := s.open[p.LinkType]
	if seg != nil && (seg.logical+rec > s.opts.SegmentBytes && seg.Packets > 0 || now.Sub(seg.opened) >= s.opts.SegmentAge) {
		if err := s.closeSegment(seg); err != nil {
			return s.writeFailed(err, true)
		}
		seg = nil
	}
	if seg == nil {
		var err error
		if seg, err = s.newOpenSegment(p.LinkType, now); err != nil {
			return s.writeFailed(err, true)
		}
	}
	ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: max(p.Length, len(p.Data))}
	if err := seg.pw.WritePacket(ci, p.Data); err != nil {
		if werr := seg.w.Err(); werr != nil {
			err = werr // pcapgo's wrapping loses what it is (ENOSPC)
		}
		s.abandon(seg)
		return s.writeFailed(err, true)
	}
	seg.w.Mark()
	seg.logical += rec
	seg.count(s.dec, &s.decoded, p, iface)
	s.stats.Packets++
	s.stats.Bytes += uint64(rec)
	if now.Sub(seg.lastSync) >= s.opts.FlushEvery {
		seg.lastSync = now
		if err := seg.w.Flush(); err != nil {
			s.abandon(seg) // counts the packets lost, this one too
			return s.writeFailed(err, false)
		}
	}
	return nil
}

// clockEvery is how far packet time moves before Write reads the clock
// again: reading it for every packet was 5% of the agent's CPU.
const clockEvery = time.Millisecond

// clock returns the time for Write's age, flush and retry decisions: the
// clock, read again when packet time (ts) has moved clockEvery from where
// it was last read, either way, or while the disk is full.
func (s *Store) clock(ts time.Time) time.Time {
	if d := ts.Sub(s.nowAt); d >= clockEvery || d <= -clockEvery || !s.full.IsZero() || s.now.IsZero() {
		s.now, s.nowAt = s.opts.Now(), ts
	}
	return s.now
}

// Flush writes what Write buffered to the files, and returns once the
// segments being closed are closed too.
func (s *Store) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var first error
	for _, seg := range s.openSorted() {
		seg.lastSync = now
		if err := seg.w.Flush(); err != nil {
			s.abandon(seg)
			if first == nil {
				first = s.writeFailed(err, false)
			}
		}
	}
	s.settled()
	return first
}

func (s *Store) newOpenSegment(lt layers.LinkType, now time.Time) (*segment, error) {
	seq := s.nextSeq
	path := filepath.Join(s.dir, "segments", fmt.Sprintf("%012d-lt%d.pcap", seq, lt))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	s.nextSeq++
	// The header is written at once, so that a disk too full for it fails
	// here, and a reader finds a file it can open.
	var hdr bytes.Buffer
	if err := pcapgo.NewWriterNanos(&hdr).WriteFileHeader(uint32(s.opts.SnapLen), lt); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	if _, err := f.Write(hdr.Bytes()); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	seg := newSegment(seq, lt)
	seg.Path, seg.f, seg.opened, seg.lastSync = path, f, now, now
	seg.w = newFileWriter(f, path, hdr.Bytes())
	seg.pw = pcapgo.NewWriterNanos(seg.w)
	seg.logical = pcapHeaderLen
	seg.prev = s.last[lt]
	delete(s.last, lt)
	s.open[lt] = seg
	return seg, nil
}

// writeFailed reports a write error in Stats (counting the packet being
// written as dropped, when drop is set); on a full disk the store stops
// writing for a while.
func (s *Store) writeFailed(err error, drop bool) error {
	s.stats.LastError = err.Error()
	if drop {
		s.stats.Dropped++
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		s.full = s.opts.Now()
		s.log.Error("disk full: writing stopped; it resumes when space is freed", "dir", s.dir, "err", err)
		return ErrFull
	}
	return fmt.Errorf("segment store: %w", err)
}

// abandon closes an open segment whose writing failed: it is truncated to
// its last whole record on disk and indexed from what it holds; the
// packets that did not reach the disk are counted as dropped. Callers
// hold mu.
func (s *Store) abandon(seg *segment) {
	delete(s.open, seg.LinkType)
	seg.w.Abort()
	if flows := s.salvage(seg); flows != nil {
		s.last[seg.LinkType] = flows
	}
}

// salvage indexes what a segment whose writing failed holds (its writer
// stopped) and retires it, returning its flows. Callers hold mu.
func (s *Store) salvage(seg *segment) map[flowindex.Key]*Flow {
	durable := seg.w.durable.Load()
	if err := seg.f.Truncate(durable); err != nil {
		s.log.Error("cannot cut the segment back to its last whole packet", "segment", seg.Path, "err", err)
	}
	seg.f.Sync()
	seg.f.Close()
	rebuilt, err := rebuild(seg.Path, seg.Seq, seg.LinkType, seg.prev)
	if err != nil {
		s.log.Error("segment unreadable after a write error", "segment", seg.Path, "err", err)
		return nil
	}
	rebuilt.Path, rebuilt.Closed, rebuilt.Size = seg.Path, true, durable
	setProcs(rebuilt.order, askFlows(s.opts.Attribute, rebuilt.order))
	lost := seg.Packets - rebuilt.Packets
	s.stats.Dropped += lost
	s.stats.Packets -= lost
	s.stats.Bytes -= uint64(seg.logical - durable)
	if err := writeIndex(indexPath(seg.Path), rebuilt); err != nil {
		s.log.Warn("cannot write the index (rebuilt at the next start)", "segment", seg.Path, "err", err)
	}
	flows := rebuilt.flows
	s.retire(rebuilt)
	return flows
}

// closeSegment closes an open segment: the next segment of its link type
// opens at the next packet, while a goroutine writes the rest of this
// one, syncs it, asks about its flows' processes and writes its index
// (see finish). Callers hold mu; a write error already met abandons the
// segment and is returned.
func (s *Store) closeSegment(seg *segment) error {
	if err := seg.w.Err(); err != nil {
		s.abandon(seg)
		return err
	}
	delete(s.open, seg.LinkType)
	s.last[seg.LinkType] = seg.flows
	seg.prev = nil
	s.closing = append(s.closing, seg)
	go s.finish(seg)
	return nil
}

// finish does what closing a segment takes beyond Write's goroutine.
func (s *Store) finish(seg *segment) {
	if err := seg.w.Close(); err != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closing = slices.DeleteFunc(s.closing, func(g *segment) bool { return g == seg })
		seg.closeErr = err
		s.salvage(seg)
		s.writeFailed(err, false)
		s.idle.Broadcast()
		return
	}
	if err := seg.f.Sync(); err != nil {
		s.log.Warn("sync segment", "segment", seg.Path, "err", err)
	}
	if err := seg.f.Close(); err != nil {
		s.log.Warn("close segment", "segment", seg.Path, "err", err)
	}
	// Only this goroutine writes the flows now (under mu, as EachFlow
	// reads them); it reads them without.
	procs := askFlows(s.opts.Attribute, seg.order)
	s.mu.Lock()
	setProcs(seg.order, procs)
	seg.asked = len(seg.order)
	seg.Size = seg.logical
	s.mu.Unlock()
	ierr := writeIndex(indexPath(seg.Path), seg)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ierr != nil {
		s.stats.LastError = ierr.Error()
		s.log.Warn("cannot write the segment index (rebuilt at the next start)", "segment", seg.Path, "err", ierr)
	}
	s.closing = slices.DeleteFunc(s.closing, func(g *segment) bool { return g == seg })
	seg.Closed = true
	seg.f, seg.w, seg.pw = nil, nil, nil
	s.retire(seg)
	s.retain()
	s.idle.Broadcast()
}

// settled waits until no segment is closing. Callers hold mu (released
// while waiting).
func (s *Store) settled() {
	for len(s.closing) > 0 {
		s.idle.Wait()
	}
}

// askFlows asks attr about the sides of flows whose process is not known,
// returning what it says (zero where nothing).
func askFlows(attr Attributor, flows []*Flow) [][2]Proc {
	if attr == nil {
		return nil
	}
	out := make([][2]Proc, len(flows))
	for i, fl := range flows {
		if fl.Procs[0].IsZero() {
			out[i][0], _ = attr(fl.Proto, fl.Src, fl.Dst)
		}
		if fl.Procs[1].IsZero() {
			out[i][1], _ = attr(fl.Proto, fl.Dst, fl.Src)
		}
	}
	return out
}

// retire adds a segment whose index is written to the closed ones, in
// sequence order. Its flows leave memory (Flows reads them back from the
// index); the next segment of its link type may still hold them, to
// orient connections that continue.
func (s *Store) retire(seg *segment) {
	seg.flows, seg.order = nil, nil
	i, _ := slices.BinarySearchFunc(s.closed, seg.Seq, func(g *segment, seq uint64) int { return cmpUint(g.Seq, seq) })
	s.closed = slices.Insert(s.closed, i, seg)
}

// setProcs fills in the sides of flows that askFlows found.
func setProcs(flows []*Flow, procs [][2]Proc) {
	for i, p := range procs {
		for side := range 2 {
			if !p[side].IsZero() {
				flows[i].Procs[side] = p[side]
			}
		}
	}
}

// Attribute asks Options.Attribute about the processes of the flows that
// appeared in the open segments since the last call; the asking happens
// without holding up Write. The agent calls it every second or so.
func (s *Store) Attribute() {
	attr := s.opts.Attribute
	if attr == nil {
		return
	}
	type ask struct {
		g     *segment
		fl    *Flow
		key   [2]netip.AddrPort
		proto layers.IPProtocol
		got   [2]Proc
	}
	var asks []ask
	s.mu.Lock()
	for _, g := range s.open {
		for _, fl := range g.order[g.asked:] {
			asks = append(asks, ask{g: g, fl: fl, key: [2]netip.AddrPort{fl.Src, fl.Dst}, proto: fl.Proto})
		}
		g.asked = len(g.order)
	}
	s.mu.Unlock()
	if len(asks) == 0 {
		return
	}
	for i := range asks {
		a := &asks[i]
		a.got[0], _ = attr(a.proto, a.key[0], a.key[1])
		a.got[1], _ = attr(a.proto, a.key[1], a.key[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range asks {
		if s.open[a.g.LinkType] != a.g {
			continue // closed meanwhile: its flows are asked again as it closes
		}
		for i := range 2 {
			if a.fl.Procs[i].IsZero() {
				a.fl.Procs[i] = a.got[i]
			}
		}
	}
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

// Rotate closes the open segments (the next packet starts new ones) and
// returns once they are closed, their indexes written.
func (s *Store) Rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeAll(func(*segment) bool { return true })
}

// closeAll closes the open segments which says, and waits until every
// closing segment is closed; it returns the first error met. Callers hold
// mu.
func (s *Store) closeAll(which func(*segment) bool) error {
	var first error
	var closing []*segment
	for _, seg := range s.openSorted() {
		if !which(seg) {
			continue
		}
		if err := s.closeSegment(seg); err != nil {
			if first == nil {
				first = s.writeFailed(err, false)
			}
			continue
		}
		closing = append(closing, seg)
	}
	s.settled()
	for _, seg := range closing {
		if seg.closeErr != nil && first == nil {
			first = fmt.Errorf("segment store: %w", seg.closeErr)
		}
	}
	return first
}

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

// Flows returns the flows active in [from, to) (zero is unbounded), per
// segment, oldest first; a flow spanning several segments appears once per
// segment. It reads closed segments' indexes; see EachFlow.
func (s *Store) Flows(from, to time.Time) ([]Flow, error) {
	var out []Flow
	err := s.EachFlow(from, to, func(seg Segment, fl *Flow) bool {
		out = append(out, *fl)
		return true
	})
	return out, err
}

// EachFlow calls fn with the flows active in [from, to), segment by
// segment (oldest first, open segments last), until fn returns false. fn
// runs without the store's lock held, so a slow caller never holds up
// Write; closed segments' flows are read from their indexes, so only one
// segment's flows are in memory at a time. A segment deleted by retention
// meanwhile is skipped; an index that cannot be read is an error naming it
// (after the flows of the segments before it).
func (s *Store) EachFlow(from, to time.Time, fn func(Segment, *Flow) bool) error {
	in := func(fl *Flow) bool {
		return (to.IsZero() || fl.First.Before(to)) && (from.IsZero() || !fl.Last.Before(from))
	}
	s.mu.Lock()
	var closed []Segment
	for _, g := range s.closed {
		if g.Overlaps(from, to) {
			closed = append(closed, g.Segment)
		}
	}
	s.mu.Unlock()
	for _, seg := range closed {
		g, err := readIndex(indexPath(seg.Path))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted by retention since
		}
		if err != nil {
			return fmt.Errorf("segment %s: %w", seg.Path, err)
		}
		for _, fl := range g.order {
			if in(fl) && !fn(seg, fl) {
				return nil
			}
		}
	}
	// The open segments' flows change as packets come (and those closing
	// have no index yet): copy those wanted.
	type openSeg struct {
		seg   Segment
		flows []Flow
	}
	var open []openSeg
	s.mu.Lock()
	for _, g := range s.unclosed() {
		o := openSeg{seg: g.Segment}
		o.seg.Size = g.durable()
		for _, fl := range g.order {
			if in(fl) {
				o.flows = append(o.flows, *fl)
			}
		}
		open = append(open, o)
	}
	s.mu.Unlock()
	for _, o := range open {
		for i := range o.flows {
			if !fn(o.seg, &o.flows[i]) {
				return nil
			}
		}
	}
	return nil
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
