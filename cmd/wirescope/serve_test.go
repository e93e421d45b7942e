package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/tools"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// wirescopeBinary builds the binary once per test run.
func wirescopeBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wirescope-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "wirescope")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binPath)
	}
	return binPath
}

func initialize(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "wirescope-test", Version: "0"}}}); err != nil {
		t.Fatal(err)
	}
}

func toolText(ctx context.Context, t *testing.T, c *client.Client, name string, args map[string]any) string {
	t.Helper()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var text []string
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			text = append(text, tc.Text)
		}
	}
	if res.IsError {
		t.Fatalf("%s: isError: %s", name, text)
	}
	return strings.Join(text, "\n")
}

// TestMCPStdio drives the built binary over stdio with mcp-go's client:
// the handshake, the tool list and an answer about the demo capture, with
// nothing but protocol on stdout.
func TestMCPStdio(t *testing.T) {
	bin := wirescopeBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(bin, nil, "mcp", "--demo", "--data-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(ctx, t, c)
	tl, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(tl.Tools) != len(tools.All(nil)) {
		t.Fatalf("tools/list: %v, %d tools", err, len(tl.Tools))
	}
	if text := toolText(ctx, t, c, "summarize_traffic", nil); !strings.Contains(text, "GET /api/recommendations") || !strings.Contains(text, "503×37") {
		t.Errorf("summarize_traffic over stdio:\n%s", text)
	}
}

// TestMCPNothingToServe: mcp without captures says what to give it.
func TestMCPNothingToServe(t *testing.T) {
	if _, _, err := runCmd(t, "mcp"); err == nil || !strings.Contains(err.Error(), "--pcap") {
		t.Errorf("mcp with nothing to serve: %v", err)
	}
	if _, _, err := runCmd(t, "mcp", "--pcap", "/nonexistent.pcap"); err == nil {
		t.Error("mcp with a missing file started")
	}
}

// TestHubPrintsWorkingConfig runs the hub as make run does and follows
// what it prints: the URL and header of the claude mcp add line, and the
// Cursor mcp.json snippet, must each connect as printed.
func TestHubPrintsWorkingConfig(t *testing.T) {
	bin := wirescopeBinary(t)
	tokenFile := filepath.Join(t.TempDir(), "sub", "token")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "hub", "--demo", "--listen", "127.0.0.1:0", "--token-file", tokenFile)
	cmd.Env = append(os.Environ(), "WIRESCOPE_TOKEN=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// Read the printed configuration: up to the end of the JSON snippet.
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if sc.Text() == "}" {
			break
		}
	}
	out := printed.String()
	t.Logf("printed:\n%s", out)
	info, err := os.Stat(tokenFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", info, err)
	}
	tok, _ := os.ReadFile(tokenFile)

	m := regexp.MustCompile(`(?m)^  claude mcp add --transport http wirescope (\S+) --header "Authorization: Bearer (\S+)"$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no claude mcp add line")
	}
	if m[2] != strings.TrimSpace(string(tok)) {
		t.Errorf("the printed token is not the token file's")
	}
	connectHTTP := func(url string, headers map[string]string) {
		t.Helper()
		tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(headers))
		if err != nil {
			t.Fatal(err)
		}
		c := client.NewClient(tr)
		defer c.Close()
		initialize(ctx, t, c)
		if text := toolText(ctx, t, c, "capture_status", nil); !strings.Contains(text, "1410 packets") {
			t.Errorf("capture_status: %s", text)
		}
	}
	connectHTTP(m[1], map[string]string{"Authorization": "Bearer " + m[2]})

	i := strings.Index(out, "{")
	var cursor struct {
		MCPServers map[string]struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(out[i:]), &cursor); err != nil {
		t.Fatalf("Cursor snippet: %v", err)
	}
	srv, ok := cursor.MCPServers["wirescope"]
	if !ok {
		t.Fatal("Cursor snippet names no wirescope server")
	}
	connectHTTP(srv.URL, srv.Headers)

	// A second start reuses the token file.
	if got, err := loadToken(tokenFile); err != nil || got != m[2] {
		t.Errorf("token file read back: %q, %v", got, err)
	}
}

func TestHubNeedsToken(t *testing.T) {
	t.Setenv("WIRESCOPE_TOKEN", "")
	if _, _, err := runCmd(t, "hub", "--demo"); err == nil || !strings.Contains(err.Error(), "WIRESCOPE_TOKEN") {
		t.Errorf("hub without a token: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "token")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if _, _, err := runCmd(t, "hub", "--demo", "--token-file", empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("hub with an empty token file: %v", err)
	}
}
