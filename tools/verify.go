package tools

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// Thresholds of compare_windows. A change is evidence of a regression only
// when it is both significant for the volume seen and large enough to
// matter.
const (
	// minCalls is the fewest calls each window needs for a verdict other
	// than inconclusive.
	minCalls = 20
	// zSignificant is the one-sided z score (two-proportion test, or a
	// Poisson approximation for counts) a change must reach: about 1 in
	// 700 by chance, with many endpoints compared at once.
	zSignificant = 3.0
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
)

type compareArgs struct {
	RolloutAt        string `json:"rollout_at,omitempty" jsonschema:"when the change went out (RFC 3339, or relative to the newest packet like -20m): the baseline is the span before it, the candidate the span after"`
	Window           string `json:"window,omitempty" jsonschema:"with rollout_at, the span on each side, like 10m; default: the longest equal spans the data has on both sides"`
	BaselineFrom     string `json:"baseline_from,omitempty" jsonschema:"instead of rollout_at: start of the baseline window; default: as long before baseline_to as the candidate window is long"`
	BaselineTo       string `json:"baseline_to,omitempty" jsonschema:"end of the baseline window, exclusive; default: candidate_from"`
	CandidateFrom    string `json:"candidate_from,omitempty" jsonschema:"instead of rollout_at: start of the candidate window (required without rollout_at)"`
	CandidateTo      string `json:"candidate_to,omitempty" jsonschema:"end of the candidate window, exclusive; default: the end of the data"`
	Label            string `json:"label,omitempty" jsonschema:"a pod label, key=value (app=cart or version=1.5.0; several comma-separated): compare only the workload whose pods carry it"`
	BaselineVersion  string `json:"baseline_version,omitempty" jsonschema:"instead of two times: compare the calls served by the pods of this revision (pod-template-hash or controller-revision-hash, as list_workloads shows) with those of candidate_version, over the same window (candidate_from/candidate_to, default all the data), as during a canary or a rolling update"`
	CandidateVersion string `json:"candidate_version,omitempty" jsonschema:"the new revision, with baseline_version"`
	filterArgs
	budgetArgs
}

// CompareWindows is the compare_windows tool.
func CompareWindows(b Backend) Tool {
	return newTool(toolSpec{name: "compare_windows", title: "Compare windows (verify a rollout)",
		desc: "Verify a deploy or find what changed: compare a candidate window with a baseline (or the spans before and " +
			"after rollout_at; with neither, the moment the error rate rose most in all the data) and answer with a verdict — regressed, ok, or inconclusive and why — then the evidence, most " +
			"significant first: new error statuses and error-rate changes per endpoint (with counts; significance accounts for " +
			"volume), latency shifts (p50/p95/p99 before → after), endpoints that appeared, vanished or fell silent, new DNS failures, new " +
			"connection failures (refused, reset, unanswered), each naming the pods on both sides and the search_calls or " +
			"list_flows arguments that show examples. Relative times count back from the newest packet; windows not dissected " +
			"yet are dissected first when small enough.",
		readOnly: true, idempotent: true},
		func(ctx context.Context, req mcp.CallToolRequest, a compareArgs, budgetMax int) (*mcp.CallToolResult, error) {
			f, err := a.filter()
			if err != nil {
				return nil, err
			}
			if f, err = withLabel(b, f, a.Label); err != nil {
				return nil, err
			}
			var notes []string
			if a.BaselineVersion != "" || a.CandidateVersion != "" {
				return compareVersions(ctx, b, req, a, f, budgetMax)
			}
			if a.RolloutAt == "" && a.Window == "" && a.BaselineFrom == "" && a.BaselineTo == "" && a.CandidateFrom == "" && a.CandidateTo == "" {
				// Nothing to compare named: find when the error rate changed.
				if msg := emptyWindow(b, time.Time{}, time.Time{}); msg != "" {
					return nil, argError(msg)
				}
				note, err := ensureDissected(ctx, b, req, time.Time{}, time.Time{})
				if err != nil {
					return nil, err
				}
				if note != "" {
					notes = append(notes, note)
				}
				at, why, err := changePoint(ctx, b, f)
				if err != nil {
					return nil, err
				}
				a.RolloutAt = at.Format(time.RFC3339Nano)
				notes = append(notes, why)
			}
			base, cand, err := a.windows(b)
			if err != nil {
				return nil, err
			}
			for _, w := range []Window{base, cand} {
				note, err := ensureDissected(ctx, b, req, w.From, w.To)
				if err != nil {
					return nil, err
				}
				if note != "" {
					notes = append(notes, note)
				}
			}
			res, err := compare(ctx, b, base, cand, f)
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(res.render(budgetMax, notes)), nil
		})
}

