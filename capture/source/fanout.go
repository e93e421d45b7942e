package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
)

// DefaultPartTimeout bounds how long a fan-out waits for one part to
// answer a refresh.
const DefaultPartTimeout = 5 * time.Second

// FanoutOptions configure a Fanout. Parts are fixed sources (capture
// files, a local store); Discover and New add parts found at run time
// (agents listed by a Service's EndpointSlices, or given by URL).
type FanoutOptions struct {
	Parts []Source
	// Discover lists the keys of the parts there are now (agent URLs). A
	// part whose key is no longer listed leaves; a new key joins, made by
	// New. An error keeps the parts there were.
	Discover func(ctx context.Context) ([]string, error)
	New      func(key string) (Source, error)
	// Timeout bounds each part's refresh. Default DefaultPartTimeout.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Fanout is a source over many parts, captured on several nodes: a part
// that does not answer is left out of the answers (and said to be
// missing) rather than failing them. Fanout implements Source, Refresher
// and Multi.
type Fanout struct {
	o FanoutOptions

	mu       sync.Mutex
	parts    []*part // in key order, fixed parts first
	discover string  // the last discovery error
}

// part is one member of a fan-out with what is known of its health.
type part struct {
	key         string
	src         Source
	fixed       bool
	up          bool
	err         string
	since       time.Time // when it stopped answering
	lastContact time.Time
}

// NewFanout returns a fan-out over the fixed parts; call Refresh to
// discover the others.
func NewFanout(o FanoutOptions) *Fanout {
	if o.Timeout <= 0 {
		o.Timeout = DefaultPartTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := &Fanout{o: o}
	now := o.Now()
	for _, s := range o.Parts {
		f.parts = append(f.parts, &part{key: s.Name(), src: s, fixed: true, up: true, lastContact: now})
	}
	return f
}

// Refresh implements Refresher: it discovers the parts there are, then
// refreshes every part concurrently, each within the timeout. A part that
// fails is marked unreachable (its data left out until it answers again);
// that is a change, but not an error: Refresh fails only when no part is
// left.
func (f *Fanout) Refresh(ctx context.Context) (bool, error) {
	changed := false
	if f.o.Discover != nil {
		dctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
		keys, err := f.o.Discover(dctx)
		cancel()
		f.mu.Lock()
		if err != nil {
			f.discover = err.Error()
		} else {
			f.discover = ""
			changed = f.join(keys)
		}
		f.mu.Unlock()
	}
	f.mu.Lock()
	parts := slices.Clone(f.parts)
	f.mu.Unlock()
	type result struct {
		changed bool
		err     error
	}
	results := make([]result, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		r, ok := p.src.(Refresher)
		if !ok {
			continue
		}
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
			defer cancel()
			c, err := r.Refresh(pctx)
			results[i] = result{c, err}
		})
	}
	wg.Wait()
	now := f.o.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range parts {
		r := results[i]
		if r.err != nil {
			if p.up {
				p.up, p.since, changed = false, now, true
			}
			p.err = r.err.Error()
			continue
		}
		if _, ok := p.src.(Refresher); ok {
			p.lastContact = now
		}
		if !p.up {
			p.up, p.since, p.err, changed = true, time.Time{}, "", true
		}
		changed = changed || r.changed
	}
	up := slices.ContainsFunc(f.parts, func(p *part) bool { return p.up })
	if len(f.parts) > 0 && !up {
		var why []string
		for _, p := range f.parts {
			why = append(why, p.src.Name()+": "+p.err)
		}
		return changed, fmt.Errorf("no capture source answered (%s)", strings.Join(why, "; "))
	}
	if len(f.parts) == 0 {
		if f.discover != "" {
			return changed, fmt.Errorf("no capture sources: discovery failed: %s", f.discover)
		}
		return changed, errors.New("no capture sources (no agents found)")
	}
	return changed, nil
}

// join makes the parts those of keys (and the fixed ones), reporting
// whether that changed them. Callers hold mu.
func (f *Fanout) join(keys []string) bool {
	slices.Sort(keys)
	keys = slices.Compact(keys)
	changed := false
	var next []*part
	for _, p := range f.parts {
		if p.fixed || slices.Contains(keys, p.key) {
			next = append(next, p)
		} else {
			changed = true // gone
		}
	}
	for _, k := range keys {
		if slices.ContainsFunc(next, func(p *part) bool { return !p.fixed && p.key == k }) {
			continue
		}
		src, err := f.o.New(k)
		p := &part{key: k, src: src, up: false, since: f.o.Now()}
		if err != nil {
			p.err = err.Error()
			p.src = nil
			continue
		}
		// Down until its first refresh answers.
		p.err = "not contacted yet"
		next = append(next, p)
		changed = true
	}
	f.parts = next
	return changed
}

// Parts implements Multi: the parts that answered their last refresh.
func (f *Fanout) Parts() []Source {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Source
	for _, p := range f.parts {
		if p.up {
			out = append(out, p.src)
		}
	}
	return out
}

