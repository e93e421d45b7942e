package server_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/server/workspace"
)

// firstCount reads the number an answer's first line begins with ("20
// calls in …", "3 calls match …").
func firstCount(t *testing.T, text string) int {
	t.Helper()
	m := regexp.MustCompile(`^([\d,]+) calls? `).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no count at the start of:\n%s", text)
	}
	n, err := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAnswersFollowNewCalls: search_calls and summarize_traffic keep their
// answers to a question while the index stays as it is (the same text,
// from memory), and answer afresh as soon as calls are added to it: a
// client over streamable HTTP asks the same questions before and after
// calls are indexed, and sees them.
func TestAnswersFollowNewCalls(t *testing.T) {
	path := filepath.Join(t.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 10, Requests: 2}); err != nil {
		t.Fatal(err)
	}
	ws := openWorkspace(t, path)
	c, err := httpClient(t, startHub(t, ws, 0), token, true)
	if err != nil {
		t.Fatal(err)
	}
	questions := []struct {
		tool string
		args map[string]any
	}{
		{"summarize_traffic", map[string]any{}},
		{"summarize_traffic", map[string]any{"group_by": "status"}},
		{"search_calls", map[string]any{"query": "outcome:server_error"}},
		{"search_calls", map[string]any{}},
	}
	ask := func() []string {
		var out []string
		for _, q := range questions {
			out = append(out, mustCall(t, c, q.tool, q.args))
		}
		return out
	}
	ask() // dissects the capture
	before := ask()
	if again := ask(); strings.Join(again, "\n--\n") != strings.Join(before, "\n--\n") {
		t.Fatalf("the same questions of the same index answered otherwise:\n%s\n--- then:\n%s", before, again)
	}
	if n := firstCount(t, before[0]); n != 20 {
		t.Fatalf("summarize_traffic counts %d calls, want 20:\n%s", n, before[0])
	}

	// Ten 503s, a second apart, inside the capture's time range.
	first, _ := ws.Bounds()
	var added []*proto.Call
	for i := range 10 {
		added = append(added, &proto.Call{ID: fmt.Sprintf("added-%02d", i), Proto: "http",
			TS: first.Add(time.Duration(i) * time.Second), LatencyNS: int64(time.Millisecond),
			Src:    proto.Endpoint{IP: netip.MustParseAddr("10.1.9.9"), Port: uint16(40000 + i)},
			Dst:    proto.Endpoint{IP: netip.MustParseAddr("10.0.0.80"), Port: 80},
			Method: "GET", Path: "/api/added", Status: "503"})
	}
	if err := ws.Index().Add(t.Context(), added); err != nil {
		t.Fatal(err)
	}
	after := ask()
	if n := firstCount(t, after[0]); n != 30 {
		t.Errorf("after 10 calls were added, summarize_traffic counts %d calls, want 30:\n%s", n, after[0])
	}
	if !strings.Contains(after[0], "/api/added") {
		t.Errorf("after the calls were added, summarize_traffic shows no /api/added:\n%s", after[0])
	}
	if !strings.Contains(after[1], "503: ") || after[1] == before[1] {
		t.Errorf("summarize_traffic by status did not change:\n%s\n--- before:\n%s", after[1], before[1])
	}
	if b, a := firstCount(t, before[2]), firstCount(t, after[2]); a != b+10 {
		t.Errorf("search_calls outcome:server_error finds %d calls after 10 were added, %d before", a, b)
	}
	if b, a := firstCount(t, before[3]), firstCount(t, after[3]); a != b+10 {
		t.Errorf("search_calls finds %d calls after 10 were added, %d before", a, b)
	}
}

// TestAnswersFollowAGrowingCapture: a capture file still being written is
// read again before a tool call (a Growing workspace), and the same
// summary asked before and after it grew counts what it holds each time.
func TestAnswersFollowAGrowingCapture(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "open.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pw, err := capturetest.NewPCAPWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	end := capturetest.Load{Conns: 3, Requests: 2, Start: t0}.Emit(pw.Emit)
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	list := func() ([]string, error) { return []string{path}, nil }
	g, err := workspace.OpenGrowing(workspace.Options{Dir: filepath.Join(dir, "ws")}, "a growing file", source.NewListed("a growing file", list, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c, err := httpClient(t, startHub(t, g, 0), token, true)
	if err != nil {
		t.Fatal(err)
	}
	// An absolute window, the same text before and after: only the data
	// under it changes.
	args := map[string]any{"from": t0.Format(time.RFC3339), "to": t0.Add(time.Hour).Format(time.RFC3339)}
	for range 2 {
		if text := mustCall(t, c, "summarize_traffic", args); firstCount(t, text) != 6 {
			t.Fatalf("the file's first part: want 6 calls:\n%s", text)
		}
	}
	capturetest.Load{Conns: 4, Requests: 2, Start: end.Add(time.Second)}.Emit(pw.Emit)
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	if text := mustCall(t, c, "summarize_traffic", args); firstCount(t, text) != 14 {
		t.Errorf("after the file grew: want 14 calls:\n%s", text)
	}
	if text := mustCall(t, c, "search_calls", args); firstCount(t, text) != 14 {
		t.Errorf("search_calls after the file grew: want 14 calls:\n%s", text)
	}
}
