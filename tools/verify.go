package tools

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/analysis"
	"github.com/wirescope/wirescope/index"
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
				first, last := b.Bounds()
				cp, err := analysis.FindChangePoint(ctx, b.Index(), f, Window{From: first, To: last.Add(time.Nanosecond)})
				if err != nil {
					return nil, err
				}
				a.RolloutAt = cp.At.Format(time.RFC3339Nano)
				notes = append(notes, changePointNote(cp))
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
			c, err := analysis.Compare(ctx, b, base, cand, f, f)
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(renderComparison(c, budgetMax, notes)), nil
		})
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
		base, cand = Window{From: at.Add(-span), To: at}, Window{From: at, To: at.Add(span)}
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

// changePointNote says where compare_windows compares when it was given
// no time, and why.
func changePointNote(cp analysis.ChangePoint) string {
	if !cp.Significant {
		return fmt.Sprintf("no rollout_at or windows given, and the error rate does not change significantly at any of %d moments tried: comparing the two halves of the data at %s",
			cp.Tried, stamp(cp.At))
	}
	return fmt.Sprintf("no rollout_at or windows given: the error rate rose most significantly at about %s (%s of %s failed before, %s of %s after; z=%.1f over %d moments tried), compared there",
		stamp(cp.At), count(cp.FailedBefore), plural(cp.CallsBefore, "call"), count(cp.FailedAfter), count(cp.CallsAfter), cp.Z, cp.Tried)
}

// verdictLine is the verdict and why.
func verdictLine(c *analysis.Comparison) string {
	v := c.Verdict()
	var why string
	switch {
	case v == analysis.Regressed:
		why = headline(&c.Evidence[0])
	case v == analysis.Inconclusive:
		why = fmt.Sprintf("too little traffic to tell: %s before, %s after (at least %d each are needed)",
			plural(c.Base.Total.Calls, "call"), count(c.Cand.Total.Calls), analysis.MinCalls)
	case len(c.Weak) > 0:
		why = "no significant change; some counts moved within what their volume explains (below)"
	default:
		why = "no significant change in errors, latency, endpoints or connections"
	}
	return fmt.Sprintf("verdict: %s — %s", v, why)
}

// headline says what a piece of evidence found, in one line.
func headline(e *analysis.Evidence) string {
	bg, cg := e.Before, e.After
	switch e.Kind {
	case analysis.KindErrors, analysis.KindResolution:
		what := "errors"
		if e.Kind == analysis.KindResolution {
			what = strings.ToUpper(cg.Proto) + " failures"
		}
		return errorHeadline(e.Key, bg, cg, e.NewStatuses, what)
	case analysis.KindLatency:
		h := fmt.Sprintf("slower: %s p50 %s → %s, p95 %s → %s, p99 %s → %s (%s before, %s after)", e.Key,
			ms(bg.P50), ms(cg.P50), ms(bg.P95), ms(cg.P95), ms(bg.P99), ms(cg.P99), plural(e.LatencySamples[0], "call"), count(e.LatencySamples[1]))
		if e.Cause != nil {
			h += fmt.Sprintf(" — its calls to %s got %s slower: that dependency explains it", e.Cause.Key, ms(e.Cause.Added))
		}
		return h
	case analysis.KindVanished:
		return fmt.Sprintf("vanished: %s had %s before, none after (about %.0f expected)", e.Key, plural(bg.Calls, "call"), e.Expected)
	case analysis.KindFell:
		return fmt.Sprintf("fell: %s had %s before, %s after (about %.0f expected)", e.Key, plural(bg.Calls, "call"), count(cg.Calls), e.Expected)
	case analysis.KindConnections:
		k := e.Conn
		return fmt.Sprintf("connections %s: %s → %s: %d after, %d before", describeState(k.State), k.Client, k.Server, e.Conns[1], e.Conns[0])
	}
	return e.Key
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
		before = fmt.Sprintf("%s of %s failed before (%s)", count(bg.Failed), count(bg.Rated()), percent(bg.ErrorRate))
	}
	return fmt.Sprintf("%s: %s — %s of %s failed after (%s) [%s]; %s", what, key, count(cg.Failed), count(cg.Rated()),
		percent(cg.ErrorRate), strings.Join(errs, ", "), before)
}

