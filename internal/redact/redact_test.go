package redact

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wirescope/wirescope/dissect/proto"
)

var textCases = []struct{ in, want string }{
	// JSON.
	{`{"user":"ann","password":"hunter2","n":1}`, `{"user":"ann","password":"[redacted]","n":1}`},
	{`{"client_secret": "s3\"cr3t", "apiKey":"k"}`, `{"client_secret": "[redacted]", "apiKey":"[redacted]"}`},
	{`{"access_token":"trunc`, `{"access_token":"[redacted]"`},
	{`{"authorization":"Bearer x","x":"y"}`, `{"authorization":"[redacted]","x":"y"}`},
	{`{"Set-Cookie":"sid=1"}`, `{"Set-Cookie":"[redacted]"}`},
	{`{"PASSWORD" : "UPPERPASS"}`, `{"PASSWORD" : "[redacted]"}`},
	{`{"id_token":"a.b.c","refresh_token":"r","code_verifier":"v","Client-Secret":"s"}`,
		`{"id_token":"[redacted]","refresh_token":"[redacted]","code_verifier":"[redacted]","Client-Secret":"[redacted]"}`},
	{`{"a":"x\\","token":"t"}`, `{"a":"x\\","token":"[redacted]"}`},
	// URLs inside JSON strings, Go's \u0026 for '&' included.
	{`{"next":"https://app/cb?code=abc\u0026state=xyz"}`, `{"next":"https://app/cb?code=[redacted]\u0026state=[redacted]"}`},
	// Forms and query strings.
	{`user=ann&passwd=hunter2&remember=1`, `user=ann&passwd=[redacted]&remember=1`},
	{`user=ann&PASSWORD=UPPERPASS`, `user=ann&PASSWORD=[redacted]`},
	{`user%5Bpassword%5D=pw&user%5Bname%5D=ann`, `user%5Bpassword%5D=[redacted]&user%5Bname%5D=ann`},
	{`password=x`, `password=[redacted]`},
	{`/api/login?user=ann&token=abc123#frag`, `/api/login?user=ann&token=[redacted]#frag`},
	{`/cb?code=OAUTHCODE&state=S1&nonce=N1&session_state=ss`, `/cb?code=[redacted]&state=[redacted]&nonce=[redacted]&session_state=ss`},
	{`/cb?CODE=A&State=B&NONCE=C`, `/cb?CODE=[redacted]&State=[redacted]&NONCE=[redacted]`},
	{`/f?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=abcd&X-Amz-Expires=60`,
		`/f?X-Amz-Algorithm=AWS4&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Expires=60`},
	{`/s?sig=a%2Bb&sv=2021&se=2026`, `/s?sig=[redacted]&sv=2021&se=2026`},
	{`/maps?key=AIzaSy&q=x`, `/maps?key=[redacted]&q=x`},
	{`/x;jsessionid=ABC?y=1`, `/x;jsessionid=[redacted]?y=1`},
	{`/t?token=a==&b=1`, `/t?token=[redacted]&b=1`},
	{`/q?password="quoted value"&x=1`, `/q?password="[redacted]"&x=1`},
	{`0; url=/cb?access_token=LT7`, `0; url=/cb?access_token=[redacted]`},
	// A URL in a parameter, percent-encoded.
	{`/login?next=%2Fcb%3Ftoken%3Dabc%26lang%3Den&x=1`, `/login?next=%2Fcb%3Ftoken%3D[redacted]%26lang%3Den&x=1`},
	{`redirect=https%3A%2F%2Fapp%2Fcb%3FCode%3DOC%26state%3dST`, `redirect=https%3A%2F%2Fapp%2Fcb%3FCode%3D[redacted]%26state%3d[redacted]`},
	{`a=b%3Dc&sort%3Dasc`, `a=b%3Dc&sort%3Dasc`},
	{`%3D`, `%3D`},
	{`x%3`, `x%3`},
	{`token%3D`, `token%3D`},
	// URL userinfo.
	{`http://u:p@h/`, `http://[redacted]@h/`},
	{`GET postgres://app:S3cr3t@db:5432/shop`, `GET postgres://[redacted]@db:5432/shop`},
	{`{"dsn":"https://key123@sentry.example/4"}`, `{"dsn":"https://[redacted]@sentry.example/4"}`},
	{`http://h/a@b`, `http://h/a@b`},
	// Not secret.
	{`/api/orders/42?sort=asc`, `/api/orders/42?sort=asc`},
	{`/tokens/list`, `/tokens/list`},
	{`/api/keys/7/passwords`, `/api/keys/7/passwords`},
	{`{"tokens_used": 12}`, `{"tokens_used": 12}`},
	{`{"error":{"code":"NOT_FOUND","state":"closed"}}`, `{"error":{"code":"NOT_FOUND","state":"closed"}}`},
	{`{"ts":"12:30:00","url":"https://shop.example:8443/x"}`, `{"ts":"12:30:00","url":"https://shop.example:8443/x"}`},
	{`max-age=0, must-revalidate`, `max-age=0, must-revalidate`},
	{`multipart/form-data; boundary=xyz`, `multipart/form-data; boundary=xyz`},
	{`a == b: token == nil`, `a == b: token == nil`},
	{``, ``},
	{`=`, `=`},
	{`:`, `:`},
	{`"":`, `"":`},
	{`://@`, `://@`},
	{`password=`, `password=`},
}

