// Package websocket dissects WebSocket (RFC 6455) after an HTTP upgrade.
//
// The connection reaches it through the HTTP/1 parser's switch on a 101
// (proto.Description.Upgrades: "websocket"), with the request's target and
// the negotiated extensions. Every message is one one-way record
// (proto.Call.OneWay): Method is the opcode's name (text, binary, close,
// ping, pong), Path the upgrade's target, Status the close code of a close
// message; the message is the call's Request when the client sent it, its
// Response when the server did. Fragmented messages are joined (control
// frames between fragments are messages of their own), client payloads are
// unmasked, and permessage-deflate (RFC 7692) messages are inflated, with
// or without context takeover.
//
// Memory is bounded whatever the frames claim: a message keeps at most
// Limits.MaxBodyCapture bytes of payload (the rest is counted), inflating
// stops at that size too, and a length of 2^63 is a count, not an
// allocation. WebSocket has nothing to resynchronise on: after a capture
// gap, the rest of that direction is counted and not read.
package websocket

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is WebSocket.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "websocket" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "WebSocket messages after an HTTP upgrade", Path: proto.PathURL, Upgrades: []string{"websocket"}}
}

// DetectStream implements proto.StreamProtocol: WebSocket frames are not
// recognisable on their own; connections reach it through an upgrade.
func (Protocol) DetectStream([]byte, uint16, uint16) (proto.Verdict, proto.Role) {
	return proto.No, proto.RoleUnknown
}

// NewStream implements proto.StreamProtocol: a connection without its
// handshake (no target, no extensions known).
func (p Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	return p.NewUpgraded(out, lim, nil)
}

// NewUpgraded implements proto.UpgradeProtocol.
func (Protocol) NewUpgraded(out proto.Emitter, lim *proto.Limits, ctx proto.Extra) proto.StreamParser {
	c := &conn{out: out, lim: lim}
	if v, ok := ctx.Get("target").(string); ok {
		c.target = v
	}
	if v, ok := ctx.Get("extensions").(string); ok {
		c.deflate, c.noTakeover = parseDeflate(v)
	}
	c.side[0].role, c.side[1].role = proto.Client, proto.Server
	return c
}

// parseDeflate reads a Sec-WebSocket-Extensions response header: whether
// permessage-deflate was agreed, and for each side (client, server)
// whether it resets its compression context after every message.
func parseDeflate(h string) (on bool, noTakeover [2]bool) {
	for ext := range strings.SplitSeq(h, ",") {
		params := strings.Split(ext, ";")
		if strings.TrimSpace(params[0]) != "permessage-deflate" {
			continue
		}
		on = true
		for _, p := range params[1:] {
			switch name, _, _ := strings.Cut(strings.TrimSpace(p), "="); name {
			case "client_no_context_takeover":
				noTakeover[0] = true
			case "server_no_context_takeover":
				noTakeover[1] = true
			}
		}
		return on, noTakeover
	}
	return false, noTakeover
}

// Frame header states.
const (
	stHeader  = iota // reading a frame header (hdr)
	stPayload        // reading a frame's payload (remaining)
	stLost           // after a gap: nothing more is read on this side
)

// conn parses both directions of one connection.
type conn struct {
	out        proto.Emitter
	lim        *proto.Limits
	target     string
	deflate    bool
	noTakeover [2]bool
	side       [2]side
}

// side is one direction's parse state.
type side struct {
	role  proto.Role
	state int
	hdr   []byte // a frame header so far (at most 14 bytes)
	// The frame being read.
	opcode    byte
	fin, rsv1 bool
	mask      [4]byte
	masked    bool
	remaining uint64
	pos       uint64 // payload bytes read, for unmasking
	// The data message being assembled (text or binary, over fragments).
	msg *message
	// ctl is the control frame being read (it may come between fragments).
	ctl *message
	// window is the last 32 KiB this side inflated, for context takeover;
	// windowLost is set once a message of the context was not inflated
	// whole: later messages refer to bytes wirescope does not have.
	window     []byte
	windowLost bool
}

// message is one message being assembled.
type message struct {
	opcode     byte
	start      time.Time
	frames     int
	size       uint64 // payload bytes as sent
	payload    []byte // the first MaxBodyCapture bytes
	compressed bool
	masked     bool
}

