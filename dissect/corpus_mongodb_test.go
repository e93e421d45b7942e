package dissect_test

import (
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect"
)

// mongoTruth is what the corpus's truth files say of MongoDB: per packet
// the frame, opcodes, request IDs, responseTo and namespaces.
type mongoTruth struct {
	Mongo struct {
		Fields struct {
			Result [][]string `json:"result"`
		} `json:"fields_listing"`
	} `json:"mongo"`
}

// TestCorpusMongoDB checks the MongoDB captures of the corpus against
// tshark: a call per request tshark decodes, answered when tshark saw the
// reply that names it, and each OP_QUERY's namespace's database in the
// call's path. (tshark marks deepflow_mongo's OP_MSG malformed for its
// checksums; their headers, which this test reads, are right.)
func TestCorpusMongoDB(t *testing.T) {
	forCorpus(t, "mongodb", 3, func(t *testing.T, m string, tr *mongoTruth) {
		requests := map[string]bool{} // request IDs
		var order []string
		var dbs []string
		answered := 0
		for _, row := range tr.Mongo.Fields.Result {
			ops, ids, to := strings.Split(row[1], ";"), strings.Split(row[2], ";"), strings.Split(row[3], ";")
			nss := strings.Split(row[4], ";")
			for i, op := range ops {
				if op == "1" || op == "2013" && to[i] != "0x00000000" {
					if requests[to[i]] {
						answered++
					}
					continue
				}
				requests[ids[i]] = true
				order = append(order, ids[i])
				if op == "2004" && i < len(nss) {
					db, _, _ := strings.Cut(nss[i], ".")
					dbs = append(dbs, db)
				}
			}
		}
		calls, _, _ := run(t, dissect.Options{}, m)
		gotAnswered := 0
		var gotDBs []string
		for _, c := range calls {
			if c.Proto != "mongodb" || c.Method == "" {
				t.Errorf("call %s %q %q", c.Proto, c.Method, c.Path)
				continue
			}
			if c.Status != "" {
				gotAnswered++
			}
			if c.Extra.Get("opcode") == "OP_QUERY" {
				db, _, _ := strings.Cut(c.Path, ".")
				gotDBs = append(gotDBs, db)
			}
		}
		if len(calls) != len(order) || gotAnswered != answered {
			t.Errorf("%d calls, %d answered; tshark %d requests, %d answered", len(calls), gotAnswered, len(order), answered)
		}
		for i, db := range dbs {
			if i >= len(gotDBs) || gotDBs[i] != db {
				t.Errorf("OP_QUERY %d: database %q, tshark %q (%q)", i, gotDBs, db, dbs)
				break
			}
		}
	})
}