// Missing describes the parts left out of answers: "node-b (http://…)
// unreachable since 14:02:05Z: connection refused".
func (f *Fanout) Missing() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.parts {
		if !p.up {
			out = append(out, fmt.Sprintf("%s unreachable since %s (%s): its traffic is not in these answers",
				p.src.Name(), p.since.UTC().Format(time.RFC3339), p.err))
		}
	}
	if f.discover != "" {
		out = append(out, "agent discovery failed: "+f.discover+" (serving the agents found before)")
	}
	return out
}

// markDown records that a part failed while answering a question.
func (f *Fanout) markDown(src Source, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.parts {
		if p.src == src && p.up {
			p.up, p.since, p.err = false, f.o.Now(), err.Error()
		}
	}
}

// Name implements Source.
func (f *Fanout) Name() string {
	parts := f.Parts()
	return fmt.Sprintf("%d capture sources", len(parts))
}

// Bounds implements Source: from the first packet of any part to the last
// of any.
func (f *Fanout) Bounds() (first, last time.Time) {
	for _, p := range f.Parts() {
		a, b := p.Bounds()
		if a.IsZero() {
			continue
		}
		if first.IsZero() || a.Before(first) {
			first = a
		}
		if b.After(last) {
			last = b
		}
	}
	return first, last
}

// Flows implements Source: every part's flows (a flow seen on two nodes
// is listed by each). A part that fails is left out and marked
// unreachable.
func (f *Fanout) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	parts := f.Parts()
	all := make([][]flowindex.Summary, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Go(func() {
			flows, err := p.Flows(ctx, from, to)
			if err != nil && ctx.Err() == nil {
				f.markDown(p, err)
				return
			}
			all[i] = flows
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []flowindex.Summary
	for _, fl := range all {
		out = append(out, fl...)
	}
	return out, nil
}

// Packets implements Source: the parts' packets merged in time order. A
// part that fails (to open, or while read) ends early with a warning and
// is marked unreachable; the others go on.
func (f *Fanout) Packets(ctx context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	var srcs []capture.Source
	for _, p := range f.Parts() {
		s, err := p.Packets(ctx, from, to, sel)
		if err != nil {
			if ctx.Err() != nil {
				for _, o := range srcs {
					o.Close()
				}
				return nil, ctx.Err()
			}
			f.markDown(p, err)
			continue
		}
		srcs = append(srcs, &tolerant{Source: s, part: p, f: f})
	}
	if len(srcs) == 0 {
		return empty{name: "no capture sources"}, nil
	}
	return capture.Merge(srcs...), nil
}

// tolerant ends a part's packets at its first error, keeping the error as
// a warning, so that one node failing mid-read does not fail the others.
type tolerant struct {
	capture.Source
	part Source
	f    *Fanout
	warn []capture.Warning
}

func (t *tolerant) Next(p *capture.Packet) error {
	err := t.Source.Next(p)
	if err == nil || err == io.EOF {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	t.warn = append(t.warn, capture.Warning{Source: t.part.Name(), Err: fmt.Errorf("packets cut short: %w", err)})
	t.f.markDown(t.part, err)
	return io.EOF
}

func (t *tolerant) Warnings() []capture.Warning { return append(t.Source.Warnings(), t.warn...) }

// Count implements Source.
func (f *Fanout) Count(from, to time.Time) uint64 {
	var n uint64
	for _, p := range f.Parts() {
		n += p.Count(from, to)
	}
	return n
}

// LinkTypes implements Source.
func (f *Fanout) LinkTypes(from, to time.Time) []layers.LinkType {
	var links []layers.LinkType
	for _, p := range f.Parts() {
		for _, lt := range p.LinkTypes(from, to) {
			if !slices.Contains(links, lt) {
				links = append(links, lt)
			}
		}
	}
	slices.Sort(links)
	return links
}

// Status implements Source: every part, those that did not answer with
// their state, when they stopped and why.
func (f *Fanout) Status(ctx context.Context) Status {
	f.mu.Lock()
	parts := slices.Clone(f.parts)
	states := make([]part, len(parts))
	for i, p := range parts {
		states[i] = *p
	}
	f.mu.Unlock()
	var st Status
	for i, p := range parts {
		if !states[i].up {
			st.Parts = append(st.Parts, Part{Name: p.src.Name(), Kind: "agent", State: StateUnreachable,
				Since: states[i].since, LastContact: states[i].lastContact, Error: states[i].err})
			continue
		}
		ps := p.src.Status(ctx)
		for _, q := range ps.Parts {
			if q.State == "" {
				q.State = StateUp
			}
			if q.LastContact.IsZero() {
				q.LastContact = states[i].lastContact
			}
			st.Parts = append(st.Parts, q)
		}
		st.Decode.Add(ps.Decode)
	}
	return st
}

// Fingerprint implements Source: of the parts that answered.
func (f *Fanout) Fingerprint() string {
	h := sha256.New()
	for _, p := range f.Parts() {
		fmt.Fprintln(h, p.Fingerprint())
	}
	return "fanout " + hex.EncodeToString(h.Sum(nil))
}
