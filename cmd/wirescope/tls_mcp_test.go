package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
)

// tlsOverMCP: `wirescope mcp --tls-keylog` over recorded TLS captures (one
// with its key log, two refused handshakes): capture_status counts the
// TLS flows decrypted and those with a handshake only, search_calls finds
// the decrypted requests, summarize_traffic counts the refused handshakes
// as failures by their alert, and no answer carries a secret of the key
// log.
func tlsOverMCP(t *testing.T, dir string, m *tlsManifest) {
	byName := map[string]string{}
	keyOf := map[string]string{}
	for _, s := range m.Scenarios {
		byName[s.Name] = filepath.Join(dir, s.Pcap)
		keyOf[s.Name] = filepath.Join(dir, s.Keylog)
	}
	for _, n := range []string{"tls12-gcm-http1", "expired-tls12", "wrong-sni"} {
		if byName[n] == "" {
			t.Fatalf("the recording has no scenario %s", n)
		}
	}
	secrets, err := os.ReadFile(keyOf["tls12-gcm-http1"])
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keys, secrets, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(wirescopeBinary(t), nil, "mcp", "--tls-keylog", keys, "--data-dir", t.TempDir(),
		"--pcap", byName["tls12-gcm-http1"]+","+byName["expired-tls12"]+","+byName["wrong-sni"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(ctx, t, c)
	var answers []string
	ask := func(name string, args map[string]any) string {
		text := toolText(ctx, t, c, name, args)
		answers = append(answers, text)
		return text
	}
	ask("dissect", nil)
	status := ask("capture_status", nil)
	if !strings.Contains(status, "decrypted with the key log: 2; handshake only, not decrypted: 2; no handshake seen: 0") {
		t.Errorf("capture_status does not count 2 TLS flows decrypted and 2 with a handshake only:\n%s", status)
	}
	calls := ask("search_calls", map[string]any{"query": "*", "protocol": "http", "limit": 50})
	if n := len(regexp.MustCompile(`(?m)\b(GET|POST|HEAD|PUT|DELETE) /`).FindAllString(calls, -1)); n < 10 {
		t.Errorf("search_calls finds %d decrypted HTTP requests, want the recording's 13:\n%s", n, calls)
	}
	sum := ask("summarize_traffic", map[string]any{"group_by": "protocol"})
	for _, alert := range []string{"certificate_expired", "unrecognized_name"} {
		if !strings.Contains(sum, alert) {
			t.Errorf("summarize_traffic does not name the refused handshakes' %s:\n%s", alert, sum)
		}
	}
	ask("list_flows", map[string]any{"limit": 20})
	if flows := answers[len(answers)-1]; !strings.Contains(flows, "(decrypted)") || !strings.Contains(flows, "(encrypted: no key for this session)") {
		t.Errorf("list_flows does not say which TLS flows were decrypted:\n%s", flows)
	}
	// The key log's secrets (hex, after the label and client random)
	// appear in no answer.
	for _, line := range strings.Split(string(secrets), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		for _, a := range answers {
			if strings.Contains(strings.ToLower(a), strings.ToLower(f[2])) {
				t.Fatalf("an answer shows a secret of the key log")
			}
		}
	}
}
