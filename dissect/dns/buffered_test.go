package dns_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/dns"
	"github.com/wirescope/wirescope/dissect/proto"
)

// TestTCPBuffered feeds a 60 KB message over TCP in two parts: the parser
// reports what it buffers, lets the buffer go once the message is parsed,
// and, ended early for memory bounds, counts the partial message it drops
// as skipped and says why on the calls it cuts.
func TestTCPBuffered(t *testing.T) {
	lim := proto.Limits{}.WithDefaults()
	out := &fuzzEmitter{}
	s := dns.Protocol{}.NewStream(out, &lim)
	b, ok := s.(proto.Buffering)
	if !ok {
		t.Fatal("the DNS over TCP parser does not report what it buffers (proto.Buffering)")
	}
	big := binary.BigEndian.AppendUint16(nil, 60000)
	big = append(big, bytes.Repeat([]byte{0xab}, 60000)...)
	s.Feed(proto.Client, big[:30000], fuzzT0)
	if got := b.Buffered(); got < 30000 {
		t.Errorf("with 30000 bytes of a message buffered, the parser reports %d", got)
	}
	s.Feed(proto.Client, big[30000:], fuzzT0)
	if got := b.Buffered(); got != 0 {
		t.Errorf("after the message the parser keeps %d bytes, want 0", got)
	}

	q := query(7, "seven.example", layers.DNSTypeA)
	s.Feed(proto.Client, tcpMsg(msg(t, q)), fuzzT0)
	if got := b.Buffered(); got == 0 {
		t.Errorf("with a query waiting the parser reports nothing kept")
	}
	partial := tcpMsg(msg(t, answer(q, 0)))[:20]
	s.Feed(proto.Server, partial, fuzzT0)
	calls := len(out.calls)
	s.End(proto.EndMemory, fuzzT0)
	if out.skipped != len(partial) {
		t.Errorf("%d bytes skipped, want %d (the partial response)", out.skipped, len(partial))
	}
	cut := out.calls[calls:]
	// The partial response's ID follows its length: it answers query 7.
	if len(cut) != 1 || !strings.Contains(cut[0].Error, "memory bounds") || cut[0].Path != "seven.example" {
		for _, c := range cut {
			t.Logf("%s %q", c.Path, c.Error)
		}
		t.Errorf("%d calls at the end, want the waiting query paired with the partial response, cut for memory bounds", len(cut))
	}
}
