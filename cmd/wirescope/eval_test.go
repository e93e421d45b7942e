package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalCommand: `wirescope eval` prints the JSON the issue specifies
// and exits non-zero when the score is below --min-score.
func TestEvalCommand(t *testing.T) {
	bin := wirescopeBinary(t)
	sc, err := filepath.Abs(filepath.Join("..", "..", "evals", "scenarios", "harmless-rollout", "scenario.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "eval", "--format", "json", sc).Output()
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	var rep struct {
		Scenarios []struct {
			Name      string
			Questions []map[string]json.RawMessage
		}
		Score *float64
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Scenarios) != 1 || rep.Scenarios[0].Name != "harmless-rollout" || rep.Score == nil || *rep.Score != 1 {
		t.Fatalf("report:\n%s", out)
	}
	for _, q := range rep.Scenarios[0].Questions {
		for _, k := range []string{"id", "facts_found", "facts_total", "tokens", "missing"} {
			if _, ok := q[k]; !ok {
				t.Errorf("question without %s: %v", k, q)
			}
		}
		if len(q) != 5 {
			t.Errorf("question with more than the five fields (the calls are for -v): %v", q)
		}
	}

	// A fact no tool can return: the score is 0.5, below the default 1.
	demo, err := filepath.Abs(filepath.Join("..", "..", "internal", "demo", "shop-errors.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "scenario.json")
	body := `{"name":"demo","capture":"` + demo + `","questions":[{"id":"q","ask":"What is failing?","facts_all":["/api/recommendations","no-such-fact"]}]}`
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "eval", p).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "score 0.500 is below 1.000") || !strings.Contains(string(out), "no-such-fact") {
		t.Errorf("eval below --min-score: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "eval", "--min-score", "0.5", p).CombinedOutput(); err != nil {
		t.Errorf("eval --min-score 0.5: %v\n%s", err, out)
	}
}
