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

// TestSecretsNotSearchable: a secret redacted in answers cannot be found
// by search_calls either, not by the secret, its prefix or a wildcard,
// whether it was in the request target (any case), a form or JSON body,
// a Location header or a URL's userinfo; get_call shows none of them.
func TestSecretsNotSearchable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauth.pcap")
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	exchange := func(port int, req, resp string) {
		c := capturetest.NewConn("10.0.0.2:"+strconv.Itoa(port), "10.0.0.9:80", t0.Add(time.Duration(port-40000)*time.Second), f.Emit)
		c.Handshake()
		c.Send(true, []byte(req))
		c.Send(false, []byte(resp))
		c.Close()
	}
	form := "user=ann&PASSWORD=FORMPASS77"
	js := `{"user":"ann","Password":"JSONPASS31"}`
	exchange(40000, "GET /sso/callback?password=QueryPass123&code=OAUTHCODE&state=STATEX9&lang=en HTTP/1.1\r\nHost: shop\r\n\r\n",
		"HTTP/1.1 302 Found\r\nLocation: https://app.example/home?access_token=LOCTOKEN55&tab=1\r\nContent-Length: 0\r\n\r\n")
	exchange(40001, "POST /login?PASSWORD=UPPERPASS HTTP/1.1\r\nHost: shop\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
		"Content-Length: "+strconv.Itoa(len(form))+"\r\n\r\n"+form, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	exchange(40002, "POST /session HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(js))+"\r\n\r\n"+js,
		"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
	exchange(40003, "GET http://alice:USERINFOPASS@proxy.example/files HTTP/1.1\r\nHost: proxy.example\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cl := connect(t, openWorkspace(t, path))
	secrets := []string{"QueryPass123", "OAUTHCODE", "STATEX9", "UPPERPASS", "FORMPASS77", "JSONPASS31", "LOCTOKEN55", "USERINFOPASS"}

	all := mustCall(t, cl, "search_calls", nil)
	idRE := regexp.MustCompile(`id=([0-9a-f]{16})\b`)
	var ids []string
	for _, m := range idRE.FindAllStringSubmatch(all, -1) {
		ids = append(ids, m[1])
	}
	if len(ids) != 4 {
		t.Fatalf("%d calls listed, want 4:\n%s", len(ids), all)
	}
	// What is not secret is found, so the searches below do search.
	for _, q := range []string{"callback", "path:/login", "session", "proxy*"} {
		if text := mustCall(t, cl, "search_calls", map[string]any{"query": q}); !idRE.MatchString(text) {
			t.Errorf("search_calls %q finds nothing:\n%s", q, text)
		}
	}
	for _, q := range []string{"QueryPass123", "querypass123", "Query*", "path:Query*", "OAUTHCODE", "OAUTH*", "oauthc*",
		"STATEX9", "UPPERPASS", "UPPER*", "path:*PASS", "USERINFOPASS", "alice*", "LOCTOKEN55", "path:/.*pass1.*/"} {
		text := mustCall(t, cl, "search_calls", map[string]any{"query": q})
		if m := idRE.FindString(text); m != "" {
			t.Errorf("search_calls %q finds %s:\n%s", q, m, text)
		}
	}
	for _, id := range ids {
		detail := mustCall(t, cl, "get_call", map[string]any{"id": id, "max_tokens": 32000})
		for _, s := range secrets {
			if strings.Contains(strings.ToLower(detail), strings.ToLower(s)) {
				t.Errorf("get_call %s shows %q:\n%s", id, s, detail)
			}
		}
		if !strings.Contains(detail, "[redacted]") {
			t.Errorf("get_call %s shows no [redacted]:\n%s", id, detail)
		}
	}
}
