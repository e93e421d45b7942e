package nats

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	// maxPayload caps the payload a PUB, HPUB, MSG or HMSG may claim:
	// nats-server refuses a max_payload above 64 MiB (its default is 1 MiB).
	maxPayload = 64 << 20
	// holdFor is how long a one-way operation is held for an -ERR that
	// would name it.
	holdFor = time.Second
	// maxSidBytes bounds the subjects kept by subscription id (for UNSUB).
	maxSidBytes = 256 << 10
)

// What an operation waiting for something is.
type kind uint8

const (
	kConnect kind = iota
	kPub          // a client's PUB or HPUB
	kSub
	kUnsub
	kPing
	kReply // a client's PUB answering a delivered message (verbose: its +OK)
	kMsg   // a delivered MSG or HMSG with a reply subject
)

// op is an operation waiting: for its +OK/-ERR, its PONG, its reply, or an
// -ERR that would name it.
type op struct {
	call    *proto.Call
	kind    kind
	subject string
	reply   string
	end     time.Time // its last byte
	seq     uint64
	done    bool // emitted: the queues still holding it skip it
	inReq   bool // held in requests too (verbose mode)
	gap     bool // bytes of the side that would answer it were lost
	pending bool // CONNECT: not yet answered
}

// message is a PUB, HPUB, MSG or HMSG whose payload is being read.
type message struct {
	op      string
	subject string
	reply   string
	sid     string
	hdr     int64
	total   int64
	left    int64
	missing int64
	kept    []byte
	start   time.Time
}

// side is one direction's framing: control lines, then payloads.
type side struct {
	client   bool
	line     []byte
	inLine   bool
	overflow bool // the current line ran past the bound: skipped to its end
	lost     bool // resynchronising: lines are skipped until one starts an operation
	start    time.Time
	last     time.Time
	inMsg    bool
	m        message
}

type conn struct {
	out      proto.Emitter
	lim      proto.Limits
	side     [2]side
	seq      uint64
	verbose  bool
	info     proto.Extra
	infoTLS  bool
	closedBy string // the -ERR after which the server closes
	acks     proto.Pending[string, *op]
	recent   proto.Pending[string, *op]
	requests proto.Pending[string, *op]
	served   proto.Pending[string, *op]
	pings    proto.Pending[string, *op]
	sids     map[string]string
	sidBytes int
	switched bool
	handover []byte
	handAt   time.Time
}

// NewStream implements proto.StreamProtocol.
func (Protocol) NewStream(out proto.Emitter, lim *proto.Limits) proto.StreamParser {
	var l proto.Limits
	if lim != nil {
		l = *lim
	}
	l = l.WithDefaults()
	c := &conn{out: out, lim: l}
	size := func(o *op) int {
		return 256 + len(o.subject) + len(o.reply) + len(o.call.Request.Body) + len(o.call.Response.Body) +
			32*len(o.call.Request.Headers) + 32*len(o.call.Response.Headers)
	}
	for _, p := range []*proto.Pending[string, *op]{&c.acks, &c.recent, &c.requests, &c.served, &c.pings} {
		*p = proto.Pending[string, *op]{Max: l.MaxPending, Size: size}
	}
	c.side[0].client = true
	return c
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// Feed implements proto.StreamParser.
func (c *conn) Feed(r proto.Role, data []byte, t time.Time) {
	if c.switched {
		return
	}
	s := &c.side[idx(r)]
	s.last = t
	c.flushRecent(t.Add(-holdFor))
	if s.client && c.infoTLS && !s.inLine && !s.inMsg && len(data) > 0 && data[0] == 0x16 {
		// The client starts the TLS handshake the server's INFO asked for.
		c.switched = true
		c.handover, c.handAt = bytes.Clone(data), t
		c.out.Upgrade(proto.SwitchTLS)
		return
	}
	for len(data) > 0 {
		if s.inMsg && s.m.left > 0 {
			n := min(int64(len(data)), s.m.left)
			if room := c.lim.MaxBodyCapture - len(s.m.kept); room > 0 && s.m.missing == 0 {
				s.m.kept = append(s.m.kept, data[:min(int64(room), n)]...)
			}
			s.m.left -= n
			data = data[n:]
			continue
		}
		if !s.inLine {
			s.inLine, s.start = true, t
		}
		i := bytes.IndexByte(data, '\n')
		chunk := data
		if i >= 0 {
			chunk = data[:i]
		}
		if i >= 0 && i <= c.lim.MaxHeaderBytes && len(s.line) == 0 && !s.overflow {
			// The whole line is in data: no copy.
			data = data[i+1:]
			s.inLine = false
			c.line(s, bytes.TrimSuffix(chunk, []byte{'\r'}), t)
			continue
		}
		if i >= 0 {
			data = data[i+1:]
		} else {
			data = nil
		}
		switch {
		case s.overflow:
			c.out.Skipped(len(chunk))
		case len(s.line)+len(chunk) > c.lim.MaxHeaderBytes:
			c.out.Skipped(len(s.line) + len(chunk))
			s.overflow = true
			s.line = nil
			if !s.lost {
				c.malformed(s, "", "a line longer than "+strconv.Itoa(c.lim.MaxHeaderBytes)+" bytes")
			}
		default:
			s.line = append(s.line, chunk...)
		}
		if i < 0 {
			break
		}
		s.inLine = false
		if s.overflow {
			s.overflow = false
			continue
		}
		line := bytes.TrimSuffix(s.line, []byte{'\r'})
		c.line(s, line, t)
		if cap(s.line) > 4096 {
			s.line = nil
		} else {
			s.line = s.line[:0]
		}
	}
}

// HandOver implements proto.HandingOver: the TLS handshake's first bytes.
func (c *conn) HandOver() proto.Handover {
	h := proto.Handover{Chunks: []proto.Chunk{{Role: proto.Client, Data: c.handover, T: c.handAt}}}
	c.handover = nil
	return h
}

// fields splits a control line's arguments (spaces and tabs), up to len(f).
func fields(b []byte, f *[6][]byte) (n int, ok bool) {
	for {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			b = b[1:]
		}
		if len(b) == 0 {
			return n, true
		}
		if n == len(f) {
			return n, false
		}
		i := bytes.IndexAny(b, " \t")
		if i < 0 {
			i = len(b)
		}
		f[n] = b[:i]
		n++
		b = b[i:]
	}
}

