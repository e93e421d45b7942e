package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/server"
	"github.com/wirescope/wirescope/tools"
)

const token = "s3cret-token-for-tests"

// startHub serves b over streamable HTTP on a loopback port.
func startHub(t testing.TB, b tools.Backend, maxBody int64) string {
	t.Helper()
	return serveHub(t, b, server.HTTPOptions{Token: token, MaxBody: maxBody}, server.ServeOptions{})
}

// serveHub serves b with these options as the hub does, with
// server.ServeHTTP on a loopback port, and returns the MCP endpoint's URL.
// The body timeout is 1 s unless so given: the tests whose calls take
// longer (dissect) then prove it does not cut off an answer.
func serveHub(t testing.TB, b tools.Backend, ho server.HTTPOptions, so server.ServeOptions) string {
	t.Helper()
	h, err := server.Handler(server.New(b), ho)
	if err != nil {
		t.Fatal(err)
	}
	if so.BodyTimeout == 0 {
		so.BodyTimeout = time.Second
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.ServeHTTP(ctx, l, h, so) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeHTTP: %v", err)
		}
	})
	return "http://" + l.Addr().String() + "/mcp"
}

// httpClient connects an mcp-go streamable HTTP client; legacy pins
// protocol revision 2025-11-25 (initialize and sessions), otherwise the
// client negotiates 2026-07-28.
func httpClient(t testing.TB, url, tok string, legacy bool) (*client.Client, error) {
	t.Helper()
	var opts []client.ClientOption
	if legacy {
		//lint:ignore SA1019 the hub serves revision 2025-11-25 too, and this is how to test it.
		opts = append(opts, client.WithLegacyProtocolOnly())
	}
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		return nil, err
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "wirescope-test", Version: "0"}}}); err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}`

func post(t *testing.T, url, auth string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestHTTPAuth: without the token, or with another, a request gets 401 and
// nothing else; with it, both protocol revisions work.
func TestHTTPAuth(t *testing.T) {
	url := startHub(t, openDemo(t), 0)
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer " + token + "x", "Basic " + token, token} {
		resp := post(t, url, auth, []byte(initialize))
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusUnauthorized || len(body) != 0 || resp.Header.Get("Mcp-Session-Id") != "" {
			t.Errorf("Authorization %q: %d, %d body bytes, session %q", auth, resp.StatusCode, len(body), resp.Header.Get("Mcp-Session-Id"))
		}
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: no WWW-Authenticate", auth)
		}
	}
	// Other paths and methods are behind the token too.
	base := strings.TrimSuffix(url, "/mcp")
	for _, path := range []string{"/", "/mcp/../metrics", "/healthz/", "/healthz/../mcp", "/healthzx"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d", path, resp.StatusCode)
		}
	}
	// But for a probe's GET /healthz, which says "ok" and nothing more.
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(hb) != "ok\n" {
		t.Errorf("GET /healthz without a token: %d %q", resp.StatusCode, hb)
	}
	if resp := post(t, base+"/healthz", "", []byte(initialize)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /healthz without a token: %d", resp.StatusCode)
	}
	if _, err := httpClient(t, url, "wrong", false); err == nil {
		t.Error("a client with a wrong token connected")
	}
	if resp := post(t, url, "Bearer "+token, []byte(initialize)); resp.StatusCode != http.StatusOK {
		t.Errorf("initialize with the token: %d", resp.StatusCode)
	}
	for _, legacy := range []bool{true, false} {
		c, err := httpClient(t, url, token, legacy)
		if err != nil {
			t.Fatalf("legacy %v: %v", legacy, err)
		}
		want := "2026-07-28"
		if legacy {
			want = "2025-11-25"
		}
		if got := c.ProtocolVersion(); got != want {
			t.Errorf("legacy %v: protocol %s, want %s", legacy, got, want)
		}
		if legacy && c.GetSessionId() == "" {
			t.Error("2025-11-25: no session")
		}
		tl, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatalf("%s: tools/list: %v", want, err)
		}
		if len(tl.Tools) != len(tools.All(nil)) {
			t.Fatalf("%s: tools/list: %d tools", want, len(tl.Tools))
		}
		if text := mustCall(t, c, "summarize_traffic", nil); !strings.Contains(text, "503×37") {
			t.Errorf("%s: summarize_traffic: %s", want, text)
		}
	}
}

// TestHTTPBodyLimit: a request body over the limit is refused, and the
// server goes on serving.
func TestHTTPBodyLimit(t *testing.T) {
	url := startHub(t, openDemo(t), 64<<10)
	big := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_calls","arguments":{"query":"` +
		strings.Repeat("a", 100<<10) + `"}}}`)
	if resp := post(t, url, "Bearer "+token, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte body: %d", len(big), resp.StatusCode)
	}
	// Without Content-Length the limit holds as the body is read.
	req, _ := http.NewRequest(http.MethodPost, url, io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked %d-byte body: %d", len(big), resp.StatusCode)
	}
	c, err := httpClient(t, url, token, false)
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, c, "capture_status", nil)
}

