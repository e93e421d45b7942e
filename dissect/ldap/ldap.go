// Package ldap dissects LDAPv3 (RFC 4511) over TCP.
//
// Each operation is a call: Method is its name (bind, search, modify, add,
// delete, modifyDN, compare, extended, unbind, abandon); Path is the DN it
// is about (the bind DN, a search's base, the entry), or for an extended
// operation its name (startTLS, whoami, passwordModify, cancel) or OID;
// Status is the result code's name as RFC 4511 spells it (success,
// invalidCredentials, noSuchObject …). Responses are matched to requests by
// message ID. A search's entries and references are counted (extra
// entries, references) and its scope, filter (RFC 4515 text), attributes
// and limits kept; the first entries' DNs are the response body. unbind and
// abandon expect no answer: one-way records, as is a notice the server
// sends unprompted (message ID 0, Notice of Disconnection).
//
// Secrets are never kept: a simple bind's password, SASL credentials, a
// password modify's old and new passwords, and the values of attributes
// named like passwords (userPassword, unicodePwd …) in add, modify and
// compare. A StartTLS answered success hands the connection to the TLS
// dissector (proto.SwitchTLS); after a SASL bind that negotiated a
// security layer (GSSAPI, GSS-SPNEGO, DIGEST-MD5) the bytes that follow are
// wrapped, and the flow is marked not decryptable.
//
// Messages are BER, read with go-asn1-ber after framing them here: a
// message's length must be definite and at most maxMessage; its first
// decodeCap bytes are kept and decoded whole when it fits, and a bigger one
// (a search entry with large values) is read from its head (message ID,
// operation, DN) and counted. Nesting is bounded (asn1-ber's limit, and
// filters are rendered 32 deep at most). After a capture gap or a malformed
// message, a side waits for a segment that starts a message.
package ldap

import (
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxMessage is the biggest message read as LDAP.
	maxMessage = 256 << 20
	// decodeCap is how much of a message is kept and decoded.
	decodeCap = 1 << 20
)

// Protocol is LDAP.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "ldap" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "LDAP operations (bind, search, modify, add, delete …)", Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{389, 3268, 1389} }

// resultNames are RFC 4511's result codes, and those of the extensions
// servers send (RFC 3909 cancel, RFC 4528 assertion, RFC 4370 proxy).
var resultNames = map[int64]string{
	0: "success", 1: "operationsError", 2: "protocolError", 3: "timeLimitExceeded", 4: "sizeLimitExceeded",
	5: "compareFalse", 6: "compareTrue", 7: "authMethodNotSupported", 8: "strongerAuthRequired", 10: "referral",
	11: "adminLimitExceeded", 12: "unavailableCriticalExtension", 13: "confidentialityRequired", 14: "saslBindInProgress",
	16: "noSuchAttribute", 17: "undefinedAttributeType", 18: "inappropriateMatching", 19: "constraintViolation",
	20: "attributeOrValueExists", 21: "invalidAttributeSyntax", 32: "noSuchObject", 33: "aliasProblem",
	34: "invalidDNSyntax", 36: "aliasDereferencingProblem", 48: "inappropriateAuthentication", 49: "invalidCredentials",
	50: "insufficientAccessRights", 51: "busy", 52: "unavailable", 53: "unwillingToPerform", 54: "loopDetect",
	64: "namingViolation", 65: "objectClassViolation", 66: "notAllowedOnNonLeaf", 67: "notAllowedOnRDN",
	68: "entryAlreadyExists", 69: "objectClassModsProhibited", 71: "affectsMultipleDSAs", 80: "other",
	118: "canceled", 119: "noSuchOperation", 120: "tooLate", 121: "cannotCancel", 122: "assertionFailed",
	123: "authorizationDenied",
}

func resultName(code int64) string {
	if n, ok := resultNames[code]; ok {
		return n
	}
	return "result" + strconv.FormatInt(code, 10)
}

// okResults are results that are not failures: a comparison's answer, a
// referral elsewhere, a SASL bind's next step.
var okResults = map[string]bool{"success": true, "compareFalse": true, "compareTrue": true, "referral": true, "saslBindInProgress": true}

// serverResults are the server's failures; the rest are the request's.
var serverResults = map[string]bool{"operationsError": true, "busy": true, "unavailable": true, "unwillingToPerform": true,
	"loopDetect": true, "other": true, "adminLimitExceeded": true, "timeLimitExceeded": true}

func outcome(c *proto.Call) proto.Outcome {
	switch {
	case okResults[c.Status]:
		return proto.OK
	case serverResults[c.Status]:
		return proto.ServerError
	}
	return proto.ClientError
}

