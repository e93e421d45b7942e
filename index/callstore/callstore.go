// Package callstore keeps full call records in an append-only file, one file
// per index partition, and finds them by call ID.
//
// A store file is a header followed by records, each framed by its length
// and a CRC-32C checksum (../FORMAT.md has the byte layout). The record
// carries the call's ID, time and latency in the clear, so that opening a
// store and checking a latency need no JSON decoding, and the call's JSON
// (proto.Call.AppendJSON), snappy-compressed when that is smaller.
//
// Nothing is ever rewritten: Append writes records at the end of the file in
// one write. Open reads the file from the start, checks every record and
// rebuilds the in-memory map from call ID to record offset. A record cut
// short by a crash, or failing its checksum, ends the log: it and whatever
// follows are cut off the file, and Open reports what it dropped so that
// the caller can log it. Every record before it is kept.
//
// A Store is safe for concurrent use. Readers never wait for a write to
// reach the disk: a record is visible once Append has written it.
package callstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"io"
	"os"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Errors.
var (
	// ErrNotFound: no call with that ID is stored.
	ErrNotFound = errors.New("call not found")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("call store closed")
	// ErrCorrupt: a record failed its checksum or does not parse.
	ErrCorrupt = errors.New("corrupt call record")
)

// Magic starts every store file; its last byte is the format version.
const Magic = "WSCALLS\x01"

const (
	// HeaderSize is the size of the file header.
	HeaderSize = len(Magic)
	// frameSize is the size of a record's length and checksum.
	frameSize = 8
	// MaxRecord bounds a record's body; a larger length is corruption.
	MaxRecord = 64 << 20
	// flagSnappy marks a record whose JSON is snappy-compressed.
	flagSnappy = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Recovery says what Open found at the end of the file.
type Recovery struct {
	// Records is the number of records kept.
	Records int
	// Dropped is the number of bytes cut off the end: a record torn by a
	// crash or failing its checksum, and everything after it.
	Dropped int64
	// Reason says why the tail was dropped; empty when nothing was.
	Reason string
}

// Entry is what a scan or the index knows about a record without decoding
// the call.
type Entry struct {
	// Offset is the record's offset in the file.
	Offset int64
	// ID, TS and LatencyNS are the call's.
	ID        string
	TS        time.Time
	LatencyNS int64
}

// Store is one store file and the map from call ID to record offset.
type Store struct {
	path string

	mu   sync.RWMutex
	f    *os.File
	size int64 // end of the last whole record
	// ids maps the hash of an ID to its record's offset. IDs whose hash
	// collides with another's go to more instead.
	ids  map[uint64]int64
	more map[string]int64
	// scratch is Append's encoding buffer.
	scratch []byte
}

// Open opens the store at path, creating it when missing, and rebuilds its
// map. A torn or corrupt tail is cut off the file and reported in the
// Recovery.
func Open(path string) (*Store, Recovery, error) {
	var rec Recovery
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, rec, fmt.Errorf("open call store: %w", err)
	}
	s := &Store{path: path, f: f, ids: make(map[uint64]int64), more: map[string]int64{}}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("stat call store: %w", err)
	}
	if fi.Size() < int64(HeaderSize) {
		// New, or torn before its header was whole: start afresh.
		if fi.Size() > 0 {
			rec.Dropped, rec.Reason = fi.Size(), "file header incomplete"
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, rec, fmt.Errorf("reset call store: %w", err)
		}
		if _, err := f.WriteAt([]byte(Magic), 0); err != nil {
			f.Close()
			return nil, rec, fmt.Errorf("write call store header: %w", err)
		}
		s.size = int64(HeaderSize)
		return s, rec, nil
	}
	var hdr [HeaderSize]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("read call store header: %w", err)
	}
	if string(hdr[:]) != Magic {
		f.Close()
		return nil, rec, fmt.Errorf("%s: not a call store (header %q)", path, hdr[:])
	}
	end, reason, err := s.scanFrom(int64(HeaderSize), fi.Size(), func(e Entry, _ []byte) error {
		s.insert(e.ID, e.Offset)
		rec.Records++
		return nil
	})
	if err != nil {
		f.Close()
		return nil, rec, err
	}
	s.size = end
	if end < fi.Size() {
		rec.Dropped, rec.Reason = fi.Size()-end, reason
		if err := f.Truncate(end); err != nil {
			f.Close()
			return nil, rec, fmt.Errorf("cut corrupt tail of call store: %w", err)
		}
	}
	return s, rec, nil
}

