// Package eval measures how well wirescope's tools answer incident
// questions. A scenario (scenario.json) names a capture, a cluster file and
// questions with the facts a correct answer must contain; Run starts
// `wirescope mcp` on the scenario as a subprocess, lets an Investigator ask
// the tools over MCP (stdio) within a token budget per question, and scores
// each question by the facts found in what the tools returned.
//
// The default Investigator is Playbook: one fixed, generic sequence of tool
// calls, the same for every question; it reads the question and the
// scenario's rollout time, never the expected facts. A model-driven
// investigator plugs in through the same interface.
package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/tools"
)

// Scenario is one scenario.json.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Capture and Cluster are paths relative to the scenario file.
	Capture   string     `json:"capture"`
	Cluster   string     `json:"cluster"`
	RolloutAt string     `json:"rollout_at,omitempty"`
	Questions []Question `json:"questions"`

	path string
}

// Question is an incident question and the facts its answer must hold.
type Question struct {
	ID  string `json:"id"`
	Ask string `json:"ask"`
	// FactsAll must all be found; of each FactsAny group, one.
	FactsAll []string   `json:"facts_all"`
	FactsAny [][]string `json:"facts_any,omitempty"`
}

// Load reads a scenario file and checks it.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Scenario
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	s.path = path
	var problems []string
	if s.Name == "" {
		problems = append(problems, "no name")
	}
	if s.Capture == "" {
		problems = append(problems, "no capture")
	} else if _, err := os.Stat(s.CapturePath()); err != nil {
		problems = append(problems, err.Error())
	}
	if s.Cluster != "" {
		if _, err := os.Stat(s.ClusterPath()); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if s.RolloutAt != "" {
		if _, err := time.Parse(time.RFC3339Nano, s.RolloutAt); err != nil {
			problems = append(problems, fmt.Sprintf("rollout_at %q is not RFC 3339", s.RolloutAt))
		}
	}
	if len(s.Questions) == 0 {
		problems = append(problems, "no questions")
	}
	ids := map[string]bool{}
	for i, q := range s.Questions {
		switch {
		case q.ID == "" || q.Ask == "":
			problems = append(problems, fmt.Sprintf("question %d: id and ask are required", i))
		case ids[q.ID]:
			problems = append(problems, fmt.Sprintf("question %q: id used twice", q.ID))
		case q.total() == 0:
			problems = append(problems, fmt.Sprintf("question %q: no facts", q.ID))
		}
		ids[q.ID] = true
		for _, group := range q.FactsAny {
			if len(group) == 0 {
				problems = append(problems, fmt.Sprintf("question %q: an empty facts_any group", q.ID))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("scenario %s: %s", path, strings.Join(problems, "; "))
	}
	return &s, nil
}

// CapturePath is the capture's path: relative to the scenario file unless
// absolute.
func (s *Scenario) CapturePath() string { return s.resolve(s.Capture) }

// ClusterPath is the cluster file's path; "" when the scenario has none.
func (s *Scenario) ClusterPath() string {
	if s.Cluster == "" {
		return ""
	}
	return s.resolve(s.Cluster)
}

func (s *Scenario) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(s.path), p)
}

func (q *Question) total() int { return len(q.FactsAll) + len(q.FactsAny) }

// Brief is what an investigator is told: the question, never its facts.
type Brief struct {
	Scenario  string
	Ask       string
	RolloutAt string // RFC 3339, when the scenario has a rollout
}

// Investigator answers a question by calling tools through a Session.
type Investigator interface {
	Investigate(ctx context.Context, s *Session, q Brief) error
}

// ErrBudget is returned by Session.Call when the question's budget is
// spent.
var ErrBudget = errors.New("token budget spent")

// Session is one question's access to the tools: it passes each call a
// max_tokens no larger than what is left, counts the tokens of every
// answer and keeps the transcript that is scored.
type Session struct {
	c      client.MCPClient
	budget int
	used   int
	calls  []Call
}

// Call is one tool call and its answer.
type Call struct {
	Tool    string         `json:"tool"`
	Args    map[string]any `json:"args"`
	Text    string         `json:"text"`
	Tokens  int            `json:"tokens"`
	IsError bool           `json:"is_error,omitempty"`
}

// Remaining is the budget left, in o200k_base tokens.
func (s *Session) Remaining() int { return s.budget - s.used }

