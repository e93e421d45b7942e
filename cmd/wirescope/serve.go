//go:build !lean

package main

import (
	"bytes"
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
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/wirescope/wirescope/internal/demo"
	"github.com/wirescope/wirescope/internal/logging"
	"github.com/wirescope/wirescope/server"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
	"github.com/wirescope/wirescope/tools"
)

// logFlags choose how a command logs.
type logFlags struct {
	format, level string
}

func (f *logFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.format, "log-format", "text", "log format on stderr: "+strings.Join(logging.Formats(), " or ")+" (one JSON object a line, for log shippers)")
	fl.StringVar(&f.level, "log-level", "info", "least level logged: debug, info, warn or error")
}

// logger returns the logger the flags describe, writing to w.
func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	level, err := logging.ParseLevel(f.level)
	if err != nil {
		return nil, err
	}
	return logging.New(w, f.format, level)
}

// sourceFlags choose what a server serves.
type sourceFlags struct {
	pcaps    []string
	demo     bool
	cluster  string
	dataDir  string
	store    string
	ifaces   []string
	maxBytes int64
	refresh  time.Duration
	filter   string
	agents   agentFlags
	kube     kubeFlags
	keylog   string

	// id is the identity source the flags give (set by open), kube the
	// API server's when it is one.
	id      identity.Source
	kubeSrc *identity.Kube
}

// kubeFlags choose the Kubernetes API server identities come from.
type kubeFlags struct {
	kubeconfig string
	inCluster  bool
	namespace  string
	retention  time.Duration
}

func (f *kubeFlags) set() bool { return f.kubeconfig != "" || f.inCluster }

func (f *sourceFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.pcaps, "pcap", nil, "capture file to serve (pcap, pcapng, gzipped); repeat or separate with commas")
	fl.BoolVar(&f.demo, "demo", false, "serve the capture built into the binary: a shop API with failing endpoints")
	fl.StringVar(&f.cluster, "cluster", "", "cluster file (services and pods) to name the peers of each call")
	fl.StringVar(&f.dataDir, "data-dir", "", "where the index and exported PCAP files go (and, with --iface, the captured segments); started again on the same captures, the server keeps what it dissected (default: a temporary directory removed on exit)")
	fl.StringVar(&f.store, "store", "", "serve the segment store in this directory (as `wirescope agent --data-dir` writes it), read again as it grows")
	fl.StringSliceVar(&f.ifaces, "iface", nil, "capture on these interfaces (names, globs, any) into a segment store under --data-dir and serve it (needs root)")
	fl.StringVar(&f.filter, "filter", "", "with --iface: BPF filter (tcpdump syntax) run in the kernel")
	fl.Int64Var(&f.maxBytes, "max-bytes", 1<<30, "with --iface: delete the oldest segments past this many bytes")
	fl.DurationVar(&f.refresh, "refresh", 5*time.Second, "with --store, --iface or --agents: look for new packets at most this often (before a tool call)")
	f.agents.register(cmd)
	registerKeyLog(fl, &f.keylog)
	fl.StringVar(&f.kube.kubeconfig, "kubeconfig", "", "name peers from this cluster's API server (pods, services, nodes, workloads, as of each packet's time), reached with this kubeconfig file")
	fl.BoolVar(&f.kube.inCluster, "in-cluster", false, "name peers from the API server of the cluster this runs in (its service account)")
	fl.StringVar(&f.kube.namespace, "kube-namespace", "", "with --kubeconfig or --in-cluster: follow only this namespace's pods and services (nodes are followed whole)")
	fl.DurationVar(&f.kube.retention, "kube-retention", 24*time.Hour, "with --kubeconfig or --in-cluster: keep deleted pods this long, to name the traffic they had")
}

// identities opens the identity source the flags give: a cluster file, or
// the API server (watched until close is called).
func (f *sourceFlags) identities(ctx context.Context, logger *slog.Logger) (close func(), err error) {
	if f.cluster != "" && f.kube.set() {
		return nil, errors.New("name peers from --cluster or from the API server (--kubeconfig, --in-cluster), not both")
	}
	if f.kube.kubeconfig != "" && f.kube.inCluster {
		return nil, errors.New("give --kubeconfig or --in-cluster, not both")
	}
	switch {
	case f.cluster != "":
		id, err := identity.LoadFile(f.cluster)
		if err != nil {
			return nil, err
		}
		f.id = id
	case f.kube.set():
		cfg, err := identity.RESTConfig(f.kube.kubeconfig, f.kube.inCluster)
		if err != nil {
			return nil, err
		}
		k, err := identity.NewKube(ctx, cfg, identity.KubeOptions{Retention: f.kube.retention, Namespace: f.kube.namespace, Logger: logger})
		if err != nil {
			return nil, err
		}
		st := k.Stats()
		logger.Info("watching the API server", "host", cfg.Host, "pods", st.Pods)
		f.id, f.kubeSrc = k, k
		return k.Close, nil
	}
	return func() {}, nil
}

