package tlsplain

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture"
)

var (
	client = netip.MustParseAddrPort("10.0.0.1:40000")
	server = netip.MustParseAddrPort("10.0.0.2:443")
	t0     = time.Unix(1_800_000_000, 0)
)

// decoded is one record as the Decoder reads it.
type decoded struct {
	src, dst netip.AddrPort
	seq, ack uint32
	payload  string
	length   int
	read     bool
	pid      uint32
}

func decode(t *testing.T, p *capture.Packet) decoded {
	t.Helper()
	var d capture.Decoded
	if err := capture.NewDecoder().Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d); err != nil {
		t.Fatalf("decode a record: %v", err)
	}
	h, err := capture.ParsePlaintextHeader(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	return decoded{netip.AddrPortFrom(d.Src, d.SrcPort), netip.AddrPortFrom(d.Dst, d.DstPort), d.TCP.Seq, d.TCP.Ack, string(d.Payload), p.Length, h.Read, h.PID}
}

// TestSequencer: seq counts each direction's bytes, lost bytes are a gap,
// a cut call's last chunk stands for the rest, the other end's copy is
// left out, and the quietest connections are forgotten past the bound.
func TestSequencer(t *testing.T) {
	s := newSequencer(4)
	lib := bpf.Library{Kind: capture.LibOpenSSL, Major: 3, Minor: 0, Name: "OpenSSL 3.0.19"}
	var buf []byte
	var p capture.Packet
	rec := func(c bpf.Chunk) (decoded, bool) {
		t.Helper()
		c.Library = lib
		if c.Time.IsZero() {
			c.Time = t0
		}
		var ok bool
		buf, ok = s.record(buf[:0], &c, &p)
		if !ok {
			return decoded{}, false
		}
		if p.LinkType != capture.LinkTypeTLSPlaintext || !p.Timestamp.Equal(c.Time) {
			t.Fatalf("packet %v at %v", p.LinkType, p.Timestamp)
		}
		return decode(t, &p), true
	}
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	// The client writes its request: client → server, seq 1.
	d, ok := rec(bpf.Chunk{PID: 7, Local: client, Remote: server, Len: uint32(len(req)), Data: []byte(req)})
	if !ok || d.src != client || d.dst != server || d.seq != 1 || d.ack != 1 || d.payload != req || d.read || d.pid != 7 {
		t.Fatalf("request: %+v %v", d, ok)
	}
	// The server's read of the same bytes is the other end's copy.
	if _, ok := rec(bpf.Chunk{PID: 9, Read: true, Local: server, Remote: client, Len: uint32(len(req)), Data: []byte(req)}); ok {
		t.Fatal("the server's copy of the request was stored too")
	}
	if s.Duplicates != 1 {
		t.Errorf("duplicates %d", s.Duplicates)
	}
	// The client reads the response: server → client, seq 1, ack past the request.
	d, _ = rec(bpf.Chunk{PID: 7, Read: true, Local: client, Remote: server, Len: 5, Data: []byte("HTTP/")})
	if d.src != server || d.dst != client || d.seq != 1 || d.ack != uint32(1+len(req)) || !d.read {
		t.Fatalf("response: %+v", d)
	}
	// 100 bytes lost before the next read: a gap.
	d, _ = rec(bpf.Chunk{PID: 7, Read: true, Local: client, Remote: server, Len: 3, Lost: 100, Data: []byte("1.1")})
	if d.seq != 1+5+100 {
		t.Fatalf("after a loss seq %d, want %d", d.seq, 1+5+100)
	}
	// A 100,000-byte write: four chunks, the last standing for the rest.
	big := bytes.Repeat([]byte("x"), 100000)
	next := uint32(1 + len(req))
	for i := 0; i < bpf.MaxChunks; i++ {
		off := i * bpf.ChunkBytes
		d, _ = rec(bpf.Chunk{PID: 7, Local: client, Remote: server, Len: uint32(len(big)), Offset: uint32(off), Data: big[off : off+bpf.ChunkBytes]})
		if d.seq != next {
			t.Fatalf("chunk %d seq %d, want %d", i, d.seq, next)
		}
		want := capture.PlaintextHeaderLen + 20 + 20 + bpf.ChunkBytes
		if i == bpf.MaxChunks-1 {
			want += len(big) - off - bpf.ChunkBytes
		}
		if d.length != want || len(d.payload) != bpf.ChunkBytes {
			t.Fatalf("chunk %d: length %d (want %d), payload %d", i, d.length, want, len(d.payload))
		}
		next += uint32(d.length - capture.PlaintextHeaderLen - 40)
	}
	if next != uint32(1+len(req)+len(big)) {
		t.Fatalf("seq after the big write %d", next)
	}
	// IPv6, and a chunk without addresses is left out.
	a6, b6 := netip.MustParseAddrPort("[fd00::1]:5000"), netip.MustParseAddrPort("[fd00::2]:443")
	if d, ok := rec(bpf.Chunk{PID: 8, Local: a6, Remote: b6, Len: 2, Data: []byte("hi")}); !ok || d.src != a6 || d.dst != b6 {
		t.Fatalf("IPv6: %+v %v", d, ok)
	}
	if _, ok := rec(bpf.Chunk{PID: 8, Len: 2, Data: []byte("hi")}); ok {
		t.Fatal("a chunk without addresses was stored")
	}
	// Past 4 connections the quietest half is forgotten; a forgotten
	// connection starts again at seq 1.
	for i := range 4 {
		c := netip.AddrPortFrom(client.Addr(), uint16(50000+i))
		rec(bpf.Chunk{PID: 7, Local: c, Remote: server, Len: 1, Data: []byte("a"), Time: t0.Add(time.Duration(i+1) * time.Second)})
	}
	if len(s.conns) > 4 || s.Evicted == 0 {
		t.Fatalf("%d connections kept, %d evicted", len(s.conns), s.Evicted)
	}
	if _, ok := s.conns[connKey{client, server}]; ok {
		t.Error("the quietest connection was kept")
	}
}
