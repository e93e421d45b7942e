package analysis

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// Thresholds of Compare. A change is evidence of a regression only when it
// is both significant for the volume seen and large enough to matter.
const (
	// MinCalls is the fewest calls each window needs for a verdict other
	// than Inconclusive (and each side of a moment FindChangePoint tries).
	MinCalls = 20
	// ZSignificant is the one-sided z score (two-proportion test, or a
	// Poisson approximation for counts) a change must reach: about 1 in
	// 700 by chance, with many endpoints compared at once.
	ZSignificant = 3.0
	// minExcess is the fewest failures beyond what the baseline rate
	// predicts that count as a change.
	minExcess = 3
	// minLatencySamples and minLatencyTailSamples are the calls each
	// window needs to compare medians and p95s.
	minLatencySamples     = 20
	minLatencyTailSamples = 40
	// A latency shift counts when the quantile grows by latencyRatio and
	// by at least latencyFloor.
	latencyRatio = 1.5
	latencyFloor = 10 * time.Millisecond
	// An endpoint vanished when the baseline predicts at least
	// minVanished calls in the candidate window and it had none.
	minVanished = 10
	// An endpoint's traffic fell when the candidate has less than
	// dropFraction of the calls the baseline predicts (and significantly).
	dropFraction = 0.25
	// examplesLimit is how many of the newest matching calls Examples
	// reads.
	examplesLimit = 200
)

// Verdict is what a comparison concludes.
type Verdict string

// Verdicts.
const (
	// Regressed: there is evidence (Comparison.Evidence[0] is the most
	// significant).
	Regressed Verdict = "regressed"
	// OK: enough traffic on both sides and no significant change.
	OK Verdict = "ok"
	// Inconclusive: no evidence, and fewer than MinCalls calls on a side.
	Inconclusive Verdict = "inconclusive"
)

// Kind is what a piece of evidence is about.
type Kind int

// Kinds of evidence, failures before slowness before changes in volume.
const (
	// KindErrors: an endpoint's error rate rose.
	KindErrors Kind = iota
	// KindResolution: a name-resolution protocol's failures rose (DNS
	// lookups that fail); its Description's Resolution is set.
	KindResolution
	// KindConnections: connections failed (refused, reset, unanswered)
	// more than the baseline predicts.
	KindConnections
	// KindLatency: an endpoint's median or p95 latency shifted.
	KindLatency
	// KindVanished: an endpoint had calls before and none after.
	KindVanished
	// KindFell: an endpoint's calls fell to a fraction of what the
	// baseline predicts (a caller that stopped calling).
	KindFell
)

// rank orders kinds of evidence: failures before slowness before changes
// in volume.
func (k Kind) rank() int {
	switch k {
	case KindErrors, KindResolution:
		return 0
	case KindConnections:
		return 1
	case KindLatency:
		return 2
	}
	return 3
}

// Side is one window of a comparison.
type Side struct {
	Window Window
	// Total sums the window's calls.
	Total     index.Group
	endpoints map[string]*index.Group
	workloads map[string]*index.Group
	pods      map[string]*index.Group // server pods
	connFails map[Conn]uint64
}

// Conn is a kind of failed connection: its state (refused, reset,
// unanswered) and peers, the client by pod (namespace/pod), service
// (namespace/svc/name) or address, the server likewise but with its port.
type Conn struct{ State, Client, Server string }

// Comparison is what Compare found.
type Comparison struct {
	Base, Cand *Side
	// Filter is the candidate's filter.
	Filter Filter
	// Evidence is every significant change, most significant first.
	Evidence []Evidence
	// Weak are rises not significant for their volume, endpoints' (in
	// endpoint order) then connections'.
	Weak []Weak
	// Compared counts the endpoints compared.
	Compared int
	// Appeared are the endpoints the candidate has and the baseline not,
	// in key order.
	Appeared []*index.Group
	// ByWorkload and ByPod compare the servers' failures by workload and
	// by pod; servers without an identity are in ByWorkload alone, by
	// address.
	ByWorkload, ByPod []ServerChange
	// Anonymous is set when no server has an identity.
	Anonymous bool
}