const maxWindow = 32 << 10

var opcodeNames = map[byte]string{0x0: "continuation", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}

func opcodeName(op byte) string {
	if n, ok := opcodeNames[op]; ok {
		return n
	}
	return "opcode-" + strconv.Itoa(int(op))
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	s := &c.side[idx(r)]
	for len(data) > 0 {
		switch s.state {
		case stLost:
			c.out.Skipped(len(data))
			return
		case stHeader:
			need := 2
			if len(s.hdr) >= 2 {
				need = headerLen(s.hdr)
			}
			n := min(need-len(s.hdr), len(data))
			s.hdr = append(s.hdr, data[:n]...)
			data = data[n:]
			if len(s.hdr) < 2 || len(s.hdr) < headerLen(s.hdr) {
				continue
			}
			c.frame(s, t)
		case stPayload:
			n := uint64(len(data))
			if n > s.remaining {
				n = s.remaining
			}
			c.payload(s, data[:n])
			s.remaining -= n
			data = data[n:]
			if s.remaining == 0 {
				c.frameDone(s, t)
			}
		}
	}
}

// headerLen is the length of the frame header that begins with b (at
// least two bytes).
func headerLen(b []byte) int {
	n := 2
	switch b[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// frame starts the frame whose header s.hdr holds.
func (c *conn) frame(s *side, t time.Time) {
	h := s.hdr
	s.fin, s.rsv1, s.opcode = h[0]&0x80 != 0, h[0]&0x40 != 0, h[0]&0x0f
	s.masked = h[1]&0x80 != 0
	n, off := uint64(h[1]&0x7f), 2
	switch n {
	case 126:
		n, off = uint64(binary.BigEndian.Uint16(h[2:])), 4
	case 127:
		n, off = binary.BigEndian.Uint64(h[2:]), 10
	}
	if s.masked {
		copy(s.mask[:], h[off:])
	}
	s.hdr = s.hdr[:0]
	s.remaining, s.pos = n, 0
	control := s.opcode&0x8 != 0
	switch {
	case control:
		s.ctl = &message{opcode: s.opcode, start: t, frames: 1, masked: s.masked}
	case s.opcode == 0 && s.msg != nil: // a continuation
		s.msg.frames++
	default:
		if s.msg != nil {
			// A new message before the last one's final fragment.
			c.emit(s, s.msg, "truncated: message not finished before the next began")
		}
		s.msg = &message{opcode: s.opcode, start: t, frames: 1, compressed: c.deflate && s.rsv1, masked: s.masked}
	}
	if n == 0 {
		c.frameDone(s, t)
		return
	}
	s.state = stPayload
}

// payload takes the next bytes of the current frame's payload.
func (c *conn) payload(s *side, b []byte) {
	m := s.msg
	if s.opcode&0x8 != 0 {
		m = s.ctl
	}
	if m == nil {
		return
	}
	m.size += uint64(len(b))
	room := c.lim.MaxBodyCapture - len(m.payload)
	if room <= 0 {
		s.pos += uint64(len(b))
		return
	}
	keep := b[:min(len(b), room)]
	start := len(m.payload)
	m.payload = append(m.payload, keep...)
	if s.masked {
		for i := start; i < len(m.payload); i++ {
			m.payload[i] ^= s.mask[(s.pos+uint64(i-start))%4]
		}
	}
	s.pos += uint64(len(b))
}

// frameDone ends the current frame: a control message, or the last
// fragment of a data message, is emitted.
func (c *conn) frameDone(s *side, t time.Time) {
	s.state = stHeader
	if s.opcode&0x8 != 0 {
		m := s.ctl
		s.ctl = nil
		c.emit(s, m, "")
		return
	}
	if s.fin && s.msg != nil {
		m := s.msg
		s.msg = nil
		c.emit(s, m, "")
	}
}

// emit turns a message into a one-way call.
func (c *conn) emit(s *side, m *message, problem string) {
	call := &proto.Call{Proto: "websocket", TS: m.start, Method: opcodeName(m.opcode), Path: c.target, OneWay: true, Error: problem}
	body := m.payload
	if m.compressed {
		call.Extra.Set("compressed", true)
		var cut bool
		switch body, cut = c.inflate(s, m.payload, uint64(len(m.payload)) < m.size); {
		case body == nil && len(m.payload) > 0:
			call.Extra.Set("decompressed", "not decodable: an earlier message of its compression context was not captured whole")
		case cut:
			call.Extra.Set("decompressed", "cut at "+strconv.Itoa(c.lim.MaxBodyCapture)+" bytes")
		}
	}
	if m.opcode == 0x8 && len(body) >= 2 {
		call.Status = strconv.Itoa(int(binary.BigEndian.Uint16(body)))
		if reason := body[2:]; len(reason) > 0 {
			call.Extra.Set("reason", string(reason))
		}
	}
	if m.frames > 1 {
		call.Extra.Set("frames", m.frames)
	}
	msg := &call.Request
	call.Extra.Set("from", "client")
	if s.role == proto.Server {
		msg = &call.Response
		call.Extra.Set("from", "server")
	}
	msg.BodySize = int64(min(m.size, 1<<62))
	if !c.lim.Summary && len(body) > 0 {
		msg.SetBody(body, c.lim.MaxBodyDisplay) // text, else base64
		msg.BodyTruncated = msg.BodyTruncated || uint64(len(m.payload)) < m.size
	}
	c.out.Emit(call)
}

// inflate decompresses a permessage-deflate payload (RFC 7692 7.2.2: the
// sender removed the final empty block's 0x00 0x00 0xff 0xff), with the
// side's last 32 KiB as the dictionary when it keeps its context. Output
// stops at MaxBodyCapture; partial (the payload was cut) gives what
// decodes.
func (c *conn) inflate(s *side, payload []byte, partial bool) (out []byte, cut bool) {
	takeover := !c.noTakeover[idx(s.role)]
	if takeover && s.windowLost {
		return nil, false
	}
	var dict []byte
	if takeover {
		dict = s.window
	}
	src := io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0x00, 0x00, 0xff, 0xff}))
	r := flate.NewReaderDict(src, dict)
	out, err := io.ReadAll(io.LimitReader(r, int64(c.lim.MaxBodyCapture)+1))
	if len(out) > c.lim.MaxBodyCapture {
		out, cut = out[:c.lim.MaxBodyCapture], true
	}
	if err != nil && err != io.ErrUnexpectedEOF && !partial {
		// Not deflate after all, or a context we did not see from its
		// start: show nothing rather than garbage.
		out = nil
	}
	if takeover {
		if cut || partial || out == nil {
			// The context is no longer what the sender's is.
			s.window, s.windowLost = nil, true
			return out, cut
		}
		s.window = append(s.window, out...)
		if len(s.window) > maxWindow {
			s.window = append(s.window[:0:0], s.window[len(s.window)-maxWindow:]...)
		}
	}
	return out, cut
}

