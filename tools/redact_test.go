package tools

import (
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect/proto"
)

func TestRedact(t *testing.T) {
	h := redactHeaders(proto.Headers{{Name: "host", Value: "shop"}, {Name: "authorization", Value: "Bearer abc.def"}, {Name: "cookie", Value: "sid=1"}})
	if h.Get("host") != "shop" || h.Get("authorization") != redacted || h.Get("cookie") != redacted {
		t.Errorf("headers %v", h)
	}
	for in, want := range map[string]string{
		`{"user":"ann","password":"hunter2","n":1}`:   `{"user":"ann","password":"[redacted]","n":1}`,
		`{"client_secret": "s3\"cr3t", "apiKey":"k"}`: `{"client_secret": "[redacted]", "apiKey":"[redacted]"}`,
		`{"access_token":"trunc`:                      `{"access_token":"[redacted]"`,
		`user=ann&passwd=hunter2&remember=1`:          `user=ann&passwd=[redacted]&remember=1`,
		`/api/login?user=ann&token=abc123#frag`:       `/api/login?user=ann&token=[redacted]#frag`,
		`/api/orders/42?sort=asc`:                     `/api/orders/42?sort=asc`,
		`{"tokens_used": 12}`:                         `{"tokens_used": 12}`,
		`{"authorization":"Bearer x","x":"y"}`:        `{"authorization":"[redacted]","x":"y"}`,
		`{"Set-Cookie":"sid=1"}`:                      `{"Set-Cookie":"[redacted]"}`,
	} {
		if got := redactText(in); got != want {
			t.Errorf("redactText(%s) = %s, want %s", in, got, want)
		}
	}
	if strings.Contains(redactText(`password=x`), "x") {
		t.Error("form at start of body not redacted")
	}
	// The rules are internal/redact's: Location's query, OAuth parameters
	// in any case, URL userinfo.
	h = redactHeaders(proto.Headers{{Name: "location", Value: "https://app/cb?CODE=OAUTHCODE&State=S&lang=en"}})
	if got, want := h.Get("location"), "https://app/cb?CODE=[redacted]&State=[redacted]&lang=en"; got != want {
		t.Errorf("location %q, want %q", got, want)
	}
	if got, want := redactText("http://u:p@h/x?PASSWORD=UPPERPASS"), "http://[redacted]@h/x?PASSWORD=[redacted]"; got != want {
		t.Errorf("redactText = %q, want %q", got, want)
	}
}
