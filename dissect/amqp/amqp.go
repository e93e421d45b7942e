// Package amqp dissects AMQP 0-9-1 (RabbitMQ's protocol; 0-9 and 0-8
// framings are read alike), from the client's protocol header or, on a
// connection the capture joined late, from the first method frame.
//
// Method is the class and method of the side that starts an exchange, as
// the specification names them ("connection.open", "queue.declare",
// "basic.publish", "basic.deliver"). A synchronous method and its "-ok"
// are one call, matched per channel (replies come in order on each
// channel); the handshake's server methods (connection.start, .secure,
// .tune) are calls the client's "-ok" answers (extra direction
// "server→client"). Path is the exchange and routing key joined by "/"
// for basic.publish, .deliver, .return, .get-ok and the bindings
// ("orders/new.eu"; the default exchange is empty: "/hello"), the queue
// for the other queue methods and basic.consume and .get, the exchange for
// exchange.declare and .delete, the consumer tag for basic.cancel, and the
// virtual host for connection.open.
//
// Status is "OK", or the name of the reply code (upper case with
// underscores, as RabbitMQ spells them: "PRECONDITION_FAILED",
// "NOT_FOUND", "ACCESS_REFUSED") of the channel.close or connection.close
// the server answered it with; extra reply_code and reply_text hold the
// code and the server's text. A close the server sends unprompted is a
// call of its own (direction "server→client") whose status is its code, so
// that it counts as the failure it is; a close with code 200 is "OK".
//
// basic.publish, basic.deliver, basic.return, basic.ack, basic.nack,
// basic.reject, basic.recover-async, connection.blocked and .unblocked,
// and every method sent with no-wait are one-way: Request holds them when
// the client sent them, Response when the server did. A publish's (or a
// delivery's, a return's, a get-ok's) content header and body frames are
// joined to it: the body is the message's body, cut for display, and the
// properties (content type and encoding, delivery mode, priority,
// correlation id, reply-to, expiration, message id, timestamp, type, user
// and app id, the headers table) go to extra. In confirm mode a server's
// basic.ack or .nack says how many publishes it confirms (extra confirms).
//
// The login is the connection.start call: it is emitted when the server
// goes on (connection.tune or .secure), or with the code of the
// connection.close that refuses it, or as unanswered when the server
// closes the socket instead (RabbitMQ does so to clients without the
// authentication_failure_close capability).
//
// The SASL response of connection.start-ok is never kept: the mechanism and
// the user (PLAIN's authentication identity, AMQPLAIN's LOGIN) are in
// extra, the password nowhere; connection.secure, .secure-ok and
// .update-secret are kept as their names only. Heartbeat frames are counted
// (extra heartbeats on the connection's close), not calls.
//
// A server that answers the protocol header with its own (an unsupported
// version) fails a call "protocol-header" with status VERSION_MISMATCH.
// AMQP 1.0 (header "AMQP" 0/2/3 1 0 0) is another protocol: its
// connection is one call "protocol-header", path "AMQP 1.0", saying it was
// not decoded.
//
// Memory is bounded whatever a frame claims: a frame over maxFrame bytes is
// malformed, and the side then waits for a segment that starts a method
// frame; of a method or content header frame at most Limits.MaxHeaderBytes
// are kept; a content body streams through, at most Limits.MaxBodyCapture
// of it kept; field tables are rendered at most maxDepth deep and
// maxEntries entries in all (the rest skipped by their sizes); the calls
// waiting for a reply are bounded by Limits.MaxPending, the channels
// tracked by maxChannels and the contents in progress by maxContents.
package amqp

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxFrame is the biggest frame read as AMQP: RabbitMQ's frame_max
	// is at most 128 MiB.
	maxFrame = 128 << 20
	// maxDetect is the biggest first frame detection waits for whole.
	maxDetect = 64 << 10
	// maxChannels bounds the channels whose state (confirm mode,
	// publish counts) is kept.
	maxChannels = 2048
	// maxContents bounds the contents (publishes, deliveries) being
	// assembled at once.
	maxContents = 256
	// frameEnd ends every frame.
	frameEnd = 0xCE
)

// Frame types.
const (
	fMethod    = 1
	fHeader    = 2
	fBody      = 3
	fHeartbeat = 8
	// fHeartbeatOld is the 0-8 heartbeat frame type some brokers used.
	fHeartbeatOld = 4
)

// Protocol is AMQP 0-9-1.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "amqp" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "AMQP 0-9-1 methods (RabbitMQ): publishes, deliveries, declares, consumes, acks",
		Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter: AMQP and AMQP over TLS.
func (Protocol) Ports() []uint16 { return []uint16{5672, 5671} }

// replyNames are the reply codes' names as RabbitMQ spells them.
var replyNames = map[uint16]string{
	200: "OK", 311: "CONTENT_TOO_LARGE", 312: "NO_ROUTE", 313: "NO_CONSUMERS", 320: "CONNECTION_FORCED",
	402: "INVALID_PATH", 403: "ACCESS_REFUSED", 404: "NOT_FOUND", 405: "RESOURCE_LOCKED", 406: "PRECONDITION_FAILED",
	501: "FRAME_ERROR", 502: "SYNTAX_ERROR", 503: "COMMAND_INVALID", 504: "CHANNEL_ERROR", 505: "UNEXPECTED_FRAME",
	506: "RESOURCE_ERROR", 530: "NOT_ALLOWED", 540: "NOT_IMPLEMENTED", 541: "INTERNAL_ERROR",
}