// knownOp reports whether word is an operation the side may send.
func knownOp(client bool, word []byte) bool {
	ops := serverOps
	if client {
		ops = clientOps
	}
	for _, o := range ops {
		if bytes.EqualFold(word, []byte(o)) {
			return true
		}
	}
	return false
}

var (
	clientOps = []string{"CONNECT", "PUB", "HPUB", "SUB", "UNSUB", "PING", "PONG"}
	serverOps = []string{"INFO", "MSG", "HMSG", "PING", "PONG", "+OK", "-ERR"}
)

// line handles one control line (without its CRLF) side s sent.
func (c *conn) line(s *side, line []byte, t time.Time) {
	if s.inMsg {
		// The CRLF after a payload.
		s.inMsg = false
		if len(line) != 0 {
			c.deliver(s, t, "a payload longer than its stated "+strconv.FormatInt(s.m.total, 10)+" bytes")
			c.lose(s, "the answer may be among the bytes skipped after a malformed message")
			return
		}
		c.deliver(s, t, "")
		return
	}
	word, rest := line, []byte(nil)
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		word, rest = line[:i], line[i+1:]
	}
	if len(line) == 0 {
		return // nats-server reads on past an empty line
	}
	if s.lost {
		if !knownOp(s.client, word) {
			c.out.Skipped(len(line) + 1)
			return
		}
		s.lost = false
	}
	var f [6][]byte
	n, ok := fields(rest, &f)
	op := strings.ToUpper(string(word))
	if !knownOp(s.client, word) {
		what := "an unknown operation"
		switch {
		case knownOp(!s.client, word) && s.client:
			what = "a " + op + " from the client"
		case knownOp(!s.client, word):
			what = "a " + op + " from the server"
		}
		c.malformed(s, "", what)
		return
	}
	if !ok && op != "CONNECT" && op != "INFO" && op != "-ERR" {
		c.malformed(s, op, "too many arguments")
		return
	}
	switch op {
	case "CONNECT":
		c.connect(s, rest, t)
	case "INFO":
		c.readInfo(rest)
	case "PUB", "HPUB", "MSG", "HMSG":
		c.startMsg(s, op, f[:n], t)
	case "SUB":
		c.sub(s, f[:n], t)
	case "UNSUB":
		c.unsub(s, f[:n], t)
	case "PING":
		c.ping(s, t)
	case "PONG":
		c.pong(s, t)
	case "+OK":
		c.ok(s)
	case "-ERR":
		c.serverErr(s, rest)
	}
}

