package server_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/capturetest"
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

// TestBudgetsManyPeers: on traffic from 3,000 clients, the lists of the
// investigation tools are cut to the budget and say how to go on.
func TestBudgetsManyPeers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 3000, Requests: 3}); err != nil {
		t.Fatal(err)
	}
	ws := openWorkspace(t, path)
	c := connect(t, ws)
	first, last := ws.Bounds()
	mid := first.Add(last.Sub(first) / 2).Format(time.RFC3339Nano)
	for _, v := range []struct {
		tool string
		args map[string]any
		cut  string // what a cut answer says
	}{
		{"service_map", map[string]any{"limit": 500}, "continue with cursor="},
		{"list_workloads", map[string]any{"limit": 500}, "continue with cursor="},
		{"compare_windows", map[string]any{"rollout_at": mid}, "verdict: "},
	} {
		for _, max := range []int{256, 1000, 4000} {
			args := map[string]any{"max_tokens": max}
			for k, val := range v.args {
				args[k] = val
			}
			text := mustCall(t, c, v.tool, args)
			if n := tools.Tokens(text); n > max {
				t.Errorf("%s %v: %d tokens", v.tool, args, n)
			}
			if !strings.Contains(text, v.cut) {
				t.Errorf("%s %v: no %q in\n%s", v.tool, args, v.cut, text)
			}
		}
	}
	// The cursor continues where the cut answer stopped.
	text := mustCall(t, c, "service_map", map[string]any{"max_tokens": 1000, "order": "calls"})
	m := regexp.MustCompile(`showing 1–(\d+) of 3000 edges: continue with cursor=(\d+)`).FindStringSubmatch(text)
	if m == nil || m[1] != m[2] {
		t.Fatalf("service_map's closing line:\n%s", text)
	}
	next := mustCall(t, c, "service_map", map[string]any{"max_tokens": 1000, "order": "calls", "cursor": m[2]})
	if !strings.Contains(next, "showing "+thousands(mustAtoi(t, m[2])+1)+"–") {
		t.Errorf("the next page does not start after %s:\n%s", m[2], next)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
