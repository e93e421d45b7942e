package workspace

import (
	"context"
	"net/netip"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/tools"
)

// Undissected implements tools.Backend: the parts of [from, to) not
// dissected yet and how many packets dissecting them reads at most.
func (w *Workspace) Undissected(from, to time.Time) ([]tools.Window, uint64) {
	gaps, _, packets := w.plan(from, to)
	return gaps, packets
}

// plan splits [from, to), limited to the data, into the parts not
// dissected yet (gaps) and those dissected before (covered), and bounds
// the packets dissecting the gaps reads, the context around them included.
func (w *Workspace) plan(from, to time.Time) (gaps, covered []tools.Window, packets uint64) {
	from, to = w.clamp(from, to)
	if !from.Before(to) {
		return nil, nil, 0
	}
	w.mu.RLock()
	gaps, covered = w.covered.split(from, to)
	w.mu.RUnlock()
	for _, g := range gaps {
		packets += w.src.Count(g.From.Add(-w.opts.Lookback), g.To.Add(w.opts.Lookahead))
	}
	return gaps, covered, packets
}

// Dissect implements tools.Backend. It waits for a dissection already
// running (the window may be the same), then dissects the parts of [from,
// to) still not dissected. Cancelling ctx stops it between packet batches:
// parts finished stay dissected, the part being read is dropped.
func (w *Workspace) Dissect(ctx context.Context, from, to time.Time, progress func(done, total uint64)) (tools.DissectResult, error) {
	select {
	case w.busy <- struct{}{}:
	case <-ctx.Done():
		return tools.DissectResult{}, ctx.Err()
	}
	defer func() { <-w.busy }()
	start := time.Now()
	gaps, covered, total := w.plan(from, to)
	res := tools.DissectResult{Calls: map[string]uint64{}, Skipped: covered}
	var done uint64
	for _, g := range gaps {
		read, err := w.dissectGap(ctx, g, &res, func(n uint64) {
			if progress != nil {
				progress(min(done+n, total), total)
			}
		})
		done += read
		if err != nil {
			res.Took = time.Since(start)
			return res, err
		}
		res.Dissected = append(res.Dissected, g)
	}
	res.Took = time.Since(start)
	return res, nil
}