// replyName names a reply code; "REPLY_<code>" when the specification
// does not.
func replyName(code uint16) string {
	if n, ok := replyNames[code]; ok {
		return n
	}
	return "REPLY_" + strconv.Itoa(int(code))
}

// statusVersionMismatch is the status of a protocol header the server
// answered with its own.
const statusVersionMismatch = "VERSION_MISMATCH"

// serverErrors are the reply codes that say the server failed, not the
// request: an operator closed the connection (320), the server ran out of
// a resource (506), or failed inside (541). The rest, CHANNEL_ERROR (a
// client's misuse of channels) among them, are the client's.
var serverErrors = map[string]bool{"CONNECTION_FORCED": true, "RESOURCE_ERROR": true, "INTERNAL_ERROR": true}

func outcome(c *proto.Call) proto.Outcome {
	switch {
	case c.Status == "OK":
		return proto.OK
	case serverErrors[c.Status]:
		return proto.ServerError
	}
	return proto.ClientError
}

// DetectStream implements proto.StreamProtocol: a client's protocol
// header ("AMQP" and a version this package knows, 1.0 included), or, on a
// connection joined late, a whole method frame of a known class and method
// ending in the frame-end octet (heartbeats before it skipped); the
// method says which side sent it when only one side sends it.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	if data[0] == 'A' {
		if len(data) < 8 {
			if bytes.HasPrefix([]byte("AMQP"), data[:min(len(data), 4)]) {
				return proto.Maybe, proto.RoleUnknown
			}
			return proto.No, proto.RoleUnknown
		}
		if _, ok := headerVersion(data[:8]); ok {
			return proto.Yes, proto.Client
		}
		return proto.No, proto.RoleUnknown
	}
	for len(data) > 0 {
		if len(data) < 7 {
			return proto.Maybe, proto.RoleUnknown
		}
		typ := data[0]
		size := binary.BigEndian.Uint32(data[3:])
		switch {
		case typ == fHeartbeat && size == 0:
			if len(data) < 8 {
				return proto.Maybe, proto.RoleUnknown
			}
			if data[7] != frameEnd || binary.BigEndian.Uint16(data[1:]) != 0 {
				return proto.No, proto.RoleUnknown
			}
			data = data[8:]
			continue
		case typ != fMethod || size < 4 || size > maxDetect:
			return proto.No, proto.RoleUnknown
		}
		if len(data) < 8+int(size) {
			if len(data) >= 11 && methods[key(binary.BigEndian.Uint16(data[7:]), binary.BigEndian.Uint16(data[9:]))] == nil {
				return proto.No, proto.RoleUnknown
			}
			return proto.Maybe, proto.RoleUnknown
		}
		if data[7+size] != frameEnd {
			return proto.No, proto.RoleUnknown
		}
		m := methods[key(binary.BigEndian.Uint16(data[7:]), binary.BigEndian.Uint16(data[9:]))]
		if m == nil {
			return proto.No, proto.RoleUnknown
		}
		if !argsFit(m, data[11:7+size]) {
			return proto.No, proto.RoleUnknown
		}
		switch m.from {
		case byClient:
			return proto.Yes, proto.Client
		case byServer:
			return proto.Yes, proto.Server
		}
		return proto.Yes, proto.RoleUnknown
	}
	return proto.Maybe, proto.RoleUnknown
}

// headerVersion names the version of a protocol header; ok is false when
// it is not one.
func headerVersion(h []byte) (string, bool) {
	if len(h) != 8 || string(h[:4]) != "AMQP" {
		return "", false
	}
	switch v := [4]byte(h[4:]); v {
	case [4]byte{0, 0, 9, 1}:
		return "AMQP 0-9-1", true
	case [4]byte{1, 1, 0, 9}:
		return "AMQP 0-9", true
	case [4]byte{1, 1, 8, 0}, [4]byte{1, 1, 9, 1}:
		return "AMQP 0-8", true
	case [4]byte{0, 1, 0, 0}:
		return "AMQP 1.0", true
	case [4]byte{2, 1, 0, 0}:
		return "AMQP 1.0 TLS", true
	case [4]byte{3, 1, 0, 0}:
		return "AMQP 1.0 SASL", true
	}
	return "AMQP " + strconv.Itoa(int(h[4])) + "-" + strconv.Itoa(int(h[5])) + "-" + strconv.Itoa(int(h[6])) + "-" + strconv.Itoa(int(h[7])), false
}

// isV1 reports whether a header names AMQP 1.0.
func isV1(version string) bool { return len(version) >= 8 && version[:8] == "AMQP 1.0" }

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, keep: max(l.MaxHeaderBytes, 256)}
	size := func(r *request) int { return r.size }
	c.pending[0] = proto.Pending[uint16, *request]{Max: l.MaxPending, Size: size}
	c.pending[1] = proto.Pending[uint16, *request]{Max: l.MaxPending, Size: size}
	return c
}
