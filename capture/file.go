package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Errors returned by OpenFile and Next.
var (
	// ErrUnknownFormat means the input is neither pcap nor pcapng.
	ErrUnknownFormat = errors.New("not a pcap or pcapng file")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("source closed")
)

const readBufferSize = 1 << 20

// countingReader counts the bytes handed to the bufio.Reader above it, so the
// offset of the next unread byte is n minus what bufio still holds.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// DefaultMaxPacket is the largest captured packet a File reads unless told
// otherwise: the largest frame a real link hands to a capture with offloads
// (GRO, LRO and TSO merge segments into frames of up to 256 KiB).
const DefaultMaxPacket = 256 << 10

// maxSkipWarnings is how many skipped packets get a Warning each; the rest
// are counted in one.
const maxSkipWarnings = 16

// PacketTooLargeError describes a packet that a File skipped because its
// captured length exceeds the limit (MaxPacket).
type PacketTooLargeError struct {
	// Offset is the byte offset of the packet's record in the uncompressed
	// stream.
	Offset int64
	// Size is the captured length the record declares.
	Size int64
	// Limit is the largest captured length read.
	Limit int
}

func (e *PacketTooLargeError) Error() string {
	return fmt.Sprintf("packet of %d bytes at offset %d exceeds the %d-byte limit; skipped", e.Size, e.Offset, e.Limit)
}

// Option configures a File.
type Option func(*File)

// MaxPacket sets the largest captured packet read, in bytes: a larger packet
// is skipped without being held in memory and reported as a Warning. Zero or
// less keeps DefaultMaxPacket.
func MaxPacket(n int) Option {
	return func(f *File) {
		if n > 0 {
			f.maxPacket = n
		}
	}
}

// File reads a pcap or pcapng file.
type File struct {
	name string
	f    *os.File
	gz   *gzip.Reader
	cr   countingReader
	br   *bufio.Reader
	pcap bool
	link layers.LinkType // classic pcap only
	// Classic pcap records are read straight out of br (see nextPcap).
	order binary.ByteOrder
	nanos bool
	ng    ngState // pcapng only
	// maxPacket bounds the captured length of a packet; big holds a packet
	// larger than br's buffer (up to maxPacket).
	maxPacket int
	big       []byte
	packets   int
	// skipped counts the packets over maxPacket; the first maxSkipWarnings
	// are in warn, lastSkip is the latest.
	skipped  int
	lastSkip *PacketTooLargeError
	warn     []Warning
	done     bool
}

// OpenFile opens a pcap or pcapng file, optionally gzip-compressed. An input
// whose header cannot be read is an error.
func OpenFile(path string, opts ...Option) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := NewReader(filepath.Base(path), f, opts...)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	src.f = f
	return src, nil
}

// NewReader reads a pcap or pcapng stream from r; name is used in warnings.
func NewReader(name string, r io.Reader, opts ...Option) (*File, error) {
	s := &File{name: name, maxPacket: DefaultMaxPacket}
	for _, o := range opts {
		o(s)
	}
	head := bufio.NewReaderSize(r, 64)
	magic, err := head.Peek(2)
	if err != nil {
		return nil, headerErr(err)
	}
	var in io.Reader = head
	if magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(head)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		s.gz = gz
		in = gz
	}
	s.cr.r = in
	// pcapgo (reading the file header) wraps its input in bufio.NewReader,
	// which returns a *bufio.Reader of at least 4 KiB unchanged: sharing
	// ours keeps offsets exact.
	s.br = bufio.NewReaderSize(&s.cr, readBufferSize)
	m, err := s.br.Peek(4)
	if err != nil {
		return nil, headerErr(err)
	}
	switch binary.LittleEndian.Uint32(m) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		// pcapgo parses the file header only: its record reader trusts
		// the snap length the file declares and allocates what a record
		// claims, so records are read by nextPcap.
		r, err := pcapgo.NewReader(s.br)
		if err != nil {
			return nil, headerErr(err)
		}
		s.pcap, s.link = true, r.LinkType()
		switch binary.LittleEndian.Uint32(m) {
		case 0xa1b2c3d4:
			s.order = binary.LittleEndian
		case 0xa1b23c4d:
			s.order, s.nanos = binary.LittleEndian, true
		case 0xd4c3b2a1:
			s.order = binary.BigEndian
		default:
			s.order, s.nanos = binary.BigEndian, true
		}
	case ngSHB:
		// pcapgo's pcapng reader allocates what a block claims, so blocks
		// are read by nextNg; the section header must be readable.
		if err := s.readSHB(); err != nil {
			return nil, headerErr(err)
		}
	default:
		return nil, fmt.Errorf("%w (magic %#08x)", ErrUnknownFormat, binary.LittleEndian.Uint32(m))
	}
	return s, nil
}

func headerErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("file header: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("file header: %w", err)
}

// Name returns the file's base name.
func (s *File) Name() string { return s.name }

