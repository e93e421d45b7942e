// Package diameter dissects Diameter (RFC 6733) over TCP: the base
// protocol and the applications telecom cores run on it (Credit-Control,
// NASREQ, 3GPP S6a, Gx, Rx …). Nothing in it is TCP's own: a byte stream
// that carries whole messages one per Feed (SCTP DATA chunks) reads the
// same.
//
// Each request is a call, whichever peer sends it: either side of a
// Diameter connection may ask (a DWR from the side that was connected to
// is a call too, marked in extra direction "server"). Method is the
// command's abbreviation, from the request's command code (CER, DWR, DPR,
// CCR, AAR, ULR, AIR, RAR, STR, ASR …; "cmd-<code>" when unknown); extra
// application names its Application-Id ("Credit-Control", "3GPP S6a",
// "3GPP Gx"). Path is the Session-Id when the request carries one, else
// its Destination-Realm (empty for the peer messages CER, DWR, DPR, which
// carry neither). Status is the answer's Result-Code as RFC 6733 and RFC
// 4006 name it (DIAMETER_SUCCESS, DIAMETER_UNABLE_TO_DELIVER …), or the
// Experimental-Result-Code's name (3GPP's: DIAMETER_ERROR_USER_UNKNOWN …;
// its vendor in extra experimental_result_vendor); a code without a name
// is its number. Answers are matched to requests by Hop-by-Hop Identifier
// and sender; a request sent again with the T flag while the first waits is
// counted on it (extra retransmissions), not another call.
//
// Extra carries the Application-Id, the Hop-by-Hop Identifier, the
// request's Origin-Host, Origin-Realm, Destination-Host and
// Destination-Realm, the answering Origin-Host, the applications a CER or
// CEA advertises, Product-Name, CC-Request-Type and CC-Request-Number,
// User-Name, Error-Message, Failed-AVP (named, with its code),
// Disconnect-Cause and Termination-Cause, and error_bit on an answer with
// the E flag. Bodies list the AVPs as "Name: value" lines, Grouped AVPs'
// members indented, cut to Limits.MaxBodyDisplay; AVPs of applications
// not in the dictionary show as "AVP <vendor>:<code>" and their bytes.
// Passwords and key material (User-Password, CHAP-Challenge, S6a's RAND,
// XRES, AUTN, KASME) are shown by length only.
//
// Outcome: 1xxx (informational, DIAMETER_MULTI_ROUND_AUTH) and 2xxx are
// OK. 3xxx protocol errors are answered by a node that cannot deliver or
// serve the request (unable to deliver, too busy, loop, application or
// command unsupported, unknown peer): server errors, but for
// DIAMETER_REDIRECT_INDICATION (a redirect agent's ordinary answer, OK) and
// DIAMETER_INVALID_HDR_BITS and DIAMETER_INVALID_AVP_BITS (the request's
// own bits are wrong: client errors). 4xxx transient failures are server
// errors (out of space) except those about the user rather than the node:
// DIAMETER_AUTHENTICATION_REJECTED, END_USER_SERVICE_DENIED and
// CREDIT_LIMIT_REACHED are client errors, and ELECTION_LOST (a step of
// the CER election) and CREDIT_CONTROL_NOT_APPLICABLE (an instruction to
// go on without credit control) are OK. 5xxx permanent failures say the
// request was wrong or not allowed (unknown session, authorization
// rejected, missing or invalid AVPs, unknown user): client errors, except
// DIAMETER_UNABLE_TO_COMPLY (the server's catch-all failure) and
// DIAMETER_NO_COMMON_APPLICATION and DIAMETER_NO_COMMON_SECURITY (the
// answering node does not offer what its peer asks, as 3007 is a server
// error). DIAMETER_UNSUPPORTED_VERSION (5011) is the sender's: a client
// error.
//
// Memory is bounded whatever a message claims: a message over maxMessage
// bytes is malformed and the side waits for a segment that starts a
// message (version 1, a sane length, reserved flags clear); of a message
// its header and first Limits.MaxBodyCapture bytes of AVPs are kept and
// read, the rest is counted; Grouped AVPs are read maxDepth deep; requests
// waiting are bounded by Limits.MaxPending and expire (proto.Expiring).
// Bytes missing from the capture inside a message read as zeros, and the
// call says how many were missing.
//
// Not decoded: other applications' AVP dictionaries (shown raw), TLS and
// DTLS (a TLS connection is the TLS dissector's), and SCTP until the engine
// feeds its streams.
package diameter

