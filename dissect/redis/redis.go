// Package redis dissects the Redis serialization protocol, RESP2 and RESP3.
//
// Each command is a call: Method is the command's name in upper case, both
// words for a command with subcommands ("CONFIG GET", "CLIENT SETNAME");
// Path is its first key (a channel for the pub/sub commands; empty for
// commands without keys); Status is "OK" for any reply that is not an error
// and the error's first word otherwise ("ERR", "WRONGTYPE", "MOVED",
// "NOAUTH"). Replies come in order, so pipelined commands are matched
// oldest first. The request body shows the command as redis-cli would type
// it, with the secrets of AUTH, HELLO, MIGRATE, CONFIG SET and ACL SETUSER
// masked (they are never kept); the response body shows the reply, a
// string as it is and aggregates as JSON.
//
// Inline commands ("PING\r\n") are read like arrays. A transaction's
// commands are answered QUEUED; they are emitted when EXEC answers, with
// the status each got inside EXEC's reply (extra transaction: "exec"), or
// when the transaction is discarded or aborted (status OK, their QUEUED
// reply's, and why they never ran in extra transaction). Pub/sub messages the server pushes (RESP3 pushes, or
// RESP2 arrays once the connection subscribed) are one-way records: Method
// MESSAGE, PMESSAGE or SMESSAGE, Path the channel, the payload as the
// response body; a SUBSCRIBE is answered by its confirmations, one per
// channel. After SYNC or PSYNC the server streams its dataset and the
// replicated commands, which are not dissected; after MONITOR, the lines it
// streams are not records either.
//
// Memory is bounded whatever a message claims: a bulk string streams
// through (the call keeps at most Limits.MaxBodyDisplay bytes of its
// elements' text), aggregates may nest 64 deep, and a line (a simple
// string, an error, an inline command) may be Limits.MaxHeaderBytes long.
// Bytes that are not RESP, and capture gaps, are reported on the call they
// cut; the side then looks for the next line that starts a message.
package redis

import (
	"bytes"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is Redis (RESP).
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "redis" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "Redis commands (RESP2 and RESP3)", Path: proto.PathText, Outcome: outcome}
}

// outcome: any reply that is not an error is OK;
// errors that report the server's state (OOM, LOADING, BUSY, READONLY,
// CLUSTERDOWN…) are server errors, the rest (ERR, WRONGTYPE, NOAUTH,
// MOVED…) client errors.
func outcome(c *proto.Call) proto.Outcome {
	switch {
	case c.Status == "OK":
		return proto.OK
	case serverErrors[c.Status]:
		return proto.ServerError
	}
	return proto.ClientError
}

// Ports implements proto.PortHinter: Redis, a second instance, Sentinel.
func (Protocol) Ports() []uint16 { return []uint16{6379, 6380, 26379} }

// DetectStream implements proto.StreamProtocol. A client sends a command
// as an array of bulk strings ("*2\r\n$3\r\nGET\r\n") or inline
// ("PING\r\n"); a server's first bytes are recognised only when they can
// be nothing else: an error in Redis's words, PONG, a RESP3 HELLO map.
func (Protocol) DetectStream(data []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if len(data) == 0 {
		return proto.Maybe, proto.RoleUnknown
	}
	switch data[0] {
	case tArray:
		return detectArray(data)
	case tError:
		for _, w := range []string{"-ERR ", "-NOAUTH ", "-WRONGTYPE ", "-NOPERM ", "-WRONGPASS ", "-MOVED ", "-LOADING "} {
			if len(data) < len(w) {
				if bytes.HasPrefix([]byte(w), data) {
					return proto.Maybe, proto.RoleUnknown
				}
				continue
			}
			if bytes.HasPrefix(data, []byte(w)) {
				if bytes.Contains(data, []byte("\r\n")) {
					return proto.Yes, proto.Server
				}
				return proto.Maybe, proto.RoleUnknown
			}
		}
		return proto.No, proto.RoleUnknown
	case tSimple:
		if pong := []byte("+PONG\r\n"); bytes.HasPrefix(data, pong) {
			return proto.Yes, proto.Server
		} else if len(data) < len(pong) && bytes.HasPrefix(pong, data) {
			return proto.Maybe, proto.RoleUnknown
		}
		return proto.No, proto.RoleUnknown
	case tMap:
		// HELLO 3's reply: %7\r\n$6\r\nserver\r\n$5\r\nredis…
		if i := bytes.Index(data, []byte("\r\n$6\r\nserver\r\n$")); i > 0 && i < 8 {
			return proto.Yes, proto.Server
		}
		return proto.No, proto.RoleUnknown
	}
	return detectInline(data)
}

