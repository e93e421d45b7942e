package tlsplain

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
)

type packets struct{ got []capture.Packet }

func (p *packets) Write(pk *capture.Packet, _ string) error {
	q := *pk
	q.Data = append([]byte(nil), pk.Data...)
	p.got = append(p.got, q)
	return nil
}

// TestHeld: a new connection's chunks wait, in order, until the store
// holds its packets; those of a connection it never holds are dropped
// after HoldFor and counted; the bytes waiting are bounded.
func TestHeld(t *testing.T) {
	held := map[netip.AddrPort]bool{}
	out := &packets{}
	r := newReader(out, Options{Held: func(a, b netip.AddrPort) bool { return held[a] || held[b] }, MaxConnections: 16, MaxProcesses: 16})
	w := &recordWriter{r: r}
	var h heldChunks
	other := netip.MustParseAddrPort("10.0.0.9:40001")
	chunk := func(local netip.AddrPort, data string) *bpf.Chunk {
		return &bpf.Chunk{PID: 1, Local: local, Remote: server, Len: uint32(len(data)), Data: []byte(data), Time: t0}
	}
	h.add(r, chunk(client, "first "), t0)
	c := chunk(client, "second")
	if !h.waiting(c) {
		t.Fatal("a chunk of a waiting connection does not wait behind it")
	}
	h.add(r, c, t0)
	h.add(r, chunk(other, "never"), t0)
	h.settle(r, w, t0.Add(time.Second))
	if len(out.got) != 0 {
		t.Fatalf("%d records written before the store held the connection", len(out.got))
	}
	held[client] = true
	h.settle(r, w, t0.Add(1500*time.Millisecond))
	if len(out.got) != 2 {
		t.Fatalf("%d records after the store held the connection, want 2", len(out.got))
	}
	for i, want := range []string{"first ", "second"} {
		if d := decode(t, &out.got[i]); d.payload != want || d.seq != uint32(1+6*i) {
			t.Errorf("record %d: %q seq %d", i, d.payload, d.seq)
		}
	}
	h.settle(r, w, t0.Add(HoldFor))
	if r.notCaptured != 1 || len(h.conns) != 0 || h.bytes != 0 {
		t.Errorf("not captured %d, %d connections and %d bytes still waiting", r.notCaptured, len(h.conns), h.bytes)
	}
	// Past MaxHeldBytes the connection waiting longest goes.
	big := make([]byte, MaxHeldBytes/2+1)
	a, b := netip.MustParseAddrPort("10.0.0.9:1"), netip.MustParseAddrPort("10.0.0.9:2")
	h.add(r, &bpf.Chunk{Local: a, Remote: server, Data: big}, t0)
	h.add(r, &bpf.Chunk{Local: b, Remote: server, Data: big}, t0.Add(time.Millisecond))
	if h.bytes > MaxHeldBytes || len(h.conns) != 1 || r.notCaptured != 2 {
		t.Errorf("%d bytes waiting in %d connections, %d not captured", h.bytes, len(h.conns), r.notCaptured)
	}
	if _, ok := h.conns[chunkKey(&bpf.Chunk{Local: b, Remote: server})]; !ok {
		t.Error("the newer connection was dropped, not the older")
	}
}
