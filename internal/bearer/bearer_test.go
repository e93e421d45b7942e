package bearer_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/internal/bearer"
)

// TestRefusedBeforeBody: over a real connection, a request without the
// token whose body trickles in gets 401 at once, says Connection: close,
// and the server ends the connection; the handler never runs. One with the
// token reaches the handler.
func TestRefusedBeforeBody(t *testing.T) {
	reached := make(chan string, 10)
	srv := httptest.NewServer(bearer.Require("tok", nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- r.Header.Get("Authorization")
		io.WriteString(w, "ok")
	}), "/healthz"))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, te := range []string{"Content-Length: 100000", "Transfer-Encoding: chunked"} {
		for _, auth := range []string{"", "Authorization: Bearer nope\r\n"} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/snapshots HTTP/1.1\r\nHost: x\r\n%s%s\r\n\r\n", auth, te)
			stop := make(chan struct{})
			go func() { // one byte (chunk) every 100 ms
				for {
					b := "{"
					if strings.HasPrefix(te, "Transfer") {
						b = "1\r\n{\r\n"
					}
					if _, err := io.WriteString(c, b); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}()
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s %q: no answer: %v", te, auth, err)
			}
			if resp.StatusCode != http.StatusUnauthorized || !resp.Close || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %q: %s, close %v, %v", te, auth, resp.Status, resp.Close, resp.Header)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("%s %q: 401 after %v", te, auth, took)
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("%s %q: the connection stayed open", te, auth)
				}
			}
			close(stop)
		}
	}
	select {
	case a := <-reached:
		t.Errorf("the handler ran for Authorization %q", a)
	default:
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/snapshots", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || <-reached != "Bearer tok" {
		t.Errorf("with the token: %s", resp.Status)
	}
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("open path: %v %v", resp, err)
	}
}
