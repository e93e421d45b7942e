package dissect

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/internal/corpus"
)

// TestQuickShard checks the classifier's fast path against the Decoder's:
// for every frame of the test and corpus captures, and for each with bytes
// of its headers changed or cut, a frame quickShard takes must be one the
// Decoder decodes without counting anything, into the same shard.
func TestQuickShard(t *testing.T) {
	paths := []string{"http1/testdata/nginx.pcap", "dns/testdata/dnsmasq.pcap", "../evals/scenarios/billing-consumer-rebalance/capture.pcap"}
	if dir, ok := corpus.Dir(); ok {
		all, err := corpus.Captures(dir)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, all...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var frames, quick, refused int
	check := func(p *capture.Packet) {
		frames++
		dec := capture.NewDecoder()
		var d capture.Decoded
		err := dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d)
		for _, n := range []int{2, 3, 7} {
			sh, ok := quickShard(p, n)
			if !ok {
				refused++
				return
			}
			quick++
			if err != nil || dec.Stats != (capture.DecodeStats{}) || d.Reassembled {
				t.Fatalf("quickShard took a frame the Decoder refuses or counts (%v, %+v): % x", err, dec.Stats, p.Data[:min(len(p.Data), 64)])
			}
			if want := shardOf(&d, n); sh != want {
				t.Fatalf("quickShard says shard %d of %d, shardOf %d: % x", sh, n, want, p.Data[:min(len(p.Data), 64)])
			}
		}
	}
	for _, path := range paths {
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p capture.Packet
		for src.Next(&p) == nil {
			orig := p
			orig.Data = slices.Clone(p.Data)
			check(&orig)
			for range 4 {
				m := orig
				m.Data = slices.Clone(orig.Data)
				if len(m.Data) == 0 {
					break
				}
				// Flip a byte among the link, IP and transport headers, or cut the frame.
				if rng.IntN(4) == 0 {
					m.Data = m.Data[:rng.IntN(len(m.Data))]
				} else {
					m.Data[rng.IntN(min(len(m.Data), 14+60+60))] = byte(rng.Uint32())
				}
				check(&m)
			}
		}
		src.Close()
	}
	if quick == 0 || refused == 0 {
		t.Fatalf("of %d frames, quickShard took %d and refused %d: the test did not exercise both paths", frames, quick, refused)
	}
	t.Logf("%d frames: quickShard took %d (of 3 shard counts each), refused %d", frames, quick, refused)
}

// TestPlaintextShard: the classifier puts a connection's plaintext records
// (which quickShard leaves to the Decoder) in the shard of its packets,
// whichever way each goes, and quickShard takes none of them.
func TestPlaintextShard(t *testing.T) {
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3}
	for i := range 200 {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i % 7), 2}), uint16(40000+i*13))
		server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(1 + i%5)}), 443)
		var wire capture.Packet
		synth.NewConn(client.String(), server.String(), time.Unix(1, 0), func(p capture.Packet) { wire = p }).Send(true, []byte("x"))
		for _, n := range []int{2, 3, 5, 7} {
			c := &classifier{dec: capture.NewDecoder(), n: n}
			want := c.tag(&wire)
			for _, dir := range [][2]netip.AddrPort{{client, server}, {server, client}} {
				rec := capture.AppendPlaintext(nil, h, dir[0], dir[1], 1, 1, []byte("GET / HTTP/1.1\r\n\r\n"))
				p := capture.Packet{Data: rec, Length: len(rec), LinkType: capture.LinkTypeTLSPlaintext, Timestamp: time.Unix(1, 0)}
				if _, ok := quickShard(&p, n); ok {
					t.Fatal("quickShard took a plaintext record")
				}
				if got := c.tag(&p); got != want || got == tagNone || got == tagAll {
					t.Fatalf("conn %d, %d shards: record %v→%v tagged %d, its packets %d", i, n, dir[0], dir[1], got, want)
				}
			}
		}
	}
}
