package analysis

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// topology is a small window of traffic, all after t0:
//   - the frontend calls the cart over HTTP (10 calls, 2 failing 503) and
//     gRPC (30 calls), on 2 connections of 1,000 bytes;
//   - the frontend's 3 connections to a dead address are refused;
//   - 10.0.0.2, without identity, looks up api.partner.example at
//     10.0.0.53 (5 calls, answered 203.0.113.7), calls it over HTTP (5
//     calls, 20 ms) and opens a TLS connection to 198.51.100.9 no
//     dissector reads.
func topology(t *testing.T, pods []Pod) *source {
	t.Helper()
	at := cand.From.Add(time.Minute)
	calls := phase(at, time.Minute, newCart, spec{10, "GET", "/api/cart", 2, 503, fast})
	grpc := phase(at, time.Minute, newCart, spec{30, "POST", "/cart.Cart/Add", 0, 0, 9 * time.Millisecond})
	for _, c := range grpc {
		c.Proto, c.Status = "grpc", "OK"
	}
	calls = append(calls, grpc...)
	outside := proto.Endpoint{IP: netip.MustParseAddr("10.0.0.2"), Port: 41000}
	dnsServer := proto.Endpoint{IP: netip.MustParseAddr("10.0.0.53"), Port: 53}
	partner := proto.Endpoint{IP: netip.MustParseAddr("203.0.113.7"), Port: 80}
	for i := range 5 {
		ts := at.Add(time.Duration(i) * time.Second)
		lookup := &proto.Call{Proto: "dns", TS: ts, Src: outside, Dst: dnsServer, Method: "A", Path: "api.partner.example.",
			Status: "NOERROR", LatencyNS: int64(time.Millisecond)}
		lookup.Extra.Set("answers", []string{"api.partner.example. 30 A 203.0.113.7"})
		calls = append(calls, lookup, &proto.Call{Proto: "http", TS: ts.Add(2 * time.Millisecond), Src: outside, Dst: partner,
			Method: "GET", Path: "/v1/rates", Status: "200", LatencyNS: int64(20 * time.Millisecond)})
	}
	peer := func(e proto.Endpoint) Peer {
		return Peer{IP: e.IP, Port: e.Port, Pod: e.Pod, Namespace: e.Namespace, Workload: e.Workload, Service: e.Service, Node: e.Node}
	}
	var flows []Flow
	for range 2 {
		flows = append(flows, Flow{Src: peer(frontend), Dst: peer(newCart), Transport: "tcp", Protocol: "http", First: at, Last: at.Add(time.Minute),
			Began: at, Bytes: [2]uint64{600, 400}, State: "closed"})
	}
	for range 3 {
		flows = append(flows, Flow{Src: peer(frontend), Dst: Peer{IP: netip.MustParseAddr("10.0.1.99"), Port: 8080}, Transport: "tcp",
			First: at, Last: at, Began: at, Bytes: [2]uint64{60, 0}, State: "refused"})
	}
	flows = append(flows, Flow{Src: Peer{IP: outside.IP, Port: 60000}, Dst: Peer{IP: netip.MustParseAddr("198.51.100.9"), Port: 443},
		Transport: "tcp", Protocol: "tls", Guessed: true, Encrypted: true, First: at, Last: at, Began: at, Bytes: [2]uint64{300, 200}, State: "closed"})
	return newSource(t, calls, flows, pods)
}

