package analysis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// series is n calls of one endpoint, one every step from start; fails
// reports whether the i-th fails (503).
func series(start time.Time, n int, step time.Duration, fails func(i int) bool) []*proto.Call {
	calls := make([]*proto.Call, n)
	for i := range calls {
		status := "200"
		if fails(i) {
			status = "503"
		}
		calls[i] = &proto.Call{Proto: "http", TS: start.Add(time.Duration(i) * step), Src: frontend, Dst: newCart,
			Method: "GET", Path: "/api/cart", Status: status, LatencyNS: int64(2 * time.Millisecond)}
	}
	return calls
}

// TestFindChangePoint finds the moment the error rate rose in a series of
// real indexed calls: a step from 1 in 50 failing to 1 in 3 at minute 14
// of 20 is found within one of the moments tried, with the counts on each
// side; a flat rate has no change point, and the middle is taken.
func TestFindChangePoint(t *testing.T) {
	const n = 600
	start, step := t0, 2*time.Second // 20 minutes
	data := Window{start, start.Add(n * step)}
	rise := start.Add(14 * time.Minute) // call 420
	stepped := func(i int) bool {
		if start.Add(time.Duration(i) * step).Before(rise) {
			return i%50 == 0
		}
		return i%3 == 0
	}
	src := newSource(t, series(start, n, step, stepped), nil, nil)
	cp, err := FindChangePoint(context.Background(), src.Index(), Filter{}, data)
	if err != nil {
		t.Fatal(err)
	}
	if !cp.Significant || cp.Tried != 23 {
		t.Fatalf("step at %s: %+v, want a significant change over 23 moments", rise, cp)
	}
	spacing := data.To.Sub(data.From) / 24
	if d := cp.At.Sub(rise).Abs(); d > spacing {
		t.Errorf("change found at %s, %s from the rise at %s (moments are %s apart)", cp.At, d, rise, spacing)
	}
	// The counts are those of the calls on each side of At.
	var want [4]uint64
	for i := range n {
		after := !start.Add(time.Duration(i) * step).Before(cp.At)
		k := 0
		if after {
			k = 2
		}
		want[k+1]++
		if stepped(i) {
			want[k]++
		}
	}
	if got := [4]uint64{cp.FailedBefore, cp.CallsBefore, cp.FailedAfter, cp.CallsAfter}; got != want {
		t.Errorf("counts at %s: %v, want %v", cp.At, got, want)
	}
	if z := ZTwoProportions(want[0], want[1], want[2], want[3]); !near(cp.Z, z) || cp.Z < ZSignificant {
		t.Errorf("z = %f, want %f (≥ %g)", cp.Z, z, ZSignificant)
	}

	// 1 in 50 throughout: nothing to find.
	flat := newSource(t, series(start, n, step, func(i int) bool { return i%50 == 0 }), nil, nil)
	cp, err = FindChangePoint(context.Background(), flat.Index(), Filter{}, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ChangePoint{At: start.Add(10 * time.Minute), Tried: 23}); cp != want {
		t.Errorf("flat rate: %+v, want %+v", cp, want)
	}

	// The filter applies: the stepped endpoint's calls are not the old
	// pod's.
	cp, err = FindChangePoint(context.Background(), src.Index(), Filter{Pod: oldCart.Pod}, data)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Significant {
		t.Errorf("no call matches the filter, yet a change: %+v", cp)
	}
}

// TestFindChangePointFewCalls: a moment with fewer than MinCalls calls on
// a side is not tried, however the rates differ; a count that fails is
// an error.
func TestFindChangePointFewCalls(t *testing.T) {
	data := Window{t0, t0.Add(24 * time.Minute)}
	// 30 calls, those from minute 20 on all failing: no moment has
	// MinCalls calls on both sides, so none is tried.
	counts := func(from, to time.Time, failed bool) (uint64, error) {
		var n uint64
		for i := range 30 {
			ts := t0.Add(time.Duration(i) * 48 * time.Second)
			if ts.Before(from) || !ts.Before(to) || (failed && ts.Before(t0.Add(20*time.Minute))) {
				continue
			}
			n++
		}
		return n, nil
	}
	cp, err := findChangePoint(data, counts)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Significant {
		t.Errorf("change found with too few calls on a side: %+v", cp)
	}
	boom := errors.New("index closed")
	if _, err := findChangePoint(data, func(time.Time, time.Time, bool) (uint64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("count error: %v, want %v", err, boom)
	}
}