// withLabel narrows f to the workload whose pods carry every key=value of
// label.
func withLabel(b Backend, f Filter, label string) (Filter, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return f, nil
	}
	want := map[string]string{}
	for part := range strings.SplitSeq(label, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return f, argErrorf("label %q is not key=value (like app=cart or version=1.5.0)", label)
		}
		want[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	pods := b.Pods()
	if len(pods) == 0 {
		return f, argErrorf("label %q: no pods are known, so labels cannot be resolved (start the server with --cluster); filter by workload or service instead", label)
	}
	var workloads []string
	for _, p := range pods {
		match := true
		for k, v := range want {
			if p.Labels[k] != v {
				match = false
				break
			}
		}
		if match && (f.Namespace == "" || strings.EqualFold(f.Namespace, p.Namespace)) {
			w := p.Namespace + "/" + p.Workload
			if !slices.Contains(workloads, w) {
				workloads = append(workloads, w)
			}
		}
	}
	slices.Sort(workloads)
	switch len(workloads) {
	case 0:
		return f, argErrorf("no pod carries label %s; list_workloads shows the labels pods have", label)
	case 1:
	default:
		return f, argErrorf("label %s is on pods of %d workloads (%s): add another label or the workload filter", label,
			len(workloads), strings.Join(workloads, ", "))
	}
	ns, wl, _ := strings.Cut(workloads[0], "/")
	if f.Workload != "" && !strings.EqualFold(f.Workload, wl) {
		return f, argErrorf("label %s selects workload %s, but the workload filter asks for %s", label, workloads[0], f.Workload)
	}
	f.Workload = wl
	if f.Namespace == "" {
		f.Namespace = ns
	}
	return f, nil
}

// windows resolves the baseline and candidate windows.
func (a compareArgs) windows(b Backend) (base, cand Window, err error) {
	first, last := b.Bounds()
	if first.IsZero() {
		return base, cand, argError("no traffic has been captured yet")
	}
	ref := last
	if b.Live() {
		ref = time.Now()
	}
	end := last.Add(time.Nanosecond) // windows are [from, to): the last packet is in
	explicit := a.BaselineFrom != "" || a.BaselineTo != "" || a.CandidateFrom != "" || a.CandidateTo != ""
	parse := func(name, s string) (time.Time, error) { return parseTime(name, s, ref) }
	switch {
	case a.RolloutAt != "" && explicit:
		return base, cand, argError("give rollout_at (and window), or the baseline and candidate windows, not both")
	case a.RolloutAt != "":
		at, err := parse("rollout_at", a.RolloutAt)
		if err != nil {
			return base, cand, err
		}
		if !at.After(first) || !at.Before(end) {
			return base, cand, argErrorf("rollout_at %s is outside the capture, which covers %s to %s: there is nothing to compare on one side",
				stamp(at), stamp(first), stamp(last))
		}
		span := min(at.Sub(first), end.Sub(at))
		if a.Window != "" {
			d, err := time.ParseDuration(strings.TrimPrefix(strings.TrimSpace(a.Window), "+"))
			if err != nil || d <= 0 {
				return base, cand, argErrorf("window %q is not a positive duration, like 10m or 1h", a.Window)
			}
			span = d
		}
		base, cand = Window{at.Add(-span), at}, Window{at, at.Add(span)}
	case a.Window != "":
		return base, cand, argError("window goes with rollout_at; with explicit windows give their from and to")
	case a.CandidateFrom == "":
		return base, cand, argError("give candidate_from with the other windows (or rollout_at, or nothing to find when the error rate changed)")
	default:
		if cand.From, err = parse("candidate_from", a.CandidateFrom); err != nil {
			return
		}
		cand.To = end
		if a.CandidateTo != "" {
			if cand.To, err = parse("candidate_to", a.CandidateTo); err != nil {
				return
			}
		}
		base.To = cand.From
		if a.BaselineTo != "" {
			if base.To, err = parse("baseline_to", a.BaselineTo); err != nil {
				return
			}
		}
		if !cand.From.Before(cand.To) {
			return base, cand, argErrorf("candidate_from (%s) must be before candidate_to (%s)", stamp(cand.From), stamp(cand.To))
		}
		base.From = base.To.Add(-cand.To.Sub(cand.From))
		if a.BaselineFrom != "" {
			if base.From, err = parse("baseline_from", a.BaselineFrom); err != nil {
				return
			}
		}
		if !base.From.Before(base.To) {
			return base, cand, argErrorf("baseline_from (%s) must be before baseline_to (%s)", stamp(base.From), stamp(base.To))
		}
	}
	for _, w := range []struct {
		name string
		w    Window
	}{{"baseline", base}, {"candidate", cand}} {
		if msg := emptyWindow(b, w.w.From, w.w.To); msg != "" {
			return base, cand, argErrorf("the %s window: %s", w.name, msg)
		}
	}
	return base, cand, nil
}

