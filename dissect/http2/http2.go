// Package http2 dissects HTTP/2 (RFC 9113) in cleartext: connections that
// start with the client preface (prior knowledge), connections switched
// from HTTP/1.1 by `Upgrade: h2c` (proto.Description.Upgrades), and
// connections whose start the capture missed, recognised by their frames.
//
// Every stream is one call: Method, Path and Status are the :method,
// :path and :status pseudo-headers, Extra holds the stream id. Header
// blocks (HEADERS or PUSH_PROMISE and their CONTINUATION frames) are
// decoded with golang.org/x/net/http2/hpack and a dynamic table per
// direction; header fields are kept in the order sent, pseudo-headers
// included. A capture that starts mid-connection misses entries of those
// tables: what can be decoded is, and the calls whose header blocks could
// not be read whole say so ("headers_incomplete"). Trailers, 1xx responses,
// padding, RST_STREAM ("no response: stream reset CANCEL"), GOAWAY (streams
// it refuses) and server push (a call per promised stream, "pushed") are
// handled; bodies are kept per stream and content-decoded for display.
//
// Protocols carried in HTTP requests (gRPC, GraphQL: proto.Carried) are
// asked about every request and rewrite its call.
//
// Memory is bounded whatever the frames claim: DATA and header block
// fragments are read as they come, not held whole; a header list keeps at
// most Limits.MaxHeaderBytes (the rest is decoded, for the table's sake,
// and dropped); the dynamic table is capped at 64 KiB whatever SETTINGS
// and size updates ask; at most Limits.MaxPending streams wait for their
// response and 4×MaxPending are open at once, older ones emitted with a
// reason. After a capture gap a direction's frames are found again by
// their headers and its table starts afresh.
package http2

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is HTTP/2.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "http2" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "HTTP/2 requests: h2c, and h2 decrypted from TLS", Path: proto.PathURL, Upgrades: []string{"h2c"}, ALPN: []string{"h2"}}
}

// Ports implements proto.PortHinter: gRPC's customary port.
func (Protocol) Ports() []uint16 { return []uint16{50051} }

// preface is what a client sends first on an HTTP/2 connection.
const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// DetectStream implements proto.StreamProtocol: the client preface, or —
// for a connection whose start was not captured — a run of well-formed
// frames. The first header block's first field says which side sent them
// (:method and :path a client, :status a server); without one the
// handshake or the ports decide.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) < len(preface) && bytes.HasPrefix([]byte(preface), data) {
		return proto.Maybe, proto.RoleUnknown
	}
	if bytes.HasPrefix(data, []byte(preface)) {
		return proto.Yes, proto.Client
	}
	return detectFrames(data)
}

// detectFrames judges data that should start with a frame: Yes when it is
// one or more whole frames, well-formed for their types, and possibly the
// start of the next; Maybe while the first frame is not whole.
func detectFrames(data []byte) (proto.Verdict, proto.Role) {
	if len(data) < frameHeaderLen {
		if len(data) >= 4 && !plausibleStart(data) {
			return proto.No, proto.RoleUnknown
		}
		return proto.Maybe, proto.RoleUnknown
	}
	role := proto.RoleUnknown
	frames := 0
	for len(data) >= frameHeaderLen {
		h := parseHeader(data)
		// Stricter than a parser in step: only the types RFC 9113 defines,
		// and stream ids a connection reaches (length-prefixed protocols,
		// Kafka's, look like frames of unknown types or huge streams).
		if !h.wellFormed(defaultMaxFrame) || h.typ > frameContinuation || h.stream >= 1<<24 {
			return proto.No, proto.RoleUnknown
		}
		if len(data) < frameHeaderLen+int(h.length) {
			break
		}
		if role == proto.RoleUnknown && (h.typ == frameHeaders || h.typ == framePushPromise) {
			role = blockRole(h, data[frameHeaderLen:frameHeaderLen+int(h.length)])
		}
		frames++
		data = data[frameHeaderLen+int(h.length):]
	}
	if frames == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	if len(data) > 0 && len(data) < frameHeaderLen && !plausibleStart(data) {
		return proto.No, proto.RoleUnknown
	}
	return proto.Yes, role
}

// plausibleStart says whether the first bytes of a frame header (the
// length, then the type) can start a frame, as far as they go.
func plausibleStart(b []byte) bool {
	if len(b) < 3 {
		return len(b) == 0 || b[0] == 0 // no frame's length reaches 2^16 before SETTINGS allow it
	}
	length := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	return length <= defaultMaxFrame && (len(b) < 4 || b[3] <= frameContinuation)
}

