package index

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Filter narrows calls by what the MCP tools share: a call matches when
// its source endpoint or its destination endpoint matches every endpoint
// field set (Namespace, Pod, Workload, Service, Node, IP, Port), and its
// Proto equals Protocol if set. Comparisons ignore case.
type Filter struct {
	Namespace, Pod, Workload, Service, Node, IP string
	// Version is a pod's revision (pod-template-hash,
	// controller-revision-hash) on either side.
	Version  string
	Port     uint16
	Protocol string
}

// hasAddress reports whether the filter sets a field the aggregates do
// not keep (an address, a port, a version): summaries then count the
// calls found by search.
func (f Filter) hasAddress() bool { return f.IP != "" || f.Port != 0 || f.Version != "" }

// Query is a search.
type Query struct {
	// From and To bound the calls' times: [From, To); zero is unbounded.
	From, To time.Time
	// Text is a Bleve query string over the indexed fields (see the
	// package documentation); "" matches every call.
	Text   string
	Filter Filter
	// Limit is the page size; default DefaultLimit, at most MaxLimit.
	Limit int
	// Cursor continues a search from Result.Next (with the same Text,
	// Filter and window).
	Cursor string
}

// DefaultLimit and MaxLimit bound Query.Limit.
const (
	DefaultLimit = 50
	MaxLimit     = 10_000
)

// Result is a page of a search.
type Result struct {
	// Calls are newest first (time descending, then ID ascending).
	Calls []*proto.Call
	// Total counts all the calls matching, on every page.
	Total uint64
	// Next is the cursor of the next page; "" when there is none.
	Next string
}

const cursorPrefix = "c1:"

func encodeCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key))
}

func decodeCursor(c string) (string, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return "", 0, badQuery("cursor %q is not one a search returned", c)
	}
	key := string(b[len(cursorPrefix):])
	parts, ok := parseKey(key)
	if !ok {
		return "", 0, badQuery("cursor %q is not one a search returned", c)
	}
	return key, parts.ts, nil
}

// Search returns the calls matching q, newest first, a page at a time.
//
// Partitions are searched newest first for the page (sorting on the
// document key, which orders by time), until the page is full; the
// partitions left over are only counted, together, through a Bleve index
// alias. Each page counts every call matching, so Total stays the same
// from page to page while no calls are added. A search with no text and no
// filter reads its page from the key dictionary and counts whole
// partitions from their document counts.
func (ix *Index) Search(ctx context.Context, q Query) (Result, error) {
	var res Result
	if err := ix.begin(); err != nil {
		return res, err
	}
	defer ix.ops.RUnlock()
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	var after string
	afterTS := int64(0)
	if q.Cursor != "" {
		var err error
		if after, afterTS, err = decodeCursor(q.Cursor); err != nil {
			return res, err
		}
	}
	bq, err := ix.searchQuery(q.Text, q.Filter, q.From, q.To)
	if err != nil {
		return res, err
	}
	// Nothing but the window: every call in it matches.
	matchAll := strings.TrimSpace(q.Text) == "" && q.Filter == (Filter{})
	var keys []string
	var countOnly []bleve.Index
	for _, p := range ix.partitionsIn(q.From, q.To) {
		whole := p.within(q.From, q.To)
		switch {
		case matchAll && whole && (len(keys) > limit || after != "" && p.startNS > afterTS):
			n, err := p.bl.DocCount()
			if err != nil {
				return res, searchErr(err)
			}
			res.Total += n
		case len(keys) > limit || after != "" && p.startNS > afterTS:
			countOnly = append(countOnly, p.bl)
		case matchAll:
			page, n, err := p.newest(ctx, bq, whole, q.From, q.To, after, limit+1-len(keys))
			if err != nil {
				return res, err
			}
			keys = append(keys, page...)
			res.Total += n
		default:
			req := bleve.NewSearchRequestOptions(bq, limit+1-len(keys), 0, false)
			req.SortByCustom(search.SortOrder{&search.SortDocID{}})
			req.Score = "none"
			if after != "" {
				req.SearchAfter = []string{after}
			}
			sr, err := p.bl.SearchInContext(ctx, req)
			if err != nil {
				return res, searchErr(err)
			}
			res.Total += sr.Total
			for _, h := range sr.Hits {
				keys = append(keys, h.ID)
			}
		}
	}
	if len(countOnly) > 0 {
		n, err := countAll(ctx, countOnly, bq)
		if err != nil {
			return res, err
		}
		res.Total += n
	}
	if len(keys) > limit {
		keys = keys[:limit]
		res.Next = encodeCursor(keys[limit-1])
	}
	if res.Calls, err = ix.callsOf(keys); err != nil {
		return res, err
	}
	return res, nil
}

