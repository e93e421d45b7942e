package eval

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Playbook is the default investigator: the same tool calls for every
// question, as an on-call engineer would start any incident —
//
//  1. capture_status: what is visible and when;
//  2. compare_windows: around the rollout; or, when the question names a
//     clock time inside the capture ("since about 14:05"), from then on
//     against as long before; else with no time (the tool finds when the
//     error rate rose);
//  3. summarize_traffic by endpoint (what fails or is slow), then by
//     status (every status and rcode seen, good ones too);
//  4. search_calls for failed calls;
//  5. get_call on the most telling failed call (the example compare_windows
//     pointed to, else the newest failure);
//  6. service_map: who calls whom, and which edges fail;
//  7. list_workloads: the pods behind each workload;
//  8. list_flows of refused connections.
//
// Each step gets a share of the budget; a step with nothing to do is
// skipped.
type Playbook struct{}

// share is each step's most tokens (at least tools.MinMaxTokens each).
// They add up to more than the usual 4,000-token budget: most answers are
// shorter than their share, and a step finding less left than
// tools.MinMaxTokens is skipped.
var share = map[string]int{
	"capture_status":    300,
	"compare_windows":   900,
	"summarize_traffic": 550,
	"summarize_status":  350,
	"search_calls":      450,
	"get_call":          430,
	"service_map":       400,
	"list_workloads":    500,
	"list_flows":        256,
}

var (
	clockRe   = regexp.MustCompile(`\b([01]?\d|2[0-3]):([0-5]\d)\b`)
	coversRe  = regexp.MustCompile(`(\d{4}-\d\d-\d\dT[0-9:.]+Z) to (\d{4}-\d\d-\d\dT[0-9:.]+Z)`)
	exampleRe = regexp.MustCompile(`get_call id=(\S+)`)
	callIDRe  = regexp.MustCompile(` id=(\S+)`)
)

// Investigate implements Investigator.
func (Playbook) Investigate(ctx context.Context, s *Session, q Brief) error {
	status, _, err := s.Call(ctx, "capture_status", nil, share["capture_status"])
	if err != nil {
		return err
	}
	args := map[string]any{}
	if q.RolloutAt != "" {
		args["rollout_at"] = q.RolloutAt
	} else if at := clockTime(q.Ask, status); at != "" {
		args["candidate_from"] = at // "since about 14:05": from then to now, against as long before
	}
	example := ""
	text, isErr, err := s.Call(ctx, "compare_windows", args, share["compare_windows"])
	if err != nil {
		return err
	}
	if m := exampleRe.FindStringSubmatch(text); m != nil && !isErr {
		example = m[1]
	}
	if _, _, err := s.Call(ctx, "summarize_traffic", map[string]any{"group_by": "endpoint"}, share["summarize_traffic"]); err != nil {
		return err
	}
	if _, _, err := s.Call(ctx, "summarize_traffic", map[string]any{"group_by": "status"}, share["summarize_status"]); err != nil {
		return err
	}
	failures, _, err := s.Call(ctx, "search_calls", map[string]any{
		"query": "outcome:server_error outcome:client_error outcome:no_response", "limit": 10}, share["search_calls"])
	if err != nil {
		return err
	}
	if example == "" {
		if m := callIDRe.FindStringSubmatch(failures); m != nil {
			example = m[1]
		}
	}
	if example != "" {
		if _, _, err := s.Call(ctx, "get_call", map[string]any{"id": example}, share["get_call"]); err != nil {
			return err
		}
	}
	if _, _, err := s.Call(ctx, "service_map", nil, share["service_map"]); err != nil {
		return err
	}
	if _, _, err := s.Call(ctx, "list_workloads", nil, share["list_workloads"]); err != nil {
		return err
	}
	_, _, err = s.Call(ctx, "list_flows", map[string]any{"state": "refused", "limit": 10}, share["list_flows"])
	return err
}

// clockTime finds a time of day the question names ("since about 14:05")
// and places it on the capture's day, from capture_status's "covers A to
// B"; "" when there is none or it falls outside the capture.
func clockTime(ask, status string) string {
	m := clockRe.FindStringSubmatch(ask)
	c := coversRe.FindStringSubmatch(status)
	if m == nil || c == nil {
		return ""
	}
	first, err1 := time.Parse(time.RFC3339Nano, c[1])
	last, err2 := time.Parse(time.RFC3339Nano, c[2])
	if err1 != nil || err2 != nil {
		return ""
	}
	clock := strings.TrimSpace(m[0])
	for _, day := range []time.Time{first, last} {
		t, err := time.Parse("2006-01-02 15:04", day.Format("2006-01-02")+" "+pad(clock))
		if err == nil && t.After(first) && t.Before(last) {
			return t.Format(time.RFC3339)
		}
	}
	return ""
}

func pad(clock string) string {
	if len(clock) == 4 {
		return "0" + clock
	}
	return clock
}