// changePoints is how many moments changePoint tries.
const changePoints = 24

// changePoint finds the moment the error rate rose most significantly:
// at each of changePoints evenly spaced moments it compares the calls
// before with those after, counted by the index (no call is read).
// Without a significant rise it takes the middle of the data. why says
// which, for the answer.
func changePoint(ctx context.Context, b Backend, f Filter) (at time.Time, why string, err error) {
	first, last := b.Bounds()
	end := last.Add(time.Nanosecond)
	span := end.Sub(first)
	total := func(from, to time.Time, text string) (uint64, error) {
		res, err := b.Index().Search(ctx, index.Query{From: from, To: to, Text: text, Filter: f.Index(), Limit: 1})
		return res.Total, err
	}
	const failedQuery = "outcome:server_error outcome:client_error outcome:no_response"
	bestZ := 0.0
	var best [4]uint64 // failed and calls before, after
	for i := 1; i < changePoints; i++ {
		p := first.Add(span * time.Duration(i) / changePoints)
		var n [4]uint64
		for j, q := range []struct {
			from, to time.Time
			text     string
		}{{first, p, failedQuery}, {first, p, ""}, {p, end, failedQuery}, {p, end, ""}} {
			if n[j], err = total(q.from, q.to, q.text); err != nil {
				return at, "", err
			}
		}
		if n[1] < minCalls || n[3] < minCalls {
			continue
		}
		if z := zTwoProportions(n[0], n[1], n[2], n[3]); z > bestZ {
			bestZ, at, best = z, p, n
		}
	}
	if bestZ < zSignificant {
		at = first.Add(span / 2)
		return at, fmt.Sprintf("no rollout_at or windows given, and the error rate does not change significantly at any of %d moments tried: comparing the two halves of the data at %s",
			changePoints-1, stamp(at)), nil
	}
	return at, fmt.Sprintf("no rollout_at or windows given: the error rate rose most significantly at about %s (%s of %s failed before, %s of %s after; z=%.1f over %d moments tried), compared there",
		stamp(at), count(best[0]), plural(best[1], "call"), count(best[2]), count(best[3]), bestZ, changePoints-1), nil
}

// side is one window's summaries.
type side struct {
	w         Window
	total     index.Group
	endpoints map[string]*index.Group
	workloads map[string]*index.Group
	pods      map[string]*index.Group // server pods
	connFails map[connKey]uint64
}

// connKey is a failed connection's kind and peers.
type connKey struct{ state, client, server string }