// Evidence is one significant change.
type Evidence struct {
	Kind Kind
	// Key is the endpoint (server and route) it is about; empty for
	// KindConnections.
	Key string
	// Impact ranks evidence of a kind: excess failures (KindErrors,
	// KindResolution, KindConnections), seconds added over the calls
	// (KindLatency), calls missing (KindVanished, KindFell).
	Impact float64
	// Before and After are the endpoint's calls in the baseline and the
	// candidate; Before is nil for an endpoint new in the candidate,
	// After for KindVanished. Both nil for KindConnections.
	Before, After *index.Group
	// NewStatuses are the failing statuses of After the baseline did not
	// have, most frequent first (KindErrors, KindResolution).
	NewStatuses []string
	// Expected is how many calls the baseline predicts in the candidate
	// (KindVanished, KindFell).
	Expected float64
	// LatencySamples count the calls with a latency before and after
	// (KindLatency).
	LatencySamples [2]uint64
	// Added is the time each call gained (KindLatency).
	Added time.Duration
	// Cause is the slower dependency that explains a latency shift; nil
	// when none does (KindLatency).
	Cause *Cause
	// Conn is the connections' kind and peers and Conns how many failed
	// before and after (KindConnections).
	Conn  Conn
	Conns [2]uint64
	// Examples are the candidate's calls that show the change (KindErrors,
	// KindResolution, KindLatency).
	Examples *Examples
}

// Cause is a slower endpoint whose example calls come from the server
// pods of a slower caller, and the time it added per call.
type Cause struct {
	Key   string
	Added time.Duration
}

// Examples are calls that show a piece of evidence, in the candidate
// window.
type Examples struct {
	// Query is the search_calls query that finds them.
	Query  string
	Window Window
	// Read counts the newest calls read (at most examplesLimit) of Total
	// matching.
	Read  int
	Total uint64
	// Servers and Clients count the calls read by server and client pod
	// (EndpointName).
	Servers, Clients map[string]int
	// ID is the oldest call read; valid iff Read > 0.
	ID string
}

// Weak is a rise not significant for its volume: an endpoint's failed
// calls of its calls answered (Endpoint set), or failed connections (Conn
// set, Calls unset).
type Weak struct {
	Endpoint                                           string
	Conn                                               *Conn
	FailedBefore, CallsBefore, FailedAfter, CallsAfter uint64
}

// ServerChange is a server (workload or pod) that is new, gone or served
// failures on either side.
type ServerChange struct {
	Key string
	// Before and After are its calls; nil when it has none on that side.
	Before, After *index.Group
	// Significant is set when both are present and the failure rate rose
	// significantly for the volume.
	Significant bool
}

// Verdict concludes the comparison.
func (c *Comparison) Verdict() Verdict {
	switch {
	case len(c.Evidence) > 0:
		return Regressed
	case c.Base.Total.Calls < MinCalls || c.Cand.Total.Calls < MinCalls:
		return Inconclusive
	}
	return OK
}

// Compare compares the calls (and failed connections) of base matching fb
// with those of cand matching fc (the same filter, or the same but for the
// version when versions are compared): per endpoint, new error statuses
// and error rates, latency quantiles, endpoints that appeared, vanished or
// fell; then connection failures, and the servers' failures by workload
// and by pod. Significance accounts for volume and for the windows'
// lengths.
func Compare(ctx context.Context, src Source, base, cand Window, fb, fc Filter) (*Comparison, error) {
	c := &Comparison{Filter: fc}
	var err error
	if c.Base, err = summaries(ctx, src.Index(), base, fb); err != nil {
		return nil, err
	}
	if c.Cand, err = summaries(ctx, src.Index(), cand, fc); err != nil {
		return nil, err
	}
	for i, s := range []*Side{c.Base, c.Cand} {
		f := []Filter{fb, fc}[i]
		flows, err := src.Flows(ctx, s.Window.From, s.Window.To, f)
		if err != nil {
			return nil, err
		}
		for _, fl := range flows {
			switch fl.State {
			case "refused", "reset", "unanswered":
			default:
				continue
			}
			if fl.Began.Before(s.Window.From) || !fl.Began.Before(s.Window.To) {
				continue // counted in the window it began in
			}
			s.connFails[Conn{fl.State, peerName(&fl.Src, false), peerName(&fl.Dst, true)}]++
		}
	}
	// scale converts a baseline count to what the candidate's span
	// predicts.
	scale := float64(cand.To.Sub(cand.From)) / float64(base.To.Sub(base.From))
	keys := unionKeys(c.Base.endpoints, c.Cand.endpoints)
	c.Compared = len(keys)
	for _, k := range keys {
		bg, cg := c.Base.endpoints[k], c.Cand.endpoints[k]
		if err := c.endpoint(ctx, src.Index(), k, bg, cg, scale); err != nil {
			return nil, err
		}
	}
	c.connections(scale)
	c.rank()
	c.explainLatency()
	c.ByWorkload = changes(c.Base.workloads, c.Cand.workloads)
	// A server without an identity is its address in both groupings:
	// listed once, with the workloads.
	c.ByPod = changes(without(c.Base.pods, c.Base.workloads, c.Cand.workloads), without(c.Cand.pods, c.Base.workloads, c.Cand.workloads))
	c.Anonymous = true
	for _, m := range []map[string]*index.Group{c.Base.workloads, c.Cand.workloads} {
		for k := range m {
			if k != "" && !isAddress(k) {
				c.Anonymous = false
			}
		}
	}
	return c, nil
}

