package analysis

import (
	"context"
	"time"

	"github.com/wirescope/wirescope/index"
)

// changePoints is how many equal parts FindChangePoint cuts the data
// into: it tries the changePoints-1 moments between them.
const changePoints = 24

// ChangePoint is where FindChangePoint would compare.
type ChangePoint struct {
	// At is the moment the error rate rose most significantly, or, when
	// it rose significantly at none of the moments tried, the middle of
	// the data.
	At time.Time
	// Significant is set when the rise at At reached ZSignificant.
	Significant bool
	// Tried is how many moments were tried.
	Tried int
	// Z is the rise's z score; valid iff Significant.
	Z float64
	// The failed calls and calls before At and from At on; valid iff
	// Significant.
	FailedBefore, CallsBefore, FailedAfter, CallsAfter uint64
}

// failedQuery matches the calls that count as failed.
const failedQuery = "outcome:server_error outcome:client_error outcome:no_response"

// FindChangePoint finds the moment in data ([From, To): all the data) the
// error rate of the calls matching f rose most significantly: at each of
// evenly spaced moments it compares the calls before with those after,
// counted by the index (no call is read). Moments with fewer than
// MinCalls calls on either side are skipped.
func FindChangePoint(ctx context.Context, ix *index.Index, f Filter, data Window) (ChangePoint, error) {
	return findChangePoint(data, func(from, to time.Time, failed bool) (uint64, error) {
		q := index.Query{From: from, To: to, Filter: f.Index(), Limit: 1}
		if failed {
			q.Text = failedQuery
		}
		res, err := ix.Search(ctx, q)
		return res.Total, err
	})
}

// findChangePoint is FindChangePoint over any count of calls in [from,
// to), all of them or the failed ones.
func findChangePoint(data Window, total func(from, to time.Time, failed bool) (uint64, error)) (ChangePoint, error) {
	span := data.To.Sub(data.From)
	cp := ChangePoint{Tried: changePoints - 1}
	for i := 1; i < changePoints; i++ {
		p := data.From.Add(span * time.Duration(i) / changePoints)
		var n [4]uint64 // failed and calls before, after
		for j, q := range []struct {
			from, to time.Time
			failed   bool
		}{{data.From, p, true}, {data.From, p, false}, {p, data.To, true}, {p, data.To, false}} {
			var err error
			if n[j], err = total(q.from, q.to, q.failed); err != nil {
				return ChangePoint{}, err
			}
		}
		if n[1] < MinCalls || n[3] < MinCalls {
			continue
		}
		if z := ZTwoProportions(n[0], n[1], n[2], n[3]); z > cp.Z {
			cp.Z, cp.At = z, p
			cp.FailedBefore, cp.CallsBefore, cp.FailedAfter, cp.CallsAfter = n[0], n[1], n[2], n[3]
		}
	}
	if cp.Z < ZSignificant {
		return ChangePoint{At: data.From.Add(span / 2), Tried: cp.Tried}, nil
	}
	cp.Significant = true
	return cp, nil
}
