package server

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
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/wirescope/wirescope/internal/bearer"
)

// Defaults of HTTPOptions and ServeOptions.
const (
	DefaultMaxSessions   = 1000
	DefaultSessionIdle   = 10 * time.Minute
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
	DefaultMaxConnsPerIP = 64
	DefaultMaxConns      = 1024
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
	// AllowOrigins are the origins (scheme://host[:port]) of browser-based
	// clients allowed besides the hub's own host; see Handler.
	AllowOrigins []string
	// MaxSessions bounds the sessions of protocol revision 2025-11-25 held
	// at once; an initialize over it gets 503 with Retry-After. Default
	// DefaultMaxSessions.
	MaxSessions int
	// SessionIdle ends a session unused for this long. Default
	// DefaultSessionIdle.
	SessionIdle time.Duration
	// Logger receives one line per refused request; nil discards them.
	Logger *slog.Logger
	// Metrics, when set, counts the requests by status class and the
	// open sessions. Give a Metrics to one Handler: each adds its
	// sessions to the count.
	Metrics *Metrics
	// MetricsPath, when set (with Metrics), serves Metrics.Handler at
	// this path, behind the token like every other path.
	MetricsPath string
}

// Handler serves s over streamable HTTP at o.Path, for both protocol
// revisions mcp-go speaks: 2025-11-25 (initialize and sessions) and
// 2026-07-28 (stateless).
//
// A request whose Origin header names another site gets 403, against DNS
// rebinding: allowed are requests without Origin (clients other than
// browsers), origins in o.AllowOrigins, and origins whose host is the
// address the request came in on or, on a loopback address, localhost or
// any loopback address. Allowed origins get CORS headers, and their
// preflight requests an answer without the token. Every other request must
// carry the bearer token; without it, or with another one, the answer is
// 401 with no body, before the body is read. At most o.MaxSessions sessions are held;
// an initialize over the cap gets 503 with Retry-After (the time until the
// least recently used session expires) rather than evicting a session in
// use.
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
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = DefaultSessionIdle
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	allow := map[string]bool{}
	for _, a := range o.AllowOrigins {
		n, err := normalOrigin(a)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", a, err)
		}
		allow[n] = true
	}
	sess := &sessions{max: o.MaxSessions, idle: o.SessionIdle, live: map[string]*atomic.Int64{}}
	mcpHTTP := mcpserver.NewStreamableHTTPServer(s,
		mcpserver.WithEndpointPath(o.Path),
		// No standalone GET stream (405, as the transport allows): the
		// server sends nothing unsolicited, and with one open mcp-go hands
		// a request's progress notifications to whichever stream reads the
		// session's channel first, so they could arrive out of order.
		mcpserver.WithDisableStreaming(true),
		mcpserver.WithHeartbeatInterval(30*time.Second),
		mcpserver.WithSessionIdManager(sess),
		mcpserver.WithSessionIdleTTL(o.SessionIdle),
		mcpserver.WithStreamableHTTPLogger(slog.New(demote{o.Logger.Handler()})),
	)
	mux := http.NewServeMux()
	mux.Handle(o.Path, mcpHTTP)
	if o.Metrics != nil {
		o.Metrics.addSessions(sess.count)
		if o.MetricsPath != "" {
			if !strings.HasPrefix(o.MetricsPath, "/") || o.MetricsPath == o.Path {
				return nil, fmt.Errorf("metrics path %q: want an absolute path other than the MCP endpoint's", o.MetricsPath)
			}
			mux.Handle(o.MetricsPath, o.Metrics.Handler())
		}
	}
	authed := bearer.Require(o.Token, o.Logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
				o.Logger.Info("refused: reading the request body", "remote", r.RemoteAddr, "err", err)
				bearer.Hangup(w)
				http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if opensSession(r.Header, body) {
				sess.gate.Lock()
				defer sess.gate.Unlock()
				if wait, full := sess.full(time.Now()); full {
					o.Logger.Warn("refused: too many sessions", "remote", r.RemoteAddr, "max", o.MaxSessions)
					w.Header().Set("Retry-After", strconv.Itoa(wait))
					http.Error(w, fmt.Sprintf("the hub holds its maximum of %d sessions; retry in %d s, when the least recently used one expires, "+
						"or use protocol revision %s, which has none", o.MaxSessions, wait, mcp.ProtocolVersion20260728), http.StatusServiceUnavailable)
					return
				}
			}
		}
		mux.ServeHTTP(w, r)
	}))
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !originAllowed(r, origin, allow) {
				o.Logger.Warn("refused: foreign origin", "remote", r.RemoteAddr, "origin", origin)
				bearer.Hangup(w)
				http.Error(w, "origin "+origin+" is not allowed (the hub's --allow-origin adds one)", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				// A preflight carries no credentials; it only asks
				// what the real request, with the token, may send.
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
				if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
					h.Set("Access-Control-Allow-Headers", req)
				}
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		// Probes (a kubelet's) carry no token: GET /healthz says the hub
		// serves, and nothing else.
		if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok\n")
			return
		}
		authed.ServeHTTP(w, r)
	})
	if o.Metrics != nil {
		h = o.Metrics.countRequests(h)
	}
	return h, nil
}

