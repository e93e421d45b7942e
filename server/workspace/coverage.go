package workspace

import (
	"slices"
	"time"

	"github.com/wirescope/wirescope/tools"
)

// coverage is a set of time ranges: sorted, disjoint and not touching.
type coverage []tools.Window

// add includes [from, to).
func (c coverage) add(from, to time.Time) coverage {
	if !from.Before(to) {
		return c
	}
	out := make(coverage, 0, len(c)+1)
	i := 0
	for ; i < len(c) && c[i].To.Before(from); i++ {
		out = append(out, c[i])
	}
	for ; i < len(c) && !c[i].From.After(to); i++ {
		if c[i].From.Before(from) {
			from = c[i].From
		}
		if c[i].To.After(to) {
			to = c[i].To
		}
	}
	out = append(out, tools.Window{From: from, To: to})
	return append(out, c[i:]...)
}

// split divides [from, to) into the parts c does not cover (gaps) and
// those it does (covered), each in time order.
func (c coverage) split(from, to time.Time) (gaps, covered []tools.Window) {
	at := from
	for _, w := range c {
		if !w.To.After(at) {
			continue
		}
		if !w.From.Before(to) {
			break
		}
		if w.From.After(at) {
			gaps = append(gaps, tools.Window{From: at, To: w.From})
			at = w.From
		}
		end := w.To
		if end.After(to) {
			end = to
		}
		covered = append(covered, tools.Window{From: at, To: end})
		at = end
	}
	if at.Before(to) {
		gaps = append(gaps, tools.Window{From: at, To: to})
	}
	return gaps, covered
}

// clone copies c for a reader outside the lock.
func (c coverage) clone() []tools.Window { return slices.Clone(c) }
