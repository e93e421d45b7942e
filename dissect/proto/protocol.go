package proto

import "time"

// Role says which side of a flow sent some bytes.
type Role uint8

// Roles.
const (
	RoleUnknown Role = iota
	Client
	Server
)

// Peer returns the other side's role.
func (r Role) Peer() Role {
	switch r {
	case Client:
		return Server
	case Server:
		return Client
	}
	return RoleUnknown
}

func (r Role) String() string {
	switch r {
	case Client:
		return "client"
	case Server:
		return "server"
	}
	return "unknown"
}

// Verdict is a detector's answer about some bytes.
type Verdict uint8

// Verdicts.
const (
	// No means the bytes do not start a message of the protocol.
	No Verdict = iota
	// Maybe means more bytes are needed to decide.
	Maybe
	// Yes means the bytes start a message of the protocol.
	Yes
)

// EndReason says how a TCP connection ended.
type EndReason uint8

// End reasons.
const (
	// EndFIN: both sides closed, or one closed and the other went quiet.
	EndFIN EndReason = iota
	// EndRST: a side reset the connection.
	EndRST
	// EndIdle: no packet for longer than the idle timeout.
	EndIdle
	// EndCapture: the capture ended while the connection was open.
	EndCapture
	// EndMemory: the engine ended the connection or flow early because its
	// parsers together buffered more than their bound (see Buffering).
	EndMemory
)

func (r EndReason) String() string {
	switch r {
	case EndFIN:
		return "fin"
	case EndRST:
		return "reset"
	case EndIdle:
		return "idle"
	case EndMemory:
		return "ended early for memory bounds"
	}
	return "capture-end"
}

// Why says, for the calls a connection's end leaves unanswered, how it
// ended: "connection reset", "capture ended", "connection idle",
// "connection ended early for memory bounds"; "" for a close (FIN).
func (r EndReason) Why() string {
	switch r {
	case EndRST:
		return "connection reset"
	case EndCapture:
		return "capture ended"
	case EndIdle:
		return "connection idle"
	case EndMemory:
		return "connection ended early for memory bounds"
	}
	return ""
}

// Latency is a call's latency: from its request's last byte to its
// response's first, 0 when the response came first (a pipelined answer, a
// capture's clock).
func Latency(requestEnd, responseStart time.Time) int64 {
	if d := responseStart.Sub(requestEnd); d > 0 {
		return int64(d)
	}
	return 0
}

// Protocol is a dissector. Name is the value of Call.Proto for its calls.
type Protocol interface {
	Name() string
}

// StreamProtocol dissects a protocol carried over TCP.
type StreamProtocol interface {
	Protocol
	// DetectStream inspects the first bytes one side of a TCP connection
	// sent, from srcPort to dstPort. With Yes it also says which role that
	// side plays. Ports are hints only: a protocol must not answer Yes from
	// ports alone.
	DetectStream(data []byte, srcPort, dstPort uint16) (Verdict, Role)
	// NewStream returns a parser for one connection.
	NewStream(out Emitter, lim *Limits) StreamParser
}

// StreamParser parses one TCP connection. The engine calls it from one
// goroutine.
type StreamParser interface {
	// Feed delivers the next in-order bytes the side playing role r sent;
	// t is when they were captured. data is valid only during the call.
	Feed(r Role, data []byte, t time.Time)
	// Gap reports that n bytes the side playing role r sent were not
	// captured or were dropped to bound memory (n < 0: an unknown amount).
	Gap(r Role, n int)
	// End ends the connection: the parser emits what it still holds.
	End(reason EndReason, t time.Time)
}

// SwitchTLS is the protocol a parser switches to (Emitter.Upgrade) when its
// connection turns to TLS: SMTP, IMAP or LDAP STARTTLS, a PostgreSQL
// SSLRequest answered 'S', a MySQL SSL request. The flow is marked
// encrypted from there; a TLS dissector, when there is one, reads on.
const SwitchTLS = "tls"

