package dissect

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// TestShardOf checks that both directions of a flow land on one shard and
// that flows spread evenly, including the worst case of a load test on
// loopback: one address on both sides, consecutive client ports.
func TestShardOf(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	for _, shards := range []int{2, 3, 8} {
		counts := make([]int, shards)
		for port := uint16(40000); port < 42000; port++ {
			fwd := capture.Decoded{Src: lo, SrcPort: port, Dst: lo, DstPort: 18080, Proto: layers.IPProtocolTCP}
			rev := capture.Decoded{Src: lo, SrcPort: 18080, Dst: lo, DstPort: port, Proto: layers.IPProtocolTCP}
			s := shardOf(&fwd, shards)
			if shardOf(&rev, shards) != s {
				t.Fatalf("port %d: directions on different shards", port)
			}
			counts[s]++
		}
		for i, c := range counts {
			if want := 2000 / shards; c < want*8/10 || c > want*12/10 {
				t.Errorf("%d shards: shard %d owns %d of 2000 flows, want about %d", shards, i, c, want)
			}
		}
	}
}
