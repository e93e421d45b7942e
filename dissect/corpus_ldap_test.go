package dissect_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// ldapTruth is what the corpus's truth files say of LDAP: per packet tshark
// decoded, its message IDs, protocolOp numbers and result codes
// (';'-joined when a packet holds several messages).
type ldapTruth struct {
	LDAP struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
	} `json:"ldap"`
}

// ldapOps names tshark's protocolOp numbers of requests as wirescope's
// methods.
var ldapOps = map[int]string{0: "bind", 2: "unbind", 3: "search", 6: "modify", 8: "add", 10: "delete",
	12: "modifyDN", 14: "compare", 16: "abandon", 23: "extended"}

// ldapResults names the result codes the corpus holds.
var ldapResults = map[string]string{"0": "success", "32": "noSuchObject", "49": "invalidCredentials"}

// TestCorpusLDAP checks the LDAP captures of the corpus against tshark:
// every request tshark decodes is a call with its operation and message
// ID, and no other; its status is the result code tshark reads in the
// response with that message ID (a search's done, not its entries), and
// its entries count those tshark reads.
func TestCorpusLDAP(t *testing.T) {
	forCorpus(t, "ldap", 4, func(t *testing.T, m string, tr *ldapTruth) {
		calls, _, _ := run(t, dissect.Options{}, m)
		results := map[string]string{}
		entries := map[string]int{}
		var want []string
		type req struct{ id, op string }
		var reqs []req
		for _, row := range tr.LDAP.Fields.Result {
			ids, ops := strings.Split(row[1], ";"), strings.Split(row[2], ";")
			codes := strings.Split(row[3], ";")
			ci := 0
			for k, op := range ops {
				n, _ := strconv.Atoi(op)
				switch {
				case ldapOps[n] != "":
					reqs = append(reqs, req{ids[k], ldapOps[n]})
				case n == 4:
					entries[ids[k]]++
				case n != 19:
					// A response with a result (1, 5, 7, 9, 11, 13, 15, 24).
					if ci < len(codes) {
						name, ok := ldapResults[codes[ci]]
						if !ok {
							t.Fatalf("result code %s: name it in ldapResults", codes[ci])
						}
						results[ids[k]] = name
						ci++
					}
				}
			}
		}
		for _, r := range reqs {
			want = append(want, fmt.Sprintf("%s #%s %s entries=%d", r.op, r.id, results[r.id], entries[r.id]))
		}
		var got []string
		for _, c := range calls {
			if c.Proto != "ldap" || c.Error != "" {
				t.Errorf("call %s %s %q: error %q", c.Proto, c.Method, c.Path, c.Error)
				continue
			}
			n, _ := c.Extra.Get("entries").(int)
			got = append(got, fmt.Sprintf("%s #%d %s entries=%d", c.Method, c.Extra.Get("message_id"), c.Status, n))
		}
		sameStrings(t, "operations", got, want)
	})
}