// within reports whether the partition lies inside [from, to).
func (p *partition) within(from, to time.Time) bool {
	return (from.IsZero() || from.UnixNano() <= p.startNS) && (to.IsZero() || p.startNS+int64(p.span) <= to.UnixNano())
}

// newest returns the keys of the newest calls in [from, to) after the
// cursor key, up to n, read in order from the key dictionary, and the
// number of calls in the window: for searches that match every call.
func (p *partition) newest(ctx context.Context, bq query.Query, whole bool, from, to time.Time, after string, n int) ([]string, uint64, error) {
	lo := after
	if !to.IsZero() {
		// Keys sort newest first: the window's end is their start.
		if k := keyPrefix(to.UnixNano() - 1); k > lo {
			lo = k
		}
	}
	hi := "\xff"
	if !from.IsZero() {
		hi = keyPrefix(from.UnixNano()) + "\xff"
	}
	fd, err := p.bl.FieldDictRange("_id", []byte(lo), []byte(hi))
	if err != nil {
		return nil, 0, searchErr(err)
	}
	var keys []string
	for len(keys) < n {
		e, err := fd.Next()
		if err != nil {
			fd.Close()
			return nil, 0, searchErr(err)
		}
		if e == nil {
			break
		}
		if e.Term == after {
			continue
		}
		keys = append(keys, e.Term)
	}
	fd.Close()
	var total uint64
	if whole {
		total, err = p.bl.DocCount()
	} else {
		total, err = countAll(ctx, []bleve.Index{p.bl}, bq)
	}
	if err != nil {
		return nil, 0, searchErr(err)
	}
	return keys, total, nil
}

// callsOf returns the stored calls of document keys, read in parallel.
func (ix *Index) callsOf(keys []string) ([]*proto.Call, error) {
	calls := make([]*proto.Call, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	next := make(chan int, len(keys))
	for i := range keys {
		next <- i
	}
	close(next)
	for range min(ix.opts.Workers, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				calls[i], errs[i] = ix.callOf(keys[i])
			}
		}()
	}
	wg.Wait()
	return calls, errors.Join(errs...)
}

// searchQuery returns the Bleve query of a search.
func (ix *Index) searchQuery(text string, f Filter, from, to time.Time) (query.Query, error) {
	tq, err := compiler{}.compileText(text)
	if err != nil {
		return nil, err
	}
	var timeQ query.Query
	if !from.IsZero() || !to.IsZero() {
		tr := &timeRangeQuery{from: 0, to: 1<<63 - 1}
		if !from.IsZero() {
			tr.from = from.UnixNano()
		}
		if !to.IsZero() {
			tr.to = to.UnixNano()
		}
		timeQ = tr
	}
	return conjoin(tq, filterQuery(f), timeQ), nil
}

// countAll counts the documents matching q in indexes, searched in
// parallel through an alias.
func countAll(ctx context.Context, indexes []bleve.Index, q query.Query) (uint64, error) {
	alias := bleve.NewIndexAlias(indexes...)
	req := bleve.NewSearchRequestOptions(q, 0, 0, false)
	req.Score = "none"
	sr, err := alias.SearchInContext(ctx, req)
	if err != nil {
		return 0, searchErr(err)
	}
	return sr.Total, nil
}

func searchErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("search: %w", err)
}

// partitionOfKey returns the partition holding the document key's call
// and the call's ID.
func (ix *Index) partitionOfKey(key string) (*partition, string, bool) {
	parts, ok := parseKey(key)
	if !ok {
		return nil, "", false
	}
	p, _ := ix.partitionAt(ix.partitionStart(parts.ts), false)
	return p, parts.id, p != nil
}

// callOf returns the stored call of a document key.
func (ix *Index) callOf(key string) (*proto.Call, error) {
	p, id, ok := ix.partitionOfKey(key)
	if !ok {
		return nil, fmt.Errorf("search hit %q: no partition holds it", key)
	}
	c, err := p.store.Get(id)
	if err != nil {
		return nil, fmt.Errorf("search hit %s: %w", id, err)
	}
	return c, nil
}
