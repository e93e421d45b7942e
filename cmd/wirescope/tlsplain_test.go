//go:build !lean

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/tlsplain"
	"github.com/wirescope/wirescope/internal/testserver"
)

// TestAgentTLSPlaintext: the agent captures HTTPS on lo and reads its
// plaintext through the TLS probes; dissecting the store's segments gives
// exactly the calls curl (HTTP/1.1 over TLS 1.3, HTTP/2 over TLS 1.2) and
// Python's requests made, once each, with the identities of the cluster
// file, beside each connection's TLS handshake, and the connection's flow
// reads decrypted by the uprobe.
func TestAgentTLSPlaintext(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent needs root")
	}
	for _, tool := range []string{"curl", "/usr/bin/python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test installs it)", tool)
		}
	}
	const port = "18447"
	addr := "127.0.0.44:" + port
	testserver.NginxTLS(t, addr)
	dir := t.TempDir()
	// A Go HTTPS server (crypto/tls, with symbols) running before the
	// agent starts, and a stripped static Go client started after.
	const goPort, staticPort = "18449", "18451"
	goAddr := "127.0.0.44:" + goPort
	goServer := exec.Command(testserver.BuildGoTLS(t, dir, "go-server"), "server", goAddr)
	if err := goServer.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { goServer.Process.Kill(); goServer.Wait() }()
	goClient := testserver.BuildGoTLS(t, dir, "go-client", "-ldflags=-s -w")
	store := filepath.Join(dir, "store")
	tokenFile := filepath.Join(dir, "token")
	api := freePort(t)
	agent := exec.Command(wirescopeBinary(t), "agent", "--iface", "lo", "--filter", "tcp port "+port+" or tcp port "+goPort+" or tcp port "+staticPort, "--data-dir", store,
		"--listen", api, "--token-file", tokenFile, "--stats-every", "0")
	agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN=")
	line := startWaiting(t, agent, "msg=capturing")
	stopped := false
	defer func() {
		if !stopped {
			agent.Process.Signal(syscall.SIGTERM)
			agent.Wait()
		}
	}()
	if !strings.Contains(line, "tls_plaintext=on") {
		t.Fatalf("the agent does not read TLS plaintext: %s", line)
	}

	url := "https://" + addr
	type want struct{ proto, method, path string }
	var wants []want
	runs := [][]string{
		{"curl", "-sk", "--interface", "127.0.0.45", "--http1.1", "--tlsv1.3", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", url + "/a", url + "/b?q=1", url + "/big"},
		{"curl", "-sk", "--interface", "127.0.0.45", "--http2", "--tls-max", "1.2", "-o", "/dev/null", "-o", "/dev/null", url + "/h2-one", url + "/h2-two"},
		{"/usr/bin/python3", "-c", `import requests, urllib3
urllib3.disable_warnings()
s = requests.Session()
for p in ("/py-one", "/py-two"):
    r = s.get("` + url + `" + p, verify=False)
    assert r.status_code == 200 and r.text == "probed\n", (r.status_code, r.text)
`},
	}
	for _, p := range []string{"/a", "/b?q=1", "/big"} {
		wants = append(wants, want{"http", "GET", p})
	}
	for _, p := range []string{"/h2-one", "/h2-two"} {
		wants = append(wants, want{"http2", "GET", p})
	}
	runs = append(runs, []string{goClient, "client", "https://" + goAddr + "/go-h2-a", "https://" + goAddr + "/go-h2-b"},
		[]string{goClient, "client", "-h1", "https://" + goAddr + "/go-h1"})
	wants = append(wants, want{"http2", "GET", "/go-h2-a"}, want{"http2", "GET", "/go-h2-b"}, want{"http", "GET", "/go-h1"})
	for _, p := range []string{"/py-one", "/py-two", "/static"} {
		wants = append(wants, want{"http", "GET", p}) // /static: read at nginx's end
	}
	for _, run := range runs {
		if out, err := exec.Command(run[0], run[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", run, err, out)
		}
	}
	// A statically linked, stripped TLS client: its request is not read,
	// and capture_status says why.
	static := staticTLSClient(t, dir)
	sc := startUntil(t, "the static client's response", "HTTP/1.1 200", static, "127.0.0.44", port)
	// The same program as server and client to each other: neither end
	// is readable, and capture_status says so of the server's workload.
	keyFile, crtFile := testserver.SelfSigned(t, dir)
	ss := startUntil(t, "the static server listening", "listening", static, "-serve", "127.0.0.47", staticPort, crtFile, keyFile)
	sc2 := startUntil(t, "the static server's response", "HTTP/1.1 200", static, "127.0.0.47", staticPort)
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	var st agentapi.Stats
	waitFor(t, "the plaintext of 6 connections stored", func() bool {
		resp := apiGet(t, "http://"+api+"/v1/stats", token)
		defer resp.Body.Close()
		st = agentapi.Stats{}
		json.NewDecoder(resp.Body).Decode(&st)
		return st.TLS != nil && st.TLS.Records >= 14
	})
	if st.TLSPlaintext != "on" || st.TLS.Counters.RingFull != 0 || st.TLS.Counters.OverRate != 0 || st.TLS.WriteErrors != 0 {
		t.Errorf("stats: %q %+v", st.TLSPlaintext, st.TLS)
	}
	// Python's requests exited before the agent was asked: named by the
	// chunks it left.
	if !slices.ContainsFunc(st.TLS.Processes, func(p tlsplain.Process) bool {
		return p.Comm == "python3" && len(p.Libraries) > 0 && p.Libraries[0].Probed
	}) {
		t.Errorf("python3 is not among the processes read: %+v", st.TLS.Processes)
	}
	if st.TLS.Duplicates == 0 {
		t.Error("client and server were both probed, yet no chunk was left out as the other end's copy")
	}
	// capture_status, through an MCP client of `wirescope mcp --agents`,
	// names what is read and what is not, and why: by process, and once
	// the window is dissected, by workload (the static programs' flow is
	// named by the agent when it is asked for its flows, though its
	// housekeeping may not have asked eBPF yet).
	cluster := filepath.Join(dir, "cluster.json")
	os.WriteFile(cluster, []byte(`{"pods":[{"name":"web-tls-0","namespace":"shop","node":"node-a","ip":"127.0.0.44","labels":{"app":"web"}},
	         {"name":"curl-0","namespace":"tools","node":"node-a","ip":"127.0.0.45","labels":{"app":"curl"}},
	         {"name":"vault-0","namespace":"sec","node":"node-a","ip":"127.0.0.47","labels":{"app":"vault"}}]}`), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(wirescopeBinary(t), []string{"WIRESCOPE_AGENT_TOKEN=" + token}, "mcp", "--agents", "http://"+api,
		"--data-dir", filepath.Join(dir, "mcp"), "--cluster", cluster)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(ctx, t, c)
	toolText(ctx, t, c, "dissect", map[string]any{})
	status := toolText(ctx, t, c, "capture_status", map[string]any{})
	// The Go programs are built by this toolchain: "go1.26.8" reads as "Go 1.26".
	goMinor := strings.Join(strings.SplitN(strings.TrimPrefix(runtime.Version(), "go"), ".", 3)[:2], ".")
	for _, want := range []string{
		"encrypted flows by workload (client or server; those with flows not read first):\n" +
			"  sec/vault: 1 encrypted flow; NOT read (opaque here, not absent): client static-tls " + fmt.Sprint(sc2.Process.Pid) +
			": statically linked without symbols",
		"; server static-tls " + fmt.Sprint(ss.Process.Pid) + ": statically linked without symbols",
		"  shop/web-tls: 6 encrypted flows; read: OpenSSL 3.0 uprobe 4, Go " + goMinor + " crypto/tls uprobe 2\n",
		"  tools/curl: 2 encrypted flows; read: OpenSSL 3.0 uprobe 2\n",
		"TLS plaintext: on; read from ", "OpenSSL 3.0.", "nginx ", "curl ", "crypto/tls (", "go-server ",
		"NOT readable (their TLS traffic is opaque here, not absent): statically linked without symbols (",
		"static-tls " + fmt.Sprint(sc.Process.Pid)} {
		if !strings.Contains(status, want) {
			t.Errorf("capture_status does not say %q:\n%s", want, status)
		}
	}
	c.Close()
	agent.Process.Signal(syscall.SIGTERM)
	agent.Wait()
	stopped = true

	segs, _ := filepath.Glob(filepath.Join(store, "segments", "*.pcap"))
	if !slices.ContainsFunc(segs, func(s string) bool { return strings.HasSuffix(s, "-lt147.pcap") }) {
		t.Fatalf("no plaintext segment among %v", segs)
	}
	out, stderr, err := runCmd(t, append([]string{"dissect", "--cluster", cluster}, segs...)...)
	if err != nil {
		t.Fatalf("dissect: %v\n%s", err, stderr)
	}
	var got []want
	handshakes := 0
	for _, c := range parseCalls(t, out) {
		switch c.Proto {
		case "tls":
			handshakes++
			continue
		case "http", "http2":
		default:
			t.Errorf("unexpected call %s %s %s", c.Proto, c.Method, c.Path)
			continue
		}
		got = append(got, want{c.Proto, c.Method, c.Path})
		if fmt.Sprint(c.Status) != "200" {
			t.Errorf("%s %s: status %v", c.Method, c.Path, c.Status)
		}
		if c.Dst.Pod != "web-tls-0" || c.Dst.IP.String() != "127.0.0.44" || c.Dst.Port != map[bool]uint16{true: 18449, false: 18447}[strings.HasPrefix(c.Path, "/go-")] {
			t.Errorf("%s %s: server %+v", c.Method, c.Path, c.Dst)
		}
		if strings.HasPrefix(c.Path, "/py-") || strings.HasPrefix(c.Path, "/go-") || c.Path == "/static" {
			continue // Python, Go and the static client connect from 127.0.0.1
		}
		if c.Src.Pod != "curl-0" {
			t.Errorf("%s %s: client %+v", c.Method, c.Path, c.Src)
		}
	}
	key := func(w want) string { return w.proto + " " + w.method + " " + w.path }
	sort.Slice(got, func(i, j int) bool { return key(got[i]) < key(got[j]) })
	sort.Slice(wants, func(i, j int) bool { return key(wants[i]) < key(wants[j]) })
	if !slices.Equal(got, wants) {
		t.Errorf("calls from the store:\n%v\nwant:\n%v", got, wants)
	}
	conns := len(runs) + 1     // each client made one connection, the static one too
	if handshakes != conns+1 { // and the static programs' connection
		t.Errorf("%d TLS handshakes, want one per connection (%d)", handshakes, conns+1)
	}
	// The flows say the plaintext came from the uprobe.
	flowsOut, _, err := runCmd(t, append([]string{"dissect", "--flows"}, segs...)...)
	if err != nil {
		t.Fatal(err)
	}
	// One flow line per connection read, and its handshake record says so
	// too (though the handshake ended before the first plaintext).
	var flowsRead, handshakesRead int
	for _, l := range strings.Split(flowsOut, "\n") {
		if !strings.Contains(l, `"decryption":"decrypted: `) || !strings.Contains(l, ` uprobe"`) {
			continue
		}
		if strings.Contains(l, `"kind":"flow"`) {
			flowsRead++
		} else if strings.Contains(l, `"method":"handshake"`) {
			handshakesRead++
		}
	}
	if flowsRead != conns || handshakesRead != conns {
		t.Errorf("%d flows and %d handshake records read decrypted by the uprobe, want %d:\n%s", flowsRead, handshakesRead, conns, flowsOut)
	}
}

// startUntil starts a program, killed when the test ends, and waits
// (saying what for) until its output holds want.
func startUntil(t *testing.T, what, want, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out syncBuffer // written by exec's copying goroutine while waitFor reads it
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, what, func() bool { return strings.Contains(out.String(), want) })
	return cmd
}

// staticTLSClient builds, in dir, a C program linked statically against
// libssl.a and stripped: "static-tls HOST PORT" sends one HTTPS request,
// prints the response, and stays alive a minute (for the agent to find);
// "static-tls -serve HOST PORT CERT KEY" prints "listening", answers one
// connection's request 200, and stays alive a minute.
func staticTLSClient(t *testing.T, dir string) string {
	t.Helper()
	for _, tool := range []string{"gcc", "strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (make test installs it)", tool)
		}
	}
	src := `#include <openssl/ssl.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
	int serve = argc == 6 && !strcmp(argv[1], "-serve");
	if (serve) argv++;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	inet_pton(AF_INET, argv[1], &a.sin_addr);
	SSL_CTX *ctx = SSL_CTX_new(serve ? TLS_server_method() : TLS_client_method());
	if (serve) {
		int on = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
		if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4)) { perror("listen"); return 1; }
		if (SSL_CTX_use_certificate_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) { fprintf(stderr, "certificate\n"); return 1; }
		printf("listening\n");
		fflush(stdout);
		int c = accept(fd, NULL, NULL);
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, c);
		if (SSL_accept(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
		char buf[512];
		SSL_read(ssl, buf, sizeof buf);
		const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nstatic\n";
		SSL_write(ssl, resp, strlen(resp));
		sleep(60);
		return 0;
	}
	if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) { fprintf(stderr, "handshake failed\n"); return 1; }
	const char *req = "GET /static HTTP/1.1\r\nHost: static\r\n\r\n";
	SSL_write(ssl, req, strlen(req));
	char buf[512];
	int n = SSL_read(ssl, buf, sizeof buf - 1);
	if (n > 0) { buf[n] = 0; printf("%s\n", buf); }
	fflush(stdout);
	sleep(60);
	return 0;
}
`
	if err := os.WriteFile(filepath.Join(dir, "static-tls.c"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "static-tls")
	if out, err := exec.Command("gcc", "-static", "-O1", "-o", bin, filepath.Join(dir, "static-tls.c"), "-lssl", "-lcrypto", "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("gcc -static against libssl.a (libssl-dev): %v\n%s", err, out)
	}
	if out, err := exec.Command("strip", bin).CombinedOutput(); err != nil {
		t.Fatalf("strip: %v\n%s", err, out)
	}
	return bin
}

