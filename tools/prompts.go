package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Prompt is an MCP prompt: a short playbook naming the tools in order, for
// clients that offer prompts to their users.
type Prompt struct {
	Def     mcp.Prompt
	Handler server.PromptHandlerFunc
}

// promptArg is one argument of a prompt.
type promptArg struct {
	name, desc string
	required   bool
}

// playbook builds a prompt from its steps; arguments appear in the text as
// {name}, and an argument not given as the text in fallback.
func playbook(name, title, desc string, args []promptArg, fallback map[string]string, steps ...string) Prompt {
	opts := []mcp.PromptOption{mcp.WithPromptTitle(title), mcp.WithPromptDescription(desc)}
	for _, a := range args {
		aopts := []mcp.ArgumentOption{mcp.ArgumentDescription(a.desc)}
		if a.required {
			aopts = append(aopts, mcp.RequiredArgument())
		}
		opts = append(opts, mcp.WithArgument(a.name, aopts...))
	}
	def := mcp.NewPrompt(name, opts...)
	return Prompt{Def: def, Handler: func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		var b strings.Builder
		for i, s := range steps {
			if i > 0 {
				fmt.Fprintf(&b, "%d. ", i)
			}
			b.WriteString(s)
			b.WriteByte('\n')
		}
		text := b.String()
		for _, a := range args {
			v := strings.TrimSpace(req.Params.Arguments[a.name])
			if v == "" && a.required {
				return nil, fmt.Errorf("argument %s is required: %s", a.name, a.desc)
			}
			if v == "" {
				v = fallback[a.name]
			}
			text = strings.ReplaceAll(text, "{"+a.name+"}", v)
		}
		return mcp.NewGetPromptResult(desc, []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text))}), nil
	}}
}

// Prompts returns the prompts the server offers.
func Prompts() []Prompt {
	return []Prompt{
		playbook("investigate_incident", "Investigate an incident",
			"Find what is failing or slow, where, since when, and the evidence, with wirescope's tools in order.",
			[]promptArg{
				{"symptom", "what is wrong, in your words (\"checkout returns 502s\", \"orders are slow\")", false},
				{"since", "when it started, RFC 3339 or relative (-30m)", false},
			}, map[string]string{"symptom": "something is failing or slow", "since": "the start of the data"},
			"Investigate this incident with the wirescope tools: {symptom} (since {since}). Cite counts, pods and call ids.",
			"capture_status: what is captured and when; note what is not visible (encrypted or undissected flows).",
			"compare_windows with rollout_at={since} (skip when no start time is known): the verdict and ranked evidence of what changed.",
			"summarize_traffic (group_by endpoint, then workload): the failing and slow endpoints, with statuses and p95.",
			"search_calls with query \"outcome:server_error outcome:client_error outcome:no_response\" and the filters the summary points to.",
			"get_call on one or two of those ids: headers and bodies say why (error messages, upstream names).",
			"service_map: which callers the failing service has and which of its dependencies fail.",
			"list_flows with state refused, reset or unanswered: connection failures below the API layer.",
			"Answer with the failing endpoint, status codes and counts, the pods on both sides, when it started, and the call ids as evidence.",
		),
		playbook("verify_rollout", "Verify a rollout",
			"Decide whether a deploy regressed anything, with evidence, by comparing the traffic before and after it.",
			[]promptArg{
				{"rollout_at", "when the rollout happened: RFC 3339 or relative (-20m)", true},
				{"workload", "the workload rolled out (optional: all traffic when not given)", false},
			}, map[string]string{"workload": "any workload"},
			"Verify the rollout of {workload} at {rollout_at} with the wirescope tools.",
			"compare_windows with rollout_at={rollout_at}, and the workload filter when a workload was named ({workload}): read the verdict.",
			"If regressed: for each piece of evidence run the search_calls it names and get_call on an example to confirm the cause.",
			"If inconclusive: widen window, or compare explicit baseline and candidate windows with more traffic.",
			"list_workloads with the workload filter: the old and new pods, their versions (labels) and nodes.",
			"Answer regressed, ok or inconclusive, with the endpoint, statuses, counts before and after, latency shifts and the new pods.",
		),
		playbook("map_dependencies", "Map a service's dependencies",
			"Who calls a service, what it calls, over which protocols, and which of those edges fail.",
			[]promptArg{{"service", "the service or workload to map (optional: the whole map)", false}},
			map[string]string{"service": "every service"},
			"Map the dependencies of {service} with the wirescope tools.",
			"service_map, with the workload or service filter when one was named ({service}): edges both ways, worst first.",
			"list_workloads: the pods, IPs, nodes and versions behind each peer.",
			"summarize_traffic group_by endpoint with the same filter: the endpoints used on each edge.",
			"list_flows: connections no dissector understood (databases, TLS) that the call map does not show.",
			"Answer with the callers, the dependencies with protocol, volume, error rate and p95, and the edges that fail.",
		),
	}
}
