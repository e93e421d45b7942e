package proto

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Call is one API call: a request and its response, matched.
//
// Method, Path and Status carry each protocol's natural equivalents: for DNS
// Method is the query type, Path the name and Status the rcode name. Status
// is empty when no response was seen, and Error then says why ("no
// response", "truncated", …). A response whose request was not captured has
// an empty Method and Error "no request".
type Call struct {
	// ID identifies the call within a dataset; it is derived from the flow
	// and the request time, so dissecting the same capture twice gives the
	// same IDs.
	ID string
	// Proto is the protocol's name ("http", "dns", …).
	Proto string
	// TS is when the request's first byte was captured (the response's when
	// there is no request).
	TS time.Time
	// LatencyNS is the time from the request's last byte to the response's
	// first byte; 0 when either is missing.
	LatencyNS int64
	// Src is the client, Dst the server.
	Src, Dst Endpoint
	Method   string
	Path     string
	Status   string
	Error    string
	// Problem is the kind of Error, typed (see Fail and ProblemKind); the
	// JSON record carries only Error.
	Problem  Problem
	Request  Message
	Response Message
	// Extra holds protocol-specific fields (HTTP version, DNS answers, …).
	Extra Extra
	// CapturedOn names the nodes whose agents captured the call (empty for
	// capture files): two when a call between pods on two nodes was seen
	// by both and counted once.
	CapturedOn []string
	// Via is the address the client sent the request to when it is not
	// Dst's: a Service's cluster IP, before the client's node translated it
	// to the pod's (DNAT), as the client's node captured it.
	Via netip.AddrPort
	// Merged counts the copies of the call merged into this one: captured
	// on other nodes, or on its node before its DNAT.
	Merged int
	// OneWay marks a message no answer is expected for (a pub/sub push, a
	// WebSocket message, a produce with acks=0): Request holds it when the
	// client sent it, Response when the server did. It is neither
	// unanswered nor an orphan (Outcome OneWay).
	OneWay bool
}

// Endpoint is one side of a call or flow, with its Kubernetes identity when
// known.
type Endpoint struct {
	IP        netip.Addr
	Port      uint16
	Pod       string
	Namespace string
	// Workload names what owns the pod (Deployment, StatefulSet, …).
	Workload string
	Service  string
	Node     string
	// Version is the pod's revision within its workload
	// (pod-template-hash, controller-revision-hash).
	Version string
}

// Message is the request or the response of a call.
type Message struct {
	Headers Headers
	// BodySize is the body's length as transferred (after removing chunked
	// framing, before content decoding), counting bytes not captured.
	BodySize int64
	// Body is the body for display: content-decoded (gzip, deflate) and cut
	// to the display limit. Empty when there is none or it was not captured.
	Body string
	// BodyEncoding is "base64" when Body holds binary data encoded so.
	BodyEncoding string
	// BodyTruncated is set when Body is shorter than the (decoded) body.
	BodyTruncated bool
}

// Header is one header field; names are lower case.
type Header struct {
	Name, Value string
}

// Headers keeps header fields in the order they were sent, one entry per
// name. It is encoded as a JSON object.
type Headers []Header

// Get returns the value of the named header (lower case name).
func (h Headers) Get(name string) string {
	for _, f := range h {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// SetBody stores b (already content-decoded) as the message's display body,
// cut to max bytes: as text when it is valid UTF-8 without control bytes,
// else base64. Text is kept without copying (a body is the largest part of
// a call, and copying every one doubles what a dissection allocates), so
// SetBody takes b over: the caller must not change b's bytes afterwards
// (appending beyond len(b) is fine).
func (m *Message) SetBody(b []byte, max int) {
	if len(b) > max {
		b = b[:max]
		// Do not cut a UTF-8 sequence in half.
		if i := lastRuneStart(b); i >= 0 && !utf8.FullRune(b[i:]) {
			b = b[:i]
		}
		m.BodyTruncated = true
	}
	if isText(b) {
		m.Body = ""
		if len(b) > 0 {
			m.Body = unsafe.String(&b[0], len(b))
		}
		m.BodyEncoding = ""
		return
	}
	m.Body = base64.StdEncoding.EncodeToString(b)
	m.BodyEncoding = "base64"
}

// lastRuneStart returns the index of the last byte that starts a rune among
// the final four, or -1.
func lastRuneStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return -1
}

// isText reports whether b is valid UTF-8 without control bytes other than
// tab, CR and LF. Runs of eight bytes without a control byte are checked at
// once.
func isText(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x-lsb*0x20)&^x&msb == 0 {
			continue
		}
		for _, c := range b[i : i+8] {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
				return false
			}
		}
	}
	for _, c := range b[i:] {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return utf8.Valid(b)
}

