package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	h, err := server.Handler(server.New(b), server.HTTPOptions{Token: token, MaxBody: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// httpClient connects an mcp-go streamable HTTP client; legacy pins
// protocol revision 2025-11-25 (initialize and sessions), otherwise the
// client negotiates 2026-07-28.
func httpClient(t testing.TB, url, tok string, legacy bool) (*client.Client, error) {
	t.Helper()
	var opts []client.ClientOption
	if legacy {
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
	for _, path := range []string{"/", "/mcp/../metrics", "/healthz"} {
		resp, err := http.Get(strings.TrimSuffix(url, "/mcp") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d", path, resp.StatusCode)
		}
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
