package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
)

// netns is a network namespace joined to the root one by a veth pair:
// hostIf (hostIP, in the root namespace) ↔ nsIP inside.
type netns struct {
	name, hostIf string
	hostIP, nsIP string
}

// newNetns creates a namespace and veth pair, removed at cleanup. It
// skips the test where namespaces cannot be made (not root).
func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and AF_PACKET capture need root")
	}
	id := os.Getpid()%200 + 20
	n := &netns{name: fmt.Sprintf("wsagent%d", id), hostIf: fmt.Sprintf("wsa%d", id),
		hostIP: fmt.Sprintf("10.231.%d.1", id), nsIP: fmt.Sprintf("10.231.%d.2", id)}
	peer := fmt.Sprintf("wsb%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("ip", "netns", "del", n.name).Run() // a leftover of a killed run
	exec.Command("ip", "link", "del", n.hostIf).Run()
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.name).Run()
		exec.Command("ip", "link", "del", n.hostIf).Run()
	})
	run("ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", peer, "netns", n.name)
	// No IPv6 autoconfiguration: its packets come at random times after
	// the link is up, before or after a capture started, and the tests
	// compare captures that start at different moments.
	run("sysctl", "-qw", "net.ipv6.conf."+n.hostIf+".disable_ipv6=1")
	run("ip", "netns", "exec", n.name, "sysctl", "-qw", "net.ipv6.conf."+peer+".disable_ipv6=1")
	run("ip", "addr", "add", n.hostIP+"/24", "dev", n.hostIf)
	run("ip", "link", "set", n.hostIf, "up")
	run("ip", "netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/24", "dev", peer)
	run("ip", "netns", "exec", n.name, "ip", "link", "set", peer, "up")
	run("ip", "netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

// startNginx runs nginx inside the namespace on nsIP:8080, answering every
// request with a 3 KB body.
func (n *netns) startNginx(t *testing.T) {
	t.Helper()
	nginxIn(t, n.name, n.nsIP, strings.Repeat("wirescope ", 300))
}

// nginxIn runs nginx in network namespace ns on ip:8080 until the test
// ends, answering every request with body (nginx variables expand), and
// waits until it answers.
func nginxIn(t *testing.T, ns, ip, body string) {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server { listen %[2]s:8080; location / { return 200 "%[3]s"; } } }`, dir, ip, body)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "http://"+ip+":8080/").Run() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx in %s did not start:\n%s", ns, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWaiting starts cmd and waits until its stderr has a line holding
// ready, and returns that line; the rest of stderr goes to the test log.
func startWaiting(t *testing.T, cmd *exec.Cmd, ready string) string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			t.Log(filepath.Base(cmd.Path) + ": " + sc.Text())
			if !sent && strings.Contains(sc.Text(), ready) {
				lines <- sc.Text()
				sent = true
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("%s exited before saying %q", cmd.Path, ready)
		}
		return line
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not say %q", cmd.Path, ready)
	}
	return ""
}

// flowKey is a 5-tuple in the order of the packet.
type flowKey struct {
	src, dst netip.AddrPort
	proto    uint8
}

type flowSums struct{ packets, bytes uint64 }

// perFlow reads capture files and sums packets and wire bytes per
// direction of each flow.
func perFlow(t *testing.T, paths ...string) map[flowKey]flowSums {
	t.Helper()
	out := map[flowKey]flowSums{}
	dec := capture.NewDecoder()
	var d capture.Decoded
	for _, path := range paths {
		f, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		for {
			if err := f.Next(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			k := flowKey{}
			if dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d) == nil {
				k = flowKey{netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort), uint8(d.Proto)}
			}
			s := out[k]
			s.packets++
			s.bytes += uint64(p.Length)
			out[k] = s
		}
		if w := f.Warnings(); len(w) > 0 {
			t.Errorf("%s: %v", path, w)
		}
		f.Close()
	}
	return out
}

// TestAgentCapturesWhatTcpdumpSees: in a network namespace joined by a
// veth pair, curl talks to a real nginx while tcpdump and the agent both
// capture the host side of the pair. Every flow tcpdump saw is in the
// store with the same packets and bytes each way; the flow index agrees
// with the segments; tshark opens the segments.
func TestAgentCapturesWhatTcpdumpSees(t *testing.T) {
	n := newNetns(t)
	n.startNginx(t)
	bin := wirescopeBinary(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	tcpdumpFile := filepath.Join(dir, "tcpdump.pcap")

	tcpdump := exec.Command("tcpdump", "-i", n.hostIf, "-s", "0", "-U", "--immediate-mode", "-n", "-w", tcpdumpFile)
	startWaiting(t, tcpdump, "listening on")
	api := freePort(t)
	agent := exec.Command(bin, "agent", "--iface", n.hostIf, "--data-dir", store, "--segment-bytes", "65536", "--stats-every", "0",
		"--listen", api)
	agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN="+agentToken)
	startWaiting(t, agent, "msg=capturing")
	// Nothing crosses the pair until curl runs (no IPv6; the namespace's
	// own address is reached over its lo), so these are the counts before.
	iface0, stored0, tcpdump0 := ifacePackets(t, n.hostIf), agentCounts(t, api).stored, fileCount(tcpdumpFile)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := "http://" + n.nsIP + ":8080/"
	for i := range 40 {
		args := []string{"-s", "-o", "/dev/null", url}
		if i%4 == 0 { // a keep-alive connection with several requests
			args = append(args, "-o", "/dev/null", url+"a", "-o", "/dev/null", url+"b")
		}
		if out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	// A refused connection (RST) and some UDP.
	exec.CommandContext(ctx, "curl", "-s", "--max-time", "2", "http://"+n.nsIP+":9/").Run()
	exec.CommandContext(ctx, "bash", "-c", "for i in 1 2 3; do echo hello > /dev/udp/"+n.nsIP+"/5353; done").Run()
	// Every packet that crossed the pair is in tcpdump's file and the
	// agent's store, once the connections have ended.
	n.waitTCPDone(t)
	waitFor(t, "tcpdump and the agent to have every packet that crossed the pair", func() bool {
		crossed := ifacePackets(t, n.hostIf) - iface0
		return crossed > 0 && agentCounts(t, api).stored-stored0 == crossed && uint64(fileCount(tcpdumpFile)-tcpdump0) == crossed
	})

	tcpdump.Process.Signal(syscall.SIGINT)
	agent.Process.Signal(syscall.SIGTERM)
	if err := tcpdump.Wait(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	if err := agent.Wait(); err != nil {
		t.Fatalf("agent: %v", err)
	}

	s, err := segstore.Open(store, segstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	segs := s.Segments()
	var paths []string
	for _, g := range segs {
		paths = append(paths, g.Path)
	}
	want, got := perFlow(t, tcpdumpFile), perFlow(t, paths...)
	var pkts uint64
	for k, w := range want {
		pkts += w.packets
		if got[k] != w {
			t.Errorf("flow %v → %v (proto %d): tcpdump %+v, store %+v", k.src, k.dst, k.proto, w, got[k])
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("flow %v → %v (proto %d) in the store only: %+v", k.src, k.dst, k.proto, g)
		}
	}
	if pkts < 400 || len(segs) < 2 {
		t.Errorf("vacuous: %d packets in %d segments", pkts, len(segs))
	}
	// The flow index agrees with the segments, both directions summed
	// over segments.
	idx := map[flowKey]flowSums{}
	for _, fl := range allFlows(t, s) {
		if fl.Interface != n.hostIf {
			t.Errorf("flow %v: interface %q", fl.Src, fl.Interface)
		}
		for dir, k := range []flowKey{{fl.Src, fl.Dst, uint8(fl.Proto)}, {fl.Dst, fl.Src, uint8(fl.Proto)}} {
			if fl.Packets[dir] > 0 {
				v := idx[k]
				v.packets += fl.Packets[dir]
				v.bytes += fl.Bytes[dir]
				idx[k] = v
			}
		}
	}
	for k, w := range got {
		if k.src.IsValid() && idx[k] != w {
			t.Errorf("flow %v → %v: index %+v, segments %+v", k.src, k.dst, idx[k], w)
		}
	}
	for _, path := range paths {
		if out, err := exec.Command("tshark", "-r", path, "-c", "1").CombinedOutput(); err != nil {
			t.Errorf("tshark -r %s: %v\n%s", path, err, out)
		}
	}
	t.Logf("%d flows, %d packets seen by tcpdump; the store has them all in %d segments", len(want), pkts, len(segs))
}

// TestAgentFilter: a BPF filter runs in the kernel: only what it matches
// reaches the store.
func TestAgentFilter(t *testing.T) {
	n := newNetns(t)
	n.startNginx(t)
	store := filepath.Join(t.TempDir(), "store")
	api := freePort(t)
	agent := exec.Command(wirescopeBinary(t), "agent", "--iface", n.hostIf, "--data-dir", store, "--filter", "tcp port 8080", "--stats-every", "0",
		"--listen", api)
	agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN="+agentToken)
	startWaiting(t, agent, "msg=capturing")
	// The UDP goes first: sent, it has been through the kernel filter
	// before the first connection starts.
	exec.Command("bash", "-c", "for i in 1 2 3; do echo hello > /dev/udp/"+n.nsIP+"/5353; done").Run()
	for range 5 {
		if out, err := exec.Command("curl", "-s", "-o", "/dev/null", "http://"+n.nsIP+":8080/").CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	// Once the connections have ended, every packet the filter passed is
	// in the kernel's count; the agent has stored them all.
	n.waitTCPDone(t)
	waitFor(t, "the agent to store every packet the filter passed", func() bool {
		c := agentCounts(t, api)
		return c.kernel > 0 && c.stored == c.kernel
	})
	agent.Process.Signal(syscall.SIGTERM)
	if err := agent.Wait(); err != nil {
		t.Fatalf("agent: %v", err)
	}
	s, err := segstore.Open(store, segstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	flows := allFlows(t, s)
	for _, fl := range flows {
		if fl.Proto != 6 || fl.Dst.Port() != 8080 {
			t.Errorf("flow %v → %v (proto %d) passed the filter", fl.Src, fl.Dst, fl.Proto)
		}
	}
	if len(flows) != 5 {
		t.Errorf("%d flows stored, want the 5 connections to port 8080", len(flows))
	}
	if _, err := exec.Command(wirescopeBinary(t), "agent", "--iface", n.hostIf, "--data-dir", t.TempDir(), "--filter", "tcp port").CombinedOutput(); err == nil {
		t.Error("a filter that does not compile was accepted")
	}
}

func allFlows(t *testing.T, s *segstore.Store) []segstore.Flow {
	t.Helper()
	flows, err := s.Flows(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return flows
}

// TestAgentAPIBounded: the agent's API, as wirescope agent --listen serves
// it, cannot be held open: a client without the token trickling a body
// gets 401 at once and the connection ends; one with the token trickling
// a body is cut off at --body-timeout; connections over
// --max-conns-per-ip are closed at once.
func TestAgentAPIBounded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the agent captures with AF_PACKET: needs root")
	}
	const tok, perIP, bodyTimeout = agentToken, 3, 500 * time.Millisecond
	agent := exec.Command(wirescopeBinary(t), "agent", "--iface", "lo", "--data-dir", t.TempDir(), "--stats-every", "0",
		"--listen", "127.0.0.1:0", "--max-conns-per-ip", fmt.Sprint(perIP), "--body-timeout", bodyTimeout.String())
	agent.Env = append(os.Environ(), "WIRESCOPE_TOKEN="+tok)
	line := startWaiting(t, agent, "agent API listening")
	t.Cleanup(func() { agent.Process.Signal(syscall.SIGTERM); agent.Wait() })
	m := regexp.MustCompile(`url=http://(\S+)/v1/stats`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no address in %q", line)
	}
	addr := m[1]
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// post sends a snapshot request's header and trickles its body, one
	// byte every 100 ms, until the connection fails.
	post := func(c net.Conn, auth string) {
		fmt.Fprintf(c, "POST /v1/snapshots HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 1000\r\n\r\n", addr, auth)
		go func() {
			for {
				if _, err := io.WriteString(c, " "); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond) // the trickle's pace, not synchronization
			}
		}()
	}
	answer := func(c net.Conn) (*http.Response, time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return resp, time.Since(start)
	}
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, c)
		ne, ok := err.(net.Error)
		return !ok || !ne.Timeout()
	}

	c := dial()
	post(c, "")
	if resp, took := answer(c); resp.StatusCode != http.StatusUnauthorized || took > time.Second {
		t.Errorf("without the token: %s after %v", resp.Status, took)
	}
	if !closed(c) {
		t.Error("without the token: the connection stayed open")
	}

	c = dial()
	// Timed from before the request is sent: the server's deadline starts
	// when its headers arrive, after this (timed from after post, the
	// answer came 0.6 ms "early" once).
	sent := time.Now()
	post(c, "Authorization: Bearer "+tok+"\r\n")
	resp, _ := answer(c)
	took := time.Since(sent)
	if resp.StatusCode != http.StatusBadRequest || took < bodyTimeout || took > bodyTimeout+2*time.Second {
		t.Errorf("with the token, a trickled body: %s after %v", resp.Status, took)
	}
	if !closed(c) {
		t.Error("with the token, a trickled body: the connection stayed open")
	}
	t.Logf("a trickled body cut off after %v", took.Round(time.Millisecond))

	// perIP connections are served; one more is closed at once.
	var held []net.Conn
	for range perIP {
		c := dial()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		if resp, _ := answer(c); resp.StatusCode != http.StatusOK {
			t.Errorf("connection under the cap: %s", resp.Status)
		}
		held = append(held, c)
	}
	over := dial()
	fmt.Fprintf(over, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(over), nil); err == nil {
		t.Errorf("connection %d from one address: %s", perIP+1, resp.Status)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection %d from one address: neither served nor closed", perIP+1)
	}
	_ = held
}

