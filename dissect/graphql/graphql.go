// Package graphql dissects GraphQL operations carried in HTTP requests,
// over HTTP/1 and HTTP/2: a proto.Carried protocol the HTTP parsers ask
// about every request.
//
// A request is GraphQL when it is a GET whose query string holds a GraphQL
// document (?query=…) or a persisted query, a POST of application/graphql,
// or a POST of JSON whose object — or each object of an array: a batch —
// has a "query" string that reads as a GraphQL document, or an Apollo
// persisted-query hash. A JSON POST that proves to be something else (a
// search API's "query" holding SQL or a search expression) is left to HTTP
// unchanged.
//
// A call is an operation: Method is its type (query, mutation,
// subscription), Path its name, or its first root field when anonymous;
// Status is "ok", or "error" when the result carries errors — GraphQL
// answers them under HTTP 200 — or when the response is not a GraphQL
// result and its HTTP status is not a success; it is empty when the capture
// cut the result before saying which (status_from says why). Extra keeps
// the first error's extensions.code (error_code: "BAD_USER_INPUT",
// "UNAUTHENTICATED" …, which tells client errors from the server's), the
// root fields, the HTTP status, the errors (message, code and path, the
// first few), whether data came with them (partial), and a batch's index
// and size: a batch is one call per operation, each matched with its
// result by position.
//
// Bodies of any size are read as they arrive, keeping only the document,
// the operation's name and the errors (each up to a cap): variables and
// data are walked over. A compressed response is decoded from the first
// Limits.MaxBodyCapture bytes.
package graphql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Protocol is GraphQL.
type Protocol struct{}

// Name implements proto.Protocol.
func (Protocol) Name() string { return "graphql" }

// Describe implements proto.Describer.
func (Protocol) Describe() proto.Description {
	return proto.Description{Summary: "GraphQL operations over HTTP/1 and HTTP/2", Path: proto.PathText, Outcome: outcome}
}

// clientCodes are the error codes of common servers (Apollo, gqlgen,
// graphql-java, Hasura) that a client's request causes.
var clientCodes = map[string]bool{
	"BAD_USER_INPUT": true, "GRAPHQL_PARSE_FAILED": true, "GRAPHQL_VALIDATION_FAILED": true,
	"UNAUTHENTICATED": true, "FORBIDDEN": true, "PERSISTED_QUERY_NOT_FOUND": true,
	"PERSISTED_QUERY_NOT_SUPPORTED": true, "OPERATION_RESOLUTION_FAILURE": true, "BAD_REQUEST": true,
	"NOT_FOUND": true, "VALIDATION_FAILED": true, "ValidationError": true, "InvalidSyntax": true,
	"validation-failed": true, "parse-failed": true, "access-denied": true,
}

func outcome(c *proto.Call) proto.Outcome {
	if c.Status == "ok" {
		return proto.OK
	}
	if code, _ := c.Extra.Get("error_code").(string); clientCodes[code] {
		return proto.ClientError
	}
	// No code the client is known to cause: a 3xx or 4xx says the request
	// was refused (graphql-response+json's parse and validation errors,
	// a login redirect), anything else is the server's.
	if n, ok := c.Extra.Get("http_status").(int64); ok && n >= 300 && n < 500 {
		return proto.ClientError
	}
	return proto.ServerError
}

// Caps of what a carriage keeps.
const (
	maxDocument  = 64 << 10 // a document, from a JSON string or a raw body
	maxName      = 1 << 10  // an operationName
	maxExtension = 4 << 10  // a request's extensions (persisted query)
	maxErrors    = 16 << 10 // a result's errors
	shownErrors  = 5        // errors listed in a call
)

// request keys and result keys the scanners keep.
const (
	keyQuery = iota
	keyName
	keyExtensions
)

const (
	keyErrors = iota
	keyData
)

