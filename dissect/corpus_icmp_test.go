package dissect_test

import (
	"encoding/json"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// icmpTruth is what the corpus's truth files say of ICMP and ICMPv6: each
// message's type and code.
type icmpTruth struct {
	ICMP   icmpListing `json:"icmp"`
	ICMPv6 icmpListing `json:"icmpv6"`
}

// icmpListing is one version's listing; the truth files say "none" when a
// capture has none.
type icmpListing struct {
	Listing struct {
		Result [][]string `json:"result"`
	} `json:"type_code_listing"`
}

func (l *icmpListing) UnmarshalJSON(b []byte) error {
	if string(b) == `"none"` {
		return nil
	}
	type plain icmpListing
	return json.Unmarshal(b, (*plain)(l))
}

// TestCorpusICMP checks the ICMP captures of the corpus against tshark:
// an echo call per echo request, answered when tshark reads as many
// replies; a one-way record per destination unreachable, with the flow it
// quotes.
func TestCorpusICMP(t *testing.T) {
	forCorpus(t, "icmp", 3, func(t *testing.T, m string, tr *icmpTruth) {
		calls, _, _ := run(t, dissect.Options{}, m)
		want := map[string]int{}
		for _, row := range tr.ICMP.Listing.Result {
			want["v4 "+row[1]+"/"+row[2]]++
		}
		for _, row := range tr.ICMPv6.Listing.Result {
			want["v6 "+row[1]+"/"+row[2]]++
		}
		requests := want["v4 8/0"] + want["v6 128/0"]
		replies := want["v4 0/0"] + want["v6 129/0"]
		var echoes, answered, unreachable int
		for _, c := range calls {
			switch {
			case c.Proto == "dns":
				// The unreachable quotes a DNS response: not a call here.
			case c.Proto != "icmp":
				t.Errorf("a %s call", c.Proto)
			case c.Method == "echo":
				echoes++
				if c.Status == "reply" && c.Error == "" && c.LatencyNS > 0 {
					answered++
				}
			case c.Method == "destination-unreachable":
				unreachable++
				if !c.OneWay || c.Status != "port unreachable" || c.Path == "" {
					t.Errorf("unreachable: %s %q %v", c.Status, c.Path, c.OneWay)
				}
			default:
				t.Errorf("a call %s %s", c.Method, c.Status)
			}
		}
		if echoes != requests || answered != replies || unreachable != want["v4 3/3"] {
			t.Errorf("%d echoes (%d answered), %d unreachable; tshark reads %v", echoes, answered, unreachable, want)
		}
	})
}
