package workspace_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
	"github.com/wirescope/wirescope/index"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
	"github.com/wirescope/wirescope/tools"
)

// testAgent is a real agent API over a real segment store, served on a
// loopback port that can be stopped and served again.
type testAgent struct {
	t     *testing.T
	node  string
	store *segstore.Store
	addr  string
	srv   *http.Server
}

const agentToken = "agent-test-token"

func startAgent(t *testing.T, node string) *testAgent {
	t.Helper()
	return startAgentWith(t, node, segstore.Options{})
}

func startAgentWith(t *testing.T, node string, o segstore.Options) *testAgent {
	t.Helper()
	store, err := segstore.Open(filepath.Join(t.TempDir(), node), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := &testAgent{t: t, node: node, store: store}
	a.serve()
	t.Cleanup(a.stop)
	return a
}

func (a *testAgent) serve() {
	a.t.Helper()
	h, err := agentapi.Handler(agentapi.Options{Store: a.store, Token: agentToken, Node: a.node})
	if err != nil {
		a.t.Fatal(err)
	}
	addr := a.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		a.t.Fatal(err)
	}
	a.addr = l.Addr().String()
	a.srv = &http.Server{Handler: h}
	go a.srv.Serve(l)
}

func (a *testAgent) stop() {
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

func (a *testAgent) url() string { return "http://" + a.addr }

// call writes one HTTP call from client to server as this node captured it.
func (a *testAgent) call(client, server string, at time.Time, path string, status int) {
	a.t.Helper()
	var pkts []capture.Packet
	c := capturetest.NewConn(client, server, at, func(p capture.Packet) {
		p.Data = slices.Clone(p.Data)
		pkts = append(pkts, p)
	})
	c.Handshake()
	c.Send(true, fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: checkout\r\n\r\n", path))
	body := "ok"
	c.Send(false, fmt.Appendf(nil, "HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body))
	c.Close()
	for i := range pkts {
		if err := a.store.Write(&pkts[i], "eth0"); err != nil {
			a.t.Fatal(err)
		}
	}
}

// shopIdentity names the client pod on node-a, the server pod on node-b
// and the Service in front of it.
func shopIdentity(t *testing.T) *identity.Static {
	t.Helper()
	id, err := identity.New(identity.ClusterFile{
		Services: []identity.Service{{Name: "checkout", Namespace: "shop", ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "checkout"}}},
		Pods: []identity.Pod{
			{Name: "frontend-6d9f7c8b5-abcde", Namespace: "shop", Node: "node-a", IP: "10.244.1.5", Labels: map[string]string{"app": "frontend"}},
			{Name: "checkout-7c4b8d9f6-m8wzt", Namespace: "shop", Node: "node-b", IP: "10.244.2.7", Labels: map[string]string{"app": "checkout"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAgentsFanOut: two agents on two nodes both capture the calls of a
// client pod on node-a to a server pod on node-b, node-a addressed to the
// Service's cluster IP (before DNAT), node-b to the pod. The hub, reading
// both over the agent API, counts each call once, with the pod as the
// destination, the Service's address as via, both nodes as capture
// points; a node whose agent stops is named in every answer as missing
// (and its calls are not there), and comes back when the agent does.
func TestAgentsFanOut(t *testing.T) {
	a, b := startAgent(t, "node-a"), startAgent(t, "node-b")
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	const calls = 12
	for i := range calls {
		at := t0.Add(time.Duration(i) * time.Second)
		client := fmt.Sprintf("10.244.1.5:%d", 40000+i)
		path := fmt.Sprintf("/api/orders/%d", i)
		status := 200
		if i%4 == 0 {
			status = 503
		}
		a.call(client, "10.96.0.10:80", at, path, status)
		b.call(client, "10.244.2.7:8080", at.Add(700*time.Microsecond), path, status)
	}
	// A call only node-b saw (from a host outside the cluster).
	b.call("192.168.1.9:50000", "10.244.2.7:8080", t0.Add(30*time.Second), "/healthz", 200)

	id := shopIdentity(t)
	fan := source.NewFanout(source.FanoutOptions{
		Discover: func(context.Context) ([]string, error) { return []string{a.url(), b.url()}, nil },
		New: func(url string) (source.Source, error) {
			return agentapi.NewClient(agentapi.ClientOptions{URL: url, Token: agentToken})
		},
		Timeout: 2 * time.Second,
	})
	g, err := workspace.OpenGrowing(workspace.Options{Dir: t.TempDir(), Identity: id}, "two agents", fan, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hold := holder(t, g)
	hold()
	res, err := g.Dissect(ctx, time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls["http"] != calls+1 || res.Merged != calls {
		t.Errorf("dissected %v calls, %d merged; want %d http calls, %d merged", res.Calls, res.Merged, calls+1, calls)
	}
	all, err := g.Index().Search(ctx, index.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != calls+1 {
		t.Fatalf("the index holds %d calls, want %d (each seen on two nodes counted once)", all.Total, calls+1)
	}
	for _, c := range all.Calls {
		if c.Path == "/healthz" {
			if !slices.Equal(c.CapturedOn, []string{"node-b"}) || c.Via.IsValid() || c.Merged != 0 {
				t.Errorf("the call node-b alone saw: captured on %v, via %v, merged %d", c.CapturedOn, c.Via, c.Merged)
			}
			continue
		}
		if c.Dst.Pod != "checkout-7c4b8d9f6-m8wzt" || c.Dst.Port != 8080 || c.Src.Pod != "frontend-6d9f7c8b5-abcde" ||
			c.Via.String() != "10.96.0.10:80" || !slices.Equal(c.CapturedOn, []string{"node-a", "node-b"}) || c.Merged != 1 ||
			c.Dst.Service != "checkout" || c.Src.Node != "node-a" || c.Dst.Node != "node-b" {
			t.Errorf("merged call %s %s: src %+v dst %+v via %v captured on %v merged %d", c.Method, c.Path, c.Src, c.Dst, c.Via, c.CapturedOn, c.Merged)
		}
	}
	st, err := g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, s := range st.Sources {
		if s.Kind != "agent" || s.State != "up" || s.LastContact.IsZero() || s.Packets == 0 {
			t.Errorf("source %+v: want an agent, up, contacted, with packets", s)
		}
		nodes = append(nodes, s.Node)
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"node-a", "node-b"}) {
		t.Errorf("sources name the nodes %v", nodes)
	}
	if m := g.Missing(); len(m) != 0 {
		t.Errorf("missing %v with both agents up", m)
	}

	// node-b's agent stops: answers go on from node-a, and say node-b is
	// missing.
	b.stop()
	hold()
	missing := g.Missing()
	if len(missing) != 1 || !strings.HasPrefix(missing[0], "node-b unreachable since") {
		t.Errorf("missing %q, want node-b unreachable", missing)
	}
	st, err = g.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range st.Sources {
		states[s.Name] = s.State
		if s.State == "unreachable" && (s.Since.IsZero() || s.Error == "") {
			t.Errorf("unreachable source %+v: want since and error", s)
		}
	}
	if states["node-a"] != "up" || states["node-b"] != "unreachable" {
		t.Errorf("states %v", states)
	}
	if _, err := g.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	page, err := g.Index().Search(ctx, index.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != calls {
		t.Errorf("with node-b down, %d calls; want node-a's %d", page.Total, calls)
	}
	for _, c := range page.Calls {
		if !slices.Equal(c.CapturedOn, []string{"node-a"}) {
			t.Errorf("with node-b down, a call captured on %v", c.CapturedOn)
		}
	}

	// It comes back on the same address: all is as before.
	b.serve()
	hold()
	if m := g.Missing(); len(m) != 0 {
		t.Errorf("missing %v after node-b came back", m)
	}
	if _, err := g.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	page, err = g.Index().Search(ctx, index.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != calls+1 {
		t.Errorf("after node-b came back, %d calls, want %d", page.Total, calls+1)
	}
}

// TestAgentSnapshots: a snapshot made with a filter on two agents keeps
// the window's calls (seen on both nodes, counted once) after retention
// deleted them from the rolling stores, lists with its nodes and filter,
// and goes when deleted.
func TestAgentSnapshots(t *testing.T) {
	o := segstore.Options{SegmentBytes: 32 << 10, MaxBytes: 256 << 10}
	a, b := startAgentWith(t, "node-a", o), startAgentWith(t, "node-b", o)
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	const calls = 10
	for i := range calls {
		at := t0.Add(time.Duration(i) * time.Second)
		client := fmt.Sprintf("10.244.1.5:%d", 41000+i)
		a.call(client, "10.96.0.10:80", at, fmt.Sprintf("/api/pay/%d", i), 500)
		b.call(client, "10.244.2.7:8080", at.Add(time.Millisecond), fmt.Sprintf("/api/pay/%d", i), 500)
	}
	// Another client in the window, which the filter leaves out.
	a.call("10.244.1.9:42000", "10.96.0.10:80", t0.Add(20*time.Second), "/other", 200)
	b.call("10.244.1.9:42000", "10.244.2.7:8080", t0.Add(20*time.Second), "/other", 200)

	fan := source.NewFanout(source.FanoutOptions{
		Discover: func(context.Context) ([]string, error) { return []string{a.url(), b.url()}, nil },
		New: func(url string) (source.Source, error) {
			return agentapi.NewClient(agentapi.ClientOptions{URL: url, Token: agentToken})
		},
	})
	g, err := workspace.OpenGrowing(workspace.Options{Dir: t.TempDir()}, "two agents", fan, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hold := holder(t, g)
	hold()
	window := [2]time.Time{t0, t0.Add(time.Minute)}
	f := tools.Filter{IP: netip.MustParseAddr("10.244.1.5")}
	snap, err := g.CreateSnapshot(ctx, "incident-1", window[0], window[1], f)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Parts) != 2 || snap.Flows != 2*calls || snap.Filter != f {
		t.Errorf("snapshot %+v: want 2 parts, %d flows, the filter", snap, 2*calls)
	}
	if _, err := g.CreateSnapshot(ctx, "incident-1", window[0], window[1], f); err == nil {
		t.Error("a second snapshot of the same name was made")
	}
	for _, bad := range []string{"../x", "", "a/b", "-x"} {
		if _, err := g.CreateSnapshot(ctx, bad, window[0], window[1], tools.Filter{}); err == nil {
			t.Errorf("snapshot name %q accepted", bad)
		}
	}

	// Ten minutes later, traffic enough for retention to delete the
	// window's segments on both nodes.
	later := t0.Add(10 * time.Minute)
	for i := range 400 {
		at := later.Add(time.Duration(i) * 100 * time.Millisecond)
		client := fmt.Sprintf("10.244.1.7:%d", 20000+i)
		a.call(client, "10.96.0.10:80", at, "/later", 200)
		b.call(client, "10.244.2.7:8080", at, "/later", 200)
	}
	// Segments are closed and deleted by the stores in the background:
	// wait for it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hold()
		first, _ := g.Bounds()
		if first.After(window[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention kept the window: the data begins at %v", first)
		}
	}

	sb, err := g.OpenSnapshot(ctx, "incident-1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := sb.Dissect(ctx, time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls["http"] != calls || res.Merged != calls {
		t.Errorf("the snapshot dissected %v calls, %d merged; want %d, %d merged", res.Calls, res.Merged, calls, calls)
	}
	page, err := sb.Index().Search(ctx, index.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != calls {
		t.Fatalf("the snapshot holds %d calls, want %d", page.Total, calls)
	}
	for _, c := range page.Calls {
		if !strings.HasPrefix(c.Path, "/api/pay/") || c.Status != "500" || !slices.Equal(c.CapturedOn, []string{"node-a", "node-b"}) {
			t.Errorf("snapshot call %s %s %s captured on %v", c.Method, c.Path, c.Status, c.CapturedOn)
		}
	}

	list, err := g.ListSnapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "incident-1" || len(list[0].Parts) != 2 || list[0].Filter != f || list[0].Flows != 2*calls {
		t.Errorf("list_snapshots: %+v", list)
	}
	if err := g.DeleteSnapshot(ctx, "incident-1"); err != nil {
		t.Fatal(err)
	}
	if list, err := g.ListSnapshots(ctx); err != nil || len(list) != 0 {
		t.Errorf("after delete: %+v, %v", list, err)
	}
	if _, err := g.OpenSnapshot(ctx, "incident-1"); err == nil {
		t.Error("a deleted snapshot opened")
	}
}

// holder returns a function that holds g as a tool call does, releasing
// what it held before. It closes g when the test ends, after releasing
// what it holds last (Close waits for a hold: a test that fails while
// holding must not hang).
func holder(t *testing.T, g *workspace.Growing) func() {
	t.Cleanup(func() { g.Close() }) // cleanups run last first: after the release below
	var held func()
	t.Cleanup(func() {
		if held != nil {
			held()
		}
	})
	return func() {
		t.Helper()
		if held != nil {
			held()
			held = nil
		}
		release, err := g.Hold()
		if err != nil {
			t.Fatalf("a question failed: %v", err)
		}
		held = release
	}
}

// TestAgentsMergeInPieces: a window of two nodes holding more packets than
// MergePackets is dissected in pieces of a minute, and copies captured on
// either side of a piece's end (node-b stamps them 1.5 s after node-a)
// are still merged: every call is counted once.
func TestAgentsMergeInPieces(t *testing.T) {
	a, b := startAgent(t, "node-a"), startAgent(t, "node-b")
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	const calls = 120 // one every 2 s over 4 minutes, node-b's 1.5 s later
	for i := range calls {
		at := t0.Add(time.Second + time.Duration(2*i)*time.Second)
		client := fmt.Sprintf("10.244.1.5:%d", 40000+i)
		path := fmt.Sprintf("/api/orders/%d", i)
		a.call(client, "10.96.0.10:80", at, path, 200)
		b.call(client, "10.244.2.7:8080", at.Add(1500*time.Millisecond), path, 200)
	}
	// The data begins at t0, so pieces end on whole minutes: node-a's
	// call at 0:59 is node-b's at 1:00.5, in the next piece.
	a.call("192.168.1.9:50000", "10.244.1.5:8080", t0, "/healthz", 200)
	fan := source.NewFanout(source.FanoutOptions{
		Discover: func(context.Context) ([]string, error) { return []string{a.url(), b.url()}, nil },
		New: func(url string) (source.Source, error) {
			return agentapi.NewClient(agentapi.ClientOptions{URL: url, Token: agentToken})
		},
		Timeout: 2 * time.Second,
	})
	// About 1,900 packets in all: pieces of a minute (the shortest).
	g, err := workspace.OpenGrowing(workspace.Options{Dir: t.TempDir(), Identity: shopIdentity(t), MergePackets: 200}, "two agents", fan, 0)
	if err != nil {
		t.Fatal(err)
	}
	holder(t, g)()
	res, err := g.Dissect(t.Context(), time.Time{}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls["http"] != calls+1 || res.Merged != calls {
		t.Errorf("dissected %v calls, %d merged; want %d http calls, %d merged", res.Calls, res.Merged, calls+1, calls)
	}
	all, err := g.Index().Search(t.Context(), index.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if all.Total != calls+1 {
		t.Fatalf("the index holds %d calls, want %d", all.Total, calls+1)
	}
	for _, c := range all.Calls {
		if c.Path == "/healthz" {
			continue
		}
		if !slices.Equal(c.CapturedOn, []string{"node-a", "node-b"}) || c.Via.String() != "10.96.0.10:80" {
			t.Errorf("call %s: captured on %v, via %v", c.Path, c.CapturedOn, c.Via)
		}
	}
}