// AppendJSON appends the call as one line of JSON (no newline).
func (c *Call) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"proto":`...)
	b = appendString(b, c.Proto)
	b = append(b, `,"ts":`...)
	b = appendTime(b, c.TS)
	b = append(b, `,"latency_ns":`...)
	b = strconv.AppendInt(b, c.LatencyNS, 10)
	b = append(b, `,"src":`...)
	b = c.Src.AppendJSON(b)
	b = append(b, `,"dst":`...)
	b = c.Dst.AppendJSON(b)
	b = append(b, `,"method":`...)
	b = appendString(b, c.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, c.Path)
	b = append(b, `,"status":`...)
	if Described(c.Proto).TextStatus {
		b = appendString(b, c.Status)
	} else {
		b = appendStatus(b, c.Status)
	}
	b = append(b, `,"error":`...)
	b = appendString(b, c.Error)
	b = append(b, `,"request":`...)
	b = c.Request.appendJSON(b)
	b = append(b, `,"response":`...)
	b = c.Response.appendJSON(b)
	b = append(b, `,"extra":`...)
	b = c.Extra.AppendJSON(b)
	if len(c.CapturedOn) > 0 {
		b = append(b, `,"captured_on":[`...)
		for i, n := range c.CapturedOn {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, n)
		}
		b = append(b, ']')
	}
	if c.Via.IsValid() {
		b = append(b, `,"via":`...)
		b = appendString(b, c.Via.String())
	}
	if c.Merged > 0 {
		b = append(b, `,"merged":`...)
		b = strconv.AppendInt(b, int64(c.Merged), 10)
	}
	if c.OneWay {
		b = append(b, `,"one_way":true`...)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (c *Call) MarshalJSON() ([]byte, error) { return c.AppendJSON(nil), nil }

// UnmarshalJSON implements json.Unmarshaler.
func (c *Call) UnmarshalJSON(data []byte) error {
	var w struct {
		ID         string          `json:"id"`
		Proto      string          `json:"proto"`
		TS         time.Time       `json:"ts"`
		LatencyNS  int64           `json:"latency_ns"`
		Src        Endpoint        `json:"src"`
		Dst        Endpoint        `json:"dst"`
		Method     string          `json:"method"`
		Path       string          `json:"path"`
		Status     json.RawMessage `json:"status"`
		Error      string          `json:"error"`
		Request    Message         `json:"request"`
		Response   Message         `json:"response"`
		Extra      Extra           `json:"extra"`
		CapturedOn []string        `json:"captured_on"`
		Via        string          `json:"via"`
		Merged     int             `json:"merged"`
		OneWay     bool            `json:"one_way"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*c = Call{ID: w.ID, Proto: w.Proto, TS: w.TS, LatencyNS: w.LatencyNS, Src: w.Src, Dst: w.Dst,
		Method: w.Method, Path: w.Path, Error: w.Error, Problem: ProblemOf(w.Error), Request: w.Request, Response: w.Response, Extra: w.Extra,
		CapturedOn: w.CapturedOn, Merged: w.Merged, OneWay: w.OneWay}
	if w.Via != "" {
		via, err := netip.ParseAddrPort(w.Via)
		if err != nil {
			return fmt.Errorf("via: %w", err)
		}
		c.Via = via
	}
	s := strings.TrimSpace(string(w.Status))
	switch {
	case s == "" || s == "null":
	case s[0] == '"':
		if err := json.Unmarshal(w.Status, &c.Status); err != nil {
			return fmt.Errorf("status: %w", err)
		}
	default:
		c.Status = s
	}
	return nil
}

