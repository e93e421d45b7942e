// Package nats dissects the NATS client protocol (the text protocol
// between a client and nats-server: INFO, CONNECT, PUB, HPUB, SUB, UNSUB,
// MSG, HMSG, PING, PONG, +OK and -ERR).
//
// Method is the client's operation (CONNECT, PUB, HPUB, SUB, UNSUB, PING),
// or MSG/HMSG for what the server delivers; Path is the subject (a SUB's
// queue group is in extra queue, an UNSUB takes the subject its sid was
// subscribed to, a CONNECT the client's name). Status is "OK", "no
// responders" (a request answered by the server's 503 status message), or
// the text of the server's -ERR without its quotes ("Authorization
// Violation", "Permissions Violation for Publish to \"x\"", "Maximum Payload
// Violation", …).
//
// A CONNECT is a call, answered when the server goes on (its +OK in verbose
// mode, the PONG answering the client's first PING, a delivered message) or
// by the -ERR it sends before closing; the server's INFO (server name,
// version, Go version, max_payload, headers, auth_required, TLS) goes to
// the CONNECT's extra. Its JSON is the body, with pass, auth_token, sig and
// jwt replaced by "[redacted]": they are never kept. In verbose mode every
// PUB, HPUB, SUB and UNSUB is a call answered by +OK or -ERR in order;
// otherwise they are one-way, held a second (or until a PONG shows the
// server read past them) so that an -ERR naming their subject (Permissions
// Violation) or a Maximum Payload Violation can be attached to them. PING
// and PONG are one call, whichever side pings.
//
// Request/reply is matched by reply subject: a client's PUB or HPUB with a
// reply subject and the MSG or HMSG the server later delivers to that
// subject on the same connection are one call (method PUB, extra reply_to,
// the request's payload as Request, the reply's as Response); requests
// unanswered after Limits.StreamRequestTimeout are reported "no response".
// On the responder's connection a delivered MSG with a reply subject and the
// client's PUB to that subject are one call (method MSG, extra direction
// "server→client", the delivered payload as Request, the answer as
// Response); a delivery its client never answers is one-way. Every other
// delivery is a one-way call whose payload is the response body. Header
// blocks (NATS/1.0) are the messages' headers.
//
// Memory is bounded whatever the peer claims: a control line is at most
// Limits.MaxHeaderBytes (longer: malformed, and the side resynchronises on
// the next line that starts an operation it may send), a payload claimed
// larger than 64 MiB is malformed, payloads stream through keeping at most
// Limits.MaxBodyCapture bytes, and the requests waiting are bounded by
// Limits.MaxPending. Not decoded: the meaning of JetStream's API subjects
// ($JS.API.…) beyond the subjects themselves, and the route, gateway and
// leafnode protocols between servers.
package nats

import (
	"bytes"
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is the NATS client protocol.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "nats" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "NATS client protocol: publishes, request/reply, subscriptions, connects",
		Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{4222} }

// StatusNoResponders is the status of a request the server answered with
// its 503 status message: nobody subscribes to the subject.
const StatusNoResponders = "no responders"

// outcome: OK is OK; no responders and the server's own limits are server
// errors; every other -ERR (violations, parser errors) a client error.
func outcome(c *proto.Call) proto.Outcome {
	switch {
	case c.Status == "OK":
		return proto.OK
	case c.Status == StatusNoResponders, strings.HasPrefix(c.Status, "Maximum Connections Exceeded"),
		strings.HasPrefix(c.Status, "Maximum Account Connections Exceeded"), strings.Contains(c.Status, "Server Shutdown"):
		return proto.ServerError
	}
	return proto.ClientError
}

// DetectStream implements proto.StreamProtocol: the server's INFO {…} (it
// speaks first) or a client's CONNECT {…}.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	for _, w := range []struct {
		op   string
		role proto.Role
	}{{"INFO", proto.Server}, {"CONNECT", proto.Client}} {
		v := detectOp(data, w.op)
		if v != proto.No {
			return v, w.role
		}
	}
	return proto.No, proto.RoleUnknown
}

// detectOp: op (any case), spaces or tabs, then '{'.
func detectOp(data []byte, op string) proto.Verdict {
	n := min(len(data), len(op))
	if !bytes.EqualFold(data[:n], []byte(op[:n])) {
		return proto.No
	}
	if len(data) <= len(op) {
		return proto.Maybe
	}
	rest := data[len(op):]
	if rest[0] != ' ' && rest[0] != '\t' {
		return proto.No
	}
	for i, b := range rest {
		switch {
		case b == ' ' || b == '\t':
			if i > 64 {
				return proto.No
			}
		case b == '{':
			return proto.Yes
		default:
			return proto.No
		}
	}
	return proto.Maybe
}
