package flowindex_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/dissect"
)

var t0 = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

func build(t *testing.T, span time.Duration, gen func(emit func(capture.Packet))) *flowindex.Index {
	t.Helper()
	x := flowindex.New(span)
	d := capture.NewDecoder()
	var dec capture.Decoded
	gen(func(p capture.Packet) {
		if err := d.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &dec); err != nil {
			t.Fatalf("decode: %v", err)
		}
		x.Add(&dec, p.Timestamp)
	})
	return x
}

func TestFlowCounters(t *testing.T) {
	x := build(t, time.Minute, func(emit func(capture.Packet)) {
		c := capturetest.NewConn("10.0.0.2:50000", "10.0.0.9:8080", t0.Add(59*time.Second), emit)
		c.Handshake()
		c.Send(true, []byte("GET / HTTP/1.1\r\n\r\n"))
		c.Retransmit(true, []byte("GET / HTTP/1.1\r\n\r\n"))
		c.T = t0.Add(61 * time.Second) // the answer falls in the next minute
		c.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		c.Reset(true)
		emit(capturetest.Datagram(t0.Add(3*time.Minute), "10.0.0.2:5000", "10.0.0.53:53", []byte("query")))
	})
	all := x.Query(time.Time{}, time.Time{}, nil)
	if len(all) != 2 || x.Len() != 2 {
		t.Fatalf("%d flows", len(all))
	}
	f := all[0]
	if f.Src != netip.MustParseAddrPort("10.0.0.2:50000") || f.Proto != layers.IPProtocolTCP {
		t.Errorf("orientation %v → %v", f.Src, f.Dst)
	}
	// Client: SYN, ACK, request, retransmission, RST. Server: SYN-ACK, response.
	if f.Packets != [2]uint64{5, 2} || f.Retransmissions != [2]uint64{1, 0} || f.Payload[0] != 2*18 || f.Payload[1] != 38 {
		t.Errorf("packets %v retransmissions %v payload %v", f.Packets, f.Retransmissions, f.Payload)
	}
	if f.Flags[0] != flowindex.FlagSYN|flowindex.FlagRST || f.Flags[1] != flowindex.FlagSYNACK {
		t.Errorf("flags %v", f.Flags)
	}
	if string(f.Head[0]) != "GET / HTTP/1.1\r\n\r\n" || string(f.Head[1][:8]) != "HTTP/1.1" {
		t.Errorf("heads %q %q", f.Head[0], f.Head[1])
	}
	// A window is rounded out to whole buckets: the second minute holds the
	// response and the RST only.
	second := x.Query(t0.Add(60*time.Second), t0.Add(120*time.Second), nil)
	if len(second) != 1 || second[0].Packets != [2]uint64{1, 1} || !second[0].Began.Equal(t0.Add(59*time.Second)) {
		t.Errorf("second minute %+v", second)
	}
	udp := x.Query(t0.Add(2*time.Minute), time.Time{}, func(s *flowindex.Summary) bool { return s.Proto == layers.IPProtocolUDP })
	if len(udp) != 1 || udp[0].Src.Port() != 5000 || udp[0].Packets != [2]uint64{1, 0} {
		t.Errorf("udp %+v", udp)
	}
	if none := x.Query(t0.Add(10*time.Minute), time.Time{}, nil); len(none) != 0 {
		t.Errorf("flows after the capture: %d", len(none))
	}
}

// TestMatchesEngine compares the index with the dissection engine's flow
// records on a capture of real traffic: the same flows, the same packets and
// bytes each way.
func TestMatchesEngine(t *testing.T) {
	for _, path := range []string{"../../dissect/http1/testdata/nginx.pcap", "../../dissect/dns/testdata/dnsmasq.pcap"} {
		x := flowindex.New(time.Minute)
		type counts struct{ packets, bytes [2]uint64 }
		engine := map[flowindex.Key]counts{}
		e := dissect.New(dissect.Options{OnFlow: func(f *dissect.Flow) {
			k := flowindex.Key{A: netip.AddrPortFrom(f.Src.IP, f.Src.Port), B: netip.AddrPortFrom(f.Dst.IP, f.Dst.Port)}
			switch f.Transport {
			case "tcp":
				k.Proto = layers.IPProtocolTCP
			case "udp":
				k.Proto = layers.IPProtocolUDP
			}
			pk, by := f.Packets, f.Bytes
			if k.A.Compare(k.B) > 0 {
				k.A, k.B = k.B, k.A
			}
			engine[k] = counts{pk, by}
		}})
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d := capture.NewDecoder()
		var dec capture.Decoded
		var p capture.Packet
		for {
			if err := src.Next(&p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			e.Packet(&p)
			if d.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &dec) == nil {
				x.Add(&dec, p.Timestamp)
			}
		}
		e.Finish()
		src.Close()
		got := x.Query(time.Time{}, time.Time{}, nil)
		if len(got) != len(engine) || len(got) == 0 {
			t.Fatalf("%s: %d flows, engine %d", path, len(got), len(engine))
		}
		for _, s := range got {
			c, ok := engine[s.Key()]
			if !ok {
				t.Errorf("%s: flow %v → %v unknown to the engine", path, s.Src, s.Dst)
				continue
			}
			if c.packets[0]+c.packets[1] != s.Packets[0]+s.Packets[1] || c.bytes[0]+c.bytes[1] != s.Bytes[0]+s.Bytes[1] {
				t.Errorf("%s: flow %v → %v: %v packets %v bytes, engine %v %v", path, s.Src, s.Dst, s.Packets, s.Bytes, c.packets, c.bytes)
			}
		}
	}
}
