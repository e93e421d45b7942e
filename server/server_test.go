package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/internal/demo"
	"github.com/wirescope/wirescope/server"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
	"github.com/wirescope/wirescope/tools"
)

// openDemo opens a workspace over the demo capture.
func openDemo(t testing.TB) *workspace.Workspace {
	t.Helper()
	path, err := demo.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return openWorkspace(t, path)
}

func openWorkspace(t testing.TB, paths ...string) *workspace.Workspace {
	t.Helper()
	ws, err := workspace.Open(workspace.Options{Paths: paths, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// connect starts an in-process mcp-go client of a server over b.
func connect(t testing.TB, b tools.Backend) *client.Client {
	t.Helper()
	return connectVersion(t, b, "")
}

// connectVersion starts an in-process mcp-go client that asks for a
// protocol version ("" for the client's default, the newest).
func connectVersion(t testing.TB, b tools.Backend, version string) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(server.New(b))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ProtocolVersion: version,
		ClientInfo: mcp.Implementation{Name: "wirescope-test", Version: "0"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// call calls a tool and returns its result's text.
func call(t testing.TB, c *client.Client, name string, args map[string]any) (string, *mcp.CallToolResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	return strings.Join(text, "\n"), res
}

// mustCall calls a tool that must succeed.
func mustCall(t testing.TB, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	text, res := call(t, c, name, args)
	if res.IsError {
		t.Fatalf("%s %v: isError: %s", name, args, text)
	}
	return text
}

// TestFirstThreeCalls is an assistant's first three calls on a capture of a
// service whose failures are known: capture_status, summarize_traffic and
// search_calls for errors must surface the failing endpoints, their
// statuses and counts, each within 2,000 tokens.
func TestFirstThreeCalls(t *testing.T) {
	want, err := demo.Want()
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, openDemo(t))
	const budget = 2000
	within := func(name, text string) {
		t.Helper()
		if n := tools.Tokens(text); n > budget {
			t.Errorf("%s: %d tokens, over %d", name, n, budget)
		}
		t.Logf("%s (%d tokens):\n%s", name, tools.Tokens(text), text)
	}

	status := mustCall(t, c, "capture_status", nil)
	within("capture_status", status)
	for _, s := range []string{
		want.FirstPacket.UTC().Format("2006-01-02T15:04:05.000Z"),
		fmt.Sprintf("%s packets", thousands(want.Packets)),
		demo.Name,
	} {
		if !strings.Contains(status, s) {
			t.Errorf("capture_status does not say %q", s)
		}
	}

	summary := mustCall(t, c, "summarize_traffic", nil)
	within("summarize_traffic", summary)
	if !strings.Contains(summary, fmt.Sprintf("%s calls", thousands(want.Total))) {
		t.Errorf("summarize_traffic does not count %d calls", want.Total)
	}
	lines := strings.Split(summary, "\n")
	failing := 0
	for _, e := range want.Endpoints {
		line := lineWith(lines, e.Method+" "+e.Route+" ")
		if line == "" {
			line = lineWith(lines, e.Method+" "+e.Route+":")
		}
		if line == "" {
			t.Errorf("summarize_traffic has no line for %s %s", e.Method, e.Route)
			continue
		}
		if !strings.Contains(line, fmt.Sprintf(": %d calls", e.Requests)) {
			t.Errorf("%s %s: want %d calls in %q", e.Method, e.Route, e.Requests, line)
		}
		if e.Errors == 0 {
			if !strings.Contains(line, "no failures") {
				t.Errorf("%s %s: want no failures in %q", e.Method, e.Route, line)
			}
			continue
		}
		failing++
		if !strings.Contains(line, fmt.Sprintf("%d failed", e.Errors)) {
			t.Errorf("%s %s: want %d failed in %q", e.Method, e.Route, e.Errors, line)
		}
		for st, n := range e.Statuses {
			if st[0] >= '4' && !strings.Contains(line, fmt.Sprintf("%s×%d", st, n)) {
				t.Errorf("%s %s: want %s×%d in %q", e.Method, e.Route, st, n, line)
			}
		}
	}
	// Worst first: the failing endpoints come before the healthy ones.
	lastFailing, firstHealthy := -1, len(lines)
	for _, e := range want.Endpoints {
		i := lineIndex(lines, e.Method+" "+e.Route+":")
		if e.Errors > 0 {
			lastFailing = max(lastFailing, i)
		} else if i >= 0 {
			firstHealthy = min(firstHealthy, i)
		}
	}
	if failing == 0 || lastFailing > firstHealthy {
		t.Errorf("%d failing endpoints, the last on line %d; the first healthy one on line %d", failing, lastFailing, firstHealthy)
	}

	errs := mustCall(t, c, "search_calls", map[string]any{"query": "outcome:client_error outcome:server_error", "limit": 100})
	within("search_calls", errs)
	wantFailed := 0
	for _, e := range want.Endpoints {
		wantFailed += e.Errors
	}
	if !strings.HasPrefix(errs, fmt.Sprintf("%d calls match", wantFailed)) {
		t.Errorf("search_calls for errors: want %d calls to match", wantFailed)
	}
	shown := 0
	seen := map[string]bool{}
	for _, l := range strings.Split(errs, "\n") {
		if !strings.Contains(l, " id=") {
			continue
		}
		shown++
		st := regexp.MustCompile(` → (\d{3}) `).FindStringSubmatch(l)
		if st == nil || st[1] < "400" {
			t.Errorf("search_calls for errors lists %q", l)
			continue
		}
		seen[st[1]] = true
	}
	if shown == 0 || !seen["503"] {
		t.Errorf("search_calls for errors shows %d calls, statuses %v", shown, seen)
	}
}

func lineWith(lines []string, s string) string {
	if i := lineIndex(lines, s); i >= 0 {
		return lines[i]
	}
	return ""
}

func lineIndex(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// thousands formats n as the tools do: 1410, 12,345.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if len(s) <= 4 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TestGetPCAP exports packets, reads them back through resources/read and
// checks them with tshark.
func TestGetPCAP(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is not installed: make test installs it (scripts/install-deps.sh)")
	}
	want, err := demo.Want()
	if err != nil {
		t.Fatal(err)
	}
	ws := openDemo(t)
	c := connect(t, ws)
	for _, tc := range []struct {
		name string
		args map[string]any
		// tsharkFilter counts the packets the export must hold.
		filter string
	}{
		{"all", nil, ""},
		{"one client", map[string]any{"ip": "127.0.0.14"}, "ip.addr==127.0.0.14"},
		{"port", map[string]any{"port": want.ServerPort}, fmt.Sprintf("tcp.port==%d", want.ServerPort)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text, res := call(t, c, "get_pcap", tc.args)
			if res.IsError {
				t.Fatalf("get_pcap: %s", text)
			}
			var info tools.PCAPInfo
			raw, _ := json.Marshal(res.StructuredContent)
			if err := json.Unmarshal(raw, &info); err != nil {
				t.Fatalf("structured content %s: %v", raw, err)
			}
			rr, err := c.ReadResource(context.Background(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: info.URI}})
			if err != nil {
				t.Fatal(err)
			}
			blob, ok := rr.Contents[0].(mcp.BlobResourceContents)
			if !ok {
				t.Fatalf("resources/read gave %T", rr.Contents[0])
			}
			data, err := base64.StdEncoding.DecodeString(blob.Blob)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != info.SHA256 || int64(len(data)) != info.Size {
				t.Fatalf("read %d bytes, sha256 %x; get_pcap said %d bytes, %s", len(data), sum, info.Size, info.SHA256)
			}
			file := filepath.Join(t.TempDir(), "x.pcap")
			os.WriteFile(file, data, 0o644)
			got := tsharkCount(t, tshark, file, "")
			if got != int(info.Packets) {
				t.Fatalf("tshark reads %d packets, get_pcap said %d", got, info.Packets)
			}
			// Exactly the matching packets: as many as tshark finds in the
			// original capture with the equivalent filter.
			orig, _ := demo.WriteTo(t.TempDir())
			if n := tsharkCount(t, tshark, orig, tc.filter); n != got {
				t.Fatalf("export holds %d packets; tshark finds %d matching %q in the capture", got, n, tc.filter)
			}
		})
	}
	if text, res := call(t, c, "get_pcap", map[string]any{"ip": "10.9.9.9"}); !res.IsError || !strings.Contains(text, "no packets match") {
		t.Errorf("get_pcap matching nothing: isError %v, %q", res.IsError, text)
	}
	// Unknown resources are "not found": -32602 for clients of protocol
	// 2026-07-28 and later (SEP-2164), -32002 for earlier ones.
	legacy := connectVersion(t, ws, mcp.ProtocolVersion20251125)
	for _, uri := range []string{"pcap://0123456789abcdef", "pcap://../../etc/passwd", "pcap://", "pcap://" + strings.Repeat("0", 64)} {
		for _, cl := range []struct {
			c    *client.Client
			want error
		}{{c, mcp.ErrInvalidParams}, {legacy, mcp.ErrResourceNotFound}} {
			_, err := cl.c.ReadResource(context.Background(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
			if !errors.Is(err, cl.want) || !strings.Contains(err.Error(), "not found") {
				t.Errorf("reading %s: %v; want %v saying not found", uri, err, cl.want)
			}
		}
	}
}

// TestPCAPResourceIsOurs: resources/read serves only the files get_pcap
// wrote: a symlink planted in <dir>/pcaps, before the server starts or in
// place of a file it wrote, and a file whose bytes are not the ones
// recorded are refused as not found, and their contents never sent.
func TestPCAPResourceIsOurs(t *testing.T) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "shadow")
	const secretText = "root:$6$secret-hash:19000:0:99999:7:::\n"
	if err := os.WriteFile(secret, []byte(secretText), 0o600); err != nil {
		t.Fatal(err)
	}
	path, err := demo.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Planted before the server starts: a name like an export's.
	planted := strings.Repeat("ab", 32)
	if err := os.MkdirAll(filepath.Join(dir, "pcaps"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "pcaps", planted+".pcap")); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := connect(t, ws)
	read := func(uri string) (string, error) {
		rr, err := c.ReadResource(context.Background(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
		if err != nil {
			return "", err
		}
		var all []string
		for _, ct := range rr.Contents {
			if b, ok := ct.(mcp.BlobResourceContents); ok {
				data, _ := base64.StdEncoding.DecodeString(b.Blob)
				all = append(all, string(data))
			}
		}
		return strings.Join(all, ""), nil
	}
	check := func(what, uri string) {
		t.Helper()
		got, err := read(uri)
		if strings.Contains(got, "secret-hash") {
			t.Fatalf("%s: resources/read %s served the file the symlink points to", what, uri)
		}
		if !errors.Is(err, mcp.ErrInvalidParams) || !strings.Contains(err.Error(), "not found") {
			t.Errorf("%s: resources/read %s: %v; want resource not found", what, uri, err)
		}
	}
	check("symlink planted before start", "pcap://"+planted[:16])

	// In place of a file get_pcap wrote.
	_, res := call(t, c, "get_pcap", map[string]any{"ip": "127.0.0.14"})
	var info tools.PCAPInfo
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &info); err != nil || info.URI == "" {
		t.Fatalf("get_pcap: %s: %v", raw, err)
	}
	if _, err := read(info.URI); err != nil {
		t.Fatalf("resources/read of the file get_pcap wrote: %v", err)
	}
	listed := func() []string {
		lr, err := c.ListResources(context.Background(), mcp.ListResourcesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var uris []string
		for _, r := range lr.Resources {
			uris = append(uris, r.URI)
		}
		return uris
	}
	if uris := listed(); !slices.Contains(uris, info.URI) || slices.Contains(uris, "pcap://"+planted[:16]) {
		t.Errorf("resources/list gives %v; want %s and not the planted file", uris, info.URI)
	}
	file := filepath.Join(dir, "pcaps", info.SHA256+".pcap")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, file); err != nil {
		t.Fatal(err)
	}
	check("symlink in place of an export", info.URI)
	if uris := listed(); slices.Contains(uris, info.URI) {
		t.Errorf("resources/list still gives %s after its file was replaced by a symlink", info.URI)
	}

	// A regular file of the same size with other bytes: refused when its
	// sha256 is checked, as it is read.
	os.Remove(file)
	if err := os.WriteFile(file, make([]byte, info.Size), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := read(info.URI); err == nil || got != "" || !strings.Contains(err.Error(), "sha256 differs") {
		t.Errorf("other bytes in place of an export: resources/read gave %d bytes, %v; want an error saying the sha256 differs", len(got), err)
	}
}

// TestGetPCAPBudget: get_pcap embeds the file's bytes only when they fit
// max_tokens with the rest of the answer, always keeps its pointer to
// resources/read, and never shows a path on the server.
func TestGetPCAPBudget(t *testing.T) {
	path, err := demo.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := connect(t, ws)
	for _, tc := range []struct {
		args     map[string]any
		embedded bool
	}{
		{map[string]any{"max_tokens": 256}, false},
		{map[string]any{"max_tokens": 256, "ip": "127.0.0.14", "max_packets": 4}, false},
		{map[string]any{}, false}, // the whole demo capture does not fit 2,000 tokens
		{map[string]any{"max_tokens": 32000}, false},
		{map[string]any{"max_tokens": 32000, "ip": "127.0.0.14", "max_packets": 4}, true},
	} {
		text, res := call(t, c, "get_pcap", tc.args)
		if res.IsError {
			t.Fatalf("get_pcap %v: %s", tc.args, text)
		}
		var info tools.PCAPInfo
		structured, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(structured, &info); err != nil {
			t.Fatal(err)
		}
		all := text + string(structured)
		var blob string
		for _, ct := range res.Content {
			if e, ok := ct.(mcp.EmbeddedResource); ok {
				b, ok := e.Resource.(mcp.BlobResourceContents)
				if !ok {
					t.Fatalf("get_pcap %v: embedded %T", tc.args, e.Resource)
				}
				blob = b.Blob
			}
		}
		max := tools.DefaultMaxTokens
		if m, ok := tc.args["max_tokens"].(int); ok {
			max = m
		}
		if n := tools.Tokens(text) + tools.Tokens(string(structured)) + tools.Tokens(blob); n > max {
			t.Errorf("get_pcap %v: the answer takes %d tokens with the bytes, over max_tokens %d", tc.args, n, max)
		}
		if (blob != "") != tc.embedded || info.Embedded != tc.embedded {
			t.Errorf("get_pcap %v (%d bytes): embedded %v (structured says %v), want %v", tc.args, info.Size, blob != "", info.Embedded, tc.embedded)
		}
		if blob != "" {
			data, _ := base64.StdEncoding.DecodeString(blob)
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != info.SHA256 {
				t.Errorf("get_pcap %v: the embedded bytes are not the file", tc.args)
			}
		}
		if !strings.Contains(text, "resources/read "+info.URI) {
			t.Errorf("get_pcap %v: the answer lost its pointer to resources/read %s:\n%s", tc.args, info.URI, text)
		}
		if strings.Contains(all, dir) || strings.Contains(all, "/pcaps/") {
			t.Errorf("get_pcap %v: the answer shows a path on the server:\n%s", tc.args, all)
		}
	}
}

func tsharkCount(t *testing.T, tshark, file, filter string) int {
	t.Helper()
	args := []string{"-n", "-r", file, "-T", "fields", "-e", "frame.number"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	return len(strings.Fields(string(out)))
}

// TestArgumentErrors: questions the tools cannot answer as asked come back
// as results with isError and a sentence that says what to do.
func TestArgumentErrors(t *testing.T) {
	ws := openDemo(t)
	c := connect(t, ws)
	first, last := ws.Bounds()
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"search_calls", map[string]any{"max_tokens": 10}, "max_tokens 10 is out of range"},
		{"search_calls", map[string]any{"max_tokens": 100000}, "max_tokens 100000 is out of range"},
		{"search_calls", map[string]any{"from": "yesterday"}, "from"},
		{"search_calls", map[string]any{"from": "-1m", "to": "-2m"}, "must be before"},
		{"search_calls", map[string]any{"query": "colour:red"}, "unknown field \"colour\""},
		{"search_calls", map[string]any{"query": "status:503 AND method:GET"}, "AND"},
		{"search_calls", map[string]any{"query": "latency_ms:>slow"}, `query "latency_ms:>slow"`},
		{"search_calls", map[string]any{"cursor": "bogus"}, "cursor"},
		{"search_calls", map[string]any{"from": first.Add(-2 * time.Hour).Format(time.RFC3339), "to": first.Add(-time.Hour).Format(time.RFC3339)},
			"capture covers"},
		{"search_calls", map[string]any{"ip": "not-an-ip"}, "not an IP address"},
		{"search_calls", map[string]any{"protocol": "smtp"}, "not one wirescope dissects"},
		{"summarize_traffic", map[string]any{"group_by": "colour"}, "group_by"},
		{"list_flows", map[string]any{"state": "sleepy"}, "state"},
		{"list_flows", map[string]any{"cursor": "x"}, "cursor"},
		{"get_call", map[string]any{"id": "nope"}, "no call has id"},
		{"get_call", map[string]any{}, "id is required"},
		{"get_pcap", map[string]any{"max_packets": -1}, "max_packets"},
		{"dissect", map[string]any{"from": last.Add(time.Hour).Format(time.RFC3339)}, "capture covers"},
		{"compare_windows", map[string]any{"candidate_to": "-5s"}, "give candidate_from"},
		{"compare_windows", map[string]any{"rollout_at": "-30s", "candidate_from": "-10s"}, "not both"},
		{"compare_windows", map[string]any{"rollout_at": last.Add(time.Hour).Format(time.RFC3339)}, "outside the capture"},
		{"compare_windows", map[string]any{"rollout_at": "-30s", "window": "soon"}, "window \"soon\""},
		{"compare_windows", map[string]any{"window": "5m"}, "window goes with rollout_at"},
		{"compare_windows", map[string]any{"candidate_from": "-10s", "candidate_to": "-20s"}, "must be before"},
		{"compare_windows", map[string]any{"candidate_from": "-10s", "baseline_from": first.Add(-2 * time.Hour).Format(time.RFC3339),
			"baseline_to": first.Add(-time.Hour).Format(time.RFC3339)}, "the baseline window: no traffic captured"},
		{"compare_windows", map[string]any{"rollout_at": "-30s", "label": "app"}, "not key=value"},
		{"compare_windows", map[string]any{"rollout_at": "-30s", "label": "app=cart"}, "no pods are known"},
		{"service_map", map[string]any{"order": "alphabetical"}, "order"},
		{"service_map", map[string]any{"cursor": "x"}, "cursor"},
		{"list_workloads", map[string]any{"at": "-1m"}, "at goes with ip"},
		{"list_workloads", map[string]any{"ip": "127.0.0.5", "at": "lunchtime"}, "at \"lunchtime\""},
		// Arguments the schema does not have are refused, naming them and
		// the valid ones (every schema says additionalProperties: false).
		{"search_calls", map[string]any{"limt": 5}, `unknown argument "limt"`},
		{"search_calls", map[string]any{"limt": 5}, "valid arguments are query, from, to,"},
		{"get_call", map[string]any{"id": "x", "verbose": true}, `unknown argument "verbose"; valid arguments are id, max_tokens`},
		// A wrong type is a sentence, not a Go unmarshal message.
		{"search_calls", map[string]any{"limit": "lots"}, "limit must be a number, got a string"},
		{"search_calls", map[string]any{"query": 5}, "query must be a string, got a number"},
		{"get_pcap", map[string]any{"max_packets": 1.5}, "max_packets must be a whole number, got 1.5"},
		{"list_flows", map[string]any{"port": []any{80}}, "port must be a number, got an array"},
		// A query that is not one is a syntax error with an example.
		{"search_calls", map[string]any{"query": "(("}, "the query syntax is invalid"},
		{"search_calls", map[string]any{"query": "(("}, "outcome:server_error"},
		{"search_calls", map[string]any{"query": "(status:500 method:get)"}, "parentheses"},
		{"search_calls", map[string]any{"query": "!!"}, "the query syntax is invalid"},
		// A window with no end is said in words, not with a bare "-".
		{"search_calls", map[string]any{"from": last.Add(time.Hour).Format(time.RFC3339)}, "to the newest packet"},
	} {
		text, res := call(t, c, tc.tool, tc.args)
		if !res.IsError || !strings.Contains(text, tc.want) {
			t.Errorf("%s %v: isError %v, %q; want an error saying %q", tc.tool, tc.args, res.IsError, text, tc.want)
		}
		if regexp.MustCompile(`\b(between|and|to|from|at) -([;,.)]|\s|$)`).MatchString(text) {
			t.Errorf("%s %v: a bare \"-\" stands for a time: %q", tc.tool, tc.args, text)
		}
	}
}

// TestSearchFindsNothing: a search in plain words that matches nothing
// says what it searched and which queries find failures, and that bodies
// are not searched, instead of ending at a colon.
func TestSearchFindsNothing(t *testing.T) {
	want, err := demo.Want()
	if err != nil {
		t.Fatal(err)
	}
	var server, client int
	for status, n := range want.Statuses {
		switch status[0] {
		case '5':
			server += n
		case '4':
			client += n
		}
	}
	c := connect(t, openDemo(t))
	for _, q := range []string{"payment", "errors"} {
		text := mustCall(t, c, "search_calls", map[string]any{"query": q})
		for _, want := range []string{
			"0 calls match in all the data for \"" + q + "\".",
			"matched against path, route, error, method and status",
			fmt.Sprintf("outcome:server_error matches %d calls", server),
			fmt.Sprintf("outcome:client_error matches %d calls", client),
			"bodies and headers are not indexed",
			"get_call",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("search_calls %q does not say %q:\n%s", q, want, text)
			}
		}
		if strings.HasSuffix(strings.SplitN(text, "\n", 2)[0], ":") {
			t.Errorf("search_calls %q: the first line ends with a colon and nothing follows:\n%s", q, text)
		}
	}
	// A fielded query that finds nothing says which field it searched.
	text := mustCall(t, c, "search_calls", map[string]any{"query": "dst.service:payment"})
	if !strings.Contains(text, "dst.service") || !strings.Contains(text, "outcome:server_error matches") {
		t.Errorf("search_calls dst.service:payment:\n%s", text)
	}
}

// TestSingular: counts of one take the singular ("1 call", not "1
// calls") in every tool's answer about a window that holds one call.
func TestSingular(t *testing.T) {
	c := connect(t, openDemo(t))
	first := mustCall(t, c, "search_calls", map[string]any{"limit": 1, "query": "status:500"})
	m := regexp.MustCompile(`\n(\S+Z) `).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no call time in:\n%s", first)
	}
	ts, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	window := map[string]any{"from": ts.Format(time.RFC3339Nano), "to": ts.Add(time.Millisecond).Format(time.RFC3339Nano)}
	with := func(extra map[string]any) map[string]any {
		args := map[string]any{}
		for k, v := range window {
			args[k] = v
		}
		for k, v := range extra {
			args[k] = v
		}
		return args
	}
	plural := regexp.MustCompile(`(^|[^0-9,.])1 (calls|flows|packets|edges|groups|workloads|endpoints|matches|errors|pods)\b|\b1 calls? match\b`)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"search_calls", with(map[string]any{"query": "status:500"}), "1 call matches"},
		{"summarize_traffic", with(nil), "1 call in"},
		{"summarize_traffic", with(map[string]any{"group_by": "status"}), ""},
		{"service_map", with(nil), "(1 call)"},
		{"list_flows", map[string]any{"ip": "127.0.0.14", "port": 44478}, "1 flow in"},
		{"get_pcap", map[string]any{"max_packets": 1}, "wrote 1 packet "},
		{"list_workloads", with(nil), ""},
		{"dissect", with(nil), ""},
	} {
		text := mustCall(t, c, tc.tool, tc.args)
		if !strings.Contains(text, tc.want) {
			t.Errorf("%s %v does not say %q:\n%s", tc.tool, tc.args, tc.want, text)
		}
		if loc := plural.FindStringIndex(text); loc != nil {
			t.Errorf("%s %v: %q takes the plural with 1:\n%s", tc.tool, tc.args, text[max(loc[0]-20, 0):loc[1]], text)
		}
	}
}

