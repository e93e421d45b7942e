package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

var groupBys = []string{"endpoint", "service", "workload", "namespace", "pod", "protocol", "status"}

type summarizeArgs struct {
	GroupBy string `json:"group_by,omitempty" jsonschema:"what to group calls by: endpoint (server and route, the default), service, workload, namespace or pod (of the server side), protocol, status"`
	windowArgs
	filterArgs
	Limit int `json:"limit,omitempty" jsonschema:"most groups to list"`
	snapshotArgs
	budgetArgs
}

// SummarizeTraffic is the summarize_traffic tool.
func SummarizeTraffic(b Backend) Tool {
	page := limits{20, 200}
	return newTool(toolSpec{name: "summarize_traffic", title: "Summarize traffic",
		desc: "Aggregate API calls in a window into groups, worst first: calls, failed calls and error rate (client " +
			"errors such as HTTP 4xx or DNS NXDOMAIN, server errors such as 5xx, requests with no response), the top failing " +
			"statuses with counts, p50/p95/p99 latency and bytes. Start here to see what is failing or slow; then search_calls for " +
			"examples. Times default to all the data; relative times count back from the newest packet. A window not dissected " +
			"yet is dissected first when small enough, else the answer says so.",
		readOnly: true, idempotent: true, schema: schemaOpts{limit: page, enums: map[string][]string{"group_by": groupBys}}},
		func(ctx context.Context, req mcp.CallToolRequest, a summarizeArgs, budgetMax int) (*mcp.CallToolResult, error) {
			b, err := a.snapshotArgs.backend(ctx, b)
			if err != nil {
				return nil, err
			}
			limit, err := pageArgs{Limit: a.Limit}.limit(page)
			if err != nil {
				return nil, err
			}
			group := strings.ToLower(a.GroupBy)
			if group == "" {
				group = "endpoint"
			}
			if !slices.Contains(groupBys, group) {
				return nil, argErrorf("group_by %q is not one of %s", a.GroupBy, strings.Join(groupBys, ", "))
			}
			f, from, to, err := scope(b, a)
			if err != nil {
				return nil, err
			}
			note, err := ensureDissected(ctx, b, req, from, to)
			if err != nil {
				return nil, err
			}
			q := index.SummaryQuery{From: from, To: to, Filter: f.Index(), GroupBy: index.GroupBy(group), Limit: limit, TopErrors: 3}
			ix := b.Index()
			v := ix.Version()
			text, err := answers.answer(ctx, ix, v, answerKey("summarize_traffic", v, q, note, budgetMax), func() (string, error) {
				return summaryAnswer(ctx, ix, q, note, budgetMax)
			})
			if err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(text), nil
		})
}

// summaryAnswer is summarize_traffic's answer to q.
func summaryAnswer(ctx context.Context, ix *index.Index, q index.SummaryQuery, note string, budgetMax int) (string, error) {
	from, to, group := q.From, q.To, string(q.GroupBy)
	sum, err := ix.Summarize(ctx, q)
	if err != nil {
		return "", err
	}
	bud := newBudget(budgetMax, 60)
	var failed uint64
	for _, g := range sum.Groups {
		failed += g.Failed
	}
	bud.add(fmt.Sprintf("%s in %s (%s to %s), %s, worst first:", plural(sum.Calls, "call"),
		describeWindow(from, to), stamp(sum.From), stamp(sum.To), plural(sum.GroupsTotal, group+" group")))
	if note != "" {
		bud.add(note)
	}
	if sum.Calls == 0 {
		bud.add("no calls: the window holds traffic but no protocol wirescope dissects; list_flows shows the flows")
	}
	shown := 0
	for _, g := range sum.Groups {
		if !bud.add(groupLine(&g)) {
			break
		}
		shown++
	}
	var closing []string
	if left := sum.GroupsTotal - shown; left > 0 {
		closing = append(closing, fmt.Sprintf("(%d more groups not shown: raise limit or max_tokens, or narrow with the filters or the window)", left))
	}
	return bud.text(closing...), nil
}

// groupLine is one summary group: its calls and outcomes, latency, bytes.
func groupLine(g *index.Group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", g.Key, plural(g.Calls, "call"))
	if g.Failed > 0 {
		fmt.Fprintf(&b, ", %s failed (%s)", count(g.Failed), percent(g.ErrorRate))
		var errs []string
		for _, e := range g.TopErrors {
			errs = append(errs, fmt.Sprintf("%s×%s", e.Value, count(e.Count)))
		}
		if len(errs) > 0 && !(len(g.TopErrors) == 1 && g.TopErrors[0].Value == g.Key) { // by status: the key says it
			fmt.Fprintf(&b, " [%s]", strings.Join(errs, ", "))
		}
	} else {
		b.WriteString(", no failures")
	}
	if n := g.Outcomes["incomplete"]; n > 0 {
		fmt.Fprintf(&b, ", %s incomplete", count(n))
	}
	if n := g.Outcomes[proto.OneWay.String()]; n > 0 {
		fmt.Fprintf(&b, ", %s one-way (no answer expected)", count(n))
	}
	if g.P50 > 0 {
		fmt.Fprintf(&b, "; p50 %s p95 %s p99 %s", ms(g.P50), ms(g.P95), ms(g.P99))
	}
	fmt.Fprintf(&b, "; %s/%s req/resp bodies", size(g.ReqBytes), size(g.RespBytes))
	return b.String()
}
