package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off; master_process off; worker_processes 1; pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  server { listen %[2]s:8080; location / { return 200 "%[3]s"; } } }`, dir, n.nsIP, strings.Repeat("wirescope ", 300))
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.name, "nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "netns", "exec", n.name, "curl", "-s", "-o", "/dev/null", "http://"+n.nsIP+":8080/").Run() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx in %s did not start:\n%s", n.name, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startWaiting starts cmd and waits until its stderr has a line holding
// ready; the rest of stderr goes to the test log.
func startWaiting(t *testing.T, cmd *exec.Cmd, ready string) {
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
	case _, ok := <-lines:
		if !ok {
			t.Fatalf("%s exited before saying %q", cmd.Path, ready)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("%s did not say %q", cmd.Path, ready)
	}
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
	agent := exec.Command(bin, "agent", "--iface", n.hostIf, "--data-dir", store, "--segment-bytes", "65536", "--stats-every", "0")
	startWaiting(t, agent, "msg=capturing")

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
	time.Sleep(500 * time.Millisecond)

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
	agent := exec.Command(wirescopeBinary(t), "agent", "--iface", n.hostIf, "--data-dir", store, "--filter", "tcp port 8080", "--stats-every", "0")
	startWaiting(t, agent, "msg=capturing")
	for range 5 {
		if out, err := exec.Command("curl", "-s", "-o", "/dev/null", "http://"+n.nsIP+":8080/").CombinedOutput(); err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
	}
	exec.Command("bash", "-c", "for i in 1 2 3; do echo hello > /dev/udp/"+n.nsIP+"/5353; done").Run()
	time.Sleep(300 * time.Millisecond)
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
