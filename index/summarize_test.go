package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"net/netip"
	"os"
	"path/filepath"
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

// TestOneWay: one-way messages are counted, searchable as outcome:one_way,
// and left out of error rates: 1 failure among 3 answered calls is 33%,
// whatever the 4 messages beside them.
func TestOneWay(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 10})
	dst := proto.Endpoint{IP: netip.MustParseAddr("10.244.2.7"), Port: 8080, Service: "chat", Namespace: "shop"}
	src := proto.Endpoint{IP: netip.MustParseAddr("10.244.1.5"), Port: 40000}
	var calls []*proto.Call
	for i, status := range []string{"200", "200", "503"} {
		calls = append(calls, &proto.Call{ID: fmt.Sprintf("c%d", i), Proto: "http", TS: day0.Add(time.Duration(i) * time.Second),
			Method: "GET", Path: "/chat", Status: status, Src: src, Dst: dst, LatencyNS: int64(time.Millisecond)})
	}
	for i := range 4 {
		calls = append(calls, &proto.Call{ID: fmt.Sprintf("m%d", i), Proto: "websocket", TS: day0.Add(time.Duration(10+i) * time.Second),
			Method: "text", Path: "/chat", OneWay: true, Src: src, Dst: dst})
	}
	mustAdd(t, ix, calls)
	sum, err := ix.Summarize(context.Background(), SummaryQuery{GroupBy: ByService})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Groups) != 1 {
		t.Fatalf("groups %+v", sum.Groups)
	}
	g := sum.Groups[0]
	if g.Calls != 7 || g.Failed != 1 || g.Outcomes["one_way"] != 4 || g.Rated() != 3 || math.Abs(g.ErrorRate-1.0/3) > 1e-9 {
		t.Errorf("group %+v: want 7 calls, 1 failed, 4 one-way, error rate 1/3", g)
	}
	res, err := ix.Search(context.Background(), Query{Text: "outcome:one_way", Limit: 10})
	if err != nil || res.Total != 4 {
		t.Errorf("outcome:one_way: %v, %d calls, want 4", err, res.Total)
	}
}

// TestAggregatesUnknownOutcome: an aggregates file naming an outcome this
// version does not know (written by a newer one) is refused as corrupt,
// not read into a panic.
func TestAggregatesUnknownOutcome(t *testing.T) {
	dir := t.TempDir()
	var files [2][]byte
	for i, oneWay := range []bool{false, true} {
		a := newAggregates()
		a.add(&proto.Call{Proto: "websocket", TS: day0, Method: "text", Path: "/chat", OneWay: oneWay, Status: "x"})
		path := filepath.Join(dir, fmt.Sprint(i))
		if err := a.save(path, 1); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	// The one byte apart, besides the checksum, is the outcome's.
	at := -1
	for i := range len(files[0]) - 4 {
		if files[0][i] != files[1][i] {
			at = i
		}
	}
	if at < 0 || files[1][at] != byte(proto.OneWay) {
		t.Fatalf("outcome byte not found (%d)", at)
	}
	b := files[1]
	b[at] = proto.NumOutcomes + 3
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	path := filepath.Join(dir, "future")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadAggregates(path); !errors.Is(err, errAggsCorrupt) {
		t.Fatalf("an unknown outcome: %v, want errAggsCorrupt", err)
	}
}

// TestScanCacheFollowsAdds: the calls summaries read at a window's edges
// and for address filters are cached by partition; calls added later (in
// the same partitions and minutes) are counted, the cached ones not twice,
// and a cache full to its bound starts over without losing count.
func TestScanCacheFollowsAdds(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 1000})
	calls := genCalls(4000, 23, 2*time.Hour)
	first, later := calls[:2500], calls[2500:]
	mustAdd(t, ix, first)
	ctx := context.Background()
	queries := []SummaryQuery{
		{Filter: Filter{IP: first[0].Src.IP.String()}, GroupBy: ByEndpoint},
		{From: day0.Add(10*time.Minute + 17*time.Second), To: day0.Add(70*time.Minute + 3*time.Second), GroupBy: ByStatus},
	}
	check := func(what string, have []*proto.Call) {
		t.Helper()
		for _, q := range queries {
			for range 2 { // the second from the cache
				got, err := ix.Summarize(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				if got.Calls == 0 {
					t.Fatalf("%s %+v: vacuous", what, q)
				}
				compareSummary(t, fmt.Sprintf("%s %+v", what, q), got, bruteSummary(have, q), 0.02)
			}
		}
	}
	check("before", first)
	if scanCached.Load() == 0 {
		t.Fatal("nothing cached: the test does not test the cache")
	}
	mustAdd(t, ix, later)
	check("after", calls)
}