// detectArray recognises a command: an array header, then a bulk string
// header and a command name's letters.
func detectArray(data []byte) (proto.Verdict, proto.Role) {
	i := 1
	digits := func() bool {
		start := i
		for i < len(data) && data[i] >= '0' && data[i] <= '9' && i-start < 8 {
			i++
		}
		return i > start
	}
	if !digits() {
		return maybeIfEnd(data, i)
	}
	for _, want := range []byte("\r\n$") {
		if i == len(data) {
			return proto.Maybe, proto.RoleUnknown
		}
		if data[i] != want {
			return proto.No, proto.RoleUnknown
		}
		i++
	}
	if !digits() {
		return maybeIfEnd(data, i)
	}
	for _, want := range []byte("\r\n") {
		if i == len(data) {
			return proto.Maybe, proto.RoleUnknown
		}
		if data[i] != want {
			return proto.No, proto.RoleUnknown
		}
		i++
	}
	if i == len(data) {
		return proto.Maybe, proto.RoleUnknown
	}
	if c := data[i] | 0x20; c >= 'a' && c <= 'z' {
		return proto.Yes, proto.Client
	}
	return proto.No, proto.RoleUnknown
}

func maybeIfEnd(data []byte, i int) (proto.Verdict, proto.Role) {
	if i == len(data) {
		return proto.Maybe, proto.RoleUnknown
	}
	return proto.No, proto.RoleUnknown
}

// inlineWords are the commands recognised when sent inline as a
// connection's first bytes: what people type at a Redis port, and what
// health checks send.
var inlineWords = []string{"PING", "AUTH", "HELLO", "INFO", "SELECT", "GET", "SET", "DEL", "KEYS",
	"EXISTS", "INCR", "DBSIZE", "QUIT", "CONFIG", "CLIENT", "MONITOR", "FLUSHALL", "FLUSHDB",
	"SUBSCRIBE", "PUBLISH", "ECHO", "COMMAND", "SCAN", "TYPE", "TTL"}

// detectInline recognises an inline command: one of inlineWords, then a
// space or the line's end, on a line that is not an HTTP request.
func detectInline(data []byte) (proto.Verdict, proto.Role) {
	end := bytes.IndexByte(data, '\n')
	line := data
	if end >= 0 {
		line = data[:end]
	}
	word := line
	if sp := bytes.IndexAny(line, " \r"); sp >= 0 {
		word = line[:sp]
	}
	for _, w := range inlineWords {
		if len(word) == len(line) && end < 0 && len(word) <= len(w) && bytes.EqualFold(word, []byte(w[:len(word)])) {
			return proto.Maybe, proto.RoleUnknown
		}
		if !bytes.EqualFold(word, []byte(w)) {
			continue
		}
		if end < 0 {
			if len(line) > 512 {
				return proto.No, proto.RoleUnknown
			}
			return proto.Maybe, proto.RoleUnknown
		}
		// "INFO {" is a NATS server's greeting, not a command.
		if bytes.Contains(line, []byte(" HTTP/")) || bytes.HasPrefix(line[len(word):], []byte(" {")) || (len(line) > 0 && line[len(line)-1] != '\r') {
			return proto.No, proto.RoleUnknown
		}
		return proto.Yes, proto.Client
	}
	return proto.No, proto.RoleUnknown
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	l := lim.WithDefaults()
	c := &conn{out: out, lim: l}
	c.pending.Max = l.MaxPending
	c.pending.Size = func(r *request) int { return r.size }
	for i := range c.rd {
		rd := &c.rd[i]
		rd.client = i == 0
		rd.render = i == 1 && !l.Summary
		rd.maxLine = l.MaxHeaderBytes
		rd.budget = l.MaxBodyDisplay
		rd.display = l.MaxBodyDisplay
		rd.bulkItem = -1
	}
	c.done = [2]func(*message){c.command, c.reply}
	c.bad = [2]func(string, *message){c.badCommand, c.badReply}
	return c
}

