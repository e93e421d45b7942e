package tools

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/analysis"
)

var flowStates = []string{"open", "closed", "reset", "refused", "unanswered"}

type listFlowsArgs struct {
	State     string `json:"state,omitempty" jsonschema:"only flows in this state: open, closed, reset, refused (a SYN answered by RST, or a TCP or UDP flow answered by an ICMP destination unreachable once dissected), unanswered (SYN alone)"`
	Transport string `json:"transport,omitempty" jsonschema:"only this transport: tcp, udp, icmp, …"`
	windowArgs
	filterArgs
	pageArgs
	budgetArgs
}

// ListFlows is the list_flows tool.
func ListFlows(b Backend) Tool {
	page := limits{30, 500}
	return newTool(toolSpec{name: "list_flows", title: "List flows",
		desc: "L4 flows (TCP connections, UDP and other flows) active in a window, largest first: client→server with " +
			"Kubernetes identities, transport, application protocol (dissected, or guessed from the first bytes with a ?; TLS " +
			"and other encrypted payloads are marked), packets and bytes each way, duration, TCP state (closed, reset, refused, " +
			"unanswered, open) and retransmissions. Works without dissection. Times default to all the data; relative times count " +
			"back from the newest packet.",
		readOnly: true, idempotent: true, schema: schemaOpts{limit: page, enums: map[string][]string{"state": flowStates}}},
		func(ctx context.Context, req mcp.CallToolRequest, a listFlowsArgs, budgetMax int) (*mcp.CallToolResult, error) {
			limit, err := a.limit(page)
			if err != nil {
				return nil, err
			}
			f, err := a.filter()
			if err != nil {
				return nil, err
			}
			if a.State != "" && !slices.Contains(flowStates, a.State) {
				return nil, argErrorf("state %q is not one of %s", a.State, strings.Join(flowStates, ", "))
			}
			offset, err := a.offset("list_flows")
			if err != nil {
				return nil, err
			}
			from, to, err := a.window(b)
			if err != nil {
				return nil, err
			}
			all, err := b.Flows(ctx, from, to, f)
			if err != nil {
				return nil, err
			}
			flows := all[:0:0]
			for _, fl := range all {
				if (a.State == "" || fl.State == a.State) && (a.Transport == "" || strings.EqualFold(fl.Transport, a.Transport)) {
					flows = append(flows, fl)
				}
			}
			bud := newBudget(budgetMax, 60)
			bud.add(fmt.Sprintf("%s in %s, largest first (client→server, packets and bytes sent each way):", plural(len(flows), "flow"), describeWindow(from, to)))
			shown := 0
			page := pageOf(flows, offset, limit)
			for i := range page {
				if !bud.add(flowLine(&page[i])) {
					break
				}
				shown++
			}
			closing := []string{nextPage(offset, shown, len(flows), "", "state, transport, the filters or the window")}
			return mcp.NewToolResultText(bud.text(closing...)), nil
		})
}

// flowLine is one flow in a list.
func flowLine(f *Flow) string {
	proto := f.Protocol
	switch {
	case proto == "":
		proto = "?"
	case f.Guessed:
		proto += "?"
	}
	switch {
	case f.Decryption == "decrypted":
		proto += " (decrypted)"
	case analysis.Decrypted(f.Decryption):
		proto += " (" + f.Decryption + ")" // the library: "decrypted: OpenSSL 3.0 uprobe"
	case f.Decryption != "":
		proto += " (encrypted: " + f.Decryption + ")"
	case f.Encrypted:
		proto += " (encrypted)"
	}
	s := fmt.Sprintf("%s %s → %s %s %s/%s pkts %s/%s", f.Transport, peerLabel(&f.Src), peerLabel(&f.Dst), proto,
		count(f.Packets[0]), count(f.Packets[1]), size(f.Bytes[0]), size(f.Bytes[1]))
	if d := f.Last.Sub(f.First); d > 0 {
		s += " " + d.Round(1e6).String()
	}
	if f.State != "" {
		s += " " + f.State
	}
	if f.ICMP != "" {
		if f.State != "" {
			s += ":"
		}
		s += " ICMP " + f.ICMP
	}
	if r := f.Retransmissions[0] + f.Retransmissions[1]; r > 0 {
		s += " " + plural(r, "retransmission")
	}
	if f.Began.Before(f.First) {
		s += " (began " + stamp(f.Began) + ")"
	} else {
		s += " at " + stamp(f.First)
	}
	return s
}

// peerLabel is ip:port, with the Kubernetes identity when known.
func peerLabel(p *Peer) string {
	s := addrPort(p.IP, p.Port)
	switch {
	case p.Pod != "":
		s += " (" + p.Namespace + "/" + p.Pod + ")"
	case p.Service != "":
		s += " (" + p.Namespace + "/svc/" + p.Service + ")"
	}
	return s
}