// summaries reads a window's calls by endpoint, workload and server pod.
func summaries(ctx context.Context, ix *index.Index, w Window, f Filter) (*Side, error) {
	s := &Side{Window: w, endpoints: map[string]*index.Group{}, workloads: map[string]*index.Group{}, pods: map[string]*index.Group{},
		connFails: map[Conn]uint64{}}
	bys := []index.GroupBy{index.ByNone, index.ByEndpoint, index.ByWorkload, index.ByPod}
	sums, err := ix.SummarizeBy(ctx, index.SummaryQuery{From: w.From, To: w.To, Filter: f.Index(), Limit: 2000, TopErrors: 5}, bys...)
	if err != nil {
		return nil, err
	}
	for b, by := range bys {
		sum := sums[b]
		for i := range sum.Groups {
			g := &sum.Groups[i]
			switch by {
			case index.ByNone:
				s.Total = *g
			case index.ByEndpoint:
				s.endpoints[g.Key] = g
			case index.ByWorkload:
				s.workloads[g.Key] = g
			case index.ByPod:
				s.pods[g.Key] = g
			}
		}
	}
	return s, nil
}

// endpoint compares one endpoint's calls: its volume, its failures and its
// latency.
func (c *Comparison) endpoint(ctx context.Context, ix *index.Index, key string, bg, cg *index.Group, scale float64) error {
	g := cmp.Or(cg, bg)
	nb, nc := answered(bg), answered(cg)
	fb, fc := failed(bg), failed(cg)
	switch {
	case cg == nil:
		expected := float64(bg.Calls) * scale
		if expected >= minVanished {
			c.Evidence = append(c.Evidence, Evidence{Kind: KindVanished, Key: key, Impact: expected, Before: bg, Expected: expected})
		}
		return nil
	case bg == nil:
		c.Appeared = append(c.Appeared, cg)
	default:
		// Traffic that fell to a fraction of what the baseline predicts
		// (a caller that stopped calling) is as telling as errors.
		expected := float64(bg.Calls) * scale
		if expected >= minVanished && float64(cg.Calls) < expected*dropFraction &&
			(expected-float64(cg.Calls))/math.Sqrt(expected) >= ZSignificant {
			c.Evidence = append(c.Evidence, Evidence{Kind: KindFell, Key: key, Impact: expected - float64(cg.Calls),
				Before: bg, After: cg, Expected: expected})
		}
	}
	// Error rate.
	if fc > 0 {
		var rateBefore float64
		if nb > 0 {
			rateBefore = float64(fb) / float64(nb)
		} else if n := answered(&c.Base.Total); n > 0 {
			rateBefore = float64(c.Base.Total.Failed) / float64(n) // a new endpoint: against the baseline's overall rate
		}
		excess := float64(fc) - rateBefore*float64(nc)
		var z float64
		if nb > 0 {
			z = ZTwoProportions(fb, nb, fc, nc)
		} else {
			// No baseline calls: the candidate's rate must exceed the
			// baseline's overall rate with confidence.
			if WilsonLow(fc, nc, ZSignificant) > rateBefore {
				z = ZSignificant
			}
		}
		newStatuses := newErrorStatuses(bg, cg)
		if excess >= minExcess && z >= ZSignificant {
			// A name-resolution protocol's failures are failed lookups
			// ("DNS failures"), not an endpoint's errors.
			kind := KindErrors
			if proto.Described(g.Proto).Resolution {
				kind = KindResolution
			}
			status := ""
			if len(cg.TopErrors) > 0 {
				status = cg.TopErrors[0].Value
				if len(newStatuses) > 0 {
					status = newStatuses[0]
				}
			}
			ex, err := c.examples(ctx, ix, g, status, "")
			if err != nil {
				return err
			}
			c.Evidence = append(c.Evidence, Evidence{Kind: kind, Key: key, Impact: excess, Before: bg, After: cg,
				NewStatuses: newStatuses, Examples: ex})
		} else if fc > fb || len(newStatuses) > 0 {
			c.Weak = append(c.Weak, Weak{Endpoint: key, FailedBefore: fb, CallsBefore: nb, FailedAfter: fc, CallsAfter: nc})
		}
	}
	// Latency.
	if bg == nil || cg == nil {
		return nil
	}
	sb, sc := bg.Rated()-bg.Outcomes["no_response"], cg.Rated()-cg.Outcomes["no_response"]
	shifted := func(before, after time.Duration) bool {
		return float64(after) >= latencyRatio*float64(before) && after-before >= latencyFloor
	}
	if sb < minLatencySamples || sc < minLatencySamples {
		return nil
	}
	median := shifted(bg.P50, cg.P50)
	tail := sb >= minLatencyTailSamples && sc >= minLatencyTailSamples && shifted(bg.P95, cg.P95)
	if !median && !tail {
		return nil
	}
	// Added time: the shift of the quantile that moved, over the calls.
	added := cg.P50 - bg.P50
	if !median {
		added = (cg.P95 - bg.P95) / 20 // the slowest 5%
	}
	slow := bg.P95
	if !median {
		slow = max(bg.P99, bg.P95)
	}
	ex, err := c.examples(ctx, ix, g, "", "latency_ms:>="+strconv.FormatFloat(float64(slow)/1e6, 'f', 1, 64))
	if err != nil {
		return err
	}
	c.Evidence = append(c.Evidence, Evidence{Kind: KindLatency, Key: key, Impact: added.Seconds() * float64(sc), Before: bg, After: cg,
		LatencySamples: [2]uint64{sb, sc}, Added: added, Examples: ex})
	return nil
}

