// Package server is wirescope's MCP server: the tools of package tools over
// a Backend (a workspace of capture files, later the agents' data), the
// pcap:// resources get_pcap writes, and the two transports: stdio for a
// local assistant (wirescope mcp) and streamable HTTP with bearer-token
// authentication for a shared one (wirescope hub).
package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/wirescope/wirescope/tools"
)

// Name is the server's name in the MCP handshake.
const Name = "wirescope"

// MaxResourceBytes bounds a PCAP file served through resources/read; a
// larger one is read from its path on the server.
const MaxResourceBytes = 64 << 20

// instructions tell the assistant how the tools fit together.
const instructions = `wirescope answers questions about network traffic captured as packets: which API calls (HTTP, DNS, …) were made, which failed, between which pods, and the packets themselves.
Start with capture_status (what is captured, and when), then summarize_traffic for the failing endpoints, then search_calls (for example query "outcome:server_error") and get_call for evidence. After a deploy, compare_windows with rollout_at gives a verdict and the evidence; service_map and list_workloads show who calls whom and which pods are behind an address. list_flows works without dissection, for traffic no dissector understands; get_pcap exports the packets for Wireshark.
Every tool takes max_tokens and says what it left out; times are RFC 3339 or relative like -15m (from the newest packet when serving capture files), and no window means all the data.`

// Version is the module's version, as the build recorded it.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Option configures New.
type Option func(*options)

type options struct{ metrics *Metrics }

// WithMetrics records the server's tool calls, dissection and PCAP exports
// in m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// New returns an MCP server serving the tools over b.
func New(b tools.Backend, with ...Option) *mcpserver.MCPServer {
	var o options
	for _, f := range with {
		f(&o)
	}
	var opts []mcpserver.ServerOption
	if o.metrics != nil {
		// First, so outermost: a call's time includes Hold, and a panic
		// is seen as the error WithRecovery makes of it.
		opts = append(opts, o.metrics.ServerOptions()...)
	}
	opts = append(opts,
		mcpserver.WithTitle("wirescope network investigation"),
		mcpserver.WithInstructions(instructions),
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(false, false),
		mcpserver.WithPromptCapabilities(false),
		mcpserver.WithRecovery(),
		mcpserver.WithResourceRecovery(),
	)
	if h, ok := b.(Holder); ok {
		opts = append(opts, mcpserver.WithToolHandlerMiddleware(hold(h)))
	}
	if p, ok := b.(Partial); ok {
		opts = append(opts, mcpserver.WithToolHandlerMiddleware(partial(p)))
	}
	// The files get_pcap writes are resources of their own, registered
	// while the backend holds them, so that resources/read of any other
	// pcap:// URI is "resource not found" (-32002; -32602 from protocol
	// 2026-07-28), which mcp-go answers only for a URI no resource or
	// template matches: a template's handler can only fail with -32603.
	res := &pcapResources{b: b}
	hooks := &mcpserver.Hooks{}
	hooks.AddBeforeReadResource(func(_ context.Context, _ any, req *mcp.ReadResourceRequest) { res.sync(req.Params.URI) })
	hooks.AddBeforeListResources(func(context.Context, any, *mcp.ListResourcesRequest) { res.prune() })
	opts = append(opts, mcpserver.WithHooks(hooks), mcpserver.WithToolHandlerMiddleware(res.exported))
	s := mcpserver.NewMCPServer(Name, Version(), opts...)
	// The tools see the instrumented backend; the assertions above, on b.
	for _, t := range tools.All(InstrumentBackend(b, o.metrics)) {
		s.AddTool(t.Def, t.Handler)
	}
	for _, p := range tools.Prompts() {
		s.AddPrompt(p.Def, p.Handler)
	}
	res.s = s
	return s
}

// Holder is a backend whose data changes between tool calls (a growing
// capture): Hold keeps it as it is for one call, or says why there is
// nothing to answer from.
type Holder interface {
	Hold() (release func(), err error)
}

// hold runs each tool call with the backend held.
func hold(h Holder) mcpserver.ToolHandlerMiddleware {
	return func(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			release, err := h.Hold()
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			defer release()
			return next(ctx, req)
		}
	}
}

// Partial is a backend that can answer without some of its sources (an
// agent that does not answer): Missing says which, in sentences.
type Partial interface {
	Missing() []string
}

// partial begins every answer given without some sources with a note
// naming them, so that no answer passes for complete when it is not.
func partial(p Partial) mcpserver.ToolHandlerMiddleware {
	return func(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := next(ctx, req)
			if err != nil || res == nil {
				return res, err
			}
			if m := p.Missing(); len(m) > 0 {
				note := mcp.NewTextContent("incomplete: " + strings.Join(m, "; "))
				res.Content = append([]mcp.Content{note}, res.Content...)
			}
			return res, err
		}
	}
}

// pcapResources keeps the server's pcap:// resources in step with the
// files the backend holds.
type pcapResources struct {
	b  tools.Backend
	s  *mcpserver.MCPServer
	mu sync.Mutex
	// uris are the resources registered.
	uris map[string]bool
}

// pcapID returns the ID in a pcap:// URI.
func pcapID(uri string) (string, bool) {
	id, ok := strings.CutPrefix(uri, "pcap://")
	return id, ok && id != "" && !strings.ContainsAny(id, "/?#")
}

// sync registers uri when the backend holds its file, and removes it when
// not; other URIs are left alone.
func (r *pcapResources) sync(uri string) {
	id, ok := pcapID(uri)
	if !ok {
		return
	}
	file, _, err := r.b.ReadPCAP(id, 0)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.uris[uri] {
			delete(r.uris, uri)
			r.s.DeleteResources(uri)
		}
		return
	}
	if r.uris[uri] {
		return
	}
	if r.uris == nil {
		r.uris = map[string]bool{}
	}
	r.uris[uri] = true
	r.s.AddResource(mcp.NewResource(uri, file.ID+"."+file.Format,
		mcp.WithResourceDescription(fmt.Sprintf("%d packets get_pcap wrote, sha256 %s", file.Packets, file.SHA256)),
		mcp.WithMIMEType(tools.PCAPMediaType(file.Format))),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return readPCAP(r.b, req.Params.URI)
		})
}

// prune removes the resources whose files the backend no longer holds
// (removed to bound disk use).
func (r *pcapResources) prune() {
	r.mu.Lock()
	uris := make([]string, 0, len(r.uris))
	for uri := range r.uris {
		uris = append(uris, uri)
	}
	r.mu.Unlock()
	for _, uri := range uris {
		r.sync(uri)
	}
}

// exported registers the file a get_pcap call wrote.
func (r *pcapResources) exported(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := next(ctx, req)
		if err == nil && res != nil && !res.IsError && req.Params.Name == "get_pcap" {
			if info, ok := res.StructuredContent.(tools.PCAPInfo); ok {
				r.sync(info.URI)
			}
		}
		return res, err
	}
}

// readPCAP serves a pcap:// resource.
func readPCAP(b tools.Backend, uri string) ([]mcp.ResourceContents, error) {
	id, ok := pcapID(uri)
	if !ok {
		return nil, fmt.Errorf("%q is not a pcap:// URI get_pcap gave", uri)
	}
	file, data, err := b.ReadPCAP(id, MaxResourceBytes)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("the file is larger than resources/read serves (%d MiB): export a narrower window or fewer packets with get_pcap",
			MaxResourceBytes>>20)
	}
	return []mcp.ResourceContents{mcp.BlobResourceContents{URI: uri, MIMEType: tools.PCAPMediaType(file.Format),
		Blob: base64.StdEncoding.EncodeToString(data)}}, nil
}