// Warnings reports where the file was damaged, if it was, and the packets
// skipped for exceeding the limit on their size (MaxPacket): one Warning
// each for the first 16, then one that counts the rest.
func (s *File) Warnings() []Warning {
	if s.skipped <= maxSkipWarnings {
		return s.warn
	}
	w := append([]Warning(nil), s.warn...)
	return append(w, Warning{Source: s.name, Offset: s.lastSkip.Offset, Packets: s.packets, Skipped: true,
		Err: fmt.Errorf("%d more packets over the %d-byte limit skipped, the last of %d bytes at offset %d",
			s.skipped-maxSkipWarnings, s.maxPacket, s.lastSkip.Size, s.lastSkip.Offset)})
}

// Packets returns how many packets have been read.
func (s *File) Packets() int { return s.packets }

// Skipped returns how many packets were skipped for exceeding the limit on
// their size (MaxPacket).
func (s *File) Skipped() int { return s.skipped }

// offset is the position of the next unread byte in the uncompressed stream.
func (s *File) offset() int64 { return s.cr.n - int64(s.br.Buffered()) }

// Offset returns the byte offset of the next record (in the uncompressed
// stream).
func (s *File) Offset() int64 { return s.offset() }

// Seekable reports whether SeekRecord works: an uncompressed classic pcap file
// (pcapng records depend on the blocks before them).
func (s *File) Seekable() bool { return s.f != nil && s.gz == nil && s.pcap }

// SeekRecord continues reading at offset, which must be a record's start as
// Offset returned it. The packet count restarts at packets.
func (s *File) SeekRecord(offset int64, packets int) error {
	if !s.Seekable() {
		return errors.New("seek: not an uncompressed classic pcap file")
	}
	if _, err := s.f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("seek %s: %w", s.name, err)
	}
	s.cr.n = offset
	s.br.Reset(&s.cr)
	s.done, s.warn, s.packets = false, nil, packets
	s.skipped, s.lastSkip = 0, nil
	return nil
}

// Next implements Source.
func (s *File) Next(p *Packet) error {
	if s.done {
		if s.br == nil {
			return ErrClosed
		}
		return io.EOF
	}
	if s.pcap {
		return s.nextPcap(p)
	}
	return s.nextNg(p)
}

// stop ends reading at the record that starts at offset start: a clean end
// of file, or damage reported as a Warning.
func (s *File) stop(start int64, err error) error {
	s.done = true
	if err == io.EOF && s.offset() == start {
		return io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	s.warn = append(s.warn, Warning{Source: s.name, Offset: start, Packets: s.packets, Err: err})
	return io.EOF
}

// skip passes over the record of n bytes at offset start, whose packet of
// size bytes exceeds the limit, by discarding it: its bytes are never held.
// An error means reading cannot go on.
func (s *File) skip(start int64, n, size int64) error {
	e := &PacketTooLargeError{Offset: start, Size: size, Limit: s.maxPacket}
	if _, err := s.discard(n); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return s.stop(start, fmt.Errorf("%v; the file ends inside it: %w", e, err))
	}
	s.skipped++
	s.lastSkip = e
	if s.skipped <= maxSkipWarnings {
		s.warn = append(s.warn, Warning{Source: s.name, Offset: start, Packets: s.packets, Skipped: true, Err: e})
	}
	return nil
}

// discard drops n bytes of input through the read buffer.
func (s *File) discard(n int64) (int64, error) {
	var done int64
	for done < n {
		k, err := s.br.Discard(int(min(n-done, 1<<30)))
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// record returns the n bytes at the read position and consumes them: out of
// the read buffer when they fit (valid until the next read), else copied into
// big, which grows up to the limit on packet size.
func (s *File) record(n int) ([]byte, error) {
	if n <= s.br.Size() {
		b, err := s.br.Peek(n)
		if err != nil {
			return nil, err
		}
		s.br.Discard(n)
		return b, nil
	}
	if cap(s.big) < n {
		s.big = make([]byte, n)
	}
	b := s.big[:n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

// nextPcap reads a classic pcap record. pcapgo parsed the file header, but
// its record reader trusts the lengths the file declares and copies every
// packet into a buffer of its own; the record is read here straight out of
// the read buffer instead (Peek), which saves a copy of every captured byte.
// A record whose packet exceeds the limit is skipped.
func (s *File) nextPcap(p *Packet) error {
	for {
		start := s.offset()
		hdr, err := s.br.Peek(16)
		if err != nil {
			if len(hdr) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return s.stop(start, err)
		}
		sec, frac := s.order.Uint32(hdr[0:4]), s.order.Uint32(hdr[4:8])
		capLen, wireLen := int64(s.order.Uint32(hdr[8:12])), int(s.order.Uint32(hdr[12:16]))
		switch {
		case capLen > int64(wireLen):
			return s.stop(start, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wireLen))
		case capLen > int64(s.maxPacket):
			if err := s.skip(start, 16+capLen, capLen); err != nil {
				return err
			}
			continue
		}
		s.br.Discard(16)
		data, err := s.record(int(capLen))
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return s.stop(start, err)
		}
		nsec := int64(frac)
		if !s.nanos {
			nsec *= 1000
		}
		s.packets++
		p.Timestamp = time.Unix(int64(sec), nsec).UTC()
		p.Data = data
		p.Length = wireLen
		p.LinkType = s.link
		p.Interface = 0
		p.Source = 0
		return nil
	}
}

// Close implements Source.
func (s *File) Close() error {
	s.done = true
	s.br = nil
	if s.gz != nil {
		s.gz.Close()
	}
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