func tooLarge(w http.ResponseWriter, o HTTPOptions, r *http.Request) {
	o.Logger.Info("refused: request body too large", "remote", r.RemoteAddr, "limit", o.MaxBody)
	bearer.Hangup(w)
	http.Error(w, "request body larger than the server accepts", http.StatusRequestEntityTooLarge)
}

// normalOrigin returns an origin as browsers send it (scheme://host[:port],
// lower case), or an error if s is not one.
func normalOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSpace(s), "/"))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", errors.New("not an origin: want http(s)://host[:port]")
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// originAllowed reports whether a request from origin may be served: it is
// in allow, or its host is the local address the request came in on, or
// both that address and the origin's host are loopback.
func originAllowed(r *http.Request, origin string, allow map[string]bool) bool {
	n, err := normalOrigin(origin)
	if err != nil {
		return false // "null" among others
	}
	if allow[n] {
		return true
	}
	u, _ := url.Parse(n)
	host := u.Hostname()
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return false
	}
	lap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return false
	}
	lip := lap.Addr().Unmap()
	ip, err := netip.ParseAddr(host)
	if err == nil && ip.Unmap() == lip {
		return true
	}
	return lip.IsLoopback() && (host == "localhost" || (err == nil && ip.Unmap().IsLoopback()))
}

// opensSession reports whether a POST body is an initialize of protocol
// revision 2025-11-25, the one request that opens a session (2026-07-28
// has none), by the rule mcp-go applies.
func opensSession(h http.Header, body []byte) bool {
	var m struct {
		Method string `json:"method"`
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Method != string(mcp.MethodInitialize) {
		return false
	}
	return !mcp.IsModernProtocol(h.Get(mcp.HeaderProtocolVersion)) && !mcp.IsModernProtocol(m.Params.Meta.ProtocolVersion())
}

// sessions is mcp-go's session id manager for the hub: it knows the
// sessions it made, refuses others (mcp-go answers 404, and the client
// initializes again), and counts them for the cap. mcp-go's sweeper
// terminates a session idle for longer than idle.
type sessions struct {
	// gate serializes initialize requests, so that the count checked is
	// the count when the session is made.
	gate sync.Mutex
	max  int
	idle time.Duration

	// mu guards live's keys; a session's last use (Unix nanoseconds) is
	// updated under the read lock, so requests of different sessions do
	// not wait for each other.
	mu   sync.RWMutex
	live map[string]*atomic.Int64 // id → last use
}

func lastUse(t time.Time) *atomic.Int64 {
	var v atomic.Int64
	v.Store(t.UnixNano())
	return &v
}

// Generate makes a session id from 128 random bits.
func (s *sessions) Generate() string {
	b := make([]byte, 16)
	rand.Read(b)
	id := "mcp-session-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.live[id] = lastUse(time.Now())
	s.mu.Unlock()
	return id
}

// Validate accepts the sessions Generate made and has not seen terminated.
func (s *sessions) Validate(id string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.live[id]
	if !ok {
		return false, errors.New("unknown session")
	}
	t.Store(time.Now().UnixNano())
	return false, nil
}

// Terminate forgets a session.
func (s *sessions) Terminate(id string) (bool, error) {
	s.mu.Lock()
	delete(s.live, id)
	s.mu.Unlock()
	return false, nil
}

// count returns the number of sessions held.
func (s *sessions) count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.live)
}