// blockRole says who sent a HEADERS frame, from the first field of its
// header block: pseudo-headers come first, and HPACK's static table names
// them by index (1–7 :authority, :method, :path, :scheme; 8–14 :status).
// A PUSH_PROMISE comes from a server.
func blockRole(h frameHeader, payload []byte) proto.Role {
	if h.typ == framePushPromise {
		return proto.Server
	}
	if h.flags&flagPadded != 0 {
		if len(payload) < 1 {
			return proto.RoleUnknown
		}
		payload = payload[1:]
	}
	if h.flags&flagPriority != 0 {
		if len(payload) < 5 {
			return proto.RoleUnknown
		}
		payload = payload[5:]
	}
	for len(payload) > 0 && payload[0]&0xe0 == 0x20 { // dynamic table size updates
		payload = payload[1:]
		for len(payload) > 0 && payload[0]&0x80 != 0 { // their multi-byte sizes
			payload = payload[1:]
		}
		if len(payload) > 0 {
			payload = payload[1:]
		}
	}
	if len(payload) == 0 {
		return proto.RoleUnknown
	}
	var idx byte
	switch b := payload[0]; {
	case b&0x80 != 0:
		idx = b & 0x7f
	case b&0xc0 == 0x40:
		idx = b & 0x3f
	default:
		idx = b & 0x0f
	}
	switch {
	case idx >= 1 && idx <= 7:
		return proto.Client
	case idx >= 8 && idx <= 14:
		return proto.Server
	case idx == 0 && len(payload) > 2 && payload[1]&0x80 == 0: // a literal name, not Huffman coded
		n := int(payload[1] & 0x7f)
		if n <= len(payload)-2 {
			switch string(payload[2 : 2+n]) {
			case ":method", ":path", ":scheme", ":authority":
				return proto.Client
			case ":status":
				return proto.Server
			}
		}
	}
	return proto.RoleUnknown
}

// NewStream implements proto.StreamProtocol: a connection read from its
// preface, or from the middle when the capture started late.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	return newConn(out, lim, nil)
}

// NewUpgraded implements proto.UpgradeProtocol: a connection switched by
// `Upgrade: h2c`. The upgrade's request is stream 1, and its response
// comes on it (RFC 7540 §3.2).
func (Protocol) NewUpgraded(out proto.Emitter, lim *proto.Limits, ctx proto.Extra) proto.StreamParser {
	return newConn(out, lim, ctx)
}

// Frame types (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
)

// Frame flags.
const (
	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20
)

const (
	frameHeaderLen = 9
	// defaultMaxFrame is SETTINGS_MAX_FRAME_SIZE's initial value: no frame
	// is bigger until the receiver's SETTINGS allow it.
	defaultMaxFrame = 1 << 14
	// maxFrameLimit is the largest frame size SETTINGS can allow.
	maxFrameLimit = 1<<24 - 1
)

type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
}

func parseHeader(b []byte) frameHeader {
	return frameHeader{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & 0x7fffffff,
	}
}

// wellFormed checks what RFC 9113 fixes of a frame from its header: the
// length allowed, and each known type's stream (zero or not) and length.
// Unknown types are allowed (extensions), as peers must ignore them.
func (h frameHeader) wellFormed(maxFrame uint32) bool {
	if h.length > maxFrame {
		return false
	}
	switch h.typ {
	case frameData, frameHeaders, frameContinuation:
		return h.stream != 0
	case framePriority:
		return h.stream != 0 && h.length == 5
	case frameRSTStream:
		return h.stream != 0 && h.length == 4
	case frameSettings:
		return h.stream == 0 && h.length%6 == 0 && (h.flags&flagAck == 0 || h.length == 0)
	case framePushPromise:
		return h.stream != 0 && h.length >= 4
	case framePing:
		return h.stream == 0 && h.length == 8
	case frameGoAway:
		return h.stream == 0 && h.length >= 8
	case frameWindowUpdate:
		return h.length == 4
	}
	return h.typ <= 0x20 // extension frames in use are low numbered (ALTSVC, ORIGIN, PRIORITY_UPDATE)
}

// errorCodes are RFC 9113's error code names (§7), for RST_STREAM and
// GOAWAY.
var errorCodes = [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
	"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}

func errorCodeName(code uint32) string {
	if int(code) < len(errorCodes) {
		return errorCodes[code]
	}
	return "0x" + strconv.FormatUint(uint64(code), 16)
}
