// Package grpc dissects gRPC calls carried in HTTP/2 requests
// (content-type application/grpc, application/grpc+proto, …): a
// proto.Carried protocol the HTTP/2 parser asks about every request.
//
// A call is a record with Method POST, Path "/package.Service/Method" and
// Status the grpc-status code's name ("OK", "NOT_FOUND", "UNAVAILABLE" …)
// from the trailers, or from a Trailers-Only response's headers. When a
// response has no grpc-status, its HTTP status is mapped as gRPC clients
// map it (404 UNIMPLEMENTED, 503 UNAVAILABLE …) and Extra says so. Extra
// keeps grpc-message (percent-decoded), the HTTP status, the stream id,
// the timeout asked, the encoding, and the length-prefixed messages counted
// each way (whole ones; one the capture cut is counted apart): unary,
// client, server and bidirectional streaming alike. The
// first message each way is shown, decompressed (gzip, deflate) when its
// flag says so, in protobuf's wire format without a schema: field numbers,
// wire types and values (protowire), nested messages where bytes parse as
// one.
package grpc

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is gRPC.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "grpc" }

// Describe implements proto.Describer: any status but OK is a failure; the
// codes a client's request causes are client errors.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "gRPC calls over HTTP/2", Path: proto.PathText, Outcome: outcome}
}

func outcome(c *proto.Call) proto.Outcome {
	switch c.Status {
	case "OK":
		return proto.OK
	case "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
		"FAILED_PRECONDITION", "OUT_OF_RANGE", "UNAUTHENTICATED":
		return proto.ClientError
	}
	return proto.ServerError
}

// codes are gRPC's status codes by number.
var codes = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
	"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// CodeName returns the name of a grpc-status value ("5" → "NOT_FOUND");
// an unknown code keeps its number, and a value that is not a number is
// UNKNOWN, as a client reads it.
func CodeName(status string) string {
	n, err := strconv.Atoi(status)
	switch {
	case err != nil:
		return "UNKNOWN"
	case n >= 0 && n < len(codes):
		return codes[n]
	}
	return status
}

// fromHTTP maps the HTTP status of a response without grpc-status as gRPC
// clients do (gRPC's http-grpc-status-mapping).
func fromHTTP(status string) string {
	switch status {
	case "400":
		return "INTERNAL"
	case "401":
		return "UNAUTHENTICATED"
	case "403":
		return "PERMISSION_DENIED"
	case "404":
		return "UNIMPLEMENTED"
	case "429", "502", "503", "504":
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}

// isGRPC reports whether a content type is gRPC's (not gRPC-Web's).
func isGRPC(ct string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(ct), "application/grpc")
	return ok && (rest == "" || rest[0] == '+' || rest[0] == ';')
}

// Carry implements proto.Carried.
func (Protocol) Carry(carrier, method, _ string, h proto.Headers, lim *proto.Limits) proto.Carriage {
	if carrier != "http2" || method != "POST" || !isGRPC(h.Get("content-type")) {
		return nil
	}
	c := &carriage{timeout: h.Get("grpc-timeout"), display: !lim.Summary, max: lim.MaxBodyDisplay}
	c.side[0].encoding = h.Get("grpc-encoding")
	return c
}

// carriage follows one gRPC call.
type carriage struct {
	side       [2]messages // the client's, the server's
	display    bool        // keep the first messages to show
	max        int         // the display limit
	timeout    string
	httpStatus string
	status     string
	message    string
	hasStatus  bool
}

// messages reads one side's length-prefixed messages as they come.
type messages struct {
	encoding   string
	prefix     [5]byte
	prefixN    int
	left       uint32 // bytes of the current message still to come
	compressed bool
	started    int    // messages whose prefix came
	count      int    // messages that came whole
	first      []byte // the first message, as far as kept
	firstLen   uint32
	firstFlag  bool
	lost       bool // a gap inside a message: counting stopped
	atLeast    bool // a gap: more messages may have been sent
}

// keepFirst caps what is kept of the first message each way.
const keepFirst = 16 << 10

