package index

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index/indextest"
)

// Benchmarks. `make bench` runs them with the rest (go test -bench .);
// the 1M-call ones build their index once into .cache/bench/index-1m/ and
// skip under -short:
//
//	go test -run '^$' -bench . -benchtime 1x ./index/
//
// BenchmarkIngest measures calls indexed and searchable per second: the
// time from the first Add until the last returns, after which every call
// is visible to Search. Its "naive" case is the same calls indexed the
// way Bleve is most simply used, in the same run, and "ratio" is ours
// divided by naive. Naive means: one index made by
// bleve.New(dir, bleve.NewIndexMapping()) (Scorch, the default mapping
// with dynamic fields, stored fields, term vectors and doc values on,
// as Bleve defaults), each call's full JSON (proto.Call.AppendJSON)
// decoded into a map[string]any and given to Batch.Index under its call
// ID, in batches of 1,000 (the `bleve bulk` default) passed to
// Index.Batch, which returns once the batch is searchable and persisted.
// Naive indexes a slice of benchNaiveCalls calls: at its rate the full set
// takes minutes, and its rate only falls as an index grows, so the ratio
// flatters naive.

const (
	benchIngestCalls = 200_000
	benchNaiveCalls  = 20_000
	// bench1MVersion names the cached 1M-call index; change it when the
	// on-disk format or the generator changes.
	bench1MVersion = "v2"
	bench1MCalls   = 1_000_000
)

var (
	benchCallsOnce sync.Once
	benchCalls     []*proto.Call
	// naiveRate is the naive calls/s of this run, for the ratio.
	naiveRate float64
)

// ingestCalls are a day of calls (the shape of the 1M set) with bodies.
func ingestCalls() []*proto.Call {
	benchCallsOnce.Do(func() {
		benchCalls = indextest.Generate(benchIngestCalls, indextest.Options{Seed: 99, Start: day0, Span: 24 * time.Hour, Bodies: true})
	})
	return benchCalls
}

