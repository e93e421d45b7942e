package capture

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/internal/corpus"
)

// TestQuickIPv4 checks Decode's fast path for Ethernet frames against the
// path through gopacket's layers: each Ethernet frame of the test and
// corpus captures, and 4 mutations of each (a header byte changed, the
// frame cut), must decode to the same result, error and statistics with
// the fast path and without it.
func TestQuickIPv4(t *testing.T) {
	paths := []string{"../dissect/http1/testdata/nginx.pcap", "../dissect/dns/testdata/dnsmasq.pcap"}
	if dir, ok := corpus.Dir(); ok {
		all, err := corpus.Captures(dir)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, all...)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var compared, quick int
	check := func(p *Packet) {
		if len(p.Data) < 14 {
			return
		}
		fast, slow := NewDecoder(), NewDecoder()
		slow.noQuick = true
		var got, want Decoded
		gerr := fast.Decode(layers.LinkTypeEthernet, p.Data, p.Length, p.Timestamp, &got)
		if binary16(p.Data[12:14]) != 0x0800 {
			return // not IPv4: the fast path never applies
		}
		werr := slow.Decode(layers.LinkTypeEthernet, p.Data, p.Length, p.Timestamp, &want)
		compared++
		if len(p.Data) >= 34 && p.Data[14] == 0x45 && binary16(p.Data[20:22])&0x3fff == 0 {
			quick++
		}
		if gerr != werr || fast.Stats != slow.Stats {
			t.Fatalf("Ethernet frame: %v %+v; as raw IP: %v %+v\n% x", gerr, fast.Stats, werr, slow.Stats, p.Data[:min(len(p.Data), 64)])
		}
		if gerr != nil {
			return
		}
		same := got.Network == want.Network && got.Src == want.Src && got.Dst == want.Dst && got.Proto == want.Proto &&
			got.SrcPort == want.SrcPort && got.DstPort == want.DstPort && bytes.Equal(got.Payload, want.Payload) &&
			len(got.Payload) == len(want.Payload) && got.IPLength == want.IPLength && got.Truncated == want.Truncated &&
			got.Reassembled == want.Reassembled && (got.TCP == nil) == (want.TCP == nil)
		if same && got.TCP != nil {
			same = got.TCP.Seq == want.TCP.Seq && got.TCP.Ack == want.TCP.Ack && got.TCP.SYN == want.TCP.SYN &&
				got.TCP.FIN == want.TCP.FIN && got.TCP.RST == want.TCP.RST && bytes.Equal(got.TCP.Payload, want.TCP.Payload)
		}
		if !same {
			t.Fatalf("Ethernet frame decoded as\n%+v\nas raw IP\n%+v\n% x", got, want, p.Data[:min(len(p.Data), 64)])
		}
	}
	for _, path := range paths {
		src, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		for src.Next(&p) == nil {
			if p.LinkType != layers.LinkTypeEthernet {
				continue
			}
			orig := p
			orig.Data = slices.Clone(p.Data)
			check(&orig)
			for range 4 {
				m := orig
				m.Data = slices.Clone(orig.Data)
				if rng.IntN(4) == 0 {
					m.Data = m.Data[:14+rng.IntN(len(m.Data)-13)]
				} else {
					m.Data[14+rng.IntN(min(len(m.Data)-14, 60))] = byte(rng.Uint32())
				}
				check(&m)
			}
		}
		src.Close()
	}
	if quick == 0 || quick == compared {
		t.Fatalf("%d IPv4 frames compared, %d on the fast path: the test did not exercise both paths", compared, quick)
	}
	t.Logf("%d IPv4 frames compared, %d on the fast path", compared, quick)
}

func binary16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