func (c *carriage) Headers(r proto.Role, h proto.Headers) {
	if r != proto.Server {
		return
	}
	for _, f := range h {
		switch f.Name {
		case ":status":
			c.httpStatus = f.Value
		case "grpc-status":
			c.status, c.hasStatus = f.Value, true
		case "grpc-message":
			c.message = f.Value
			if m, err := url.PathUnescape(f.Value); err == nil {
				c.message = m
			}
		case "grpc-encoding":
			c.side[1].encoding = f.Value
		}
	}
}

func (c *carriage) Body(r proto.Role, b []byte) {
	m := &c.side[0]
	if r == proto.Server {
		m = &c.side[1]
	}
	if m.lost {
		return
	}
	for len(b) > 0 {
		if m.left == 0 && m.prefixN < 5 {
			n := copy(m.prefix[m.prefixN:], b)
			m.prefixN += n
			b = b[n:]
			if m.prefixN < 5 {
				return
			}
			m.compressed = m.prefix[0]&1 != 0
			m.left = binary.BigEndian.Uint32(m.prefix[1:])
			m.prefixN = 0
			m.started++
			if m.left == 0 {
				m.count++
			}
			if m.started == 1 {
				m.firstLen, m.firstFlag = m.left, m.compressed
			}
			continue
		}
		n := min(uint32(len(b)), m.left)
		if m.started == 1 && c.display && len(m.first) < keepFirst {
			m.first = append(m.first, b[:min(int(n), keepFirst-len(m.first))]...)
		}
		m.left -= n
		if m.left == 0 {
			m.count++
		}
		b = b[n:]
	}
}

// Gap implements proto.Carriage. A gap while a message was being read
// stops the counting; one between messages may have held messages or
// none (the carrier cannot say which frames it lost): counting goes on,
// and the count is a lower bound.
func (c *carriage) Gap(r proto.Role) {
	m := &c.side[0]
	if r == proto.Server {
		m = &c.side[1]
	}
	if m.left > 0 || m.prefixN > 0 {
		m.lost = true
	}
	m.atLeast = true
}

// Buffered implements proto.CarriedBuffering.
func (c *carriage) Buffered() int { return cap(c.side[0].first) + cap(c.side[1].first) }

func (c *carriage) Finish(call *proto.Call) []*proto.Call {
	call.Proto = "grpc"
	if c.httpStatus == "" {
		c.httpStatus = call.Status
	}
	switch {
	case c.hasStatus:
		call.Status = CodeName(c.status)
	case c.httpStatus != "" && c.httpStatus != "200":
		call.Status = fromHTTP(c.httpStatus)
		call.Extra = append(call.Extra, proto.Field{Key: "status_from", Value: "HTTP " + c.httpStatus + " without grpc-status"})
	case call.Status != "" && call.Error == "":
		// The response ended without a status: a client reads UNKNOWN.
		call.Status = "UNKNOWN"
		call.Extra = append(call.Extra, proto.Field{Key: "status_from", Value: "the response ended without grpc-status"})
	default:
		call.Status = "" // not seen: the call was cut first
	}
	if c.message != "" {
		call.Extra = append(call.Extra, proto.Field{Key: "grpc_message", Value: c.message})
	}
	if n, err := strconv.Atoi(c.httpStatus); err == nil {
		call.Extra = append(call.Extra, proto.Field{Key: "http_status", Value: int64(n)})
	}
	if c.timeout != "" {
		call.Extra = append(call.Extra, proto.Field{Key: "grpc_timeout", Value: c.timeout})
	}
	for i, key := range [2]string{"request_messages", "response_messages"} {
		m := &c.side[i]
		call.Extra = append(call.Extra, proto.Field{Key: key, Value: int64(m.count)})
		if m.started > m.count && !m.lost {
			call.Extra = append(call.Extra, proto.Field{Key: key + "_unfinished", Value: int64(m.started - m.count)})
		}
		if m.atLeast {
			call.Extra = append(call.Extra, proto.Field{Key: key + "_at_least", Value: true})
		}
		if m.encoding != "" && m.encoding != "identity" {
			call.Extra = append(call.Extra, proto.Field{Key: []string{"request_encoding", "response_encoding"}[i], Value: m.encoding})
		}
	}
	if c.display {
		c.show(&call.Request, &c.side[0])
		c.show(&call.Response, &c.side[1])
	}
	return []*proto.Call{call}
}

