package icmp_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/dissect/icmp"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

func echo(typ byte, id, seq uint16, payload int) []byte {
	b := []byte{typ, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, id)
	b = binary.BigEndian.AppendUint16(b, seq)
	return append(b, make([]byte, payload)...)
}

// unreachable is an ICMPv4 error of code quoting a UDP datagram from
// 10.0.0.1:40000 to 10.0.0.2:53.
func unreachable(typ, code byte) []byte {
	b := []byte{typ, code, 0, 0, 0, 0, 0x05, 0xdc}
	ip := []byte{0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	udp := []byte{0x9c, 0x40, 0, 53, 0, 20, 0, 0}
	return append(append(b, ip...), udp...)
}

func TestEchoAndErrors(t *testing.T) {
	rec := &prototest.Recorder{}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	p := icmp.NewFlowFor(rec, &proto.Limits{RequestTimeout: time.Second}, false, [2]netip.Addr{a, b})
	at := time.Unix(1e9, 0)
	p.Datagram(proto.Client, echo(8, 7, 1, 56), at)
	p.Datagram(proto.Client, echo(8, 7, 2, 56), at.Add(time.Second))
	p.Datagram(proto.Server, echo(0, 7, 1, 56), at.Add(20*time.Millisecond))
	p.Datagram(proto.Server, unreachable(3, 3), at.Add(30*time.Millisecond))
	p.Datagram(proto.Server, unreachable(3, 4), at.Add(40*time.Millisecond))
	p.Datagram(proto.Server, unreachable(11, 0), at.Add(50*time.Millisecond))
	p.Datagram(proto.Server, echo(0, 9, 9, 0), at.Add(60*time.Millisecond))
	p.Datagram(proto.Server, []byte{3, 3, 0}, at.Add(70*time.Millisecond))
	p.Expire(at.Add(500 * time.Millisecond))
	p.End(proto.EndCapture, at.Add(3*time.Second))
	prototest.Check(t, rec.Calls, []prototest.Want{
		{Method: "echo", Path: "10.0.0.2", Status: "reply"},
		{Method: "destination-unreachable", Path: "udp 10.0.0.2:53", Status: "port unreachable", OneWay: true},
		{Method: "destination-unreachable", Path: "udp 10.0.0.2:53", Status: "fragmentation needed", OneWay: true},
		{Method: "time-exceeded", Path: "udp 10.0.0.2:53", Status: "ttl exceeded", OneWay: true},
		{Method: "echo", Status: "reply", Err: "no request"},
		{Err: "malformed: an ICMP message of 3 bytes", OneWay: true},
		{Method: "echo", Path: "10.0.0.2", Err: "no response"},
	})
	if rec.Calls[0].LatencyNS != int64(20*time.Millisecond) || rec.Calls[0].Extra.Get("seq") != 1 {
		t.Errorf("echo: %d %v", rec.Calls[0].LatencyNS, rec.Calls[0].Extra)
	}
	if rec.Calls[2].Extra.Get("mtu") != 1500 || rec.Calls[1].Extra.Get("reported_by") != "10.0.0.2" {
		t.Errorf("extra %v / %v", rec.Calls[1].Extra, rec.Calls[2].Extra)
	}
}

func TestQuotedV6(t *testing.T) {
	msg := []byte{1, 4, 0, 0, 0, 0, 0, 0}
	ip := make([]byte, 40)
	ip[0], ip[6] = 0x60, 6
	src, dst := netip.MustParseAddr("fd00::1").As16(), netip.MustParseAddr("fd00::2").As16()
	copy(ip[8:], src[:])
	copy(ip[24:], dst[:])
	msg = append(append(msg, ip...), 0xc0, 0x00, 0x01, 0xbb)
	q, ok := icmp.Quoted(true, msg)
	if !ok || q.Proto != layers.IPProtocolTCP || q.From.String() != "[fd00::1]:49152" || q.To.String() != "[fd00::2]:443" || q.String() != "tcp [fd00::2]:443" {
		t.Fatalf("%+v %v", q, ok)
	}
	if kind, name := icmp.Describe(true, 1, 4); kind != "destination-unreachable" || name != "port unreachable" || !icmp.Refuses(kind, name) {
		t.Errorf("%s %s", kind, name)
	}
	for _, bad := range [][]byte{msg[:20], append([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0x40}, ip[1:]...)} {
		if _, ok := icmp.Quoted(true, bad); ok {
			t.Errorf("quoted read from %x", bad)
		}
	}
}

// FuzzMessages: any message either way, no panic, every call valid.
func FuzzMessages(f *testing.F) {
	f.Add(echo(8, 1, 1, 8), true, false)
	f.Add(unreachable(3, 3), false, false)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0x60}, false, true)
	f.Fuzz(func(t *testing.T, msg []byte, server, v6 bool) {
		rec := &prototest.Recorder{}
		p := icmp.NewFlowFor(rec, &proto.Limits{MaxPending: 4}, v6, [2]netip.Addr{})
		r := proto.Client
		if server {
			r = proto.Server
		}
		at := time.Unix(1e9, 0)
		for i := 0; i < 3; i++ {
			p.Datagram(r, msg, at)
			p.Datagram(r.Peer(), msg, at)
		}
		p.End(proto.EndFIN, at)
		for i, c := range rec.Calls {
			if c.Status == "" && c.Error == "" && !c.OneWay {
				t.Errorf("call %d has neither status nor error", i)
			}
			prototest.CheckJSON(t, i, c)
		}
	})
}
