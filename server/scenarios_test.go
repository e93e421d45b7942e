package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
)

// TestScenarioVerdicts runs compare_windows on the eval scenarios, recorded
// from real servers: around the rollout when the scenario has one, else
// with no time (the tool finds when the error rate rose). A rollout that
// broke something is "regressed" with the broken endpoint, its status and
// a new pod in the first piece of evidence; the harmless rollout is "ok".
func TestScenarioVerdicts(t *testing.T) {
	cases := map[string]struct {
		verdict string
		first   []string // in the first piece of evidence, in order
		newPod  bool     // the first evidence names a pod started at the rollout
	}{
		"cart-rollout-errors":  {"regressed", []string{"errors: cart POST /api/cart/items", "[502×"}, true},
		"harmless-rollout":     {"ok", nil, false},
		"checkout-latency":     {"regressed", []string{"slower: inventory POST /api/inventory/reserve"}, false},
		"dns-misspelt-service": {"regressed", []string{"DNS failures: kube-dns A", "paymnets.payments.svc.cluster.local", "[NXDOMAIN×"}, false},
		"backend-down":         {"regressed", []string{"errors: api-gateway GET /api/recommendations", "[502×"}, false},
		"auth-failures":        {"regressed", []string{"errors: orders GET /api/orders", "[401×"}, false},
	}
	dirs, _ := filepath.Glob(filepath.Join("..", "evals", "scenarios", "*"))
	seen := 0
	for _, dir := range dirs {
		name := filepath.Base(dir)
		tc, ok := cases[name]
		if !ok {
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			var sc struct {
				Capture, Cluster string
				RolloutAt        string `json:"rollout_at"`
			}
			raw, err := os.ReadFile(filepath.Join(dir, "scenario.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, &sc); err != nil {
				t.Fatal(err)
			}
			id, err := identity.LoadFile(filepath.Join(dir, sc.Cluster))
			if err != nil {
				t.Fatal(err)
			}
			ws, err := workspace.Open(workspace.Options{Paths: []string{filepath.Join(dir, sc.Capture)}, Dir: t.TempDir(), Identity: id})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			c := connect(t, ws)
			args := map[string]any{"max_tokens": 4000}
			if sc.RolloutAt != "" {
				args["rollout_at"] = sc.RolloutAt
			}
			text := mustCall(t, c, "compare_windows", args)
			lines := strings.Split(text, "\n")
			if !strings.HasPrefix(lines[0], "verdict: "+tc.verdict+" — ") {
				t.Fatalf("verdict %q, want %s:\n%s", lines[0], tc.verdict, text)
			}
			i := lineIndex(lines, "evidence, most significant first:")
			if tc.verdict != "regressed" {
				if i >= 0 {
					t.Errorf("evidence with verdict %s:\n%s", tc.verdict, text)
				}
				return
			}
			if i < 0 || i+2 >= len(lines) {
				t.Fatalf("no evidence:\n%s", text)
			}
			first, at := lines[i+1], 0
			for _, w := range tc.first {
				j := strings.Index(first[at:], w)
				if j < 0 {
					t.Errorf("%q not in (or out of order in) the first evidence %q", w, first)
					continue
				}
				at += j + len(w)
			}
			pods := lines[i+2]
			if !strings.Contains(pods, "server pods") || !strings.Contains(pods, "clients: ") {
				t.Errorf("the first evidence names no pods on both sides: %q", pods)
			}
			if tc.newPod {
				rollout, err := time.Parse(time.RFC3339Nano, sc.RolloutAt)
				if err != nil {
					t.Fatal(err)
				}
				named := false
				for _, p := range id.Pods() {
					if p.StartTime != nil && !p.StartTime.Before(rollout.Add(-time.Minute)) && strings.Contains(pods, p.Name) {
						named = true
					}
				}
				if !named {
					t.Errorf("the first evidence names no pod started at the rollout: %q", pods)
				}
			}
		})
	}
	if seen != len(cases) {
		t.Errorf("%d of the %d scenarios are in evals/scenarios", seen, len(cases))
	}
}
