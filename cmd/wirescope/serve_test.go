package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"golang.org/x/sys/unix"

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

// openPTY opens a pseudo-terminal: the controlling side to read from, and
// the terminal a child writes to.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return ptmx, tty
}

// TestHubPrintsWorkingConfig runs the hub as make run does and follows
// what it prints: the URL and header of the claude mcp add line, and the
// Cursor mcp.json snippet, must each connect as printed. On a terminal
// the token is printed; to a pipe (a log) it is not, anywhere, and the
// claude line reads it from the token file when a shell runs it.
func TestHubPrintsWorkingConfig(t *testing.T) {
	for _, terminal := range []bool{true, false} {
		t.Run(map[bool]string{true: "terminal", false: "pipe"}[terminal], func(t *testing.T) {
			testHubPrintsWorkingConfig(t, terminal)
		})
	}
}

func testHubPrintsWorkingConfig(t *testing.T, terminal bool) {
	bin := wirescopeBinary(t)
	tokenFile := filepath.Join(t.TempDir(), "sub", "token")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "hub", "--demo", "--listen", "127.0.0.1:0", "--token-file", tokenFile)
	cmd.Env = append(os.Environ(), "WIRESCOPE_TOKEN=")
	var stdout io.Reader
	if terminal {
		ptmx, tty := openPTY(t)
		cmd.Stdout = tty
		stdout = ptmx
	} else {
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout = pipe
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	// Read the printed configuration: up to the end of the JSON snippet.
	var printed strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r") // a terminal ends lines with \r\n
		printed.WriteString(line + "\n")
		if line == "}" {
			break
		}
	}
	out := printed.String()
	t.Logf("printed:\n%s", out)
	info, err := os.Stat(tokenFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", info, err)
	}
	b, _ := os.ReadFile(tokenFile)
	tok := strings.TrimSpace(string(b))

	m := regexp.MustCompile(`(?m)^  claude mcp add --transport http wirescope (\S+) --header ("Authorization: Bearer [^"]+")$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no claude mcp add line")
	}
	header := m[2]
	if terminal {
		if header != `"Authorization: Bearer `+tok+`"` {
			t.Errorf("on a terminal, the printed token is not the token file's: %s", header)
		}
	} else {
		if strings.Contains(out, tok) {
			t.Error("the token was printed to a pipe")
		}
		if header != `"Authorization: Bearer $(cat `+tokenFile+`)"` {
			t.Errorf("to a pipe, the header is %s", header)
		}
		// The line works where it is meant to run: in a shell.
		sh, err := exec.Command("sh", "-c", "printf %s "+header).Output()
		if err != nil {
			t.Fatal(err)
		}
		header = `"` + string(sh) + `"`
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
	connectHTTP(m[1], map[string]string{"Authorization": strings.TrimPrefix(strings.Trim(header, `"`), "Authorization: ")})

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
	if !terminal {
		// The snippet says where the token is, for the user to paste.
		want := "Bearer <the token in " + tokenFile + ">"
		if srv.Headers["Authorization"] != want {
			t.Errorf("Cursor snippet to a pipe: Authorization %q, want %q", srv.Headers["Authorization"], want)
		}
		srv.Headers["Authorization"] = "Bearer " + tok
	}
	connectHTTP(srv.URL, srv.Headers)
	if strings.Contains(stderr.String(), tok) {
		t.Error("the token is in the log")
	}

	// A second start reuses the token file.
	if got, err := loadToken(tokenFile); err != nil || got != tok {
		t.Errorf("token file read back: %q, %v", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
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
	t.Setenv("WIRESCOPE_TOKEN", "t")
	if _, _, err := runCmd(t, "hub", "--demo", "--listen", "127.0.0.1:0", "--allow-origin", "inspector.example"); err == nil ||
		!strings.Contains(err.Error(), "http(s)://host[:port]") {
		t.Errorf("hub with an allowed origin that is not one: %v", err)
	}
}