// TestServiceMap: calls and flows merge into one edge per client and
// server; an edge of two protocols adds their counts; an edge without
// calls is described by its flows; a peer known by address is named by
// the DNS answer that resolved it; every order sorts as it says.
func TestServiceMap(t *testing.T) {
	src := topology(t, nil)
	edges := func(order EdgeOrder) (*ServiceMap, []string) {
		t.Helper()
		m, err := BuildServiceMap(context.Background(), src, Window{}, Filter{}, order)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range m.Edges {
			names = append(names, e.Client+" → "+e.Server)
		}
		return m, names
	}
	const (
		cart    = "shop/frontend → shop/cart"
		refused = "shop/frontend → 10.0.1.99:8080"
		dns     = "10.0.0.2 → 10.0.0.53:53"
		partner = "10.0.0.2 → 203.0.113.7:80"
		tls     = "10.0.0.2 → 198.51.100.9:443"
	)
	for order, want := range map[EdgeOrder][]string{
		Worst:   {refused, cart, dns, partner, tls}, // 3 failed connections, 2 failed calls, then by calls and connections
		Busiest: {cart, dns, partner, refused, tls},
		Largest: {cart, tls, refused, dns, partner},
		Slowest: {partner, cart, dns, refused, tls},
	} {
		if _, got := edges(order); !slices.Equal(got, want) {
			t.Errorf("%s first: %v, want %v", order, got, want)
		}
	}
	m, _ := edges(Worst)
	if m.Calls != 50 {
		t.Errorf("%d calls, want 50", m.Calls)
	}
	if want := map[string]string{"203.0.113.7:80": "api.partner.example"}; !maps.Equal(m.Names, want) {
		t.Errorf("names %v, want %v", m.Names, want)
	}
	byName := map[string]*Edge{}
	for _, e := range m.Edges {
		byName[e.Client+" → "+e.Server] = e
	}
	e := byName[cart]
	if !slices.Equal(e.Protos, []string{"grpc", "http"}) || e.Calls.Calls != 40 || e.Calls.Failed != 2 || e.Calls.ErrorRate != 2.0/40 ||
		e.Conns != 2 || e.Bytes != 2000 || e.Failed() != 2 {
		t.Errorf("%s: protos %v, %d calls, %d failed (%g), %d conns, %d bytes", cart, e.Protos, e.Calls.Calls, e.Calls.Failed,
			e.Calls.ErrorRate, e.Conns, e.Bytes)
	}
	// The busier protocol's quantiles: gRPC's 9 ms, within the sketch's 1%.
	if p := e.Calls.P95; p < 8900*time.Microsecond || p > 9100*time.Microsecond {
		t.Errorf("%s: p95 %s, want gRPC's 9ms", cart, p)
	}
	if len(e.Calls.TopErrors) != 1 || e.Calls.TopErrors[0] != (index.Count{Value: "503", Count: 2}) {
		t.Errorf("%s: top errors %v, want 503×2", cart, e.Calls.TopErrors)
	}
	e = byName[refused]
	if e.Calls != nil || e.Conns != 3 || e.Failed() != 3 || !maps.Equal(e.FailedConns, map[string]uint64{"refused": 3}) ||
		!maps.Equal(e.FailedPairs, map[string]int{frontend.Pod + " → 10.0.1.99:8080": 3}) {
		t.Errorf("%s: %+v", refused, e)
	}
	e = byName[tls]
	if e.Calls != nil || e.FlowProto != "tls?" || !e.Encrypted || e.Conns != 1 || e.Bytes != 500 {
		t.Errorf("%s: %+v", tls, e)
	}
	// A window without the lookups names nobody.
	m, err := BuildServiceMap(context.Background(), src, Window{From: cand.To}, Filter{}, Worst)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Edges) != 0 || len(m.Names) != 0 {
		t.Errorf("after the traffic: %d edges, names %v", len(m.Edges), m.Names)
	}
}

