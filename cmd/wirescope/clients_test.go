//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	synth "github.com/wirescope/wirescope/capture/capturetest"
)

// The tests in this file drive the wirescope binary with MCP clients other
// people wrote: the official TypeScript SDK (test/mcpclients/sdk-test.mjs)
// and the MCP Inspector's CLI (test/mcpclients/inspector-check.sh). They
// need node and test/mcpclients/node_modules, which `make test` installs
// (scripts/install-deps.sh, then make npm-deps).

const mcpClientsDir = "../../test/mcpclients"

// mcpClients returns test/mcpclients as an absolute path after checking that
// node, npm and the installed clients are there; it fails the test (skipping
// only under -short) when they are not.
func mcpClients(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the third-party MCP clients (node)")
	}
	for _, c := range []string{"node", "npm"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Fatalf("%s is not installed: `make test` installs it (scripts/install-deps.sh)", c)
		}
	}
	dir, err := filepath.Abs(mcpClientsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"@modelcontextprotocol/sdk", "@modelcontextprotocol/inspector"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("%s is not installed in %s/node_modules: `make test` installs it (make npm-deps runs "+
				"npm ci --prefix test/mcpclients)", pkg, dir)
		}
	}
	return dir
}

// clientsContext returns a context that ends a little before the test's
// deadline, and at the latest after max.
func clientsContext(t *testing.T, max time.Duration) context.Context {
	deadline := time.Now().Add(max)
	if d, ok := t.Deadline(); ok && d.Add(-10*time.Second).Before(deadline) {
		deadline = d.Add(-10 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// clientLogWriter passes what a process writes to t.Log, a line at a time, so
// that a failing test shows it (and go test -v shows it as it comes).
type clientLogWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func (w *clientLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.t.Log(w.prefix + string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// flush logs what is left without a newline.
func (w *clientLogWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.t.Log(w.prefix + string(w.buf))
		w.buf = nil
	}
}

// clientCommand returns a command whose process group is killed when ctx ends,
// so that a server a script started goes with it.
func clientCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// runClientScript runs a client script in test/mcpclients, its output going to
// t.Log, and fails the test if it fails.
func runClientScript(t *testing.T, ctx context.Context, dir, name string, args ...string) {
	t.Helper()
	cmd := clientCommand(ctx, name, args...)
	cmd.Dir = dir
	out := &clientLogWriter{t: t}
	cmd.Stdout, cmd.Stderr = out, out
	t.Logf("running %s %s", name, strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	out.flush()
	if ctx.Err() != nil {
		t.Fatalf("%s %s: timed out after %s (%v)", name, strings.Join(args, " "), time.Since(start).Round(time.Second), err)
	}
	if err != nil {
		t.Fatalf("%s %s: %v (its output is above)", name, strings.Join(args, " "), err)
	}
}

// hubURLLine finds the URL in the first line hub prints.
var hubURLLine = regexp.MustCompile(`^wirescope hub: MCP over streamable HTTP at (http://\S+/mcp)$`)

// startClientHub starts `wirescope hub` on a free loopback port with a random
// token and returns its URL and the token; the hub is stopped when the test
// ends.
func startClientHub(t *testing.T, ctx context.Context, bin string, args ...string) (url, token string) {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	token = hex.EncodeToString(b)
	args = append([]string{"hub", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)
	cmd := clientCommand(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "WIRESCOPE_TOKEN="+token)
	stderr := &clientLogWriter{t: t, prefix: "hub: "}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		for n := 0; sc.Scan(); n++ {
			if n == 0 {
				first <- sc.Text()
			}
			t.Log("hub stdout: " + sc.Text())
		}
		io.Copy(io.Discard, stdout)
		close(first)
	}()
	t.Cleanup(func() {
		// SIGTERM must stop the hub; its stdout closes when it exits.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			t.Errorf("hub did not stop within 10 s of SIGTERM")
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-drained
		}
		if err := cmd.Wait(); err != nil && ctx.Err() == nil && !t.Failed() {
			t.Errorf("hub exited with %v after SIGTERM", err)
		}
		stderr.flush()
	})
	select {
	case line, ok := <-first:
		m := hubURLLine.FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("hub's first line %q does not give the URL", line)
		}
		return m[1], token
	case <-ctx.Done():
		t.Fatalf("hub printed no URL before the test's deadline")
	}
	return "", ""
}

// writeCancelCapture writes a capture of 2 million packets (390 MB: 80,000
// HTTP calls on 800 keep-alive connections, 3,000-byte responses in
// 128-byte segments): large enough that dissecting it takes seconds (3 to
// 3.5 s measured on two cores), for the cancellation test.
func writeCancelCapture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "big.pcap")
	n, err := synth.WriteLoad(path, synth.Load{Conns: 800, Requests: 100, RespBody: 3000, MSS: 128})
	if err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	t.Logf("wrote %s: %d packets, %d calls", path, n, 800*100)
	return path
}

// TestTypeScriptSDK drives the server with the official TypeScript SDK over
// stdio and streamable HTTP: tools/list, every tool on the demo capture,
// get_pcap's file through resources/read (checked with tshark), progress
// notifications, and cancelling a dissection of a large capture.
func TestTypeScriptSDK(t *testing.T) {
	dir := mcpClients(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is not installed: `make test` installs it (scripts/install-deps.sh)")
	}
	ctx := clientsContext(t, 4*time.Minute)
	bin := wirescopeBinary(t)
	big := writeCancelCapture(t)
	sdkTest := func(t *testing.T, args ...string) {
		runClientScript(t, ctx, dir, "node", append([]string{"sdk-test.mjs", "--tshark", tshark, "--timeout", "150"}, args...)...)
	}
	t.Run("stdio/demo", func(t *testing.T) {
		sdkTest(t, "--stdio", bin, "mcp", "--demo", "--data-dir", t.TempDir())
	})
	t.Run("stdio/cancel", func(t *testing.T) {
		sdkTest(t, "--suite", "cancel", "--stdio", bin, "mcp", "--pcap", big, "--data-dir", t.TempDir())
	})
	t.Run("http/demo", func(t *testing.T) {
		url, token := startClientHub(t, ctx, bin, "--demo")
		sdkTest(t, "--http", url, "--token", token)
	})
	t.Run("http/cancel", func(t *testing.T) {
		url, token := startClientHub(t, ctx, bin, "--pcap", big)
		sdkTest(t, "--suite", "cancel", "--http", url, "--token", token)
	})
	// A recorded rollout that broke an endpoint: the investigation tools
	// through a third-party client.
	sc, err := filepath.Abs(filepath.Join("..", "..", "evals", "scenarios", "cart-rollout-errors"))
	if err != nil {
		t.Fatal(err)
	}
	var scenario struct {
		RolloutAt string `json:"rollout_at"`
	}
	raw, err := os.ReadFile(filepath.Join(sc, "scenario.json"))
	if err == nil {
		err = json.Unmarshal(raw, &scenario)
	}
	if err != nil {
		t.Fatal(err)
	}
	rollout := []string{"--suite", "rollout", "--rollout-at", scenario.RolloutAt, "--expect", "/api/cart/items,502,cart-"}
	serve := []string{"--pcap", filepath.Join(sc, "capture.pcap"), "--cluster", filepath.Join(sc, "cluster.json")}
	t.Run("stdio/rollout", func(t *testing.T) {
		sdkTest(t, append(append(rollout, "--stdio", bin, "mcp", "--data-dir", t.TempDir()), serve...)...)
	})
	t.Run("http/rollout", func(t *testing.T) {
		url, token := startClientHub(t, ctx, bin, serve...)
		sdkTest(t, append(rollout, "--http", url, "--token", token)...)
	})
}

// TestMCPInspector lists the tools with the MCP Inspector's CLI in strict
// mode, which reports tool schemas that some clients or model providers
// would reject or misread.
func TestMCPInspector(t *testing.T) {
	dir := mcpClients(t)
	ctx := clientsContext(t, 3*time.Minute)
	bin := wirescopeBinary(t)
	runClientScript(t, ctx, dir, "bash", "inspector-check.sh", bin, "mcp", "--demo", "--data-dir", t.TempDir())
}

// recordManifest runs a recording script into a new directory, with a deadline
// of max, and reads the manifest.json it writes into m; it returns the
// directory.
func recordManifest(t *testing.T, script string, max time.Duration, m any) string {
	t.Helper()
	ctx := clientsContext(t, max)
	dir := t.TempDir()
	runClient(t, ctx, "bash", "../../scripts/"+script, dir)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return dir
}
