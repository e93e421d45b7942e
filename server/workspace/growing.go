package workspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/index"
	"github.com/wirescope/wirescope/tools"
)

// ErrNothingYet is what a Growing workspace answers before it holds any
// packets.
var ErrNothingYet = errors.New("nothing captured yet: ask again once there has been some traffic")

// Growing serves captures that keep growing: a segment store an agent (or
// this process) writes into, or the agents of a cluster. Before a tool
// call, when at least Every has passed since it last looked, it refreshes
// the source; when that changed anything it opens a workspace over it
// afresh (dissection starts over, on demand as ever; a window near the end
// of the data would otherwise hold calls cut short by the end). A tool
// call runs against one workspace from start to end: Hold keeps the swap
// (and the source's refresh) out while calls run. Growing implements
// tools.Backend.
type Growing struct {
	opts  Options
	src   source.Source
	every time.Duration
	what  string // what is captured, for Status

	swap    sync.RWMutex // read-held by tool calls, write-held by a refresh
	ws      atomic.Pointer[Workspace]
	mu      sync.Mutex // guards what follows
	checked time.Time
	opens   int
	lastErr string

	snapMu sync.Mutex
	snaps  map[string]*Workspace // snapshots opened, by name
}

// OpenGrowing serves src, which must implement source.Refresher; it is
// refreshed at most every every. what says what it is, for
// capture_status.
func OpenGrowing(opts Options, what string, src source.Source, every time.Duration) (*Growing, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Dir == "" {
		return nil, errors.New("workspace: a growing capture needs a data directory")
	}
	if _, ok := src.(source.Refresher); !ok {
		return nil, fmt.Errorf("workspace: %s does not grow (no Refresh)", src.Name())
	}
	g := &Growing{opts: opts, src: src, every: every, what: what}
	g.refresh(true)
	return g, nil
}

// Hold refreshes the workspace if it is due, then keeps it from being
// swapped until release is called. The MCP server holds it around every
// tool call. Before anything was captured it returns ErrNothingYet (and
// holds nothing).
func (g *Growing) Hold() (release func(), err error) {
	g.mu.Lock()
	due := time.Since(g.checked) >= g.every
	g.mu.Unlock()
	if due {
		g.refresh(false)
	}
	g.swap.RLock()
	if _, err := g.cur(); err != nil {
		g.swap.RUnlock()
		return nil, err
	}
	return g.swap.RUnlock, nil
}

// refresh refreshes the source and, when it changed, swaps in a workspace
// over it. The source changes under the workspace reading it, so no tool
// call runs meanwhile.
func (g *Growing) refresh(first bool) {
	g.swap.Lock()
	defer g.swap.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checked = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*source.DefaultPartTimeout)
	changed, err := g.src.(source.Refresher).Refresh(ctx)
	cancel()
	if err != nil {
		g.lastErr = err.Error()
		if !errors.Is(err, source.ErrNoFiles) {
			g.opts.Logger.Warn("reading the captures", "err", err)
		}
		if changed {
			if old := g.ws.Swap(nil); old != nil {
				old.Close()
			}
		}
		return
	}
	if !changed && !first && g.ws.Load() != nil {
		return
	}
	if old := g.ws.Swap(nil); old != nil {
		old.Close()
	}
	if first, _ := g.src.Bounds(); first.IsZero() {
		g.lastErr = ""
		return
	}
	o := g.opts
	o.Source = g.src
	ws, err := Open(o)
	if err != nil {
		g.lastErr = err.Error()
		g.opts.Logger.Warn("opening the captures", "err", err)
		return
	}
	g.opens++
	g.lastErr = ""
	g.ws.Store(ws)
	from, to := ws.Bounds()
	g.opts.Logger.Info("captures read again", "source", g.src.Name(), "first", from, "last", to)
}

// Close closes the current workspace (and the snapshots').
func (g *Growing) Close() error {
	g.closeSnapshots()
	g.swap.Lock()
	defer g.swap.Unlock()
	if ws := g.ws.Swap(nil); ws != nil {
		return ws.Close()
	}
	return nil
}