func TestText(t *testing.T) {
	for _, tc := range textCases {
		got := Text(tc.in)
		if got != tc.want {
			t.Errorf("Text(%s)\n = %s\nwant %s", tc.in, got, tc.want)
		}
		if again := Text(got); again != got {
			t.Errorf("Text is not idempotent on %s: %s", got, again)
		}
		if _, same := text(tc.in); same != (tc.in == tc.want) {
			t.Errorf("text(%s) reports unchanged=%v", tc.in, same)
		}
	}
}

func TestHeaders(t *testing.T) {
	in := proto.Headers{{Name: "host", Value: "shop"}, {Name: "authorization", Value: "Bearer abc.def"},
		{Name: "cookie", Value: "sid=1"}, {Name: "x-vault-token", Value: "hvs.1"}, {Name: "x-goog-api-key", Value: "k"},
		{Name: "location", Value: "https://app/cb?code=C&state=S&lang=en"}, {Name: "referer", Value: "https://u:p@app/x?token=T"},
		{Name: "content-location", Value: "/r?access_token=A"}, {Name: "refresh", Value: "0; url=/x?sig=G"},
		{Name: "sec-websocket-key", Value: "dGhlIHNhbXBsZQ=="}, {Name: "cache-control", Value: "max-age=0"}}
	keep := append(proto.Headers(nil), in...)
	h := Headers(in)
	want := map[string]string{"host": "shop", "authorization": Mask, "cookie": Mask, "x-vault-token": Mask,
		"x-goog-api-key": Mask, "location": "https://app/cb?code=[redacted]&state=[redacted]&lang=en",
		"referer": "https://[redacted]@app/x?token=[redacted]", "content-location": "/r?access_token=[redacted]",
		"refresh": "0; url=/x?sig=[redacted]", "sec-websocket-key": "dGhlIHNhbXBsZQ==", "cache-control": "max-age=0"}
	for name, v := range want {
		if got := h.Get(name); got != v {
			t.Errorf("%s: %q, want %q", name, got, v)
		}
	}
	for i := range in {
		if in[i] != keep[i] {
			t.Errorf("Headers changed its argument: %v", in[i])
		}
	}
	clean := proto.Headers{{Name: "host", Value: "shop"}}
	if got := Headers(clean); &got[0] != &clean[0] {
		t.Error("Headers copied headers without secrets")
	}
}

func secretCall() *proto.Call {
	return &proto.Call{ID: "c1", Proto: "http", Method: "POST", Path: "/login?next=/&password=QueryPass123",
		Error: "malformed: bad chunk size \"token=TK\"",
		Request: proto.Message{Headers: proto.Headers{{Name: "authorization", Value: "Bearer x"}},
			Body: "user=ann&PASSWORD=UPPERPASS"},
		Response: proto.Message{Headers: proto.Headers{{Name: "location", Value: "/home?access_token=LT"}},
			Body: `{"refresh_token":"RT"}`},
		Extra: proto.Extra{{Key: "version", Value: "1.1"},
			{Key: "response_trailers", Value: map[string]string{"x-session-token": "TT", "grpc-status": "0"}},
			{Key: "request_trailers", Value: map[string]any{"Cookie": "ck", "x-next": "/a?code=OC"}},
			{Key: "api_secret", Value: "AS"}, {Key: "links", Value: []string{"/a?sig=SG"}}},
	}
}