// backend is what the servers serve: a workspace over files, or one over
// a growing store.
type backend interface {
	tools.Backend
	Close() error
}

// open opens the workspace the flags describe; with --iface, capture runs
// until ctx ends.
func (f *sourceFlags) open(ctx context.Context, logger *slog.Logger) (backend, func(), error) {
	closeID, err := f.identities(ctx, logger)
	if err != nil {
		return nil, nil, err
	}
	b, closeB, err := f.openSources(ctx, logger)
	if err != nil {
		closeID()
		return nil, nil, err
	}
	return b, func() { closeB(); closeID() }, nil
}

func (f *sourceFlags) openSources(ctx context.Context, logger *slog.Logger) (backend, func(), error) {
	live := 0
	for _, set := range []bool{f.store != "", len(f.ifaces) > 0, f.agents.set()} {
		if set {
			live++
		}
	}
	if live > 1 || (f.store != "" && (len(f.pcaps) > 0 || f.demo)) {
		return nil, nil, errors.New("serve one of --store, --iface or --agents (--iface and --agents may add --pcap/--demo)")
	}
	paths, cleanup, err := f.files()
	if err != nil {
		return nil, nil, err
	}
	switch {
	case f.store != "":
		return f.openStore(logger)
	case len(f.ifaces) > 0:
		return withCleanup(f.openCapture(ctx, logger, paths))(cleanup)
	case f.agents.set():
		return withCleanup(f.openAgents(logger, paths))(cleanup)
	}
	if len(paths) == 0 {
		return nil, nil, errors.New("nothing to serve: give --pcap FILE, --store DIR or --iface IF (or --demo for the built-in capture)")
	}
	opts, err := f.options()
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	opts.Paths = paths
	ws, err := workspace.Open(opts)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	first, last := ws.Bounds()
	logger.Info("serving captures", "files", len(paths), "first", first, "last", last, "data_dir", ws.Dir())
	return ws, func() { ws.Close(); cleanup() }, nil
}