func (g *Growing) cur() (*Workspace, error) {
	if ws := g.ws.Load(); ws != nil {
		return ws, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastErr != "" {
		return nil, fmt.Errorf("%w (%s; last error: %s)", ErrNothingYet, g.what, g.lastErr)
	}
	return nil, fmt.Errorf("%w (%s)", ErrNothingYet, g.what)
}

// Bounds implements tools.Backend.
func (g *Growing) Bounds() (first, last time.Time) {
	if ws, err := g.cur(); err == nil {
		return ws.Bounds()
	}
	return time.Time{}, time.Time{}
}

// Live implements tools.Backend: data keeps arriving.
func (g *Growing) Live() bool { return true }

// Status implements tools.Backend.
func (g *Growing) Status(ctx context.Context) (tools.Status, error) {
	ws, err := g.cur()
	var st tools.Status
	switch {
	case errors.Is(err, ErrNothingYet):
		// Nothing to read yet, but the sources (agents) can say how
		// they are: which answer, since when, what they dropped.
		st, _ = sourceStatus(ctx, g.src)
		st.Notes = append(st.Notes, "nothing captured yet: no packet has been stored by any source")
	case err != nil:
		return tools.Status{}, err
	default:
		if st, err = ws.Status(ctx); err != nil {
			return st, err
		}
	}
	g.mu.Lock()
	st.Notes = append(st.Notes, fmt.Sprintf("live: %s; the captures are read again when they changed, at most every %s, and windows are then dissected afresh (read %d times so far)",
		g.what, g.every, g.opens))
	if g.lastErr != "" {
		st.Notes = append(st.Notes, "last error reading the captures: "+g.lastErr)
	}
	g.mu.Unlock()
	return st, nil
}

// Flows implements tools.Backend.
func (g *Growing) Flows(ctx context.Context, from, to time.Time, f tools.Filter) ([]tools.Flow, error) {
	ws, err := g.cur()
	if err != nil {
		return nil, err
	}
	return ws.Flows(ctx, from, to, f)
}

// WritePCAP implements tools.Backend.
func (g *Growing) WritePCAP(ctx context.Context, from, to time.Time, f tools.Filter, maxPackets int) (tools.PCAPFile, error) {
	ws, err := g.cur()
	if err != nil {
		return tools.PCAPFile{}, err
	}
	return ws.WritePCAP(ctx, from, to, f, maxPackets)
}

// ReadPCAP implements tools.Backend.
func (g *Growing) ReadPCAP(id string, limit int64) (tools.PCAPFile, []byte, error) {
	ws, err := g.cur()
	if err != nil {
		return tools.PCAPFile{}, nil, err
	}
	return ws.ReadPCAP(id, limit)
}

// Dissect implements tools.Backend.
func (g *Growing) Dissect(ctx context.Context, from, to time.Time, progress func(done, total uint64)) (tools.DissectResult, error) {
	ws, err := g.cur()
	if err != nil {
		return tools.DissectResult{}, err
	}
	return ws.Dissect(ctx, from, to, progress)
}

// Undissected implements tools.Backend.
func (g *Growing) Undissected(from, to time.Time) ([]tools.Window, uint64) {
	ws, err := g.cur()
	if err != nil {
		return nil, 0
	}
	return ws.Undissected(from, to)
}

// Index implements tools.Backend; nil before anything was captured.
func (g *Growing) Index() *index.Index {
	ws, err := g.cur()
	if err != nil {
		return nil
	}
	return ws.Index()
}

// Pods implements tools.Backend.
func (g *Growing) Pods() []tools.Pod {
	if ws, err := g.cur(); err == nil {
		return ws.Pods()
	}
	return nil
}

// IdentitiesKnown implements tools.Backend.
func (g *Growing) IdentitiesKnown() time.Time {
	if ws, err := g.cur(); err == nil {
		return ws.IdentitiesKnown()
	}
	return time.Time{}
}

// Source returns what the workspace reads.
func (g *Growing) Source() source.Source { return g.src }

// Missing says which parts of the source did not answer (agents that are
// unreachable), for answers to say what they lack; nil when all did.
func (g *Growing) Missing() []string {
	if m, ok := g.src.(interface{ Missing() []string }); ok {
		return m.Missing()
	}
	return nil
}
