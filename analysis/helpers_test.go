package analysis

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// t0 is the synthetic rollout: baselines end and candidates start there.
var t0 = time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)

// source is a Source over a real index of the calls given and a list of
// flows and pods.
type source struct {
	ix    *index.Index
	flows []Flow
	pods  []Pod
}

func (s *source) Index() *index.Index { return s.ix }
func (s *source) Pods() []Pod         { return s.pods }

// Flows returns the flows active in [from, to) (zero ends unbounded)
// with an endpoint at f.IP when it is set; the other filters are not
// used by the tests.
func (s *source) Flows(_ context.Context, from, to time.Time, f Filter) ([]Flow, error) {
	var out []Flow
	for _, fl := range s.flows {
		if (!to.IsZero() && !fl.First.Before(to)) || (!from.IsZero() && fl.Last.Before(from)) {
			continue
		}
		if f.IP.IsValid() && fl.Src.IP != f.IP && fl.Dst.IP != f.IP {
			continue
		}
		out = append(out, fl)
	}
	return out, nil
}

// newSource indexes calls in a temporary directory.
func newSource(t testing.TB, calls []*proto.Call, flows []Flow, pods []Pod) *source {
	t.Helper()
	ix, err := index.Open(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	for i, c := range calls {
		if c.ID == "" {
			c.ID = fmt.Sprintf("call-%06d", i)
		}
	}
	if err := ix.Add(context.Background(), calls); err != nil {
		t.Fatal(err)
	}
	return &source{ix: ix, flows: flows, pods: pods}
}

// Peers of the synthetic cluster: the frontend calls the cart service,
// served by the old pod before t0 and by the new one after.
var (
	frontend = proto.Endpoint{IP: netip.MustParseAddr("10.0.2.5"), Port: 40000, Pod: "frontend-7b9c6d5f4-k2j8h", Namespace: "shop",
		Workload: "frontend", Node: "node-a"}
	oldCart = proto.Endpoint{IP: netip.MustParseAddr("10.0.1.10"), Port: 8080, Pod: "cart-5d8f7b6c4-w2x9k", Namespace: "shop",
		Workload: "cart", Service: "cart", Node: "node-b"}
	newCart = proto.Endpoint{IP: netip.MustParseAddr("10.0.1.20"), Port: 8080, Pod: "cart-6f7d8c9b5-p4x2n", Namespace: "shop",
		Workload: "cart", Service: "cart", Node: "node-c"}
)

// spec is n HTTP calls of one endpoint: the first failing of them (spread
// evenly) answered with status fail, the rest with 200.
type spec struct {
	n             int
	method, path  string
	failing, fail int
	latency       time.Duration
}

// phase spreads the calls of specs, interleaved, evenly over [from,
// from+span), from the frontend to server.
func phase(from time.Time, span time.Duration, server proto.Endpoint, specs ...spec) []*proto.Call {
	var calls []*proto.Call
	for i := 0; ; i++ {
		added := false
		for _, s := range specs {
			if i >= s.n {
				continue
			}
			added = true
			status := "200"
			if s.failing > 0 && i%(s.n/s.failing) == 0 && i/(s.n/s.failing) < s.failing {
				status = fmt.Sprint(s.fail)
			}
			calls = append(calls, &proto.Call{Proto: "http", Src: frontend, Dst: server, Method: s.method, Path: s.path,
				Status: status, LatencyNS: int64(s.latency)})
		}
		if !added {
			break
		}
	}
	step := span / time.Duration(len(calls)+1)
	for i, c := range calls {
		c.TS = from.Add(time.Duration(i+1) * step)
	}
	return calls
}

// around is the baseline and candidate windows, five minutes each side of
// t0.
var base, cand = Window{t0.Add(-5 * time.Minute), t0}, Window{t0, t0.Add(5 * time.Minute)}

// rollout indexes before on the old cart pod and after on the new one,
// five minutes each side of t0.
func rollout(t *testing.T, before, after []spec, flows ...Flow) *source {
	t.Helper()
	calls := append(phase(base.From, 5*time.Minute, oldCart, before...), phase(cand.From, 5*time.Minute, newCart, after...)...)
	return newSource(t, calls, flows, nil)
}
