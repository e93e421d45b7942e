package graphql

import (
	"slices"
	"strings"
	"testing"
)

// TestDocument: the operation type, name and root fields of documents as
// clients write them, the one operationName picks, and texts that are not
// GraphQL.
func TestDocument(t *testing.T) {
	for _, tc := range []struct {
		doc, want string
		typ, name string
		fields    []string
		ops       int
		cut       bool
		notGQL    bool
	}{
		{doc: "{ books { id title } }", typ: "query", fields: []string{"books"}, ops: 1},
		{doc: `query Hello($n: String! = "x") { hello(name: $n) }`, typ: "query", name: "Hello", fields: []string{"hello"}, ops: 1},
		{doc: "mutation Add { first: addBook(title: \"a\") { id } second: addBook(title: \"b\") { id } }",
			typ: "mutation", name: "Add", fields: []string{"addBook", "addBook"}, ops: 1},
		// A variable's default and a directive's argument hold braces.
		{doc: `query Q($in: Filter = {tag: "{"}) @cached(ttl: {s: 1}) { a @include(if: true) { x } b }`,
			typ: "query", name: "Q", fields: []string{"a", "b"}, ops: 1},
		// Fragments before the operation; a spread and an inline fragment
		// at the root.
		{doc: "fragment F on Query { z }\n# comment { not a brace\nquery Q { ...F ... on Query { y } ... @skip(if: false) { w } v }",
			typ: "query", name: "Q", fields: []string{"...F", "y", "w", "v"}, ops: 1},
		{doc: `subscription OnBook { bookAdded { id } }`, typ: "subscription", name: "OnBook", fields: []string{"bookAdded"}, ops: 1},
		// operationName picks; an unknown one gives the first.
		{doc: "query A { a } query B { b } mutation C { c }", want: "C", typ: "mutation", name: "C", fields: []string{"c"}, ops: 3},
		{doc: "query A { a } query B { b }", want: "Z", typ: "query", name: "A", fields: []string{"a"}, ops: 2},
		// Block strings and escapes do not end the document early.
		{doc: "query { a(s: \"\"\" } \\\"\"\" \"\"\") b(s: \"\\\"}\") }", typ: "query", fields: []string{"a", "b"}, ops: 1},
		// Cut by the capture: what the start says.
		{doc: "query Deep { a(x: 1) { b", typ: "query", name: "Deep", fields: []string{"a"}, ops: 1, cut: true},
		{doc: "mutation Cut", typ: "mutation", name: "Cut", ops: 1, cut: true},
		{doc: "SELECT * FROM books", notGQL: true},
		{doc: "title:go AND year:2024", notGQL: true},
		{doc: `{"match": {"title": "go"}}`, notGQL: true},
		{doc: "{ }", notGQL: true},
		{doc: "type Query { a: Int }", notGQL: true},
		{doc: "", notGQL: true},
	} {
		op, ops, ok := parseDocument(tc.doc, tc.want)
		if ok == tc.notGQL {
			t.Errorf("%q: GraphQL %v", tc.doc, ok)
			continue
		}
		if tc.notGQL {
			continue
		}
		if op.typ != tc.typ || op.name != tc.name || !slices.Equal(op.fields, tc.fields) || ops != tc.ops || op.cut != tc.cut {
			t.Errorf("%q: %s %q %q ops %d cut %v, want %s %q %q ops %d cut %v", tc.doc, op.typ, op.name, op.fields, ops, op.cut,
				tc.typ, tc.name, tc.fields, tc.ops, tc.cut)
		}
	}
	// Root fields are bounded.
	op, _, _ := parseDocument("{"+strings.Repeat("f ", 100)+"}", "")
	if len(op.fields) != maxFields || op.more != 100-maxFields {
		t.Errorf("100 fields listed as %d and %d more", len(op.fields), op.more)
	}
	// Nesting of inline fragments is bounded (no deep recursion).
	deep := "{ y " + strings.Repeat("... on Q {", 10000) + "x" + strings.Repeat("}", 10000) + " z }"
	if op, _, ok := parseDocument(deep, ""); !ok || !slices.Equal(op.fields, []string{"y", "z"}) || op.cut {
		t.Errorf("deeply nested fragments read as %q (cut %v)", op.fields, op.cut)
	}
}

// TestScanner: the values of the keys asked for, from an object and from a
// batch, whatever the write boundaries; everything else walked over.
func TestScanner(t *testing.T) {
	body := `[ {"variables": {"query": "not this", "x": [1, {"errors": 2}]}, "query": "{ a }", "operationName": "A\"1"},` +
		"\n" + `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}, "query": "query B { b }"}, {"id": "}{"}]`
	for step := 1; step <= len(body); step++ {
		s := newScanner(keyCap{"query", 64}, keyCap{"operationName", 64}, keyCap{"extensions", 8})
		for b := []byte(body); len(b) > 0; b = b[min(step, len(b)):] {
			s.write(b[:min(step, len(b))])
		}
		els := s.finish()
		if !s.batch || len(els) != 3 {
			t.Fatalf("step %d: batch %v, %d elements", step, s.batch, len(els))
		}
		got := []string{string(els[0].values[0]), string(els[0].values[1]), string(els[1].values[0]), string(els[1].values[2])}
		want := []string{`"{ a }"`, `"A\"1"`, `"query B { b }"`, `{"persis`}
		if !slices.Equal(got, want) || !els[1].cut[2] || els[1].cut[0] || !els[2].whole || els[2].values[0] != nil {
			t.Fatalf("step %d: %q cut %v", step, got, els[1].cut)
		}
	}
	// Not JSON; a body cut inside a value; a gap.
	s := newScanner(keyCap{"query", 64})
	s.write([]byte("query=x"))
	if !s.failed || len(s.finish()) != 0 {
		t.Error("a form body read as JSON")
	}
	s = newScanner(keyCap{"errors", 64}, keyCap{"data", 8})
	s.write([]byte(`{"errors": [{"message": "boom"}], "data": {"a": "` + strings.Repeat("x", 1000)))
	els := s.finish()
	if len(els) != 1 || els[0].whole || string(els[0].values[0]) != `[{"message":"boom"}]` || !els[0].cut[1] {
		t.Errorf("cut body: %+v", els)
	}
	s = newScanner(keyCap{"errors", 64})
	s.write([]byte(`{"data": null, `))
	s.gap()
	s.write([]byte(`"errors": [1]}`))
	if els := s.finish(); len(els) != 1 || els[0].whole || els[0].values[0] != nil {
		t.Errorf("after a gap: %+v", els)
	}
}
