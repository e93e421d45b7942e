package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/spf13/cobra"

	"github.com/wirescope/wirescope/internal/demo"
	"github.com/wirescope/wirescope/server"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
)

// sourceFlags choose what a server serves.
type sourceFlags struct {
	pcaps   []string
	demo    bool
	cluster string
	dataDir string
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.pcaps, "pcap", nil, "capture file to serve (pcap, pcapng, gzipped); repeat or separate with commas")
	fl.BoolVar(&f.demo, "demo", false, "serve the capture built into the binary: a shop API with failing endpoints")
	fl.StringVar(&f.cluster, "cluster", "", "cluster file (services and pods) to name the peers of each call")
	fl.StringVar(&f.dataDir, "data-dir", "", "where the index and exported PCAP files go; started again on the same captures, the server keeps what it dissected (default: a temporary directory removed on exit)")
}

// open opens the workspace the flags describe.
func (f *sourceFlags) open(logger *slog.Logger) (*workspace.Workspace, func(), error) {
	paths := append([]string(nil), f.pcaps...)
	cleanup := func() {}
	if f.demo {
		dir, err := os.MkdirTemp("", "wirescope-demo-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		p, err := demo.WriteTo(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, nil, errors.New("nothing to serve: give --pcap FILE (or --demo for the built-in capture)")
	}
	opts := workspace.Options{Paths: paths, Dir: f.dataDir}
	if f.cluster != "" {
		id, err := identity.LoadFile(f.cluster)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		opts.Identity = id
	}
	ws, err := workspace.Open(opts)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	first, last := ws.Bounds()
	logger.Info("serving captures", "files", len(paths), "first", first, "last", last, "data_dir", ws.Dir())
	return ws, func() { ws.Close(); cleanup() }, nil
}

func newMCPCmd() *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve captures to an MCP client over stdio",
		Long: `mcp serves capture files to the MCP client that started it, over stdin and
stdout. The files are scanned at start; a window is dissected into calls the
first time a tool asks about it. Logs go to stderr.`,
		Example: `  wirescope mcp --pcap capture.pcap
  claude mcp add wirescope -- wirescope mcp --pcap /path/to/capture.pcap --cluster cluster.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			ws, closeWS, err := f.open(logger)
			if err != nil {
				return err
			}
			defer closeWS()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stdio := mcpserver.NewStdioServer(server.New(ws))
			err = stdio.Listen(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
			if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		},
	}
	f.register(cmd)
	return cmd
}

type hubFlags struct {
	sourceFlags
	listen    string
	tokenFile string
	maxBody   int64
}

func newHubCmd() *cobra.Command {
	var f hubFlags
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Serve captures to MCP clients over streamable HTTP",
		Long: `hub serves capture files over MCP's streamable HTTP transport at
http://LISTEN/mcp, to clients that present the bearer token. The token comes
from WIRESCOPE_TOKEN or from --token-file; a token file that does not exist is
created with a fresh random token (mode 0600). Requests without the token get
401. Both MCP revisions are served: 2025-11-25 (sessions) and 2026-07-28.`,
		Example: `  WIRESCOPE_TOKEN=$(openssl rand -hex 32) wirescope hub --pcap capture.pcap
  wirescope hub --demo --token-file ~/.config/wirescope/token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHub(cmd, &f)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8898", "address to listen on")
	fl.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token (created with a random one if missing)")
	fl.Int64Var(&f.maxBody, "max-body", 1<<20, "largest request body accepted, in bytes")
	return cmd
}

func runHub(cmd *cobra.Command, f *hubFlags) error {
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	token, err := loadToken(f.tokenFile)
	if err != nil {
		return err
	}
	ws, closeWS, err := f.open(logger)
	if err != nil {
		return err
	}
	defer closeWS()
	h, err := server.Handler(server.New(ws), server.HTTPOptions{Token: token, MaxBody: f.maxBody, Logger: logger})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	url := "http://" + l.Addr().String() + "/mcp"
	fmt.Fprint(cmd.OutOrStdout(), clientConfig(url, token, f.tokenFile))
	logger.Info("listening", "url", url)
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return server.ServeHTTP(ctx, l, h)
}

// loadToken reads the bearer token from WIRESCOPE_TOKEN or the token file,
// creating the file with a random token when it does not exist.
func loadToken(file string) (string, error) {
	if t := strings.TrimSpace(os.Getenv("WIRESCOPE_TOKEN")); t != "" {
		return t, nil
	}
	if file == "" {
		return "", errors.New("no token: set WIRESCOPE_TOKEN or give --token-file (a missing file is created with a random token)")
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		buf := make([]byte, 32)
		rand.Read(buf)
		t := hex.EncodeToString(buf)
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return "", err
		}
		return t, os.WriteFile(file, []byte(t+"\n"), 0o600)
	}
	if err != nil {
		return "", err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return t, nil
}

// clientConfig tells how to add the hub to Claude Code and Cursor.
func clientConfig(url, token, tokenFile string) string {
	cursor, _ := json.MarshalIndent(map[string]any{"mcpServers": map[string]any{"wirescope": map[string]any{
		"url": url, "headers": map[string]string{"Authorization": "Bearer " + token}}}}, "", "  ")
	var b strings.Builder
	fmt.Fprintf(&b, "wirescope hub: MCP over streamable HTTP at %s\n", url)
	if tokenFile != "" {
		fmt.Fprintf(&b, "bearer token: in %s\n", tokenFile)
	}
	fmt.Fprintf(&b, "\nClaude Code:\n  claude mcp add --transport http wirescope %s --header \"Authorization: Bearer %s\"\n", url, token)
	fmt.Fprintf(&b, "\nCursor (~/.cursor/mcp.json, or .cursor/mcp.json in a project):\n%s\n\n", cursor)
	return b.String()
}