// details are the lines under a piece of evidence: the pods on both sides
// of its example calls and the arguments that list them, or the list_flows
// arguments that show failed connections.
func details(e *analysis.Evidence, cand Window) []string {
	if e.Kind == analysis.KindConnections {
		k := e.Conn
		pointer := fmt.Sprintf("list_flows state=%s from=%s to=%s", k.State, stamp(cand.From), stamp(cand.To))
		if !strings.Contains(k.Server, "/") {
			ip := k.Server
			if i := strings.LastIndexByte(ip, ':'); i > 0 {
				ip = strings.Trim(ip[:i], "[]")
			}
			pointer += " ip=" + ip
		} else {
			pointer += " pod=" + k.Server[strings.IndexByte(k.Server, '/')+1:]
		}
		return []string{"flows: " + pointer}
	}
	ex := e.Examples
	if ex == nil || ex.Read == 0 {
		return nil
	}
	sample := ""
	if ex.Total > uint64(ex.Read) {
		sample = fmt.Sprintf(" (of the newest %d)", ex.Read)
	}
	return []string{
		fmt.Sprintf("server pods%s: %s; clients: %s", sample, topCounts(ex.Servers, 4), topCounts(ex.Clients, 4)),
		fmt.Sprintf("examples: search_calls query=%s from=%s to=%s; get_call id=%s", strconv.Quote(ex.Query),
			stamp(ex.Window.From), stamp(ex.Window.To), ex.ID),
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

// weakLine is a rise not significant for its volume.
func weakLine(w analysis.Weak) string {
	if w.Conn != nil {
		return fmt.Sprintf("connections %s %s → %s: %d before, %d after", w.Conn.State, w.Conn.Client, w.Conn.Server, w.FailedBefore, w.FailedAfter)
	}
	return fmt.Sprintf("%s: %s of %s failed before, %s of %s after", w.Endpoint, count(w.FailedBefore), count(w.CallsBefore),
		count(w.FailedAfter), count(w.CallsAfter))
}

// changeLines lists the servers that are new, gone, or served failures on
// either side, with the failures before and after (and whether the change
// is significant for the volume).
func changeLines(cs []analysis.ServerChange) []string {
	var lines []string
	for _, s := range cs {
		bg, cg := s.Before, s.After
		switch {
		case bg == nil:
			lines = append(lines, fmt.Sprintf("%s (new): %s, %s failed", s.Key, plural(cg.Calls, "call"), count(cg.Failed)))
		case cg == nil:
			lines = append(lines, fmt.Sprintf("%s (gone): %s before, %s failed", s.Key, plural(bg.Calls, "call"), count(bg.Failed)))
		default:
			line := fmt.Sprintf("%s: %s of %s failed before, %s of %s after", s.Key, count(bg.Failed), count(bg.Calls),
				count(cg.Failed), count(cg.Calls))
			if s.Significant {
				line += " (significant)"
			}
			lines = append(lines, line)
		}
	}
	return lines
}

// renderComparison is compare_windows's answer: the verdict, the windows,
// the filters and notes, then the evidence with its details, the servers'
// changes and the weak changes, within max tokens.
func renderComparison(c *analysis.Comparison, max int, notes []string) string {
	bud := newBudget(max, 60)
	bud.add(verdictLine(c))
	for _, s := range []struct {
		name string
		s    *analysis.Side
	}{{"baseline", c.Base}, {"candidate", c.Cand}} {
		t := &s.s.Total
		bud.add(fmt.Sprintf("%s %s: %s, %s failed (%s), p50 %s p95 %s p99 %s", s.name, describeWindow(s.s.Window.From, s.s.Window.To),
			plural(t.Calls, "call"), count(t.Failed), percent(t.ErrorRate), ms(t.P50), ms(t.P95), ms(t.P99)))
	}
	if !c.Filter.IsZero() {
		bud.add("filters: " + describeFilter(c.Filter))
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
	for i := range c.Evidence {
		e := &c.Evidence[i]
		if i == 0 {
			lines = append(lines, line{"evidence, most significant first:", false})
		}
		lines = append(lines, line{fmt.Sprintf("%d. %s", i+1, headline(e)), false})
		for _, d := range details(e, c.Cand.Window) {
			lines = append(lines, line{"   " + d, i > 0})
		}
	}
	if byWorkload := changeLines(c.ByWorkload); len(byWorkload) > 0 {
		label := "server workloads: "
		if c.Anonymous {
			label = "servers: "
		}
		lines = append(lines, line{label + strings.Join(byWorkload, "; "), true})
	}
	if byPod := changeLines(c.ByPod); len(byPod) > 0 {
		lines = append(lines, line{"server pods: " + strings.Join(byPod, "; "), true})
	}
	if len(c.Appeared) > 0 {
		var appeared []string
		for _, g := range c.Appeared {
			appeared = append(appeared, fmt.Sprintf("%s (%s)", g.Key, plural(g.Calls, "call")))
		}
		lines = append(lines, line{"appeared after: " + strings.Join(appeared, ", "), true})
	}
	if len(c.Weak) > 0 {
		var weak []string
		for _, w := range c.Weak {
			weak = append(weak, weakLine(w))
		}
		lines = append(lines, line{"not significant for their volume: " + strings.Join(weak, "; "), true})
	}
	lines = append(lines, line{plural(c.Compared, "endpoint") + " compared.", true})
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
	w := Window{From: first, To: last.Add(time.Nanosecond)}
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
	c, err := analysis.Compare(ctx, b, w, w, fb, fc)
	if err != nil {
		return nil, err
	}
	if c.Base.Total.Calls == 0 {
		return nil, argErrorf("no calls of version %s in %s: list_workloads shows the versions pods have (pod-template-hash)", a.BaselineVersion, describeWindow(w.From, w.To))
	}
	notes = append(notes, fmt.Sprintf("comparing version %s (baseline) with %s (candidate), both over %s", a.BaselineVersion, a.CandidateVersion, describeWindow(w.From, w.To)))
	return mcp.NewToolResultText(renderComparison(c, budgetMax, notes)), nil
}
