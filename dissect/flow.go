package dissect

import (
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Flow is an L4 flow: a TCP connection, or the datagrams between two UDP
// endpoints (or two hosts, for other IP protocols). Index 0 of the per-side
// counters is the client (Src), 1 the server (Dst).
type Flow struct {
	ID string
	// Transport is "tcp", "udp", "icmp", "icmpv6", or "ip-<n>".
	Transport string
	// Proto is the L7 protocol detected ("http", "dns", …) or "" when no
	// dissector understood the flow.
	Proto string
	// Upgraded names the protocol the flow switched to (HTTP Upgrade,
	// CONNECT), if any.
	Upgraded string
	// Encrypted is set when the flow turned to TLS after its protocol's
	// STARTTLS (proto.SwitchTLS): what follows is encrypted.
	Encrypted bool
	// Decryption says, for an encrypted flow whose protocol says so (TLS),
	// whether its payload was read: "decrypted" (with a key log),
	// "decrypted: OpenSSL 3.0 uprobe" (from TLS plaintext records, naming
	// the library: DecryptedUprobe), or why not ("no key for this session",
	// "no handshake seen", "not decryptable: …").
	Decryption string
	// Inner is the protocol read inside a decrypted session.
	Inner string
	// SessionEnd says how an encrypted session ended ("close_notify from
	// client", "fatal bad_record_mac from server").
	SessionEnd string
	// Src is the client: the side that sent the SYN, else the side the
	// protocol says is the client, else the side with the higher port.
	Src, Dst     proto.Endpoint
	First, Last  time.Time
	Packets      [2]uint64
	Bytes        [2]uint64 // IP bytes as sent
	PayloadBytes [2]uint64 // transport payload bytes captured
	Calls        uint64
	// TCP only.
	SYN, SYNACK, FIN bool
	RST              [2]bool
	Retransmissions  uint64
	// MissingBytes counts payload bytes the capture lacks (gaps);
	// SkippedBytes those dropped to stay within memory bounds.
	MissingBytes, SkippedBytes uint64
	// MidStream is set when the connection's handshake was not captured.
	MidStream bool
	// State summarises how the flow ended: "closed" (FIN), "reset",
	// "refused" (SYN answered by RST, or by an ICMP destination
	// unreachable), "unanswered" (SYN with no reply), "open" (still going
	// when the capture or idle timeout ended it). A UDP flow is "refused"
	// when its packets drew an ICMP destination unreachable, else "".
	State string
	// Streams counts the SCTP streams that carried data.
	Streams int
	// ICMP is the last ICMP error the flow's packets drew: its code's name
	// and who sent it ("port unreachable from 10.0.0.1", "ttl exceeded
	// from 192.0.2.1", "packet too big from …").
	ICMP string
	// icmpRefused: ICMP said the destination refused (unreachable).
	icmpRefused bool
}

// sides is what TCP connections and datagram flows share: the engine, the
// two endpoints (side 0 sent the first packet), the role each side plays
// once a protocol is known, the flow record (its per-side counters indexed
// by side until the flow is reported), and the count of calls emitted.
type sides struct {
	e    *Engine
	ep   [2]proto.Endpoint
	role [2]proto.Role
	f    Flow
	seq  uint64
}

// client returns the side playing the client role, 0 if none does.
func (s *sides) client() int {
	if s.role[1] == proto.Client {
		return 1
	}
	return 0
}

// Emit implements proto.Emitter.
func (s *sides) Emit(c *Call) {
	ci := s.client()
	s.seq++
	s.e.emit(c, &s.f, s.ep[ci], s.ep[1-ci], s.seq)
}

// Skipped implements proto.Emitter.
func (s *sides) Skipped(n int) { s.f.SkippedBytes += uint64(n) }

// report orients the flow, the given side as the client (Src), and passes
// it on.
func (s *sides) report(client int) {
	f := &s.f
	if client == 1 {
		f.Packets[0], f.Packets[1] = f.Packets[1], f.Packets[0]
		f.Bytes[0], f.Bytes[1] = f.Bytes[1], f.Bytes[0]
		f.PayloadBytes[0], f.PayloadBytes[1] = f.PayloadBytes[1], f.PayloadBytes[0]
		f.RST[0], f.RST[1] = f.RST[1], f.RST[0]
	}
	f.Src, f.Dst = s.ep[client], s.ep[1-client]
	s.e.endFlow(f)
}

// Duration is the time between the flow's first and last packets.
func (f *Flow) Duration() time.Duration { return f.Last.Sub(f.First) }

// AppendJSON appends the flow as one line of JSON, with "kind":"flow" so that
// it can share a stream with calls.
func (f *Flow) AppendJSON(b []byte) []byte {
	b = append(b, `{"kind":"flow","id":`...)
	b = proto.AppendString(b, f.ID)
	b = append(b, `,"transport":`...)
	b = proto.AppendString(b, f.Transport)
	b = append(b, `,"proto":`...)
	b = proto.AppendString(b, f.Proto)
	if f.Upgraded != "" {
		b = append(b, `,"upgraded":`...)
		b = proto.AppendString(b, f.Upgraded)
	}
	if f.Encrypted {
		b = append(b, `,"encrypted":true`...)
	}
	if f.Decryption != "" {
		b = append(b, `,"decryption":`...)
		b = proto.AppendString(b, f.Decryption)
	}
	if f.Inner != "" {
		b = append(b, `,"inner":`...)
		b = proto.AppendString(b, f.Inner)
	}
	if f.SessionEnd != "" {
		b = append(b, `,"session_end":`...)
		b = proto.AppendString(b, f.SessionEnd)
	}
	b = append(b, `,"ts":`...)
	b = proto.AppendTime(b, f.First)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(f.Duration()), 10)
	b = append(b, `,"src":`...)
	b = f.Src.AppendJSON(b)
	b = append(b, `,"dst":`...)
	b = f.Dst.AppendJSON(b)
	b = append(b, `,"packets":[`...)
	b = strconv.AppendUint(b, f.Packets[0], 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, f.Packets[1], 10)
	b = append(b, `],"bytes":[`...)
	b = strconv.AppendUint(b, f.Bytes[0], 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, f.Bytes[1], 10)
	b = append(b, `],"payload_bytes":[`...)
	b = strconv.AppendUint(b, f.PayloadBytes[0], 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, f.PayloadBytes[1], 10)
	b = append(b, `],"calls":`...)
	b = strconv.AppendUint(b, f.Calls, 10)
	if f.ICMP != "" {
		b = append(b, `,"icmp":`...)
		b = proto.AppendString(b, f.ICMP)
	}
	if f.Streams > 0 {
		b = append(b, `,"streams":`...)
		b = strconv.AppendInt(b, int64(f.Streams), 10)
	}
	if f.Transport != "tcp" && f.State != "" {
		b = append(b, `,"state":`...)
		b = proto.AppendString(b, f.State)
	}
	if f.Transport == "tcp" {
		b = append(b, `,"state":`...)
		b = proto.AppendString(b, f.State)
		b = append(b, `,"syn":`...)
		b = strconv.AppendBool(b, f.SYN)
		b = append(b, `,"mid_stream":`...)
		b = strconv.AppendBool(b, f.MidStream)
		b = append(b, `,"rst":[`...)
		b = strconv.AppendBool(b, f.RST[0])
		b = append(b, ',')
		b = strconv.AppendBool(b, f.RST[1])
		b = append(b, `],"retransmissions":`...)
		b = strconv.AppendUint(b, f.Retransmissions, 10)
		b = append(b, `,"missing_bytes":`...)
		b = strconv.AppendUint(b, f.MissingBytes, 10)
		b = append(b, `,"skipped_bytes":`...)
		b = strconv.AppendUint(b, f.SkippedBytes, 10)
	}
	return append(b, '}')
}
