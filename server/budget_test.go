package server_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/internal/corpus"
	"github.com/wirescope/wirescope/tools"
)

// TestBudgets: on every capture of the shared corpus, every tool's text
// answer stays within max_tokens for 256, 1,000 and 4,000, by tiktoken's
// o200k_base count, whatever the arguments ask for.
func TestBudgets(t *testing.T) {
	dir, ok := corpus.Dir()
	if !ok {
		t.Fatal("the shared corpus (../shared/corpus beside the repository) is missing: CI provides it")
	}
	files, err := corpus.Captures(dir)
	if err != nil || len(files) < 20 {
		t.Fatalf("corpus: %d captures, %v", len(files), err)
	}
	idRE := regexp.MustCompile(`id=(\S+)`)
	calls, cut := 0, 0
	for _, file := range files {
		name, _ := filepath.Rel(dir, file)
		t.Run(name, func(t *testing.T) {
			ws := openWorkspace(t, file)
			c := connect(t, ws)
			// Dissect first, and find a call for get_call.
			mustCall(t, c, "dissect", nil)
			var id string
			if m := idRE.FindStringSubmatch(mustCall(t, c, "search_calls", map[string]any{"max_tokens": 32000, "limit": 1})); m != nil {
				id = m[1]
			}
			variants := []struct {
				tool string
				args map[string]any
			}{
				{"capture_status", nil},
				{"list_flows", map[string]any{"limit": 500}},
				{"list_flows", map[string]any{"transport": "udp"}},
				{"get_pcap", nil},
				{"dissect", nil},
				{"search_calls", map[string]any{"limit": 200}},
				{"search_calls", map[string]any{"query": "outcome:client_error outcome:server_error outcome:no_response"}},
				{"summarize_traffic", map[string]any{"limit": 200}},
				{"summarize_traffic", map[string]any{"group_by": "status"}},
				{"summarize_traffic", map[string]any{"group_by": "service"}},
				{"service_map", map[string]any{"limit": 500}},
				{"service_map", map[string]any{"order": "bytes"}},
				{"list_workloads", map[string]any{"limit": 500}},
			}
			if first, last := ws.Bounds(); last.After(first) {
				mid := first.Add(last.Sub(first) / 2).Format(time.RFC3339Nano)
				variants = append(variants, struct {
					tool string
					args map[string]any
				}{"compare_windows", map[string]any{"rollout_at": mid}})
			}
			if id != "" {
				variants = append(variants, struct {
					tool string
					args map[string]any
				}{"get_call", map[string]any{"id": id}})
			}
			for _, v := range variants {
				for _, max := range []int{256, 1000, 4000} {
					args := map[string]any{"max_tokens": max}
					for k, val := range v.args {
						args[k] = val
					}
					text, res := call(t, c, v.tool, args)
					calls++
					if res.IsError && !strings.Contains(text, "no packets match") {
						t.Errorf("%s %v: %s", v.tool, args, text)
					}
					if n := tools.Tokens(text); n > max {
						t.Errorf("%s %v: %d tokens", v.tool, args, n)
					} else if n > max*9/10 {
						cut++
					}
				}
			}
		})
	}
	t.Logf("%d captures, %d answers, %d of them within 10%% of their budget", len(files), calls, cut)
	if cut == 0 {
		t.Error("no answer came near its budget: the corpus did not exercise cutting")
	}
}