// show puts the first message of a side in the call's message for
// display, in protobuf's wire format, cut to the display limit. Headers
// and sizes stay the carrier's.
func (c *carriage) show(out *proto.Message, m *messages) {
	if m.started == 0 {
		return
	}
	b := m.first
	partial := uint32(len(b)) < m.firstLen
	if m.firstFlag {
		d, err := decompress(b, m.encoding)
		if err != nil {
			out.Body = "message 1 of " + strconv.Itoa(m.started) + ": " + strconv.FormatUint(uint64(m.firstLen), 10) +
				" bytes compressed (" + m.encoding + "), not decoded: " + err.Error()
			out.BodyEncoding = ""
			return
		}
		b = d
	}
	var sb strings.Builder
	sb.WriteString("message 1 of " + strconv.Itoa(m.started))
	if m.atLeast {
		sb.WriteString(" or more")
	}
	sb.WriteString(" (" + strconv.FormatUint(uint64(m.firstLen), 10) + " bytes")
	if m.firstFlag {
		sb.WriteString(", " + m.encoding + ", " + strconv.Itoa(len(b)) + " decompressed")
	}
	sb.WriteString("), protobuf wire format:\n")
	Wire(&sb, b, 0)
	if partial {
		sb.WriteString("… (the rest of the message was not kept)\n")
	}
	out.SetBody([]byte(sb.String()), c.max)
	out.BodyTruncated = out.BodyTruncated || partial
}

// maxInflate caps a decompressed message shown.
const maxInflate = 64 << 10

func decompress(b []byte, encoding string) ([]byte, error) {
	var r io.Reader
	switch encoding {
	case "gzip":
		z, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		r = z
	case "deflate":
		r = flate.NewReader(bytes.NewReader(b))
	default:
		return nil, errUnknownEncoding(encoding)
	}
	out, err := io.ReadAll(io.LimitReader(r, maxInflate))
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

type errUnknownEncoding string

func (e errUnknownEncoding) Error() string { return "unknown encoding " + strconv.Quote(string(e)) }

// maxDepth bounds how deep Wire reads nested messages.
const maxDepth = 8

// Wire writes b as protobuf's wire format without a schema, one field a
// line: its number, its wire type and its value. Length-delimited values
// are shown as a nested message when they parse as one whole, else as text
// when they are printable, else as hex; bytes that do not parse end the
// listing with a note.
func Wire(sb *strings.Builder, b []byte, depth int) {
	indent := strings.Repeat("  ", depth)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			sb.WriteString(indent + "(" + strconv.Itoa(len(b)) + " bytes that are not protobuf)\n")
			return
		}
		b = b[n:]
		sb.WriteString(indent + strconv.Itoa(int(num)) + ": ")
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				sb.WriteString("(bad varint)\n")
				return
			}
			sb.WriteString(strconv.FormatUint(v, 10) + "\n")
			b = b[n:]
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 {
				sb.WriteString("(bad fixed32)\n")
				return
			}
			sb.WriteString("fixed32 " + strconv.FormatUint(uint64(v), 10) + "\n")
			b = b[n:]
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				sb.WriteString("(bad fixed64)\n")
				return
			}
			sb.WriteString("fixed64 " + strconv.FormatUint(v, 10) + "\n")
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				sb.WriteString("(length beyond the message)\n")
				return
			}
			b = b[n:]
			switch {
			case len(v) > 0 && depth < maxDepth && isMessage(v):
				sb.WriteString("{\n")
				Wire(sb, v, depth+1)
				sb.WriteString(indent + "}\n")
			case printable(v):
				sb.WriteString(strconv.Quote(string(v)) + "\n")
			default:
				sb.WriteString("bytes " + hex.EncodeToString(v[:min(len(v), 64)]))
				if len(v) > 64 {
					sb.WriteString("… (" + strconv.Itoa(len(v)) + " bytes)")
				}
				sb.WriteString("\n")
			}
		default: // groups (deprecated) and reserved types
			sb.WriteString("(wire type " + strconv.Itoa(int(typ)) + ", not read further)\n")
			return
		}
	}
}

// isMessage reports whether b parses whole as protobuf fields.
func isMessage(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > 1<<20 {
			return false
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 || typ == protowire.StartGroupType || typ == protowire.EndGroupType {
			return false
		}
		b = b[n:]
	}
	return true
}

// printable reports whether b is UTF-8 text without control bytes but
// tab and newlines.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}
