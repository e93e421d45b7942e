package main

import (
	"context"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// This file records HTTP/2 from real servers and checks `wirescope dissect`
// against tshark on the capture. Its helpers (recording, tshark's reading of
// HTTP/1.1 and HTTP/2 exchanges) serve grpc_test.go and graphql_test.go too.

// needRecording skips a test that is not run as root and fails it when a
// command it uses is missing.
func needRecording(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("capturing on loopback needs root")
	}
	for _, tool := range append([]string{"tcpdump", "tshark"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make deps installs it (scripts/install-deps.sh)", tool)
		}
	}
}

// startCapture starts tcpdump on loopback for the TCP ports given, writing
// into a new file in the test's directory; stop waits a moment for the last
// packets, stops tcpdump and returns the file.
func startCapture(t *testing.T, ports ...string) (stop func() string) {
	t.Helper()
	var filter []string
	for _, p := range ports {
		filter = append(filter, "tcp port "+p)
	}
	return startCaptureFilter(t, strings.Join(filter, " or "))
}

// startCaptureFilter captures what filter (a pcap filter) matches on lo
// until stop is called or the test ends; stop returns the capture's path.
func startCaptureFilter(t *testing.T, filter string) (stop func() string) {
	t.Helper()
	pcap := filepath.Join(t.TempDir(), "capture.pcap")
	// -Z root: tcpdump would drop to its own user, who cannot write into
	// the test's directory; --immediate-mode: packets are written as they
	// come, not when a ring block fills (a SIGINT would lose the block).
	// -B: a 32 MiB buffer, so that a burst (h2load) is not dropped while
	// the other core is busy.
	dump := exec.Command("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-B", "32768", "-Z", "root", "-w", pcap, filter)
	dump.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	startWaiting(t, dump, "listening on")
	stopped := false
	stop = func() string {
		if !stopped {
			stopped = true
			time.Sleep(300 * time.Millisecond) // the last packets reach tcpdump
			dump.Process.Signal(syscall.SIGINT)
			dump.Wait()
		}
		return pcap
	}
	t.Cleanup(func() { stop() })
	return stop
}