// TestHTTPConcurrentDuringDissect: 20 clients call tools while a large
// window is being dissected; every call succeeds.
func TestHTTPConcurrentDuringDissect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.pcap")
	n, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 1500, Requests: 25})
	if err != nil {
		t.Fatal(err)
	}
	ws := openWorkspace(t, path)
	url := startHub(t, ws, 0)
	t.Logf("%d packets", n)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dissector, err := httpClient(t, url, token, false)
	if err != nil {
		t.Fatal(err)
	}
	progress := make(chan struct{})
	var once sync.Once
	dissector.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			once.Do(func() { close(progress) })
		}
	})
	dissected := make(chan error, 1)
	go func() {
		res, err := dissector.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "dissect",
			Meta: &mcp.Meta{ProgressToken: "load"}}})
		if err == nil && res.IsError {
			err = fmt.Errorf("dissect: %v", res.Content)
		}
		dissected <- err
	}()
	select {
	case <-progress:
	case err := <-dissected:
		t.Fatalf("dissect ended (%v) before any progress notification", err)
	case <-ctx.Done():
		t.Fatal("no progress notification")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20*3)
	during := make(chan bool, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := httpClient(t, url, token, i%2 == 0)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
				return
			}
			for _, name := range []string{"capture_status", "list_flows", "search_calls"} {
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name,
					Arguments: map[string]any{"max_tokens": 1000}}})
				switch {
				case err != nil:
					errs <- fmt.Errorf("client %d %s: %w", i, name, err)
				case res.IsError:
					errs <- fmt.Errorf("client %d %s: %v", i, name, res.Content)
				}
				if name == "capture_status" {
					select {
					case err := <-dissected:
						dissected <- err
						during <- false
					default:
						during <- true
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-dissected; err != nil {
		t.Fatal(err)
	}
	close(during)
	overlapped := 0
	for d := range during {
		if d {
			overlapped++
		}
	}
	if overlapped == 0 {
		t.Error("no client's capture_status ran during the dissection: the test did not test concurrency")
	}
	t.Logf("%d of 20 clients answered capture_status during the dissection", overlapped)
}

// TestDissectCancel: cancelling a dissect stops it (the window stays
// undissected, nothing half-indexed is reported as dissected), the server
// goes on answering, and dissecting again completes.
func TestDissectCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 2000, Requests: 25}); err != nil {
		t.Fatal(err)
	}
	ws := openWorkspace(t, path)
	for _, legacy := range []bool{true, false} {
		c, err := httpClient(t, startHub(t, ws, 0), token, legacy)
		if err != nil {
			t.Fatal(err)
		}
		progress := make(chan float64, 100)
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method == string(mcp.MethodNotificationProgress) {
				p, _ := n.Params.AdditionalFields["progress"].(float64)
				select {
				case progress <- p:
				default:
				}
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "dissect",
				Meta: &mcp.Meta{ProgressToken: "cancel-me"}}})
			done <- err
		}()
		select {
		case <-progress:
		case err := <-done:
			t.Fatalf("dissect ended (%v) before any progress", err)
		case <-time.After(time.Minute):
			t.Fatal("no progress in a minute")
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a cancelled dissect returned a result")
		}
		// The server stops: within a moment no more calls are indexed,
		// far fewer than the window holds, and the window is not marked
		// dissected.
		var before, after uint64
		for i := 0; i < 50; i++ {
			before = ws.Index().Stats().Calls
			time.Sleep(200 * time.Millisecond)
			if after = ws.Index().Stats().Calls; after == before {
				break
			}
		}
		if after != before || after >= 50_000 {
			t.Errorf("after cancelling, the index went on to %d calls", after)
		}
		text := mustCall(t, c, "capture_status", nil)
		if !strings.Contains(text, "dissected: nothing yet") {
			t.Errorf("after cancelling:\n%s", text)
		}
		t.Logf("legacy %v: cancelled after %v", legacy, time.Since(start).Round(time.Millisecond))
	}
	c := connect(t, ws)
	if text := mustCall(t, c, "dissect", nil); !strings.Contains(text, "calls: http 50,000") {
		t.Errorf("dissect after cancelling: %s", text)
	}
}

