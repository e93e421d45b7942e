package dissect_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// redisTruth is what the corpus's truth files say of RESP: tshark's Info
// column per packet ("Request: SET key xxx", "Response: Array(100)",
// "[fragment]" for an inline command tshark does not parse), and how many
// top-level RESP values (commands and replies) the packets hold.
type redisTruth struct {
	RESP struct {
		Info struct {
			Result [][]string `json:"result"`
		} `json:"info_listing"`
		Values struct {
			Result int `json:"result"`
		} `json:"top_level_values"`
	} `json:"redis_resp"`
}

// TestCorpusRedis checks the Redis captures of the corpus against tshark:
// as many commands and replies as tshark counts RESP values; every
// command tshark names, with its first argument, and as many inline
// commands as tshark has fragments; every array reply's length.
func TestCorpusRedis(t *testing.T) {
	forCorpus(t, "redis", 3, func(t *testing.T, m string, tr *redisTruth) {
		calls, _, _ := run(t, dissect.Options{}, m)
		values, inline := 0, 0
		var commands, arrays []string
		for _, c := range calls {
			if c.Proto != "redis" || c.Error != "" {
				t.Errorf("call %s %q %s error %q", c.Proto, c.Method, c.Status, c.Error)
				continue
			}
			switch {
			case c.OneWay:
				values++
			case c.Extra.Get("confirmations") != nil:
				values += 1 + int(c.Extra.Get("confirmations").(int64))
			default:
				values += 2
			}
			if c.OneWay {
				continue
			}
			if c.Extra.Get("inline") == true {
				inline++
			} else {
				commands = append(commands, strings.TrimSpace(c.Method+" "+c.Path))
			}
			if n, ok := c.Extra.Get("elements").(int64); ok {
				arrays = append(arrays, "Array("+strconv.FormatInt(n, 10)+")")
			}
		}
		if values != tr.RESP.Values.Result {
			t.Errorf("%d commands and replies, tshark counts %d RESP values", values, tr.RESP.Values.Result)
		}
		var wantCommands, wantArrays []string
		fragments := 0
		for _, row := range tr.RESP.Info.Result {
			info := row[2]
			if rest, ok := strings.CutPrefix(info, "Request: "); ok {
				if strings.HasPrefix(rest, "[fragment]") {
					fragments += strings.Count(rest, "[fragment]")
					continue
				}
				words := strings.Fields(rest)
				wantCommands = append(wantCommands, strings.Join(words[:min(2, len(words))], " "))
			}
			if rest, ok := strings.CutPrefix(info, "Response: "); ok {
				for _, w := range strings.Fields(rest) {
					if strings.HasPrefix(w, "Array(") {
						wantArrays = append(wantArrays, w)
					}
				}
			}
		}
		if inline != fragments {
			t.Errorf("%d inline commands, tshark %d fragments", inline, fragments)
		}
		slices.Sort(commands)
		slices.Sort(wantCommands)
		if !slices.Equal(commands, wantCommands) {
			t.Errorf("commands\n got %q\nwant %q", commands, wantCommands)
		}
		// Pub/sub confirmations and messages are arrays tshark
		// lists too; replies' arrays must all be among them.
		for _, a := range arrays {
			i := slices.Index(wantArrays, a)
			if i < 0 {
				t.Errorf("reply %s: tshark shows no such array (%q)", a, wantArrays)
				continue
			}
			wantArrays = slices.Delete(wantArrays, i, i+1)
		}
	})
}
