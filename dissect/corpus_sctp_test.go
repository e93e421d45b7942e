package dissect_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// sctpTruth is what the corpus's truth files say of SCTP: the associations
// (tshark's conversations) and the HTTP carried over them.
type sctpTruth struct {
	SCTP struct {
		Conversations struct {
			Result int      `json:"result"`
			List   []string `json:"conversations"`
		} `json:"sctp_conversations"`
	} `json:"sctp"`
	HTTP httpPairs `json:"http"`
}

// httpPairs is a truth file's HTTP section ("none" when there is none).
type httpPairs struct {
	Pairs [][]any `json:"pairs_method_uri_status"`
}

func (h *httpPairs) UnmarshalJSON(b []byte) error {
	if string(b) == `"none"` {
		return nil
	}
	type plain httpPairs
	return json.Unmarshal(b, (*plain)(h))
}

func pair(a, b string) string {
	if a > b {
		a, b = b, a
	}
	return a + " <-> " + b
}

// TestCorpusSCTP checks the SCTP captures of the corpus against tshark: an
// sctp flow per association tshark lists, between the same endpoints, and
// the HTTP requests carried in DATA chunks (arkime's sctp-www) as calls
// with tshark's methods, targets and statuses.
func TestCorpusSCTP(t *testing.T) {
	forCorpus(t, "sctp", 3, func(t *testing.T, m string, tr *sctpTruth) {
		calls, flows, _ := run(t, dissect.Options{}, m)
		var got []string
		for _, f := range flows {
			if f.Transport != "sctp" {
				t.Errorf("a %s flow", f.Transport)
				continue
			}
			if f.State == "" {
				t.Errorf("flow %v → %v has no state", f.Src, f.Dst)
			}
			got = append(got, pair(fmt.Sprintf("%s:%d", f.Src.IP, f.Src.Port), fmt.Sprintf("%s:%d", f.Dst.IP, f.Dst.Port)))
		}
		// tshark lists a conversation from whichever side it saw first.
		var want []string
		for _, c := range tr.SCTP.Conversations.List {
			a, b, _ := strings.Cut(c, " <-> ")
			want = append(want, pair(a, b))
		}
		sameStrings(t, "associations", got, want)
		var gotCalls, wantCalls []string
		for _, c := range calls {
			gotCalls = append(gotCalls, fmt.Sprintf("%s %s %s %s", c.Proto, c.Method, c.Path, c.Status))
		}
		for _, p := range tr.HTTP.Pairs {
			wantCalls = append(wantCalls, fmt.Sprintf("http %v %v %v", p[0], p[1], p[2]))
		}
		sameStrings(t, "calls", gotCalls, wantCalls)
	})
}
