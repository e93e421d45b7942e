// Package mysql dissects the MySQL client/server protocol, as MySQL 5.x
// and 8 and MariaDB speak it.
//
// Calls: CONNECT, the connection's handshake from the server's greeting
// to the OK or error that ends the authentication (path the database;
// extra user, server_version, auth plugin, connection_id; a client that
// switches to TLS ends it with status TLS, and the TLS dissector reads
// on); and one call per command, Method its name (COM_QUERY,
// COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_INIT_DB, COM_PING, COM_QUIT …).
// Path is the SQL with its literals replaced by ? (a prepared statement's
// executions carry the SQL its COM_STMT_PREPARE had, by statement id), the
// database for COM_INIT_DB; the full text is the request body. Status is
// OK, or the error number ("1146") with SQLSTATE and message in extra.
// Extra also carries rows returned, affected_rows, last_insert_id,
// warnings, the OK packet's info, and result_sets when a query returned
// several (multi-statements, stored procedures). The response body shows
// the rows of text result sets, tab-separated, cut to the display limit.
// COM_QUIT and COM_STMT_CLOSE, which nothing answers, are one-way calls.
//
// Passwords and auth data are never read into a call. Both the classic
// EOF packets and CLIENT_DEPRECATE_EOF are read, and a packet of 16 MiB
// continues in the next. Memory is bounded whatever a packet claims: the
// bytes a call needs are kept up to Limits.MaxHeaderBytes (SQL up to
// Limits.MaxBodyCapture), rows only counted beyond the display limit.
// After a gap, the client side resynchronises on the next command (a
// packet with sequence 0), the server side on the next response (sequence
// 1) once the commands waiting are reported.
package mysql

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is MySQL.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "mysql" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "MySQL and MariaDB commands and statements", Path: proto.PathText, Outcome: outcome}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{3306, 3307, 33060} }

// serverErrors are error numbers that report the server's trouble rather
// than the statement's: too many connections, shutdown, lock waits and
// deadlocks, interrupted or timed-out queries, full tables and disks, out
// of memory, threads, killed connections.
var serverErrors = map[string]bool{
	"1021": true, "1037": true, "1038": true, "1040": true, "1041": true, "1053": true, "1114": true,
	"1135": true, "1205": true, "1213": true, "1317": true, "1927": true, "3024": true, "4031": true,
}

// outcome: OK (and a switch to TLS) is OK; server errors by number or by
// SQLSTATE class (connection 08, transaction rollback 40, resources 53,
// operator intervention 57, system 58, internal XX) are server errors; the
// rest (syntax, missing tables, duplicates, access) client errors.
func outcome(c *proto.Call) proto.Outcome {
	if c.Status == "OK" || c.Status == "TLS" {
		return proto.OK
	}
	if serverErrors[c.Status] {
		return proto.ServerError
	}
	if s, _ := c.Extra.Get("sqlstate").(string); len(s) == 5 {
		switch s[:2] {
		case "08", "40", "53", "57", "58", "XX":
			return proto.ServerError
		}
	}
	return proto.ClientError
}

// Command bytes.
const (
	comQuit            = 0x01
	comInitDB          = 0x02
	comQuery           = 0x03
	comFieldList       = 0x04
	comStatistics      = 0x09
	comProcessInfo     = 0x0a
	comPing            = 0x0e
	comChangeUser      = 0x11
	comBinlogDump      = 0x12
	comRegisterSlave   = 0x15
	comStmtPrepare     = 0x16
	comStmtExecute     = 0x17
	comStmtSendLong    = 0x18
	comStmtClose       = 0x19
	comStmtReset       = 0x1a
	comSetOption       = 0x1b
	comStmtFetch       = 0x1c
	comResetConnection = 0x1f
	comBinlogDumpGTID  = 0x1e
	comStmtBulkExecute = 0xfa // MariaDB
)

var commandNames = map[byte]string{
	0x00: "COM_SLEEP", comQuit: "COM_QUIT", comInitDB: "COM_INIT_DB", comQuery: "COM_QUERY",
	comFieldList: "COM_FIELD_LIST", 0x05: "COM_CREATE_DB", 0x06: "COM_DROP_DB", 0x07: "COM_REFRESH",
	0x08: "COM_SHUTDOWN", comStatistics: "COM_STATISTICS", comProcessInfo: "COM_PROCESS_INFO",
	0x0b: "COM_CONNECT", 0x0c: "COM_PROCESS_KILL", 0x0d: "COM_DEBUG", comPing: "COM_PING",
	0x0f: "COM_TIME", 0x10: "COM_DELAYED_INSERT", comChangeUser: "COM_CHANGE_USER",
	comBinlogDump: "COM_BINLOG_DUMP", 0x13: "COM_TABLE_DUMP", 0x14: "COM_CONNECT_OUT",
	comRegisterSlave: "COM_REGISTER_SLAVE", comStmtPrepare: "COM_STMT_PREPARE",
	comStmtExecute: "COM_STMT_EXECUTE", comStmtSendLong: "COM_STMT_SEND_LONG_DATA",
	comStmtClose: "COM_STMT_CLOSE", comStmtReset: "COM_STMT_RESET", comSetOption: "COM_SET_OPTION",
	comStmtFetch: "COM_STMT_FETCH", 0x1d: "COM_DAEMON", comBinlogDumpGTID: "COM_BINLOG_DUMP_GTID",
	comResetConnection: "COM_RESET_CONNECTION", comStmtBulkExecute: "COM_STMT_BULK_EXECUTE",
}

