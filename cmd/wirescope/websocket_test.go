package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestWebSocketRecorded records a real WebSocket exchange — the ws
// server and client from npm (test/mcpclients/ws-echo.mjs), permessage-
// deflate on every message, a fragmented message, ping and pong, a close —
// with tcpdump on loopback, and checks `wirescope dissect` against tshark on
// that capture: the same messages, in the same order, from the same sides
// (tshark's frames, fragments joined into their message), and the texts the
// client sent, inflated, in the bodies.
func TestWebSocketRecorded(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("capturing on loopback needs root")
	}
	dir := mcpClients(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		t.Fatal("ws is not installed in test/mcpclients: `make test` installs it (make npm-deps)")
	}
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make deps installs it", tool)
		}
	}
	ctx := clientsContext(t, 2*time.Minute)
	_, port, _ := strings.Cut(freePort(t), ":")
	pcap := filepath.Join(t.TempDir(), "ws.pcap")
	// -Z root: tcpdump would drop to its own user, who cannot write into
	// the test's directory; --immediate-mode: packets are written as they
	// come, not when a ring block fills (a SIGINT would lose the block).
	dump := exec.Command("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-Z", "root", "-w", pcap, "tcp port "+port)
	dump.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	startWaiting(t, dump, "listening on")
	runClientScript(t, ctx, dir, "node", "ws-echo.mjs", port)
	time.Sleep(200 * time.Millisecond) // the last packets reach tcpdump
	dump.Process.Signal(syscall.SIGINT)
	dump.Wait()

	// tshark's frames, fragments joined: one line per message.
	// The port is a random one: tell tshark it carries HTTP (it follows
	// the upgrade from there).
	out, err := exec.Command("tshark", "-r", pcap, "-d", "tcp.port=="+port+",http", "-Y", "websocket", "-T", "fields", "-e", "websocket.fin",
		"-e", "websocket.opcode", "-e", "websocket.mask", "-E", "occurrence=a", "-E", "aggregator=;").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	names := map[string]string{"1": "text", "2": "binary", "8": "close", "9": "ping", "10": "pong"}
	var want []string
	open := map[string]string{} // side → opcode of a message still fragmented
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			t.Fatalf("tshark's line %q: want fin, opcode and mask", line)
		}
		fins, ops, masks := strings.Split(cols[0], ";"), strings.Split(cols[1], ";"), strings.Split(cols[2], ";")
		for i := range fins { // several frames may share a packet
			from := map[string]string{"1": "client", "0": "server"}[masks[i]]
			op := ops[i]
			switch {
			case op == "8" || op == "9" || op == "10": // control frames: messages of their own
			case fins[i] == "0": // a fragment: its message goes on
				if op != "0" {
					open[from] = op
				}
				continue
			case op == "0": // the last fragment
				op = open[from]
				delete(open, from)
			}
			want = append(want, names[op]+" from "+from)
		}
	}
	if len(want) < 12 {
		t.Fatalf("tshark sees %d WebSocket messages: the exchange did not happen (%q)", len(want), out)
	}

	stdout, _, err := runCmd(t, "dissect", pcap)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	texts := map[string][]string{} // by side
	for _, c := range parseCalls(t, stdout) {
		if c.Proto != "websocket" {
			continue
		}
		got = append(got, fmt.Sprintf("%s from %v", c.Method, c.Extra.Get("from")))
		if c.Path != "/live?room=7" || !c.OneWay || c.Error != "" {
			t.Errorf("message %s: path %q one-way %v error %q", c.Method, c.Path, c.OneWay, c.Error)
		}
		switch c.Method {
		case "text":
			if c.Extra.Get("compressed") != true {
				t.Errorf("text message %q not marked compressed (ws compresses every message here)", c.Request.Body+c.Response.Body)
			}
			from := fmt.Sprint(c.Extra.Get("from"))
			texts[from] = append(texts[from], c.Request.Body+c.Response.Body)
		case "close":
			if c.Status != "1000" || c.Extra.Get("reason") != "done" && c.Extra.Get("from") == "client" {
				t.Errorf("close: status %q reason %v", c.Status, c.Extra.Get("reason"))
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("messages:\n%s\ntshark's (fragments joined):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The texts the client sent, and the server's echoes, each side in
	// order: inflated, with the context of the messages before them.
	wantTexts := []string{"hello wirescope 0", "hello wirescope 1", "hello wirescope 2", "fragment one, fragment two"}
	for _, side := range []string{"client", "server"} {
		if !slices.Equal(texts[side], wantTexts) {
			t.Errorf("%s's texts %q, want %q", side, texts[side], wantTexts)
		}
	}
}
