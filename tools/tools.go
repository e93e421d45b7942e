// Package tools defines wirescope's MCP tools: their names, arguments,
// descriptions and handlers, one file per toolset and one constructor per
// tool, with All as the single list of what exists.
//
// Every tool answers within a token budget (max_tokens, counted in
// o200k_base tokens): it adds rows while they fit and then says how many it
// left out and which argument narrows the question. Errors take two
// channels: a question the tool cannot answer as asked (bad arguments, an
// unknown id, an empty window) is a result with isError set and a sentence
// the model can act on; a failure inside the server is a Go error.
//
// Tools reach the capture, the dissection and the index through Backend,
// which the server implements. The analysis is package analysis's: a
// handler reads its arguments, calls analysis for typed results (a
// comparison's evidence, a service map's edges, the workloads), and
// renders them.
package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/wirescope/wirescope/analysis"
	"github.com/wirescope/wirescope/index"
)

// Backend is what the tools need from the server.
type Backend interface {
	// Bounds returns the time range of the packets the server holds.
	Bounds() (first, last time.Time)
	// Live reports whether data keeps arriving: relative times then count
	// back from now rather than from the newest packet.
	Live() bool
	// Status describes what the server can see.
	Status(ctx context.Context) (Status, error)
	// Flows lists the L4 flows active in [from, to) matching f.
	Flows(ctx context.Context, from, to time.Time, f Filter) ([]Flow, error)
	// WritePCAP writes the packets in [from, to) matching f (at most
	// maxPackets) to a PCAP file the server keeps.
	WritePCAP(ctx context.Context, from, to time.Time, f Filter, maxPackets int) (PCAPFile, error)
	// ReadPCAP returns a file WritePCAP wrote, by ID, and its bytes when
	// it is at most limit bytes long (else nil: limit 0 only checks that
	// the file is there and is the one written). Any other file, or one
	// that is no longer what WritePCAP wrote, is an error.
	ReadPCAP(id string, limit int64) (PCAPFile, []byte, error)
	// Dissect dissects the parts of [from, to) not dissected yet,
	// reporting progress as it goes.
	Dissect(ctx context.Context, from, to time.Time, progress func(done, total uint64)) (DissectResult, error)
	// Undissected returns the parts of [from, to) not dissected yet and
	// how many packets they hold (an upper bound).
	Undissected(from, to time.Time) ([]Window, uint64)
	// Index holds the calls dissected so far.
	Index() *index.Index
	// Pods lists the pods the server knows of (from the cluster file or
	// the API server), whether or not they were seen in traffic; nil when
	// it knows none.
	Pods() []Pod
	// IdentitiesKnown is when the server began knowing Kubernetes
	// identities as they were (it started watching the API server): an
	// address whose pod was gone by then has no name before it. Zero when
	// they are known for all times (a cluster file) or not at all.
	IdentitiesKnown() time.Time
}

// The data the tools and the analyses below them share, defined by
// analysis: a time range [From, To), a filter of flows and calls, a flow
// and its peers, a pod as the server knows it.
type (
	Window = analysis.Window
	Filter = analysis.Filter
	Flow   = analysis.Flow
	Peer   = analysis.Peer
	Pod    = analysis.Pod
)

// PCAPFile is a PCAP file the server wrote.
type PCAPFile struct {
	ID          string
	Path        string
	Size        int64
	Packets     uint64
	SHA256      string
	First, Last time.Time
	// Format is "pcap", or "pcapng" when the packets mix link types.
	Format string
	// Truncated is set when the packet limit cut the file short.
	Truncated bool
}

// DissectResult reports a dissection.
type DissectResult struct {
	// Dissected are the windows this call dissected; Skipped those already
	// dissected before.
	Dissected, Skipped []Window
	// Packets counts the packets inside the windows dissected.
	Packets      uint64
	Calls        map[string]uint64 // by protocol
	Unanswered   uint64
	Truncated    uint64
	Malformed    uint64
	MissingBytes uint64
	Flows        uint64
	Undissected  uint64 // flows no dissector understood
	// Merged counts calls captured on two nodes and counted once.
	Merged uint64
	Took   time.Duration
}

// Source is one input the server reads: a capture file, a segment store,
// or a node's agent.
type Source struct {
	Name        string
	Kind        string // "pcap", "store" or "agent"
	Node        string // the node an agent captures on
	First, Last time.Time
	Packets     uint64
	Bytes       uint64
	Drops       uint64 // packets the capture lost (unknown for files: 0)
	Warnings    []string
	// State is "up", or "unreachable" for an agent that did not answer
	// (since Since, because of Error): its traffic is then not in the
	// answers. LastContact is when the source last answered (zero: never,
	// or a file).
	State       string
	LastContact time.Time
	Since       time.Time
	Error       string
	// TLS is what a node agent's TLS probes cover; nil for a file or an
	// agent that says nothing of them.
	TLS *TLSCoverage
}

