package dissect

import (
	"encoding/binary"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect/proto"
)

// SCTP (RFC 9260) associations are flows: the side that sent INIT is the
// client, and the association's state is the flow's ("established",
// "closed" after SHUTDOWN COMPLETE, "aborted", "refused" when INIT is
// answered by ABORT, "unanswered" when INIT is not answered, "open" when
// it was joined mid-way). The user messages its DATA and I-DATA chunks
// carry — fragments joined per stream, retransmitted TSNs dropped — are
// fed, one message per Feed, to the stream protocol their first messages
// are detected as (Diameter, HTTP …): each message is whole, as a stream
// parser reading a byte stream would see it.

// sctpChunk types.
const (
	chunkData             = 0
	chunkInit             = 1
	chunkInitAck          = 2
	chunkAbort            = 6
	chunkShutdownComplete = 14
	chunkIData            = 64
)

// maxSCTPMessage bounds a user message joined from fragments; a bigger one
// is dropped (counted as skipped) and its parser told of a gap.
const maxSCTPMessage = 4 << 20

// sctpAssoc is what the engine follows of an association.
type sctpAssoc struct {
	initFrom   int // side that sent INIT, -1 if none was seen
	initAcked  bool
	aborted    bool
	abortedBy  int
	completed  bool
	streams    map[uint16]struct{}
	sp         proto.StreamProtocol
	parser     proto.StreamParser
	tries      int
	ended      bool
	frag       [2]map[uint16][]byte // partial messages by stream
	fragLost   [2]map[uint16]bool   // a partial message too big to keep
	recentTSN  [2][64]uint32        // the last TSNs delivered, to drop retransmissions
	recentNext [2]int
	recentN    [2]int
}

// sctpPacket handles the chunks of an SCTP packet side i of flow fl sent.
func (e *Engine) sctpPacket(fl *dgFlow, i int, d *capture.Decoded, ts time.Time) {
	a := fl.sctp
	if a == nil {
		a = &sctpAssoc{initFrom: -1, streams: map[uint16]struct{}{}}
		fl.sctp = a
	}
	b := d.Payload[12:]
	for len(b) >= 4 {
		typ, flags := b[0], b[1]
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			break // a chunk cut by the snap length, or malformed
		}
		c := b[:n]
		switch typ {
		case chunkInit:
			if a.initFrom < 0 {
				a.initFrom = i
				fl.role[i], fl.role[1-i] = proto.Client, proto.Server
			}
		case chunkInitAck:
			a.initAcked = true
		case chunkAbort:
			if !a.aborted {
				a.aborted, a.abortedBy = true, i
			}
			e.sctpEnd(fl, proto.EndRST, ts)
		case chunkShutdownComplete:
			a.completed = true
			e.sctpEnd(fl, proto.EndFIN, ts)
		case chunkData:
			if len(c) >= 16 {
				tsn := binary.BigEndian.Uint32(c[4:8])
				stream := binary.BigEndian.Uint16(c[8:10])
				e.sctpData(fl, i, tsn, stream, flags, c[16:], d, ts)
			}
		case chunkIData:
			if len(c) >= 20 {
				tsn := binary.BigEndian.Uint32(c[4:8])
				stream := binary.BigEndian.Uint16(c[8:10])
				e.sctpData(fl, i, tsn, stream, flags, c[20:], d, ts)
			}
		}
		pad := (n + 3) &^ 3
		if pad > len(b) {
			break
		}
		b = b[pad:]
	}
	if fl.account() && e.buffered > e.opts.MaxBufferedTotal {
		e.shedBuffered()
	}
}

