package segstore

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

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