// TLSCoverage is what a node agent reads of TLS from its processes' TLS
// libraries (uprobes): State "on" or "off: why", each process using a TLS
// library with whether its plaintext is read and if not why, and the
// chunks of plaintext dropped.
type TLSCoverage struct {
	State              string
	Processes          []TLSProcess
	Dropped, LostBytes uint64
}

// TLSProcess is a process using a TLS library (Library names it and its
// version); Probed tells whether its plaintext is read, Reason why not.
type TLSProcess struct {
	PID     int
	Comm    string
	Exited  bool
	Library string
	Probed  bool
	Reason  string
}

// TLSWorkload is what became of the encrypted flows a workload took part
// in (as client or server).
type TLSWorkload struct {
	// Name is "namespace/workload" (the pod where it has no owner), or
	// "address IP:PORT" for a server outside the cluster's identities
	// when neither end has one.
	Name  string
	Flows uint64
	// Read counts the flows read, by how: "key log", or the library
	// probed ("OpenSSL 3.0 uprobe").
	Read map[string]uint64
	// Opaque counts the flows not read, by why: the node's reason (a
	// process's library cannot be probed) when an agent gave one, else
	// dissection's ("no key log", "no handshake seen").
	Opaque map[string]uint64
	// NotDissected counts the flows recognised as encrypted by their
	// first bytes in windows not dissected yet: whether they are read is
	// not known until they are.
	NotDissected uint64
}

// Status is what capture_status reports.
type Status struct {
	Sources     []Source
	First, Last time.Time
	Packets     uint64
	Bytes       uint64
	Drops       uint64
	Dissected   []Window
	// Calls counts dissected calls by protocol.
	Calls map[string]uint64
	// Flows counts flows by application protocol ("" undissected and not
	// guessed), over all the data; flows that carried no payload (a SYN
	// alone, a scan, ICMP without data) are counted in Empty instead.
	Flows map[string]uint64
	Empty uint64
	// Encrypted counts flows whose payload is encrypted (TLS and the
	// like); of those, Decrypted were read with a key log, DecryptedBy
	// from their processes' TLS libraries by the node agent's uprobes
	// (by library: "OpenSSL 3.0", "Go 1.26 crypto/tls"), HandshakeOnly
	// showed their handshake but could not be read (no key, a suite not
	// decrypted), NoHandshake began before the capture did, and
	// EncryptedNotDissected were recognised by their first bytes only
	// (in windows not dissected yet, or a protocol no dissector reads).
	Encrypted                                                    uint64
	Decrypted, HandshakeOnly, NoHandshake, EncryptedNotDissected uint64
	DecryptedBy                                                  map[string]uint64
	// TLSWorkloads says of each workload taking part in encrypted flows
	// what became of them, the workloads with flows not read first.
	TLSWorkloads []TLSWorkload
	// NotDecoded counts packets that were not IP or could not be decoded.
	NotDecoded uint64
	// Notes say what else limits visibility.
	Notes []string
}

// Tool is a tool's definition and handler.
type Tool struct {
	Def     mcp.Tool
	Handler server.ToolHandlerFunc
}

// All returns every tool, in the order a client lists them.
func All(b Backend) []Tool {
	return []Tool{
		CaptureStatus(b),
		ListFlows(b),
		GetPCAP(b),
		Dissect(b),
		SearchCalls(b),
		GetCall(b),
		SummarizeTraffic(b),
		CompareWindows(b),
		ServiceMap(b),
		ListWorkloads(b),
		CreateSnapshot(b),
		ListSnapshots(b),
		DeleteSnapshot(b),
	}
}

// toolSpec is a tool's definition apart from its arguments' schema: its
// name, title and description, its hints, its schema's bounds and enums and
// its output schema (nil: none).
type toolSpec struct {
	name, title, desc                            string
	readOnly, destructive, idempotent, openWorld bool
	schema                                       schemaOpts
	output                                       mcp.ToolOption
}

// budgeted arguments carry max_tokens.
type budgeted interface{ maxTokens() (int, error) }

// newTool is every tool's prologue: the definition (T's input schema
// under s.schema, the output schema, the four hints) and a handler that
// binds the arguments into T, refuses a bad max_tokens and calls run with
// the budget. What the model can fix comes back as an isError result
// (argError), anything else as a Go error.
func newTool[T budgeted](s toolSpec, run func(ctx context.Context, req mcp.CallToolRequest, a T, budgetMax int) (*mcp.CallToolResult, error)) Tool {
	opts := []mcp.ToolOption{mcp.WithDescription(s.desc), inputSchema[T](s.schema)}
	if s.output != nil {
		opts = append(opts, s.output)
	}
	def := mcp.NewTool(s.name, append(opts, annotations(s.title, s.readOnly, s.destructive, s.idempotent, s.openWorld)...)...)
	return Tool{Def: def, Handler: handle(func(ctx context.Context, req mcp.CallToolRequest, a T) (*mcp.CallToolResult, error) {
		budgetMax, err := a.maxTokens()
		if err != nil {
			return nil, err
		}
		return run(ctx, req, a, budgetMax)
	})}
}
