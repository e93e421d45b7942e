package analysis

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

const fast = 2 * time.Millisecond

func compare(t *testing.T, src *source) *Comparison {
	t.Helper()
	c, err := Compare(context.Background(), src, base, cand, Filter{}, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kinds lists the evidence's kinds and keys, in order.
func kinds(c *Comparison) []string {
	var out []string
	for _, e := range c.Evidence {
		out = append(out, [...]string{"errors", "resolution", "connections", "latency", "vanished", "fell"}[e.Kind]+" "+e.Key)
	}
	return out
}

// TestCompareErrorSpike: 60 of 200 calls failing after the rollout on one
// endpoint, none before, is a regression on that endpoint, with its new
// status, its excess failures and the new pod in its examples; the other
// endpoint is unchanged, and the servers' pods are one gone, one new.
func TestCompareErrorSpike(t *testing.T) {
	src := rollout(t,
		[]spec{{200, "GET", "/api/cart", 0, 0, fast}, {200, "POST", "/api/cart/items", 0, 0, fast}},
		[]spec{{200, "GET", "/api/cart", 0, 0, fast}, {200, "POST", "/api/cart/items", 60, 502, fast}})
	c := compare(t, src)
	if v := c.Verdict(); v != Regressed {
		t.Fatalf("verdict %s, want regressed; evidence %v", v, kinds(c))
	}
	if got, want := kinds(c), []string{"errors cart POST /api/cart/items"}; !slices.Equal(got, want) {
		t.Fatalf("evidence %v, want %v", got, want)
	}
	e := c.Evidence[0]
	if e.Before.Failed != 0 || e.Before.Calls != 200 || e.After.Failed != 60 || e.After.Calls != 200 {
		t.Errorf("before %d of %d failed, after %d of %d; want 0 of 200, 60 of 200", e.Before.Failed, e.Before.Calls, e.After.Failed, e.After.Calls)
	}
	if e.Impact != 60 || !slices.Equal(e.NewStatuses, []string{"502"}) {
		t.Errorf("impact %g, new statuses %v; want 60 excess failures, [502]", e.Impact, e.NewStatuses)
	}
	ex := e.Examples
	if want := `+dst.service:cart +route:"POST /api/cart/items" +status:502`; ex.Query != want {
		t.Errorf("query %s, want %s", ex.Query, want)
	}
	if ex.Read != 60 || ex.Total != 60 || ex.Window != cand || ex.ID == "" {
		t.Errorf("examples: %d read of %d in %v, id %q; want all 60 of the candidate window", ex.Read, ex.Total, ex.Window, ex.ID)
	}
	if want := map[string]int{"shop/" + newCart.Pod: 60}; !maps.Equal(ex.Servers, want) {
		t.Errorf("servers %v, want %v", ex.Servers, want)
	}
	if want := map[string]int{"shop/" + frontend.Pod: 60}; !maps.Equal(ex.Clients, want) {
		t.Errorf("clients %v, want %v", ex.Clients, want)
	}
	if c.Compared != 2 || len(c.Weak) != 0 || len(c.Appeared) != 0 || c.Anonymous {
		t.Errorf("compared %d, weak %v, appeared %d, anonymous %v", c.Compared, c.Weak, len(c.Appeared), c.Anonymous)
	}
	if len(c.ByWorkload) != 1 || c.ByWorkload[0].Key != "cart" || !c.ByWorkload[0].Significant ||
		c.ByWorkload[0].Before.Failed != 0 || c.ByWorkload[0].After.Failed != 60 {
		t.Errorf("by workload %+v, want cart significantly failing more", c.ByWorkload)
	}
	var pods []string
	for _, p := range c.ByPod {
		state := "both"
		switch {
		case p.Before == nil:
			state = "new"
		case p.After == nil:
			state = "gone"
		}
		pods = append(pods, p.Key+" "+state)
	}
	if want := []string{oldCart.Pod + " gone", newCart.Pod + " new"}; !slices.Equal(pods, want) {
		t.Errorf("by pod %v, want %v", pods, want)
	}
}

// TestCompareVolume: significance accounts for volume. 3 failures in 5
// calls is too little traffic to tell, 3 in 20,000 is noise, and one more
// 404 in 300 is no change; each is listed as a weak change, not evidence.
func TestCompareVolume(t *testing.T) {
	for _, tc := range []struct {
		name          string
		before, after []spec
		verdict       Verdict
		weak          Weak
	}{
		{"3 failures in 5 calls", []spec{{5, "POST", "/api/cart/items", 0, 0, fast}}, []spec{{5, "POST", "/api/cart/items", 3, 502, fast}},
			Inconclusive, Weak{Endpoint: "cart POST /api/cart/items", FailedBefore: 0, CallsBefore: 5, FailedAfter: 3, CallsAfter: 5}},
		{"3 failures in 20,000 calls", []spec{{20000, "GET", "/api/cart", 0, 0, fast}}, []spec{{20000, "GET", "/api/cart", 3, 503, fast}},
			OK, Weak{Endpoint: "cart GET /api/cart", FailedBefore: 0, CallsBefore: 20000, FailedAfter: 3, CallsAfter: 20000}},
		{"one more 404", []spec{{300, "GET", "/api/cart", 3, 404, fast}}, []spec{{300, "GET", "/api/cart", 4, 404, fast}},
			OK, Weak{Endpoint: "cart GET /api/cart", FailedBefore: 3, CallsBefore: 300, FailedAfter: 4, CallsAfter: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compare(t, rollout(t, tc.before, tc.after))
			if v := c.Verdict(); v != tc.verdict || len(c.Evidence) > 0 {
				t.Errorf("verdict %s with evidence %v, want %s and none", v, kinds(c), tc.verdict)
			}
			if len(c.Weak) != 1 || c.Weak[0] != tc.weak {
				t.Errorf("weak %+v, want %+v", c.Weak, tc.weak)
			}
		})
	}
}

// TestCompareVolumeChanges: an endpoint that vanished, one whose calls
// fell to a fraction, and one that appeared.
func TestCompareVolumeChanges(t *testing.T) {
	c := compare(t, rollout(t,
		[]spec{{200, "GET", "/api/cart", 0, 0, fast}, {100, "POST", "/api/cart/items", 0, 0, fast}, {50, "GET", "/api/old", 0, 0, fast}},
		[]spec{{200, "GET", "/api/cart", 0, 0, fast}, {3, "POST", "/api/cart/items", 0, 0, fast}, {30, "GET", "/api/new", 0, 0, fast}}))
	// Fell has the larger impact (97 calls missing against 50).
	if got, want := kinds(c), []string{"fell cart POST /api/cart/items", "vanished cart GET /api/old"}; !slices.Equal(got, want) {
		t.Fatalf("evidence %v, want %v", got, want)
	}
	if fell, gone := c.Evidence[0], c.Evidence[1]; fell.Expected != 100 || fell.Impact != 97 || fell.After.Calls != 3 ||
		gone.Expected != 50 || gone.After != nil || gone.Before.Calls != 50 {
		t.Errorf("fell %+v, vanished %+v", fell, gone)
	}
	if len(c.Appeared) != 1 || c.Appeared[0].Key != "cart GET /api/new" || c.Appeared[0].Calls != 30 {
		t.Errorf("appeared %+v", c.Appeared)
	}
	if c.Compared != 4 {
		t.Errorf("%d endpoints compared, want 4", c.Compared)
	}
}

// TestCompareConnections: connections refused after the rollout, 25
// against none before, are evidence. A connection is counted in the
// window it began in: 25 resets that began before the rollout and lasted
// past it, and 25 that began after, are as many before as after.
func TestCompareConnections(t *testing.T) {
	dead := Peer{IP: newCart.IP.Next(), Port: 8080}
	client := Peer{IP: frontend.IP, Port: 50000, Pod: frontend.Pod, Namespace: "shop", Workload: "frontend"}
	server := Peer{IP: newCart.IP, Port: 8080, Pod: newCart.Pod, Namespace: "shop"}
	var flows []Flow
	for i := range 25 {
		at := cand.From.Add(time.Duration(i+1) * time.Second)
		flows = append(flows, Flow{Src: client, Dst: dead, Transport: "tcp", First: at, Last: at, Began: at, State: "refused"},
			Flow{Src: client, Dst: server, Transport: "tcp", First: at, Last: at, Began: at, State: "reset"})
		began := base.From.Add(time.Duration(i+1) * time.Second)
		flows = append(flows, Flow{Src: client, Dst: server, Transport: "tcp", First: began, Last: cand.From.Add(time.Minute), Began: began, State: "reset"})
	}
	src := rollout(t, []spec{{200, "GET", "/api/cart", 0, 0, fast}}, []spec{{200, "GET", "/api/cart", 0, 0, fast}}, flows...)
	c := compare(t, src)
	if got, want := kinds(c), []string{"connections "}; !slices.Equal(got, want) {
		t.Fatalf("evidence %v, want %v", got, want)
	}
	e := c.Evidence[0]
	if want := (Conn{"refused", "shop/" + frontend.Pod, "10.0.1.21:8080"}); e.Conn != want || e.Conns != [2]uint64{0, 25} || e.Impact != 25 {
		t.Errorf("evidence %+v %v impact %g, want %+v [0 25] 25", e.Conn, e.Conns, e.Impact, want)
	}
	if len(c.Weak) != 0 {
		t.Errorf("weak %+v: the resets fell, they did not rise", c.Weak)
	}
}

// TestCompareLatency: a caller slowed by the dependency it calls names it
// as the cause, and the dependency comes first.
func TestCompareLatency(t *testing.T) {
	// The frontend calls the cart (new pod after t0), which calls the
	// cart-db; after t0 the cart-db is 300 ms slower and the cart 305 ms.
	db := newCart
	db.IP, db.Pod, db.Workload, db.Service = db.IP.Next().Next(), "cart-db-0", "cart-db", "cart-db"
	before := append(phase(base.From, 5*time.Minute, oldCart, spec{100, "POST", "/api/cart/items", 0, 0, 5 * time.Millisecond}),
		phase(cand.From, 5*time.Minute, newCart, spec{100, "POST", "/api/cart/items", 0, 0, 310 * time.Millisecond})...)
	dbCalls := func(from, to time.Time, client proto.Endpoint, latency time.Duration) []*proto.Call {
		calls := phase(from, to.Sub(from), db, spec{100, "GET", "/rows", 0, 0, latency})
		for _, c := range calls {
			c.Src = client
		}
		return calls
	}
	calls := append(before, dbCalls(base.From, base.To, oldCart, 2*time.Millisecond)...)
	calls = append(calls, dbCalls(cand.From, cand.To, newCart, 302*time.Millisecond)...)
	c := compare(t, newSource(t, calls, nil, nil))
	if got, want := kinds(c), []string{"latency cart-db GET /rows", "latency cart POST /api/cart/items"}; !slices.Equal(got, want) {
		t.Fatalf("evidence %v, want %v", got, want)
	}
	dep, caller := c.Evidence[0], c.Evidence[1]
	if dep.Cause != nil || caller.Cause == nil || caller.Cause.Key != dep.Key || caller.Cause.Added != dep.Added {
		t.Errorf("caller's cause %+v, dependency's %+v: want the caller explained by %s", caller.Cause, dep.Cause, dep.Key)
	}
	// The sketch holds quantiles within 1%.
	for _, e := range []Evidence{dep, caller} {
		want := e.After.P50 - e.Before.P50
		if e.Added != want || e.Added < 290*time.Millisecond || e.Added > 310*time.Millisecond || e.LatencySamples != [2]uint64{100, 100} {
			t.Errorf("%s: added %s (want p50 shift %s, about 300ms), samples %v", e.Key, e.Added, want, e.LatencySamples)
		}
	}
	if dep.Impact <= caller.Impact {
		t.Errorf("dependency's impact %g not above the caller's %g", dep.Impact, caller.Impact)
	}
}