// scanFrom reads records from off up to limit, calling fn with each whole
// one (and its body, valid during the call). It stops at the first record
// that is torn or corrupt and returns the offset where whole records end,
// and why it stopped short of limit.
func (s *Store) scanFrom(off, limit int64, fn func(Entry, []byte) error) (end int64, reason string, err error) {
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, off, limit-off), 1<<20)
	var frame [frameSize]byte
	var body []byte
	for off < limit {
		if _, err := io.ReadFull(r, frame[:]); err != nil {
			return off, "record frame torn", nil
		}
		n := binary.LittleEndian.Uint32(frame[:4])
		if n > MaxRecord || int64(n) > limit-off-frameSize {
			if int64(n) > limit-off-frameSize && n <= MaxRecord {
				return off, "record torn", nil
			}
			return off, fmt.Sprintf("record length %d out of bounds", n), nil
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return off, "record torn", nil
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(frame[4:]) {
			return off, "record checksum mismatch", nil
		}
		e, _, err := parseHead(body)
		if err != nil {
			return off, err.Error(), nil
		}
		e.Offset = off
		if err := fn(e, body); err != nil {
			return off, "", err
		}
		off += frameSize + int64(n)
	}
	return off, "", nil
}

// parseHead reads the ID, time and latency at the start of a record body
// and returns the rest (flags and JSON).
func parseHead(body []byte) (Entry, []byte, error) {
	var e Entry
	n, k := binary.Uvarint(body)
	if k <= 0 || uint64(len(body)-k) < n {
		return e, nil, fmt.Errorf("%w: bad id length", ErrCorrupt)
	}
	e.ID = string(body[k : k+int(n)])
	body = body[k+int(n):]
	ts, k := binary.Varint(body)
	if k <= 0 {
		return e, nil, fmt.Errorf("%w: bad time", ErrCorrupt)
	}
	body = body[k:]
	lat, k := binary.Varint(body)
	if k <= 0 {
		return e, nil, fmt.Errorf("%w: bad latency", ErrCorrupt)
	}
	body = body[k:]
	if len(body) < 1 {
		return e, nil, fmt.Errorf("%w: no flags", ErrCorrupt)
	}
	e.TS = time.Unix(0, ts).UTC()
	e.LatencyNS = lat
	return e, body, nil
}

// decodeCall decodes the flags and JSON that follow a record's head.
func decodeCall(rest []byte) (*proto.Call, error) {
	flags, js := rest[0], rest[1:]
	if flags&flagSnappy != 0 {
		var err error
		if js, err = snappy.Decode(nil, js); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	c := new(proto.Call)
	if err := c.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return c, nil
}

// seed is shared by every store of the process, so that a call's hash is
// computed once to look it up in many stores (HasHash).
var seed = maphash.MakeSeed()

// Hash returns the hash of a call ID stores look it up by.
func Hash(id string) uint64 { return maphash.String(seed, id) }

// insert maps id to off; the caller holds mu or owns s.
func (s *Store) insert(id string, off int64) {
	h := Hash(id)
	if prev, ok := s.ids[h]; ok {
		if prevID, err := s.idAt(prev); err != nil || prevID != id {
			s.more[id] = off
			return
		}
		// The same ID stored twice (by a writer that skipped Has): the
		// later record wins, as it would in a map.
	}
	s.ids[h] = off
}

// lookup returns the offset of id's record; the caller holds mu.
func (s *Store) lookup(id string) (int64, bool) { return s.lookupHash(Hash(id), id) }

// lookupHash is lookup with the ID's Hash.
func (s *Store) lookupHash(h uint64, id string) (int64, bool) {
	if len(s.more) > 0 {
		if off, ok := s.more[id]; ok {
			return off, true
		}
	}
	off, ok := s.ids[h]
	if !ok {
		return 0, false
	}
	if got, err := s.idAt(off); err != nil || got != id {
		return 0, false
	}
	return off, true
}

// readRecord reads the body of the record at off.
func (s *Store) readRecord(off int64, buf []byte) ([]byte, error) {
	if cap(buf) < 2048 {
		buf = make([]byte, 2048)
	}
	buf = buf[:cap(buf)]
	n, err := s.f.ReadAt(buf, off)
	if n < frameSize {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read call record at %d: %w", off, err)
	}
	size := int(binary.LittleEndian.Uint32(buf[:4]))
	sum := binary.LittleEndian.Uint32(buf[4:8])
	if size > MaxRecord {
		return nil, fmt.Errorf("%w at %d: length %d", ErrCorrupt, off, size)
	}
	if n < frameSize+size {
		if cap(buf) < frameSize+size {
			nb := make([]byte, frameSize+size)
			copy(nb, buf[:n])
			buf = nb
		}
		buf = buf[:frameSize+size]
		if _, err := s.f.ReadAt(buf[n:], off+int64(n)); err != nil {
			return nil, fmt.Errorf("read call record at %d: %w", off, err)
		}
	}
	body := buf[frameSize : frameSize+size]
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w at %d: checksum mismatch", ErrCorrupt, off)
	}
	return body, nil
}

// idAt returns the ID of the record at off.
func (s *Store) idAt(off int64) (string, error) {
	e, err := s.entryAt(off)
	return e.ID, err
}

func (s *Store) entryAt(off int64) (Entry, error) {
	body, err := s.readRecord(off, nil)
	if err != nil {
		return Entry{}, err
	}
	e, _, err := parseHead(body)
	e.Offset = off
	return e, err
}