// Carry implements proto.Carried.
func (Protocol) Carry(carrier, method, target string, h proto.Headers, lim *proto.Limits) proto.Carriage {
	if carrier != "http" && carrier != "http2" {
		return nil
	}
	// Every HTTP request is asked: nothing is allocated until one is
	// taken.
	switch method {
	case "GET":
		_, rawQuery, ok := strings.Cut(target, "?")
		if !ok || !strings.Contains(rawQuery, "query=") && !strings.Contains(rawQuery, "extensions=") {
			return nil // most GETs: no parsing
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil && len(q) == 0 {
			return nil
		}
		op := request{name: q.Get("operationName")}
		if doc := q.Get("query"); doc != "" {
			var ok bool
			if op.op, op.ops, ok = parseDocument(doc, op.name); !ok {
				return nil
			}
		} else if op.persisted = persistedHash([]byte(q.Get("extensions"))); op.persisted == "" {
			return nil
		}
		return &carriage{lim: lim, requests: []request{op}, fromURL: true}
	case "POST":
		ct := mediaType(h.Get("content-type"))
		var c *carriage
		switch {
		case ct == "application/graphql":
			c = &carriage{lim: lim, rawDocument: true}
		case ct == "application/json" || strings.HasSuffix(ct, "+json") ||
			ct == "" && strings.Contains(strings.ToLower(target), "graphql"):
			c = &carriage{lim: lim}
			c.side[0].sc = newScanner(keyCap{"query", maxDocument}, keyCap{"operationName", maxName},
				keyCap{"extensions", maxExtension})
		default:
			return nil
		}
		c.side[0].encoding = lowerEncoding(h.Get("content-encoding"))
		return c
	}
	return nil
}

// mediaType is a content type's type/subtype, lower case.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func lowerEncoding(e string) string {
	e = strings.ToLower(strings.TrimSpace(e))
	if e == "identity" {
		return ""
	}
	return e
}

// carriage follows one HTTP exchange that may carry GraphQL.
type carriage struct {
	lim *proto.Limits
	// fromURL: the operation came with a GET's query string.
	fromURL bool
	// rawDocument: the request body is the document (application/graphql).
	rawDocument bool
	requests    []request
	side        [2]body // the request's, the response's
	notJSON     bool    // the response is not JSON
}

// request is an operation a request asked for.
type request struct {
	op        operation
	ops       int    // operations in its document
	name      string // the operationName sent
	persisted string // a persisted query's hash
	cut       bool   // the document was cut (capture, or the cap)
}

// body reads one side's body: through a scanner as it arrives, or, when
// it is compressed or a raw document, kept up to the capture limit and
// read at the end.
type body struct {
	encoding string
	sc       *scanner
	kept     []byte
	cut      bool // kept lost bytes: the cap, or a gap
}

func (c *carriage) Headers(r proto.Role, h proto.Headers) {
	if r != proto.Server || c.side[1].sc != nil || c.notJSON {
		return
	}
	if c.ruledOut() {
		c.notJSON = true // not GraphQL: the response need not be read
		return
	}
	ct := mediaType(h.Get("content-type"))
	if ct != "" && ct != "application/json" && !strings.HasSuffix(ct, "+json") {
		c.notJSON = true
		return
	}
	c.side[1].encoding = lowerEncoding(h.Get("content-encoding"))
	c.side[1].sc = newScanner(keyCap{"errors", maxErrors}, keyCap{"data", 8})
}

func (c *carriage) Body(r proto.Role, b []byte) {
	s := &c.side[0]
	if r == proto.Server {
		s = &c.side[1]
		if s.sc == nil {
			if c.notJSON {
				return
			}
			// No content type said otherwise: read it as JSON.
			c.Headers(proto.Server, nil)
		}
	}
	if s.encoding == "" && !(r == proto.Client && c.rawDocument) {
		if s.sc != nil {
			s.sc.write(b)
		}
		return
	}
	if s.cut {
		return
	}
	limit := c.lim.MaxBodyCapture
	if r == proto.Client && c.rawDocument && s.encoding == "" {
		limit = maxDocument
	}
	if room := limit - len(s.kept); len(b) > room {
		b, s.cut = b[:max(room, 0)], true
	}
	s.kept = append(s.kept, b...)
}

func (c *carriage) Gap(r proto.Role) {
	s := &c.side[0]
	if r == proto.Server {
		s = &c.side[1]
	}
	s.cut = true
	if s.sc != nil {
		s.sc.gap()
	}
}

// ruledOut reports whether the request, read whole as JSON, has no
// "query" and no "extensions" at all: a JSON API's, not GraphQL's.
func (c *carriage) ruledOut() bool {
	sc := c.side[0].sc
	if sc == nil || c.side[0].encoding != "" || !sc.done && !sc.failed {
		return false
	}
	for _, e := range sc.elements {
		if e.values[keyQuery] != nil || e.values[keyExtensions] != nil {
			return false
		}
	}
	return true
}

