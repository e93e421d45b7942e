// Package mqtt dissects MQTT 3.1, 3.1.1 and 5.0.
//
// Each exchange is a call: Method is the packet type that starts it
// (CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, AUTH);
// Path is the topic of a PUBLISH (a topic alias resolved to the name it
// stands for, per direction), the topic filters of a SUBSCRIBE or
// UNSUBSCRIBE joined by commas, and the client identifier of a CONNECT;
// Status is the name the MQTT 5.0 specification gives the answer's reason
// code ("Success", "Granted QoS 1", "Not authorized", "Bad User Name or
// Password"…). A 3.1.x CONNACK's return codes 1 to 5 take the names of
// their 5.0 equivalents (its raw value is in extra return_code), and a 3.1.x
// SUBACK's 0x80 is "Failure". A SUBSCRIBE's status is its first failure, or
// the lowest QoS granted when every filter was granted; each filter's code
// is in extra reason_codes.
//
// A QoS 1 PUBLISH and its PUBACK are one call, and so are a QoS 2
// PUBLISH, PUBREC, PUBREL and PUBCOMP: matched by packet identifier per
// direction, as the server publishes to its subscribers too (extra
// direction "server→client": the payload is then the response body). A QoS 0
// PUBLISH and a DISCONNECT are one-way; CONNECT/CONNACK, SUBSCRIBE/SUBACK,
// UNSUBSCRIBE/UNSUBACK and PINGREQ/PINGRESP are one call each; a client's
// AUTH after the connection (re-authentication) is answered by the server's
// AUTH, while the AUTH packets of an enhanced authentication are counted on
// its CONNECT. The protocol level comes from CONNECT and applies to the
// connection.
//
// The payload of a PUBLISH is its body, cut for display. A CONNECT's body
// shows its fields with the password as "[redacted]": the password and the
// authentication data are never kept. MQTT 5.0 properties worth showing go to
// extra (reason string, user properties, session expiry, content type,
// response topic, correlation data, message expiry, subscription
// identifiers, assigned client identifier…).
//
// Memory is bounded whatever a packet claims: of a packet (whose remaining
// length may say 268,435,455 bytes) at most Limits.MaxHeaderBytes +
// Limits.MaxBodyCapture bytes are kept, the rest streams through counted;
// the exchanges waiting for an acknowledgement are bounded by
// Limits.MaxPending, and topic aliases by 64 KiB of names per direction. A
// remaining length of 5 or more bytes, a reserved packet type or wrong
// fixed-header flags are malformed; after them, or after a capture gap that
// is not inside a packet, the side resynchronises at the first segment that
// starts a plausible packet, and the exchanges waiting for what the lost
// bytes may have held are reported truncated.
package mqtt

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is MQTT.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "mqtt" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "MQTT packets (3.1, 3.1.1 and 5.0): publishes, subscriptions, connects",
		Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter: MQTT and MQTT over TLS.
func (Protocol) Ports() []uint16 { return []uint16{1883, 8883} }

// Packet types.
const (
	tConnect     = 1
	tConnack     = 2
	tPublish     = 3
	tPuback      = 4
	tPubrec      = 5
	tPubrel      = 6
	tPubcomp     = 7
	tSubscribe   = 8
	tSuback      = 9
	tUnsubscribe = 10
	tUnsuback    = 11
	tPingreq     = 12
	tPingresp    = 13
	tDisconnect  = 14
	tAuth        = 15
)

var typeNames = [16]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

// validFlags reports whether a fixed header's first byte has the flags
// its type requires (any for PUBLISH but QoS 3).
func validFlags(b byte) bool {
	typ, flags := b>>4, b&0x0f
	switch typ {
	case 0:
		return false
	case tPublish:
		return flags&0x06 != 0x06
	case tPubrel, tSubscribe, tUnsubscribe:
		return flags == 0x02
	}
	return flags == 0
}

// fromClient and fromServer say who may send a packet type.
func fromClient(typ byte) bool {
	switch typ {
	case tConnack, tSuback, tUnsuback, tPingresp:
		return false
	}
	return true
}

