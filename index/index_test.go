package index

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

func TestDropPartition(t *testing.T) {
	ix, dir := openTest(t, nil)
	calls := genCalls(1200, 71, 3*time.Hour)
	mustAdd(t, ix, calls)
	parts := ix.Partitions()
	if len(parts) != 3 {
		t.Fatalf("%d partitions, want 3", len(parts))
	}
	drop := parts[1]
	if err := ix.DropPartition(drop.Start); err != nil {
		t.Fatal(err)
	}
	var kept []*proto.Call
	for _, c := range calls {
		if c.TS.Before(drop.Start) || !c.TS.Before(drop.End) {
			kept = append(kept, c)
		}
	}
	checkHolds(t, ix, kept)
	for _, c := range calls {
		if !c.TS.Before(drop.Start) && c.TS.Before(drop.End) {
			if _, err := ix.Get(c.ID); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get dropped call: %v, want ErrNotFound", err)
			}
			break
		}
	}
	if err := ix.DropPartition(drop.Start); !errors.Is(err, ErrNotFound) {
		t.Errorf("dropping twice: %v, want ErrNotFound", err)
	}
	if err := ix.DropPartition(drop.Start.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Errorf("dropping a time that starts no partition: %v, want ErrNotFound", err)
	}
	if got := ix.Partitions(); len(got) != 2 || got[0].Start != parts[0].Start || got[1].Start != parts[2].Start {
		t.Errorf("partitions after drop: %+v", got)
	}
	// The drop survives a reopen, and the partition can be filled again.
	ix.Close()
	ix, err := Open(dir, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	checkHolds(t, ix, kept)
	mustAdd(t, ix, calls)
	checkHolds(t, ix, calls)
}

// TestConcurrent searches, summarizes and gets while calls are added (run
// with -race).
func TestConcurrent(t *testing.T) {
	ix, _ := openTest(t, &Options{BatchSize: 250, Workers: 3})
	calls := genCalls(6000, 81, 4*time.Hour)
	mustAdd(t, ix, calls[:500])
	ctx := context.Background()
	var added atomic.Int64
	added.Store(500)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	reader := func(fn func() error) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := fn(); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(4)
	go reader(func() error {
		before := uint64(added.Load())
		res, err := ix.Search(ctx, Query{Text: "", Limit: 5})
		if err == nil && res.Total < before {
			return errors.New("search lost calls already added")
		}
		return err
	})
	go reader(func() error {
		before := uint64(added.Load())
		sum, err := ix.Summarize(ctx, SummaryQuery{GroupBy: ByEndpoint})
		if err == nil && sum.Calls < before {
			return errors.New("summary lost calls already added")
		}
		return err
	})
	go reader(func() error {
		_, err := ix.Search(ctx, Query{Text: "+status:>=500", Filter: Filter{Namespace: "shop"},
			From: day0.Add(time.Hour), To: day0.Add(3 * time.Hour)})
		return err
	})
	go reader(func() error {
		n := int(added.Load())
		_, err := ix.Get(calls[n-1].ID)
		ix.Stats()
		ix.Partitions()
		return err
	})
	// Two writers, each adding in chunks, overlapping partitions.
	var wwg sync.WaitGroup
	for w := range 2 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := 500 + w*250; i < len(calls); i += 500 {
				chunk := calls[i:min(i+250, len(calls))]
				if err := ix.Add(ctx, chunk); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wwg.Wait()
	added.Store(int64(len(calls)))
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkHolds(t, ix, calls)
}

// TestCloseWaits closes the index while operations run: Close waits for
// the operations in flight, which finish (their calls are all there after
// reopening), later ones report ErrClosed, and nothing panics. The
// scenario repeats until an Add was in flight when Close began, so that
// the race is exercised, not just possible.
func TestCloseWaits(t *testing.T) {
	calls := genCalls(3000, 82, 2*time.Hour)
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 1; ; attempt++ {
		if overlapped := closeDuringOps(t, calls); overlapped > 0 {
			t.Logf("attempt %d: %d Adds were in flight when Close began", attempt, overlapped)
			return
		}
		if t.Failed() || time.Now().After(deadline) {
			t.Fatalf("in %d attempts no Add was in flight when Close began", attempt)
		}
	}
}

// closeDuringOps adds and searches calls from 4 goroutines, closes the
// index once the first Add is done, and checks that every Add that
// succeeded holds after reopening. It returns how many Adds succeeded
// after Close was called: Close had to wait for them.
func closeDuringOps(t *testing.T, calls []*proto.Call) int {
	t.Helper()
	dir := t.TempDir()
	ix, err := Open(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		added     [][]*proto.Call
		closing   atomic.Bool
		overlap   atomic.Int32
		firstOnce sync.Once
	)
	first := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i * 750; j < (i+1)*750; j += 25 {
				batch := calls[j : j+25]
				err := ix.Add(ctx, batch)
				switch {
				case errors.Is(err, ErrClosed):
					return
				case err != nil:
					t.Error(err)
					return
				}
				if closing.Load() {
					overlap.Add(1)
				}
				mu.Lock()
				added = append(added, batch)
				mu.Unlock()
				firstOnce.Do(func() { close(first) })
				if _, err := ix.Search(ctx, Query{}); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
			}
		}()
	}
	select {
	case <-first:
	case <-time.After(time.Minute):
		t.Fatal("no Add finished within a minute")
	}
	closing.Store(true)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// What was added before Close is all there.
	ix, err = Open(dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	want := 0
	for _, batch := range added {
		for _, c := range batch {
			want++
			if _, err := ix.Get(c.ID); err != nil {
				t.Fatalf("call %s, added before Close returned, after reopening: %v", c.ID, err)
			}
		}
	}
	n := ix.Stats().Calls
	if _, total := searchAll(t, ix, Query{Limit: 3000}); total != n || n != uint64(want) {
		t.Errorf("after close and reopen: search %d calls, store %d, added %d", total, n, want)
	}
	return int(overlap.Load())
}