// Application tags of the protocol operations.
const (
	opBindRequest     = 0
	opBindResponse    = 1
	opUnbindRequest   = 2
	opSearchRequest   = 3
	opSearchEntry     = 4
	opSearchDone      = 5
	opModifyRequest   = 6
	opModifyResponse  = 7
	opAddRequest      = 8
	opAddResponse     = 9
	opDelRequest      = 10
	opDelResponse     = 11
	opModDNRequest    = 12
	opModDNResponse   = 13
	opCompareRequest  = 14
	opCompareResponse = 15
	opAbandonRequest  = 16
	opSearchReference = 19
	opExtendedRequest = 23
	opExtendedResp    = 24
	opIntermediate    = 25
)

// requestNames names the requests by tag.
var requestNames = map[int]string{
	opBindRequest: "bind", opUnbindRequest: "unbind", opSearchRequest: "search", opModifyRequest: "modify",
	opAddRequest: "add", opDelRequest: "delete", opModDNRequest: "modifyDN", opCompareRequest: "compare",
	opAbandonRequest: "abandon", opExtendedRequest: "extended",
}

// isResponse says whether an operation tag is the server's.
func isResponse(op int) bool {
	switch op {
	case opBindResponse, opSearchEntry, opSearchDone, opModifyResponse, opAddResponse, opDelResponse,
		opModDNResponse, opCompareResponse, opSearchReference, opExtendedResp, opIntermediate:
		return true
	}
	return false
}

// extendedNames names the extended operations by OID.
var extendedNames = map[string]string{
	"1.3.6.1.4.1.1466.20037":   "startTLS",
	"1.3.6.1.4.1.4203.1.11.3":  "whoami",
	"1.3.6.1.4.1.4203.1.11.1":  "passwordModify",
	"1.3.6.1.1.8":              "cancel",
	"1.3.6.1.4.1.1466.20036":   "noticeOfDisconnection",
	"1.3.6.1.1.21.1":           "startTransaction",
	"1.3.6.1.1.21.3":           "endTransaction",
	"1.3.6.1.4.1.4203.1.9.1.4": "syncInfo",
}

// DetectStream implements proto.StreamProtocol: an LDAPMessage is a
// SEQUENCE of a message ID (an INTEGER of 1 to 4 bytes) and an operation
// (an APPLICATION tag); the tag says whose side it is.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	if data[0] != 0x30 {
		return proto.No, proto.RoleUnknown
	}
	h, ok, need := header(data)
	if need {
		return proto.Maybe, proto.RoleUnknown
	}
	if !ok || h.length > maxMessage || h.length < 5 {
		return proto.No, proto.RoleUnknown
	}
	rest := data[h.size:]
	if len(rest) < 2 {
		return proto.Maybe, proto.RoleUnknown
	}
	if rest[0] != 0x02 || rest[1] < 1 || rest[1] > 4 {
		return proto.No, proto.RoleUnknown
	}
	n := int(rest[1])
	if len(rest) < 2+n+1 {
		return proto.Maybe, proto.RoleUnknown
	}
	if rest[2]&0x80 != 0 {
		return proto.No, proto.RoleUnknown // a negative message ID
	}
	tag := rest[2+n]
	if tag&0xc0 != 0x40 { // APPLICATION class
		return proto.No, proto.RoleUnknown
	}
	op := int(tag & 0x1f)
	constructed := tag&0x20 != 0
	// unbind, delete and abandon are primitive; the rest constructed.
	switch {
	case op == opUnbindRequest || op == opDelRequest || op == opAbandonRequest:
		if constructed {
			return proto.No, proto.RoleUnknown
		}
	case !constructed:
		return proto.No, proto.RoleUnknown
	}
	if _, ok := requestNames[op]; ok {
		return proto.Yes, proto.Client
	}
	if isResponse(op) {
		return proto.Yes, proto.Server
	}
	return proto.No, proto.RoleUnknown
}

// tlvHeader is a BER identifier and definite length.
type tlvHeader struct {
	tag    byte
	size   int   // bytes of identifier and length
	length int64 // content bytes
}

// header reads the identifier (one byte: LDAP uses no high tag numbers)
// and definite length at the start of b. need: b ends before the header
// does; !ok: it is not a header LDAP allows (an indefinite length, a
// length of more than 4 bytes).
func header(b []byte) (h tlvHeader, ok, need bool) {
	if len(b) < 2 {
		return h, false, true
	}
	h.tag = b[0]
	if h.tag&0x1f == 0x1f {
		return h, false, false
	}
	l := b[1]
	if l < 0x80 {
		h.size, h.length = 2, int64(l)
		return h, true, false
	}
	n := int(l & 0x7f)
	if n == 0 || n > 4 {
		return h, false, false
	}
	if len(b) < 2+n {
		return h, false, true
	}
	for _, c := range b[2 : 2+n] {
		h.length = h.length<<8 | int64(c)
	}
	h.size = 2 + n
	return h, true, false
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l}
	c.pending.Max = l.MaxPending
	c.pending.Size = func(r *request) int { return r.size }
	return c
}
