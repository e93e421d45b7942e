package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
)

// TestICMPRecorded records real ICMP on loopback — ping over IPv4 and
// IPv6, and a DNS query (dig) to a UDP port nobody listens on, which the
// kernel answers with an ICMP port unreachable — and checks the dissection
// against ping's own count of replies and against tshark's reading of the
// same capture: an echo call per request with status reply, the error a
// one-way record naming the flow it quotes, the UDP flow refused with the
// ICMP error noted, and the DNS query's "no response" saying why.
func TestICMPRecorded(t *testing.T) {
	needRecording(t, "ping", "dig")
	ctx := clientsContext(t, time.Minute)
	stop := startCaptureFilter(t, "icmp or icmp6 or (udp and host 127.0.0.60)")
	ping := func(args ...string) int {
		out, err := exec.CommandContext(ctx, "ping", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ping %v: %v\n%s", args, err, out)
		}
		m := regexp.MustCompile(`(\d+) received`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("ping's output: %s", out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	replies := ping("-c", "5", "-i", "0.2", "127.0.0.60")
	replies += ping("-6", "-c", "3", "-i", "0.2", "::1")
	// Nobody listens on 127.0.0.60:9: the kernel answers ICMP port
	// unreachable and dig gives up.
	out, _ := exec.CommandContext(ctx, "dig", "@127.0.0.60", "-p", "9", "+tries=1", "+time=1", "example.com").CombinedOutput()
	if !strings.Contains(string(out), "connection refused") && !strings.Contains(string(out), "timed out") && !strings.Contains(string(out), "no servers could be reached") {
		t.Logf("dig said: %s", out)
	}
	pcap := stop()

	stdout, stderr, err := runCmd(t, "dissect", "--flows", pcap)
	if err != nil {
		t.Fatalf("dissect: %v\n%s", err, stderr)
	}
	var echoes, unreachable int
	var dnsError, flowState, flowICMP string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var r struct {
			Kind      string `json:"kind"`
			Proto     string `json:"proto"`
			Transport string `json:"transport"`
			Method    string `json:"method"`
			Path      string `json:"path"`
			Status    string `json:"status"`
			Error     string `json:"error"`
			OneWay    bool   `json:"one_way"`
			Latency   int64  `json:"latency_ns"`
			State     string `json:"state"`
			ICMP      string `json:"icmp"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		switch {
		case r.Kind == "flow":
			if r.Transport == "udp" {
				flowState, flowICMP = r.State, r.ICMP
			}
		case r.Proto == "icmp" && r.Method == "echo":
			if r.Status != "reply" || r.Error != "" || r.Latency <= 0 || (r.Path != "127.0.0.60" && r.Path != "::1") {
				t.Errorf("echo %q: %q %q latency %d", r.Path, r.Status, r.Error, r.Latency)
			}
			echoes++
		case r.Proto == "icmp" && r.Method == "destination-unreachable":
			if r.Status != "port unreachable" || r.Path != "udp 127.0.0.60:9" || !r.OneWay {
				t.Errorf("unreachable: %+v", r)
			}
			unreachable++
		case r.Proto == "dns":
			dnsError = r.Error
		default:
			t.Errorf("a record %s", line)
		}
	}
	if echoes != replies {
		t.Errorf("%d echo calls, ping counted %d replies", echoes, replies)
	}
	if unreachable != 1 {
		t.Errorf("%d port unreachable records, want 1", unreachable)
	}
	if flowState != "refused" || !strings.HasPrefix(flowICMP, "port unreachable from 127.0.0.60") {
		t.Errorf("the DNS flow: state %q, icmp %q", flowState, flowICMP)
	}
	if !strings.HasPrefix(dnsError, "no response: ICMP port unreachable") {
		t.Errorf("the DNS query's error %q", dnsError)
	}

	// tshark: as many echo requests, replies and port unreachables.
	tout, err := exec.Command("tshark", "-r", pcap, "-Y", "icmp or icmpv6", "-T", "fields", "-e", "icmp.type", "-e", "icmpv6.type", "-e", "icmp.code").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	n := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(tout)), "\n") {
		n[strings.Join(strings.Fields(l), " ")]++
	}
	if n["8 0"]+n["128"] != echoes || n["0 0"]+n["129"] != echoes || n["3 3"] != unreachable {
		t.Errorf("tshark reads %v; wirescope %d echoes, %d unreachable", n, echoes, unreachable)
	}

	// An assistant asking list_flows after dissecting reads why the UDP
	// flow failed.
	mctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.NewStdioMCPClient(wirescopeBinary(t), nil, "mcp", "--data-dir", t.TempDir(), "--pcap", pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	initialize(mctx, t, c)
	toolText(mctx, t, c, "dissect", nil)
	flows := toolText(mctx, t, c, "list_flows", map[string]any{"state": "refused", "limit": 10})
	if !strings.Contains(flows, "127.0.0.60:9") || !strings.Contains(flows, "refused: ICMP port unreachable from 127.0.0.60") {
		t.Errorf("list_flows does not say the DNS flow was refused by ICMP:\n%s", flows)
	}
}