const agentToken = "agent-test-token"

// waitFor polls cond until it holds, failing the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ifacePackets is the kernel's count of packets through an interface, both
// ways.
func ifacePackets(t *testing.T, iface string) uint64 {
	t.Helper()
	var sum uint64
	for _, dir := range []string{"rx", "tx"} {
		b, err := os.ReadFile("/sys/class/net/" + iface + "/statistics/" + dir + "_packets")
		if err != nil {
			t.Fatal(err)
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}

// agentCounts asks the agent's API (at addr, token agentToken) what the
// kernel passed to its rings and what it stored.
func agentCounts(t *testing.T, addr string) (c struct{ kernel, stored uint64 }) {
	t.Helper()
	resp := apiGet(t, "http://"+addr+"/v1/stats", agentToken)
	defer resp.Body.Close()
	var st struct {
		Interfaces []struct{ Packets uint64 }
		Store      struct{ Packets uint64 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("/v1/stats: %s: %v", resp.Status, err)
	}
	for _, i := range st.Interfaces {
		c.kernel += i.Packets
	}
	c.stored = st.Store.Packets
	return c
}

// fileCount counts the whole packets in a capture file being written.
func fileCount(path string) int {
	f, err := capture.OpenFile(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var p capture.Packet
	n := 0
	for f.Next(&p) == nil {
		n++
	}
	return n
}

// waitTCPDone waits until no TCP connection between the host and the
// namespace is still open or closing: every one has ended (TIME-WAIT on
// the side that closed first, gone on the other), so all their packets
// have crossed the pair.
func (n *netns) waitTCPDone(t *testing.T) {
	t.Helper()
	waitFor(t, "the TCP connections to end", func() bool {
		for _, ns := range []string{"", n.name} {
			args := []string{"ss", "-Htan"}
			if ns != "" {
				args = append([]string{"ip", "netns", "exec", ns}, args...)
			}
			out, err := exec.Command(args[0], args[1:]...).Output()
			if err != nil {
				t.Fatalf("%s: %v", strings.Join(args, " "), err)
			}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) < 5 || f[0] == "LISTEN" || f[0] == "TIME-WAIT" {
					continue
				}
				if strings.HasPrefix(f[3], n.nsIP+":") || strings.HasPrefix(f[4], n.nsIP+":") {
					return false
				}
			}
		}
		return true
	})
}
