// Package workspace serves captured data to the MCP tools on one machine:
// a set of capture files, the Kubernetes identities of their addresses, the
// windows dissected so far with their calls in a Bleve index, and the PCAP
// files exported from them. A Workspace implements tools.Backend.
//
// Dissection is lazy. Opening a workspace only scans the files (time
// ranges, checkpoints, the flow index); a window is dissected the first time
// a tool asks about it, and only the parts of it not dissected before. Each
// part is read with some packets before it (Lookback), so that connections
// already open are picked up mid-stream, and after it (Lookahead), so that
// requests near its end find their responses; only calls whose request
// falls inside the part are indexed, so adjacent parts never index a call
// twice, and a call's ID does not depend on the window that found it.
//
// A workspace opened again on the same captures and data directory keeps
// what an earlier run dissected (the index and a state file saying which
// windows it holds); one opened on other captures starts afresh.
package workspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/wirescope/wirescope/analysis"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/tools"
)

// Options configure a Workspace. Zero fields take defaults.
type Options struct {
	// Source is what the workspace reads packets from. When nil, Paths
	// are opened as one (capture files: pcap, pcapng, gzipped).
	Source source.Source
	Paths  []string
	// Identity resolves addresses to Kubernetes identities; nil leaves
	// endpoints as bare addresses.
	Identity identity.Source
	// Dir holds the index and the exported PCAP files. Empty means a
	// temporary directory that Close removes.
	Dir string
	// Index configures the call index.
	Index index.Options
	// Logger receives what the index repairs; nil discards it.
	Logger *slog.Logger
	// Workers is how many shards dissect in parallel. Default GOMAXPROCS.
	Workers int
	// Lookback and Lookahead widen the packets read around a window
	// (defaults 10s and 2m); see the package documentation.
	Lookback, Lookahead time.Duration
	// MergePackets bounds the packets of a window of several nodes read
	// before their calls are merged (see Workspace.pieces): about 1 KB of
	// memory per call held, a call per 10 packets or more. 0: 1,000,000.
	MergePackets int
	// FlowSpan is the flow index's bucket span. Default 10s.
	FlowSpan time.Duration
	// KeepPCAPs and KeepPCAPBytes bound the exported PCAP files kept: past
	// either, the oldest are removed. Defaults 64 files and 1 GiB.
	KeepPCAPs     int
	KeepPCAPBytes int64
	// Limits bound what parsers keep per message.
	Limits proto.Limits
	// Protocols are the dissectors; nil means dissect.All().
	Protocols []proto.Protocol
}

// Workspace is captured data being investigated. It is safe for concurrent
// use; dissections run one at a time.
type Workspace struct {
	opts      Options
	src       source.Source
	ix        *index.Index
	dir       string
	temp      bool   // dir is ours to remove
	fp        string // the captures' fingerprint (state.go)
	protocols []proto.Protocol
	// corr carries what calls tell about calls of later windows (Kafka's
	// topic IDs) from one window's dissection to the next.
	corr *dissect.Correlations
	busy chan struct{} // held by the dissection running

	mu      sync.RWMutex
	covered coverage                    // windows dissected
	labels  map[flowindex.Key]flowLabel // flows' protocols, as dissected
	calls   map[string]uint64           // calls indexed, by protocol
	pcaps   []tools.PCAPFile            // exported files, oldest first
	missing uint64                      // TCP payload bytes the capture lacks, in dissected windows
}

