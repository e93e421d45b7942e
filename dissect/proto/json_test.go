package proto

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	cases := []string{
		"", "plain ascii text that is longer than eight bytes", "quote\" backslash\\ tab\t nl\n cr\r",
		"\x00\x01\x1f\x7f control", "naïve café 日本語 🎉", "bad \xff\xfe utf8 \xc3", "\u2028 separators \u2029",
		strings.Repeat("x", 1136), strings.Repeat("abcdefg\"", 20), "12345678\x0012345678",
	}
	for _, s := range cases {
		b := appendString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("%q: invalid JSON %s", s, b)
		}
		var back string
		json.Unmarshal(b, &back)
		want := strings.ToValidUTF8(s, "\\ufffd")
		if !utf8.ValidString(s) {
			want = ""
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				want += string(r)
				i += n
			}
		}
		if back != want {
			t.Errorf("%q round-trips to %q, want %q", s, back, want)
		}
	}
}

func TestIsText(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "hello\r\n\tworld, a longer line of text": true, "日本語 text and more": true,
		"binary\x00 in the middle of a long text": false, "12345678\x01": false, "\xff\xfe not utf8 at all....": false,
	} {
		if got := isText([]byte(s)); got != want {
			t.Errorf("isText(%q) = %v", s, got)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := strings.Repeat("x", 1136)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = appendString(buf[:0], s)
	}
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 21, 4, 30, 1, 123456789, time.UTC),
		time.Date(2004, 3, 10, 5, 14, 0, 0, time.FixedZone("x", 3600)),
		time.Date(1970, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Unix(0, 0),
		{},
	} {
		got := string(appendTime(nil, tm))
		want := `"` + tm.UTC().Format(TimeLayout) + `"`
		if got != want {
			t.Errorf("%v: %s, want %s", tm, got, want)
		}
	}
}