// AppendJSON appends the endpoint as a JSON object; identity fields that are
// unknown are left out.
func (e *Endpoint) AppendJSON(b []byte) []byte {
	b = append(b, `{"ip":`...)
	if e.IP.IsValid() {
		b = append(b, '"')
		b = e.IP.AppendTo(b)
		b = append(b, '"')
	} else {
		b = append(b, `""`...)
	}
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(e.Port), 10)
	b = appendOpt(b, "pod", e.Pod)
	b = appendOpt(b, "namespace", e.Namespace)
	b = appendOpt(b, "workload", e.Workload)
	b = appendOpt(b, "service", e.Service)
	b = appendOpt(b, "node", e.Node)
	b = appendOpt(b, "version", e.Version)
	return append(b, '}')
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *Endpoint) UnmarshalJSON(data []byte) error {
	var w struct {
		IP        string `json:"ip"`
		Port      uint16 `json:"port"`
		Pod       string `json:"pod"`
		Namespace string `json:"namespace"`
		Workload  string `json:"workload"`
		Service   string `json:"service"`
		Node      string `json:"node"`
		Version   string `json:"version"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*e = Endpoint{Port: w.Port, Pod: w.Pod, Namespace: w.Namespace, Workload: w.Workload, Service: w.Service, Node: w.Node,
		Version: w.Version}
	if w.IP != "" {
		ip, err := netip.ParseAddr(w.IP)
		if err != nil {
			return err
		}
		e.IP = ip
	}
	return nil
}

func (m *Message) appendJSON(b []byte) []byte {
	b = append(b, `{"headers":`...)
	b = m.Headers.AppendJSON(b)
	b = append(b, `,"body_size":`...)
	b = strconv.AppendInt(b, m.BodySize, 10)
	if m.Body != "" {
		b = append(b, `,"body":`...)
		b = appendString(b, m.Body)
	}
	b = appendOpt(b, "body_encoding", m.BodyEncoding)
	if m.BodyTruncated {
		b = append(b, `,"body_truncated":true`...)
	}
	return append(b, '}')
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Message) UnmarshalJSON(data []byte) error {
	var w struct {
		Headers       Headers `json:"headers"`
		BodySize      int64   `json:"body_size"`
		Body          string  `json:"body"`
		BodyEncoding  string  `json:"body_encoding"`
		BodyTruncated bool    `json:"body_truncated"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*m = Message(w)
	return nil
}

// AppendJSON appends the headers as a JSON object in their order.
func (h Headers) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, f := range h {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Name)
		b = append(b, ':')
		b = appendString(b, f.Value)
	}
	return append(b, '}')
}

// UnmarshalJSON reads a JSON object keeping the order of its fields.
func (h *Headers) UnmarshalJSON(data []byte) error {
	var out Headers
	null, err := decodeObject(data, "headers", func(key string, d *json.Decoder) error {
		var v string
		if err := d.Decode(&v); err != nil {
			return err
		}
		out = append(out, Header{Name: key, Value: v})
		return nil
	})
	_ = null // out stays nil for a JSON null
	if err == nil {
		*h = out
	}
	return err
}

// decodeObject reads the JSON object in data field by field, in order,
// calling field with each key and a decoder positioned at its value (which
// decodes numbers as json.Number). null reports a JSON null.
func decodeObject(data []byte, what string, field func(key string, d *json.Decoder) error) (null bool, err error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	t, err := d.Token()
	if err != nil {
		return false, err
	}
	if t == nil {
		return true, nil
	}
	if t != json.Delim('{') {
		return false, fmt.Errorf("%s: want an object, got %v", what, t)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			return false, err
		}
		if err := field(k.(string), d); err != nil {
			return false, fmt.Errorf("%s %q: %w", what, k, err)
		}
	}
	return false, nil
}

func appendOpt(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

// appendStatus writes a decimal status (HTTP 500) as a JSON number and any
// other status (DNS NXDOMAIN) as a string.
func appendStatus(b []byte, s string) []byte {
	if s == "" || len(s) > 9 {
		return appendString(b, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return appendString(b, s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return appendString(b, s)
	}
	return append(b, s...)
}

// TimeLayout is RFC 3339 with a fixed nine-digit fraction, so that
// timestamps sort as strings.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// appendTime writes t in TimeLayout, in UTC, as a JSON string. It formats
// the fixed-width fields directly: time.AppendFormat interprets its layout
// for every call, and this runs once per call and flow.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, TimeLayout)
		return append(b, '"')
	}
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond(), 9)
	return append(b, 'Z', '"')
}

// appendDigits appends v in decimal, zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

// Map returns the headers as a map.
func (h Headers) Map() map[string]string {
	m := make(map[string]string, len(h))
	for _, f := range h {
		m[f.Name] = f.Value
	}
	return m
}