// newErrorStatuses lists the candidate's failing statuses the baseline
// did not have, most frequent first.
func newErrorStatuses(bg, cg *index.Group) []string {
	var out []string
	for _, e := range cg.TopErrors {
		seen := false
		if bg != nil {
			for _, o := range bg.TopErrors {
				seen = seen || o.Value == e.Value
			}
		}
		if !seen {
			out = append(out, e.Value)
		}
	}
	return out
}

// examples finds the newest calls of an endpoint in the candidate window
// (with a status, or matching an extra clause) and counts their pods on
// both sides.
func (c *Comparison) examples(ctx context.Context, ix *index.Index, g *index.Group, status, extra string) (*Examples, error) {
	q := endpointQuery(g)
	if status != "" {
		q += " +status:" + quoteValue(status)
	}
	if extra != "" {
		q += " +" + extra
	}
	w := c.Cand.Window
	res, err := ix.Search(ctx, index.Query{From: w.From, To: w.To, Text: q, Filter: c.Filter.Index(), Limit: examplesLimit})
	if err != nil {
		return nil, err
	}
	ex := &Examples{Query: q, Window: w, Read: len(res.Calls), Total: res.Total, Servers: map[string]int{}, Clients: map[string]int{}}
	for _, call := range res.Calls {
		ex.Clients[EndpointName(&call.Src)]++
		ex.Servers[EndpointName(&call.Dst)]++
	}
	if len(res.Calls) > 0 {
		ex.ID = res.Calls[len(res.Calls)-1].ID
	}
	return ex, nil
}

// endpointQuery is the search_calls query for an endpoint group's calls.
func endpointQuery(g *index.Group) string {
	var parts []string
	switch g.ServerField {
	case "service":
		parts = append(parts, "+dst.service:"+quoteValue(g.Server))
	case "workload":
		parts = append(parts, "+dst.workload:"+quoteValue(g.Server))
	case "address":
		if i := strings.LastIndexByte(g.Server, ':'); i > 0 {
			parts = append(parts, "+dst.ip:"+quoteValue(strings.Trim(g.Server[:i], "[]")), "+dst.port:"+g.Server[i+1:])
		}
	}
	if g.Route != "" {
		parts = append(parts, "+route:"+quoteValue(g.Route))
	}
	return strings.Join(parts, " ")
}