// rawRequest opens a TCP connection to the hub at url (http://host:port/mcp),
// sends a POST header declaring a body of length bytes (chunked when
// length is negative) and returns the connection.
func rawRequest(t *testing.T, url, auth string, length int, laddr string) net.Conn {
	t.Helper()
	hostport := strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/mcp")
	d := net.Dialer{Timeout: 5 * time.Second}
	if laddr != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(laddr)}
	}
	c, err := d.Dial("tcp", hostport)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hdr := "POST /mcp HTTP/1.1\r\nHost: " + hostport + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
	if auth != "" {
		hdr += "Authorization: " + auth + "\r\n"
	}
	if length < 0 {
		hdr += "Transfer-Encoding: chunked\r\n"
	} else {
		hdr += fmt.Sprintf("Content-Length: %d\r\n", length)
	}
	if _, err := io.WriteString(c, hdr+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// trickle writes one byte of body to c every interval until stop closes or
// a write fails. With chunked, each byte is its own chunk.
func trickle(c net.Conn, interval time.Duration, chunked bool, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		b := "{"
		if chunked {
			b = "1\r\n{\r\n"
		}
		if _, err := io.WriteString(c, b); err != nil {
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// readStatus reads an answer's status line and header from c within
// limit; it fails the test if none comes.
func readStatus(t *testing.T, c net.Conn, limit time.Duration) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", limit, err)
	}
	return resp
}

// TestHTTPTrickleRefusedAtOnce: clients without the token that send their
// body one byte at a time get 401 at once, with Connection: close, and
// the connection ends; the server does not first read the body.
func TestHTTPTrickleRefusedAtOnce(t *testing.T) {
	// A body timeout longer than the test: what ends the connections is
	// the refusal.
	url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token}, server.ServeOptions{BodyTimeout: time.Minute})
	stop := make(chan struct{})
	defer close(stop)
	const n = 20
	conns := make([]net.Conn, n)
	for i := range conns {
		// Content-Length under the 256 KiB net/http drains, and chunked.
		length := 100_000
		if i%2 == 1 {
			length = -1
		}
		conns[i] = rawRequest(t, url, map[bool]string{true: "", false: "Bearer wrong"}[i%4 < 2], length, "")
		go trickle(conns[i], 200*time.Millisecond, length < 0, stop)
	}
	start := time.Now()
	var answered time.Duration
	for i, c := range conns {
		resp := readStatus(t, c, 3*time.Second)
		answered = max(answered, time.Since(start))
		if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
			t.Errorf("connection %d: %s, close %v", i, resp.Status, resp.Close)
		}
	}
	// The server closes the connections: reads end (EOF, or a reset as
	// the trickle goes on) rather than wait.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("connection %d: still open after the 401", i)
		}
	}
	t.Logf("%d trickling clients: the last 401 after %v, the last connection closed after %v", n,
		answered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestHTTPBodyTimeout: with the token, a body still trickling when the body
// timeout ends is cut off: the client gets an error answer and the
// connection is closed. A request whose body came in time is answered
// however long the answer takes (the dissect tests run with a body timeout
// of 1 s).
func TestHTTPBodyTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token}, server.ServeOptions{BodyTimeout: timeout})
	stop := make(chan struct{})
	defer close(stop)
	for _, length := range []int{100_000, -1} {
		c := rawRequest(t, url, "Bearer "+token, length, "")
		start := time.Now()
		go trickle(c, 100*time.Millisecond, length < 0, stop)
		resp := readStatus(t, c, 5*time.Second)
		took := time.Since(start)
		if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Errorf("length %d: %s, close %v", length, resp.Status, resp.Close)
		}
		if took < timeout {
			t.Errorf("length %d: cut off after %v, before the timeout", length, took)
		}
		t.Logf("length %d: %s after %v", length, resp.Status, took.Round(time.Millisecond))
	}
}