// parseSize reads a payload size: decimal digits, at most maxPayload.
func parseSize(b []byte) (int64, string) {
	if len(b) == 0 || len(b) > 19 {
		if len(b) > 19 && allDigits(b) {
			return 0, "a payload of " + string(b[:19]) + "… bytes claimed"
		}
		return 0, "a size that is not a number"
	}
	if !allDigits(b) {
		return 0, "a size that is not a number"
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil || v > maxPayload {
		return 0, "a payload of " + string(b) + " bytes claimed, above the 64 MiB any server allows"
	}
	return int64(v), ""
}

func allDigits(b []byte) bool {
	for _, d := range b {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// startMsg reads a PUB, HPUB, MSG or HMSG line; its payload follows.
func (c *conn) startMsg(s *side, op string, f [][]byte, t time.Time) {
	m := message{op: op, kept: s.m.kept[:0], start: s.start}
	if cap(m.kept) > c.lim.MaxBodyCapture {
		m.kept = nil
	}
	var sizes [][]byte
	fixed := 1 // PUB subj [reply] n
	if op == "MSG" || op == "HMSG" {
		fixed = 2
	}
	nsizes := 1
	if op[0] == 'H' {
		nsizes = 2
	}
	switch len(f) {
	case fixed + nsizes:
	case fixed + nsizes + 1:
		m.reply = string(f[fixed])
	default:
		c.malformed(s, op, "an "+op+" with "+strconv.Itoa(len(f))+" arguments")
		return
	}
	m.subject = string(f[0])
	if fixed == 2 {
		m.sid = string(f[1])
	}
	sizes = f[len(f)-nsizes:]
	var why string
	if nsizes == 2 {
		m.hdr, why = parseSize(sizes[0])
		if why == "" {
			m.total, why = parseSize(sizes[1])
		}
		if why == "" && m.hdr > m.total {
			why = "a header block larger than the message"
		}
	} else {
		m.total, why = parseSize(sizes[0])
	}
	if why != "" {
		c.malformed(s, op, why)
		return
	}
	m.left = m.total
	s.m, s.inMsg = m, true
}

// msgOf builds the message part of a call from a payload read.
func (c *conn) msgOf(m *message) (msg proto.Message, status string) {
	kept := m.kept
	hdrKept := kept[:min(int64(len(kept)), m.hdr)]
	payload := kept[len(hdrKept):]
	msg.BodySize = m.total - m.hdr
	if m.hdr > 0 {
		var hs proto.Headers
		hs, status = parseHeaders(hdrKept, int64(len(hdrKept)) < m.hdr)
		if !c.lim.Summary {
			msg.Headers = hs
		}
	}
	if !c.lim.Summary && msg.BodySize > 0 {
		p := payload[:min(len(payload), c.lim.MaxBodyDisplay+1)]
		msg.SetBody(bytes.Clone(p), c.lim.MaxBodyDisplay)
		msg.BodyTruncated = msg.BodyTruncated || int64(len(payload)) < msg.BodySize
	}
	return msg, status
}

// parseHeaders reads a NATS/1.0 header block; status is its status line's
// code and description ("503", "408 Request Timeout").
func parseHeaders(b []byte, cut bool) (hs proto.Headers, status string) {
	first := true
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\r\n"))
		line := b
		if i >= 0 {
			line, b = b[:i], b[i+2:]
		} else {
			if cut {
				break // the rest of the line was not kept
			}
			b = nil
		}
		if first {
			first = false
			if v, ok := bytes.CutPrefix(line, []byte("NATS/")); ok {
				if j := bytes.IndexAny(v, " \t"); j >= 0 {
					status = strings.TrimSpace(string(v[j+1:]))
				}
				continue
			}
		}
		if len(line) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(hs) >= 64 {
			continue
		}
		name := strings.ToLower(strings.TrimSpace(string(k)))
		val := strings.TrimSpace(string(v))
		found := false
		for j := range hs {
			if hs[j].Name == name {
				hs[j].Value += ", " + val
				found = true
				break
			}
		}
		if !found {
			hs = append(hs, proto.Header{Name: name, Value: val})
		}
	}
	return hs, status
}

// deliver handles a message whose payload has been read (or cut: why).
func (c *conn) deliver(s *side, t time.Time, why string) {
	m := &s.m
	msg, hstatus := c.msgOf(m)
	problem := func(call *proto.Call) {
		switch {
		case why != "":
			call.Fail(proto.Malformed, why)
		case m.missing > 0:
			call.Fail(proto.Truncated, strconv.FormatInt(m.missing, 10)+" bytes of the payload missing from the capture")
		}
	}
	if cap(m.kept) > c.lim.MaxBodyCapture {
		m.kept = nil
	}
	if s.client {
		c.publish(m, msg, t, problem)
	} else {
		c.delivered(m, msg, hstatus, t, problem)
	}
	m.kept = m.kept[:0]
}

func (c *conn) newCall(method, path string, ts time.Time) *proto.Call {
	return &proto.Call{Proto: "nats", TS: ts, Method: method, Path: path, Extra: make(proto.Extra, 0, 6)}
}

// publish handles a client's PUB or HPUB.
func (c *conn) publish(m *message, msg proto.Message, t time.Time, problem func(*proto.Call)) {
	c.seq++
	if c.served.Len() > 0 {
		if o, ok := c.served.Take(m.subject, notDone); ok {
			// The answer to a message delivered with this reply subject.
			o.call.Response = msg
			o.call.LatencyNS = proto.Latency(o.end, m.start)
			o.call.Status = "OK"
			if m.hdr > 0 {
				o.call.Extra.Set("reply_header_size", m.hdr)
			}
			problem(o.call)
			c.finish(o)
			if c.verbose {
				reply := c.newCall(m.op, m.subject, m.start)
				reply.Request = msg
				c.hold(&c.acks, "", &op{call: reply, kind: kReply, subject: m.subject, end: t, seq: c.seq})
			}
			return
		}
	}
	call := c.newCall(m.op, m.subject, m.start)
	call.Request = msg
	if m.reply != "" {
		call.Extra.Set("reply_to", m.reply)
	}
	if m.hdr > 0 {
		call.Extra.Set("header_size", m.hdr)
	}
	problem(call)
	o := &op{call: call, kind: kPub, subject: m.subject, reply: m.reply, end: t, seq: c.seq}
	if m.reply != "" {
		o.inReq = true
		c.hold(&c.requests, m.reply, o)
	}
	switch {
	case c.verbose:
		c.hold(&c.acks, "", o)
	case m.reply == "":
		c.hold(&c.recent, "", o)
	}
}

func notDone(o *op) bool { return !o.done }

// delivered handles a server's MSG or HMSG.
func (c *conn) delivered(m *message, msg proto.Message, hstatus string, t time.Time, problem func(*proto.Call)) {
	c.serverWentOn(m.start)
	if c.requests.Len() > 0 {
		if o, ok := c.requests.Take(m.subject, notDone); ok {
			call := o.call
			call.Response = msg
			call.LatencyNS = proto.Latency(o.end, m.start)
			call.Status = "OK"
			if strings.HasPrefix(hstatus, "503") {
				call.Status = StatusNoResponders
			}
			if hstatus != "" {
				call.Extra.Set("reply_status", hstatus)
			}
			if m.op == "HMSG" {
				call.Extra.Set("reply_header_size", m.hdr)
			}
			if call.Error == "" {
				problem(call)
			}
			c.finish(o)
			return
		}
	}
	call := c.newCall(m.op, m.subject, m.start)
	call.Extra.Set("sid", m.sid)
	if m.reply != "" {
		call.Extra.Set("reply_to", m.reply)
	}
	if m.hdr > 0 {
		call.Extra.Set("header_size", m.hdr)
	}
	if hstatus != "" {
		call.Extra.Set("header_status", hstatus)
	}
	call.Extra.Set("direction", "server→client")
	problem(call)
	if m.reply != "" && call.Error == "" {
		// A request for this client to answer.
		call.Request = msg
		c.hold(&c.served, m.reply, &op{call: call, kind: kMsg, subject: m.subject, reply: m.reply, end: t})
		return
	}
	call.Response = msg
	call.OneWay = call.Error == ""
	c.out.Emit(call)
}

// serverWentOn answers a CONNECT waiting: the server carried on.
func (c *conn) serverWentOn(t time.Time) {
	for {
		o, ok := c.acks.Oldest()
		if !ok || !(o.done || o.kind == kConnect) {
			return
		}
		c.acks.TakeOldest()
		if !o.done {
			o.call.Status = "OK"
			o.call.LatencyNS = proto.Latency(o.end, t)
			c.finish(o)
		}
	}
}

// finish emits an operation's call once.
func (c *conn) finish(o *op) {
	if o.done {
		return
	}
	o.done = true
	if o.kind == kReply {
		return
	}
	c.out.Emit(o.call)
}

// hold queues o; a queue full gives up its oldest.
func (c *conn) hold(p *proto.Pending[string, *op], key string, o *op) {
	old, full := p.Add(key, o.call.TS, o)
	if !full || old.done {
		return
	}
	switch p {
	case &c.recent:
		old.call.OneWay = old.call.Error == ""
	case &c.served:
		old.call.Response, old.call.Request = old.call.Request, proto.Message{}
		old.call.OneWay = old.call.Error == ""
	default:
		if old.call.Error == "" {
			old.call.Fail(proto.Unanswered, "more than "+strconv.Itoa(c.lim.MaxPending)+" operations waiting for answers")
		}
	}
	c.finish(old)
}

// flushRecent emits the one-way operations held since before t.
func (c *conn) flushRecent(t time.Time) {
	for {
		o, ok := c.recent.Oldest()
		if !ok || (!o.done && !o.call.TS.Before(t)) {
			return
		}
		c.recent.TakeOldest()
		if !o.done {
			o.call.OneWay = o.call.Error == ""
			c.finish(o)
		}
	}
}

// connect handles a CONNECT: its JSON, secrets redacted, is the body.
func (c *conn) connect(s *side, js []byte, t time.Time) {
	c.seq++
	call := c.newCall("CONNECT", "", s.start)
	call.Request.BodySize = int64(len(js))
	body, fields, ok := redactConnect(js)
	if !ok {
		call.Fail(proto.Malformed, "a CONNECT whose JSON does not parse")
	} else {
		name, _ := fields["name"].(string)
		call.Path = name
		for _, k := range []string{"name", "lang", "version", "protocol", "verbose", "pedantic", "headers", "no_responders", "echo", "tls_required", "user"} {
			v, present := fields[k]
			if !present {
				continue
			}
			key := k
			switch k {
			case "name":
				key = "client_name"
			case "version":
				key = "client_version"
			case "tls_required":
				key = "client_tls_required"
			}
			call.Extra.Set(key, v)
		}
		if v, _ := fields["verbose"].(bool); v {
			c.verbose = true
		}
		if auth := authOf(fields); auth != "" {
			call.Extra.Set("auth", auth)
		}
		if !c.lim.Summary {
			call.Request.SetBody(body, c.lim.MaxBodyDisplay)
		}
	}
	for _, f := range c.info {
		call.Extra.Set(f.Key, f.Value)
	}
	c.hold(&c.acks, "", &op{call: call, kind: kConnect, end: t, seq: c.seq, pending: true})
}

// secretKeys are CONNECT fields never kept.
var secretKeys = map[string]bool{"pass": true, "auth_token": true, "sig": true, "jwt": true}

// authOf names how a CONNECT authenticates.
func authOf(f map[string]any) string {
	switch {
	case f["jwt"] != nil:
		return "jwt"
	case f["nkey"] != nil:
		return "nkey"
	case f["auth_token"] != nil:
		return "token"
	case f["user"] != nil || f["pass"] != nil:
		return "user/password"
	}
	return ""
}

// redactConnect rewrites a CONNECT's JSON object with the secrets'
// values "[redacted]", in its order, and returns its fields' values (the
// secrets' as "[redacted]").
func redactConnect(js []byte) (body []byte, fields map[string]any, ok bool) {
	d := json.NewDecoder(bytes.NewReader(js))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	fields = map[string]any{}
	body = append(body, '{')
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := tok.(string)
		var raw json.RawMessage
		if err := d.Decode(&raw); err != nil {
			return nil, nil, false
		}
		if len(body) > 1 {
			body = append(body, ',')
		}
		kj, _ := json.Marshal(k)
		body = append(append(body, kj...), ':')
		if secretKeys[k] {
			body = append(body, `"[redacted]"`...)
			fields[k] = "[redacted]"
			continue
		}
		body = append(body, raw...)
		var v any
		if json.Unmarshal(raw, &v) == nil {
			switch v.(type) {
			case string, bool, float64:
				fields[k] = v
			}
		}
	}
	if _, err := d.Token(); err != nil {
		return nil, nil, false
	}
	return append(body, '}'), fields, true
}

// readInfo keeps what the server's INFO says of itself, for the CONNECT.
func (c *conn) readInfo(js []byte) {
	var info struct {
		ServerName   string `json:"server_name"`
		Version      string `json:"version"`
		Go           string `json:"go"`
		MaxPayload   *int64 `json:"max_payload"`
		Headers      *bool  `json:"headers"`
		AuthRequired bool   `json:"auth_required"`
		TLSRequired  bool   `json:"tls_required"`
		TLSAvailable bool   `json:"tls_available"`
		Proto        *int   `json:"proto"`
	}
	if json.Unmarshal(js, &info) != nil {
		return
	}
	var x proto.Extra
	if info.ServerName != "" {
		x.Set("server_name", info.ServerName)
	}
	if info.Version != "" {
		x.Set("server_version", info.Version)
	}
	if info.Go != "" {
		x.Set("server_go", info.Go)
	}
	if info.MaxPayload != nil {
		x.Set("max_payload", *info.MaxPayload)
	}
	if info.Headers != nil {
		x.Set("server_headers", *info.Headers)
	}
	if info.Proto != nil {
		x.Set("server_proto", *info.Proto)
	}
	x.Set("auth_required", info.AuthRequired)
	x.Set("tls_required", info.TLSRequired)
	if info.TLSAvailable {
		x.Set("tls_available", true)
	}
	c.info = x
	c.infoTLS = info.TLSRequired
}

// sub handles a SUB: subject [queue] sid.
func (c *conn) sub(s *side, f [][]byte, t time.Time) {
	if len(f) != 2 && len(f) != 3 {
		c.malformed(s, "SUB", "a SUB with "+strconv.Itoa(len(f))+" arguments")
		return
	}
	c.seq++
	call := c.newCall("SUB", string(f[0]), s.start)
	sid := string(f[len(f)-1])
	call.Extra.Set("sid", sid)
	if len(f) == 3 {
		call.Extra.Set("queue", string(f[1]))
	}
	if _, ok := c.sids[sid]; !ok && c.sidBytes+len(sid)+len(call.Path)+64 <= maxSidBytes {
		if c.sids == nil {
			c.sids = map[string]string{}
		}
		c.sids[sid] = call.Path
		c.sidBytes += len(sid) + len(call.Path) + 64
	}
	c.oneWayOrAck(&op{call: call, kind: kSub, subject: call.Path, end: t, seq: c.seq})
}

// unsub handles an UNSUB: sid [max_msgs].
func (c *conn) unsub(s *side, f [][]byte, t time.Time) {
	if len(f) != 1 && len(f) != 2 {
		c.malformed(s, "UNSUB", "an UNSUB with "+strconv.Itoa(len(f))+" arguments")
		return
	}
	c.seq++
	sid := string(f[0])
	subject := c.sids[sid]
	call := c.newCall("UNSUB", subject, s.start)
	call.Extra.Set("sid", sid)
	if len(f) == 2 {
		if n, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
			call.Extra.Set("max_msgs", n)
		}
	} else if _, ok := c.sids[sid]; ok {
		delete(c.sids, sid)
		c.sidBytes -= len(sid) + len(subject) + 64
	}
	c.oneWayOrAck(&op{call: call, kind: kUnsub, subject: subject, end: t, seq: c.seq})
}

