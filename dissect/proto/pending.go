package proto

import (
	"iter"
	"slices"
	"time"
)

// Pending is what one connection or flow has asked and not yet been
// answered, oldest first, for a parser to match responses against: in
// order (the oldest: HTTP/1, Redis, PostgreSQL) or by key (DNS IDs, Kafka
// correlation IDs, HTTP/2 stream IDs; several requests may share a key). It
// is bounded (Max) and keeps count of the memory its requests take (Size),
// for the parser's Buffering. The zero value holds nothing and takes
// Limits.MaxPending requests once Max is set; a parser owns one and uses it
// from one goroutine.
type Pending[K comparable, V any] struct {
	// Max is the most requests held; adding one more gives up the oldest.
	Max int
	// Size, when set, is about the memory a request takes while held.
	Size func(V) int
	// items[head:] are held, oldest first: taking the oldest moves head
	// rather than every request held (a flood holds Max of them).
	items []pendingItem[K, V]
	head  int
	kept  int
}

type pendingItem[K comparable, V any] struct {
	key K
	at  time.Time
	v   V
}

// Add holds request v under key, sent at. When Max are held already, the
// oldest is given up and returned (full true) for the parser to emit as
// unanswered, saying why.
func (p *Pending[K, V]) Add(key K, at time.Time, v V) (oldest V, full bool) {
	if p.Max > 0 && p.Len() >= p.Max {
		oldest, full = p.removeAt(0), true
	}
	if p.head > 0 && len(p.items) == cap(p.items) && p.head >= len(p.items)/2 {
		// The room behind the window is at least what is held: reuse it.
		n := copy(p.items, p.items[p.head:])
		clear(p.items[n:])
		p.items, p.head = p.items[:n], 0
	}
	p.items = append(p.items, pendingItem[K, V]{key, at, v})
	p.kept += p.size(v)
	return oldest, full
}

// Oldest returns the oldest request, without taking it.
func (p *Pending[K, V]) Oldest() (v V, ok bool) {
	if p.head == len(p.items) {
		return v, false
	}
	return p.items[p.head].v, true
}

// TakeOldest takes the oldest request: the one an in-order response
// answers.
func (p *Pending[K, V]) TakeOldest() (v V, ok bool) {
	if p.head == len(p.items) {
		return v, false
	}
	return p.removeAt(0), true
}

// Find returns the oldest request under key that match accepts (nil:
// any), without taking it.
func (p *Pending[K, V]) Find(key K, match func(V) bool) (v V, ok bool) {
	if i := p.index(key, match); i >= 0 {
		return p.items[p.head+i].v, true
	}
	return v, false
}

// Take takes the oldest request under key that match accepts (nil: any):
// the one a response with that key answers.
func (p *Pending[K, V]) Take(key K, match func(V) bool) (v V, ok bool) {
	if i := p.index(key, match); i >= 0 {
		return p.removeAt(i), true
	}
	return v, false
}

// Expire takes the requests sent before deadline, oldest first, and hands
// each to give (to emit as unanswered); a zero deadline takes them all.
func (p *Pending[K, V]) Expire(deadline time.Time, give func(V)) {
	kept := p.items[:0]
	var gone []V
	for _, it := range p.items[p.head:] {
		if deadline.IsZero() || it.at.Before(deadline) {
			gone = append(gone, it.v)
			p.kept -= p.size(it.v)
			continue
		}
		kept = append(kept, it)
	}
	clear(p.items[len(kept):])
	p.items, p.head = kept, 0
	if len(p.items) == 0 {
		// A flood may have grown the slice: let it go.
		p.items, p.kept = nil, 0
	}
	for _, v := range gone {
		give(v)
	}
}

// At returns the i-th oldest request held (0: the oldest).
func (p *Pending[K, V]) At(i int) (v V, ok bool) {
	if i < 0 || i >= p.Len() {
		return v, false
	}
	return p.items[p.head+i].v, true
}

// All yields the requests held, oldest first; the parser must not change
// p while it ranges.
func (p *Pending[K, V]) All() iter.Seq[V] {
	return func(yield func(V) bool) {
		for _, it := range p.items[p.head:] {
			if !yield(it.v) {
				return
			}
		}
	}
}

// Len is how many requests are held.
func (p *Pending[K, V]) Len() int { return len(p.items) - p.head }

// Kept is about the memory the held requests take, by Size.
func (p *Pending[K, V]) Kept() int { return p.kept }

// index returns the position (from the oldest) of the oldest request
// under key that match accepts, or -1.
func (p *Pending[K, V]) index(key K, match func(V) bool) int {
	live := p.items[p.head:]
	for i := range live {
		if live[i].key == key && (match == nil || match(live[i].v)) {
			return i
		}
	}
	return -1
}

// removeAt takes the i-th oldest request.
func (p *Pending[K, V]) removeAt(i int) V {
	v := p.items[p.head+i].v
	if i == 0 {
		var zero pendingItem[K, V]
		p.items[p.head] = zero
		p.head++
		if p.head == len(p.items) {
			p.items, p.head = p.items[:0], 0
		}
	} else {
		p.items = slices.Delete(p.items, p.head+i, p.head+i+1)
	}
	p.kept -= p.size(v)
	return v
}

func (p *Pending[K, V]) size(v V) int {
	if p.Size == nil {
		return 0
	}
	return p.Size(v)
}
