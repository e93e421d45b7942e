package tools

import (
	"fmt"
	"slices"
	"strings"
	"sync"

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
	counted.mu.RLock()
	n, ok := counted.m[s]
	counted.mu.RUnlock()
	if ok {
		return n
	}
	n = countTokens(s)
	counted.mu.Lock()
	if len(counted.m) >= maxCountedLines {
		// Bounded: start over rather than track use.
		clear(counted.m)
	}
	counted.m[s] = n
	counted.mu.Unlock()
	return n
}

// The counts Tokens remembers: of strings up to maxCountedLine bytes, at
// most maxCountedLines of them (about 10 MiB).
const (
	maxCountedLine  = 512
	maxCountedLines = 1 << 15
)

var counted = struct {
	mu sync.RWMutex
	m  map[string]int
}{m: map[string]int{}}

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
// and trims lines from the end until the whole counts within max: counting
// lines one by one is close to, not exactly, counting their join.
func (b *budget) text(closing ...string) string {
	closing = slices.DeleteFunc(closing, func(s string) bool { return s == "" })
	for {
		all := append(append([]string(nil), b.lines...), closing...)
		s := strings.Join(all, "\n")
		if Tokens(s) <= b.max {
			return s // what clipTokens would return
		}
		if len(b.lines) == 0 {
			return clipTokens(s, b.max)
		}
		b.lines = b.lines[:len(b.lines)-1]
		b.omitted++
	}
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