// oneWayOrAck holds a client operation: for its +OK in verbose mode, else
// for an -ERR that would name it.
func (c *conn) oneWayOrAck(o *op) {
	if c.verbose {
		c.hold(&c.acks, "", o)
	} else {
		c.hold(&c.recent, "", o)
	}
}

// ping handles a PING from either side.
func (c *conn) ping(s *side, t time.Time) {
	call := c.newCall("PING", "", s.start)
	if s.client {
		c.seq++
		c.hold(&c.acks, "", &op{call: call, kind: kPing, end: t, seq: c.seq})
		return
	}
	call.Extra.Set("direction", "server→client")
	c.hold(&c.pings, "", &op{call: call, kind: kPing, end: t})
}

// pong answers the other side's oldest PING.
func (c *conn) pong(s *side, t time.Time) {
	if s.client {
		if o, ok := c.takeOldest(&c.pings, nil); ok {
			o.call.Status = "OK"
			o.call.LatencyNS = proto.Latency(o.end, s.start)
			c.finish(o)
			return
		}
		c.orphan(s, "PONG")
		return
	}
	c.serverWentOn(s.start)
	o, ok := c.takeOldest(&c.acks, func(o *op) bool { return o.kind == kPing })
	if !ok {
		c.orphan(s, "PONG")
		return
	}
	// The server read every operation before the PING without an -ERR.
	for {
		r, ok := c.recent.Oldest()
		if !ok || r.seq > o.seq {
			break
		}
		c.recent.TakeOldest()
		if !r.done {
			r.call.OneWay = r.call.Error == ""
			c.finish(r)
		}
	}
	o.call.Status = "OK"
	o.call.LatencyNS = proto.Latency(o.end, s.start)
	c.finish(o)
}

