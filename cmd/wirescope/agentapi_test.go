package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/capture/agentapi"
)

// freePort returns a loopback address with a port free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func apiGet(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestAgentAPIEndToEnd runs the agent with its API on a veth pair with a
// real nginx and curl: the API refuses requests without the token; the
// flows it streams name curl and nginx (eBPF, with their cgroups); the
// PCAP it streams holds exactly the packets its flow index counts, and
// tshark reads it; `wirescope dissect --store` and `wirescope mcp --store`
// read the store the agent left.
func TestAgentAPIEndToEnd(t *testing.T) {
	n := newNetns(t)
	n.startNginx(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	tokenFile := filepath.Join(dir, "token")
	addr := freePort(t)
	agent := exec.Command(wirescopeBinary(t), "agent", "--iface", n.hostIf, "--data-dir", store, "--listen", addr,
		"--token-file", tokenFile, "--stats-every", "0", "--segment-bytes", "65536")
	agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN=")
	startWaiting(t, agent, "msg=capturing")
	defer func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() }()
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	base := "http://" + addr

	const requests = 12
	for range requests {
		if out, err := exec.Command("curl", "-s", "-o", "/dev/null", "http://"+n.nsIP+":8080/").CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	// A housekeeping pass (once a second) asks eBPF about the new flows:
	// wait until every connection has both its processes.
	waitFor(t, "every connection to nginx attributed to curl and nginx", func() bool {
		resp := apiGet(t, base+"/v1/flows?port=8080&proto=tcp", token)
		defer resp.Body.Close()
		done := map[string]bool{}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var fl agentapi.Flow
			if json.Unmarshal(sc.Bytes(), &fl) == nil && fl.SrcProc.Comm == "curl" && fl.DstProc.Comm == "nginx" {
				done[fl.Src] = true
			}
		}
		return len(done) == requests
	})

	for _, tok := range []string{"", "not-the-token"} {
		resp := apiGet(t, base+"/v1/pcap", tok)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("/v1/pcap with token %q: %d", tok, resp.StatusCode)
		}
	}

	var st agentapi.Stats
	resp := apiGet(t, base+"/v1/stats", token)
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Store.Packets == 0 || len(st.Interfaces) != 1 || st.Interfaces[0].Name != n.hostIf || st.Interfaces[0].Drops != 0 {
		t.Errorf("stats %+v", st)
	}
	if !st.AttributionOn {
		t.Fatalf("running as root, yet flows are not attributed to processes: %s", st.Attribution)
	}

	resp = apiGet(t, base+"/v1/flows?port=8080&proto=tcp", token)
	conns := map[string]bool{}
	var indexPackets uint64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var fl agentapi.Flow
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatal(err)
		}
		conns[fl.Src] = true
		indexPackets += fl.Packets[0] + fl.Packets[1]
		if fl.Dst != n.nsIP+":8080" {
			t.Errorf("flow %s → %s: the client is not the opener", fl.Src, fl.Dst)
		}
		if fl.SrcProc.Comm != "curl" || fl.DstProc.Comm != "nginx" || fl.SrcProc.PID == 0 || fl.DstProc.PID == 0 ||
			fl.SrcProc.CgroupID == 0 || fl.DstProc.CgroupID == 0 || fl.SrcProc.Cgroup == "" {
			t.Errorf("flow %s → %s: processes %+v / %+v, want curl / nginx with their cgroups", fl.Src, fl.Dst, fl.SrcProc, fl.DstProc)
		}
	}
	resp.Body.Close()
	if len(conns) != requests {
		t.Errorf("%d connections to nginx in the flows, want %d", len(conns), requests)
	}

	resp = apiGet(t, base+"/v1/pcap?port=8080", token)
	pcap, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pcap: %d %v", resp.StatusCode, err)
	}
	path := filepath.Join(dir, "export.pcap")
	os.WriteFile(path, pcap, 0o644)
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "tcp.stream").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	streams := map[string]bool{}
	lines := strings.Fields(string(out))
	for _, s := range lines {
		streams[s] = true
	}
	if uint64(len(lines)) != indexPackets || len(streams) != requests || resp.Trailer.Get("Wirescope-Count") != strconv.Itoa(len(lines)) {
		t.Errorf("the PCAP holds %d packets in %d TCP streams (trailer %q); the flow index counts %d packets in %d connections",
			len(lines), len(streams), resp.Trailer.Get("Wirescope-Count"), indexPackets, requests)
	}

	// dissect --store reads the store while the agent writes it.
	cmd := exec.Command(wirescopeBinary(t), "dissect", "--store", store, "--from", "-5m")
	calls, err := cmd.Output()
	if err != nil {
		t.Fatalf("dissect --store: %v", err)
	}
	if got := strings.Count(string(calls), `"method":"GET"`); got != requests {
		t.Errorf("dissect --store: %d GET calls, want %d\n%s", got, requests, calls)
	}

	agent.Process.Signal(syscall.SIGTERM)
	if err := agent.Wait(); err != nil {
		t.Fatalf("agent: %v", err)
	}
	// mcp --store serves what the agent left.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(wirescopeBinary(t), nil, "mcp", "--store", store, "--data-dir", filepath.Join(dir, "mcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(ctx, t, c)
	text := toolText(ctx, t, c, "search_calls", map[string]any{"query": "GET", "limit": 50})
	if got := strings.Count(text, "GET /"); got != requests {
		t.Errorf("search_calls over mcp --store finds %d calls, want %d:\n%s", got, requests, text)
	}
}

// TestMCPIface: `wirescope mcp --iface` captures and serves what it
// captured, seeing new traffic as it comes.
func TestMCPIface(t *testing.T) {
	n := newNetns(t)
	n.startNginx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(wirescopeBinary(t), nil, "mcp", "--iface", n.hostIf, "--data-dir", t.TempDir(), "--refresh", "200ms")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(ctx, t, c)
	for round, want := range []int{3, 8} {
		for range want - []int{0, 3}[round] {
			if out, err := exec.Command("curl", "-s", "-o", "/dev/null", "http://"+n.nsIP+":8080/round"+strconv.Itoa(round)).CombinedOutput(); err != nil {
				t.Fatalf("curl: %v %s", err, out)
			}
		}
		// The server reads the growing store again at most every 200 ms:
		// wait until it has seen this round's calls, then count them.
		var text string
		defer func() {
			if t.Failed() {
				t.Logf("round %d: the last search_calls answer:\n%s", round, text)
			}
		}()
		waitFor(t, "round "+strconv.Itoa(round)+"'s calls", func() bool {
			res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "search_calls",
				Arguments: map[string]any{"query": "GET", "limit": 50}}})
			if err != nil {
				t.Fatal(err)
			}
			text = mcp.GetTextFromContent(res.Content[0])
			if res.IsError {
				// Before the first packet reaches the store.
				if !strings.HasPrefix(text, "nothing captured yet") {
					t.Fatalf("search_calls: %s", text)
				}
				return false
			}
			return strings.Count(text, "GET /round") >= want
		})
		got := strings.Count(text, "GET /round")
		if got != want {
			t.Errorf("round %d: search_calls finds %d calls, want %d:\n%s", round, got, want, text)
		}
	}
	if text := toolText(ctx, t, c, "capture_status", nil); !strings.Contains(text, "live: capturing on ["+n.hostIf+"]") {
		t.Errorf("capture_status:\n%s", text)
	}
}
