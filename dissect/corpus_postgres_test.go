package dissect_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// pgTruth is what the corpus's truth files say of PostgreSQL: per packet
// (tshark -2 -T fields) the frame, the frontend flags, the message types
// and the queries of Simple query and Parse messages, ";"-joined.
type pgTruth struct {
	PG struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
	} `json:"pgsql"`
}

// tsharkEscape escapes a string as tshark's field output does.
var tsharkEscape = strings.NewReplacer("\n", `\n`, "\r", `\r`, "\t", `\t`, `\`, `\\`)

// TestCorpusPostgres checks the PostgreSQL captures of the corpus against
// tshark: a STARTUP call per startup message, a QUERY call per simple
// query with its exact text, in order, an EXECUTE call per Execute
// message carrying a statement tshark saw parsed, and as many failed calls
// as tshark saw error responses.
func TestCorpusPostgres(t *testing.T) {
	forCorpus(t, "postgresql", 3, func(t *testing.T, m string, tr *pgTruth) {
		var startups, executes, errors int
		// tshark joins a packet's queries with ";", which queries
		// hold too: compare all simple queries joined so.
		var queries []string
		var parsed []string
		for _, row := range tr.PG.Fields.Result {
			if strings.Contains(row[2], "Simple query") {
				if strings.Contains(row[2], "Parse") {
					t.Fatalf("frame %s: simple and extended queries in one packet", row[0])
				}
				queries = append(queries, row[3])
			}
			types := strings.Split(row[2], ";")
			var texts []string
			if row[3] != "" {
				texts = strings.Split(row[3], ";")
			}
			for _, typ := range types {
				switch typ {
				case "Startup message":
					startups++
				case "Execute":
					executes++
				case "Error":
					errors++
				case "Parse":
					parsed = append(parsed, texts...)
				}
			}
		}
		calls, _, _ := run(t, dissect.Options{}, m)
		var gotStartups, gotExecutes, gotErrors int
		var gotQueries []string
		for _, c := range calls {
			if c.Proto != "postgres" {
				t.Errorf("call of %q", c.Proto)
				continue
			}
			if c.Outcome().Failed() {
				gotErrors++
			}
			switch c.Method {
			case "STARTUP":
				gotStartups++
			case "QUERY":
				gotQueries = append(gotQueries, tsharkEscape.Replace(c.Request.Body))
				if c.Status == "" {
					t.Errorf("query %q: no status (%s)", c.Request.Body, c.Error)
				}
			case "EXECUTE":
				gotExecutes++
				if !slices.Contains(parsed, tsharkEscape.Replace(c.Request.Body)) {
					t.Errorf("execute of %q: tshark saw no such statement parsed", c.Request.Body)
				}
				if c.Status == "" {
					t.Errorf("execute %q: no status (%s)", c.Request.Body, c.Error)
				}
			default:
				t.Errorf("call %s %q", c.Method, c.Path)
			}
		}
		if gotStartups != startups || gotExecutes != executes || gotErrors != errors {
			t.Errorf("startups %d, executes %d, errors %d; tshark %d, %d, %d", gotStartups, gotExecutes, gotErrors, startups, executes, errors)
		}
		if strings.Join(gotQueries, ";") != strings.Join(queries, ";") {
			t.Errorf("queries\n got %q\nwant %q", gotQueries, queries)
		}
	})
}