// Expiring is a StreamParser that gives up on requests unanswered for
// long: on a connection that stays open (a pooled client, a long-lived
// session) they would otherwise surface only when it ends. The engine calls
// Expire about once a second of capture time; the parser emits the
// requests waiting since before deadline as unanswered ("no response").
// Protocols whose responses come strictly in order must not skip one
// still to come: they implement it only where matching is by id.
type Expiring interface {
	Expire(deadline time.Time)
}

// Chunk is bytes one side of a connection sent, and when they were
// captured.
type Chunk struct {
	Role Role
	Data []byte
	T    time.Time
}

// HandingOver is a StreamParser that switches protocols (Emitter.Upgrade)
// with bytes of the new protocol in hand: the rest of the segment that
// carried the switch, what the client sent while the switch was pending.
// HandOver returns them, in capture order, once, after the Feed that asked
// for the switch; the parser is not fed again.
type HandingOver interface {
	HandOver() Handover
}

// Handover is what a parser passes on at a protocol switch: the new
// protocol's bytes it holds, and what the new protocol needs to know of
// the switch (for an HTTP upgrade: "target" and "method", the request's, its
// "request_start" and "request_end" times (time.Time), and the
// handshake's headers "extensions" and "subprotocol").
type Handover struct {
	Chunks  []Chunk
	Context Extra
}

// UpgradeProtocol is a StreamProtocol reached by a switch that wants the
// switch's context (Handover.Context) for its parser.
type UpgradeProtocol interface {
	NewUpgraded(out Emitter, lim *Limits, context Extra) StreamParser
}

// Buffering is implemented by stream and datagram parsers that keep bytes
// between calls to Feed or Datagram: partial messages, bodies kept for
// display, requests waiting for their response. The engine bounds what they
// keep in total: past its bound it ends the connections and flows whose
// parsers keep the most early, with EndMemory. A parser ended so should
// count the payload bytes it drops through Emitter.Skipped and say why on
// the calls it cuts.
type Buffering interface {
	// Buffered returns about how many bytes of memory the parser keeps.
	Buffered() int
}

// DatagramProtocol dissects a protocol carried over UDP.
type DatagramProtocol interface {
	Protocol
	// DetectDatagram inspects one datagram sent from srcPort to dstPort.
	DetectDatagram(payload []byte, srcPort, dstPort uint16) (Verdict, Role)
	// NewFlow returns a parser for the datagrams between two endpoints.
	NewFlow(out Emitter, lim *Limits) DatagramParser
}

// DatagramParser parses the datagrams of one UDP flow.
type DatagramParser interface {
	// Datagram delivers one datagram sent by the side playing role r.
	// payload is valid only during the call.
	Datagram(r Role, payload []byte, t time.Time)
	// Expire emits requests that have waited for an answer since before t.
	Expire(t time.Time)
	// End ends the flow: the parser emits what it still holds, saying so
	// when reason is EndMemory.
	End(reason EndReason, t time.Time)
}

// Emitter receives what parsers produce.
type Emitter interface {
	// Emit hands over a finished call. The engine fills Src and Dst (the
	// connection's client and server), ID and identities.
	// The parser must not touch c afterwards.
	Emit(c *Call)
	// Upgrade tells the engine that the rest of the connection speaks
	// another protocol: an HTTP Upgrade token ("websocket", "h2c") or
	// "tunnel" (CONNECT). The engine switches once Feed returns. Every byte
	// after the switch goes on: those the parser received already it hands
	// over (HandingOver), those that follow come after them. They go to
	// the protocol named so or listing the name in its Description's
	// Upgrades; when none does (a tunnel, an unknown token), the
	// connection's protocol is detected again from them.
	Upgrade(protocol string)
	// Skipped counts bytes a parser dropped to stay within its limits.
	Skipped(n int)
}