// Open scans the capture files and opens (or creates) the index in the data
// directory.
func Open(opts Options) (*Workspace, error) {
	if opts.Source == nil && len(opts.Paths) == 0 {
		return nil, errors.New("workspace: no capture files")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Lookback <= 0 {
		opts.Lookback = 10 * time.Second
	}
	if opts.MergePackets <= 0 {
		opts.MergePackets = 1_000_000
	}
	if opts.Lookahead <= 0 {
		opts.Lookahead = 2 * time.Minute
	}
	if opts.FlowSpan <= 0 {
		opts.FlowSpan = 10 * time.Second
	}
	if opts.KeepPCAPs <= 0 {
		opts.KeepPCAPs = 64
	}
	if opts.KeepPCAPBytes <= 0 {
		opts.KeepPCAPBytes = 1 << 30
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	src := opts.Source
	if src == nil {
		files, err := source.OpenFiles(opts.Paths, opts.FlowSpan)
		if err != nil {
			return nil, err
		}
		src = files
	}
	var err error
	if opts.Protocols == nil {
		opts.Protocols = dissect.All()
	}
	w := &Workspace{opts: opts, src: src, dir: opts.Dir, protocols: opts.Protocols, busy: make(chan struct{}, 1),
		labels: map[flowindex.Key]flowLabel{}, calls: map[string]uint64{}}
	w.corr = dissect.NewCorrelations(opts.Protocols)
	if w.dir == "" {
		if w.dir, err = os.MkdirTemp("", "wirescope-"); err != nil {
			return nil, err
		}
		w.temp = true
	}
	// What the directory holds (calls with their headers and bodies, raw
	// packets in pcaps/) is the server's alone: 0700 directories, 0600
	// files. A data directory made by someone else keeps its mode, but its
	// pcaps and index, which an older version made 0755, are tightened.
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return nil, err
	}
	for _, sub := range []string{"pcaps", "index"} {
		d := filepath.Join(w.dir, sub)
		err := os.MkdirAll(d, 0o700)
		if err == nil {
			err = os.Chmod(d, 0o700)
		}
		if err != nil {
			w.removeTemp()
			return nil, err
		}
	}
	// An index an earlier run left is kept when its state says it holds
	// these captures' calls; otherwise it holds calls we cannot vouch for
	// (other captures, another build), and goes.
	ixDir := filepath.Join(w.dir, "index")
	w.fp = w.fingerprint()
	if !w.loadState() {
		os.Remove(filepath.Join(w.dir, stateFile))
		if err := os.RemoveAll(ixDir); err != nil {
			w.removeTemp()
			return nil, err
		}
	} else {
		opts.Logger.Info("reusing the index of an earlier run", "dir", ixDir, "dissected", len(w.covered))
	}
	if w.ix, err = index.Open(ixDir, opts.Logger, &opts.Index); err != nil {
		w.removeTemp()
		return nil, fmt.Errorf("workspace: %w", err)
	}
	w.loadPCAPs()
	return w, nil
}

// Close closes the index and removes a temporary data directory.
func (w *Workspace) Close() error {
	err := w.ix.Close()
	w.removeTemp()
	return err
}

func (w *Workspace) removeTemp() {
	if w.temp {
		os.RemoveAll(w.dir)
	}
}

// Dir returns the data directory.
func (w *Workspace) Dir() string { return w.dir }

// Bounds implements tools.Backend.
func (w *Workspace) Bounds() (first, last time.Time) { return w.src.Bounds() }

// Source returns what the workspace reads.
func (w *Workspace) Source() source.Source { return w.src }

// Live implements tools.Backend: files do not grow.
func (w *Workspace) Live() bool { return false }

// Index implements tools.Backend.
func (w *Workspace) Index() *index.Index { return w.ix }

// IdentitiesKnown implements tools.Backend.
func (w *Workspace) IdentitiesKnown() time.Time {
	if w.opts.Identity == nil {
		return time.Time{}
	}
	return w.opts.Identity.Known()
}

// Pods lists the pods of the identity source, when it can list them (a
// cluster file can).
func (w *Workspace) Pods() []tools.Pod {
	if w.opts.Identity == nil {
		return nil
	}
	var out []tools.Pod
	for _, p := range w.opts.Identity.Pods() {
		tp := tools.Pod{Name: p.Name, Namespace: p.Namespace, Workload: p.Workload, Service: p.Service, Node: p.Node,
			Labels: p.Labels, Version: p.Version, Images: p.Images}
		for _, ip := range append([]string{p.IP}, p.IPs...) {
			if a, err := netip.ParseAddr(ip); err == nil {
				tp.IPs = append(tp.IPs, a.Unmap())
			}
		}
		if p.StartTime != nil {
			tp.Start = *p.StartTime
		}
		if p.DeletionTime != nil {
			tp.End = *p.DeletionTime
		}
		out = append(out, tp)
	}
	return out
}

// clamp limits [from, to) (zero: unbounded) to the data.
func (w *Workspace) clamp(from, to time.Time) (time.Time, time.Time) {
	first, last := w.src.Bounds()
	end := last.Add(time.Nanosecond)
	if from.IsZero() || from.Before(first) {
		from = first
	}
	if to.IsZero() || to.After(end) {
		to = end
	}
	return from, to
}

// sourceStatus is what src says of itself and each of its parts.
func sourceStatus(ctx context.Context, src source.Source) (tools.Status, source.Status) {
	st := tools.Status{Flows: map[string]uint64{}}
	st.First, st.Last = src.Bounds()
	ss := src.Status(ctx)
	for _, p := range ss.Parts {
		st.Sources = append(st.Sources, tools.Source{Name: p.Name, Kind: p.Kind, Node: p.Node, First: p.First, Last: p.Last,
			Packets: p.Packets, Bytes: p.Bytes, Drops: p.Drops, State: p.State, LastContact: p.LastContact, Since: p.Since,
			Error: p.Error, Warnings: p.Warnings, TLS: tlsCoverage(p.TLS)})
		if p.Up() {
			st.Packets += p.Packets
			st.Bytes += p.Bytes
			st.Drops += p.Drops
		}
	}
	return st, ss
}

// Status implements tools.Backend.
func (w *Workspace) Status(ctx context.Context) (tools.Status, error) {
	st, ss := sourceStatus(ctx, w.src)
	d := ss.Decode
	st.NotDecoded = d.UnsupportedLink + d.NotIP + d.Malformed + d.FragmentsDropped
	flows, err := w.src.Flows(ctx, time.Time{}, time.Time{})
	if err != nil {
		return st, err
	}
	w.mu.RLock()
	st.Dissected = w.covered.clone()
	st.Calls = maps.Clone(w.calls)
	missing := w.missing
	tlsw := tlsWorkloads{}
	for _, s := range flows {
		if s.Payload[0]+s.Payload[1] == 0 && !s.PayloadUnknown {
			st.Empty++
			continue
		}
		name, guessed, l := w.protocolOf(&s)
		st.Flows[name]++
		if !l.encrypted {
			continue
		}
		st.Encrypted++
		switch {
		case guessed:
			st.EncryptedNotDissected++
		case l.decryption == "decrypted":
			st.Decrypted++
		case analysis.Decrypted(l.decryption):
			if st.DecryptedBy == nil {
				st.DecryptedBy = map[string]uint64{}
			}
			st.DecryptedBy[analysis.DecryptedBy(l.decryption)]++
		case l.decryption == "no handshake seen":
			st.NoHandshake++
		default:
			st.HandshakeOnly++
		}
		tlsw.add(w, &s, guessed, l.decryption)
	}
	w.mu.RUnlock()
	st.TLSWorkloads = tlsw.sorted()
	if w.opts.Identity == nil {
		st.Notes = append(st.Notes, "no cluster file or API server: endpoints are addresses without Kubernetes identities")
	} else if known := w.opts.Identity.Known(); !known.IsZero() && !st.First.IsZero() && st.First.Before(known) {
		st.Notes = append(st.Notes, fmt.Sprintf("Kubernetes identities are known from %s (when the hub began watching the API server): an address whose pod was gone by then is shown without a pod before that",
			known.UTC().Format(time.RFC3339)))
	}
	if missing > 0 {
		st.Notes = append(st.Notes, fmt.Sprintf("%d bytes of TCP payload in dissected windows were not captured (gaps): calls across them are marked truncated", missing))
	}
	if d.FragmentsDropped > 0 {
		st.Notes = append(st.Notes, fmt.Sprintf("%d IP fragments were dropped waiting for the rest of their datagrams", d.FragmentsDropped))
	}
	return st, nil
}

// protocolOf names a flow's application protocol: as dissected, else as
// guessed. Callers hold mu.
// flowLabel is what dissection found of a flow: its protocol, and whether
// it turned encrypted (STARTTLS and the like).
type flowLabel struct {
	name       string
	encrypted  bool
	decryption string // "decrypted", "decrypted: <library> uprobe", or why not (dissect.Flow.Decryption)
	// icmp is the ICMP error the flow drew (dissect.Flow.ICMP); refused
	// that it was a destination unreachable.
	icmp    string
	refused bool
}

func (w *Workspace) protocolOf(s *flowindex.Summary) (name string, guessed bool, l flowLabel) {
	k := s.Key()
	l, ok := w.labels[k]
	if ok && l.name != "" {
		return l.name, false, l
	}
	// Not dissected, or dissected without a protocol (only its ICMP error
	// noted): guessed.
	if name, enc := guess(w.protocols, s); name != "" {
		l.name, l.encrypted = name, enc
		return name, true, l
	}
	return "", false, l
}

// tlsCoverage is a part's TLS coverage as the tools show it.
func tlsCoverage(c *source.TLSCoverage) *tools.TLSCoverage {
	if c == nil {
		return nil
	}
	t := &tools.TLSCoverage{State: c.State, Dropped: c.Dropped, LostBytes: c.LostBytes}
	for _, p := range c.Processes {
		t.Processes = append(t.Processes, tools.TLSProcess{PID: p.PID, Comm: p.Comm, Exited: p.Exited, Library: p.Library, Probed: p.Probed, Reason: p.Reason})
	}
	return t
}
