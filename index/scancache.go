package index

import (
	"sync"
	"sync/atomic"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Summaries count the calls at a window's edges (and, with an address
// filter, all the calls of the window) from the call store, which holds
// each call whole, as JSON: decoding them was most of a summary's time.
// A partition keeps the calls it decoded for summaries, without their
// headers and bodies (which aggregates do not count), so that the next
// summary over the same minutes reads them from memory. A stored call never
// changes (Add skips IDs already stored), and the cache goes with its
// partition when the partition is dropped or closed. The calls cached are
// only ever counted (aggregates.addAll), never handed out.

// maxScanCached bounds the calls cached over all partitions (a few hundred
// bytes each without headers and bodies); a partition whose cache would
// take more starts its own over.
const maxScanCached = 100_000

// scanCached counts the calls cached over all partitions.
var scanCached atomic.Int64

// scanCache is a partition's cache of calls decoded for summaries, by
// document key: a sync.Map, as every summary reads many keys and few are
// written, by many goroutines at once. The zero value is empty.
type scanCache struct {
	calls sync.Map // document key → *proto.Call
	n     atomic.Int64
}

// get returns the cached calls of keys (nil where there is none) and the
// keys missing.
func (s *scanCache) get(keys []string, out []*proto.Call) (missing []int) {
	for i, k := range keys {
		if c, ok := s.calls.Load(k); ok {
			out[i] = c.(*proto.Call)
		} else {
			missing = append(missing, i)
		}
	}
	return missing
}

// put caches calls by key, stripped of what summaries do not read, and
// returns them so.
func (s *scanCache) put(keys []string, calls []*proto.Call) []*proto.Call {
	if scanCached.Load()+int64(len(keys)) > maxScanCached {
		s.drop()
	}
	slim := make([]*proto.Call, len(calls))
	for i, c := range calls {
		sc := *c
		sc.Request.Headers, sc.Request.Body = nil, ""
		sc.Response.Headers, sc.Response.Body = nil, ""
		slim[i] = &sc
		if _, loaded := s.calls.LoadOrStore(keys[i], &sc); !loaded {
			s.n.Add(1)
			scanCached.Add(1)
		}
	}
	return slim
}

// drop empties the cache (the partition closes, or the cache is full).
// Calls stored meanwhile may be dropped or kept uncounted: the bound is
// approximate, never exceeded by more than the summaries running at once
// read.
func (s *scanCache) drop() {
	scanCached.Add(-s.n.Swap(0))
	s.calls.Clear()
}

// scannedCalls returns the calls of p's document keys for counting: from
// p's cache, the others read from its call store (in parallel) and cached.
func (ix *Index) scannedCalls(p *partition, keys []string) ([]*proto.Call, error) {
	calls := make([]*proto.Call, len(keys))
	missing := p.scanned.get(keys, calls)
	if len(missing) == 0 {
		return calls, nil
	}
	mk := make([]string, len(missing))
	for j, i := range missing {
		mk[j] = keys[i]
	}
	read, err := ix.callsOf(mk)
	if err != nil {
		return nil, err
	}
	for j, c := range p.scanned.put(mk, read) {
		calls[missing[j]] = c
	}
	return calls, nil
}