// TestHTTPConnLimit: connections over the per-address cap, or over the
// total, are closed at once; those under it are served, and a slot freed
// is given to the next.
func TestHTTPConnLimit(t *testing.T) {
	const perIP, total = 4, 6
	url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token}, server.ServeOptions{MaxConnsPerIP: perIP, MaxConns: total})
	served := func(c net.Conn) bool {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("neither served nor closed in 5 s")
			}
			return false
		}
		return resp.StatusCode == http.StatusUnauthorized
	}
	// Connections that sent a header and wait for their body hold a slot.
	var held []net.Conn
	for range perIP {
		held = append(held, rawRequest(t, url, "Bearer "+token, 10, ""))
	}
	// The fifth from 127.0.0.1 is closed; a request on it gets nothing.
	if over := rawRequest(t, url, "", 0, "127.0.0.1"); served(over) {
		t.Errorf("connection %d from one address was served", perIP+1)
	}
	// Another address has its own cap, under the total.
	for i := range total - perIP {
		if !served(rawRequest(t, url, "", 0, "127.0.0.2")) {
			t.Errorf("connection %d from 127.0.0.2 refused", i+1)
		}
	}
	var held2 []net.Conn
	for range total - perIP {
		held2 = append(held2, rawRequest(t, url, "Bearer "+token, 10, "127.0.0.2"))
	}
	if served(rawRequest(t, url, "", 0, "127.0.0.3")) {
		t.Errorf("connection %d in all was served", total+1)
	}
	// A held connection ends: a new one from its address is served (the
	// server sees the close when it reads, so wait for it).
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for !served(rawRequest(t, url, "", 0, "127.0.0.1")) {
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = held2
}

// TestHTTPOrigin: a request from a foreign origin is refused with 403, the
// token notwithstanding; requests without Origin, from the hub's own host
// and loopback names, and from allowed origins are served, the latter with
// CORS headers and preflight answered without the token.
func TestHTTPOrigin(t *testing.T) {
	url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token, AllowOrigins: []string{"https://Inspector.example:8443/"}}, server.ServeOptions{})
	send := func(method, origin, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, o := range []string{"http://evil.example", "http://evil.example:" + strings.Split(url, ":")[2][:4], "null", "https://inspector.example",
		"http://127.0.0.1.evil.example", "http://localhost.evil.example", "file://", "http://10.0.0.1"} {
		if resp := send(http.MethodPost, o, "Bearer "+token); resp.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s with the token: %s", o, resp.Status)
		}
		if resp := send(http.MethodOptions, o, ""); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %s, allow-origin %q", o, resp.Status, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	for _, o := range []string{"", "http://localhost:5173", "http://127.0.0.1:6274", "http://[::1]:80", "http://127.0.0.2", "https://inspector.example:8443"} {
		if resp := send(http.MethodPost, o, "Bearer "+token); resp.StatusCode != http.StatusOK {
			t.Errorf("Origin %q with the token: %s", o, resp.Status)
		} else if o != "" && resp.Header.Get("Access-Control-Allow-Origin") != o {
			t.Errorf("Origin %q: Access-Control-Allow-Origin %q", o, resp.Header.Get("Access-Control-Allow-Origin"))
		}
		if resp := send(http.MethodPost, o, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Origin %q without the token: %s", o, resp.Status)
		}
	}
	pre := send(http.MethodOptions, "https://inspector.example:8443", "")
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != "https://inspector.example:8443" ||
		!strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), "authorization") {
		t.Errorf("preflight from an allowed origin: %s %v", pre.Status, pre.Header)
	}
	if _, err := server.Handler(server.New(openDemo(t)), server.HTTPOptions{Token: token, AllowOrigins: []string{"inspector.example"}}); err == nil {
		t.Error("an allowed origin without a scheme was accepted")
	}

	// On an address other than loopback, loopback origins are foreign and
	// the address itself is not. (The handler is called with the local
	// address a server would put in the context.)
	h, err := server.Handler(server.New(openDemo(t)), server.HTTPOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	local := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8898}
	for o, want := range map[string]int{"http://localhost:5173": 403, "http://127.0.0.1:6274": 403, "http://10.1.2.3:3000": 200, "http://10.1.2.4": 403} {
		req := httptest.NewRequest(http.MethodPost, "http://10.1.2.3:8898/mcp", strings.NewReader(initialize))
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(local)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Origin", o)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("on 10.1.2.3, Origin %s: %d, want %d", o, rec.Code, want)
		}
	}
}