// Gap implements proto.StreamParser: WebSocket frames carry nothing to
// resynchronise on, so after a gap the side's message in progress is
// emitted as cut and the rest of that direction is counted, not read.
func (c *conn) Gap(r proto.Role, n int) {
	s := &c.side[idx(r)]
	if s.state == stLost {
		return
	}
	for _, m := range []*message{s.ctl, s.msg} {
		if m != nil {
			c.emit(s, m, "truncated: message cut by a capture gap; the rest of this direction is not read")
		}
	}
	s.ctl, s.msg, s.hdr, s.state = nil, nil, nil, stLost
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, _ time.Time) {
	for i := range c.side {
		s := &c.side[i]
		for _, m := range []*message{s.ctl, s.msg} {
			if m != nil {
				c.emit(s, m, "truncated: connection "+reason.String()+" during the message")
			}
		}
		s.ctl, s.msg = nil, nil
	}
}

// Buffered implements proto.Buffering: the payloads kept and the
// compression windows.
func (c *conn) Buffered() int {
	n := 0
	for i := range c.side {
		s := &c.side[i]
		n += cap(s.window) + cap(s.hdr)
		for _, m := range []*message{s.ctl, s.msg} {
			if m != nil {
				n += cap(m.payload)
			}
		}
	}
	return n
}