// TestIdentities: with a cluster file, answers name pods, services and
// workloads, and the filters select by them.
func TestIdentities(t *testing.T) {
	path, err := demo.WriteTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.New(identity.ClusterFile{
		Services: []identity.Service{{Name: "shop-api", Namespace: "shop", ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "shop-api"}}},
		Pods: []identity.Pod{
			{Name: "shop-api-7c4b8d9f6-m8wzt", Namespace: "shop", Node: "node-b", IP: "127.0.0.5", Labels: map[string]string{"app": "shop-api"}},
			{Name: "web-5b7d9f8c4-abcde", Namespace: "edge", Node: "node-a", IP: "127.0.0.11", Labels: map[string]string{"app": "web"}},
			{Name: "kubelet-probe", Namespace: "kube-system", Node: "node-b", IP: "127.0.0.14", Labels: map[string]string{"app": "probe"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(workspace.Options{Paths: []string{path}, Dir: t.TempDir(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	c := connect(t, ws)
	sum := mustCall(t, c, "summarize_traffic", map[string]any{"group_by": "service"})
	if !strings.Contains(sum, "shop/shop-api: 288 calls") && !strings.Contains(sum, "shop-api: 288 calls") {
		t.Errorf("summarize_traffic by service:\n%s", sum)
	}
	web := mustCall(t, c, "search_calls", map[string]any{"pod": "web-5b7d9f8c4-abcde", "limit": 1})
	if !strings.HasPrefix(web, "100 calls match") {
		t.Errorf("search_calls for the web pod's calls:\n%s", web)
	}
	probe := mustCall(t, c, "search_calls", map[string]any{"namespace": "kube-system", "query": "path:/healthz", "limit": 1})
	if !strings.HasPrefix(probe, "36 calls match") {
		t.Errorf("search_calls for the probe's health checks:\n%s", probe)
	}
	flows := mustCall(t, c, "list_flows", map[string]any{"workload": "web", "limit": 1})
	if !strings.HasPrefix(flows, "15 flows") || !strings.Contains(flows, "(edge/web-5b7d9f8c4-abcde)") || !strings.Contains(flows, "(shop/shop-api-7c4b8d9f6-m8wzt)") {
		t.Errorf("list_flows for the web workload:\n%s", flows)
	}
	m := regexp.MustCompile(`id=(\S+)`).FindStringSubmatch(web)
	if m == nil {
		t.Fatal("no call id")
	}
	detail := mustCall(t, c, "get_call", map[string]any{"id": m[1]})
	for _, want := range []string{"pod=web-5b7d9f8c4-abcde namespace=edge workload=web node=node-a", "pod=shop-api-7c4b8d9f6-m8wzt namespace=shop workload=shop-api service=shop-api node=node-b"} {
		if !strings.Contains(detail, want) {
			t.Errorf("get_call does not show %q:\n%s", want, detail)
		}
	}
}
