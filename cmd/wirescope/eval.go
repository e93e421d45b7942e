//go:build !lean

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wirescope/wirescope/eval"
)

func newEvalCmd() *cobra.Command {
	var (
		maxTokens int
		format    string
		minScore  float64
		verbose   bool
	)
	cmd := &cobra.Command{
		Use:   "eval SCENARIO.json...",
		Short: "Score how well the tools answer a pack of incident questions",
		Long: `eval starts "wirescope mcp" on each scenario's capture and cluster file, runs the
fixed investigation playbook for every question over MCP (stdio), within a
budget of tool output per question, and scores the question by the expected
facts found (case-insensitive) in what the tools returned.

It exits non-zero when the overall score is below --min-score.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("--format %q: use table or json", format)
			}
			if maxTokens < 256 {
				return fmt.Errorf("--max-tokens %d: use at least 256", maxTokens)
			}
			var scenarios []*eval.Scenario
			for _, p := range args {
				s, err := eval.Load(p)
				if err != nil {
					return err
				}
				scenarios = append(scenarios, s)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			rep, err := eval.Run(cmd.Context(), scenarios, eval.Options{Command: []string{self, "mcp"}, MaxTokens: maxTokens})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				if !verbose {
					for i := range rep.Scenarios {
						for j := range rep.Scenarios[i].Questions {
							rep.Scenarios[i].Questions[j].Calls = nil
						}
					}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				writeTable(out, rep, verbose)
			}
			if rep.Score < minScore {
				return fmt.Errorf("score %.3f is below %.3f", rep.Score, minScore)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&maxTokens, "max-tokens", 4000, "tokens (o200k_base) of tool output each question may use")
	fl.StringVar(&format, "format", "table", "table or json")
	fl.Float64Var(&minScore, "min-score", 1, "fail when the fraction of facts found is below this")
	fl.BoolVarP(&verbose, "verbose", "v", false, "also list each question's tool calls (json: with their arguments and tokens)")
	return cmd
}

func writeTable(w io.Writer, rep *eval.Report, verbose bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tquestion\tfacts\ttokens\tmissing")
	var found, total, questions int
	for _, s := range rep.Scenarios {
		for _, q := range s.Questions {
			questions++
			found += q.FactsFound
			total += q.FactsTotal
			fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\n", s.Name, q.ID, q.FactsFound, q.FactsTotal, q.Tokens, strings.Join(q.Missing, "; "))
			if verbose {
				for _, c := range q.Calls {
					fmt.Fprintf(tw, "\t  %s\t\t%d\t%s\n", c.Tool, c.Tokens, argsText(c.Args))
				}
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "score %.3f: %d of %d facts in %d questions of %d scenarios\n", rep.Score, found, total, questions, len(rep.Scenarios))
}

func argsText(a map[string]any) string {
	b, _ := json.Marshal(a)
	return string(b)
}
