// Package kafka dissects the Kafka wire protocol: every API key and version
// franz-go's kmsg knows (flexible versions and tagged fields included), on
// the broker port or wherever a client's first bytes are a Kafka request.
//
// Each request is a call: Method is the API's name as Kafka names it
// ("Produce", "Fetch", "Metadata", "ApiVersions", "JoinGroup"); Path is
// the topics it names, comma-joined in the order sent (topic IDs are named
// from the Metadata responses seen before, on any connection: see
// NewCorrelation; else shown as a UUID),
// or the consumer group for a group's calls that name no topic
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, FindCoordinator); Status
// is "OK", or the name of the first error its response carries
// ("UNKNOWN_TOPIC_OR_PARTITION", "NOT_LEADER_OR_FOLLOWER"), the response's
// own error first, then its topics' and partitions'. Every partition that
// failed is listed in extra partition_errors ("orders/3
// NOT_LEADER_OR_FOLLOWER"). Responses are matched to their requests by
// correlation ID, so a response's version is its request's. A Produce with
// acks=0 gets no response: it is a one-way record.
//
// Extra carries the API version, the correlation ID, the client ID, the
// group and member, the records and record bytes a Produce carries or a
// Fetch returns, acks, the error message a response gives, and the throttle
// time. Bodies show the request and response as JSON (records as their
// counts and sizes, not their bytes); SASL authentication bytes are never
// kept (the PLAIN or SCRAM user name is, in extra user).
//
// Memory is bounded whatever a message claims: a message's first
// maxDecode bytes are kept and decoded (kmsg reads what they hold; a
// Produce or Fetch bigger than that is decoded as far as its head goes and
// says so), the rest streams through, counted. A size over maxMessage is
// malformed; the side then waits for a segment that starts a message (the
// client's: a request header; the server's: a response whose correlation
// ID a request waits for). Bytes missing from the capture inside a message
// are read as zeros, so what surrounds them still decodes, and the call
// says how many were missing.
package kafka

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxMessage is the biggest message size read as Kafka: the broker's
	// socket.request.max.bytes default is 100 MiB; a fetch response may be
	// bigger than a request, so allow some more.
	maxMessage = 256 << 20
	// maxDecode is how much of a message is kept and decoded.
	maxDecode = 4 << 20
	// maxAPIVersion is the highest version detection believes in; Kafka
	// 4.1's highest is 17 (Fetch).
	maxAPIVersion = 40
)

// Protocol is Kafka.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "kafka" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "Kafka requests (produce, fetch, metadata, consumer groups …)", Path: proto.PathText, Outcome: outcome, TextStatus: true}
}

// Ports implements proto.PortHinter: the plaintext broker listener, and
// the ports of Kafka-compatible brokers' usual set-ups.
func (Protocol) Ports() []uint16 { return []uint16{9092, 9093, 9094, 29092, 19092} }

// clientErrors are the errors a request's own fault causes, whatever kerr
// says of retrying: a topic that does not exist, authorization, a message
// the broker refuses.
var clientErrors = map[string]bool{
	"UNKNOWN_TOPIC_OR_PARTITION": true, "UNKNOWN_TOPIC_ID": true, "INVALID_TOPIC_EXCEPTION": true,
	"INVALID_REQUIRED_ACKS": true, "MESSAGE_TOO_LARGE": true, "RECORD_LIST_TOO_LARGE": true,
	"CORRUPT_MESSAGE": true, "INVALID_RECORD": true, "OFFSET_OUT_OF_RANGE": true,
}

// serverErrors are errors of the cluster's state whatever kerr says; the
// rest are classified by kerr's Retriable (a transient state of the
// cluster: a server error) or not (the request's fault: a client error).
var serverErrors = map[string]bool{
	"UNKNOWN_SERVER_ERROR": true, "REBALANCE_IN_PROGRESS": true, "KAFKA_STORAGE_ERROR": true,
	"NOT_ENOUGH_REPLICAS": true, "NOT_ENOUGH_REPLICAS_AFTER_APPEND": true, "UNSTABLE_OFFSET_COMMIT": true,
	"GROUP_MAX_SIZE_REACHED": true, "THROTTLING_QUOTA_EXCEEDED": true,
}

// okErrors are error codes that are steps of a protocol, not failures:
// since KIP-394 a consumer's first JoinGroup is answered
// MEMBER_ID_REQUIRED with the member ID to join again with.
var okErrors = map[string]bool{"MEMBER_ID_REQUIRED": true}

func outcome(c *proto.Call) proto.Outcome {
	s := c.Status
	switch {
	case s == "OK" || okErrors[s]:
		return proto.OK
	case clientErrors[s]:
		return proto.ClientError
	case serverErrors[s]:
		return proto.ServerError
	}
	if e, ok := byName[s]; ok && e.Retriable {
		return proto.ServerError
	}
	return proto.ClientError
}

