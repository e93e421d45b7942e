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

	"github.com/gopacket/gopacket"
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

// File reads a pcap or pcapng file.
type File struct {
	name string
	f    *os.File
	gz   *gzip.Reader
	cr   countingReader
	br   *bufio.Reader
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
	link layers.LinkType // classic pcap only
	// Classic pcap records are read straight out of br (see nextPcap).
	order   binary.ByteOrder
	nanos   bool
	maxCap  int
	packets int
	warn    []Warning
	done    bool
}

// OpenFile opens a pcap or pcapng file, optionally gzip-compressed. An input
// whose header cannot be read is an error.
func OpenFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := NewReader(filepath.Base(path), f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	src.f = f
	return src, nil
}

// NewReader reads a pcap or pcapng stream from r; name is used in warnings.
func NewReader(name string, r io.Reader) (*File, error) {
	s := &File{name: name}
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
	// pcapgo wraps its input in bufio.NewReader, which returns a
	// *bufio.Reader of at least 4 KiB unchanged: sharing ours lets Next
	// compute exact record offsets.
	s.br = bufio.NewReaderSize(&s.cr, readBufferSize)
	m, err := s.br.Peek(4)
	if err != nil {
		return nil, headerErr(err)
	}
	switch binary.LittleEndian.Uint32(m) {
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		s.pcap, err = pcapgo.NewReader(s.br)
		if err != nil {
			return nil, headerErr(err)
		}
		s.link = s.pcap.LinkType()
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
		// pcapgo's limit: the snap length, but at least 256 KiB, as
		// writers exceed the snap length they declare.
		s.maxCap = max(int(s.pcap.Snaplen()), 256<<10)
	case 0x0a0d0d0a:
		// Without WantMixedLinkType, pcapgo silently skips packets of
		// interfaces whose link type differs from the first interface's.
		s.ng, err = pcapgo.NewNgReader(s.br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
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

// Warnings reports where the file was damaged, if it was.
func (s *File) Warnings() []Warning { return s.warn }

// Packets returns how many packets have been read.
func (s *File) Packets() int { return s.packets }

// offset is the position of the next unread byte in the uncompressed stream.
func (s *File) offset() int64 { return s.cr.n - int64(s.br.Buffered()) }

// Offset returns the byte offset of the next record (in the uncompressed
// stream).
func (s *File) Offset() int64 { return s.offset() }

// Seekable reports whether SeekRecord works: an uncompressed classic pcap file
// (pcapng records depend on the blocks before them).
func (s *File) Seekable() bool { return s.f != nil && s.gz == nil && s.pcap != nil }

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
	start := s.offset()
	if s.pcap != nil {
		return s.nextPcap(p, start)
	}
	var (
		data []byte
		ci   gopacket.CaptureInfo
		err  error
	)
	{
		data, ci, err = s.ng.ZeroCopyReadPacketData()
		if err == nil {
			iface, ierr := s.ng.Interface(ci.InterfaceIndex)
			if ierr != nil {
				err = ierr
			}
			p.LinkType = iface.LinkType
		}
	}
	if err != nil {
		return s.stop(start, err)
	}
	s.packets++
	p.Timestamp = ci.Timestamp
	p.Data = data
	p.Length = ci.Length
	p.Interface = ci.InterfaceIndex
	p.Source = 0
	return nil
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

// nextPcap reads a classic pcap record. pcapgo parsed the file header, but
// its record reader copies every packet into a buffer of its own; the
// record is read here straight out of the read buffer instead (Peek), which
// saves a copy of every captured byte. Records larger than the buffer, which
// only a corrupt length announces, take pcapgo's path.
func (s *File) nextPcap(p *Packet, start int64) error {
	hdr, err := s.br.Peek(16)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return s.stop(start, err)
	}
	sec, frac := s.order.Uint32(hdr[0:4]), s.order.Uint32(hdr[4:8])
	capLen, wireLen := int(s.order.Uint32(hdr[8:12])), int(s.order.Uint32(hdr[12:16]))
	switch {
	case capLen > s.maxCap:
		return s.stop(start, fmt.Errorf("capture length exceeds snap length: %d > %d", capLen, s.maxCap))
	case capLen > wireLen:
		return s.stop(start, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wireLen))
	case 16+capLen > s.br.Size():
		data, ci, err := s.pcap.ZeroCopyReadPacketData()
		if err != nil {
			return s.stop(start, err)
		}
		s.packets++
		*p = Packet{Timestamp: ci.Timestamp, Data: data, Length: ci.Length, LinkType: s.link}
		return nil
	}
	rec, err := s.br.Peek(16 + capLen)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return s.stop(start, err)
	}
	s.br.Discard(16 + capLen)
	nsec := int64(frac)
	if !s.nanos {
		nsec *= 1000
	}
	s.packets++
	p.Timestamp = time.Unix(int64(sec), nsec).UTC()
	p.Data = rec[16:]
	p.Length = wireLen
	p.LinkType = s.link
	p.Interface = 0
	p.Source = 0
	return nil
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
