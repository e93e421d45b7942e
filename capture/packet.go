package capture

import (
	"fmt"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Packet is one captured frame.
type Packet struct {
	// Timestamp is when the frame was captured, with the file's precision.
	Timestamp time.Time
	// Data holds the captured bytes. It is owned by the Source and valid only
	// until the next call to Next: copy it to keep it.
	Data []byte
	// Length is the frame's length on the wire; it exceeds len(Data) when the
	// capture was cut at a snap length.
	Length int
	// LinkType says how to decode Data.
	LinkType layers.LinkType
	// Interface is the pcapng interface index (0 for classic pcap).
	Interface int
	// Source is the index, among the sources given to Merge, of the source
	// that produced the packet (0 for a single source).
	Source int
}

// Source yields packets in capture order.
type Source interface {
	// Next reads the next packet into p and returns io.EOF at the end. A
	// damaged input ends early with io.EOF and a Warning, not an error; an
	// error from Next means the source cannot be read any further.
	Next(p *Packet) error
	// Warnings describes damage found so far.
	Warnings() []Warning
	// Name identifies the source in messages.
	Name() string
	// Close releases the source.
	Close() error
}

// Warning describes where and why reading a source stopped early, or a
// record it skipped (Skipped).
type Warning struct {
	// Source names the file.
	Source string
	// Offset is the byte offset (in the uncompressed stream) of the record
	// that could not be read.
	Offset int64
	// Packets is how many packets were read before the damage.
	Packets int
	// Err is what went wrong.
	Err error
	// Skipped is set when reading went on after the record: its packet
	// exceeded the limit on packet size (Err is a *PacketTooLargeError, or
	// counts such packets).
	Skipped bool
}

func (w Warning) String() string {
	if w.Skipped {
		return fmt.Sprintf("%s: %v (after %d packets)", w.Source, w.Err, w.Packets)
	}
	return fmt.Sprintf("%s: stopped at byte offset %d after %d packets: %v", w.Source, w.Offset, w.Packets, w.Err)
}