// takeOldest takes the oldest operation not yet emitted that match
// accepts (nil: any).
func (c *conn) takeOldest(p *proto.Pending[string, *op], match func(*op) bool) (*op, bool) {
	for {
		o, ok := p.Oldest()
		if !ok {
			return nil, false
		}
		if o.done {
			p.TakeOldest()
			continue
		}
		if match == nil || match(o) {
			p.TakeOldest()
			return o, true
		}
		break
	}
	o, ok := p.Take("", func(o *op) bool { return !o.done && match(o) })
	return o, ok
}

// ok handles a +OK: the answer of the oldest operation waiting (verbose
// mode).
func (c *conn) ok(s *side) {
	o, ok := c.takeOldest(&c.acks, func(o *op) bool { return o.kind != kPing })
	if !ok {
		c.orphan(s, "+OK")
		return
	}
	if o.kind == kReply {
		o.done = true
		return
	}
	if o.inReq {
		// The request still waits for its reply.
		return
	}
	o.call.Status = "OK"
	o.call.LatencyNS = proto.Latency(o.end, s.start)
	c.finish(o)
}

// orphan reports an answer nothing waited for.
func (c *conn) orphan(s *side, what string) {
	call := c.newCall("", "", s.start)
	call.Status = "OK"
	call.Extra.Set("packet", what)
	call.Fail(proto.Orphan, "")
	c.out.Emit(call)
}