import (
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxMessage is the biggest message read as Diameter: real ones stay
	// well under 64 KiB (a 3GPP subscription, the biggest, a few KiB); a
	// length near the 24-bit field's limit is not a message.
	maxMessage = 8 << 20
	// headerLen is a message header's length.
	headerLen = 20
)

// Header flags.
const (
	flagRequest   = 0x80
	flagProxiable = 0x40
	flagError     = 0x20
	flagRetrans   = 0x10
	flagsReserved = 0x0f
)

// Protocol is Diameter.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "diameter" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "Diameter requests (CER, DWR, CCR, AAR, S6a ULR/AIR …)", Path: proto.PathText,
		Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{3868} }

// okStatus, clientStatus and serverStatus are the codes classified
// against their class (see the package doc).
var (
	okCodes     = map[string]bool{"DIAMETER_REDIRECT_INDICATION": true, "ELECTION_LOST": true, "DIAMETER_CREDIT_CONTROL_NOT_APPLICABLE": true}
	clientCodes = map[string]bool{"DIAMETER_INVALID_HDR_BITS": true, "DIAMETER_INVALID_AVP_BITS": true,
		"DIAMETER_AUTHENTICATION_REJECTED": true, "DIAMETER_END_USER_SERVICE_DENIED": true,
		"DIAMETER_CREDIT_LIMIT_REACHED": true}
	serverCodes = map[string]bool{"DIAMETER_UNABLE_TO_COMPLY": true, "DIAMETER_NO_COMMON_APPLICATION": true,
		"DIAMETER_NO_COMMON_SECURITY": true}
)

func outcome(c *proto.Call) proto.Outcome {
	s := c.Status
	switch {
	case okCodes[s]:
		return proto.OK
	case clientCodes[s]:
		return proto.ClientError
	case serverCodes[s]:
		return proto.ServerError
	}
	code, ok := codeOfName[s]
	if !ok {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return proto.Incomplete
		}
		code = uint32(n)
	}
	switch {
	case code < 3000:
		return proto.OK
	case code < 5000:
		return proto.ServerError
	}
	return proto.ClientError
}

// headerVerdict says whether b starts a Diameter message: version 1, a
// length of at least a header, a multiple of 4, at most maxMessage, the
// reserved flags clear, no E flag on a request, a command code past
// RADIUS's range, and a first AVP whose header is plausible and fits.
func headerVerdict(b []byte) proto.Verdict {
	if len(b) == 0 {
		return proto.Maybe
	}
	if b[0] != 1 {
		return proto.No
	}
	if len(b) < 4 {
		return proto.Maybe
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if n < headerLen || n%4 != 0 || n > maxMessage {
		return proto.No
	}
	if len(b) < 8 {
		return proto.Maybe
	}
	flags := b[4]
	if flags&flagsReserved != 0 || flags&(flagRequest|flagError) == flagRequest|flagError {
		return proto.No
	}
	if code := int(b[5])<<16 | int(b[6])<<8 | int(b[7]); code < 256 {
		return proto.No
	}
	if n == headerLen {
		if len(b) < headerLen {
			return proto.Maybe
		}
		return proto.Yes
	}
	if len(b) < headerLen+8 {
		return proto.Maybe
	}
	a := b[headerLen:]
	alen := int(a[5])<<16 | int(a[6])<<8 | int(a[7])
	hdr := 8
	if a[4]&avpVendor != 0 {
		hdr = 12
	}
	if a[4]&0x1f != 0 || alen < hdr || alen > n-headerLen {
		return proto.No
	}
	return proto.Yes
}

// DetectStream implements proto.StreamProtocol. Either peer may send
// the first message; a request's sender is taken for the client.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	v := headerVerdict(data)
	if v != proto.Yes {
		return v, proto.RoleUnknown
	}
	if data[4]&flagRequest != 0 {
		return proto.Yes, proto.Client
	}
	return proto.Yes, proto.Server
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, keep: headerLen + l.MaxBodyCapture}
	c.pending.Max = l.MaxPending
	c.pending.Size = func(r *request) int { return r.size }
	return c
}

// be24 reads a 24-bit big-endian number.
func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
