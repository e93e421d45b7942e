package capture

import (
	"bufio"
	"io"
	"slices"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer writes packets as a capture file: classic PCAP with nanosecond
// timestamps when they are of one link type, else PCAPNG with one
// interface per link type. It buffers; call Flush at the end.
type Writer struct {
	// Format is "pcap" or "pcapng".
	Format string
	buf    *bufio.Writer
	pw     *pcapgo.Writer
	nw     *pcapgo.NgWriter
	links  []layers.LinkType
}

// NewWriter writes the file header for packets of the link types given
// (at least one) with the snap length given.
func NewWriter(w io.Writer, links []layers.LinkType, snapLen uint32) (*Writer, error) {
	out := &Writer{buf: bufio.NewWriterSize(w, 1<<20), links: slices.Clone(links)}
	if len(links) == 1 {
		out.Format = "pcap"
		out.pw = pcapgo.NewWriterNanos(out.buf)
		return out, out.pw.WriteFileHeader(snapLen, links[0])
	}
	out.Format = "pcapng"
	nw, err := pcapgo.NewNgWriterInterface(out.buf, pcapgo.NgInterface{LinkType: links[0], SnapLength: snapLen},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "wirescope"}})
	if err != nil {
		return nil, err
	}
	for _, lt := range links[1:] {
		if _, err := nw.AddInterface(pcapgo.NgInterface{LinkType: lt, SnapLength: snapLen}); err != nil {
			return nil, err
		}
	}
	out.nw = nw
	return out, nil
}

// Write writes one packet, of one of the writer's link types.
func (w *Writer) Write(p *Packet) error {
	ci := gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: max(p.Length, len(p.Data))}
	if w.pw != nil {
		return w.pw.WritePacket(ci, p.Data)
	}
	ci.InterfaceIndex = slices.Index(w.links, p.LinkType)
	return w.nw.WritePacket(ci, p.Data)
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	if w.nw != nil {
		if err := w.nw.Flush(); err != nil {
			return err
		}
	}
	return w.buf.Flush()
}
