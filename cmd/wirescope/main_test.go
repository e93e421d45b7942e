package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect/proto"
)

const (
	nginxPcap   = "../../dissect/http1/testdata/nginx.pcap"
	dnsmasqPcap = "../../dissect/dns/testdata/dnsmasq.pcap"
)

func runCmd(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCmd()
	var o, e bytes.Buffer
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return o.String(), e.String(), err
}

func parseCalls(t *testing.T, out string) []proto.Call {
	t.Helper()
	var calls []proto.Call
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c proto.Call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

func TestDissectJSONL(t *testing.T) {
	out, errOut, err := runCmd(t, "dissect", nginxPcap, dnsmasqPcap)
	if err != nil {
		t.Fatal(err)
	}
	calls := parseCalls(t, out)
	n := map[string]int{}
	for _, c := range calls {
		n[c.Proto]++
		if c.ID == "" || c.TS.IsZero() || !c.Src.IP.IsValid() || c.Dst.Port == 0 {
			t.Errorf("incomplete call %+v", c)
		}
	}
	if n["http"] != 29 || n["dns"] != 22 {
		t.Errorf("calls by protocol %v, want http 29 dns 22", n)
	}
	for _, want := range []string{"2 file(s)", "calls: http 29, dns 22", "unanswered: 1,"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("summary lacks %q:\n%s", want, errOut)
		}
	}
	// Field names are a contract.
	var raw map[string]any
	json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &raw)
	for _, k := range []string{"id", "proto", "ts", "latency_ns", "src", "dst", "method", "path", "status", "error", "request", "response", "extra"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("JSONL record lacks %q", k)
		}
	}
}

func TestDissectTableAndQuiet(t *testing.T) {
	out, _, err := runCmd(t, "dissect", "--format", "table", nginxPcap)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 30 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(out, "/search?q=shoes&page=2") {
		t.Errorf("table:\n%s", out)
	}
	out, errOut, err := runCmd(t, "dissect", "-q", nginxPcap)
	if err != nil || out != "" || !strings.Contains(errOut, "calls: http 29") {
		t.Errorf("quiet: err %v out %q summary %q", err, out, errOut)
	}
}

func TestDissectCluster(t *testing.T) {
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.json")
	os.WriteFile(cluster, []byte(`{"services":[{"name":"shop","namespace":"web","clusterIP":"10.96.0.10","selector":{"app":"nginx"}}],
	 "pods":[{"name":"nginx-7c4b8d9f6-m8wzt","namespace":"web","node":"node-b","ip":"127.0.0.2","labels":{"app":"nginx"}},
	         {"name":"curl-0","namespace":"tools","node":"node-a","ip":"127.0.0.1","labels":{"app":"curl"}}]}`), 0o644)
	out, _, err := runCmd(t, "dissect", "--cluster", cluster, nginxPcap)
	if err != nil {
		t.Fatal(err)
	}
	c := parseCalls(t, out)[0]
	if c.Src.Pod != "curl-0" || c.Src.Node != "node-a" || c.Dst.Pod != "nginx-7c4b8d9f6-m8wzt" || c.Dst.Service != "shop" || c.Dst.Namespace != "web" {
		t.Errorf("identities %+v → %+v", c.Src, c.Dst)
	}
	os.WriteFile(cluster, []byte(`{"pods":[{"name":"x","ip":"not-an-ip"}]}`), 0o644)
	if _, _, err := runCmd(t, "dissect", "--cluster", cluster, nginxPcap); err == nil || !strings.Contains(err.Error(), "not-an-ip") {
		t.Errorf("bad cluster file: %v", err)
	}
}

// writePcap writes synthetic packets to a pcap file.
func writePcap(t *testing.T, path string, pkts []capture.Packet) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for _, p := range pkts {
		w.WritePacket(gopacketCI(p), p.Data)
	}
}

func TestDissectFlowsAndDamage(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var pkts []capture.Packet
	c := synth.NewConn("10.0.0.2:40000", "10.0.0.9:7777", t0, func(p capture.Packet) { pkts = append(pkts, p) })
	c.Handshake()
	c.Send(true, []byte("\x00\x07\xfe\x01binary hello")) // bytes no dissector claims
	c.Send(false, []byte("\x00\x02ok"))
	c.Close()
	pkts = append(pkts, synth.Datagram(t0.Add(time.Second), "10.0.0.2:5000", "10.0.0.3:53",
		[]byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01")))
	path := filepath.Join(dir, "flows.pcap")
	writePcap(t, path, pkts)
	out, errOut, err := runCmd(t, "dissect", "--flows", path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, m["proto"].(string)+"/"+asString(m["kind"])+"/"+asString(m["error"])+asString(m["state"]))
	}
	if strings.Join(kinds, " ") != "dns//no response /flow/closed" {
		t.Errorf("records %v", kinds)
	}
	if !strings.Contains(errOut, "undissected: 1") {
		t.Errorf("summary:\n%s", errOut)
	}

	// A file cut in the middle of a record: the packets before it are
	// dissected and a warning names the offset.
	data, _ := os.ReadFile(path)
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, data[:len(data)-20], 0o644)
	_, errOut, err = runCmd(t, "dissect", cut)
	if err != nil || !strings.Contains(errOut, "warning: cut.pcap: stopped at byte offset") {
		t.Errorf("cut file: err %v summary %s", err, errOut)
	}
	// A file that is not a capture is an error.
	bad := filepath.Join(dir, "bad.pcap")
	os.WriteFile(bad, []byte("not a capture at all"), 0o644)
	if _, _, err := runCmd(t, "dissect", bad); err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng file") {
		t.Errorf("bad file: %v", err)
	}
	if _, _, err := runCmd(t, "dissect", "--format", "xml", path); err == nil {
		t.Error("--format xml accepted")
	}
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// TestBinary builds the command and runs it as a user would: exit status
// and the split between stdout (records) and stderr (summary).
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wirescope")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "dissect", dnsmasqPcap)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, e.String())
	}
	if n := strings.Count(o.String(), "\n"); n != 22 || !strings.Contains(e.String(), "calls: dns 22") {
		t.Errorf("%d lines, summary %s", n, e.String())
	}
	err := exec.Command(bin, "dissect", "/nonexistent.pcap").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("missing file: %v", err)
	}
}

func gopacketCI(p capture.Packet) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}
}