// Buffered implements proto.CarriedBuffering.
func (c *carriage) Buffered() int {
	n := 0
	for i := range c.side {
		n += cap(c.side[i].kept)
		if c.side[i].sc != nil {
			n += c.side[i].sc.buffered()
		}
	}
	return n
}

// elements reads what a side kept: a compressed body is decoded now.
func (c *carriage) elements(s *body) []element {
	if s.encoding != "" && s.sc != nil {
		// An encoding DecodeBody does not know leaves the bytes as they
		// are: they do not read as JSON, and the call says so.
		decoded, _ := proto.DecodeBody(s.kept, s.encoding, c.lim.MaxBodyCapture)
		s.sc.write(decoded)
		if s.cut {
			s.sc.gap()
		}
		s.kept = nil
	}
	if s.sc == nil {
		return nil
	}
	return s.sc.finish()
}

// readRequests reads the operations of a POST.
func (c *carriage) readRequests() {
	s := &c.side[0]
	if c.rawDocument {
		doc := s.kept
		if s.encoding != "" {
			doc, _ = proto.DecodeBody(doc, s.encoding, maxDocument)
		}
		r := request{cut: s.cut || len(doc) >= maxDocument}
		var ok bool
		if r.op, r.ops, ok = parseDocument(string(doc), ""); ok {
			c.requests = []request{r}
		}
		return
	}
	els := c.elements(s)
	for i, e := range els {
		if len(e.values[keyQuery]) == 0 && e.cut[keyQuery] && len(c.requests) > 0 {
			// The scanner's budget ran out in a batch: the rest are
			// counted, not read.
			s.sc.more += len(els) - i
			break
		}
		r := request{}
		if name, ok := jsonString(e.values[keyName], e.cut[keyName]); ok {
			r.name = name
		}
		r.persisted = persistedHash(e.values[keyExtensions])
		doc, ok := jsonString(e.values[keyQuery], e.cut[keyQuery])
		switch {
		case ok && doc != "":
			var isDoc bool
			if r.op, r.ops, isDoc = parseDocument(doc, r.name); !isDoc {
				c.requests = nil
				return // a "query" that is not GraphQL: not a GraphQL request
			}
			r.cut = e.cut[keyQuery]
		case r.persisted == "":
			c.requests = nil
			return
		}
		c.requests = append(c.requests, r)
	}
}

// result is what the server answered to one operation.
type result struct {
	errors   []gqlError
	errMore  bool // more errors than were read
	dataNull bool
	hasData  bool
	whole    bool
}

type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code any `json:"code"`
	} `json:"extensions"`
}

func (e *gqlError) code() string {
	switch v := e.Extensions.Code.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func readResult(e element) result {
	r := result{whole: e.whole}
	if d := e.values[keyData]; len(d) > 0 {
		r.hasData = true
		r.dataNull = string(d) == "null"
	}
	if raw := e.values[keyErrors]; len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if t, err := dec.Token(); err == nil && t == json.Delim('[') {
			for dec.More() {
				var ge gqlError
				if dec.Decode(&ge) != nil {
					r.errMore = true
					break
				}
				r.errors = append(r.errors, ge)
			}
		}
		if e.cut[keyErrors] {
			r.errMore = true
		}
	}
	return r
}

func (c *carriage) Finish(call *proto.Call) []*proto.Call {
	if call.Status == "101" {
		// The connection switched protocols (Upgrade: h2c): the operation
		// is answered on the new one, which records it.
		return []*proto.Call{call}
	}
	if !c.fromURL {
		c.readRequests()
	}
	if len(c.requests) == 0 {
		return []*proto.Call{call}
	}
	var results []element
	if !c.notJSON && call.Status != "" {
		results = c.elements(&c.side[1])
	}
	batch := c.side[0].sc != nil && c.side[0].sc.batch
	httpStatus, _ := strconv.Atoi(call.Status)
	out := make([]*proto.Call, 0, len(c.requests))
	for i, r := range c.requests {
		oc := call
		if len(c.requests) > 1 {
			cp := *call
			cp.Extra = append(proto.Extra(nil), call.Extra...)
			oc = &cp
		}
		oc.Proto = "graphql" // the carrier's extra fields (version, stream_id …) stay
		c.rewrite(oc, r, httpStatus, results, i)
		if batch {
			oc.Extra = append(oc.Extra, proto.Field{Key: "batch_index", Value: int64(i)},
				proto.Field{Key: "batch_size", Value: int64(len(c.requests) + c.side[0].sc.more)})
			if more := c.side[0].sc.more; more > 0 && i == len(c.requests)-1 {
				// The operations past the bound are counted, not read.
				oc.Extra = append(oc.Extra, proto.Field{Key: "batch_not_read", Value: int64(more)})
			}
		}
		out = append(out, oc)
	}
	return out
}