// errText is an -ERR's text without its quotes.
func errText(b []byte) string {
	t := strings.TrimSpace(string(b))
	if len(t) >= 2 && t[0] == '\'' && t[len(t)-1] == '\'' {
		t = t[1 : len(t)-1]
	}
	if len(t) > 512 {
		t = t[:512]
	}
	return strings.ToValidUTF8(t, "\uFFFD")
}

// violation reads a Permissions Violation's subject and what it names:
// kPub (publish), kSub (subscription), or kPub with byReply (a reply
// subject refused).
func violation(text string) (subject string, k kind, byReply, ok bool) {
	for _, v := range []struct {
		prefix string
		k      kind
		reply  bool
	}{{"Permissions Violation for Publish with Reply of ", kPub, true},
		{"Permissions Violation for Publish to ", kPub, false},
		{"Permissions Violation for Subscription to ", kSub, false}} {
		rest, found := strings.CutPrefix(text, v.prefix)
		if !found {
			continue
		}
		if s, err := strconv.QuotedPrefix(rest); err == nil {
			if u, err := strconv.Unquote(s); err == nil {
				return u, v.k, v.reply, true
			}
		}
		return strings.Fields(rest + " x")[0], v.k, v.reply, true
	}
	return "", 0, false, false
}

// asyncErr: errors about the connection, never the answer to one
// operation.
func asyncErr(text string) bool {
	for _, p := range []string{"Stale Connection", "Slow Consumer", "Authentication Timeout", "Authentication Expired",
		"User Authentication Revoked", "Account Authentication Expired", "Server Shutdown"} {
		if strings.HasPrefix(text, p) {
			return true
		}
	}
	return false
}

