package http1

import (
	"math/rand/v2"
	"testing"
)

// headerEndLines is headerEnd as it was, one line at a time: the reference
// the vectorised one must agree with.
func headerEndLines(b []byte, from int) int {
	for i := from; ; {
		j := indexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		j += i
		if j+1 < len(b) && b[j+1] == '\n' {
			return j + 2
		}
		if j+2 < len(b) && b[j+1] == '\r' && b[j+2] == '\n' {
			return j + 3
		}
		i = j + 1
	}
}

func TestHeaderEnd(t *testing.T) {
	cases := []string{"", "\n", "\n\n", "\r\n\r\n", "a\r\nb\r\n\r\nbody\n\n", "a\nb\n\nc\r\n\r\n", "a\r\n\nb", "a\n\r\nb\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n", "x\r\r\n\r\n", "\r\n", "\n\r", "\n\r\n"}
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("ab\r\n:")
	for range 200000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		b := []byte(c)
		for from := 0; from <= len(b); from++ {
			if got, want := headerEnd(b, from), headerEndLines(b, from); got != want {
				t.Fatalf("headerEnd(%q, %d) = %d, want %d", c, from, got, want)
			}
		}
	}
}
