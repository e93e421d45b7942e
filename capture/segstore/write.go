package segstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

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