// quoteValue quotes a query value when it holds what the query syntax
// reads specially.
func quoteValue(v string) string {
	if strings.ContainsAny(v, " :\"+-()*?~/{}[]^!\\") {
		return strconv.Quote(v)
	}
	return v
}

// connections finds connection failures the baseline does not predict.
func (c *Comparison) connections(scale float64) {
	var keys []Conn
	for _, m := range []map[Conn]uint64{c.Base.connFails, c.Cand.connFails} {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, func(x, y Conn) int {
		return cmp.Or(strings.Compare(x.State, y.State), strings.Compare(x.Client, y.Client), strings.Compare(x.Server, y.Server))
	})
	for _, k := range keys {
		nb, nc := c.Base.connFails[k], c.Cand.connFails[k]
		expected := float64(nb) * scale
		excess := float64(nc) - expected
		if excess < minExcess || ZCount(nc, expected) < ZSignificant {
			if nc > nb {
				c.Weak = append(c.Weak, Weak{Conn: &k, FailedBefore: nb, FailedAfter: nc})
			}
			continue
		}
		c.Evidence = append(c.Evidence, Evidence{Kind: KindConnections, Impact: excess, Conn: k, Conns: [2]uint64{nb, nc}})
	}
}

// explainLatency finds slow endpoints whose added time is explained by a
// slower dependency: the dependency's example calls come from the slow
// endpoint's server pods, and it added at least half as much per call. The
// dependency then comes first, and the caller names it as its Cause.
func (c *Comparison) explainLatency() {
	var slow []int
	for i, e := range c.Evidence {
		if e.Kind == KindLatency {
			slow = append(slow, i)
		}
	}
	moved := false
	for _, ci := range slow {
		caller := &c.Evidence[ci]
		for _, di := range slow {
			dep := &c.Evidence[di]
			if di == ci || dep.Added*2 < caller.Added {
				continue
			}
			calledFrom := false
			for pod := range caller.Examples.Servers {
				calledFrom = calledFrom || dep.Examples.Clients[pod] > 0
			}
			if !calledFrom {
				continue
			}
			caller.Cause = &Cause{Key: dep.Key, Added: dep.Added}
			if dep.Impact <= caller.Impact {
				dep.Impact = caller.Impact * 1.001 // the cause before what it causes
				moved = true
			}
			break
		}
	}
	if moved {
		c.rank()
	}
}

// rank orders the evidence: failures before slowness before volume, then
// by impact.
func (c *Comparison) rank() {
	slices.SortStableFunc(c.Evidence, func(x, y Evidence) int {
		return cmp.Or(cmp.Compare(x.Kind.rank(), y.Kind.rank()), cmp.Compare(y.Impact, x.Impact))
	})
}

// changes compares one grouping of the servers (workloads or pods): those
// that are new, gone, or served failures on either side, in key order.
func changes(base, cand map[string]*index.Group) []ServerChange {
	var out []ServerChange
	for _, k := range unionKeys(base, cand) {
		if k == "" {
			continue
		}
		bg, cg := base[k], cand[k]
		switch {
		case bg == nil, cg == nil:
			out = append(out, ServerChange{Key: k, Before: bg, After: cg})
		case cg.Failed > 0 || bg.Failed > 0:
			out = append(out, ServerChange{Key: k, Before: bg, After: cg,
				Significant: ZTwoProportions(bg.Failed, answered(bg), cg.Failed, answered(cg)) >= ZSignificant})
		}
	}
	return out
}

// without returns the groups of m whose keys are in none of others.
func without(m map[string]*index.Group, others ...map[string]*index.Group) map[string]*index.Group {
	out := make(map[string]*index.Group, len(m))
	for k, g := range m {
		if !slices.ContainsFunc(others, func(o map[string]*index.Group) bool { return o[k] != nil }) {
			out[k] = g
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// answered is the calls whose outcome counts toward an error rate.
func answered(g *index.Group) uint64 {
	if g == nil {
		return 0
	}
	return g.Rated()
}

func failed(g *index.Group) uint64 {
	if g == nil {
		return 0
	}
	return g.Failed
}