// Capability flags.
const (
	capLongPassword  = 0x00000001 // CLIENT_MYSQL: unset by MariaDB, whose extended capabilities follow
	capConnectWithDB = 0x00000008
	capProtocol41    = 0x00000200
	capSSL           = 0x00000800
	capSecure        = 0x00008000
	capPluginAuth    = 0x00080000
	capConnectAttrs  = 0x00100000
	capLenencAuth    = 0x00200000
	capDeprecateEOF  = 0x01000000
	// capOptionalMetadata is MySQL 8's CLIENT_OPTIONAL_RESULTSET_METADATA.
	capOptionalMetadata = 0x02000000
	// extCacheMetadata is MariaDB's MARIADB_CLIENT_CACHE_METADATA
	// (1<<36), in its extended capabilities.
	extCacheMetadata = 1 << 4
)

// Server status flags.
const statusMoreResults = 0x0008

// DetectStream implements proto.StreamProtocol: the server's greeting
// (protocol 10, a printable version, NUL); mid-connection, a client's
// command of sequence 0 whose length fits (a query's text printable).
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) < 5 {
		if len(data) == 0 || len(data) < 4 || data[3] == 0 {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.No, proto.RoleUnknown
	}
	n := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
	seq := data[3]
	payload := data[4:min(len(data), 4+n)]
	if seq != 0 || n == 0 {
		return proto.No, proto.RoleUnknown
	}
	if payload[0] == 10 && n >= 40 && n < 1024 {
		// A greeting: "5.7.44\x00" or "5.5.5-10.11.6-MariaDB\x00".
		end := bytes.IndexByte(payload[1:], 0)
		if end < 0 {
			if len(payload) < n {
				return proto.Maybe, proto.RoleUnknown
			}
			return proto.No, proto.RoleUnknown
		}
		v := payload[1 : 1+end]
		d := 0
		for d < len(v) && d < 3 && v[d] >= '0' && v[d] <= '9' {
			d++
		}
		if d > 0 && d < len(v) && v[d] == '.' && v[0] != '0' && printable(v) {
			return proto.Yes, proto.Server
		}
		return proto.No, proto.RoleUnknown
	}
	switch payload[0] {
	case comQuery, comStmtPrepare:
		if n > 1<<24-1 || n < 2 {
			return proto.No, proto.RoleUnknown
		}
		sql := payload[1:]
		// MariaDB and MySQL 8.0.23+ may send query attributes first when
		// the client asked (CLIENT_QUERY_ATTRIBUTES): not recognised
		// mid-stream.
		if !printable(sql) || !sqlStart(sql) {
			return proto.No, proto.RoleUnknown
		}
		if len(data) < 4+n {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.Yes, proto.Client
	case comPing, comQuit, comStatistics:
		if n == 1 && len(data) == 5 {
			return proto.Yes, proto.Client
		}
	}
	return proto.No, proto.RoleUnknown
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func sqlStart(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n(")
	if len(b) < 3 {
		return false
	}
	w := strings.ToUpper(string(b[:min(len(b), 8)]))
	for _, k := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "SET ", "SHOW", "CREATE", "DROP", "ALTER",
		"BEGIN", "COMMIT", "ROLLBACK", "START", "CALL", "USE ", "REPLACE", "WITH", "EXPLAIN", "DESC", "LOCK",
		"UNLOCK", "GRANT", "REVOKE", "TRUNCATE", "/*", "--", "#", "LOAD", "PREPARE", "EXECUTE", "DEALLOCATE",
		"FLUSH", "KILL", "ANALYZE", "OPTIMIZE", "SAVEPOINT", "RELEASE", "XA ", "DO ", "HANDLER", "RENAME"} {
		if strings.HasPrefix(w, k) {
			return true
		}
	}
	return false
}

// lenenc reads a length-encoded integer; ok is false when b is too short
// or holds the NULL marker (0xfb).
func lenenc(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfc && len(b) >= 3:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case c == 0xfd && len(b) >= 4:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case c == 0xfe && len(b) >= 9:
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, false
}

// cstr reads a NUL-terminated string.
func cstr(b []byte) (s, rest []byte) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}
