package main

import (
	"slices"
	"strings"
	"testing"
)

// TestParseTsharkStreams reads tshark's fields for packets holding several
// frames: statuses pair with the HEADERS frames in order, whatever frames
// come between.
func TestParseTsharkStreams(t *testing.T) {
	out := "7\t127.0.0.1\t40000\t4,1,1,0,0\t0,1,3,1,3\t200,404\n" +
		"9\t127.0.0.1\t40002\t0,1\t1,1\t200\n"
	got, err := parseTsharkStreams(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[streamKey]string{
		{"127.0.0.1:40000", 1}: "200",
		{"127.0.0.1:40000", 3}: "404",
		{"127.0.0.1:40002", 1}: "200",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}

	for _, bad := range []string{
		"7\t127.0.0.1\t40000\t1,1\t1,3\t200\n", // a HEADERS frame without status
		"7\t127.0.0.1\t40000\t1\t1\t200,200\n", // a status without HEADERS frame
		"7\t127.0.0.1\t40000\t1,0\t1\t200\n",   // types and ids out of step
		"7\t127.0.0.1\t40000\t1\t1\t200\n" + // the same stream answered twice
			"8\t127.0.0.1\t40000\t1\t1\t200\n",
	} {
		if _, err := parseTsharkStreams(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestCompareStreams names every stream the two readings differ on, in
// stream order.
func TestCompareStreams(t *testing.T) {
	tshark := map[streamKey]string{{"a:1", 1}: "200", {"a:1", 3}: "200", {"a:1", 5}: "200"}
	ws := map[streamKey]string{{"a:1", 1}: "200", {"a:1", 5}: "0 (no response)", {"a:1", 7}: "200"}
	got := compareStreams(tshark, ws)
	want := []string{
		"a:1 stream 3: tshark 200, no wirescope call",
		"a:1 stream 5: tshark 200, wirescope 0 (no response)",
		"a:1 stream 7: wirescope 200, no response in tshark",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseSummary reads the calls of each protocol from wirescope's
// summary.
func TestParseSummary(t *testing.T) {
	s, err := parseSummary("wirescope: 1 file(s), 10120 packets, 59670490 bytes in 416ms\n" +
		"  flows: tcp 10 (dissected: http2 10; undissected: 0)\n" +
		"  calls: http 3, http2 50000\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.packets != 10120 || s.calls["http2"] != 50000 || s.calls["http"] != 3 {
		t.Errorf("got %+v", s)
	}
}

// TestTLSCommands: the HTTPS workload gives both tools the key log beside
// the capture, and the table names them F and K.
func TestTLSCommands(t *testing.T) {
	var w *workload
	for _, x := range workloads(config{tlsCapture: "/c/tls.pcap"}, "/repo") {
		if x.key == "tls" {
			w = x
		}
	}
	if w == nil {
		t.Fatal("no tls workload")
	}
	cmds := benchCommands(w, "/bin/ws", 1)
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	wantNames := []string{
		"tshark -r F -o tls.keylog_file:K -q -z http,tree",
		"wirescope dissect --tls-keylog K F (jsonl)",
		"wirescope dissect --tls-keylog K -q F",
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("names %q, want %q", names, wantNames)
	}
	if got, want := strings.Join(cmds[0].argv, " "), "tshark -r /c/tls.pcap -o tls.keylog_file:/c/tls.pcap.keys -q -z http,tree"; got != want {
		t.Errorf("tshark argv %q, want %q", got, want)
	}
	if got, want := strings.Join(cmds[2].argv, " "), "/bin/ws dissect --tls-keylog /c/tls.pcap.keys -q /c/tls.pcap"; got != want {
		t.Errorf("wirescope argv %q, want %q", got, want)
	}
	// The others are as they were: no key log.
	for _, x := range workloads(config{}, "/repo") {
		if x.key == "http1" {
			if got := benchCommands(x, "/bin/ws", 1)[1].name; got != "wirescope dissect F (jsonl)" {
				t.Errorf("http1: %q", got)
			}
		}
	}
}
