package dns_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

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

// TestUDPBuffered sends queries over UDP: the parser reports the queries
// waiting for their response, and no more once they are answered, expired
// or ended; ended early for memory bounds, it reports the queries still
// waiting unanswered and says why.
func TestUDPBuffered(t *testing.T) {
	lim := proto.Limits{}.WithDefaults()
	out := &fuzzEmitter{}
	p := dns.Protocol{}.NewFlow(out, &lim)
	b, ok := p.(proto.Buffering)
	if !ok {
		t.Fatal("the DNS over UDP parser does not report what it keeps (proto.Buffering)")
	}
	q1 := query(1, "one.example", layers.DNSTypeA)
	p.Datagram(proto.Client, msg(t, q1), fuzzT0)
	one := b.Buffered()
	if one == 0 {
		t.Fatal("with a query waiting the parser reports nothing kept")
	}
	p.Datagram(proto.Client, msg(t, query(2, "two.example", layers.DNSTypeA)), fuzzT0)
	if got := b.Buffered(); got <= one {
		t.Errorf("with two queries waiting the parser reports %d, with one %d", got, one)
	}
	p.Datagram(proto.Server, msg(t, answer(q1, 0)), fuzzT0)
	if got := b.Buffered(); got != one {
		t.Errorf("with one of two queries answered the parser reports %d, want %d as for one", got, one)
	}
	p.Expire(fuzzT0.Add(time.Second))
	if got := b.Buffered(); got != 0 {
		t.Errorf("with every query expired the parser reports %d, want 0", got)
	}
	for i := range 3 {
		p.Datagram(proto.Client, msg(t, query(uint16(10+i), "w.example", layers.DNSTypeA)), fuzzT0)
	}
	calls := len(out.calls)
	p.End(proto.EndMemory, fuzzT0)
	if got := b.Buffered(); got != 0 {
		t.Errorf("after End the parser reports %d, want 0", got)
	}
	cut := out.calls[calls:]
	for _, c := range cut {
		if c.Error != "no response: flow ended early for memory bounds" || c.Path != "w.example" {
			t.Errorf("call at the end %s %q, want a query unanswered as the flow ended early for memory bounds", c.Path, c.Error)
		}
	}
	if len(cut) != 3 || out.skipped != 0 {
		t.Errorf("%d calls at the end and %d bytes skipped, want the 3 waiting queries and nothing skipped", len(cut), out.skipped)
	}
}