// comparison is the analysis compare_windows renders.
type comparison struct {
	base, cand *side
	f          Filter
	evidence   []evidence
	// weak are changes not significant for their volume.
	weak     []string
	compared int // endpoints compared
	appeared []string
	// byWorkload and byPod compare the servers' failures; servers
	// without an identity are in byWorkload alone, by address.
	byWorkload, byPod []string
	// anonymous is set when no server has an identity.
	anonymous bool
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

// isAddress reports whether a group key is an address (ip or ip:port)
// rather than a Kubernetes name.
func isAddress(k string) bool {
	if _, err := netip.ParseAddrPort(k); err == nil {
		return true
	}
	_, err := netip.ParseAddr(k)
	return err == nil
}

// evidence is one finding.
type evidence struct {
	kind        string  // errors, latency, resolution, connections, vanished
	key         string  // the endpoint (or connection) it is about
	impact      float64 // for ranking within significant findings: excess failures, added seconds, …
	significant bool
	headline    string   // one line
	details     []string // pods, examples, pointers
	// For latency: the time added per call, and the pods of the example
	// calls, to tell a slow dependency from the callers it slows.
	added            time.Duration
	clients, servers map[string]int
}

func summaries(ctx context.Context, ix *index.Index, w Window, f Filter) (*side, error) {
	s := &side{w: w, endpoints: map[string]*index.Group{}, workloads: map[string]*index.Group{}, pods: map[string]*index.Group{},
		connFails: map[connKey]uint64{}}
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
				s.total = *g
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

func compare(ctx context.Context, b Backend, base, cand Window, f Filter) (*comparison, error) {
	return compareWith(ctx, b, base, cand, f, f)
}

// compareWith compares the calls of base matching fb with those of cand
// matching fc (the same filter but for the version, when versions are
// compared).
func compareWith(ctx context.Context, b Backend, base, cand Window, fb, fc Filter) (*comparison, error) {
	c := &comparison{f: fc}
	var err error
	if c.base, err = summaries(ctx, b.Index(), base, fb); err != nil {
		return nil, err
	}
	if c.cand, err = summaries(ctx, b.Index(), cand, fc); err != nil {
		return nil, err
	}
	for i, s := range []*side{c.base, c.cand} {
		f := []Filter{fb, fc}[i]
		flows, err := b.Flows(ctx, s.w.From, s.w.To, f)
		if err != nil {
			return nil, err
		}
		for _, fl := range flows {
			switch fl.State {
			case "refused", "reset", "unanswered":
			default:
				continue
			}
			if fl.Began.Before(s.w.From) || !fl.Began.Before(s.w.To) {
				continue // counted in the window it began in
			}
			s.connFails[connKey{fl.State, peerName(&fl.Src, false), peerName(&fl.Dst, true)}]++
		}
	}
	// scale converts a baseline count to what the candidate's span
	// predicts.
	scale := float64(cand.To.Sub(cand.From)) / float64(base.To.Sub(base.From))
	keys := unionKeys(c.base.endpoints, c.cand.endpoints)
	c.compared = len(keys)
	for _, k := range keys {
		bg, cg := c.base.endpoints[k], c.cand.endpoints[k]
		if err := c.endpoint(ctx, b, k, bg, cg, scale); err != nil {
			return nil, err
		}
	}
	c.connections(scale)
	c.rank()
	c.explainLatency()
	c.byWorkload = changeLines(c.base.workloads, c.cand.workloads)
	// A server without an identity is its address in both groupings:
	// listed once, with the workloads.
	c.byPod = changeLines(without(c.base.pods, c.base.workloads, c.cand.workloads), without(c.cand.pods, c.base.workloads, c.cand.workloads))
	c.anonymous = true
	for _, m := range []map[string]*index.Group{c.base.workloads, c.cand.workloads} {
		for k := range m {
			if k != "" && !isAddress(k) {
				c.anonymous = false
			}
		}
	}
	return c, nil
}

// explainLatency finds slow endpoints whose added time is explained by a
// slower dependency: the dependency's example calls come from the slow
// endpoint's server pods, and it added at least half as much per call. The
// dependency then comes first, and the caller says it follows from it.
func (c *comparison) explainLatency() {
	var slow []int
	for i, e := range c.evidence {
		if e.kind == "latency" {
			slow = append(slow, i)
		}
	}
	moved := false
	for _, ci := range slow {
		caller := &c.evidence[ci]
		for _, di := range slow {
			dep := &c.evidence[di]
			if di == ci || dep.added*2 < caller.added {
				continue
			}
			calledFrom := false
			for pod := range caller.servers {
				calledFrom = calledFrom || dep.clients[pod] > 0
			}
			if !calledFrom {
				continue
			}
			caller.headline += fmt.Sprintf(" — its calls to %s got %s slower: that dependency explains it", dep.key, ms(dep.added))
			if dep.impact <= caller.impact {
				dep.impact = caller.impact * 1.001 // the cause before what it causes
				moved = true
			}
			break
		}
	}
	if moved {
		c.rank()
	}
}

// rank orders the evidence: significant first, failures before slowness
// before volume, then by impact.
func (c *comparison) rank() {
	slices.SortStableFunc(c.evidence, func(x, y evidence) int {
		if x.significant != y.significant {
			if x.significant {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(kindRank[x.kind], kindRank[y.kind]), cmp.Compare(y.impact, x.impact))
	})
}

// kindRank orders significant evidence: failures before slowness before
// changes in volume.
var kindRank = map[string]int{"errors": 0, "resolution": 0, "connections": 1, "latency": 2, "vanished": 3}

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

// zTwoProportions is the one-sided z score of p2 > p1 (x1 of n1 against
// x2 of n2), pooled.
func zTwoProportions(x1, n1, x2, n2 uint64) float64 {
	if n1 == 0 || n2 == 0 {
		return 0
	}
	p1, p2 := float64(x1)/float64(n1), float64(x2)/float64(n2)
	p := float64(x1+x2) / float64(n1+n2)
	se := math.Sqrt(p * (1 - p) * (1/float64(n1) + 1/float64(n2)))
	if se == 0 {
		return 0
	}
	return (p2 - p1) / se
}

// zCount is the z score of seeing n events where expected were predicted
// (Poisson, with one event of slack so that an expectation of zero does
// not make any count infinitely significant).
func zCount(n uint64, expected float64) float64 {
	return (float64(n) - expected) / math.Sqrt(expected+1)
}

// wilsonLow is the lower bound of the Wilson score interval of x in n at
// z.
func wilsonLow(x, n uint64, z float64) float64 {
	if n == 0 {
		return 0
	}
	p, nf := float64(x)/float64(n), float64(n)
	return (p + z*z/(2*nf) - z*math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf))) / (1 + z*z/nf)
}

func (c *comparison) endpoint(ctx context.Context, b Backend, key string, bg, cg *index.Group, scale float64) error {
	g := cmp.Or(cg, bg)
	nb, nc := answered(bg), answered(cg)
	fb, fc := failed(bg), failed(cg)
	// A name-resolution protocol's failures are failed lookups ("DNS
	// failures"), not an endpoint's errors.
	failures := "errors"
	if proto.Described(g.Proto).Resolution {
		failures = strings.ToUpper(g.Proto) + " failures"
	}
	switch {
	case cg == nil:
		expected := float64(bg.Calls) * scale
		if expected >= minVanished {
			c.evidence = append(c.evidence, evidence{kind: "vanished", significant: true, impact: expected,
				headline: fmt.Sprintf("vanished: %s had %s before, none after (about %.0f expected)", key, plural(bg.Calls, "call"), expected)})
		}
		return nil
	case bg == nil:
		c.appeared = append(c.appeared, fmt.Sprintf("%s (%s)", key, plural(cg.Calls, "call")))
	default:
		// Traffic that fell to a fraction of what the baseline predicts
		// (a caller that stopped calling) is as telling as errors.
		expected := float64(bg.Calls) * scale
		if expected >= minVanished && float64(cg.Calls) < expected*dropFraction &&
			(expected-float64(cg.Calls))/math.Sqrt(expected) >= zSignificant {
			c.evidence = append(c.evidence, evidence{kind: "vanished", significant: true, impact: expected - float64(cg.Calls),
				headline: fmt.Sprintf("fell: %s had %s before, %s after (about %.0f expected)", key, plural(bg.Calls, "call"), count(cg.Calls), expected)})
		}
	}
	// Error rate.
	if fc > 0 {
		var rateBefore float64
		if nb > 0 {
			rateBefore = float64(fb) / float64(nb)
		} else if n := answered(&c.base.total); n > 0 {
			rateBefore = float64(c.base.total.Failed) / float64(n) // a new endpoint: against the baseline's overall rate
		}
		excess := float64(fc) - rateBefore*float64(nc)
		var z float64
		if nb > 0 {
			z = zTwoProportions(fb, nb, fc, nc)
		} else {
			// No baseline calls: the candidate's rate must exceed the
			// baseline's overall rate with confidence.
			if wilsonLow(fc, nc, zSignificant) > rateBefore {
				z = zSignificant
			}
		}
		newStatuses := newErrorStatuses(bg, cg)
		if excess >= minExcess && z >= zSignificant {
			kind := "errors"
			if failures != "errors" {
				kind = "resolution"
			}
			e := evidence{kind: kind, significant: true, impact: excess, headline: errorHeadline(key, bg, cg, newStatuses, failures)}
			status := ""
			if len(cg.TopErrors) > 0 {
				status = cg.TopErrors[0].Value
				if len(newStatuses) > 0 {
					status = newStatuses[0]
				}
			}
			details, err := c.examples(ctx, b, g, status, "")
			if err != nil {
				return err
			}
			e.details = details
			c.evidence = append(c.evidence, e)
		} else if fc > fb || len(newStatuses) > 0 {
			c.weak = append(c.weak, fmt.Sprintf("%s: %s of %s failed before, %s of %s after", key, count(fb), count(nb), count(fc), count(nc)))
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
	e := evidence{kind: "latency", key: key, significant: true, impact: added.Seconds() * float64(sc),
		headline: fmt.Sprintf("slower: %s p50 %s → %s, p95 %s → %s, p99 %s → %s (%s before, %s after)", key,
			ms(bg.P50), ms(cg.P50), ms(bg.P95), ms(cg.P95), ms(bg.P99), ms(cg.P99), plural(sb, "call"), count(sc))}
	slow := bg.P95
	if !median {
		slow = max(bg.P99, bg.P95)
	}
	details, clients, servers, err := c.examplesPods(ctx, b, g, "", "latency_ms:>="+strconv.FormatFloat(float64(slow)/1e6, 'f', 1, 64))
	if err != nil {
		return err
	}
	e.details, e.added, e.clients, e.servers = details, added, clients, servers
	c.evidence = append(c.evidence, e)
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

// errorHeadline says what failed more: what names the failures ("errors",
// "DNS failures").
func errorHeadline(key string, bg, cg *index.Group, newStatuses []string, what string) string {
	var errs []string
	for _, e := range cg.TopErrors {
		s := fmt.Sprintf("%s×%s", e.Value, count(e.Count))
		if slices.Contains(newStatuses, e.Value) {
			s += " (new)"
		}
		errs = append(errs, s)
	}
	before := "no calls before"
	if bg != nil {
		before = fmt.Sprintf("%s of %s failed before (%s)", count(bg.Failed), count(answered(bg)), percent(bg.ErrorRate))
	}
	return fmt.Sprintf("%s: %s — %s of %s failed after (%s) [%s]; %s", what, key, count(cg.Failed), count(answered(cg)),
		percent(cg.ErrorRate), strings.Join(errs, ", "), before)
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

// examples finds calls of an endpoint in the candidate window (with a
// status, or matching an extra clause) and names the pods on both sides,
// an example id and the search_calls arguments that list them.
func (c *comparison) examples(ctx context.Context, b Backend, g *index.Group, status, extra string) ([]string, error) {
	out, _, _, err := c.examplesPods(ctx, b, g, status, extra)
	return out, err
}

func (c *comparison) examplesPods(ctx context.Context, b Backend, g *index.Group, status, extra string) ([]string, map[string]int, map[string]int, error) {
	q := endpointQuery(g)
	if status != "" {
		q += " +status:" + quoteValue(status)
	}
	if extra != "" {
		q += " +" + extra
	}
	res, err := b.Index().Search(ctx, index.Query{From: c.cand.w.From, To: c.cand.w.To, Text: q, Filter: c.f.Index(), Limit: 200})
	if err != nil {
		return nil, nil, nil, err
	}
	clients, servers := map[string]int{}, map[string]int{}
	for _, call := range res.Calls {
		clients[peer(&call.Src)]++
		servers[peer(&call.Dst)]++
	}
	var out []string
	sample := ""
	if res.Total > uint64(len(res.Calls)) {
		sample = fmt.Sprintf(" (of the newest %d)", len(res.Calls))
	}
	if len(res.Calls) > 0 {
		out = append(out, fmt.Sprintf("server pods%s: %s; clients: %s", sample, topCounts(servers, 4), topCounts(clients, 4)))
		out = append(out, fmt.Sprintf("examples: search_calls query=%s from=%s to=%s; get_call id=%s", strconv.Quote(q),
			stamp(c.cand.w.From), stamp(c.cand.w.To), res.Calls[len(res.Calls)-1].ID))
	}
	return out, clients, servers, nil
}

// topCounts lists the most frequent names with their counts.
func topCounts(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	var parts []string
	for i, e := range all {
		if i == n {
			parts = append(parts, fmt.Sprintf("+%d more", len(all)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// peerName names a flow's peer: namespace/pod, else namespace/svc/name,
// else the address (the server's with its port).
func peerName(p *Peer, server bool) string {
	switch {
	case p.Pod != "":
		return p.Namespace + "/" + p.Pod
	case p.Service != "":
		return p.Namespace + "/svc/" + p.Service
	case server:
		return addrPort(p.IP, p.Port)
	case p.IP.IsValid():
		return p.IP.String()
	}
	return "?"
}

// connections finds connection failures the baseline does not predict.
func (c *comparison) connections(scale float64) {
	keys := unionKeys(connMap(c.base.connFails), connMap(c.cand.connFails))
	for _, ks := range keys {
		k := parseConnKey(ks)
		nb, nc := c.base.connFails[k], c.cand.connFails[k]
		expected := float64(nb) * scale
		excess := float64(nc) - expected
		if excess < minExcess || zCount(nc, expected) < zSignificant {
			if nc > nb {
				c.weak = append(c.weak, fmt.Sprintf("connections %s %s → %s: %d before, %d after", k.state, k.client, k.server, nb, nc))
			}
			continue
		}
		ip := k.server
		if i := strings.LastIndexByte(ip, ':'); i > 0 && !strings.Contains(ip, "/") {
			ip = strings.Trim(ip[:i], "[]")
		}
		pointer := fmt.Sprintf("list_flows state=%s from=%s to=%s", k.state, stamp(c.cand.w.From), stamp(c.cand.w.To))
		if !strings.Contains(k.server, "/") {
			pointer += " ip=" + ip
		} else {
			pointer += " pod=" + k.server[strings.IndexByte(k.server, '/')+1:]
		}
		c.evidence = append(c.evidence, evidence{kind: "connections", significant: true, impact: excess,
			headline: fmt.Sprintf("connections %s: %s → %s: %d after, %d before", describeState(k.state), k.client, k.server, nc, nb),
			details:  []string{"flows: " + pointer}})
	}
}

func describeState(s string) string {
	switch s {
	case "refused":
		return "refused (SYN answered by RST)"
	case "reset":
		return "reset (RST)"
	case "unanswered":
		return "unanswered (SYN alone: unreachable or dropped)"
	}
	return s
}

func connMap(m map[connKey]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k.state+"\x00"+k.client+"\x00"+k.server] = v
	}
	return out
}

func parseConnKey(s string) connKey {
	p := strings.SplitN(s, "\x00", 3)
	return connKey{p[0], p[1], p[2]}
}

// changeLines compares one grouping of the servers (workloads or pods):
// those that are new, gone, or served failures on either side, with the
// failures before and after (and whether the change is significant for
// the volume).
func changeLines(base, cand map[string]*index.Group) []string {
	var lines []string
	for _, k := range unionKeys(base, cand) {
		if k == "" {
			continue
		}
		bg, cg := base[k], cand[k]
		switch {
		case bg == nil:
			lines = append(lines, fmt.Sprintf("%s (new): %s, %s failed", k, plural(cg.Calls, "call"), count(cg.Failed)))
		case cg == nil:
			lines = append(lines, fmt.Sprintf("%s (gone): %s before, %s failed", k, plural(bg.Calls, "call"), count(bg.Failed)))
		case cg.Failed > 0 || bg.Failed > 0:
			line := fmt.Sprintf("%s: %s of %s failed before, %s of %s after", k, count(bg.Failed), count(bg.Calls),
				count(cg.Failed), count(cg.Calls))
			if zTwoProportions(bg.Failed, answered(bg), cg.Failed, answered(cg)) >= zSignificant {
				line += " (significant)"
			}
			lines = append(lines, line)
		}
	}
	return lines
}

// verdict is regressed, ok or inconclusive, and why.
func (c *comparison) verdict() (string, string) {
	for _, e := range c.evidence {
		if e.significant {
			return "regressed", e.headline
		}
	}
	nb, nc := c.base.total.Calls, c.cand.total.Calls
	if nb < minCalls || nc < minCalls {
		return "inconclusive", fmt.Sprintf("too little traffic to tell: %s before, %s after (at least %d each are needed)",
			plural(nb, "call"), count(nc), minCalls)
	}
	if len(c.weak) > 0 {
		return "ok", "no significant change; some counts moved within what their volume explains (below)"
	}
	return "ok", "no significant change in errors, latency, endpoints or connections"
}

func (c *comparison) render(max int, notes []string) string {
	verdict, why := c.verdict()
	bud := newBudget(max, 60)
	bud.add(fmt.Sprintf("verdict: %s — %s", verdict, why))
	for _, s := range []struct {
		name string
		s    *side
	}{{"baseline", c.base}, {"candidate", c.cand}} {
		t := &s.s.total
		bud.add(fmt.Sprintf("%s %s: %s, %s failed (%s), p50 %s p95 %s p99 %s", s.name, describeWindow(s.s.w.From, s.s.w.To),
			plural(t.Calls, "call"), count(t.Failed), percent(t.ErrorRate), ms(t.P50), ms(t.P95), ms(t.P99)))
	}
	if !c.f.IsZero() {
		bud.add("filters: " + describeFilter(c.f))
	}
	for _, n := range notes {
		bud.add(n)
	}
	// Every headline matters more than the details of any but the first
	// piece of evidence, and than the lines after the evidence: those are
	// optional, dropped from the end until the rest fits.
	type line struct {
		text     string
		optional bool
	}
	var lines []line
	n := 0
	for _, e := range c.evidence {
		if !e.significant {
			continue
		}
		n++
		if n == 1 {
			lines = append(lines, line{"evidence, most significant first:", false})
		}
		lines = append(lines, line{fmt.Sprintf("%d. %s", n, e.headline), false})
		for _, d := range e.details {
			lines = append(lines, line{"   " + d, n > 1})
		}
	}
	if len(c.byWorkload) > 0 {
		label := "server workloads: "
		if c.anonymous {
			label = "servers: "
		}
		lines = append(lines, line{label + strings.Join(c.byWorkload, "; "), true})
	}
	if len(c.byPod) > 0 {
		lines = append(lines, line{"server pods: " + strings.Join(c.byPod, "; "), true})
	}
	if len(c.appeared) > 0 {
		lines = append(lines, line{"appeared after: " + strings.Join(c.appeared, ", "), true})
	}
	if len(c.weak) > 0 {
		lines = append(lines, line{"not significant for their volume: " + strings.Join(c.weak, "; "), true})
	}
	lines = append(lines, line{plural(c.compared, "endpoint") + " compared.", true})
	total := 0
	for _, l := range lines {
		total += Tokens(l.text + "\n")
	}
	dropped := 0
	for i := len(lines) - 1; i >= 0 && total > max-bud.used-bud.reserve; i-- {
		if lines[i].optional {
			total -= Tokens(lines[i].text + "\n")
			lines = slices.Delete(lines, i, i+1)
			dropped++
		}
	}
	for _, l := range lines {
		bud.add(l.text)
	}
	bud.omitted += dropped
	var closing []string
	if bud.omitted > 0 {
		closing = append(closing, fmt.Sprintf("(%d lines not shown: raise max_tokens or narrow with the filters)", bud.omitted))
	}
	return bud.text(closing...)
}

// describeFilter lists the filters set.
func describeFilter(f Filter) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("namespace", f.Namespace)
	add("workload", f.Workload)
	add("service", f.Service)
	add("pod", f.Pod)
	add("node", f.Node)
	add("version", f.Version)
	if f.IP.IsValid() {
		add("ip", f.IP.String())
	}
	if f.Port != 0 {
		add("port", strconv.Itoa(int(f.Port)))
	}
	add("protocol", f.Protocol)
	return strings.Join(parts, " ")
}

// compareVersions compares two revisions of a workload over one window:
// the calls their pods served (and made) side by side, for a canary or a
// rolling update where both run at once.
func compareVersions(ctx context.Context, b Backend, req mcp.CallToolRequest, a compareArgs, f Filter, budgetMax int) (*mcp.CallToolResult, error) {
	switch {
	case a.BaselineVersion == "" || a.CandidateVersion == "":
		return nil, argError("baseline_version and candidate_version go together")
	case a.BaselineVersion == a.CandidateVersion:
		return nil, argErrorf("baseline_version and candidate_version are both %q: name two revisions", a.BaselineVersion)
	case a.RolloutAt != "" || a.Window != "" || a.BaselineFrom != "" || a.BaselineTo != "":
		return nil, argError("with versions, both sides share one window: give candidate_from and candidate_to (or nothing, for all the data), not rollout_at or a baseline window")
	}
	first, last := b.Bounds()
	if first.IsZero() {
		return nil, argError("no traffic has been captured yet")
	}
	ref := last
	if b.Live() {
		ref = time.Now()
	}
	w := Window{first, last.Add(time.Nanosecond)}
	var err error
	if a.CandidateFrom != "" {
		if w.From, err = parseTime("candidate_from", a.CandidateFrom, ref); err != nil {
			return nil, err
		}
	}
	if a.CandidateTo != "" {
		if w.To, err = parseTime("candidate_to", a.CandidateTo, ref); err != nil {
			return nil, err
		}
	}
	if !w.From.Before(w.To) {
		return nil, argErrorf("the window %s is empty", describeWindow(w.From, w.To))
	}
	var notes []string
	note, err := ensureDissected(ctx, b, req, w.From, w.To)
	if err != nil {
		return nil, err
	}
	if note != "" {
		notes = append(notes, note)
	}
	fb, fc := f, f
	fb.Version, fc.Version = a.BaselineVersion, a.CandidateVersion
	res, err := compareWith(ctx, b, w, w, fb, fc)
	if err != nil {
		return nil, err
	}
	if res.base.total.Calls == 0 {
		return nil, argErrorf("no calls of version %s in %s: list_workloads shows the versions pods have (pod-template-hash)", a.BaselineVersion, describeWindow(w.From, w.To))
	}
	notes = append(notes, fmt.Sprintf("comparing version %s (baseline) with %s (candidate), both over %s", a.BaselineVersion, a.CandidateVersion, describeWindow(w.From, w.To)))
	return mcp.NewToolResultText(res.render(budgetMax, notes)), nil
}
