package dns

import (
	"encoding/binary"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// stream parses DNS over TCP: each message is preceded by its two-byte
// length. A side's partial message is buffered: at most 2 + 65,535 bytes,
// the most a length can announce, as Feed buffers only an incomplete
// message; after a gap the side resynchronises on the next segment
// that starts with a plausible message.
type stream struct {
	m     matcher
	buf   [2][]byte
	start [2]time.Time // when the buffered message began
	lost  [2]bool
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (s *stream) Feed(r proto.Role, data []byte, t time.Time) {
	i := idx(r)
	if s.lost[i] {
		// Resynchronise only on a segment that holds a whole plausible
		// message: after a gap, two bytes that could be a length usually
		// are not one.
		if v, _ := (Protocol{}).DetectStream(data, 0, 0); v != proto.Yes {
			return
		}
		s.lost[i] = false
	}
	if len(s.buf[i]) > 0 {
		data = append(s.buf[i], data...)
		s.buf[i] = s.buf[i][:0]
		t = s.start[i]
	}
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			break
		}
		s.m.message(r, data[2:2+n], t)
		data = data[2+n:]
	}
	if len(data) > 0 {
		s.buf[i] = append(s.buf[i][:0], data...)
		s.start[i] = t
	} else if cap(s.buf[i]) > keepCap {
		// A big message is done: let its buffer go.
		s.buf[i] = nil
	}
}

// Expire implements proto.Expiring: queries on the connection unanswered
// since before deadline are emitted as such (responses match by ID, so a
// late one becomes an answer without its query, not a wrong match).
func (s *stream) Expire(deadline time.Time) { s.m.expire(deadline, false, "no response") }

// body returns the message in a partial buffer, without its length.
func body(buf []byte) []byte { return buf[min(2, len(buf)):] }

// keepCap is the capacity of a buffer kept for the next message.
const keepCap = 4 << 10

// Buffered implements proto.Buffering: the partial messages and the queries
// waiting for their response.
func (s *stream) Buffered() int {
	return cap(s.buf[0]) + cap(s.buf[1]) + s.m.pending.Kept()
}

// Gap implements proto.StreamParser.
func (s *stream) Gap(r proto.Role, n int) {
	i := idx(r)
	if len(s.buf[i]) > 0 {
		s.m.broken(r, body(s.buf[i]), s.start[i], "truncated: message cut by a capture gap")
		s.buf[i] = nil
	}
	s.lost[i] = true
}

// End implements proto.StreamParser.
func (s *stream) End(reason proto.EndReason, t time.Time) {
	why := "truncated: connection ended inside a message"
	if reason == proto.EndMemory {
		why = "truncated: connection ended early for memory bounds inside a message"
	}
	for i, r := range []proto.Role{proto.Client, proto.Server} {
		if len(s.buf[i]) > 0 {
			if reason == proto.EndMemory {
				s.m.out.Skipped(len(s.buf[i]))
			}
			s.m.broken(r, body(s.buf[i]), s.start[i], why)
			s.buf[i] = nil
		}
	}
	if reason == proto.EndMemory {
		s.m.expire(t, true, "truncated: connection ended early for memory bounds before the response")
	}
	s.m.expire(t, true, "no response")
}
