package eval_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/eval"
)

// scenarios loads the scenario pack in evals/scenarios.
func scenarios(t *testing.T) []*eval.Scenario {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "evals", "scenarios", "*", "scenario.json"))
	if err != nil || len(paths) < 6 {
		t.Fatalf("evals/scenarios: %d scenarios (%v), want at least 6", len(paths), err)
	}
	var out []*eval.Scenario
	for _, p := range paths {
		s, err := eval.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// binary builds wirescope.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wirescope")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/wirescope")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestScenarioPack runs the fixed playbook over the whole pack, as
// `wirescope eval evals/scenarios/*/scenario.json` does: every fact of
// every question must be found, each question within 4,000 tokens.
func TestScenarioPack(t *testing.T) {
	scs := scenarios(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := eval.Run(ctx, scs, eval.Options{Command: []string{binary(t), "mcp"}, MaxTokens: 4000, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	questions := 0
	for _, s := range rep.Scenarios {
		for _, q := range s.Questions {
			questions++
			t.Logf("%s/%s: %d/%d facts, %d tokens", s.Name, q.ID, q.FactsFound, q.FactsTotal, q.Tokens)
			if q.FactsFound != q.FactsTotal {
				t.Errorf("%s/%s: missing %s", s.Name, q.ID, strings.Join(q.Missing, "; "))
				for _, c := range q.Calls {
					t.Logf("  %s %v (%d tokens):\n%s", c.Tool, c.Args, c.Tokens, c.Text)
				}
			}
			if q.Tokens > 4000 {
				t.Errorf("%s/%s: %d tokens of tool output, budget 4000", s.Name, q.ID, q.Tokens)
			}
			if len(q.Calls) < 5 {
				t.Errorf("%s/%s: the playbook made %d calls", s.Name, q.ID, len(q.Calls))
			}
		}
	}
	if rep.Score != 1 {
		t.Errorf("score %.3f, want 1", rep.Score)
	}
	if questions < 12 {
		t.Errorf("%d questions in the pack, want at least 2 per scenario", questions)
	}
}

// TestScoring: a fact counts only when present (case-insensitive), one of
// each facts_any group is enough, and the budget bounds what the tools
// may return.
func TestScoring(t *testing.T) {
	dir := t.TempDir()
	capture, err := filepath.Abs("../internal/demo/shop-errors.pcap")
	if err != nil {
		t.Fatal(err)
	}
	sc := `{"name": "demo", "capture": "` + capture + `",
	 "questions": [
	  {"id": "all-found", "ask": "What is failing?", "facts_all": ["/API/RECOMMENDATIONS", "503"], "facts_any": [["no-such-word", "reviews"]]},
	  {"id": "some-missing", "ask": "What is failing?", "facts_all": ["/api/recommendations", "no-such-path"], "facts_any": [["nope", "nada"]]}]}`
	p := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(p, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := eval.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := binary(t)
	rep, err := eval.Run(ctx, []*eval.Scenario{s}, eval.Options{Command: []string{bin, "mcp"}, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	qs := rep.Scenarios[0].Questions
	if qs[0].FactsFound != 3 || qs[0].FactsTotal != 3 || len(qs[0].Missing) != 0 {
		t.Errorf("all-found: %+v", qs[0])
	}
	if qs[1].FactsFound != 1 || qs[1].FactsTotal != 3 || strings.Join(qs[1].Missing, ";") != "no-such-path;one of nope | nada" {
		t.Errorf("some-missing: found %d of %d, missing %q", qs[1].FactsFound, qs[1].FactsTotal, qs[1].Missing)
	}
	if rep.Score != 4.0/6 {
		t.Errorf("score %v, want 4/6", rep.Score)
	}
	// A small budget: the playbook stops when it is spent, and no answer
	// exceeds it.
	rep, err = eval.Run(ctx, []*eval.Scenario{s}, eval.Options{Command: []string{bin, "mcp"}, MaxTokens: 700, TempDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range rep.Scenarios[0].Questions {
		if q.Tokens > 700 || len(q.Calls) == 0 || len(q.Calls) >= 7 {
			t.Errorf("budget 700: %d tokens in %d calls", q.Tokens, len(q.Calls))
		}
	}
}

// TestLoadErrors: a scenario file that cannot be run says why.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.pcap"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ body, want string }{
		"not json":       {`{`, "unexpected EOF"},
		"unknown field":  {`{"name":"x","capture":"c.pcap","questions":[],"facts":[]}`, "unknown field"},
		"no capture":     {`{"name":"x","questions":[{"id":"a","ask":"b","facts_all":["c"]}]}`, "no capture"},
		"missing file":   {`{"name":"x","capture":"nope.pcap","questions":[{"id":"a","ask":"b","facts_all":["c"]}]}`, "nope.pcap"},
		"bad rollout":    {`{"name":"x","capture":"c.pcap","rollout_at":"14:02","questions":[{"id":"a","ask":"b","facts_all":["c"]}]}`, "rollout_at"},
		"no questions":   {`{"name":"x","capture":"c.pcap"}`, "no questions"},
		"no facts":       {`{"name":"x","capture":"c.pcap","questions":[{"id":"a","ask":"b"}]}`, "no facts"},
		"duplicate id":   {`{"name":"x","capture":"c.pcap","questions":[{"id":"a","ask":"b","facts_all":["c"]},{"id":"a","ask":"b","facts_all":["c"]}]}`, "used twice"},
		"empty any":      {`{"name":"x","capture":"c.pcap","questions":[{"id":"a","ask":"b","facts_any":[[]]}]}`, "empty facts_any"},
		"cluster absent": {`{"name":"x","capture":"c.pcap","cluster":"k.json","questions":[{"id":"a","ask":"b","facts_all":["c"]}]}`, "k.json"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := eval.Load(p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file and %q", name, err, c.want)
		}
	}
}