// Call calls a tool with max_tokens set to at most want and what is left;
// it returns the answer's text (an isError answer too, with isError set).
func (s *Session) Call(ctx context.Context, tool string, args map[string]any, want int) (string, bool, error) {
	max := min(want, s.Remaining())
	if max < tools.MinMaxTokens {
		return "", false, ErrBudget
	}
	a := map[string]any{"max_tokens": max}
	for k, v := range args {
		a[k] = v
	}
	res, err := s.c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool, Arguments: a}})
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", tool, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
			b.WriteByte('\n')
		}
	}
	text := b.String()
	n := tools.Tokens(text)
	s.used += n
	s.calls = append(s.calls, Call{Tool: tool, Args: a, Text: text, Tokens: n, IsError: res.IsError})
	return text, res.IsError, nil
}

// Result is a question's score.
type Result struct {
	ID         string   `json:"id"`
	FactsFound int      `json:"facts_found"`
	FactsTotal int      `json:"facts_total"`
	Tokens     int      `json:"tokens"`
	Missing    []string `json:"missing"`
	Calls      []Call   `json:"calls,omitempty"`
}

// ScenarioResult is a scenario's questions' scores.
type ScenarioResult struct {
	Name      string   `json:"name"`
	Questions []Result `json:"questions"`
}

// Report is a whole run.
type Report struct {
	Scenarios []ScenarioResult `json:"scenarios"`
	// Score is the fraction of facts found over all questions.
	Score float64 `json:"score"`
}

// Options configure a run.
type Options struct {
	// Command starts `wirescope mcp`: the binary and the arguments before
	// the scenario's (--pcap, --cluster and --data-dir are added).
	Command []string
	// MaxTokens is each question's budget of tool output. Default 4000.
	MaxTokens int
	// Investigator defaults to Playbook.
	Investigator Investigator
	// TempDir holds the servers' data directories. Default os.TempDir.
	TempDir string
}

// Run investigates every question of every scenario.
func Run(ctx context.Context, scenarios []*Scenario, o Options) (*Report, error) {
	if o.MaxTokens == 0 {
		o.MaxTokens = 4000
	}
	if o.Investigator == nil {
		o.Investigator = Playbook{}
	}
	rep := &Report{}
	var found, total int
	for _, sc := range scenarios {
		sr, err := runScenario(ctx, sc, o)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		for _, q := range sr.Questions {
			found += q.FactsFound
			total += q.FactsTotal
		}
		rep.Scenarios = append(rep.Scenarios, *sr)
	}
	if total > 0 {
		rep.Score = float64(found) / float64(total)
	}
	return rep, nil
}

func runScenario(ctx context.Context, sc *Scenario, o Options) (*ScenarioResult, error) {
	dir, err := os.MkdirTemp(o.TempDir, "wirescope-eval-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := append(append([]string(nil), o.Command[1:]...), "--pcap", sc.CapturePath(), "--data-dir", dir)
	if p := sc.ClusterPath(); p != "" {
		args = append(args, "--cluster", p)
	}
	c, err := client.NewStdioMCPClient(o.Command[0], nil, args...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION,
		ClientInfo:      mcp.Implementation{Name: "wirescope-eval", Version: "1"}}}); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	sr := &ScenarioResult{Name: sc.Name}
	for _, q := range sc.Questions {
		s := &Session{c: c, budget: o.MaxTokens}
		err := o.Investigator.Investigate(ctx, s, Brief{Scenario: sc.Name, Ask: q.Ask, RolloutAt: sc.RolloutAt})
		if err != nil && !errors.Is(err, ErrBudget) {
			return nil, fmt.Errorf("question %s: %w", q.ID, err)
		}
		sr.Questions = append(sr.Questions, score(&q, s))
	}
	return sr, nil
}

// score finds the question's facts in the session's answers, ignoring
// case.
func score(q *Question, s *Session) Result {
	var all strings.Builder
	for _, c := range s.calls {
		all.WriteString(c.Text)
		all.WriteByte('\n')
	}
	text := strings.ToLower(all.String())
	has := func(f string) bool { return strings.Contains(text, strings.ToLower(f)) }
	r := Result{ID: q.ID, FactsTotal: q.total(), Tokens: s.used, Missing: []string{}, Calls: s.calls}
	for _, f := range q.FactsAll {
		if has(f) {
			r.FactsFound++
		} else {
			r.Missing = append(r.Missing, f)
		}
	}
	for _, group := range q.FactsAny {
		ok := false
		for _, f := range group {
			ok = ok || has(f)
		}
		if ok {
			r.FactsFound++
		} else {
			r.Missing = append(r.Missing, "one of "+strings.Join(group, " | "))
		}
	}
	return r
}
