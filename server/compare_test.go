package server_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/server/identity"
	"github.com/wirescope/wirescope/server/workspace"
)

// rollout is synthetic traffic around a rollout at t0: before it the
// frontend calls the old cart pod, after it the new one. Each phase lists
// its calls: a path, a status and a server latency.
type rollout struct {
	before, after []synthCall
	refusedAfter  int // connections to a dead address after the rollout
}

type synthCall struct {
	method, path string
	status       int
	latency      time.Duration
}

var t0 = time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)

const (
	frontendIP = "10.0.2.5"
	oldCartIP  = "10.0.1.10"
	newCartIP  = "10.0.1.20"
	deadIP     = "10.0.1.99"
	oldCartPod = "cart-5d8f7b6c4-w2x9k"
	newCartPod = "cart-6f7d8c9b5-p4x2n"
)

// write records the traffic to a pcap: calls spread evenly over the 5
// minutes before and after t0, one keep-alive connection per 50 calls.
func (r rollout) write(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rollout.pcap")
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	port := 40000
	phase := func(calls []synthCall, start time.Time, server string) {
		step := 5 * time.Minute / time.Duration(len(calls)+1)
		var c *capturetest.Conn
		for i, call := range calls {
			at := start.Add(time.Duration(i+1) * step)
			if i%50 == 0 {
				if c != nil {
					c.Close()
				}
				port++
				c = capturetest.NewConn(fmt.Sprintf("%s:%d", frontendIP, port), server+":8080", at, f.Emit)
				c.Handshake()
			}
			c.T = at
			body := ""
			if call.method == "POST" {
				body = `{"sku":"A-1","qty":1}`
			}
			c.Send(true, fmt.Appendf(nil, "%s %s HTTP/1.1\r\nHost: cart.shop.svc.cluster.local\r\nContent-Length: %d\r\n\r\n%s",
				call.method, call.path, len(body), body))
			c.T = c.T.Add(call.latency)
			resp := `{"ok":true}`
			if call.status >= 500 {
				resp = `{"error":"upstream connect error: cart-db refused connection"}`
			}
			c.Send(false, fmt.Appendf(nil, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				call.status, len(resp), resp))
		}
		if c != nil {
			c.Close()
		}
	}
	phase(r.before, t0.Add(-5*time.Minute), oldCartIP)
	phase(r.after, t0, newCartIP)
	for i := range r.refusedAfter {
		port++
		c := capturetest.NewConn(fmt.Sprintf("%s:%d", frontendIP, port), deadIP+":8080", t0.Add(time.Duration(i+1)*time.Second), f.Emit)
		c.SYN()
		c.Reset(false)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func (r rollout) open(t *testing.T) *workspace.Workspace {
	t.Helper()
	start, end := t0, t0
	id, err := identity.New(identity.ClusterFile{
		Services: []identity.Service{{Name: "cart", Namespace: "shop", Selector: map[string]string{"app": "cart"}}},
		Pods: []identity.Pod{
			{Name: "frontend-7b9c6d5f4-k2j8h", Namespace: "shop", Node: "node-a", IP: frontendIP, Labels: map[string]string{"app": "frontend"}},
			{Name: oldCartPod, Namespace: "shop", Node: "node-b", IP: oldCartIP, Labels: map[string]string{"app": "cart", "version": "1.4.0"}, DeletionTime: &end},
			{Name: newCartPod, Namespace: "shop", Node: "node-c", IP: newCartIP, Labels: map[string]string{"app": "cart", "version": "1.5.0"}, StartTime: &start},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(workspace.Options{Paths: []string{r.write(t)}, Dir: t.TempDir(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// calls makes n calls of one kind, the first failing of them failing with
// status fail.
func calls(n int, method, path string, failing, fail int, latency time.Duration) []synthCall {
	out := make([]synthCall, n)
	ok := 200
	if method == "POST" {
		ok = 201
	}
	for i := range out {
		out[i] = synthCall{method, path, ok, latency}
		// Spread the failures over the window.
		if failing > 0 && i%(n/failing) == 0 && i/(n/failing) < failing {
			out[i].status = fail
		}
	}
	return out
}

func mix(parts ...[]synthCall) []synthCall {
	var out []synthCall
	for i := 0; ; i++ {
		added := false
		for _, p := range parts {
			if i < len(p) {
				out = append(out, p[i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// TestCompareWindows checks compare_windows's verdicts and evidence on
// traffic whose change is known, including that significance accounts for
// volume: 3 failures in 5 calls is not enough to tell, nor 3 in 20,000,
// while 60 in 200 is a regression.
func TestCompareWindows(t *testing.T) {
	fast := 2 * time.Millisecond
	cases := []struct {
		name    string
		r       rollout
		verdict string
		want    []string // in the first evidence line (or the verdict line), in order
		details []string // anywhere in the answer
	}{
		{
			name: "error spike on one endpoint",
			r: rollout{
				before: mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(200, "POST", "/api/cart/items", 0, 0, fast)),
				after:  mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(200, "POST", "/api/cart/items", 60, 502, fast)),
			},
			verdict: "regressed",
			want:    []string{"errors: cart POST /api/cart/items", "60 of 200 failed after", "502×60 (new)", "0 of 200 failed before"},
			details: []string{"server pods: shop/" + newCartPod + "×60; clients: shop/frontend-7b9c6d5f4-k2j8h×60",
				`search_calls query="+dst.service:cart +route:\"POST /api/cart/items\" +status:502"`,
				"server workloads: cart: 0 of 400 failed before, 60 of 400 after (significant)",
				"server pods: " + oldCartPod + " (gone): 400 calls before, 0 failed; " + newCartPod + " (new): 400 calls, 60 failed"},
		},
		{
			name: "latency regression",
			r: rollout{
				before: mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(100, "POST", "/api/cart/items", 0, 0, 5*time.Millisecond)),
				after:  mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(100, "POST", "/api/cart/items", 0, 0, 400*time.Millisecond)),
			},
			verdict: "regressed",
			want:    []string{"slower: cart POST /api/cart/items p50 5.0ms → 40", "(100 calls before, 100 after)"},
			details: []string{"server pods: shop/" + newCartPod + "×"},
		},
		{
			name: "connections refused",
			r: rollout{
				before:       calls(200, "GET", "/api/cart", 0, 0, fast),
				after:        calls(200, "GET", "/api/cart", 0, 0, fast),
				refusedAfter: 25,
			},
			verdict: "regressed",
			want:    []string{"connections refused (SYN answered by RST): shop/frontend-7b9c6d5f4-k2j8h → " + deadIP + ":8080: 25 after, 0 before"},
			details: []string{"list_flows state=refused"},
		},
		{
			name: "a caller stopped calling",
			r: rollout{
				before: mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(100, "POST", "/api/cart/items", 0, 0, fast)),
				after:  mix(calls(200, "GET", "/api/cart", 0, 0, fast), calls(3, "POST", "/api/cart/items", 0, 0, fast)),
			},
			verdict: "regressed",
			want:    []string{"fell: cart POST /api/cart/items had 100 calls before, 3 after (about 100 expected)"},
		},
		{
			name: "nothing changed",
			r: rollout{
				before: mix(calls(300, "GET", "/api/cart", 3, 404, fast), calls(100, "POST", "/api/cart/items", 0, 0, fast)),
				after:  mix(calls(300, "GET", "/api/cart", 4, 404, fast), calls(100, "POST", "/api/cart/items", 0, 0, fast)),
			},
			verdict: "ok",
		},
		{
			name: "3 failures in 5 calls",
			r: rollout{
				before: calls(5, "POST", "/api/cart/items", 0, 0, fast),
				after:  calls(5, "POST", "/api/cart/items", 3, 502, fast),
			},
			verdict: "inconclusive",
			want:    []string{"too little traffic to tell: 5 calls before, 5 after"},
			details: []string{"not significant for their volume: cart POST /api/cart/items: 0 of 5 failed before, 3 of 5 after"},
		},
		{
			name: "3 failures in 20,000 calls",
			r: rollout{
				before: calls(20000, "GET", "/api/cart", 0, 0, fast),
				after:  calls(20000, "GET", "/api/cart", 3, 503, fast),
			},
			verdict: "ok",
			details: []string{"cart GET /api/cart: 0 of 20,000 failed before, 3 of 20,000 after"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := tc.r.open(t)
			c := connect(t, ws)
			text := mustCall(t, c, "compare_windows", map[string]any{"rollout_at": t0.Format(time.RFC3339), "window": "5m", "max_tokens": 4000})
			lines := strings.Split(text, "\n")
			if !strings.HasPrefix(lines[0], "verdict: "+tc.verdict+" — ") {
				t.Fatalf("verdict %q, want %s:\n%s", lines[0], tc.verdict, text)
			}
			target := lines[0]
			if tc.verdict == "regressed" {
				i := lineIndex(lines, "evidence, most significant first:")
				if i < 0 || i+1 >= len(lines) {
					t.Fatalf("no evidence:\n%s", text)
				}
				target = lines[i+1]
				if !strings.HasPrefix(target, "1. ") {
					t.Errorf("first evidence line %q", target)
				}
			}
			at := 0
			for _, w := range tc.want {
				j := strings.Index(target[at:], w)
				if j < 0 {
					t.Errorf("%q not in (or out of order in) %q", w, target)
					continue
				}
				at += j + len(w)
			}
			for _, d := range tc.details {
				if !strings.Contains(text, d) {
					t.Errorf("%q not in the answer:\n%s", d, text)
				}
			}
			if tc.verdict != "regressed" && strings.Contains(text, "evidence, most significant first") {
				t.Errorf("evidence listed with verdict %s:\n%s", tc.verdict, text)
			}
		})
	}
}

// TestCompareLabel: a label selects the workload its pods belong to.
func TestCompareLabel(t *testing.T) {
	fast := 2 * time.Millisecond
	r := rollout{
		before: calls(100, "GET", "/api/cart", 0, 0, fast),
		after:  calls(100, "GET", "/api/cart", 40, 503, fast),
	}
	c := connect(t, r.open(t))
	at := t0.Format(time.RFC3339)
	text := mustCall(t, c, "compare_windows", map[string]any{"rollout_at": at, "window": "5m", "label": "version=1.5.0"})
	if !strings.HasPrefix(text, "verdict: regressed — errors: cart GET /api/cart") || !strings.Contains(text, "filters: namespace=shop workload=cart") {
		t.Errorf("label version=1.5.0:\n%s", text)
	}
	for label, want := range map[string]string{
		"app=payments":               "no pod carries label app=payments",
		"app":                        "not key=value",
		"version=1.5.0,app=frontend": "no pod carries",
	} {
		text, res := call(t, c, "compare_windows", map[string]any{"rollout_at": at, "label": label})
		if !res.IsError || !strings.Contains(text, want) {
			t.Errorf("label %s: %q, want an error saying %q", label, text, want)
		}
	}
	// The frontend's traffic is the cart's too: filtering on the client
	// side also sees the regression.
	text = mustCall(t, c, "compare_windows", map[string]any{"rollout_at": at, "window": "5m", "label": "app=frontend"})
	if !strings.HasPrefix(text, "verdict: regressed") {
		t.Errorf("label app=frontend:\n%s", text)
	}
	// service_map and list_workloads name the pods and labels.
	text = mustCall(t, c, "service_map", map[string]any{"label": "app=cart"})
	if !strings.Contains(text, "shop/frontend → shop/cart http: 200 calls, 40 failed (20.0%) [503×40]") {
		t.Errorf("service_map:\n%s", text)
	}
	text = mustCall(t, c, "list_workloads", map[string]any{"ip": newCartIP, "at": t0.Add(-time.Minute).Format(time.RFC3339)})
	text += mustCall(t, c, "list_workloads", nil)
	for _, want := range []string{
		newCartIP + " at 2026-03-02T14:01:00.000Z: no known pod or service held it",
		"shop/frontend: pods frontend-7b9c6d5f4-k2j8h; ips 10.0.2.5; nodes node-a; labels app=frontend; 4 conns as client, 0 as server, 50.0KiB; calls made 200",
		"at other times: pod shop/" + newCartPod + " (workload cart, node node-c, from 2026-03-02T14:02:00.000Z)",
		"shop/cart: pods " + oldCartPod + ", " + newCartPod + "; ips " + oldCartIP + ", " + newCartIP + "; nodes node-b, node-c; labels app=cart version=1.4.0|1.5.0;",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("list_workloads: no %q in\n%s", want, text)
		}
	}
}

// BenchmarkCompareWindows times compare_windows over 50,000 calls within a
// few seconds of traffic, so every window edge is read from the call store (one
// dissection, then the tool alone): around a given rollout time, and with
// no time (the search for when the error rate rose).
func BenchmarkCompareWindows(b *testing.B) {
	path := filepath.Join(b.TempDir(), "load.pcap")
	if _, err := capturetest.WriteLoad(path, capturetest.Load{Conns: 5000, Requests: 10}); err != nil {
		b.Fatal(err)
	}
	ws := openWorkspace(b, path)
	c := connect(b, ws)
	mustCall(b, c, "dissect", nil)
	first, last := ws.Bounds()
	mid := first.Add(last.Sub(first) / 2).Format(time.RFC3339Nano)
	for _, bc := range []struct {
		name string
		args map[string]any
	}{{"rollout_at", map[string]any{"rollout_at": mid}}, {"change-point", nil}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				mustCall(b, c, "compare_windows", bc.args)
			}
		})
	}
}

// TestCompareWithoutIdentities: when the servers have no Kubernetes
// identity, their failures are listed once, by address, not twice under
// "server workloads" and "server pods".
func TestCompareWithoutIdentities(t *testing.T) {
	ws := openDemo(t)
	c := connect(t, ws)
	first, last := ws.Bounds()
	mid := first.Add(last.Sub(first) / 2)
	text := mustCall(t, c, "compare_windows", map[string]any{"rollout_at": mid.Format(time.RFC3339Nano), "max_tokens": 8000})
	seen := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		label, rest, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(label, "server") {
			continue
		}
		if prev, dup := seen[rest]; dup {
			t.Errorf("%q and %q list the same servers:\n%s", prev, label, text)
		}
		seen[rest] = label
	}
	if !strings.Contains(text, "servers: 127.0.0.5:8080: ") {
		t.Errorf("compare_windows does not list the server by address once:\n%s", text)
	}
}

// TestCompareVersions: compare_windows with baseline_version and
// candidate_version compares the calls served by the pods of two
// revisions (pod-template-hash) over one window, whatever their times.
func TestCompareVersions(t *testing.T) {
	fast := 2 * time.Millisecond
	r := rollout{
		before: calls(100, "GET", "/api/cart", 0, 0, fast),
		after:  calls(100, "GET", "/api/cart", 40, 503, fast),
	}
	id, err := identity.New(identity.ClusterFile{
		Services: []identity.Service{{Name: "cart", Namespace: "shop", Selector: map[string]string{"app": "cart"}}},
		Pods: []identity.Pod{
			{Name: "frontend-7b9c6d5f4-k2j8h", Namespace: "shop", Node: "node-a", IP: frontendIP, Labels: map[string]string{"app": "frontend", "pod-template-hash": "7b9c6d5f4"}},
			{Name: oldCartPod, Namespace: "shop", Node: "node-b", IP: oldCartIP, Labels: map[string]string{"app": "cart", "pod-template-hash": "5d8f7b6c4"}},
			{Name: newCartPod, Namespace: "shop", Node: "node-c", IP: newCartIP, Labels: map[string]string{"app": "cart", "pod-template-hash": "6f7d8c9b5"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.Open(workspace.Options{Paths: []string{r.write(t)}, Dir: t.TempDir(), Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := connect(t, ws)
	text := mustCall(t, c, "compare_windows", map[string]any{"baseline_version": "5d8f7b6c4", "candidate_version": "6f7d8c9b5"})
	if !strings.HasPrefix(text, "verdict: regressed — errors: cart GET /api/cart") || !strings.Contains(text, "40 of 100 failed after") ||
		!strings.Contains(text, "0 of 100 failed before") || !strings.Contains(text, "comparing version 5d8f7b6c4 (baseline) with 6f7d8c9b5 (candidate)") {
		t.Errorf("versions old → new:\n%s", text)
	}
	// The other way round, the new version is the baseline: fewer errors.
	text = mustCall(t, c, "compare_windows", map[string]any{"baseline_version": "6f7d8c9b5", "candidate_version": "5d8f7b6c4"})
	if strings.HasPrefix(text, "verdict: regressed") {
		t.Errorf("versions new → old is a regression:\n%s", text)
	}
	// search_calls finds a version's calls by the query language.
	text = mustCall(t, c, "search_calls", map[string]any{"query": "+dst.version:6f7d8c9b5 +status:503", "max_tokens": 400})
	if !strings.HasPrefix(text, "40 calls match") {
		t.Errorf("search by version:\n%s", text)
	}
	for args, want := range map[string]map[string]any{
		"go together":           {"baseline_version": "5d8f7b6c4"},
		"name two revisions":    {"baseline_version": "x", "candidate_version": "x"},
		"share one window":      {"baseline_version": "a", "candidate_version": "b", "rollout_at": t0.Format(time.RFC3339)},
		"no calls of version a": {"baseline_version": "a", "candidate_version": "b"},
	} {
		text, res := call(t, c, "compare_windows", want)
		if !res.IsError || !strings.Contains(text, args) {
			t.Errorf("%v: %q, want an error saying %q", want, text, args)
		}
	}
}
