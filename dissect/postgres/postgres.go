// Package postgres dissects the PostgreSQL frontend/backend protocol,
// version 3.
//
// Calls: STARTUP (the startup message to ReadyForQuery, or the error that
// refused it: path the database, extra user, database, application_name,
// the authentication method and the server's version), QUERY (a simple
// query message and all it produced up to ReadyForQuery: one call however
// many statements the string holds; a COPY is part of its query, its data
// counted), EXECUTE (one per Execute message of the extended protocol,
// carrying the SQL of the statement its portal was bound to: named and
// unnamed statements and portals are followed across the connection), and
// PARSE or BIND when one fails before any Execute. Path is the SQL with
// its literals replaced by ? (for grouping); the full text is the request
// body. Status is OK, or the SQLSTATE of the error ("42P01"), whose
// message, severity and detail go in extra. Extra also carries the
// command tags ("SELECT 3"), rows returned or affected, and notices; the
// response body shows the rows (tab-separated text, cut to the display
// limit). A NotificationResponse (LISTEN/NOTIFY) is a one-way call:
// Method NOTIFICATION, Path the channel, the payload as response body.
// A CancelRequest is a one-way CANCEL call.
//
// Passwords (PasswordMessage, SASL responses) are never read into a call.
// An SSLRequest answered 'S' switches the connection to TLS (the TLS
// dissector reads on, and decrypts with a key log); answered 'N', the
// startup goes on in clear and the STARTUP call says so. A
// GSSENCRequest answered 'G' marks the flow encrypted, not decryptable.
//
// Memory is bounded whatever the messages claim: a message longer than
// 1 GiB is malformed; the bytes of one that the call needs (SQL, names,
// an error's fields) are kept up to Limits.MaxHeaderBytes, rows and COPY
// data only counted beyond the display limit. After a gap or bytes that
// do not parse, the client side resynchronises on the next Sync or simple
// Query, the server side on the next ReadyForQuery; the operations waiting
// when the server's bytes went missing are reported truncated.
package postgres

import (
	"bytes"
	"encoding/binary"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is PostgreSQL.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "postgres" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "PostgreSQL queries and statements", Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{5432, 5433, 6432} }

// Request codes of the untyped first messages.
const (
	codeProtocol3 = 3 << 16
	codeCancel    = 80877102
	codeSSL       = 80877103
	codeGSSENC    = 80877104
)

// maxMessage is the longest message read: PostgreSQL refuses longer ones
// (a value stops at 1 GiB; a row holding one has its header besides).
const maxMessage = 1<<30 + 64<<10

// outcome classifies a SQLSTATE by its class: the server's trouble
// (connection exceptions 08, insufficient resources 53, operator
// intervention 57, system errors 58 and XX, transaction rollbacks 40:
// serialization failures and deadlocks) is a server error; the request's
// (syntax, missing objects, constraint violations, bad data, auth) a
// client error.
func outcome(c *proto.Call) proto.Outcome {
	s := c.Status
	if s == "OK" || len(s) != 5 {
		return proto.OK
	}
	switch s[:2] {
	case "00", "01", "02":
		return proto.OK
	case "08", "53", "57", "58", "XX", "40":
		return proto.ServerError
	}
	if s == "55P03" { // lock_not_available
		return proto.ServerError
	}
	return proto.ClientError
}

// DetectStream implements proto.StreamProtocol: a startup, SSL, GSSAPI
// or cancel request from a client; mid-connection, a simple query or a
// Parse from a client, or a server's messages up to a ReadyForQuery.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) < 8 {
		if len(data) > 0 && (data[0] == 0 || data[0] == 'Q' || data[0] == 'P') {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.No, proto.RoleUnknown
	}
	n := binary.BigEndian.Uint32(data)
	code := binary.BigEndian.Uint32(data[4:])
	switch {
	case n == 8 && (code == codeSSL || code == codeGSSENC):
		return proto.Yes, proto.Client
	case n == 16 && code == codeCancel:
		return proto.Yes, proto.Client
	case n >= 8 && n <= 10000 && code == codeProtocol3:
		// key\0value\0…\0: "user" is required.
		if int(n) <= len(data) {
			if data[n-1] == 0 && bytes.Contains(data[8:n], []byte("user\x00")) {
				return proto.Yes, proto.Client
			}
			return proto.No, proto.RoleUnknown
		}
		return proto.Maybe, proto.RoleUnknown
	}
	switch data[0] {
	case 'Q', 'P':
		// A query's text: printable, ending in a NUL.
		l := int(binary.BigEndian.Uint32(data[1:]))
		if l < 5 || l > 1<<24 {
			return proto.No, proto.RoleUnknown
		}
		body := data[5:min(len(data), 1+l)]
		if data[0] == 'P' {
			// The statement's name first.
			i := bytes.IndexByte(body, 0)
			if i < 0 || i > 64 {
				return proto.No, proto.RoleUnknown
			}
			body = body[i+1:]
			if j := bytes.IndexByte(body, 0); j >= 0 {
				body = body[:j+1]
			}
		}
		for _, c := range body[:max(0, len(body)-1)] {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
				return proto.No, proto.RoleUnknown
			}
		}
		if 1+l > len(data) && (data[0] == 'Q' || bytes.IndexByte(body, 0) < 0) {
			if len(body) >= 6 {
				return proto.Maybe, proto.RoleUnknown
			}
			return proto.No, proto.RoleUnknown
		}
		if len(body) < 7 || body[len(body)-1] != 0 || !sqlStart(body) {
			return proto.No, proto.RoleUnknown
		}
		return proto.Yes, proto.Client
	}
	// A server: typed messages with plausible lengths, the last a
	// ReadyForQuery.
	for i := 0; i+5 <= len(data); {
		if !backendType(data[i]) {
			return proto.No, proto.RoleUnknown
		}
		l := int(binary.BigEndian.Uint32(data[i+1:]))
		if l < 4 || l > 1<<24 {
			return proto.No, proto.RoleUnknown
		}
		if data[i] == 'Z' {
			if l == 5 && i+6 <= len(data) && (data[i+5] == 'I' || data[i+5] == 'T' || data[i+5] == 'E') {
				return proto.Yes, proto.Server
			}
			return proto.No, proto.RoleUnknown
		}
		i += 1 + l
	}
	return proto.No, proto.RoleUnknown
}

// sqlStart reports whether a query text starts like SQL: a letter, a
// parenthesis, or a comment, after white space.
func sqlStart(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0]|0x20 >= 'a' && b[0]|0x20 <= 'z' || b[0] == '(' || b[0] == '-' || b[0] == '/')
}

func backendType(t byte) bool {
	switch t {
	case 'R', 'S', 'K', 'Z', 'T', 'D', 'C', 'E', 'N', 'A', '1', '2', '3', 'n', 's', 't', 'I', 'G', 'H', 'W', 'd', 'c', 'v', 'V':
		return true
	}
	return false
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l, statements: map[string]string{}, portals: map[string]string{}}
	c.ops.Max = l.MaxPending
	c.ops.Size = func(o *op) int { return o.size() }
	c.side[0].client, c.side[1].client = true, false
	for i := range c.side {
		c.side[i].keepMax = l.MaxHeaderBytes
	}
	return c
}