// request is a command waiting for its reply.
type request struct {
	call *proto.Call
	end  time.Time // its last byte
	cmd  string
	size int // memory it takes while held
	// sub is the subscription command's kind in lower case ("subscribe",
	// "punsubscribe"); expect the confirmations it is answered by (-1:
	// one per subscription held, as many as come before another reply).
	sub      string
	expect   int64
	confirms int64
	args     []string // arguments a reply makes meaningful (SELECT's database)
}

// conn parses one connection.
type conn struct {
	out     proto.Emitter
	lim     proto.Limits
	rd      [2]reader
	done    [2]func(*message)
	bad     [2]func(string, *message)
	pending proto.Pending[struct{}, *request]
	// The connection's state, as the replies set it.
	resp3      bool
	subscribed int64 // channels and patterns subscribed to: RESP2 replies are pushes
	multi      bool
	queued     []*request
	db         string
	name       string
	streaming  string // "replication" after SYNC/PSYNC, "monitor" after MONITOR
	scratch    [32]byte
	secret     []bool
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	i := idx(r)
	if i == 1 && c.streaming != "" {
		return
	}
	if n := c.rd[i].feed(data, t, c.done[i], c.bad[i]); n > 0 {
		c.out.Skipped(n)
	}
}

// command handles a command the client sent.
func (c *conn) command(m *message) {
	if len(m.items) == 0 {
		return // "*0\r\n": nothing Redis executes
	}
	req := c.newRequest(m)
	if m.missing > 0 {
		req.call.Fail(proto.Truncated, itoa(m.missing)+" bytes of the command missing from the capture")
	}
	c.hold(req)
}

func (c *conn) newRequest(m *message) *request {
	args := m.items
	if len(args) == 0 {
		// A command cut before its name.
		call := &proto.Call{Proto: "redis", TS: m.start}
		call.Request.BodySize = m.size
		return &request{call: call, end: m.last, size: 256}
	}
	cmd := upper(args[0].data, &c.scratch)
	if containers[cmd] && len(args) > 1 && isWord(args[1].data) {
		cmd += " " + upper(args[1].data, &c.scratch)
	}
	call := &proto.Call{Proto: "redis", TS: m.start, Method: cmd}
	if k := keyAt(cmd, args, m.count); k >= 0 && k < len(args) {
		call.Path = string(args[k].data)
	}
	call.Request.BodySize = m.size
	if m.typ == inline {
		call.Extra.Set("inline", true)
	}
	if !c.lim.Summary {
		c.renderCommand(call, cmd, args, m.count)
	}
	if c.db != "" && c.db != "0" {
		call.Extra.Set("db", c.db)
	}
	if c.name != "" {
		call.Extra.Set("client_name", c.name)
	}
	req := &request{call: call, end: m.last, cmd: cmd, size: 256 + len(call.Path) + len(call.Request.Body)}
	switch cmd {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		req.sub = string(bytes.ToLower([]byte(cmd)))
		req.expect = m.count - 1
		if req.expect == 0 {
			req.expect = -1
		}
	case "SELECT":
		if len(args) > 1 {
			req.args = []string{string(args[1].data)}
		}
	case "CLIENT SETNAME":
		if len(args) > 2 {
			req.args = []string{string(args[2].data)}
		}
	case "HELLO":
		for i := 1; i+1 < len(args); i++ {
			if bytes.EqualFold(args[i].data, []byte("SETNAME")) {
				req.args = []string{string(args[i+1].data)}
			}
		}
	}
	return req
}