func fromServer(typ byte) bool {
	switch typ {
	case tConnect, tSubscribe, tUnsubscribe, tPingreq:
		return false
	}
	return true
}

// uvarint reads a remaining length (or a property length): n is how many
// bytes it took; n == 0 when b ends before it does, n < 0 when it runs
// over 4 bytes.
func uvarint(b []byte) (v, n int) {
	mul := 1
	for i := 0; i < len(b); i++ {
		if i == 4 {
			return 0, -1
		}
		v += int(b[i]&0x7f) * mul
		if b[i] < 0x80 {
			return v, i + 1
		}
		mul <<= 7
	}
	if len(b) >= 4 {
		return 0, -1
	}
	return 0, 0
}

// DetectStream implements proto.StreamProtocol: a client's CONNECT
// (protocol name "MQTT" at level 4 or 5, or "MQIsdp" at level 3), or a
// server's CONNACK when it can be nothing else.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	switch data[0] {
	case tConnect << 4:
		return detectConnect(data)
	case tConnack << 4:
		return detectConnack(data)
	}
	return proto.No, proto.RoleUnknown
}

func detectConnect(data []byte) (proto.Verdict, proto.Role) {
	rem, n := uvarint(data[1:])
	if n < 0 {
		return proto.No, proto.RoleUnknown
	}
	if n == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	if rem < 10 {
		return proto.No, proto.RoleUnknown
	}
	v := data[1+n:]
	for _, want := range [][]byte{[]byte("\x00\x04MQTT"), []byte("\x00\x06MQIsdp")} {
		if len(v) < len(want) {
			if bytes.HasPrefix(want, v) {
				return proto.Maybe, proto.RoleUnknown
			}
			continue
		}
		if !bytes.HasPrefix(v, want) {
			continue
		}
		if len(v) == len(want) {
			return proto.Maybe, proto.RoleUnknown
		}
		level := v[len(want)]
		if (want[1] == 4 && (level == 4 || level == 5)) || (want[1] == 6 && level == 3) {
			return proto.Yes, proto.Client
		}
		return proto.No, proto.RoleUnknown
	}
	return proto.No, proto.RoleUnknown
}

// detectConnack recognises a whole CONNACK: a 3.1.x one (acknowledge
// flags 0 or 1, a return code 0 to 5, nothing more) or a 5.0 one (a
// CONNACK reason code and properties that fill the packet exactly).
func detectConnack(data []byte) (proto.Verdict, proto.Role) {
	rem, n := uvarint(data[1:])
	switch {
	case n < 0 || (n > 0 && (rem < 2 || rem > 1<<16)):
		return proto.No, proto.RoleUnknown
	case n == 0 || len(data) < 1+n+rem:
		return proto.Maybe, proto.RoleUnknown
	}
	p := data[1+n : 1+n+rem]
	if p[0] > 1 {
		return proto.No, proto.RoleUnknown
	}
	if rem == 2 {
		if p[1] <= 5 || connackCodes[p[1]] {
			return proto.Yes, proto.Server
		}
		return proto.No, proto.RoleUnknown
	}
	if p[1] != 0 && !connackCodes[p[1]] {
		return proto.No, proto.RoleUnknown
	}
	plen, pn := uvarint(p[2:])
	if pn <= 0 || 2+pn+plen != rem {
		return proto.No, proto.RoleUnknown
	}
	if _, ok := readProps(p[2+pn:], nil); !ok {
		return proto.No, proto.RoleUnknown
	}
	return proto.Yes, proto.Server
}

// connackCodes are the failure reason codes a 5.0 CONNACK may carry.
var connackCodes = map[byte]bool{0x80: true, 0x81: true, 0x82: true, 0x83: true, 0x84: true, 0x85: true, 0x86: true,
	0x87: true, 0x88: true, 0x89: true, 0x8A: true, 0x8C: true, 0x90: true, 0x95: true, 0x97: true, 0x99: true,
	0x9A: true, 0x9B: true, 0x9C: true, 0x9D: true, 0x9F: true}