// TestListWorkloads: workloads and bare addresses busiest first, with
// the pods, addresses, nodes and labels seen, and the known workloads
// without traffic.
func TestListWorkloads(t *testing.T) {
	pods := []Pod{
		{Name: frontend.Pod, Namespace: "shop", Workload: "frontend", IPs: []netip.Addr{frontend.IP}, Labels: map[string]string{"app": "frontend"}},
		{Name: oldCart.Pod, Namespace: "shop", Workload: "cart", IPs: []netip.Addr{oldCart.IP}, Labels: map[string]string{"app": "cart", "version": "1.4.0"}, End: t0},
		{Name: newCart.Pod, Namespace: "shop", Workload: "cart", IPs: []netip.Addr{newCart.IP}, Labels: map[string]string{"app": "cart", "version": "1.5.0"}, Start: t0},
		{Name: "payments-0", Namespace: "shop", Workload: "payments"},
		{Name: "batch-0", Namespace: "jobs", Workload: "batch", End: t0},
	}
	src := topology(t, pods)
	res, err := ListWorkloads(context.Background(), src, cand, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, w := range res.Workloads {
		names = append(names, w.Name)
	}
	// frontend and cart have 40 calls each, the frontend more connections.
	if want := []string{"shop/frontend", "shop/cart", "10.0.0.2", "10.0.0.53", "203.0.113.7", "10.0.1.99", "198.51.100.9"}; !slices.Equal(names, want) {
		t.Errorf("workloads %v, want %v", names, want)
	}
	fe, cart, outside := res.Workloads[0], res.Workloads[1], res.Workloads[2]
	if !fe.Known || !slices.Equal(fe.Pods, []string{frontend.Pod}) || !slices.Equal(fe.IPs, []string{"10.0.2.5"}) ||
		!slices.Equal(fe.Nodes, []string{"node-a"}) || fe.Conns != [2]uint64{5, 0} || fe.CallsOut != 40 || fe.CallsIn != 0 {
		t.Errorf("frontend: %+v", fe)
	}
	// The old pod is not in the window's traffic: its labels are not.
	if want := map[string][]string{"app": {"cart"}, "version": {"1.5.0"}}; !maps.EqualFunc(cart.Labels, want, slices.Equal) {
		t.Errorf("cart labels %v, want %v", cart.Labels, want)
	}
	if cart.CallsIn != 40 || cart.FailedIn != 2 || cart.Conns != [2]uint64{0, 2} || cart.Bytes != 2000 {
		t.Errorf("cart: %+v", cart)
	}
	if outside.Known || outside.CallsOut != 10 || outside.Conns != [2]uint64{1, 0} || len(outside.Pods) != 0 {
		t.Errorf("10.0.0.2: %+v", outside)
	}
	// batch ended before the window; payments is alive and silent.
	if want := []string{"shop/payments"}; !slices.Equal(res.Idle, want) {
		t.Errorf("idle %v, want %v", res.Idle, want)
	}
}

// TestResolveIP: the pod alive at the time holds the address, the others
// that held it are listed apart; without a known pod, the flows name it.
func TestResolveIP(t *testing.T) {
	pods := []Pod{
		{Name: newCart.Pod, Namespace: "shop", Workload: "cart", IPs: []netip.Addr{newCart.IP}, Start: t0},
		{Name: "cart-old-0", Namespace: "shop", Workload: "cart", IPs: []netip.Addr{newCart.IP}, End: t0},
	}
	src := topology(t, pods)
	podNames := func(ps []Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	h := ResolveIP(context.Background(), src, newCart.IP, t0.Add(time.Minute))
	if !slices.Equal(podNames(h.Alive), []string{newCart.Pod}) || !slices.Equal(podNames(h.Other), []string{"cart-old-0"}) || h.Seen != nil {
		t.Errorf("after t0: %+v", h)
	}
	h = ResolveIP(context.Background(), src, newCart.IP, t0.Add(-time.Minute))
	if !slices.Equal(podNames(h.Alive), []string{"cart-old-0"}) || !slices.Equal(podNames(h.Other), []string{newCart.Pod}) {
		t.Errorf("before t0: %+v", h)
	}
	// No pod is known for the frontend's address: the flows around the
	// time carry its identity; long after them nothing does.
	at := cand.From.Add(time.Minute)
	h = ResolveIP(context.Background(), src, frontend.IP, at)
	if len(h.Alive) != 0 || len(h.Other) != 0 || h.Seen == nil || h.Seen.Pod != frontend.Pod || h.Seen.IP != frontend.IP {
		t.Errorf("frontend at %s: %+v", at, h)
	}
	if h = ResolveIP(context.Background(), src, frontend.IP, at.Add(time.Hour)); h.Seen != nil {
		t.Errorf("an hour later: %+v", h)
	}
}
