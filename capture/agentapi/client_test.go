package agentapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestClientHostileAgent: what an agent (or something at its address)
// answers cannot make the hub fail other than with an error that says
// what was wrong: bad JSON, lines too long, endless flows, a capture that
// is not one, errors with and without a message.
func TestClientHostileAgent(t *testing.T) {
	cases := []struct {
		name    string
		path    string
		handler http.HandlerFunc
		want    string
	}{
		{"not json", "flows", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "<html>") }, "invalid character"},
		{"a line over 1 MiB", "flows", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"proto":"tcp","src":"%s"}`+"\n", strings.Repeat("1", 2<<20))
		}, "token too long"},
		{"bad addresses", "flows", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, `{"proto":"tcp","src":"x","dst":"y"}`)
		}, `"tcp" "x"→"y"`},
		{"endless flows", "flows", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; r.Context().Err() == nil; i++ {
				fmt.Fprintf(w, `{"proto":"udp","src":"10.%d.%d.%d:1","dst":"10.0.0.1:53"}`+"\n", i>>16&255, i>>8&255, i&255)
			}
		}, "more than 50000 in the window"},
		{"not a capture", "pcap", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello, this is not pcap") }, "packets from"},
		{"error with a message", "flows", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error":"bad token"}`)
		}, "403 Forbidden: bad token"},
		{"error without one", "pcap", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }, "agent answered 502 Bad Gateway"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			// The flow bound is lowered so that the endless agent
			// reaches it in well under a second, even under -race.
			cl, err := NewClient(ClientOptions{URL: srv.URL, Token: "t", MaxFlows: 50000})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if c.path == "flows" {
				_, err = cl.Flows(ctx, time.Time{}, time.Time{})
			} else {
				var src interface{ Close() error }
				src, err = cl.Packets(ctx, time.Time{}, time.Time{}, nil)
				if err == nil {
					src.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	for _, bad := range []string{"ftp://x", "http://user:pw@x:1", "http://x:1/?q=1", "x:1", ""} {
		if _, err := NewClient(ClientOptions{URL: bad, Token: "t"}); err == nil {
			t.Errorf("URL %q accepted", bad)
		}
	}
	if _, err := NewClient(ClientOptions{URL: "http://127.0.0.1:1"}); err == nil {
		t.Error("a client without a token")
	}
}

// TestClientStalledAgent: an agent that stops sending, before its answer
// begins or in the middle of a stream, ends the request after
// StallTimeout with an error saying so; a slow agent that keeps sending is
// not cut off.
func TestClientStalledAgent(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	mux := http.NewServeMux()
	mux.HandleFunc("/hang/v1/flows", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/mid/v1/flows", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"proto":"udp","src":"10.0.0.2:5353","dst":"10.0.0.1:53"}`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slow/v1/flows", func(w http.ResponseWriter, r *http.Request) {
		for i := range 8 {
			fmt.Fprintf(w, `{"proto":"udp","src":"10.0.0.2:%d","dst":"10.0.0.1:53"}`+"\n", 5000+i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond) // slower in all than the stall timeout, never stalled
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/hang", "/mid"} {
		cl, err := NewClient(ClientOptions{URL: srv.URL + path, Token: "t", StallTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = cl.Flows(context.Background(), time.Time{}, time.Time{})
		if err == nil || !strings.Contains(err.Error(), "sent nothing for too long") {
			t.Errorf("%s: %v, want the stall named", path, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("%s: ended after %v", path, took)
		}
	}
	cl, err := NewClient(ClientOptions{URL: srv.URL + "/slow", Token: "t", StallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	flows, err := cl.Flows(context.Background(), time.Time{}, time.Time{})
	if err != nil || len(flows) != 8 {
		t.Errorf("a slow agent: %d flows, %v", len(flows), err)
	}
}

// TestClientCutByContext: a stream the caller's deadline cuts, mid-line
// or between lines, ends with the deadline named, not with the JSON error
// of the partial line the scanner hands over.
func TestClientCutByContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; r.Context().Err() == nil; i++ {
			fmt.Fprintf(w, `{"proto":"udp","src":"10.%d.%d.%d:1","dst":"10.0.0.1:53"}`+"\n", i>>16&255, i>>8&255, i&255)
		}
	}))
	defer srv.Close()
	cl, err := NewClient(ClientOptions{URL: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err = cl.Flows(ctx, time.Time{}, time.Time{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
			t.Fatalf("error %v, want the deadline named", err)
		}
	}
}
