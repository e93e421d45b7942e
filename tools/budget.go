package tools

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// Token budgets, in o200k_base tokens.
const (
	DefaultMaxTokens = 2000
	MinMaxTokens     = 256
	MaxMaxTokens     = 32000
)

var encoding = sync.OnceValues(func() (*tiktoken.Tiktoken, error) {
	tiktoken.SetBpeLoader(loader.NewOfflineLoader())
	return tiktoken.GetEncoding("o200k_base")
})

// PrepareTokens loads the o200k_base encoding on a goroutine of its own,
// so that a server's first answer does not wait for it (0.26 s on two
// cores). A server calls it as it starts; Tokens waits for the load if it
// is still running.
func PrepareTokens() { go encoding() }

// Tokens counts s in o200k_base tokens, the encoding budgets are kept in.
// Counts of short strings (an answer's rows, which recur from answer to
// answer) are remembered.
func Tokens(s string) int {
	if len(s) > maxCountedLine {
		return countTokens(s)
	}
	if n, ok := counted.m.Load(s); ok {
		return n.(int)
	}
	n := countTokens(s)
	if counted.n.Add(1) > maxCountedLines {
		// Bounded: start over rather than track use.
		counted.n.Store(1)
		counted.m.Clear()
	}
	counted.m.Store(s, n)
	return n
}

// The counts Tokens remembers: of strings up to maxCountedLine bytes, at
// most maxCountedLines of them (about 10 MiB).
const (
	maxCountedLine  = 512
	maxCountedLines = 1 << 15
)

// counted is written once per string and read many times, by every
// answer's goroutine: a sync.Map, whose reads take no lock. n counts the
// strings stored since the last start over (a string stored twice by two
// goroutines at once counts twice, which only starts over sooner).
var counted struct {
	m sync.Map // string → int
	n atomic.Int64
}

func countTokens(s string) int {
	enc, err := encoding()
	if err != nil {
		// The encoding ships inside the binary: failing to load it is a
		// build fault, not a condition to recover from.
		panic(fmt.Sprintf("tiktoken o200k_base: %v", err))
	}
	return len(enc.Encode(s, nil, nil))
}

// budget builds a text answer that stays within max tokens. Lines that do
// not fit are counted, so the answer can say what it left out.
type budget struct {
	max     int
	reserve int // tokens kept for the closing lines
	used    int
	lines   []string
	omitted int
	full    bool
}

func newBudget(max, reserve int) *budget { return &budget{max: max, reserve: reserve} }

// fits reports whether a line of n tokens still fits before the reserve.
func (b *budget) fits(n int) bool { return b.used+n <= b.max-b.reserve }

// add appends a line when it fits and reports whether it did; once one line
// has not fitted, later ones are not tried (rows are in order of importance)
// but counted.
func (b *budget) add(line string) bool {
	if b.full {
		b.omitted++
		return false
	}
	n := Tokens(line + "\n")
	if !b.fits(n) {
		b.full = true
		b.omitted++
		return false
	}
	b.used += n
	b.lines = append(b.lines, line)
	return true
}

// text joins the lines, then the closing lines (which the reserve is for),
// and trims lines from the end until the whole counts within max: add
// counts each line with its newline, the last one included, which is close
// to, not exactly, counting their join (joinedTokens).
func (b *budget) text(closing ...string) string {
	closing = slices.DeleteFunc(closing, func(s string) bool { return s == "" })
	for {
		all := append(append([]string(nil), b.lines...), closing...)
		if joinedTokens(all) <= b.max {
			return strings.Join(all, "\n") // what clipTokens would return
		}
		if len(b.lines) == 0 {
			return clipTokens(strings.Join(all, "\n"), b.max)
		}
		b.lines = b.lines[:len(b.lines)-1]
		b.omitted++
	}
}

// joinedTokens counts lines joined by newlines, as Tokens would count the
// join, from the counts of the lines (which Tokens remembers) rather than by
// encoding the whole text again.
//
// The o200k_base pre-tokenizer splits text into pieces that are encoded
// each alone. A newline ends the piece it is in unless what follows can
// continue it: whitespace (\s*[\r\n]+, \s+), a slash (the [\r\n/]* after
// punctuation) or another newline. When the next line begins otherwise, the
// pieces of the join are those of line+"\n" and of the next line, so the
// counts add up exactly; when any line does not (TestJoinedTokens), the
// join is encoded whole.
func joinedTokens(lines []string) int {
	for _, l := range lines[min(1, len(lines)):] {
		if !startsPiece(l) {
			return Tokens(strings.Join(lines, "\n"))
		}
	}
	n := 0
	for i, l := range lines {
		if i < len(lines)-1 {
			l += "\n"
		}
		n += Tokens(l)
	}
	return n
}

// startsPiece reports whether a line begins with what no piece of the
// pre-tokenizer continues from a newline before it: a letter, a digit, or
// printable ASCII other than a space and a slash.
func startsPiece(l string) bool {
	r, _ := utf8.DecodeRuneInString(l)
	switch {
	case l == "":
		return false
	case r < utf8.RuneSelf:
		return r > ' ' && r < 0x7f && r != '/'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// clipTokens cuts s to at most max tokens (a last resort for closing lines
// that alone exceed a tiny budget).
func clipTokens(s string, max int) string {
	enc, _ := encoding()
	toks := enc.Encode(s, nil, nil)
	if len(toks) <= max {
		return s
	}
	if max < 1 {
		return ""
	}
	return enc.Decode(toks[:max-1]) + "…"
}
