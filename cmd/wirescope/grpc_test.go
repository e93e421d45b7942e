package main

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testApps is the Go module of the servers and clients the recorded tests
// run (its own go.mod: the main module gains no dependency).
const testApps = "../../test/grpcapps"

// buildTestApps builds packages of test/grpcapps (paths relative to it, or
// import paths of its dependencies) into a new directory and returns it;
// each binary is named after its package's last element. go build fetches
// what the module needs from the module proxy the first time.
func buildTestApps(t *testing.T, ctx context.Context, pkgs ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go is not on PATH: the recorded tests build their servers from test/grpcapps")
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, gobin, append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = testApps
	cmd.Env = append(cmd.Environ(), "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in test/grpcapps: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	t.Logf("built %s in %s", strings.Join(pkgs, " "), time.Since(start).Round(time.Millisecond))
	return dir
}

// grpcCodes names gRPC's status codes by number.
var grpcCodes = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// extraInt reads a count from a call's Extra (a json.Number, a float64 or
// an int64, depending on how the call was read), 0 when absent.
func extraInt(v any) int {
	if v == nil {
		return 0
	}
	n, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	if err != nil {
		return -1
	}
	return int(n)
}

// TestGRPCRecorded records real gRPC — grpc-go's route_guide example server
// and client unchanged (unary, server streaming, client streaming, bidi) and
// test/grpcapps' greeter-server and greeter-client on the helloworld and echo
// services of grpc's examples (OK, NOT_FOUND with a message,
// INVALID_ARGUMENT, DEADLINE_EXCEEDED from the server, a client deadline
// that expires and resets the stream, UNIMPLEMENTED, gzip-compressed unary
// and bidi calls) — and checks `wirescope dissect`'s grpc calls against
// tshark's reading of the capture: the same calls (path and status name, from
// grpc-status in the trailers or a trailers-only response), the same stream
// IDs, grpc-message and HTTP status, and the same number of length-prefixed
// messages each way as tshark's gRPC dissector counts per stream.
func TestGRPCRecorded(t *testing.T) {
	needRecording(t)
	ctx := clientsContext(t, 5*time.Minute)
	bin := buildTestApps(t, ctx, "./greeter-server", "./greeter-client",
		"google.golang.org/grpc/examples/route_guide/server", "google.golang.org/grpc/examples/route_guide/client")

	greeter, greeterPort := freeAddr(t, "127.0.0.22")
	_, routePort := freeAddr(t, "127.0.0.1")
	route := "127.0.0.1:" + routePort
	startServer(t, "listening on", greeter, filepath.Join(bin, "greeter-server"), "-addr", greeter)
	// The example listens on localhost:PORT.
	startServer(t, "", route, filepath.Join(bin, "server"), "-port", routePort)
	stop := startCapture(t, greeterPort, routePort)
	runClient(t, ctx, filepath.Join(bin, "greeter-client"), "-addr", greeter)
	runClient(t, ctx, filepath.Join(bin, "client"), "-addr", route)
	pcap := stop()

	type grpcCall struct {
		stream                int
		path, status, message string
		httpStatus            string
		reset                 string
		requests, responses   int
	}
	key := func(c grpcCall) string {
		s := fmt.Sprintf("%s %s", c.path, c.status)
		if c.message != "" {
			s += fmt.Sprintf(" %q", c.message)
		}
		if c.reset != "" {
			s += " reset " + c.reset
		}
		return s + fmt.Sprintf(" http %s stream %d messages %d/%d", c.httpStatus, c.stream, c.requests, c.responses)
	}
	var want []string
	statuses := map[string]int{}
	for _, e := range tsharkExchanges(t, pcap, map[string]string{greeterPort: "http2", routePort: "http2"}) {
		if e.Proto != "http2" {
			continue
		}
		c := grpcCall{stream: e.Stream, path: e.Path, httpStatus: e.Status, reset: e.Reset, requests: e.ReqGRPC, responses: e.RespGRPC}
		code := header(e.Trailers, "grpc-status")
		msg := header(e.Trailers, "grpc-message")
		if code == "" { // trailers-only: the status in the response's headers
			code, msg = header(e.Response, "grpc-status"), header(e.Response, "grpc-message")
		}
		if code != "" {
			n, err := strconv.Atoi(code)
			if err != nil || n >= len(grpcCodes) {
				t.Fatalf("tshark: %v: grpc-status %q", e, code)
			}
			c.status = grpcCodes[n]
			c.reset = "" // a stream reset after its status does not matter
		}
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m
		}
		c.message = msg
		statuses[c.status]++
		want = append(want, key(c))
		t.Logf("tshark: %s (%v)", key(c), e)
	}
	// What the clients did must be in the capture.
	for _, w := range []string{
		"/helloworld.Greeter/SayHello OK", `/helloworld.Greeter/SayHello NOT_FOUND "no greeting for missing"`,
		`/helloworld.Greeter/SayHello INVALID_ARGUMENT "name is empty"`, "/helloworld.Greeter/SayHello DEADLINE_EXCEEDED",
		"/grpc.examples.echo.Echo/UnaryEcho  reset CANCEL", "/grpc.examples.echo.Echo/ServerStreamingEcho UNIMPLEMENTED",
		"/grpc.examples.echo.Echo/BidirectionalStreamingEcho OK", "/routeguide.RouteGuide/GetFeature OK",
		"/routeguide.RouteGuide/ListFeatures OK", "/routeguide.RouteGuide/RecordRoute OK", "/routeguide.RouteGuide/RouteChat OK",
	} {
		if !slices.ContainsFunc(want, func(k string) bool { return strings.HasPrefix(k, w+" ") }) {
			t.Errorf("tshark sees no call %s", w)
		}
	}
	if statuses["OK"] < 9 {
		t.Errorf("tshark sees %d calls OK, want at least 9", statuses["OK"])
	}
	for _, k := range want {
		if strings.HasPrefix(k, "/routeguide.RouteGuide/ListFeatures ") && !strings.HasSuffix(k, "messages 1/100") {
			t.Errorf("ListFeatures: %s, want 1 request and 100 responses (the example database's features all lie in the client's rectangle)", k)
		}
		if strings.HasPrefix(k, "/grpc.examples.echo.Echo/BidirectionalStreamingEcho ") && !strings.HasSuffix(k, "messages 4/4") {
			t.Errorf("the bidi call: %s, want 4 messages each way", k)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	stdout, _, err := runCmd(t, "dissect", pcap)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range parseCalls(t, stdout) {
		if c.Proto != "grpc" {
			if c.Proto == "http2" {
				t.Errorf("a gRPC stream recorded as http2: %s %s %s", c.Method, c.Path, c.Status)
			}
			continue
		}
		if c.Method != "POST" {
			t.Errorf("%s: method %q", c.Path, c.Method)
		}
		g := grpcCall{path: c.Path, status: c.Status, requests: extraInt(c.Extra.Get("request_messages")),
			responses: extraInt(c.Extra.Get("response_messages")), stream: extraInt(c.Extra.Get("stream_id"))}
		if m := c.Extra.Get("grpc_message"); m != nil {
			g.message = fmt.Sprint(m)
		}
		if h := c.Extra.Get("http_status"); h != nil {
			g.httpStatus = fmt.Sprint(extraInt(h))
		}
		if r, ok := strings.CutPrefix(c.Error, "no response: stream reset "); ok && c.Status == "" {
			g.reset = r
		} else if c.Error != "" {
			t.Errorf("%s: error %q", c.Path, c.Error)
		}
		got = append(got, key(g))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%d grpc calls, tshark's %d\nonly in wirescope's:\n%s\nonly in tshark's:\n%s", len(got), len(want),
			strings.Join(missing(got, want), "\n"), strings.Join(missing(want, got), "\n"))
	}
}