// TestAgentTLSPlaintextOff: where the probes cannot load (here: a ring
// size the kernel cannot take), the agent captures packets as before and
// says why in its log, its stats and capture_status; with
// --tls-plaintext=false it says it is off.
func TestAgentTLSPlaintextOff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent needs root")
	}
	for _, tc := range []struct {
		flag, state string
	}{
		{"--tls-ring-bytes=1000", "off: TLS ring buffer size 1000: must be a power of two of at least 64 KiB"},
		{"--tls-plaintext=false", "off (--tls-plaintext=false)"},
	} {
		dir := t.TempDir()
		tokenFile := filepath.Join(dir, "token")
		api := freePort(t)
		agent := exec.Command(wirescopeBinary(t), "agent", "--iface", "lo", "--filter", "tcp port 18448", "--data-dir", filepath.Join(dir, "store"),
			"--listen", api, "--token-file", tokenFile, "--stats-every", "0", tc.flag)
		agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN=")
		line := startWaiting(t, agent, "msg=capturing")
		if !strings.Contains(line, "tls_plaintext=") || !strings.Contains(line, "off") {
			t.Errorf("%s: the start line does not say TLS plaintext is off: %s", tc.flag, line)
		}
		b, _ := os.ReadFile(tokenFile)
		token := strings.TrimSpace(string(b))
		// Packets are still captured.
		ln, err := net.Listen("tcp", "127.0.0.46:18448")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("hello"))
				c.Close()
			}
		}()
		var st agentapi.Stats
		waitFor(t, "packets captured with TLS plaintext off", func() bool {
			if c, err := net.Dial("tcp", "127.0.0.46:18448"); err == nil {
				io.ReadAll(c)
				c.Close()
			}
			resp := apiGet(t, "http://"+api+"/v1/stats", token)
			defer resp.Body.Close()
			st = agentapi.Stats{}
			json.NewDecoder(resp.Body).Decode(&st)
			return st.Store.Packets > 0
		})
		ln.Close()
		if st.TLSPlaintext != tc.state || st.TLS != nil {
			t.Errorf("%s: stats say %q (coverage %v), want %q", tc.flag, st.TLSPlaintext, st.TLS != nil, tc.state)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := client.NewStdioMCPClient(wirescopeBinary(t), []string{"WIRESCOPE_AGENT_TOKEN=" + token}, "mcp", "--agents", "http://"+api,
			"--data-dir", filepath.Join(dir, "mcp"))
		if err != nil {
			t.Fatal(err)
		}
		initialize(ctx, t, c)
		if status := toolText(ctx, t, c, "capture_status", map[string]any{}); !strings.Contains(status, "TLS plaintext: "+tc.state+" (TLS traffic on this node is read only with a key log)") {
			t.Errorf("%s: capture_status does not say TLS plaintext is off:\n%s", tc.flag, status)
		}
		c.Close()
		cancel()
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
	}
}
