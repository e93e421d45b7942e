package tlsplain

import (
	"bytes"
	"time"

	"github.com/wirescope/wirescope/bpf"
)

const (
	// HoldFor is how long the chunks of a new connection wait for the
	// store to hold its packets before they are dropped as not captured.
	HoldFor = 2 * time.Second
	// MaxHeldBytes bounds the plaintext waiting, all connections together;
	// past it the connection waiting longest is dropped.
	MaxHeldBytes = 4 << 20
	heldTick     = 100 * time.Millisecond
)

// heldChunks are chunks of connections the store does not hold yet, in
// arrival order per connection.
type heldChunks struct {
	conns map[connKey]*heldConn
	bytes int
	// settled is when settle last looked at the store.
	settled time.Time
}

type heldConn struct {
	since  time.Time
	chunks []bpf.Chunk
	bytes  int
}

func chunkKey(c *bpf.Chunk) connKey {
	k, _ := keyOf(c.Local, c.Remote)
	return k
}

// waiting reports whether c's connection has chunks waiting (c must wait
// behind them to keep the order).
func (h *heldChunks) waiting(c *bpf.Chunk) bool {
	_, ok := h.conns[chunkKey(c)]
	return ok
}

// add keeps a copy of c.
func (h *heldChunks) add(r *Reader, c *bpf.Chunk, now time.Time) {
	if h.conns == nil {
		h.conns = map[connKey]*heldConn{}
	}
	k := chunkKey(c)
	hc := h.conns[k]
	if hc == nil {
		hc = &heldConn{since: now}
		h.conns[k] = hc
	}
	cc := *c
	cc.Data = bytes.Clone(c.Data)
	hc.chunks = append(hc.chunks, cc)
	hc.bytes += len(cc.Data)
	h.bytes += len(cc.Data)
	for h.bytes > MaxHeldBytes {
		var oldest connKey
		var first time.Time
		for k, hc := range h.conns {
			if first.IsZero() || hc.since.Before(first) {
				oldest, first = k, hc.since
			}
		}
		h.drop(r, oldest)
	}
}

// settle writes the chunks of the connections the store now holds and
// drops those that waited HoldFor. It looks about every heldTick, not at
// every chunk read: each look asks the store about every connection
// waiting, and a capture filter that leaves most of the node's TLS
// connections out keeps many waiting.
func (h *heldChunks) settle(r *Reader, w *recordWriter, now time.Time) {
	if len(h.conns) == 0 || now.Sub(h.settled) < heldTick/2 {
		return
	}
	h.settled = now
	for k, hc := range h.conns {
		c := &hc.chunks[0]
		if r.o.Held(c.Local, c.Remote) {
			for i := range hc.chunks {
				w.write(&hc.chunks[i])
			}
			h.bytes -= hc.bytes
			delete(h.conns, k)
		} else if now.Sub(hc.since) >= HoldFor {
			h.drop(r, k)
		}
	}
}

func (h *heldChunks) drop(r *Reader, k connKey) {
	hc := h.conns[k]
	if hc == nil {
		return
	}
	r.mu.Lock()
	r.notCaptured += uint64(len(hc.chunks))
	r.mu.Unlock()
	h.bytes -= hc.bytes
	delete(h.conns, k)
}
