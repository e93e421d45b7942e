package tools

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wirescope/wirescope/analysis"
	"github.com/wirescope/wirescope/dissect/proto"
)

func addrPort(ip netip.Addr, port uint16) string {
	if !ip.IsValid() {
		return "?"
	}
	return netip.AddrPortFrom(ip, port).String()
}

// ms formats a duration in milliseconds, to a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case d == 0:
		return "-"
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64) + "ms"
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "ms"
}

// size formats a byte count.
func size(n uint64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatUint(n, 10) + "B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "KiB"
	case n < 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + "GiB"
}

// count formats an integer with thousands separators.
func count[T ~int | ~int64 | ~uint64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	if len(s) <= 4 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// plural counts n of a thing, with thousands separators and the noun in
// its singular or plural: "1 call", "2 calls", "1,024 entries".
func plural[T ~int | ~int64 | ~uint64](n T, one string) string {
	return count(n) + " " + noun(n, one)
}

// noun is a noun in its singular for n == 1, else in its plural (English
// rules for regular nouns: call → calls, entry → entries, pass → passes).
func noun[T ~int | ~int64 | ~uint64](n T, one string) string {
	if n == 1 {
		return one
	}
	switch {
	case strings.HasSuffix(one, "y") && len(one) > 1 && !strings.ContainsRune("aeiou", rune(one[len(one)-2])):
		return one[:len(one)-1] + "ies"
	case strings.HasSuffix(one, "s"), strings.HasSuffix(one, "x"), strings.HasSuffix(one, "ch"), strings.HasSuffix(one, "sh"):
		return one + "es"
	}
	return one + "s"
}

// agree picks the form of a word that agrees with n: one for 1, else many
// ("1 call matches", "2 calls match").
func agree[T ~int | ~int64 | ~uint64](n T, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// percent formats a rate.
func percent(r float64) string { return strconv.FormatFloat(100*r, 'f', 1, 64) + "%" }

// clip shortens s to n runes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// callLine is one call in a list: time, protocol, call, outcome, latency,
// the peers and the ID to fetch it with.
func callLine(c *proto.Call) string {
	status := c.Status
	if status == "" {
		status = "-"
	}
	line := fmt.Sprintf("%s %s %s %s → %s %s %s→%s id=%s", stamp(c.TS), c.Proto, c.Method,
		clip(redactText(c.Path), 120), status, ms(time.Duration(c.LatencyNS)), analysis.EndpointName(&c.Src), analysis.EndpointName(&c.Dst), c.ID)
	if c.Error != "" {
		line += " error=" + strconv.Quote(clip(c.Error, 100))
	}
	return line
}

// windowsText lists windows compactly.
func windowsText(ws []Window) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = stamp(w.From) + "–" + stamp(w.To)
	}
	return strings.Join(parts, ", ")
}

// mustJSON encodes v, which is always encodable (tool result types).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// topCounts lists the most frequent names with their counts.
func topCounts(m map[string]int, n int) string {
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range m {
		all = append(all, kv{k, v})
	}
	slices.SortFunc(all, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	var parts []string
	for i, e := range all {
		if i == n {
			parts = append(parts, fmt.Sprintf("+%d more", len(all)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}