// reasonNames are the MQTT 5.0 specification's names of the reason codes
// (section 2.4); 0x00 and 0x80 are named by the packet (reasonName).
var reasonNames = map[byte]string{
	0x00: "Success", 0x01: "Granted QoS 1", 0x02: "Granted QoS 2", 0x04: "Disconnect with Will Message",
	0x10: "No matching subscribers", 0x11: "No subscription existed", 0x18: "Continue authentication",
	0x19: "Re-authenticate", 0x80: "Unspecified error", 0x81: "Malformed Packet", 0x82: "Protocol Error",
	0x83: "Implementation specific error", 0x84: "Unsupported Protocol Version", 0x85: "Client Identifier not valid",
	0x86: "Bad User Name or Password", 0x87: "Not authorized", 0x88: "Server unavailable", 0x89: "Server busy",
	0x8A: "Banned", 0x8B: "Server shutting down", 0x8C: "Bad authentication method", 0x8D: "Keep Alive timeout",
	0x8E: "Session taken over", 0x8F: "Topic Filter invalid", 0x90: "Topic Name invalid",
	0x91: "Packet Identifier in use", 0x92: "Packet Identifier not found", 0x93: "Receive Maximum exceeded",
	0x94: "Topic Alias invalid", 0x95: "Packet too large", 0x96: "Message rate too high", 0x97: "Quota exceeded",
	0x98: "Administrative action", 0x99: "Payload format invalid", 0x9A: "Retain not supported",
	0x9B: "QoS not supported", 0x9C: "Use another server", 0x9D: "Server moved",
	0x9E: "Shared Subscriptions not supported", 0x9F: "Connection rate exceeded", 0xA0: "Maximum connect time",
	0xA1: "Subscription Identifiers not supported", 0xA2: "Wildcard Subscriptions not supported",
}

// v3Connack names a 3.1.x CONNACK's return codes by their 5.0
// equivalents.
var v3Connack = [6]string{"Success", "Unsupported Protocol Version", "Client Identifier not valid",
	"Server unavailable", "Bad User Name or Password", "Not authorized"}

// reasonName names reason code rc as packet type typ carries it.
func reasonName(typ, rc byte, version byte) string {
	switch {
	case rc == 0 && typ == tDisconnect:
		return "Normal disconnection"
	case rc == 0 && typ == tSuback:
		return "Granted QoS 0"
	case typ == tConnack && rc >= 1 && rc <= 5:
		return v3Connack[rc]
	case typ == tSuback && rc == 0x80 && version < 5:
		return "Failure"
	}
	if n, ok := reasonNames[rc]; ok {
		return n
	}
	return "Reason code 0x" + strconv.FormatUint(uint64(rc)|0x100, 16)[1:]
}

// serverFailures are the reason codes that say the server failed, not
// the request.
var serverFailures = map[byte]bool{0x80: true, 0x83: true, 0x88: true, 0x89: true, 0x8B: true, 0x98: true,
	0x9C: true, 0x9D: true}

// outcomes classifies the statuses by name.
var outcomes = func() map[string]proto.Outcome {
	m := map[string]proto.Outcome{"Normal disconnection": proto.OK, "Granted QoS 0": proto.OK, "Failure": proto.ClientError}
	for rc, n := range reasonNames {
		switch {
		case rc < 0x80:
			m[n] = proto.OK
		case serverFailures[rc]:
			m[n] = proto.ServerError
		default:
			m[n] = proto.ClientError
		}
	}
	return m
}()

// outcome: reason codes below 0x80 are OK; of the failures, those that
// say the server could not (Unspecified error, Implementation specific
// error, Server unavailable, Server busy, Server shutting down,
// Administrative action, Use another server, Server moved) are server
// errors, the rest (Not authorized, Bad User Name or Password, Topic Name
// invalid, Packet too large, Quota exceeded…) client errors.
func outcome(c *proto.Call) proto.Outcome {
	if o, ok := outcomes[c.Status]; ok {
		return o
	}
	if hex, ok := bytes.CutPrefix([]byte(c.Status), []byte("Reason code 0x")); ok {
		if v, err := strconv.ParseUint(string(hex), 16, 8); err == nil && v < 0x80 {
			return proto.OK
		}
	}
	return proto.ClientError
}

// be16 reads a two-byte integer.
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