func isWord(b []byte) bool {
	if len(b) == 0 || len(b) > 24 {
		return false
	}
	for _, c := range b {
		if (c|0x20 < 'a' || c|0x20 > 'z') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// renderCommand shows the command as its words, secrets masked.
func (c *conn) renderCommand(call *proto.Call, cmd string, args []item, argc int64) {
	if cap(c.secret) < len(args) {
		c.secret = make([]bool, len(args))
	}
	c.secret = c.secret[:len(args)]
	clear(c.secret)
	secretArgs(cmd, args, c.secret)
	max := c.lim.MaxBodyDisplay
	var b []byte
	cut := false
	shown := 0
	for i, a := range args {
		if len(b) >= max-48 {
			break
		}
		shown++
		if i > 0 {
			b = append(b, ' ')
		}
		if c.secret[i] {
			b = append(b, "[redacted]"...)
			continue
		}
		b = appendArg(b, a.data)
		if a.cut {
			b = append(b, "…"...)
			cut = true
		}
	}
	if int64(shown) < argc {
		b = append(b, " … ("...)
		b = strconv.AppendInt(b, argc-int64(shown), 10)
		b = append(b, " more arguments)"...)
		cut = true
	}
	call.Request.SetBody(b, max)
	call.Request.BodyTruncated = call.Request.BodyTruncated || cut
}

// hold queues a command for its reply.
func (c *conn) hold(req *request) {
	if old, full := c.pending.Add(struct{}{}, req.call.TS, req); full {
		old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" commands waiting for replies")
		c.out.Emit(old.call)
	}
}

var pushKinds = map[string]string{
	"message": "MESSAGE", "pmessage": "PMESSAGE", "smessage": "SMESSAGE",
	"subscribe": "SUBSCRIBE", "psubscribe": "PSUBSCRIBE", "ssubscribe": "SSUBSCRIBE",
	"unsubscribe": "UNSUBSCRIBE", "punsubscribe": "PUNSUBSCRIBE", "sunsubscribe": "SUNSUBSCRIBE",
}

// reply handles a value the server sent.
func (c *conn) reply(m *message) {
	if c.push(m) {
		return
	}
	// A reply ends a subscription command still taking confirmations.
	for {
		head, ok := c.pending.Oldest()
		if !ok || head.sub == "" || head.confirms == 0 {
			break
		}
		c.pending.TakeOldest()
		c.finishSub(head, head.call.Response.BodySize)
	}
	req, ok := c.pending.Oldest()
	if !ok || m.start.Before(req.call.TS) {
		c.orphan(m)
		return
	}
	c.pending.TakeOldest()
	c.answer(req, m)
}

// push handles a pub/sub message or confirmation, or another RESP3 push;
// it reports whether m was one.
func (c *conn) push(m *message) bool {
	if m.typ != tPush && m.typ != tArray || len(m.items) == 0 {
		return false
	}
	kind := string(bytes.ToLower(m.items[0].data))
	upperKind, known := pushKinds[kind]
	if m.typ == tArray {
		head, _ := c.pending.Oldest()
		if !known || c.resp3 || (c.subscribed == 0 && (head == nil || head.sub == "")) {
			return false
		}
	}
	if !known {
		upperKind = string(bytes.ToUpper(m.items[0].data))
	}
	switch kind {
	case "subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe", "sunsubscribe":
		if len(m.items) > 2 {
			if n, ok := parseInt(m.items[2].data); ok {
				c.subscribed = n
			}
		}
		// A confirmation of another kind ends a command that takes as
		// many as come (UNSUBSCRIBE without channels).
		for {
			head, ok := c.pending.Oldest()
			if !ok || head.sub == "" || head.sub == kind || head.confirms == 0 {
				break
			}
			c.pending.TakeOldest()
			c.finishSub(head, 0)
		}
		if head, ok := c.pending.Oldest(); ok && head.sub == kind {
			head.confirms++
			head.call.Response.BodySize += m.size
			if head.confirms == 1 {
				head.call.LatencyNS = proto.Latency(head.end, m.start)
			}
			if (head.expect > 0 && head.confirms >= head.expect) || (head.expect < 0 && c.subscribed == 0) {
				c.pending.TakeOldest()
				c.finishSub(head, head.call.Response.BodySize)
			}
			return true
		}
	}
	// A message pushed to a subscriber, or a confirmation no command of
	// this capture asked for.
	call := &proto.Call{Proto: "redis", TS: m.start, Method: upperKind, OneWay: true}
	call.Response.BodySize = m.size
	payload := -1
	switch kind {
	case "message", "smessage":
		if len(m.items) > 1 {
			call.Path = string(m.items[1].data)
		}
		payload = 2
	case "pmessage":
		if len(m.items) > 2 {
			call.Extra.Set("pattern", string(m.items[1].data))
			call.Path = string(m.items[2].data)
		}
		payload = 3
	default:
		if len(m.items) > 1 {
			call.Path = string(m.items[1].data)
		}
	}
	if !c.lim.Summary {
		if payload >= 0 && payload < len(m.items) {
			p := m.items[payload]
			call.Response.SetBody(bytes.Clone(p.data), c.lim.MaxBodyDisplay)
			call.Response.BodyTruncated = call.Response.BodyTruncated || p.cut
		} else {
			c.setReplyBody(call, m)
		}
	}
	c.out.Emit(call)
	return true
}

func (c *conn) finishSub(req *request, _ int64) {
	req.call.Status = "OK"
	req.call.Extra.Set("confirmations", req.confirms)
	c.out.Emit(req.call)
}

// answer completes req with reply m.
func (c *conn) answer(req *request, m *message) {
	call := req.call
	call.LatencyNS = proto.Latency(req.end, m.start)
	call.Response.BodySize = m.size
	isErr := m.typ == tError || m.typ == tBlobError
	call.Status = "OK"
	if isErr && len(m.items) > 0 {
		call.Status = errorWord(m.items[0].data)
	}
	if !c.lim.Summary {
		c.setReplyBody(call, m)
	}
	call.Extra.Set("reply", replyName(m))
	if m.missing > 0 && call.Error == "" {
		call.Fail(proto.Truncated, itoa(m.missing)+" bytes of the reply missing from the capture")
	}
	if isAggregate(m.typ) && !m.null {
		call.Extra.Set("elements", m.count)
	}
	switch req.cmd {
	case "MULTI":
		if !isErr {
			c.multi = true
		}
	case "EXEC", "DISCARD":
		c.endTransaction(req.cmd, m)
		c.multi = false
	case "RESET":
		if !isErr {
			c.endTransaction("RESET", m)
			c.multi, c.subscribed, c.resp3, c.db, c.name = false, 0, false, "", ""
		}
	case "SELECT", "CLIENT SETNAME":
		if !isErr && len(req.args) == 1 {
			if req.cmd == "SELECT" {
				c.db = req.args[0]
			} else {
				c.name = req.args[0]
			}
		}
	case "HELLO":
		if !isErr {
			c.resp3 = m.typ == tMap
			if len(req.args) == 1 {
				c.name = req.args[0]
			}
		}
	case "SYNC", "PSYNC":
		if !isErr {
			c.streaming = "replication"
			call.Extra.Set("streaming", "replication stream follows, not dissected")
		}
	case "MONITOR":
		if !isErr {
			c.streaming = "monitor"
			call.Extra.Set("streaming", "monitor feed follows, not dissected")
		}
	default:
		if c.multi && !isErr && m.typ == tSimple && len(m.items) > 0 && string(m.items[0].data) == "QUEUED" {
			call.Extra.Set("transaction", "queued")
			if len(c.queued) < c.lim.MaxPending {
				c.queued = append(c.queued, req)
				return
			}
			call.Extra.Set("transaction", "queued (too many to follow)")
		}
	}
	c.out.Emit(call)
}

// endTransaction emits the queued commands when EXEC, DISCARD or RESET
// answers: with their own status inside EXEC's reply, or as never run.
func (c *conn) endTransaction(cmd string, m *message) {
	why := ""
	switch {
	case cmd == "DISCARD" || cmd == "RESET":
		why = "discarded"
	case m.typ == tError || m.typ == tBlobError:
		why = "aborted: " + errorWord(m.items[0].data)
	case m.null:
		why = "aborted: a watched key changed"
	case !isAggregate(m.typ):
		why = "aborted"
	}
	for i, q := range c.queued {
		if why != "" {
			q.call.Extra.Set("transaction", why)
		} else {
			q.call.Extra.Set("transaction", "exec")
			if i < len(m.items) {
				if it := m.items[i]; it.typ == tError || it.typ == tBlobError {
					q.call.Status = errorWord(it.data)
				} else {
					q.call.Status = "OK"
				}
			} else {
				q.call.Status = "OK"
			}
		}
		c.out.Emit(q.call)
	}
	clear(c.queued)
	c.queued = c.queued[:0]
}

func replyName(m *message) string {
	switch {
	case m.null:
		return "null"
	case m.typ == tSimple:
		return "simple"
	case m.typ == tBulk:
		return "bulk"
	}
	return typeName(m.typ)
}

// setReplyBody shows the reply as read (the error's text for an error).
func (c *conn) setReplyBody(call *proto.Call, m *message) {
	call.Response.SetBody(bytes.Clone(m.body), c.lim.MaxBodyDisplay)
	call.Response.BodyTruncated = call.Response.BodyTruncated || m.bodyCut
}

// orphan emits a reply no captured command asked for.
func (c *conn) orphan(m *message) {
	call := &proto.Call{Proto: "redis", TS: m.start, Status: "OK"}
	if (m.typ == tError || m.typ == tBlobError) && len(m.items) > 0 {
		call.Status = errorWord(m.items[0].data)
	}
	call.Response.BodySize = m.size
	if !c.lim.Summary {
		c.setReplyBody(call, m)
	}
	call.Fail(proto.Orphan, "")
	c.out.Emit(call)
}

// badCommand handles bytes from the client that are not RESP: the command
// they cut is still answered (Redis replies with a protocol error).
func (c *conn) badCommand(why string, m *message) {
	call := &proto.Call{Proto: "redis", TS: m0(m)}
	if m != nil {
		call = c.newRequest(m).call
	}
	call.Fail(proto.Malformed, why[len("malformed: "):])
	c.hold(&request{call: call, end: call.TS, size: 256})
}

func m0(m *message) time.Time {
	if m == nil {
		return time.Time{}
	}
	return m.start
}

// badReply handles bytes from the server that are not RESP: the command
// waiting longest gets the reply they cut.
func (c *conn) badReply(why string, m *message) {
	req, ok := c.pending.TakeOldest()
	if !ok {
		call := &proto.Call{Proto: "redis", TS: m0(m)}
		call.Fail(proto.Malformed, why[len("malformed: "):])
		c.out.Emit(call)
		return
	}
	req.call.Fail(proto.Malformed, why[len("malformed: "):])
	if m != nil {
		req.call.Response.BodySize = m.size
		req.call.LatencyNS = proto.Latency(req.end, m.start)
	}
	c.out.Emit(req.call)
}

// Gap implements proto.StreamParser. Bytes missing inside a bulk string
// are counted and the message read on; otherwise the side looks for the
// next message, and the commands waiting when the server's bytes went
// missing are reported, as their replies may be among them.
func (c *conn) Gap(r proto.Role, n int) {
	i := idx(r)
	rd := &c.rd[i]
	if i == 1 && c.streaming != "" {
		return
	}
	if n >= 0 && rd.bulk-2 >= int64(n) && !rd.lost {
		rd.bulk -= int64(n)
		rd.m.size += int64(n)
		if rd.bulkItem >= 0 {
			rd.m.items[rd.bulkItem].cut = true
		}
		rd.m.bodyCut = true
		rd.m.missing += int64(n)
		return
	}
	what := "bytes"
	if n >= 0 {
		what = strconv.Itoa(n) + " bytes"
	}
	if i == 0 {
		if m := rd.partial(); m != nil {
			req := c.newRequest(m)
			req.call.Fail(proto.Truncated, what+" of the command missing from the capture")
			c.hold(req)
		}
		rd.lose()
		return
	}
	rd.lose()
	c.pending.Expire(time.Time{}, func(req *request) {
		req.call.Fail(proto.Truncated, "the reply may be among "+what+" missing from the capture")
		c.out.Emit(req.call)
	})
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	if reason == proto.EndMemory {
		c.out.Skipped(len(c.rd[0].line) + len(c.rd[1].line))
	}
	if m := c.rd[0].partial(); m != nil {
		req := c.newRequest(m)
		req.call.Fail(proto.Truncated, "connection "+reason.String()+" during the command")
		c.out.Emit(req.call)
	}
	if m := c.rd[1].partial(); m != nil && c.streaming == "" {
		if req, ok := c.pending.TakeOldest(); ok {
			req.call.Response.BodySize = m.size
			req.call.LatencyNS = proto.Latency(req.end, m.start)
			req.call.Fail(proto.Truncated, "connection "+reason.String()+" during the reply")
			c.out.Emit(req.call)
		}
	}
	why := reason.Why()
	if why == "" {
		why = "no response"
	}
	c.pending.Expire(time.Time{}, func(req *request) {
		if req.sub != "" && req.confirms > 0 {
			c.finishSub(req, 0)
			return
		}
		if req.call.Error == "" {
			if reason == proto.EndMemory {
				req.call.Fail(proto.Truncated, why+" before the reply")
			} else if why == "no response" {
				req.call.Fail(proto.Unanswered, "")
			} else {
				req.call.Fail(proto.Unanswered, why)
			}
		}
		c.out.Emit(req.call)
	})
	for _, q := range c.queued {
		q.call.Extra.Set("transaction", "never executed: connection "+reason.String())
		c.out.Emit(q.call)
	}
	c.queued = nil
	c.rd[0].reset()
	c.rd[1].reset()
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.pending.Kept() + 256*len(c.queued)
	for i := range c.rd {
		rd := &c.rd[i]
		n += cap(rd.line) + rd.kept + cap(rd.m.body) + cap(rd.m.items)*40 + cap(rd.stack)*24
	}
	return n
}
