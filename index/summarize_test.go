package index

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

func TestSummarize(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 1000})
	calls := genCalls(6000, 21, 3*time.Hour)
	// Some servers have no identity at all (as outside the cluster):
	// groupings name them by address.
	for i := 0; i < len(calls); i += 40 {
		calls[i].Dst = proto.Endpoint{IP: calls[i].Dst.IP, Port: calls[i].Dst.Port}
	}
	mustAdd(t, ix, calls)
	var pod string
	for _, c := range calls {
		if c.Dst.Service == "checkout" {
			pod = c.Dst.Pod
			break
		}
	}
	queries := []SummaryQuery{
		{},
		{From: day0.Add(30 * time.Minute), To: day0.Add(95 * time.Minute)},
		// Mid-minute bounds are exact.
		{From: day0.Add(10*time.Minute + 17*time.Second), To: day0.Add(70*time.Minute + time.Nanosecond)},
		// Within one minute, and across one minute boundary.
		{From: day0.Add(10*time.Minute + 17*time.Second), To: day0.Add(10*time.Minute + 45*time.Second)},
		{From: day0.Add(10*time.Minute + 17*time.Second), To: day0.Add(11*time.Minute + 45*time.Second)},
		{Filter: Filter{Namespace: "payments"}},
		{Filter: Filter{Service: "Checkout"}, From: day0.Add(time.Hour)},
		{Filter: Filter{Pod: pod}},
		{Filter: Filter{Protocol: "dns"}, To: day0.Add(2 * time.Hour)},
		{Filter: Filter{Workload: "coredns", Node: "node-a"}},
		{Filter: Filter{Namespace: "no-such"}},
		{Limit: 3, TopErrors: 1},
		{Limit: 1000, TopErrors: 10},
	}
	for _, q := range queries {
		for _, by := range GroupBys() {
			q := q
			q.GroupBy = by
			got, err := ix.Summarize(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("%+v", q)
			compareSummary(t, what, got, bruteSummary(calls, q), 0.02)
			if q.Filter.Namespace != "no-such" && got.Calls == 0 {
				t.Errorf("%s: vacuous: no calls", what)
			}
		}
		// All groupings at once give what each gives alone.
		all, err := ix.SummarizeBy(context.Background(), q, GroupBys()...)
		if err != nil {
			t.Fatal(err)
		}
		for i, by := range GroupBys() {
			q := q
			q.GroupBy = by
			compareSummary(t, fmt.Sprintf("SummarizeBy %+v", q), all[i], bruteSummary(calls, q), 0.02)
		}
	}
	if _, err := ix.SummarizeBy(context.Background(), SummaryQuery{}, ByPod, "colour"); !errors.Is(err, ErrBadQuery) {
		t.Errorf("SummarizeBy with a bad grouping: %v", err)
	}
}

// TestSummarizePathsAgree checks the aggregates and the search-and-read
// path Summarize takes for IP and port filters give the same summaries.
func TestSummarizePathsAgree(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 1000})
	calls := genCalls(3000, 22, 3*time.Hour)
	mustAdd(t, ix, calls)
	ctx := context.Background()
	var sample *proto.Call
	for _, c := range calls {
		if c.Proto == "http" && c.Src.Pod != "" {
			sample = c
			break
		}
	}
	filters := []Filter{
		{},
		{Namespace: "shop"},
		{Service: "checkout", Protocol: "http"},
		{Pod: sample.Dst.Pod},
	}
	windows := [][2]time.Time{{}, {day0.Add(20*time.Minute + 5*time.Second), day0.Add(100 * time.Minute)}}
	for _, f := range filters {
		for _, w := range windows {
			for _, by := range GroupBys() {
				q := SummaryQuery{From: w[0], To: w[1], Filter: f, GroupBy: by, Limit: 100}
				viaAggs, err := ix.Summarize(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				// Port 0 is not a filter; an impossible-to-miss way to take
				// the other path is to ask aggregateMatching directly.
				viaCalls, err := ix.summarizeByScan(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				compareSummary(t, fmt.Sprintf("%+v", q), viaCalls, viaAggs, 0)
			}
		}
	}
	// Address filters, against brute force.
	for _, c := range calls[len(calls)/2:] {
		if c.Proto == "http" && c.Src.Pod != "" {
			sample = c
			break
		}
	}
	for _, f := range []Filter{
		{IP: sample.Src.IP.String()},
		{Port: 53},
		{Port: sample.Src.Port, Namespace: sample.Src.Namespace},
		{IP: sample.Dst.IP.String(), Port: 8080, Protocol: "http"},
	} {
		for _, by := range []GroupBy{ByService, ByEndpoint, ByStatus} {
			q := SummaryQuery{Filter: f, GroupBy: by, From: day0.Add(40 * time.Minute)}
			got, err := ix.Summarize(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Calls == 0 {
				t.Errorf("%+v: vacuous", q)
			}
			compareSummary(t, fmt.Sprintf("%+v", q), got, bruteSummary(calls, q), 0.02)
		}
	}
}
