// Package benchproc holds what the benchmark programs that drive a real
// wirescope hub share (test/hubscale, test/hubload): finding the
// repository, building the binary, a bearer token, an initialized MCP
// client over streamable HTTP, and stopping the hub process.
package benchproc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// RepoRoot is the directory holding go.mod, from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above: run from the wirescope repository", dir)
		}
	}
}

// BuildWirescope builds the full wirescope binary into dir and returns its
// path.
func BuildWirescope(dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wirescope")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wirescope")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building wirescope: %w\n%s", err, out)
	}
	return bin, nil
}

// RandomToken is a bearer token of 16 random bytes in hex.
func RandomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Connect starts an MCP client on the streamable HTTP endpoint url with the
// bearer token, each HTTP exchange bounded by timeout, and initializes its
// session as name at protocol version version.
func Connect(ctx context.Context, url, token, name, version string, timeout time.Duration) (*client.Client, error) {
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPTimeout(timeout))
	if err != nil {
		return nil, err
	}
	c := client.NewClient(tr)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: version,
		ClientInfo:      mcp.Implementation{Name: name, Version: "0"}}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return c, nil
}

// Stop sends the hub process SIGTERM and waits up to grace for it to exit,
// then kills it; the error says how it ended when not cleanly. log names
// the hub's log in the error.
func Stop(cmd *exec.Cmd, log string, grace time.Duration) error {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("hub exited with %v after SIGTERM (log: %s)", err, log)
		}
		return nil
	case <-time.After(grace):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("hub did not exit within %s of SIGTERM (log: %s)", grace, log)
	}
}