// Has reports whether a call with id is stored.
func (s *Store) Has(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.lookup(id)
	return ok
}

// HasHash is Has with the ID's Hash, computed once for many stores.
func (s *Store) HasHash(h uint64, id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.lookupHash(h, id)
	return ok
}

// Get returns the stored call with id, or ErrNotFound.
func (s *Store) Get(id string) (*proto.Call, error) {
	s.mu.RLock()
	if s.f == nil {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	off, ok := s.lookup(id)
	s.mu.RUnlock()
	if !ok {
		return nil, ErrNotFound
	}
	return s.ReadAt(off)
}

// Entry returns what the record of id says without decoding the call.
func (s *Store) Entry(id string) (Entry, error) {
	s.mu.RLock()
	if s.f == nil {
		s.mu.RUnlock()
		return Entry{}, ErrClosed
	}
	off, ok := s.lookup(id)
	s.mu.RUnlock()
	if !ok {
		return Entry{}, ErrNotFound
	}
	return s.entryAt(off)
}

// ReadAt decodes the call whose record is at off.
func (s *Store) ReadAt(off int64) (*proto.Call, error) {
	body, err := s.readRecord(off, nil)
	if err != nil {
		return nil, err
	}
	_, rest, err := parseHead(body)
	if err != nil {
		return nil, err
	}
	return decodeCall(rest)
}

// Append writes the calls' records at the end of the file, in writes of
// about a megabyte, and returns the file's new end. It does not check for
// IDs already stored (Has does). The records are visible to Get when
// Append returns; they are durable once the operating system writes them
// back, or at Sync. A failed Append leaves the file as it was.
func (s *Store) Append(calls []*proto.Call) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, ErrClosed
	}
	const flushAt = 1 << 20
	buf := s.scratch[:0]
	if cap(buf) < flushAt+64<<10 {
		buf = make([]byte, 0, flushAt+64<<10)
	}
	offs := make([]int64, len(calls))
	written := s.size
	var js, comp []byte
	fail := func(err error) (int64, error) {
		// Whatever part was written is a torn tail the next Open would
		// cut; cut it now so that the next append starts clean.
		_ = s.f.Truncate(s.size)
		return s.size, err
	}
	for i, c := range calls {
		start := len(buf)
		offs[i] = written + int64(start)
		var frame [frameSize]byte
		buf = append(buf, frame[:]...)
		buf = binary.AppendUvarint(buf, uint64(len(c.ID)))
		buf = append(buf, c.ID...)
		buf = binary.AppendVarint(buf, c.TS.UnixNano())
		buf = binary.AppendVarint(buf, c.LatencyNS)
		js = c.AppendJSON(js[:0])
		comp = snappy.Encode(comp[:cap(comp)], js)
		if len(comp) < len(js)-len(js)/16 {
			buf = append(buf, flagSnappy)
			buf = append(buf, comp...)
		} else {
			buf = append(buf, 0)
			buf = append(buf, js...)
		}
		body := buf[start+frameSize:]
		if len(body) > MaxRecord {
			return fail(fmt.Errorf("call %s: record of %d bytes exceeds %d", c.ID, len(body), MaxRecord))
		}
		binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
		binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, castagnoli))
		if len(buf) >= flushAt || i == len(calls)-1 {
			if _, err := s.f.WriteAt(buf, written); err != nil {
				return fail(fmt.Errorf("append to call store: %w", err))
			}
			written += int64(len(buf))
			buf = buf[:0]
		}
	}
	for i, c := range calls {
		s.insert(c.ID, offs[i])
	}
	s.size = written
	if cap(buf) <= 4<<20 {
		s.scratch = buf[:0]
	}
	return s.size, nil
}

// Scan calls fn with the entry and the decoded call of every record from
// offset from (a value Append or Size returned, or HeaderSize for the
// first) to the end, in file order.
func (s *Store) Scan(from int64, fn func(Entry, *proto.Call) error) error {
	s.mu.RLock()
	f, end := s.f, s.size
	s.mu.RUnlock()
	if f == nil {
		return ErrClosed
	}
	if from < int64(HeaderSize) {
		from = int64(HeaderSize)
	}
	stop, reason, err := s.scanFrom(from, end, func(e Entry, body []byte) error {
		_, rest, err := parseHead(body)
		if err != nil {
			return err
		}
		c, err := decodeCall(rest)
		if err != nil {
			return fmt.Errorf("record at %d: %w", e.Offset, err)
		}
		return fn(e, c)
	})
	if err != nil {
		return err
	}
	if stop < end {
		return fmt.Errorf("%w at %d: %s", ErrCorrupt, stop, reason)
	}
	return nil
}

// Size returns the offset where the next record will be written.
func (s *Store) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.size
}

// Len returns the number of calls stored.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ids) + len(s.more)
}

// Sync flushes the file to disk.
func (s *Store) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.f == nil {
		return ErrClosed
	}
	return s.f.Sync()
}

// Close syncs and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	return err
}