// TestRealCaptures indexes the calls the repository's captures of real
// nginx and dnsmasq servers dissect into.
func TestRealCaptures(t *testing.T) {
	var calls []*proto.Call
	for _, path := range []string{"../dissect/http1/testdata/nginx.pcap", "../dissect/dns/testdata/dnsmasq.pcap"} {
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		e := dissect.New(dissect.Options{OnCall: func(c *proto.Call) { calls = append(calls, c) }})
		var p capture.Packet
		for {
			err := src.Next(&p)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			e.Packet(&p)
		}
		e.Finish()
		src.Close()
	}
	var nHTTP, nDNS, n404, nNX int
	for _, c := range calls {
		switch {
		case c.Proto == "http":
			nHTTP++
			if c.Status == "404" {
				n404++
			}
		case c.Proto == "dns":
			nDNS++
			if c.Status == "NXDOMAIN" {
				nNX++
			}
		}
	}
	if nHTTP == 0 || nDNS == 0 || n404 == 0 || nNX == 0 {
		t.Fatalf("captures gave %d http (%d 404), %d dns (%d NXDOMAIN) calls", nHTTP, n404, nDNS, nNX)
	}
	ix, _ := openTest(t, nil)
	mustAdd(t, ix, calls)
	checkHolds(t, ix, calls)
	ctx := context.Background()
	for text, want := range map[string]int{"proto:http": nHTTP, "proto:dns": nDNS, "status:404": n404, "NXDOMAIN": nNX} {
		res, err := ix.Search(ctx, Query{Text: text})
		if err != nil || res.Total != uint64(want) {
			t.Errorf("%q: %d calls (err %v), want %d", text, res.Total, err, want)
		}
	}
	// A path and a DNS name, by word and by wildcard.
	res, err := ix.Search(ctx, Query{Text: "+path:/index.html +method:GET"})
	if err != nil || res.Total == 0 || res.Calls[0].Path != "/index.html" {
		t.Errorf("path:/index.html: %+v, %v", res, err)
	}
	res, err = ix.Search(ctx, Query{Text: "path:*.shop.svc.cluster.local"})
	if err != nil || res.Total == 0 {
		t.Errorf("DNS name wildcard: %d calls, %v", res.Total, err)
	}
	for _, c := range res.Calls {
		if c.Proto != "dns" || filepath.Ext(c.Path) != ".local" {
			t.Errorf("DNS name wildcard matched %s %s", c.Proto, c.Path)
		}
	}
	sum, err := ix.Summarize(ctx, SummaryQuery{GroupBy: ByProtocol})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, g := range sum.Groups {
		got[g.Key] = g.Calls
	}
	if got["http"] != uint64(nHTTP) || got["dns"] != uint64(nDNS) {
		t.Errorf("summary by protocol: %v, want http %d dns %d", got, nHTTP, nDNS)
	}
	// Calls from a real capture round-trip through the store.
	for _, c := range calls {
		g, err := ix.Get(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g.AppendJSON(nil), c.AppendJSON(nil)) {
			t.Errorf("get %s:\n got %s\nwant %s", c.ID, g.AppendJSON(nil), c.AppendJSON(nil))
		}
	}
}

