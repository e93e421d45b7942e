package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/capturetest"
)

// TestDissectRedacts: `wirescope dissect` masks secrets as the MCP tools
// do, so that its output can be shared; --raw prints them as captured.
func TestDissectRedacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "login.pcap")
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	c := capturetest.NewConn("10.0.0.2:40000", "10.0.0.9:80", time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC), f.Emit)
	c.Handshake()
	c.Send(true, []byte("GET /cb?code=OAUTHCODE&PASSWORD=UPPERPASS HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer JWTSECRET\r\n\r\n"))
	c.Send(false, []byte("HTTP/1.1 302 Found\r\nLocation: /home?access_token=LOCTOKEN\r\nContent-Length: 0\r\n\r\n"))
	c.Close()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"OAUTHCODE", "UPPERPASS", "JWTSECRET", "LOCTOKEN"}
	for _, format := range []string{"jsonl", "table"} {
		out, _, err := runCmd(t, "dissect", "--format", format, path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "/cb?code=[redacted]&PASSWORD=[redacted]") {
			t.Errorf("%s: no redacted path:\n%s", format, out)
		}
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: %q printed:\n%s", format, s, out)
			}
		}
	}
	out, _, err := runCmd(t, "dissect", "--raw", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if !strings.Contains(out, s) {
			t.Errorf("--raw: %q not printed:\n%s", s, out)
		}
	}
}