// TestHTTPSessionCap: with the cap at 3, a fourth 2025-11-25 client is
// refused with 503, Retry-After and a sentence saying why, while clients of
// 2026-07-28 (no sessions) go on; a session ended by its client, or idle
// past the idle time, makes room.
func TestHTTPSessionCap(t *testing.T) {
	const limit, idle = 3, 2 * time.Second
	ws := openDemo(t)
	url := serveHub(t, ws, server.HTTPOptions{Token: token, MaxSessions: limit, SessionIdle: idle}, server.ServeOptions{})
	var clients []*client.Client
	for i := range limit {
		c, err := httpClient(t, url, token, true)
		if err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
		clients = append(clients, c)
	}
	_, err := httpClient(t, url, token, true)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "maximum of 3 sessions") {
		t.Fatalf("session %d: %v", limit+1, err)
	}
	t.Logf("session %d: %v", limit+1, err)
	resp := post(t, url, "Bearer "+token, []byte(initialize))
	ra, convErr := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusServiceUnavailable || convErr != nil || ra < 1 || ra > 4 {
		t.Errorf("initialize over the cap: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	modern, err := httpClient(t, url, token, false)
	if err != nil {
		t.Fatalf("a 2026-07-28 client at the cap: %v", err)
	}
	// The sessions in use keep working.
	for _, c := range clients {
		mustCall(t, c, "capture_status", nil)
	}
	mustCall(t, modern, "capture_status", nil)
	// A client that leaves (DELETE) makes room at once. (mcp-go's client
	// sends its DELETE without the headers it was given, so without the
	// token: the test sends it.)
	del, _ := http.NewRequest(http.MethodDelete, url, nil)
	del.Header.Set("Authorization", "Bearer "+token)
	del.Header.Set("Mcp-Session-Id", clients[0].GetSessionId())
	del.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	if _, err := httpClient(t, url, token, true); err != nil {
		t.Fatalf("a session after one ended: %v", err)
	}
	// Idle sessions expire: all are idle now; within the idle time and
	// the sweeper's period a new session is let in.
	start := time.Now()
	for {
		c, err := httpClient(t, url, token, true)
		if err == nil {
			c.Close()
			break
		}
		if !strings.Contains(err.Error(), "503") || time.Since(start) > 4*idle {
			t.Fatalf("no room after %v idle: %v", time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("an idle session expired after %v (idle time %v)", time.Since(start).Round(100*time.Millisecond), idle)
	// The expired session's id is refused, so its client knows to
	// initialize again.
	if _, err := clients[1].ListTools(context.Background(), mcp.ListToolsRequest{}); err == nil {
		t.Error("an expired session was served")
	}
}

// TestHTTPLogQuiet: mcp-go's line for every 2025-11-25 client that asks for
// a standalone stream ("Rejected GET request: streaming is disabled") is
// logged at debug level, not info.
func TestHTTPLogQuiet(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logged lockedBuffer
		logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: level}))
		url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token, Logger: logger}, server.ServeOptions{})
		c, err := httpClient(t, url, token, true)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", c.GetSessionId())
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %s", resp.Status)
		}
		got := strings.Contains(logged.String(), "Rejected GET request")
		if want := level == slog.LevelDebug; got != want {
			t.Errorf("logger at %v: the line logged %v, want %v:\n%s", level, got, want, logged.String())
		}
		if strings.Contains(logged.String(), "level=INFO msg=\"Rejected GET") {
			t.Errorf("logged at info:\n%s", logged.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer a server's goroutines may write while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestHTTPSessionMemory measures what a session holds: the heap grown by
// 500 sessions opened with initialize, per session. The cap times this is
// what sessions can hold of the hub's memory.
func TestHTTPSessionMemory(t *testing.T) {
	const n = 500
	url := serveHub(t, openDemo(t), server.HTTPOptions{Token: token, MaxSessions: n}, server.ServeOptions{})
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	open := func() *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	open() // warm up: the first request allocates what all share
	before := heap()
	for i := range n - 1 {
		if resp := open(); resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("session %d: %s", i+2, resp.Status)
		}
	}
	per := float64(heap()-before) / float64(n-1)
	t.Logf("%.1f KB of heap per session; %d sessions: %.1f MB", per/1024, n, per*n/(1<<20))
	if per > 64<<10 {
		t.Errorf("%.0f bytes per session", per)
	}
	if resp := open(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("session %d: %s", n+1, resp.Status)
	}
}
