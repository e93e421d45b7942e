package tools

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
)

type dissectArgs struct {
	windowArgs
	snapshotArgs
	budgetArgs
}

// DissectInfo is dissect's structured result.
type DissectInfo struct {
	Dissected   []string          `json:"dissected" jsonschema:"windows dissected by this call"`
	Skipped     []string          `json:"skipped" jsonschema:"windows already dissected before"`
	Packets     uint64            `json:"packets" jsonschema:"packets read"`
	Calls       map[string]uint64 `json:"calls" jsonschema:"calls found, by protocol"`
	Unanswered  uint64            `json:"unanswered" jsonschema:"requests without a response"`
	Truncated   uint64            `json:"truncated" jsonschema:"calls cut by capture gaps"`
	Malformed   uint64            `json:"malformed" jsonschema:"calls whose messages did not parse"`
	Flows       uint64            `json:"flows" jsonschema:"flows seen"`
	Undissected uint64            `json:"undissected" jsonschema:"flows no dissector understood"`
	Merged      uint64            `json:"merged,omitempty" jsonschema:"calls captured on two nodes (client's and server's) and counted once"`
	Seconds     float64           `json:"seconds" jsonschema:"how long dissection took"`
}

// Dissect is the dissect tool.
func Dissect(b Backend) Tool {
	return newTool(toolSpec{name: "dissect", title: "Dissect a window",
		desc: "Dissect the packets of a window into API calls now, so that search_calls, get_call and " +
			"summarize_traffic can answer about it: reassembles TCP, detects protocols from payload, matches requests with " +
			"responses and indexes the calls. Sends progress notifications and can be cancelled; a window already dissected is " +
			"skipped (calling it again is harmless). Returns calls by protocol and what could not be dissected. Times default to " +
			"all the data; relative times count back from the newest packet.",
		idempotent: true, output: outputSchema[DissectInfo]()},
		func(ctx context.Context, req mcp.CallToolRequest, a dissectArgs, budgetMax int) (*mcp.CallToolResult, error) {
			b, err := a.snapshotArgs.backend(ctx, b)
			if err != nil {
				return nil, err
			}
			from, to, err := a.window(b)
			if err != nil {
				return nil, err
			}
			res, err := b.Dissect(ctx, from, to, progressReporter(ctx, req, "dissecting "+describeWindow(from, to)))
			if err != nil {
				return nil, err
			}
			info := DissectInfo{Packets: res.Packets, Calls: res.Calls, Unanswered: res.Unanswered, Truncated: res.Truncated,
				Malformed: res.Malformed, Flows: res.Flows, Undissected: res.Undissected, Merged: res.Merged, Seconds: res.Took.Seconds(),
				Dissected: windowStrings(res.Dissected), Skipped: windowStrings(res.Skipped)}
			if info.Calls == nil {
				info.Calls = map[string]uint64{}
			}
			var text string
			if len(res.Dissected) == 0 {
				text = "already dissected: " + windowsText(res.Skipped) + "; search_calls and summarize_traffic can answer about it"
			} else {
				text = fmt.Sprintf("dissected %s: %s in %s; calls: %s; unanswered %s, truncated %s, malformed %s; %s, %s not understood by any dissector",
					windowsText(res.Dissected), plural(res.Packets, "packet"), res.Took.Round(1e6), counts(res.Calls, "none"), count(res.Unanswered),
					count(res.Truncated), count(res.Malformed), plural(res.Flows, "flow"), count(res.Undissected))
				if res.Merged > 0 {
					text += fmt.Sprintf("; %s of calls captured twice (on two nodes, or before and after a node's DNAT) left out", plural(res.Merged, "copy"))
				}
				if len(res.Skipped) > 0 {
					text += "; already dissected before: " + windowsText(res.Skipped)
				}
			}
			text = clipTokens(text, budgetMax-Tokens(string(mustJSON(info))))
			return mcp.NewToolResultStructured(info, text), nil
		})
}

func windowStrings(ws []Window) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = stamp(w.From) + "/" + stamp(w.To)
	}
	return out
}
