package tools

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestJoinedTokens: counting a join from its lines' counts gives exactly
// what encoding the join gives, for lines as the tools write them (call
// and group rows, notes, closing lines) and for lines that begin or end
// where the pre-tokenizer's pieces could cross a newline (spaces, slashes,
// tabs, empty lines, punctuation, digits, other scripts).
func TestJoinedTokens(t *testing.T) {
	lines := []string{
		"2026-11-21T09:03:12.345Z http POST /api/cart/items → 502 212.4 ms shop/frontend→shop/cart id=0f3a9c2b1d",
		"checkout POST /api/checkout: 1,500 calls, 375 failed (25.0%) [500×375]; p50 141 ms p95 346 ms p99 351 ms; 0 B/24 KiB req/resp bodies",
		"6,000 calls in all the data (2026-11-21T09:00:00.003Z to 2026-11-21T09:09:57.803Z), 13 endpoint groups, worst first:",
		"(showing 20 of 1,234: continue with cursor=YzE6MTc2MzcxNTU5NzgwMzAwMDAwMHxhYmM, or narrow the window, the filters or the query)",
		"note: 09:00–09:05 not dissected yet (1,234 packets): calls there are missing; run dissect on a narrower window to include them",
		"503: 12 calls, 12 failed (100.0%); p50 1 ms p95 2 ms p99 2 ms",
		"10.0.2.10:8080 GET /api/cart: 3 calls, no failures",
		"/api/cart/items",
		"/",
		"  indented line",
		"\tone tab",
		" ",
		"",
		"ends with a colon:",
		"ends with spaces   ",
		"ends with a slash/",
		"ends with a newline\n",
		"123",
		"42 calls",
		"é accented start",
		"→ arrow start",
		"— dash start",
		"日本語の行",
		"'s quoted",
		"\u00a0no-break space",
		"(parenthesis)",
		"[bracket] end.",
		"x",
		"!!!",
		"<|endoftext|> is text here",
	}
	r := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for range 3000 {
		n := 1 + r.IntN(6)
		var join []string
		for range n {
			join = append(join, lines[r.IntN(len(lines))])
		}
		want := countTokens(strings.Join(join, "\n"))
		if got := joinedTokens(join); got != want {
			t.Fatalf("joinedTokens(%q) = %d, encoding the join gives %d", join, got, want)
		}
		ok := true
		for _, l := range join[1:] {
			ok = ok && startsPiece(l)
		}
		if ok && n > 1 {
			fast++
		}
	}
	if fast < 500 {
		t.Errorf("only %d joins counted from their lines: the test hardly tests that", fast)
	}
	// Every pair: where the second line starts a piece the counts add up;
	// some lines that do not start one do cross the newline, so the rule
	// is needed, not just cautious.
	crossed := 0
	for _, a := range lines {
		for _, b := range lines {
			adds := countTokens(a+"\n"+b) == countTokens(a+"\n")+countTokens(b)
			switch {
			case startsPiece(b) && !adds:
				t.Errorf("%q then %q: the counts do not add up", a, b)
			case !startsPiece(b) && !adds:
				crossed++
			}
		}
	}
	if crossed == 0 {
		t.Error("no line that startsPiece refuses changes the count of a join: the rule is not tested")
	}
}