// full reports whether the cap is reached and, if so, in how many seconds
// the least recently used session will have expired: its idle time plus
// the period of mcp-go's sweeper (half the idle time, at least 1 s).
// Sessions past that, which the sweeper should have ended, are forgotten.
func (s *sessions) full(now time.Time) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) < s.max {
		return 0, false
	}
	grace := s.idle + max(s.idle/2, time.Second)
	var oldest time.Time
	for id, last := range s.live {
		t := time.Unix(0, last.Load())
		if now.Sub(t) > grace {
			delete(s.live, id)
			continue
		}
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	if len(s.live) < s.max {
		return 0, false
	}
	return max(1, int(math.Ceil(oldest.Add(grace).Sub(now).Seconds()))), true
}

// demote logs mcp-go's messages that come once per client session at
// debug level rather than info: they say nothing is wrong.
type demote struct{ slog.Handler }

func (d demote) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && (r.Message == "Rejected GET request: streaming is disabled" || r.Message == "Sweeping expired session") {
		r.Level = slog.LevelDebug
		if !d.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return d.Handler.Handle(ctx, r)
}

func (d demote) WithAttrs(as []slog.Attr) slog.Handler { return demote{d.Handler.WithAttrs(as)} }
func (d demote) WithGroup(g string) slog.Handler       { return demote{d.Handler.WithGroup(g)} }

// ServeOptions bound what a client can hold of a server: connections and
// the time it takes to send a request.
type ServeOptions struct {
	// HeaderTimeout bounds the time to read a request's header. Default
	// DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time to read a request's body, counted from
	// the end of its header; a body still coming after it is cut off (the
	// handler's read fails, the connection is closed). It is lifted once
	// the body is read, so it does not limit a long answer. Default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxConnsPerIP bounds the connections open at once from one client
	// address, and MaxConns those from all; a connection over either is
	// closed at once. Defaults DefaultMaxConnsPerIP and DefaultMaxConns.
	MaxConnsPerIP, MaxConns int
	// Logger receives a line when connections are refused, and net/http's
	// errors (at warning level); nil discards them.
	Logger *slog.Logger
}

// ServeHTTP serves h on l until ctx ends, then shuts down gracefully.
//
// The header has HeaderTimeout and the body BodyTimeout, set on the
// connection per request (a server-wide ReadTimeout would count the body's
// time from the header's start).
func ServeHTTP(ctx context.Context, l net.Listener, h http.Handler, o ServeOptions) error {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{Handler: bodyDeadline(h, o.BodyTimeout), ReadHeaderTimeout: o.HeaderTimeout,
		IdleTimeout: 5 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(LimitListener(l, o.MaxConnsPerIP, o.MaxConns, o.Logger)) }()
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

// bodyDeadline sets the connection's read deadline to d from now for a
// request with a body. net/http lifts it when the body has been read to its
// end (it clears the deadline as it starts its background read of the
// connection, Go 1.26), so it does not limit the answer; a handler that
// returns without reading the body leaves it set, so that net/http's
// draining of the unread body, before the answer, is bounded too.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		h.ServeHTTP(w, r)
	})
}

// LimitListener wraps l so that at most perIP connections from one client
// address, and total from all, are open at once; Accept closes one over
// either at once and waits for the next. Refusals are logged at most once
// every 10 s, with their count.
func LimitListener(l net.Listener, perIP, total int, logger *slog.Logger) net.Listener {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: l, perIP: perIP, total: total, logger: logger, open: map[netip.Addr]int{}}
}

type limitListener struct {
	net.Listener
	perIP, total int
	logger       *slog.Logger

	mu       sync.Mutex
	open     map[netip.Addr]int
	all      int
	refused  int
	lastNote time.Time
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var ip netip.Addr
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip = a.AddrPort().Addr().Unmap()
		}
		l.mu.Lock()
		if l.all >= l.total || (ip.IsValid() && l.open[ip] >= l.perIP) {
			l.refused++
			if now := time.Now(); now.Sub(l.lastNote) >= 10*time.Second {
				l.logger.Warn("refused connections over the limit", "count", l.refused, "last_remote", c.RemoteAddr().String(),
					"per_address", l.perIP, "total", l.total)
				l.refused, l.lastNote = 0, now
			}
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.all++
		if ip.IsValid() {
			l.open[ip]++
		}
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, ip: ip}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.all--
		if c.ip.IsValid() {
			if c.l.open[c.ip]--; c.l.open[c.ip] <= 0 {
				delete(c.l.open, c.ip)
			}
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close a connection before closing it, so
// that an answer is not lost to a reset when the client's body is unread.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom keeps the connection's sendfile and splice paths.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) { return io.Copy(c.Conn, r) }