// sctpData handles a DATA chunk's user data: a whole message or a
// fragment of one (flags B 0x2, E 0x1).
func (e *Engine) sctpData(fl *dgFlow, i int, tsn uint32, stream uint16, flags byte, data []byte, d *capture.Decoded, ts time.Time) {
	a := fl.sctp
	for k := range a.recentN[i] {
		if a.recentTSN[i][k] == tsn {
			fl.f.Retransmissions++
			return
		}
	}
	a.recentTSN[i][a.recentNext[i]] = tsn
	a.recentNext[i] = (a.recentNext[i] + 1) % len(a.recentTSN[i])
	a.recentN[i] = min(a.recentN[i]+1, len(a.recentTSN[i]))
	if len(a.streams) < 1<<16 {
		a.streams[stream] = struct{}{}
	}
	begin, end := flags&0x2 != 0, flags&0x1 != 0
	if begin && end {
		e.sctpMessage(fl, i, data, d, ts)
		return
	}
	if a.frag[i] == nil {
		a.frag[i], a.fragLost[i] = map[uint16][]byte{}, map[uint16]bool{}
	}
	if begin {
		a.frag[i][stream] = append(a.frag[i][stream][:0], data...)
		a.fragLost[i][stream] = false
		return
	}
	buf, ok := a.frag[i][stream]
	if !ok && !a.fragLost[i][stream] {
		// The message's first fragment was not captured.
		fl.f.MissingBytes += uint64(len(data))
		return
	}
	if a.fragLost[i][stream] || len(buf)+len(data) > maxSCTPMessage {
		fl.f.SkippedBytes += uint64(len(buf) + len(data))
		delete(a.frag[i], stream)
		a.fragLost[i][stream] = !end
		if a.parser != nil && !a.ended {
			a.parser.Gap(fl.role[i], -1)
		}
		return
	}
	buf = append(buf, data...)
	if !end {
		a.frag[i][stream] = buf
		return
	}
	delete(a.frag[i], stream)
	e.sctpMessage(fl, i, buf, d, ts)
}

// sctpMessage feeds a whole user message side i sent to the association's
// parser, detecting its protocol first.
func (e *Engine) sctpMessage(fl *dgFlow, i int, msg []byte, d *capture.Decoded, ts time.Time) {
	a := fl.sctp
	if a.ended || len(msg) == 0 {
		return
	}
	if a.parser == nil {
		if a.tries >= maxDetectTries {
			return
		}
		a.tries++
		for _, sp := range e.orderStream(d.SrcPort, d.DstPort) {
			v, r := sp.DetectStream(msg, d.SrcPort, d.DstPort)
			if v != proto.Yes {
				continue
			}
			if a.initFrom < 0 && r != proto.RoleUnknown {
				fl.role[i], fl.role[1-i] = r, r.Peer()
			}
			if fl.role[i] == proto.RoleUnknown {
				fl.role[i], fl.role[1-i] = proto.Client, proto.Server
			}
			a.sp = sp
			fl.f.Proto = sp.Name()
			a.parser = sp.NewStream(fl, &e.opts.Limits)
			fl.bufp, _ = a.parser.(proto.Buffering)
			break
		}
		if a.parser == nil {
			return
		}
	}
	a.parser.Feed(fl.role[i], msg, ts)
}

// sctpEnd ends the association's parser (ABORT, SHUTDOWN COMPLETE, or the
// flow's end).
func (e *Engine) sctpEnd(fl *dgFlow, reason proto.EndReason, ts time.Time) {
	a := fl.sctp
	if a == nil || a.ended {
		return
	}
	a.ended = true
	if a.parser != nil {
		a.parser.End(reason, ts)
		a.parser, fl.bufp = nil, nil
		fl.setBuffered(0)
	}
	a.frag = [2]map[uint16][]byte{}
}

// sctpState is the association's state, for its flow.
func (a *sctpAssoc) state(client int) string {
	switch {
	case a.aborted && !a.initAcked && a.initFrom >= 0 && a.abortedBy != a.initFrom:
		return "refused"
	case a.aborted:
		return "aborted"
	case a.completed:
		return "closed"
	case a.initFrom >= 0 && !a.initAcked:
		return "unanswered"
	case a.initFrom >= 0:
		return "established"
	}
	return "open"
}