// fatalErr: errors after which the server closes the connection.
func fatalErr(text string) bool {
	if strings.HasPrefix(text, "Permissions Violation") || strings.HasPrefix(text, "Invalid Subject") ||
		strings.HasPrefix(text, "Invalid Publish Subject") {
		return false
	}
	return true
}

// serverErr handles an -ERR: the answer to the CONNECT waiting, to the
// operation it names, to the oldest waiting in verbose mode, or a one-way
// record.
func (c *conn) serverErr(s *side, b []byte) {
	text := errText(b)
	if fatalErr(text) {
		c.closedBy = text
	}
	answer := func(o *op) {
		if o.done {
			return
		}
		o.call.Status = text
		o.call.LatencyNS = proto.Latency(o.end, s.start)
		o.call.OneWay = false
		c.finish(o)
	}
	if o, ok := c.acks.Oldest(); ok && o.kind == kConnect && !o.done {
		c.acks.TakeOldest()
		answer(o)
		return
	}
	if subj, k, byReply, ok := violation(text); ok {
		if o := c.latest(subj, k, byReply); o != nil {
			if o.kind == kReply {
				o.call.Status = text
				o.done = true
				c.out.Emit(o.call)
				return
			}
			answer(o)
			return
		}
	}
	if c.verbose && !asyncErr(text) {
		if o, ok := c.takeOldest(&c.acks, func(o *op) bool { return o.kind != kPing }); ok {
			if o.kind == kReply {
				o.call.Status = text
				o.done = true
				c.out.Emit(o.call)
				return
			}
			answer(o)
			return
		}
	}
	if strings.HasPrefix(text, "Maximum Payload Violation") {
		if o := c.latest("", kPub, false); o != nil {
			answer(o)
			return
		}
	}
	call := c.newCall("-ERR", "", s.start)
	call.Status = text
	call.Extra.Set("direction", "server→client")
	call.OneWay = true
	c.out.Emit(call)
}

// latest finds the latest operation of kind k not yet answered on subject
// (any subject when empty; the reply subject when byReply).
func (c *conn) latest(subject string, k kind, byReply bool) *op {
	var best *op
	for _, p := range []*proto.Pending[string, *op]{&c.recent, &c.requests, &c.acks} {
		for o := range p.All() {
			if o.done || (o.kind != k && !(k == kPub && o.kind == kReply)) {
				continue
			}
			if subject != "" && ((byReply && o.reply != subject) || (!byReply && o.subject != subject)) {
				continue
			}
			if best == nil || o.seq > best.seq {
				best = o
			}
		}
	}
	return best
}

// malformed reports bytes that are not NATS: the side is lost until a
// line starts an operation.
func (c *conn) malformed(s *side, method, why string) {
	call := c.newCall(method, "", s.start)
	call.Fail(proto.Malformed, why)
	if !s.client {
		call.Extra.Set("direction", "server→client")
	}
	c.out.Emit(call)
	c.lose(s, "the answer may be among the bytes skipped after a malformed line")
}

