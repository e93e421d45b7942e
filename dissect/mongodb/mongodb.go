// Package mongodb dissects the MongoDB wire protocol.
//
// Each command is a call: Method is its name (find, insert, aggregate,
// hello, getMore …: the first field of the command document), Path the
// namespace "db.collection" (the database alone for commands that name no
// collection), Status "ok", or the error's codeName ("DuplicateKey",
// "CommandNotFound"; "code N" when the server sent none) from the reply's
// ok, code and codeName, its first write error, or its write concern
// error. Requests and replies are matched by requestID and responseTo.
// OP_MSG is read with its document sequences (an insert's documents
// counted in extra), its checksum, and moreToCome: a request the server
// does not answer (a w:0 write) is a one-way call; an exhaust cursor's
// replies are calls of their own. The legacy OP_QUERY and OP_REPLY (the
// drivers' first hello), OP_GET_MORE, and the fire-and-forget OP_INSERT,
// OP_UPDATE, OP_DELETE and OP_KILL_CURSORS are read too, and
// OP_COMPRESSED with snappy, zlib or zstd. A getMore says which command
// opened its cursor (extra cursor_of). Bodies are relaxed Extended JSON,
// cut to the display limit; authentication payloads (saslStart,
// saslContinue, speculativeAuthenticate) and passwords are never shown.
//
// Memory is bounded whatever a message claims: at most 48 MB is a
// message; of one, the first max(Limits.MaxBodyCapture, 1 MiB) bytes and
// the last 64 KiB are kept, and fields are walked by their lengths, so a
// reply's status after a big batch is still read. Documents nested deeper
// than 64 are not rendered. After a gap a side resynchronises on the next
// message header that fits.
package mongodb

import (
	"encoding/binary"
	"strconv"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is MongoDB.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "mongodb" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "MongoDB commands", Path: proto.PathText, Outcome: outcome}
}

// Ports implements proto.PortHinter.
func (Protocol) Ports() []uint16 { return []uint16{27017, 27018, 27019} }

// Opcodes.
const (
	opReply       = 1
	opUpdate      = 2001
	opInsert      = 2002
	opQuery       = 2004
	opGetMore     = 2005
	opDelete      = 2006
	opKillCursors = 2007
	opCompressed  = 2012
	opMsg         = 2013
)

// maxMessage is the longest message read (the server's
// maxMessageSizeBytes).
const maxMessage = 48_000_000

// serverErrors are the codeNames that report the server's or the
// cluster's trouble rather than the command's.
var serverErrors = map[string]bool{
	"HostUnreachable": true, "HostNotFound": true, "NetworkTimeout": true, "SocketException": true,
	"ShutdownInProgress": true, "InterruptedAtShutdown": true, "PrimarySteppedDown": true,
	"NotWritablePrimary": true, "NotPrimaryNoSecondaryOk": true, "NotPrimaryOrSecondary": true,
	"ExceededTimeLimit": true, "MaxTimeMSExpired": true, "WriteConflict": true, "LockTimeout": true,
	"InternalError": true, "ExceededMemoryLimit": true, "NetworkInterfaceExceededTimeLimit": true,
	"InterruptedDueToReplStateChange": true, "OperationFailed": false,
}

// outcome: "ok" is OK; codeNames of the server's trouble are server
// errors, the rest client errors.
func outcome(c *proto.Call) proto.Outcome {
	switch {
	case c.Status == "ok":
		return proto.OK
	case serverErrors[c.Status]:
		return proto.ServerError
	}
	return proto.ClientError
}

// codeNames names the error codes that come without their name (write
// errors carry only code and errmsg).
var codeNames = map[int64]string{
	1: "InternalError", 2: "BadValue", 6: "HostUnreachable", 7: "HostNotFound", 8: "UnknownError",
	9: "FailedToParse", 11: "UserNotFound", 13: "Unauthorized", 18: "AuthenticationFailed",
	26: "NamespaceNotFound", 43: "CursorNotFound", 48: "NamespaceExists", 50: "MaxTimeMSExpired",
	59: "CommandNotFound", 64: "WriteConcernFailed", 66: "ImmutableField", 67: "CannotCreateIndex",
	85: "IndexOptionsConflict", 86: "IndexKeySpecsConflict", 89: "NetworkTimeout", 91: "ShutdownInProgress",
	96: "OperationFailed", 112: "WriteConflict", 121: "DocumentValidationFailure", 189: "PrimarySteppedDown",
	211: "KeyNotFound", 251: "NoSuchTransaction", 262: "ExceededTimeLimit", 9001: "SocketException",
	10107: "NotWritablePrimary", 11000: "DuplicateKey", 11600: "InterruptedAtShutdown",
	11602: "InterruptedDueToReplStateChange", 13435: "NotPrimaryNoSecondaryOk", 13436: "NotPrimaryOrSecondary",
	16755: "Location16755", 17280: "KeyTooLong",
}

func codeName(code int64) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return "code " + strconv.FormatInt(code, 10)
}

// DetectStream implements proto.StreamProtocol: a message header whose
// length fits and whose opcode is MongoDB's; OP_MSG flags and first
// section checked. A request has responseTo 0; a reply answers one.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) < 16 {
		if len(data) >= 4 {
			n := binary.LittleEndian.Uint32(data)
			if n < 16 || n > maxMessage {
				return proto.No, proto.RoleUnknown
			}
		}
		return proto.Maybe, proto.RoleUnknown
	}
	n := int(binary.LittleEndian.Uint32(data))
	responseTo := binary.LittleEndian.Uint32(data[8:])
	op := binary.LittleEndian.Uint32(data[12:])
	if n < 16 || n > maxMessage {
		return proto.No, proto.RoleUnknown
	}
	role := proto.Client
	if responseTo != 0 {
		role = proto.Server
	}
	switch op {
	case opMsg:
		if len(data) < 21 || n < 21 {
			return proto.Maybe, proto.RoleUnknown
		}
		flags := binary.LittleEndian.Uint32(data[16:])
		if flags&^(1|2|1<<16) != 0 || data[20] > 1 {
			return proto.No, proto.RoleUnknown
		}
		if data[20] == 0 && len(data) >= 25 {
			dl := int(int32(binary.LittleEndian.Uint32(data[21:])))
			if dl < 5 || 21+dl > n {
				return proto.No, proto.RoleUnknown
			}
		}
		return proto.Yes, role
	case opQuery:
		// Only clients send it (whatever its responseTo says): flags,
		// then a namespace "db.collection".
		if len(data) < 24 {
			return proto.Maybe, proto.RoleUnknown
		}
		for i := 20; i < len(data) && i < 20+256; i++ {
			if data[i] == 0 {
				if i > 20 && containsDot(data[20:i]) {
					return proto.Yes, proto.Client
				}
				return proto.No, proto.RoleUnknown
			}
			if data[i] < 0x20 {
				return proto.No, proto.RoleUnknown
			}
		}
		return proto.Maybe, proto.RoleUnknown
	case opReply:
		if responseTo == 0 || n < 36 {
			return proto.No, proto.RoleUnknown
		}
		return proto.Yes, proto.Server
	case opCompressed:
		if len(data) < 25 {
			return proto.Maybe, proto.RoleUnknown
		}
		orig := binary.LittleEndian.Uint32(data[16:])
		if (orig == opMsg || orig == opQuery || orig == opReply) && data[24] <= 3 {
			return proto.Yes, role
		}
	}
	return proto.No, proto.RoleUnknown
}

func containsDot(b []byte) bool {
	for _, c := range b {
		if c == '.' {
			return true
		}
	}
	return false
}