// byName maps error names to kerr's errors.
var byName = func() map[string]*kerr.Error {
	m := map[string]*kerr.Error{}
	for code := int16(-1); code < 200; code++ {
		if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && (e != kerr.UnknownServerError || code == -1) {
			m[e.Message] = e
		}
	}
	return m
}()

// errorName names an error code as Kafka does; "OK" for 0.
func errorName(code int16) string {
	if code == 0 {
		return "OK"
	}
	e, ok := kerr.ErrorForCode(code).(*kerr.Error)
	if !ok || (e == kerr.UnknownServerError && code != -1) {
		return "ERROR_" + strconv.Itoa(int(code))
	}
	return e.Message
}

// apiName names an API key as Kafka does.
func apiName(key int16) string {
	if n := kmsg.NameForKey(key); n != "" {
		return n
	}
	return "ApiKey" + strconv.Itoa(int(key))
}

// DetectStream implements proto.StreamProtocol. A client's first bytes
// are a request: a size, an API key kmsg knows, a version, a correlation
// ID and a client ID (printable, or null) that fit the size. A server's
// first bytes are a size and a correlation ID, which nothing tells from
// other binary protocols: the client's requests decide.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	v := requestStart(data)
	if v == proto.Yes {
		return proto.Yes, proto.Client
	}
	return v, proto.RoleUnknown
}

// requestStart says whether data starts a request.
func requestStart(data []byte) proto.Verdict {
	if len(data) < 4 {
		return proto.Maybe
	}
	size := int32(binary.BigEndian.Uint32(data))
	if size < 10 || size > maxMessage {
		return proto.No
	}
	if len(data) < 8 {
		return proto.Maybe
	}
	key := int16(binary.BigEndian.Uint16(data[4:]))
	version := int16(binary.BigEndian.Uint16(data[6:]))
	if kmsg.RequestForKey(key) == nil || version < 0 || version > maxAPIVersion {
		return proto.No
	}
	if len(data) < 14 {
		return proto.Maybe
	}
	n := int16(binary.BigEndian.Uint16(data[12:]))
	switch {
	case n <= 0 && n >= -1:
		// No client ID: a response's first bytes look so too (a small
		// correlation ID, then a zero throttle time or error code), so
		// the whole request must decode.
		return decodes(data, size, key, version)
	case n < 0 || int32(n) > size-10:
		return proto.No
	}
	id := data[14:]
	if len(id) > int(n) {
		id = id[:n]
	}
	for _, c := range id {
		if c < 0x20 || c > 0x7e {
			return proto.No
		}
	}
	if len(id) < int(n) && len(id) < 8 {
		return proto.Maybe
	}
	return proto.Yes
}

// decodes says whether data holds a whole request kmsg reads.
func decodes(data []byte, size int32, key, version int16) proto.Verdict {
	if int64(len(data)) < int64(size)+4 {
		if len(data) < 4096 {
			return proto.Maybe
		}
		return proto.No
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(version)
	body, _, bad := requestHeader(data[4:size+4], req)
	if bad != "" {
		return proto.No
	}
	if req.ReadFrom(body) != nil {
		return proto.No
	}
	return proto.Yes
}

// maxTopicIDs caps the topic IDs a Metadata call names in extra, and
// maxNamed those a correlation remembers.
const (
	maxTopicIDs = 256
	maxNamed    = 1 << 16
)

// NewCorrelation implements proto.Correlator. Since Kafka 4 (Produce and
// Fetch 13+) clients name topics by ID, and learn the IDs from a Metadata
// response, usually on another connection than the one they produce or
// fetch on: the topic IDs a Metadata call names (extra topic_ids) name,
// from then on in the dissection's order, the paths and partition errors
// of the calls that carry them.
func (Protocol) NewCorrelation() func(c *proto.Call) {
	names := map[string]string{}
	return func(c *proto.Call) {
		if ids, ok := c.Extra.Get("topic_ids").(proto.Extra); ok {
			for _, f := range ids {
				if n, ok := f.Value.(string); ok && len(names) < maxNamed {
					names[f.Key] = n
				}
			}
			return
		}
		if len(names) == 0 || !strings.Contains(c.Path, "-") {
			return
		}
		parts := strings.Split(c.Path, ",")
		renamed := false
		for i, p := range parts {
			if n, ok := names[p]; ok {
				parts[i], renamed = n, true
			}
		}
		if !renamed {
			return
		}
		c.Path = strings.Join(parts, ",")
		if pe, ok := c.Extra.Get("partition_errors").([]string); ok {
			out := make([]string, len(pe))
			for i, e := range pe {
				out[i] = e
				if id, rest, ok := strings.Cut(e, "/"); ok {
					if n, ok := names[id]; ok {
						out[i] = n + "/" + rest
					}
				} else if id, rest, ok := strings.Cut(e, " "); ok {
					if n, ok := names[id]; ok {
						out[i] = n + " " + rest
					}
				}
			}
			c.Extra.Set("partition_errors", out)
		}
	}
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l}
	c.pending.Max = l.MaxPending
	c.pending.Size = func(r *request) int { return r.size }
	return c
}
