package tlsplain

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/segstore"
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

// TestOpaque: a connection is opaque when no side's process is read, and
// says why for each side it knows; a side read, or nothing known, says "".
func TestOpaque(t *testing.T) {
	r := newReader(&packets{}, Options{MaxConnections: 16, MaxProcesses: 16})
	r.procs[10] = &Process{PID: 10, Comm: "nginx", Libraries: []Library{{Name: "OpenSSL 3.0.19", Probed: true}}}
	r.procs[11] = &Process{PID: 11, Comm: "static-tls", Libraries: []Library{{Reason: "statically linked without symbols"}}}
	r.procs[12] = &Process{PID: 12, Comm: "java", Libraries: []Library{{Name: "Java", Reason: "Java (JSSE) not supported"}}}
	for _, tc := range []struct {
		procs [2]segstore.Proc
		want  string
	}{
		{[2]segstore.Proc{{PID: 11, Comm: "static-tls"}, {PID: 10, Comm: "nginx"}}, ""},
		{[2]segstore.Proc{{PID: 11, Comm: "static-tls"}, {PID: 12, Comm: "java"}},
			"client static-tls 11: statically linked without symbols; server java 12: Java (JSSE) not supported"},
		{[2]segstore.Proc{{PID: 11}, {}}, "client static-tls 11: statically linked without symbols"},
		{[2]segstore.Proc{{PID: 11, Comm: "other"}, {}}, ""}, // the pid was reused
		{[2]segstore.Proc{{PID: 99}, {}}, ""},
	} {
		if got := r.Opaque(tc.procs); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.procs, got, tc.want)
		}
	}
}
