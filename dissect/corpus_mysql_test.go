package dissect_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// mysqlTruth is what the corpus's truth files say of MySQL: per packet
// (tshark -2 -T fields) the frame, the packet numbers, the command codes,
// the queries and the response codes, ";"-joined.
type mysqlTruth struct {
	MySQL struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
	} `json:"mysql"`
}

// TestCorpusMySQL checks the MySQL captures of the corpus against tshark:
// a call per command tshark decodes, with the same command and, for
// queries, the exact text in order; as many failed calls as tshark saw
// error packets; and a CONNECT per greeting (a packet 0 from the server
// tshark shows without a command).
func TestCorpusMySQL(t *testing.T) {
	forCorpus(t, "mysql", 3, func(t *testing.T, m string, tr *mysqlTruth) {
		var commands []int
		var queries []string
		errors := 0
		for _, row := range tr.MySQL.Fields.Result {
			if row[2] != "" {
				for _, c := range strings.Split(row[2], ";") {
					n, err := strconv.Atoi(c)
					if err != nil {
						t.Fatalf("frame %s: command %q", row[0], c)
					}
					commands = append(commands, n)
				}
			}
			if row[3] != "" {
				queries = append(queries, row[3])
			}
			errors += strings.Count(row[4], "0xff")
		}
		calls, _, _ := run(t, dissect.Options{}, m)
		var gotCommands []int
		var gotQueries []string
		gotErrors := 0
		for _, c := range calls {
			if c.Outcome().Failed() {
				gotErrors++
			}
			switch {
			case c.Proto == "tls":
				continue // after a switch to TLS
			case c.Proto != "mysql":
				t.Errorf("call of %q", c.Proto)
			case c.Method == "CONNECT":
				continue
			}
			code := -1
			for k, v := range mysqlCommands {
				if v == c.Method {
					code = k
				}
			}
			gotCommands = append(gotCommands, code)
			if c.Method == "COM_QUERY" {
				gotQueries = append(gotQueries, tsharkEscape.Replace(c.Request.Body))
			}
			if c.Status == "" && !c.OneWay {
				t.Errorf("%s %q: no status (%s)", c.Method, c.Path, c.Error)
			}
		}
		if fmtInts(gotCommands) != fmtInts(commands) {
			t.Errorf("commands %v, tshark %v", gotCommands, commands)
		}
		if strings.Join(gotQueries, ";") != strings.Join(queries, ";") {
			t.Errorf("queries\n got %q\nwant %q", gotQueries, queries)
		}
		if gotErrors != errors {
			t.Errorf("%d failed calls, tshark %d error packets", gotErrors, errors)
		}
	})
}

var mysqlCommands = map[int]string{1: "COM_QUIT", 2: "COM_INIT_DB", 3: "COM_QUERY", 4: "COM_FIELD_LIST", 9: "COM_STATISTICS",
	14: "COM_PING", 22: "COM_STMT_PREPARE", 23: "COM_STMT_EXECUTE", 25: "COM_STMT_CLOSE", 26: "COM_STMT_RESET", 27: "COM_SET_OPTION", 31: "COM_RESET_CONNECTION"}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " ")
}