// startServer starts a server process, its output going to the test log,
// and stops it when the test ends; ready is a line it prints on stderr once
// it listens, or "" to wait until addr accepts connections.
func startServer(t *testing.T, ready, addr, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	if ready != "" {
		startWaiting(t, cmd, ready)
		return
	}
	out := &clientLogWriter{t: t, prefix: filepath.Base(name) + ": "}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitListening(t, addr)
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runClient runs a client command to its end, its output going to the test
// log, and fails the test if it fails.
func runClient(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	runClientScript(t, ctx, "", name, args...)
}

// freeAddr returns ip with a TCP port that was free a moment ago.
func freeAddr(t *testing.T, ip string) (addr, port string) {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr = l.Addr().String()
	_, port, _ = net.SplitHostPort(addr)
	return addr, port
}

// pdmlNode is an element of tshark's PDML: a protocol or a field, with its
// children in order.
type pdmlNode struct {
	XMLName  xml.Name
	Name     string     `xml:"name,attr"`
	Show     string     `xml:"show,attr"`
	Value    string     `xml:"value,attr"`
	Children []pdmlNode `xml:",any"`
}

// first returns the first node named name below n, depth first, or nil.
func (n *pdmlNode) first(name string) *pdmlNode {
	for i := range n.Children {
		c := &n.Children[i]
		if c.Name == name {
			return c
		}
		if f := c.first(name); f != nil {
			return f
		}
	}
	return nil
}

// all returns the nodes named name below n, not looking inside them.
func (n *pdmlNode) all(name string) []*pdmlNode {
	var out []*pdmlNode
	for i := range n.Children {
		c := &n.Children[i]
		if c.Name == name {
			out = append(out, c)
			continue
		}
		out = append(out, c.all(name)...)
	}
	return out
}

// show returns the show attribute of the first node named name below n.
func (n *pdmlNode) show(name string) string {
	if f := n.first(name); f != nil {
		return f.Show
	}
	return ""
}

// bytes returns the value of the first node named name below n, hex-decoded.
func (n *pdmlNode) bytes(name string) []byte {
	f := n.first(name)
	if f == nil {
		return nil
	}
	b, _ := hex.DecodeString(f.Value)
	return b
}

// tsharkPackets runs tshark over pcap with the given arguments and returns
// its packets as PDML, each the list of its protocols.
func tsharkPackets(t *testing.T, pcap string, args ...string) [][]pdmlNode {
	t.Helper()
	cmd := exec.Command("tshark", append(append([]string{"-r", pcap}, args...), "-T", "pdml")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var packets [][]pdmlNode
	dec := xml.NewDecoder(out)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("tshark's PDML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "packet" {
			var p pdmlNode
			if err := dec.DecodeElement(&p, &se); err != nil {
				t.Fatalf("tshark's PDML: %v", err)
			}
			packets = append(packets, p.Children)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return packets
}

// field is a header field as tshark shows it.
type field struct{ Name, Value string }

// exchange is a request and its response as tshark reads them: an HTTP/1.1
// exchange (Stream 0) or an HTTP/2 stream.
type exchange struct {
	// Proto is "http" or "http2".
	Proto string
	// Conn is tshark's tcp.stream, Stream the HTTP/2 stream ID.
	Conn, Stream int
	// Server is the server's port.
	Server string
	// Method and Path are the request's (for HTTP/2 stream 1 of an upgraded
	// connection, those of the HTTP/1.1 request that asked for it); Status
	// is the final response's status code, "" when none was seen.
	Method, Path, Status string
	// Pushed is set for a stream the server promised (PUSH_PROMISE).
	Pushed bool
	// Upgraded is set on stream 1 of a connection upgraded to HTTP/2.
	Upgraded bool
	// Reset is the error code name of the first RST_STREAM on the stream.
	Reset string
	// Request and Response are the header fields (pseudo-headers too);
	// Trailers those of a HEADERS block after the response's.
	Request, Response, Trailers []field
	// ReqBody and RespBody are the bodies: DATA payloads for HTTP/2, and for
	// HTTP/1.1 tshark's http.file_data (de-chunked).
	ReqBody, RespBody []byte
	// ReqGRPC and RespGRPC count the gRPC messages tshark decoded each way.
	ReqGRPC, RespGRPC int
}

func (e *exchange) String() string {
	s := fmt.Sprintf("%s conn %d", e.Proto, e.Conn)
	if e.Proto == "http2" {
		s += fmt.Sprintf(" stream %d", e.Stream)
	}
	s += fmt.Sprintf(": %s %s → %q", e.Method, e.Path, e.Status)
	if e.Pushed {
		s += " pushed"
	}
	if e.Upgraded {
		s += " upgraded"
	}
	if e.Reset != "" {
		s += " reset " + e.Reset
	}
	s += fmt.Sprintf(" (bodies %d/%d bytes", len(e.ReqBody), len(e.RespBody))
	if e.ReqGRPC+e.RespGRPC > 0 {
		s += fmt.Sprintf(", gRPC messages %d/%d", e.ReqGRPC, e.RespGRPC)
	}
	if len(e.Trailers) > 0 {
		s += fmt.Sprintf(", trailers %v", e.Trailers)
	}
	return s + ")"
}

// header returns the value of the named field in fs.
func header(fs []field, name string) string {
	for _, f := range fs {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// h2ErrorCodes names HTTP/2's error codes (RFC 9113 section 7).
var h2ErrorCodes = []string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
	"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}

// tsharkExchanges reads pcap with tshark and returns its HTTP/1.1 exchanges
// and HTTP/2 streams (those with headers; stream 0 is left out), in the order
// they began. ports maps each server port to what tshark should decode it
// as: "http2" for HTTP/2 alone, "http" for HTTP/1.1, which tshark follows
// into HTTP/2 after an Upgrade: h2c and also hands a prior-knowledge HTTP/2
// connection to HTTP/2 (its preface); "" leaves it to tshark (TLS, found by
// its heuristics, hands what it decrypts to the protocol ALPN names, else to
// HTTP by its heuristics). more are further tshark arguments
// (-o tls.keylog_file:…).
func tsharkExchanges(t *testing.T, pcap string, ports map[string]string, more ...string) []*exchange {
	t.Helper()
	args := []string{"-J", "tcp http http2 grpc"}
	for p, as := range ports {
		if as != "" {
			args = append(args, "-d", "tcp.port=="+p+","+as)
		}
	}
	args = append(args, more...)
	var out []*exchange
	h1 := map[int][]*exchange{} // by connection, in order; answered ones first
	h2 := map[[2]int]*exchange{}
	var (
		conn       int    // the packet's tcp.stream
		fromServer bool   // whether the server sent it
		server     string // the server's port
	)
	stream := func(conn, id int) *exchange {
		k := [2]int{conn, id}
		if e := h2[k]; e != nil {
			return e
		}
		e := &exchange{Proto: "http2", Conn: conn, Stream: id, Server: server}
		h2[k] = e
		out = append(out, e)
		return e
	}
	for _, protos := range tsharkPackets(t, pcap, args...) {
		conn, fromServer, server = -1, false, ""
		var lastData *exchange // the stream of the last DATA frame: gRPC messages follow it
		for i := range protos {
			p := &protos[i]
			switch p.Name {
			case "tcp":
				conn, _ = strconv.Atoi(p.show("tcp.stream"))
				server = p.show("tcp.dstport")
				if _, fromServer = ports[p.show("tcp.srcport")]; fromServer {
					server = p.show("tcp.srcport")
				}
			case "http":
				if m := p.show("http.request.method"); m != "" {
					e := &exchange{Proto: "http", Conn: conn, Server: server, Method: m, Path: p.show("http.request.uri"),
						ReqBody: p.bytes("http.file_data")}
					h1[conn] = append(h1[conn], e)
					out = append(out, e)
				} else if code := p.show("http.response.code"); code != "" {
					for _, e := range h1[conn] {
						if e.Status == "" {
							e.Status, e.RespBody = code, p.bytes("http.file_data")
							if code == "101" {
								// The HTTP/2 stream 1 that answers it.
								up := stream(conn, 1)
								up.Method, up.Path, up.Upgraded = e.Method, e.Path, true
							}
							break
						}
					}
				}
			case "http2":
				for _, f := range p.all("http2.stream") {
					id, err := strconv.Atoi(f.show("http2.streamid"))
					if err != nil || id == 0 {
						continue
					}
					e := stream(conn, id)
					switch f.show("http2.type") {
					case "0": // DATA
						body := &e.ReqBody
						if fromServer {
							body = &e.RespBody
						}
						if whole := f.first("http2.body.reassembled.data"); whole != nil {
							// The frame that ends a body sent in several
							// shows all of it (and so does its data.data).
							*body, _ = hex.DecodeString(whole.Value)
						} else {
							*body = append(*body, f.bytes("http2.data.data")...)
						}
						lastData = e
					case "1": // HEADERS
						var fs []field
						for _, h := range f.all("http2.header") {
							fs = append(fs, field{h.show("http2.header.name"), h.show("http2.header.value")})
						}
						switch {
						case !fromServer && e.Request == nil:
							e.Request = fs
							e.Method, e.Path = header(fs, ":method"), header(fs, ":path")
						case !fromServer:
							e.Trailers = append(e.Trailers, fs...) // request trailers: not expected here
						case header(fs, ":status") != "":
							e.Response = fs
							e.Status = header(fs, ":status")
						default:
							e.Trailers = append(e.Trailers, fs...)
						}
					case "3": // RST_STREAM
						if e.Reset == "" {
							code, _ := strconv.Atoi(f.show("http2.rst_stream.error"))
							e.Reset = fmt.Sprint(code)
							if code < len(h2ErrorCodes) {
								e.Reset = h2ErrorCodes[code]
							}
						}
					case "5": // PUSH_PROMISE
						promised, _ := strconv.Atoi(f.show("http2.push_promise.promised_stream_id"))
						var fs []field
						for _, h := range f.all("http2.header") {
							fs = append(fs, field{h.show("http2.header.name"), h.show("http2.header.value")})
						}
						pe := stream(conn, promised)
						pe.Request, pe.Pushed = fs, true
						pe.Method, pe.Path = header(fs, ":method"), header(fs, ":path")
					}
				}
			case "grpc":
				if lastData != nil {
					n := len(p.all("grpc.message_length"))
					if fromServer {
						lastData.RespGRPC += n
					} else {
						lastData.ReqGRPC += n
					}
				}
			}
		}
	}
	// Streams without any headers (only WINDOW_UPDATE or PRIORITY frames,
	// as nghttp sends for its dependency tree) are no exchanges.
	out = slices.DeleteFunc(out, func(e *exchange) bool {
		return e.Proto == "http2" && e.Method == "" && e.Status == "" && e.Reset == "" && !e.Pushed
	})
	return out
}

// callKey is what the HTTP/2 test compares of a call: method, path, status.
func callKey(method, path, status string) string { return method + " " + path + " " + status }

// TestHTTP2Recorded records cleartext HTTP/2 from real servers — nghttpd
// (several requests on one connection from nghttp: a 404, a ~200 KB file
// sent in many DATA frames, a server push, a POST echoed back; h2load's 200
// requests on 4 connections, 8 streams at a time) and nghttpx in front of
// another nghttpd (nghttp -u: an HTTP/1.1 request upgraded with Upgrade: h2c)
// — and checks `wirescope dissect` against tshark on the capture: the same
// requests (method, path, status), the same stream IDs on each connection,
// pushed streams marked, the upgrade request recorded by HTTP/1 with 101 and
// answered on stream 1, and the large body's size.
func TestHTTP2Recorded(t *testing.T) {
	needRecording(t, "nghttpd", "nghttpx", "nghttp", "h2load")
	ctx := clientsContext(t, 3*time.Minute)
	dir := t.TempDir()
	docs := filepath.Join(dir, "docs")
	big := make([]byte, 200_000)
	for i := range big {
		big[i] = byte(i*7 + i/251) // not compressible by HPACK or anything else, not random: the same every run
	}
	files := map[string][]byte{
		"index.html": []byte("<!doctype html><title>wirescope</title><link rel=stylesheet href=/style.css>\n"),
		"style.css":  []byte("body { font-family: sans-serif }\n"),
		"small.json": []byte(`{"ok":true}` + "\n"),
		"big.bin":    big,
	}
	if err := os.MkdirAll(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(docs, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	post := filepath.Join(dir, "post.json")
	if err := os.WriteFile(post, []byte(`{"order":42,"items":["a","b"]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	const ip = "127.0.0.21"
	direct, directPort := freeAddr(t, ip)
	front, frontPort := freeAddr(t, ip)
	_, backPort := freeAddr(t, ip)
	// nghttpd: cleartext HTTP/2 only (it does not take Upgrade: h2c),
	// echoing POST bodies, pushing style.css with index.html.
	startServer(t, "", direct, "nghttpd", "--no-tls", "-a", ip, "-d", docs, "--echo-upload", "-p/index.html=/style.css", directPort)
	startServer(t, "", ip+":"+backPort, "nghttpd", "--no-tls", "-a", ip, "-d", docs, backPort)
	// nghttpx takes HTTP/1.1, Upgrade: h2c and prior knowledge on its
	// cleartext frontend; its backend (not captured) is the second nghttpd.
	startServer(t, "", front, "nghttpx", "--conf=/dev/null", "--single-process", "--workers=1",
		"-f", ip+","+frontPort+";no-tls", "-b", ip+","+backPort+";;proto=h2", "--errorlog-file=/dev/stderr", "--accesslog-file=/dev/null")
	stop := startCapture(t, directPort, frontPort)

	base := "http://" + direct
	runClient(t, ctx, "nghttp", "-n", base+"/index.html", base+"/big.bin", base+"/missing.html", base+"/small.json")
	runClient(t, ctx, "nghttp", "-n", "-d", post, base+"/submit")
	runClient(t, ctx, "nghttp", "-n", "-u", "http://"+front+"/index.html", "http://"+front+"/small.json")
	runClient(t, ctx, "h2load", "-n", "200", "-c", "4", "-m", "8", base+"/small.json")
	pcap := stop()

	truth := tsharkExchanges(t, pcap, map[string]string{directPort: "http2", frontPort: "http"})
	var want []string
	wantStreams := map[int][]int{} // tcp.stream → HTTP/2 stream IDs
	var upgrade, pushed, bigStream *exchange
	for _, e := range truth {
		if e.Proto == "http" {
			if e.Status == "101" {
				upgrade = e
			}
			continue
		}
		want = append(want, callKey(e.Method, e.Path, e.Status))
		wantStreams[e.Conn] = append(wantStreams[e.Conn], e.Stream)
		switch {
		case e.Pushed:
			pushed = e
		case e.Path == "/big.bin":
			bigStream = e
		}
		if !strings.HasPrefix(e.Path, "/small.json") || e.Status != "200" {
			t.Logf("tshark: %v", e)
		}
	}
	t.Logf("tshark: %d HTTP/2 streams on %d connections", len(want), len(wantStreams))
	// What the clients did must be in the capture.
	switch {
	case len(want) < 200+6:
		t.Fatalf("tshark sees %d HTTP/2 requests, want at least 206", len(want))
	case upgrade == nil:
		t.Fatal("tshark sees no HTTP/1.1 request answered 101 (nghttp -u)")
	case pushed == nil || pushed.Path != "/style.css":
		t.Fatalf("tshark sees no push of /style.css: %v", pushed)
	case bigStream == nil || len(bigStream.RespBody) != len(big):
		t.Fatalf("tshark sees /big.bin's response as %v, want %d bytes", bigStream, len(big))
	case !slices.Contains(want, callKey("GET", "/missing.html", "404")), !slices.Contains(want, callKey("POST", "/submit", "200")),
		!slices.Contains(want, callKey("GET", "/index.html", "200")):
		t.Fatalf("tshark misses the 404, the POST or index.html: %q", want)
	}

	stdout, _, err := runCmd(t, "dissect", pcap)
	if err != nil {
		t.Fatal(err)
	}
	calls := parseCalls(t, stdout)
	var got []string
	gotStreams := map[string][]int{} // client address → stream IDs
	var http1 []proto.Call
	var gotPushed, gotBig *proto.Call
	for i, c := range calls {
		switch c.Proto {
		case "http":
			http1 = append(http1, c)
			continue
		case "http2":
		default:
			continue
		}
		got = append(got, callKey(c.Method, c.Path, c.Status))
		id, err := strconv.Atoi(fmt.Sprint(c.Extra.Get("stream_id")))
		if err != nil {
			t.Errorf("call %s %s: stream_id %v", c.Method, c.Path, c.Extra.Get("stream_id"))
		}
		src := fmt.Sprintf("%v:%d", c.Src.IP, c.Src.Port)
		gotStreams[src] = append(gotStreams[src], id)
		if c.Error != "" {
			t.Errorf("call %s %s stream %d: error %q", c.Method, c.Path, id, c.Error)
		}
		if c.Extra.Get("pushed") == true {
			gotPushed = &calls[i]
		}
		if c.Path == "/big.bin" {
			gotBig = &calls[i]
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%d http2 calls, tshark's %d; only in wirescope's: %q; only in tshark's: %q", len(got), len(want),
			missing(got, want), missing(want, got))
	}
	// The same stream IDs on each connection (connections told apart by
	// the client's port: one client address here).
	var wantSets, gotSets []string
	for _, ids := range wantStreams {
		slices.Sort(ids)
		wantSets = append(wantSets, fmt.Sprint(ids))
	}
	for _, ids := range gotStreams {
		slices.Sort(ids)
		gotSets = append(gotSets, fmt.Sprint(ids))
	}
	slices.Sort(wantSets)
	slices.Sort(gotSets)
	if !slices.Equal(gotSets, wantSets) {
		t.Errorf("stream IDs per connection:\n%s\ntshark's:\n%s", strings.Join(gotSets, "\n"), strings.Join(wantSets, "\n"))
	}
	if gotPushed == nil || gotPushed.Path != "/style.css" || gotPushed.Status != "200" {
		t.Errorf("pushed call: %+v, want GET /style.css 200 marked pushed", gotPushed)
	}
	if gotBig == nil || gotBig.Response.BodySize != int64(len(big)) {
		t.Errorf("/big.bin: %+v, want a response body of %d bytes", gotBig, len(big))
	}
	// The upgrade: the HTTP/1.1 request recorded by HTTP/1 with 101, its
	// answer by HTTP/2 on stream 1 (in want above, with the request's method
	// and path: tsharkExchanges gives stream 1 those).
	var up []string
	for _, c := range http1 {
		up = append(up, callKey(c.Method, c.Path, c.Status))
	}
	if wantUp := []string{callKey(upgrade.Method, upgrade.Path, "101")}; !slices.Equal(up, wantUp) {
		t.Errorf("http calls %q, want %q", up, wantUp)
	}
}

// missing returns the elements of a (sorted) not in b (sorted), counting
// repeats.
func missing(a, b []string) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) {
		switch {
		case j >= len(b) || a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			j++
		default:
			i++
			j++
		}
	}
	return out
}