func BenchmarkIngest(b *testing.B) {
	calls := ingestCalls()
	b.Run("naive", func(b *testing.B) {
		slice := calls[:benchNaiveCalls]
		var rate float64
		for b.Loop() {
			rate = naiveIngest(b, slice)
		}
		naiveRate = rate
		b.ReportMetric(rate, "calls/s")
		b.ReportMetric(0, "ns/op")
	})
	// A day of calls (24 partitions) and the last hour of it (one
	// partition: live ingest), each in Adds of 10,000 calls as a
	// dissection delivers them.
	for _, tc := range []struct {
		name  string
		calls []*proto.Call
	}{
		{"day", calls},
		{"hour", lastHour(calls)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var rate, persisted, cpu float64
			for b.Loop() {
				rate, persisted, cpu = ingest(b, tc.calls, nil)
			}
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(persisted, "persisted-calls/s")
			b.ReportMetric(cpu, "calls/cpu-s")
			if naiveRate > 0 {
				b.ReportMetric(rate/naiveRate, "ratio")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkIngestBatchSize is how DefaultBatchSize was chosen.
func BenchmarkIngestBatchSize(b *testing.B) {
	if testing.Short() {
		b.Skip("tuning benchmark")
	}
	calls := lastHour(ingestCalls())
	for _, bs := range []int{1000, 2000, 4096, 8192, 16384, 32768} {
		b.Run(fmt.Sprintf("batch=%d", bs), func(b *testing.B) {
			var rate, cpu float64
			for b.Loop() {
				rate, _, cpu = ingest(b, calls, &Options{BatchSize: bs})
			}
			b.ReportMetric(rate, "calls/s")
			b.ReportMetric(cpu, "calls/cpu-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

func lastHour(calls []*proto.Call) []*proto.Call {
	end := calls[len(calls)-1].TS
	i := sort.Search(len(calls), func(i int) bool { return !calls[i].TS.Before(end.Add(-time.Hour)) })
	// Repeat the hour's shape until there are as many calls as a day's
	// Add would index, by shifting copies of other hours into it.
	out := slices.Clone(calls[i:])
	for h := 1; len(out) < len(calls)/4; h++ {
		for _, c := range calls {
			if c.TS.Before(end.Add(-time.Hour)) && c.TS.After(end.Add(-time.Duration(h+1)*time.Hour)) {
				cp := *c
				cp.TS = c.TS.Add(time.Duration(h) * time.Hour)
				cp.ID = fmt.Sprintf("%s-%d", c.ID, h)
				out = append(out, &cp)
			}
		}
	}
	slices.SortFunc(out, func(a, b *proto.Call) int { return a.TS.Compare(b.TS) })
	return out
}

// ingest adds calls to a fresh index in Adds of 10,000 and returns calls
// per second until the last Add returned, until Close had persisted
// everything, and per second of CPU time the process used until Close
// (a figure other load on the machine disturbs less).
func ingest(b *testing.B, calls []*proto.Call, opts *Options) (float64, float64, float64) {
	b.StopTimer()
	dir := b.TempDir()
	ix, err := Open(dir, nil, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := 0; i < len(calls); i += 10_000 {
		if err := ix.Add(context.Background(), calls[i:min(i+10_000, len(calls))]); err != nil {
			b.Fatal(err)
		}
	}
	searchable := time.Since(start)
	if err := ix.Close(); err != nil {
		b.Fatal(err)
	}
	persisted := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	os.RemoveAll(dir)
	b.StartTimer()
	n := float64(len(calls))
	return n / searchable.Seconds(), n / persisted.Seconds(), n / cpu.Seconds()
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// naiveIngest indexes calls the naive way (see the file comment) and
// returns calls per second.
func naiveIngest(b *testing.B, calls []*proto.Call) float64 {
	b.StopTimer()
	dir := filepath.Join(b.TempDir(), "naive")
	ix, err := bleve.New(dir, bleve.NewIndexMapping())
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	start := time.Now()
	batch := ix.NewBatch()
	var buf []byte
	for i, c := range calls {
		buf = c.AppendJSON(buf[:0])
		var doc map[string]any
		if err := json.Unmarshal(buf, &doc); err != nil {
			b.Fatal(err)
		}
		if err := batch.Index(c.ID, doc); err != nil {
			b.Fatal(err)
		}
		if batch.Size() == 1000 || i == len(calls)-1 {
			if err := ix.Batch(batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	el := time.Since(start)
	b.StopTimer()
	ix.Close()
	os.RemoveAll(dir)
	b.StartTimer()
	return float64(len(calls)) / el.Seconds()
}

// bench1M opens the cached index of a million calls over a day, building
// it first when missing (about a minute), and returns it with a sample of
// its calls (the newest of each partition). The calls are not kept in
// memory: a heap of a million calls would slow the garbage collector and
// the searches measured.
func bench1M(b *testing.B) (*Index, []*proto.Call) {
	if testing.Short() {
		b.Skip("1M-call benchmark; skipped with -short")
	}
	b.StopTimer()
	defer b.StartTimer()
	root, err := filepath.Abs(filepath.Join("..", ".cache", "bench", "index-1m"))
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, bench1MVersion)
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err != nil {
		b.Logf("building the 1M-call index in %s (cached for later runs)", dir)
		calls := indextest.Generate(bench1MCalls, indextest.Options{Seed: 1234, Start: day0, Span: 24 * time.Hour, Bodies: true})
		os.RemoveAll(root) // older versions
		tmp := dir + ".building"
		os.RemoveAll(tmp)
		ix, err := Open(tmp, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := 0; i < len(calls); i += 10_000 {
			if err := ix.Add(context.Background(), calls[i:min(i+10_000, len(calls))]); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("indexed %d calls in %v (%.0f calls/s)", len(calls), time.Since(start), float64(len(calls))/time.Since(start).Seconds())
		if err := ix.Close(); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, dir); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(done, []byte(fmt.Sprintf("%d calls\n", len(calls))), 0o644); err != nil {
			b.Fatal(err)
		}
		calls = nil
		runtime.GC()
	}
	ix, err := Open(dir, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	if n := ix.Stats().Calls; n != bench1MCalls {
		b.Fatalf("cached index holds %d calls, want %d: remove %s", n, bench1MCalls, dir)
	}
	var sample []*proto.Call
	for _, p := range ix.Partitions() {
		res, err := ix.Search(context.Background(), Query{From: p.Start, To: p.End, Limit: 200})
		if err != nil {
			b.Fatal(err)
		}
		sample = append(sample, res.Calls...)
	}
	return ix, sample
}

// searchCase is a typical query of the search_calls tool; mk varies it
// by iteration.
type searchCase struct {
	name string
	mk   func(r *rand.Rand) Query
}

func searchCases() []searchCase {
	services := []string{"checkout", "payments", "auth", "frontend", "catalog", "orders-db-proxy", "users"}
	window := func(r *rand.Rand, d time.Duration) (time.Time, time.Time) {
		from := day0.Add(time.Duration(r.Int64N(int64(24*time.Hour - d))))
		return from, from.Add(d)
	}
	return []searchCase{
		{"status=500", func(*rand.Rand) Query { return Query{Text: "status:500"} }},
		{"status>=500", func(*rand.Rand) Query { return Query{Text: "status:>=500"} }},
		{"outcome=no_response", func(*rand.Rand) Query { return Query{Text: "outcome:no_response"} }},
		{"errors-of-service", func(r *rand.Rand) Query {
			return Query{Text: "+outcome:server_error", Filter: Filter{Service: services[r.IntN(len(services))]}}
		}},
		{"service+1h", func(r *rand.Rand) Query {
			from, to := window(r, time.Hour)
			return Query{From: from, To: to, Filter: Filter{Service: services[r.IntN(len(services))]}}
		}},
		{"service+15m", func(r *rand.Rand) Query {
			from, to := window(r, 15*time.Minute)
			return Query{From: from, To: to, Filter: Filter{Service: services[r.IntN(len(services))]}}
		}},
		{"namespace+status+6h", func(r *rand.Rand) Query {
			from, to := window(r, 6*time.Hour)
			return Query{From: from, To: to, Text: "+status:>=400", Filter: Filter{Namespace: "shop"}}
		}},
		{"path-prefix", func(r *rand.Rand) Query {
			return Query{Text: "path:/api/v1/" + []string{"orders", "carts", "payments", "users", "sessions"}[r.IntN(5)] + "*"}
		}},
		{"bare-word", func(r *rand.Rand) Query {
			return Query{Text: []string{"orders", "sessions", "healthz", "invoices", "tokens"}[r.IntN(5)]}
		}},
		{"latency>500ms", func(*rand.Rand) Query { return Query{Text: "latency_ms:>500"} }},
		{"all", func(*rand.Rand) Query { return Query{} }},
	}
}

// BenchmarkSearch1M runs typical searches over the 1M-call index and
// reports latency percentiles per kind and over all.
func BenchmarkSearch1M(b *testing.B) {
	ix, _ := bench1M(b)
	ctx := context.Background()
	const rounds = 100
	var all []time.Duration
	for _, sc := range searchCases() {
		b.Run(sc.name, func(b *testing.B) {
			var lats []time.Duration
			var total uint64
			r := rand.New(rand.NewPCG(7, 7))
			for b.Loop() {
				for range rounds {
					q := sc.mk(r)
					start := time.Now()
					res, err := ix.Search(ctx, q)
					lats = append(lats, time.Since(start))
					if err != nil {
						b.Fatal(err)
					}
					total += res.Total
				}
			}
			all = append(all, lats...)
			reportLatencies(b, lats)
			b.ReportMetric(float64(total)/float64(rounds*b.N), "hits")
		})
	}
	b.Run("overall", func(b *testing.B) {
		for b.Loop() {
		}
		reportLatencies(b, all)
	})
}

func reportLatencies(b *testing.B, lats []time.Duration) {
	if len(lats) == 0 {
		return
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	pct := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / 1e6
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGet1M fetches calls by ID from the 1M-call index.
func BenchmarkGet1M(b *testing.B) {
	ix, calls := bench1M(b)
	r := rand.New(rand.NewPCG(3, 3))
	var lats []time.Duration
	for b.Loop() {
		c := calls[r.IntN(len(calls))]
		start := time.Now()
		if _, err := ix.Get(c.ID); err != nil {
			b.Fatal(err)
		}
		lats = append(lats, time.Since(start))
	}
	reportLatencies(b, lats)
}

// BenchmarkSummarize1M summarizes the 1M-call index: the whole day and a
// window, by each grouping, and with an address filter (the slow path).
func BenchmarkSummarize1M(b *testing.B) {
	ix, calls := bench1M(b)
	ctx := context.Background()
	cases := map[string]SummaryQuery{
		"day/by=service":     {GroupBy: ByService},
		"day/by=endpoint":    {GroupBy: ByEndpoint},
		"day/by=pod":         {GroupBy: ByPod},
		"day/by=status":      {GroupBy: ByStatus},
		"day/namespace=shop": {GroupBy: ByWorkload, Filter: Filter{Namespace: "shop"}},
		"6h/by=service":      {GroupBy: ByService, From: day0.Add(6 * time.Hour), To: day0.Add(12 * time.Hour)},
		// Bounds inside minutes: the edges are read from the call store.
		"6h-mid-minute/by=service": {GroupBy: ByService, From: day0.Add(6*time.Hour + 17*time.Second), To: day0.Add(12*time.Hour + 43*time.Second)},
		"1h/ip=pod/by=service":     {GroupBy: ByService, From: day0.Add(6 * time.Hour), To: day0.Add(7 * time.Hour), Filter: Filter{IP: calls[0].Dst.IP.String()}},
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		q := cases[name]
		b.Run(name, func(b *testing.B) {
			var sum Summary
			var lats []time.Duration
			for b.Loop() {
				start := time.Now()
				var err error
				if sum, err = ix.Summarize(ctx, q); err != nil {
					b.Fatal(err)
				}
				lats = append(lats, time.Since(start))
			}
			if sum.Calls == 0 {
				b.Fatal("summary of no calls")
			}
			b.ReportMetric(float64(sum.Calls), "calls")
			reportLatencies(b, lats)
		})
	}
}