// Limits bound what a parser keeps in memory. Zero fields take the defaults
// of DefaultLimits.
type Limits struct {
	// MaxHeaderBytes caps a message's header block (HTTP headers, a DNS
	// message over TCP). Bigger headers are skipped and the call marked.
	MaxHeaderBytes int
	// MaxBodyCapture caps how many body bytes of a message are kept for
	// display and decoding; the rest is only counted.
	MaxBodyCapture int
	// MaxBodyDisplay caps a body shown in a Call after decoding.
	MaxBodyDisplay int
	// MaxPending caps how many requests may wait for a response on one
	// connection; older ones are emitted as unanswered.
	MaxPending int
	// RequestTimeout is how long a datagram request waits for its answer.
	RequestTimeout time.Duration
	// StreamRequestTimeout is how long a request on a connection waits
	// for its answer, for parsers that expire them (Expiring): longer than
	// RequestTimeout, as long polls and slow queries are answered late.
	StreamRequestTimeout time.Duration
	// Summary keeps only what summaries need, for runs that count and
	// aggregate: calls carry no headers and no bodies (their sizes are still
	// counted), which spares a parser most of its work per message.
	Summary bool
}

// DefaultLimits are the limits used for zero fields.
var DefaultLimits = Limits{
	MaxHeaderBytes:       64 << 10,
	MaxBodyCapture:       64 << 10,
	MaxBodyDisplay:       4 << 10,
	MaxPending:           1024,
	RequestTimeout:       10 * time.Second,
	StreamRequestTimeout: 2 * time.Minute,
}

// WithDefaults returns l with zero fields replaced by defaults.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits
	if l.MaxHeaderBytes > 0 {
		d.MaxHeaderBytes = l.MaxHeaderBytes
	}
	if l.MaxBodyCapture > 0 {
		d.MaxBodyCapture = l.MaxBodyCapture
	}
	if l.MaxBodyDisplay > 0 {
		d.MaxBodyDisplay = l.MaxBodyDisplay
	}
	if l.MaxPending > 0 {
		d.MaxPending = l.MaxPending
	}
	if l.RequestTimeout > 0 {
		d.RequestTimeout = l.RequestTimeout
	}
	if l.StreamRequestTimeout > 0 {
		d.StreamRequestTimeout = l.StreamRequestTimeout
	}
	d.Summary = l.Summary
	if d.MaxBodyCapture < d.MaxBodyDisplay {
		d.MaxBodyCapture = d.MaxBodyDisplay
	}
	return d
}

// Correlator is a Protocol whose calls tell about its calls on other
// connections: a Kafka Metadata response names the topic IDs that Produce
// and Fetch requests on the client's other connections carry. A dissection
// makes one correlation of it and passes it every call of the protocol, in
// the dissection's output order (so the same input gives the same output,
// whatever the sharding), before handing the call on; it may rewrite the
// call.
type Correlator interface {
	NewCorrelation() func(c *Call)
}

// PortHinter is implemented by protocols that usually run on known ports.
// The engine asks such a protocol first about flows on those ports; the
// payload still has to match.
type PortHinter interface {
	Ports() []uint16
}

// Tunneler is implemented by the Emitter a stream parser receives. A
// parser that unwraps a byte stream carried inside its connection (TLS's
// plaintext, once decrypted) opens it with Tunnel and feeds it what it
// unwraps, each side in order, then ends it. The stream's protocol is the
// one whose Description lists alpn in its ALPN, else the one its bytes are
// detected as, like a new connection's; its calls are the connection's.
type Tunneler interface {
	Tunnel(alpn string) StreamParser
}

// FlowNoter is implemented by the Emitter a stream parser receives: what a
// parser learns of the connection rather than of one call.
type FlowNoter interface {
	// Encrypted marks the connection encrypted and says whether its
	// payload was read: "decrypted", or why not ("no key for this
	// session", "no handshake seen", "not decryptable: …").
	Encrypted(state string)
	// SessionEnd says how the encrypted session ended ("close_notify from
	// client", "fatal bad_record_mac from server").
	SessionEnd(how string)
}