// files lists the capture files to serve: --pcap, and the demo capture
// written to a temporary directory that cleanup removes.
func (f *sourceFlags) files() ([]string, func(), error) {
	paths := append([]string(nil), f.pcaps...)
	if !f.demo {
		return paths, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "wirescope-demo-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	p, err := demo.WriteTo(dir)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return append(paths, p), cleanup, nil
}

// withCleanup runs cleanup after what an open returned is closed, or at
// once when it failed.
func withCleanup(b backend, closeB func(), err error) func(cleanup func()) (backend, func(), error) {
	return func(cleanup func()) (backend, func(), error) {
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		return b, func() { closeB(); cleanup() }, nil
	}
}

// options are the workspace options the flags give.
func (f *sourceFlags) options() (workspace.Options, error) {
	ps, err := protocols(f.keylog)
	if err != nil {
		return workspace.Options{}, err
	}
	return workspace.Options{Dir: f.dataDir, Identity: f.id, Protocols: ps}, nil
}

func newMCPCmd() *cobra.Command {
	var f sourceFlags
	var logs logFlags
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve captures to an MCP client over stdio",
		Long: `mcp serves capture files to the MCP client that started it, over stdin and
stdout. The files are scanned at start; a window is dissected into calls the
first time a tool asks about it. Logs go to stderr.

--store serves an agent's segment store, and --iface captures on this machine
into a store under --data-dir and serves it (so a laptop runs the whole
product); both are read again as they grow.`,
		Example: `  wirescope mcp --pcap capture.pcap
  sudo wirescope mcp --iface any --data-dir ~/.cache/wirescope
  wirescope mcp --store /var/lib/wirescope
  claude mcp add wirescope -- wirescope mcp --pcap /path/to/capture.pcap --cluster cluster.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logs.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			tools.PrepareTokens() // while the captures open
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ws, closeWS, err := f.open(ctx, logger)
			if err != nil {
				return err
			}
			defer closeWS()
			stdio := mcpserver.NewStdioServer(server.New(ws))
			err = stdio.Listen(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
			if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		},
	}
	f.register(cmd)
	logs.register(cmd)
	return cmd
}

type hubFlags struct {
	sourceFlags
	listen    string
	tokenFile string
	maxBody   int64
	origins   []string
	sessions  int
	idle      time.Duration
	conns     connFlags
	logs      logFlags
	metrics   string
	pprof     string
}

// connFlags bound what clients can hold of an HTTP server.
type connFlags struct {
	perIP, total int
	bodyTimeout  time.Duration
}

func (f *connFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.perIP, "max-conns-per-ip", server.DefaultMaxConnsPerIP, "connections open at once from one client address; more are closed at once")
	fl.IntVar(&f.total, "max-conns", server.DefaultMaxConns, "connections open at once from all clients")
	fl.DurationVar(&f.bodyTimeout, "body-timeout", server.DefaultBodyTimeout, "time a client has to send a request's body")
}

func (f *connFlags) options(logger *slog.Logger) server.ServeOptions {
	return server.ServeOptions{MaxConnsPerIP: f.perIP, MaxConns: f.total, BodyTimeout: f.bodyTimeout, Logger: logger}
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
401, and requests from a browser page of another site (an Origin header other
than this host or, on loopback, localhost) get 403 unless --allow-origin names
it. Both MCP revisions are served: 2025-11-25 (sessions, at most
--max-sessions, ended after --session-idle unused) and 2026-07-28 (none).

The client configuration, token included, is printed when stdout is a
terminal; otherwise (a log, a pipe) the token is replaced by $(cat FILE).`,
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
	fl.StringArrayVar(&f.origins, "allow-origin", nil, "origin (https://host[:port]) of a browser-based client to serve; repeat for more")
	fl.IntVar(&f.sessions, "max-sessions", server.DefaultMaxSessions, "sessions (protocol 2025-11-25) held at once; an initialize over it gets 503 with Retry-After")
	fl.DurationVar(&f.idle, "session-idle", server.DefaultSessionIdle, "end a session unused for this long")
	f.conns.register(cmd)
	f.logs.register(cmd)
	fl.StringVar(&f.metrics, "metrics-listen", "", "serve Prometheus /metrics on this address, without authentication (for a scraper inside the cluster); without it /metrics is served beside /mcp, behind the bearer token")
	fl.StringVar(&f.pprof, "pprof-addr", "", "serve Go's profiles (net/http/pprof, with mutex and block profiling on) at /debug/pprof/ on this loopback address, without authentication; for measuring the hub, off by default")
	return cmd
}

func runHub(cmd *cobra.Command, f *hubFlags) error {
	logger, err := f.logs.logger(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	token, err := loadToken(f.tokenFile)
	if err != nil {
		return err
	}
	tools.PrepareTokens() // while the sources open
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ws, closeWS, err := f.open(ctx, logger)
	if err != nil {
		return err
	}
	defer closeWS()
	m := server.NewMetrics(ws)
	ho := server.HTTPOptions{Token: token, MaxBody: f.maxBody, Logger: logger, AllowOrigins: f.origins,
		MaxSessions: f.sessions, SessionIdle: f.idle, Metrics: m}
	if f.metrics == "" {
		ho.MetricsPath = "/metrics"
	}
	h, err := server.Handler(server.New(ws, server.WithMetrics(m)), ho)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	if f.metrics != "" {
		ml, err := net.Listen("tcp", f.metrics)
		if err != nil {
			l.Close()
			return err
		}
		go server.ServeHTTP(ctx, ml, m.Handler(), f.conns.options(logger))
		logger.Info("metrics listening", "url", "http://"+ml.Addr().String()+"/metrics")
	}
	if f.pprof != "" {
		pl, err := listenPprof(f.pprof)
		if err != nil {
			l.Close()
			return err
		}
		go server.ServeHTTP(ctx, pl, pprofHandler(), f.conns.options(logger))
		logger.Info("pprof listening", "url", "http://"+pl.Addr().String()+"/debug/pprof/")
	}
	url := "http://" + l.Addr().String() + "/mcp"
	if f.logs.format == "text" {
		fmt.Fprint(cmd.OutOrStdout(), clientConfig(url, token, f.tokenFile, isTerminal(cmd.OutOrStdout())))
	}
	logger.Info("listening", "url", url)
	return server.ServeHTTP(ctx, l, h, f.conns.options(logger))
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

// isTerminal reports whether w is a terminal (TCGETS succeeds on it);
// /dev/null, files and pipes are not.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// clientConfig tells how to add the hub to Claude Code and Cursor. The
// token is written out only for a terminal (showToken): where stdout goes
// to a log it is replaced by a shell substitution reading it from the
// token file, or from WIRESCOPE_TOKEN when there is no file.
func clientConfig(url, token, tokenFile string, showToken bool) string {
	shellTok, jsonTok := token, token
	if !showToken {
		shellTok, jsonTok = "$WIRESCOPE_TOKEN", "<the token in $WIRESCOPE_TOKEN>"
		if tokenFile != "" {
			shellTok, jsonTok = "$(cat "+shellQuote(tokenFile)+")", "<the token in "+tokenFile+">"
		}
	}
	var cursor bytes.Buffer
	enc := json.NewEncoder(&cursor)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(map[string]any{"mcpServers": map[string]any{"wirescope": map[string]any{
		"url": url, "headers": map[string]string{"Authorization": "Bearer " + jsonTok}}}})
	var b strings.Builder
	fmt.Fprintf(&b, "wirescope hub: MCP over streamable HTTP at %s\n", url)
	if tokenFile != "" {
		fmt.Fprintf(&b, "bearer token: in %s\n", tokenFile)
	}
	fmt.Fprintf(&b, "\nClaude Code:\n  claude mcp add --transport http wirescope %s --header \"Authorization: Bearer %s\"\n", url, shellTok)
	fmt.Fprintf(&b, "\nCursor (~/.cursor/mcp.json, or .cursor/mcp.json in a project):\n%s\n", cursor.Bytes())
	return b.String()
}

// shellQuote quotes s for a POSIX shell, where it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+,:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