// rewrite makes call the record of operation r, answered by results[i].
func (c *carriage) rewrite(call *proto.Call, r request, httpStatus int, results []element, i int) {
	call.Method, call.Path = r.op.typ, r.op.name
	if call.Method == "" {
		// A persisted query sent by hash: its document is the server's.
		call.Method = "persisted"
		if c.fromURL {
			call.Method = "query" // GET carries queries only
		}
	}
	if call.Path == "" {
		call.Path = r.name
	}
	if call.Path == "" && len(r.op.fields) > 0 {
		call.Path = r.op.fields[0]
	}
	x := &call.Extra
	if r.op.name != "" || r.name != "" {
		x.Set("operation_name", call.Path)
	}
	if len(r.op.fields) > 0 {
		x.Set("fields", r.op.fields)
		if r.op.more > 0 {
			x.Set("fields_more", int64(r.op.more))
		}
	}
	if r.ops > 1 {
		x.Set("operations_in_document", int64(r.ops))
	}
	if r.persisted != "" {
		x.Set("persisted_query", r.persisted)
	}
	if r.cut || r.op.cut {
		x.Set("document_cut", true)
	}
	if httpStatus > 0 {
		x.Set("http_status", int64(httpStatus))
	}
	if call.Status == "" {
		return // no response: the carrier's error says why
	}
	if i >= len(results) {
		if httpStatus >= 300 || httpStatus < 200 {
			call.Status = "error"
		} else {
			call.Status = "" // a success the capture cannot read
		}
		why := "the response is not a GraphQL result"
		if len(results) > 0 {
			why = "the batch's response has no result at this position"
		} else if c.side[1].cut {
			why = "the response's start was not captured"
		}
		x.Set("status_from", why)
		return
	}
	res := readResult(results[i])
	switch {
	case len(res.errors) > 0:
		call.Status = "error"
		if code := res.errors[0].code(); code != "" {
			x.Set("error_code", code)
		}
		n := int64(len(res.errors))
		x.Set("error_count", n)
		if res.errMore {
			x.Set("error_count_at_least", true)
		}
		list := make([]string, 0, shownErrors)
		for _, e := range res.errors[:min(len(res.errors), shownErrors)] {
			list = append(list, e.String())
		}
		x.Set("errors", list)
		if res.hasData && !res.dataNull {
			x.Set("partial", true) // data came with the errors
		}
	case res.errMore:
		call.Status = "error"
		x.Set("status_from", "errors were sent but not read")
	case res.whole || res.hasData:
		call.Status = "ok"
		if !res.whole {
			x.Set("result_cut", true)
		}
	default:
		call.Status = ""
		x.Set("status_from", "the response was cut before its result")
	}
}

// String is an error as a call lists it: its message, code and path.
func (e *gqlError) String() string {
	var sb strings.Builder
	msg := e.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	sb.WriteString(msg)
	if code := e.code(); code != "" {
		sb.WriteString(" (" + code + ")")
	}
	if len(e.Path) > 0 {
		sb.WriteString(" at ")
		for j, p := range e.Path[:min(len(e.Path), 8)] {
			if j > 0 {
				sb.WriteByte('.')
			}
			fmt.Fprint(&sb, p)
		}
	}
	return sb.String()
}

// jsonString reads a JSON string value; one the cap or the capture cut is
// read as far as it goes.
func jsonString(raw []byte, cut bool) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	if !cut {
		return "", false
	}
	// Close it, dropping what is left of an escape sequence cut short.
	for k := 0; k < 7 && len(raw)-k > 1; k++ {
		n := len(raw) - k
		if json.Unmarshal(append(raw[:n:n], '"'), &s) == nil {
			return s, true
		}
	}
	return "", false
}

// persistedHash returns the sha256Hash of an extensions object's
// persistedQuery (Apollo's automatic persisted queries), or "".
func persistedHash(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var ext struct {
		PersistedQuery struct {
			Hash string `json:"sha256Hash"`
		} `json:"persistedQuery"`
	}
	if json.Unmarshal(raw, &ext) != nil {
		return ""
	}
	return ext.PersistedQuery.Hash
}
