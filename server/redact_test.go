package server_test

import (
	"encoding/base64"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/capture/capturetest"
)

// TestSecretsRedacted: credentials in headers, bodies and query strings
// never reach a tool's text, while get_pcap exports the packets as
// captured.
func TestSecretsRedacted(t *testing.T) {
	secrets := []string{"Bearer eyJhbGciOi.secret-jwt", "sid=9f8e7d6c5b4a", "hunter2-password", "q-token-31337", "resp-session-cookie-77"}
	path := filepath.Join(t.TempDir(), "login.pcap")
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	c := capturetest.NewConn("10.0.0.2:40000", "10.0.0.9:80", time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC), f.Emit)
	c.Handshake()
	body := `{"user":"ann","password":"hunter2-password"}`
	c.Send(true, []byte("POST /api/login?next=%2F&access_token=q-token-31337 HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer eyJhbGciOi.secret-jwt\r\n"+
		"Cookie: sid=9f8e7d6c5b4a\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body))
	c.Send(false, []byte("HTTP/1.1 401 Unauthorized\r\nSet-Cookie: session=resp-session-cookie-77; HttpOnly\r\nContent-Length: 0\r\n\r\n"))
	c.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cl := connect(t, openWorkspace(t, path))
	var texts []string
	list := mustCall(t, cl, "search_calls", nil)
	texts = append(texts, list, mustCall(t, cl, "summarize_traffic", nil), mustCall(t, cl, "list_flows", nil))
	m := regexp.MustCompile(`id=(\S+)`).FindStringSubmatch(list)
	if m == nil {
		t.Fatalf("no call:\n%s", list)
	}
	detail := mustCall(t, cl, "get_call", map[string]any{"id": m[1], "max_tokens": 32000})
	texts = append(texts, detail)
	for _, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) || strings.Contains(text, strings.TrimPrefix(s, "Bearer ")) {
				t.Errorf("%q shown:\n%s", s, text)
			}
		}
	}
	for _, want := range []string{"authorization: [redacted]", "cookie: [redacted]", "set-cookie: [redacted]", `"password":"[redacted]"`, "access_token=[redacted]", `"user":"ann"`} {
		if !strings.Contains(detail, want) {
			t.Errorf("get_call does not show %q:\n%s", want, detail)
		}
	}
	_, res := call(t, cl, "get_pcap", nil)
	raw := ""
	for _, ct := range res.Content {
		if er, ok := ct.(mcp.EmbeddedResource); ok {
			if blob, ok := er.Resource.(mcp.BlobResourceContents); ok {
				b, _ := base64.StdEncoding.DecodeString(blob.Blob)
				raw = string(b)
			}
		}
	}
	for _, s := range secrets {
		if !strings.Contains(raw, s) {
			t.Errorf("get_pcap's packets lack %q: they must be as captured", s)
		}
	}
}