// lose marks side s lost: what waits on it is reported.
func (c *conn) lose(s *side, why string) {
	s.lost = true
	s.inMsg = false
	s.inLine = false
	s.line = s.line[:0]
	cut := func(p *proto.Pending[string, *op]) {
		p.Expire(time.Time{}, func(o *op) {
			if o.done || o.kind == kReply {
				return
			}
			if o.call.Error == "" {
				o.call.Fail(proto.Truncated, why)
			}
			c.finish(o)
		})
	}
	mark := func(p *proto.Pending[string, *op]) {
		for o := range p.All() {
			o.gap = true
		}
	}
	if s.client {
		cut(&c.pings)
		mark(&c.served)
	} else {
		cut(&c.acks)
		mark(&c.requests)
	}
}

// Gap implements proto.StreamParser. Bytes missing inside a payload are
// counted and the message read on; otherwise the side is lost until a line
// starts an operation.
func (c *conn) Gap(r proto.Role, n int) {
	if c.switched {
		return
	}
	s := &c.side[idx(r)]
	if s.lost {
		return
	}
	if s.inMsg && s.m.left > 0 && n >= 0 && int64(n) <= s.m.left {
		s.m.left -= int64(n)
		s.m.missing += int64(n)
		return
	}
	what := "bytes"
	if n >= 0 {
		what = strconv.Itoa(n) + " bytes"
	}
	c.cutMsg(s, s.last)
	c.lose(s, "the answer may be among "+what+" missing from the capture")
}

// cutMsg ends a message whose payload will not all come.
func (c *conn) cutMsg(s *side, t time.Time) {
	if !s.inMsg {
		return
	}
	s.inMsg = false
	s.m.missing += max(s.m.left, 1)
	s.m.left = 0
	c.deliver(s, t, "")
}

// Expire implements proto.Expiring: requests unanswered since before
// deadline are reported, deliveries never answered become one-way, and the
// one-way operations held go out.
func (c *conn) Expire(deadline time.Time) {
	c.requests.Expire(deadline, func(o *op) {
		if o.done {
			return
		}
		if o.call.Error == "" {
			if o.gap {
				o.call.Fail(proto.Truncated, "no reply seen: it may be among bytes missing from the capture")
			} else {
				o.call.Fail(proto.Unanswered, "no reply within the request timeout")
			}
		}
		c.finish(o)
	})
	c.served.Expire(deadline, c.unanswered)
	c.pings.Expire(deadline, func(o *op) {
		if !o.done && o.call.Error == "" {
			o.call.Fail(proto.Unanswered, "no PONG within the request timeout")
		}
		c.finish(o)
	})
	c.flushRecent(deadline.Add(c.lim.StreamRequestTimeout - holdFor))
}

// unanswered emits a delivered message its client did not answer: one-way.
func (c *conn) unanswered(o *op) {
	if o.done {
		return
	}
	o.call.Response, o.call.Request = o.call.Request, proto.Message{}
	o.call.OneWay = o.call.Error == ""
	c.finish(o)
}

// End implements proto.StreamParser.
func (c *conn) End(reason proto.EndReason, t time.Time) {
	for i := range c.side {
		c.cutMsg(&c.side[i], t)
	}
	why := reason.Why()
	if c.closedBy != "" {
		why = "the server closed the connection after -ERR '" + c.closedBy + "'"
	}
	give := func(o *op) {
		if o.done || o.kind == kReply {
			return
		}
		if o.call.Error == "" {
			switch {
			case reason == proto.EndMemory:
				o.call.Fail(proto.Truncated, "connection ended early for memory bounds")
			case o.gap:
				o.call.Fail(proto.Truncated, "no reply seen: it may be among bytes missing from the capture")
			default:
				o.call.Fail(proto.Unanswered, why)
			}
		}
		c.finish(o)
	}
	c.flushRecent(t.Add(time.Hour))
	c.acks.Expire(time.Time{}, give)
	c.requests.Expire(time.Time{}, give)
	c.pings.Expire(time.Time{}, give)
	c.served.Expire(time.Time{}, c.unanswered)
	for i := range c.side {
		c.side[i].line, c.side[i].m.kept = nil, nil
	}
	c.sids, c.sidBytes = nil, 0
}

// Buffered implements proto.Buffering.
func (c *conn) Buffered() int {
	n := c.acks.Kept() + c.recent.Kept() + c.requests.Kept() + c.served.Kept() + c.pings.Kept() + c.sidBytes + len(c.handover)
	for i := range c.side {
		n += cap(c.side[i].line) + cap(c.side[i].m.kept)
	}
	return n
}
