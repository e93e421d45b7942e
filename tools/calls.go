package tools

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

type searchCallsArgs struct {
	Query string `json:"query,omitempty" jsonschema:"Bleve query string; empty matches every call. Clauses are optional unless prefixed + (required) or - (excluded); AND, OR and NOT are not operators. Fields: proto method path route status outcome error latency_ms src.* dst.* (ip port pod namespace workload service node version); a bare word matches path, route, error, method or status. Examples: outcome:server_error, status:>=500, +dst.service:checkout +latency_ms:>500, path:/api/cart*"`
	windowArgs
	filterArgs
	pageArgs
	snapshotArgs
	budgetArgs
}

// SearchCalls is the search_calls tool.
func SearchCalls(b Backend) Tool {
	page := limits{20, 200}
	return newTool(toolSpec{name: "search_calls", title: "Search API calls",
		desc: "Find API calls (HTTP requests, DNS lookups, …) matching a query, newest first, one line each: time, " +
			"protocol, method, path, status, latency, client→server and the id get_call takes. outcome is one of ok, client_error, " +
			"server_error, no_response, incomplete, one_way (a message no answer is expected for). Times default to all the data; relative times count back from the newest packet. " +
			"A window not dissected yet is dissected first when small enough, else the answer says so. Secrets in paths are redacted.",
		readOnly: true, idempotent: true, schema: schemaOpts{limit: page}},
		func(ctx context.Context, req mcp.CallToolRequest, a searchCallsArgs, budgetMax int) (*mcp.CallToolResult, error) {
			b, err := a.snapshotArgs.backend(ctx, b)
			if err != nil {
				return nil, err
			}
			limit, err := a.limit(page)
			if err != nil {
				return nil, err
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			note, err := ensureDissected(ctx, b, req, from, to)
			if err != nil {
				return nil, err
			}
			q := index.Query{From: from, To: to, Text: a.Query, Filter: f.Index(), Limit: limit, Cursor: a.Cursor}
			ix := b.Index()
			v := ix.Version()
			text, err := answers.answer(ctx, ix, v, answerKey("search_calls", v, q, note, budgetMax), func() (string, error) {
				return searchAnswer(ctx, b, q, a.Query, note, from, to, budgetMax)
			})
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(text), nil
		})
}

// searchAnswer is search_calls' answer to q.
func searchAnswer(ctx context.Context, b Backend, q index.Query, query, note string, from, to time.Time, budgetMax int) (string, error) {
	res, err := b.Index().Search(ctx, q)
	if errors.Is(err, index.ErrBadQuery) {
		msg := strings.TrimPrefix(err.Error(), index.ErrBadQuery.Error()+": ")
		if strings.HasPrefix(msg, "cursor") {
			return "", argError(msg + ": pass the cursor a search_calls answer ended with, with the same query, filters and window")
		}
		return "", argErrorf("query %q: %s (the query argument's description has the syntax)", query, msg)
	}
	if err != nil {
		return "", err
	}
	bud := newBudget(budgetMax, 80)
	head := fmt.Sprintf("%s %s in %s", plural(res.Total, "call"), agree(res.Total, "matches", "match"), describeWindow(from, to))
	if query != "" {
		head += " for " + strconv.Quote(query)
	}
	if res.Total == 0 {
		bud.add(head + ".")
		if note != "" {
			bud.add(note)
		}
		hints, err := noMatchHints(ctx, b, q)
		if err != nil {
			return "", err
		}
		for _, h := range hints {
			bud.add(h)
		}
		return bud.text(), nil
	}
	bud.add(head + ":")
	if note != "" {
		bud.add(note)
	}
	shown := 0
	for _, c := range res.Calls {
		if !bud.add(callLine(c)) {
			break
		}
		shown++
	}
	next := res.Next
	if shown < len(res.Calls) && shown > 0 {
		// The budget cut the page: the next one starts after the last
		// call shown, which is where a page of that size ends.
		q.Limit = shown
		cut, err := b.Index().Search(ctx, q)
		if err != nil {
			return "", err
		}
		next = cut.Next
	}
	var closing []string
	if next != "" {
		closing = append(closing, fmt.Sprintf("(showing %d of %s: continue with cursor=%s, or narrow the window, the filters or the query)",
			shown, count(res.Total), next))
	}
	return bud.text(closing...), nil
}

// noMatchHints explain a search that found nothing: which fields the
// query's words were matched against, how many calls the queries for
// failures find in the same window and filters, and that bodies and
// headers are not searched.
func noMatchHints(ctx context.Context, b Backend, q index.Query) ([]string, error) {
	var hints []string
	if q.Text != "" {
		hints = append(hints, fmt.Sprintf("Searched: words without a field name are matched against %s (whole words, any case; "+
			"pay* matches words that begin with pay); field:value clauses against that field.", orList(index.DefaultFieldNames(), "and")))
	}
	var found []string
	for _, fq := range []string{"outcome:server_error", "outcome:client_error"} {
		if fq == q.Text {
			continue
		}
		c := q
		c.Text, c.Limit, c.Cursor = fq, 1, ""
		res, err := b.Index().Search(ctx, c)
		if err != nil {
			return nil, err
		}
		found = append(found, fmt.Sprintf("%s matches %s", fq, plural(res.Total, "call")))
	}
	if len(found) > 0 {
		hints = append(hints, "To find failures in the same window and filters: "+strings.Join(found, ", ")+
			" (status:>=500 and error:\"no response\" work too).")
	}
	hints = append(hints, "Request and response bodies and headers are not indexed for search: to look for words there, "+
		"take an endpoint from summarize_traffic, list its calls with search_calls path:/the/path, and read one with get_call.")
	return hints, nil
}

// orList joins words as a sentence does: "a, b and c".
func orList(words []string, conj string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

type getCallArgs struct {
	ID string `json:"id" jsonschema:"the call's id, as search_calls lists it"`
	budgetArgs
}

// GetCall is the get_call tool.
func GetCall(b Backend) Tool {
	return newTool(toolSpec{name: "get_call", title: "Get one API call",
		desc: "One API call in full: both peers with their Kubernetes identities, timing, request and response headers " +
			"and bodies (content-decoded, cut to fit max_tokens), protocol details. Secrets (Authorization, cookies, password-like " +
			"fields) are redacted.",
		readOnly: true, idempotent: true},
		func(ctx context.Context, req mcp.CallToolRequest, a getCallArgs, budgetMax int) (*mcp.CallToolResult, error) {
			if strings.TrimSpace(a.ID) == "" {
				return nil, argError("id is required: take one from search_calls")
			}
			c, err := b.Index().Get(a.ID)
			if errors.Is(err, index.ErrNotFound) {
				return nil, argErrorf("no call has id %q: ids come from search_calls (a window dissected again keeps its ids)", a.ID)
			}
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(callDetail(c, budgetMax)), nil
		})
}

// callDetail renders a call within max tokens: everything but the bodies,
// then as much of each body as fits.
func callDetail(c *proto.Call, max int) string {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	add("%s call %s at %s", c.Proto, c.ID, stamp(c.TS))
	add("%s %s → %s", c.Method, redactText(c.Path), orDash(c.Status))
	if c.Error != "" {
		add("error: %s", c.Error)
	}
	add("outcome: %s; latency %s (request's last byte to response's first)", c.Outcome(), ms(time.Duration(c.LatencyNS)))
	add("client: %s", endpointDetail(&c.Src))
	add("server: %s", endpointDetail(&c.Dst))
	if c.Via.IsValid() {
		add("via: %s (the address the client asked for, before its node's DNAT)", c.Via)
	}
	if len(c.CapturedOn) > 0 {
		merged := ""
		if c.Merged > 0 {
			merged = fmt.Sprintf(" (%s, counted as one call)", plural(uint64(c.Merged)+1, "copy"))
		}
		add("captured on: %s%s", strings.Join(c.CapturedOn, ", "), merged)
	}
	for _, f := range c.Extra {
		add("%s: %s", f.Key, clip(redactText(string(proto.AppendValue(nil, f.Value))), 400))
	}
	msgLines := func(name string, m *proto.Message) {
		add("%s: %s body", name, size(uint64(m.BodySize)))
		for _, h := range redactHeaders(m.Headers) {
			add("  %s: %s", h.Name, clip(h.Value, 300))
		}
	}
	msgLines("request", &c.Request)
	msgLines("response", &c.Response)
	head := strings.Join(lines, "\n")
	used := Tokens(head)
	if used >= max {
		return clipTokens(head, max)
	}
	// Share what is left between the two bodies, the response first.
	var bodies []string
	left := max - used - 8
	for _, m := range []struct {
		name string
		msg  *proto.Message
	}{{"response", &c.Response}, {"request", &c.Request}} {
		if m.msg.Body == "" || left <= 16 {
			continue
		}
		body := redactText(m.msg.Body)
		label := m.name + " body"
		if m.msg.BodyEncoding != "" {
			label += " (" + m.msg.BodyEncoding + ")"
		}
		if m.msg.BodyTruncated {
			label += ", cut by the capture's display limit"
		}
		text := clipTokens(label+":\n"+body, left/2+left%2)
		if Tokens(text) < Tokens(label+":\n"+body) {
			text += "\n(body cut to fit max_tokens)"
		}
		bodies = append(bodies, text)
		left -= Tokens(text)
	}
	out := head
	if len(bodies) > 0 {
		out += "\n" + strings.Join(bodies, "\n")
	}
	return clipTokens(out, max)
}

func endpointDetail(e *proto.Endpoint) string {
	s := addrPort(e.IP, e.Port)
	var id []string
	for _, kv := range [][2]string{{"pod", e.Pod}, {"namespace", e.Namespace}, {"workload", e.Workload}, {"version", e.Version}, {"service", e.Service}, {"node", e.Node}} {
		if kv[1] != "" {
			id = append(id, kv[0]+"="+kv[1])
		}
	}
	if len(id) > 0 {
		s += " (" + strings.Join(id, " ") + ")"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// autoDissectPackets bounds the packets a tool dissects on its own before
// answering about a window; beyond it the answer points to dissect.
const autoDissectPackets = 5_000_000

// ensureDissected dissects what [from, to) still lacks, when that is small
// enough, and returns a note for the answer: what was dissected on demand,
// or what remains undissected, and whether identities are unknown in part
// of the window.
func ensureDissected(ctx context.Context, b Backend, req mcp.CallToolRequest, from, to time.Time) (string, error) {
	note, err := dissectMissing(ctx, b, req, from, to)
	if err != nil {
		return "", err
	}
	if un := unknownIdentities(b, from); un != "" {
		note = strings.TrimPrefix(note+"\n"+un, "\n")
	}
	return note, nil
}

func dissectMissing(ctx context.Context, b Backend, req mcp.CallToolRequest, from, to time.Time) (string, error) {
	missing, packets := b.Undissected(from, to)
	if len(missing) == 0 {
		return "", nil
	}
	if packets > autoDissectPackets {
		return fmt.Sprintf("note: %s not dissected yet (%s): calls there are missing; run dissect on a narrower window to include them",
			windowsText(missing), plural(packets, "packet")), nil
	}
	res, err := b.Dissect(ctx, from, to, progressReporter(ctx, req, "dissecting "+describeWindow(from, to)))
	if err != nil {
		return "", err
	}
	var calls uint64
	for _, n := range res.Calls {
		calls += n
	}
	return fmt.Sprintf("(dissected %s on demand: %s, %s)", windowsText(res.Dissected), plural(res.Packets, "packet"), plural(calls, "call")), nil
}

// unknownIdentities says so when a window starting at from (zero: the
// start of the data) begins before the server knew identities as they
// were: a pod gone by then is not guessed, its address stands unnamed.
func unknownIdentities(b Backend, from time.Time) string {
	known := b.IdentitiesKnown()
	if known.IsZero() {
		return ""
	}
	if from.IsZero() {
		from, _ = b.Bounds()
	}
	if from.IsZero() || !from.Before(known) {
		return ""
	}
	return fmt.Sprintf("note: Kubernetes identities are unknown before %s (the server began watching the API server then): addresses of pods gone by then are shown without a pod in calls before it",
		stamp(known))
}

// progressReporter returns a function that sends MCP progress
// notifications, when the request asked for them with a progress token.
func progressReporter(ctx context.Context, req mcp.CallToolRequest, message string) func(done, total uint64) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return func(uint64, uint64) {}
	}
	token := req.Params.Meta.ProgressToken
	srv := server.ServerFromContext(ctx)
	var last time.Time
	return func(done, total uint64) {
		if srv == nil || (time.Since(last) < 100*time.Millisecond && done < total) {
			return
		}
		last = time.Now()
		srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
			"progressToken": token, "progress": done, "total": total, "message": message,
		})
	}
}

// handle adapts a typed handler: the arguments are checked against T (see
// bindArgs), and argument errors become isError results with their
// sentence; other errors stay errors.
func handle[T any](fn func(context.Context, mcp.CallToolRequest, T) (*mcp.CallToolResult, error)) server.ToolHandlerFunc {
	fields := argFields[T]()
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var args T
		err := bindArgs(req, fields, &args)
		var res *mcp.CallToolResult
		if err == nil {
			res, err = fn(ctx, req, args)
		}
		var ae argError
		if errors.As(err, &ae) {
			return mcp.NewToolResultError(string(ae)), nil
		}
		return res, err
	}
}