func TestCall(t *testing.T) {
	c := secretCall()
	before := c.AppendJSON(nil)
	r := Call(c)
	if r == c {
		t.Fatal("Call returned the call with secrets")
	}
	if !bytes.Equal(c.AppendJSON(nil), before) {
		t.Errorf("Call changed its argument:\n%s", c.AppendJSON(nil))
	}
	got := string(r.AppendJSON(nil))
	for _, s := range []string{"QueryPass123", "UPPERPASS", "Bearer x", "LT", "RT", "TT", "ck", "OC", "AS", "SG", "TK"} {
		if strings.Contains(got, `"`+s) || strings.Contains(got, "="+s) {
			t.Errorf("%q kept:\n%s", s, got)
		}
	}
	for _, s := range []string{`"grpc-status":"0"`, `"version":"1.1"`, `"/login?next=/&password=[redacted]"`, `"x-next":"/a?code=[redacted]"`} {
		if !strings.Contains(got, s) {
			t.Errorf("%s missing:\n%s", s, got)
		}
	}
	if again := Call(r); again != r {
		t.Errorf("a redacted call is redacted again:\n%s", again.AppendJSON(nil))
	}

	plain := &proto.Call{ID: "c2", Proto: "http", Method: "GET", Path: "/api/orders/42?sort=asc",
		Request:  proto.Message{Headers: proto.Headers{{Name: "host", Value: "shop"}}},
		Response: proto.Message{Body: `{"id":42,"state":"paid","items":[{"sku":"a:b"}]}`}}
	if Call(plain) != plain {
		t.Error("a call without secrets was copied")
	}
	// DNS names and answers are not redacted, whatever they hold.
	dns := &proto.Call{ID: "d", Proto: "dns", Method: "TXT", Path: "token=x.example",
		Extra: proto.Extra{{Key: "answers", Value: []string{"key=value"}}}}
	if Call(dns) != dns {
		t.Error("a DNS call was redacted")
	}
	// Another protocol's request target is redacted as a URL.
	if got := Target("grpc", "/svc/Get?token=T"); got != "/svc/Get?token=[redacted]" {
		t.Errorf("grpc target %q", got)
	}
	if got := Target("dns", "password=x.example"); got != "password=x.example" {
		t.Errorf("dns target %q", got)
	}
}

// TestCallAllocs: a call without secrets costs no allocation.
func TestCallAllocs(t *testing.T) {
	c := benchCall()
	if n := testing.AllocsPerRun(100, func() { Call(c) }); n != 0 {
		t.Errorf("%v allocations per clean call", n)
	}
}

// benchCall is a typical API call: a JSON request and response without
// secrets.
func benchCall() *proto.Call {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 20 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":12345,"sku":"SKU-0042","name":"Blue mug","price":12.5,"updated":"2026-11-21T14:00:00Z","url":"https://shop.example/p/42?ref=home"}`)
	}
	b.WriteString(`],"next":"/api/v1/items?page=3&limit=50"}`)
	return &proto.Call{ID: "c", Proto: "http", Method: "GET", Path: "/api/v1/items?page=2&limit=50", Status: "200",
		Request: proto.Message{Headers: proto.Headers{{Name: "host", Value: "shop"}, {Name: "user-agent", Value: "Go-http-client/1.1"},
			{Name: "accept", Value: "application/json"}}},
		Response: proto.Message{Headers: proto.Headers{{Name: "content-type", Value: "application/json"},
			{Name: "cache-control", Value: "max-age=0, private"}, {Name: "content-length", Value: "2900"}}, Body: b.String()},
		Extra: proto.Extra{{Key: "version", Value: "1.1"}}}
}

// BenchmarkCall is the cost Add pays per call: a typical call without
// secrets (its body about 2.9 KB of JSON), and a call with secrets in
// every place.
func BenchmarkCall(b *testing.B) {
	for _, tc := range []struct {
		name string
		c    *proto.Call
	}{{"clean", benchCall()}, {"secrets", secretCall()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.c.Path) + len(tc.c.Request.Body) + len(tc.c.Response.Body)))
			b.ReportAllocs()
			for b.Loop() {
				Call(tc.c)
			}
		})
	}
}

func FuzzText(f *testing.F) {
	for _, tc := range textCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := Text(s)
		if again := Text(r); again != r {
			t.Errorf("not idempotent: %q → %q → %q", s, r, again)
		}
		if r == s {
			return
		}
		if !strings.Contains(r, Mask) {
			t.Errorf("changed without a mask: %q → %q", s, r)
		}
	})
}