// dissectGap dissects one window not dissected before and marks it
// dissected once its calls are indexed, adding what it found to res (the
// packets inside the window among them). It returns the packets read,
// the context around the window included.
//
// A source captured on several nodes is dissected node by node: the same
// call between pods of two nodes was captured by both agents (once
// addressed to the Service, before the client's node translated the
// address, once to the pod), and is indexed once (see merge).
func (w *Workspace) dissectGap(ctx context.Context, g tools.Window, res *tools.DissectResult, progress func(uint64)) (uint64, error) {
	parts := []source.Source{w.src}
	multi := false
	if m, ok := w.src.(source.Multi); ok {
		parts, multi = m.Parts(), true
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	// The index takes calls on its own goroutine while dissection goes on,
	// in Adds of the size it indexes fastest (one Bleve batch per worker).
	indexBatch := w.ix.AddSize()
	// Two Adds run at once: the index stores one's calls while it indexes
	// the other's.
	batches := make(chan []*proto.Call, 1)
	indexed := make(chan error, 2)
	for range 2 {
		go func() {
			var err error
			for b := range batches {
				if err == nil {
					if err = w.ix.Add(ctx, b); err != nil {
						cancel(err)
					}
				}
			}
			indexed <- err
		}()
	}

	var (
		batch  []*proto.Call
		labels = map[flowindex.Key]flowLabel{}
		part   dissect.Stats // of the calls and flows inside g
		flows  uint64
		undis  uint64
		read   uint64
		inside uint64
		err    error
	)
	var batchBytes int
	send := func(c *proto.Call) {
		part.CountCall(c)
		if batch == nil {
			batch = make([]*proto.Call, 0, indexBatch)
		}
		batch = append(batch, c)
		batchBytes += callBytes(c)
		if len(batch) == indexBatch || batchBytes >= maxBatchBytes {
			batches <- batch
			batch, batchBytes = nil, 0
		}
	}
	// Several nodes: their calls are merged, piece by piece of g (see
	// pieces), the calls near a piece's end held over to the next.
	pieces := []tools.Window{g}
	var (
		mg    *merger
		nodes []string
	)
	if multi {
		pieces, mg = w.pieces(g), newMerger()
		for _, p := range parts {
			nodes = append(nodes, nodeName(p))
		}
	}
pieces:
	for _, pc := range pieces {
		held := make([][]*proto.Call, len(parts))
		for i, p := range parts {
			var src capture.Source
			src, err = p.Packets(ctx, pc.From.Add(-w.opts.Lookback), pc.To.Add(w.opts.Lookahead), nil)
			if err != nil {
				break pieces
			}
			cnt := &counting{Source: src, from: pc.From, to: pc.To}
			opts := dissect.Options{
				Protocols:    w.protocols,
				Correlations: w.corr,
				Identity:     w.opts.Identity,
				Limits:       w.opts.Limits,
				OnCall: func(c *dissect.Call) {
					if c.TS.Before(pc.From) || !c.TS.Before(pc.To) {
						return // another window's call
					}
					if !multi {
						send(c)
						return
					}
					if nodes[i] != "" {
						c.CapturedOn = []string{nodes[i]}
					}
					held[i] = append(held[i], c)
				},
				OnFlow: func(f *dissect.Flow) {
					// A flow is the piece's where it begins (the first
					// piece's when it began before g).
					if f.Last.Before(g.From) || !f.First.Before(g.To) {
						return
					}
					if at := maxTime(f.First, g.From); at.Before(pc.From) || !at.Before(pc.To) {
						return
					}
					flows++
					part.MissingBytes += f.MissingBytes
					if f.Proto == "" {
						undis++
						if f.ICMP == "" {
							return
						}
					}
					if k, ok := flowKey(f); ok {
						labels[k] = flowLabel{f.Proto, f.Encrypted, f.Decryption, f.ICMP, f.State == "refused" && f.ICMP != ""}
					}
				},
			}
			before := read
			_, _, err = dissect.NewParallel(opts, w.opts.Workers).Run(ctx, cnt, func(n uint64) {
				read = before + n
				progress(read)
			})
			cnt.Close()
			inside += cnt.inside
			if err != nil {
				break pieces
			}
		}
		if multi {
			mg.addRound(held)
			mg.flush(pc.To, send)
		}
	}
	if err == nil && multi {
		mg.flush(time.Time{}, send)
		res.Merged += mg.dups
	}
	if len(batch) > 0 && err == nil {
		batches <- batch
	}
	close(batches)
	for range 2 {
		if ierr := <-indexed; ierr != nil {
			err = ierr // it cancelled the dissection
		}
	}
	if err != nil {
		return read, err
	}
	w.mu.Lock()
	w.covered = w.covered.add(g.From, g.To)
	for p, n := range part.Calls {
		w.calls[p] += n
		res.Calls[p] += n
	}
	for k, p := range labels {
		w.labels[k] = p
	}
	w.missing += part.MissingBytes
	if err := w.saveState(); err != nil {
		// The calls are indexed; a later run on this directory will
		// dissect the window again.
		w.opts.Logger.Warn("saving the workspace state", "err", err)
	}
	w.mu.Unlock()
	res.Packets += inside
	res.Unanswered += part.Unanswered
	res.Truncated += part.Truncated
	res.Malformed += part.Malformed
	res.Flows += flows
	res.Undissected += undis
	res.MissingBytes += part.MissingBytes
	return read, nil
}

// maxBatchBytes bounds the calls of one Add by their size (callBytes): up
// to four Adds' calls are in memory at once (two being added, one queued,
// one being filled), and Index.AddSize calls with headers and bodies
// could otherwise take hundreds of megabytes.
const maxBatchBytes = 16 << 20

// callBytes estimates the memory c holds.
func callBytes(c *proto.Call) int {
	n := 512 + len(c.Path) + len(c.Error) + len(c.Request.Body) + len(c.Response.Body)
	for _, h := range c.Request.Headers {
		n += 32 + len(h.Name) + len(h.Value)
	}
	for _, h := range c.Response.Headers {
		n += 32 + len(h.Name) + len(h.Value)
	}
	return n
}

// pieces splits g, a window of several nodes, into pieces of time holding
// at most about Options.MergePackets packets (of a minute at least): a
// piece's calls are held until all nodes have been read, to merge copies,
// so a piece bounds the memory that takes. Each piece is read with its own
// Lookback and Lookahead, the price of splitting.
func (w *Workspace) pieces(g tools.Window) []tools.Window {
	limit := uint64(w.opts.MergePackets)
	span := g.To.Sub(g.From)
	n := w.src.Count(g.From, g.To)
	if n <= limit || span <= minPiece {
		return []tools.Window{g}
	}
	step := max(span/time.Duration((n+limit-1)/limit), minPiece)
	var out []tools.Window
	for from := g.From; from.Before(g.To); from = from.Add(step) {
		out = append(out, tools.Window{From: from, To: minTime(from.Add(step), g.To)})
	}
	return out
}

// minPiece is the shortest piece pieces makes: reading a piece costs its
// Lookback and Lookahead more.
const minPiece = time.Minute

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// nodeName is the node a part of a source captured on; "" for capture
// files and this machine's store.
func nodeName(s source.Source) string {
	for _, p := range s.Status(context.Background()).Parts {
		if p.Node != "" {
			return p.Node
		}
	}
	return ""
}

// flowKey is the flow index's key of a dissected flow.
func flowKey(f *dissect.Flow) (flowindex.Key, bool) {
	p, ok := dissect.TransportProto(f.Transport)
	return flowindex.NewKey(netip.AddrPortFrom(f.Src.IP, f.Src.Port), netip.AddrPortFrom(f.Dst.IP, f.Dst.Port), p), ok
}

// counting counts the packets of a source captured inside [from, to).
type counting struct {
	capture.Source
	from, to time.Time
	inside   uint64
}

func (c *counting) Next(p *capture.Packet) error {
	err := c.Source.Next(p)
	if err == nil && !p.Timestamp.Before(c.from) && p.Timestamp.Before(c.to) {
		c.inside++
	}
	return err
}