func TestIPv6(t *testing.T) {
	ix, _ := openTest(t, nil)
	calls := genCalls(50, 91, time.Hour)
	v6 := netip.MustParseAddr("fd00::1")
	calls[7].Src.IP = v6
	calls[7].Src.Port = 40000
	mustAdd(t, ix, calls)
	ctx := context.Background()
	for _, q := range []Query{
		{Text: `src.ip:"fd00::1"`},
		{Text: `src.ip:"FD00:0::1"`},
		{Filter: Filter{IP: "FD00:0::1"}},
		{Filter: Filter{IP: "fd00::1", Port: 40000}},
	} {
		res, err := ix.Search(ctx, q)
		if err != nil || res.Total != 1 || res.Calls[0].ID != calls[7].ID {
			t.Errorf("%+v: %d calls, %v", q, res.Total, err)
		}
	}
	sum, err := ix.Summarize(ctx, SummaryQuery{Filter: Filter{IP: "fd00:0::1"}})
	if err != nil || sum.Calls != 1 {
		t.Errorf("summary by IPv6: %d calls, %v", sum.Calls, err)
	}
}

// testURLProto is a protocol whose paths are URLs.
type testURLProto struct{}

func (testURLProto) Name() string { return "test-url" }
func (testURLProto) Describe() proto.Description {
	return proto.Description{Path: proto.PathURL}
}

func TestRoute(t *testing.T) {
	proto.Register(testURLProto{})
	for _, tc := range []struct {
		c    proto.Call
		want string
	}{
		{proto.Call{Proto: "http", Method: "GET", Path: "/api/orders/12345"}, "GET /api/orders/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/api/orders/12345?expand=items#x"}, "GET /api/orders/{id}"},
		{proto.Call{Proto: "http", Method: "PUT", Path: "/v1/carts/8281c6ac-54b4-881c-e488-669257c417f7/items/3"}, "PUT /v1/carts/{id}/items/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/objects/deadbeefcafe0042"}, "GET /objects/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/objects/DEADBEEF"}, "GET /objects/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/s/aZ3kP9qR2tX8"}, "GET /s/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/t/eyJhbGciOi-J9_x2Q5"}, "GET /t/{id}"},
		// Words, versions and short mixed tokens stay.
		{proto.Call{Proto: "http", Method: "GET", Path: "/api/v2/feature-flags/oauth2/healthz"}, "GET /api/v2/feature-flags/oauth2/healthz"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/api/cafe/facade"}, "GET /api/cafe/facade"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/my-service-v2-canary"}, "GET /my-service-v2-canary"},
		{proto.Call{Proto: "http", Method: "GET", Path: "http://proxy.example:8080/a/77"}, "GET /a/{id}"},
		{proto.Call{Proto: "http", Method: "GET", Path: "/"}, "GET /"},
		{proto.Call{Proto: "http", Path: "/orphan/5"}, "/orphan/{id}"},
		{proto.Call{Proto: "dns", Method: "A", Path: "web.shop.svc.cluster.local"}, "A web.shop.svc.cluster.local"},
		{proto.Call{Proto: "dns", Method: "PTR", Path: "10.0.0.10.in-addr.arpa"}, "PTR 10.0.0.10.in-addr.arpa"},
		{proto.Call{Proto: "redis", Method: "GET", Path: "session:123"}, "GET session:123"},
		{proto.Call{Proto: "grpc", Method: "POST"}, "POST"},
		{proto.Call{Proto: "http"}, ""},
		// What templates a path is the protocol's description, not its name.
		{proto.Call{Proto: "test-url", Method: "FETCH", Path: "/things/12345?x=1"}, "FETCH /things/{id}"},
		{proto.Call{Proto: "test-unregistered", Method: "FETCH", Path: "/things/12345?x=1"}, "FETCH /things/12345?x=1"},
	} {
		if got := Route(&tc.c); got != tc.want {
			t.Errorf("Route(%s %q) = %q, want %q", tc.c.Method, tc.c.Path, got, tc.want)
		}
	}
}
