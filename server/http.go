package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/wirescope/wirescope/internal/bearer"
)

// HTTPOptions configure the streamable HTTP transport.
type HTTPOptions struct {
	// Token is the bearer token every request must carry. Required.
	Token string
	// Path is the MCP endpoint. Default "/mcp".
	Path string
	// MaxBody bounds a request body; larger ones get 413. Default 1 MiB:
	// MCP requests are small (tool arguments), and nothing is uploaded.
	MaxBody int64
	// Logger receives one line per refused request; nil discards them.
	Logger *slog.Logger
}

// Handler serves s over streamable HTTP at o.Path, for both protocol
// revisions mcp-go speaks: 2025-11-25 (initialize and sessions) and
// 2026-07-28 (stateless). Every request must carry the bearer token;
// without it, or with another one, the answer is 401 with no body.
func Handler(s *mcpserver.MCPServer, o HTTPOptions) (http.Handler, error) {
	if o.Token == "" {
		return nil, errors.New("server: the HTTP transport needs a token")
	}
	if o.Path == "" {
		o.Path = "/mcp"
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mcpHTTP := mcpserver.NewStreamableHTTPServer(s,
		mcpserver.WithEndpointPath(o.Path),
		// No standalone GET stream (405, as the transport allows): the
		// server sends nothing unsolicited, and with one open mcp-go hands
		// a request's progress notifications to whichever stream reads the
		// session's channel first, so they could arrive out of order.
		mcpserver.WithDisableStreaming(true),
		mcpserver.WithHeartbeatInterval(30*time.Second),
		mcpserver.WithSessionIdleTTL(time.Hour),
		mcpserver.WithStreamableHTTPLogger(o.Logger),
	)
	mux := http.NewServeMux()
	mux.Handle(o.Path, mcpHTTP)
	return bearer.Require(o.Token, o.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Method == http.MethodPost {
			if r.ContentLength > o.MaxBody {
				tooLarge(w, o, r)
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.MaxBody))
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				tooLarge(w, o, r)
				return
			}
			if err != nil {
				http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		mux.ServeHTTP(w, r)
	})), nil
}

func tooLarge(w http.ResponseWriter, o HTTPOptions, r *http.Request) {
	o.Logger.Info("refused: request body too large", "remote", r.RemoteAddr, "limit", o.MaxBody)
	http.Error(w, "request body larger than the server accepts", http.StatusRequestEntityTooLarge)
}

// ServeHTTP serves h on l until ctx ends, then shuts down gracefully.
func ServeHTTP(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute,
		MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		return nil
	}
}
