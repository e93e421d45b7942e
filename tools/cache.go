package tools

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"

	"github.com/wirescope/wirescope/index"
)

// Answers of search_calls and summarize_traffic depend only on their
// arguments as resolved (the window in absolute times, the filters, the
// page, the budget), the note ensureDissected gave and what the index
// holds: the same question asked again of an index that has not changed
// gets the same text. Many clients asking the same questions (an
// assistant's first steps are much alike) are answered from memory.
//
// An answer is kept under the index's Version, read before the answer is
// computed and checked after: an index that changed meanwhile (calls
// added, a partition dropped, a growing capture read afresh, which opens
// another index) has another version, so an answer is never served once
// what it was computed from has changed. Concurrent askers of one
// question wait for the first to compute it.

// Bounds of the answer cache: entries and bytes of text, the least
// recently used dropped first. An answer is at most MaxMaxTokens tokens,
// about 4 bytes each.
const (
	answerCacheEntries = 4096
	answerCacheBytes   = 16 << 20
)

// answers is the cache, in shards by key so that the goroutines of many
// clients do not queue on one lock.
var answers = func() *shardedAnswers {
	var s shardedAnswers
	for i := range s.shards {
		s.shards[i] = newAnswerCache(answerCacheEntries/len(s.shards), answerCacheBytes/len(s.shards))
	}
	return &s
}()

type shardedAnswers struct{ shards [16]*answerCache }

func (s *shardedAnswers) answer(ctx context.Context, ix *index.Index, version uint64, key string, compute func() (string, error)) (string, error) {
	return s.shards[maphash.String(answerSeed, key)%uint64(len(s.shards))].answer(ctx, ix, version, key, compute)
}

var answerSeed = maphash.MakeSeed()

type answerCache struct {
	mu                sync.Mutex
	maxEntries, limit int
	bytes             int
	lru               *list.List // of *answerEntry, most recent first
	byKey             map[string]*list.Element
	pending           map[string]*answerCall
}

type answerEntry struct {
	key, text string
}

// answerCall is a computation in flight, which later askers wait for.
type answerCall struct {
	done chan struct{}
	text string
	err  error
}

func newAnswerCache(entries, bytes int) *answerCache {
	return &answerCache{maxEntries: entries, limit: bytes, lru: list.New(), byKey: map[string]*list.Element{},
		pending: map[string]*answerCall{}}
}

// answerKey is the cache key of a question: the tool, the index's version
// and what the answer is made from, as JSON.
func answerKey(tool string, version uint64, parts ...any) string {
	b, err := json.Marshal(parts)
	if err != nil {
		return "" // not cached
	}
	return tool + "\x00" + strconv.FormatUint(version, 10) + "\x00" + string(b)
}

// answer returns the text cached under key or, when there is none,
// computes it with compute, and keeps it when ix's version is still
// version afterwards. Errors are not kept.
func (c *answerCache) answer(ctx context.Context, ix *index.Index, version uint64, key string, compute func() (string, error)) (string, error) {
	if key == "" {
		return compute()
	}
	c.mu.Lock()
	if el, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(el)
		text := el.Value.(*answerEntry).text
		c.mu.Unlock()
		return text, nil
	}
	if p, ok := c.pending[key]; ok {
		c.mu.Unlock()
		select {
		case <-p.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if p.err != nil {
			// The first asker's failure may be its own (its context
			// cancelled): compute again rather than share it.
			return compute()
		}
		return p.text, nil
	}
	p := &answerCall{done: make(chan struct{})}
	c.pending[key] = p
	c.mu.Unlock()

	returned := false
	defer func() {
		if !returned {
			// compute panicked (the server recovers): nothing to keep,
			// and the askers waiting compute for themselves.
			p.err = errNoAnswer
		}
		c.mu.Lock()
		delete(c.pending, key)
		if p.err == nil && ix.Version() == version {
			c.put(key, p.text)
		}
		c.mu.Unlock()
		close(p.done)
	}()
	p.text, p.err = compute()
	returned = true
	return p.text, p.err
}

var errNoAnswer = errors.New("no answer")

// put adds an answer; c.mu is held.
func (c *answerCache) put(key, text string) {
	size := len(key) + len(text)
	if size > c.limit/4 {
		return
	}
	if el, ok := c.byKey[key]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.byKey[key] = c.lru.PushFront(&answerEntry{key: key, text: text})
	c.bytes += size
	for c.lru.Len() > c.maxEntries || c.bytes > c.limit {
		el := c.lru.Back()
		e := el.Value.(*answerEntry)
		c.lru.Remove(el)
		delete(c.byKey, e.key)
		c.bytes -= len(e.key) + len(e.text)
	}
}
