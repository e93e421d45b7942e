// Package capturetest builds synthetic packets for tests: TCP conversations with
// correct sequence numbers (segmented, reordered, with gaps, FIN or RST) and
// UDP datagrams, as Ethernet frames. Packets are handed to a callback as they
// are made, so a test can stream gigabytes through an engine without holding
// them.
package capturetest

import (
	"net"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
)

// Step is the time between consecutive synthetic packets.
const Step = 10 * time.Microsecond

// Conn is a TCP connection between a client and a server.
type Conn struct {
	Client, Server netip.AddrPort
	// MSS is the largest payload per segment (default 1448).
	MSS int
	// T is the time of the next packet.
	T time.Time
	// Emit receives every packet.
	Emit func(p capture.Packet)

	cseq, sseq uint32
	buf        gopacket.SerializeBuffer
}

// NewConn returns a connection from client to server ("10.0.0.2:51234")
// starting at t.
func NewConn(client, server string, t time.Time, emit func(capture.Packet)) *Conn {
	return &Conn{
		Client: netip.MustParseAddrPort(client),
		Server: netip.MustParseAddrPort(server),
		MSS:    1448,
		T:      t,
		Emit:   emit,
		cseq:   1000,
		sseq:   5000,
		buf:    gopacket.NewSerializeBuffer(),
	}
}

// Handshake sends SYN, SYN-ACK and ACK.
func (c *Conn) Handshake() {
	c.segment(true, &layers.TCP{SYN: true}, nil)
	c.cseq++
	c.segment(false, &layers.TCP{SYN: true, ACK: true}, nil)
	c.sseq++
	c.segment(true, &layers.TCP{ACK: true}, nil)
}

// SYN sends the client's SYN alone; Reset(false) after it refuses the
// connection.
func (c *Conn) SYN() {
	c.segment(true, &layers.TCP{SYN: true}, nil)
	c.cseq++
}

// Send sends data from the client (fromClient) or the server in segments
// of at most MSS bytes.
func (c *Conn) Send(fromClient bool, data []byte) {
	for len(data) > 0 {
		n := min(len(data), c.mss())
		c.segment(fromClient, &layers.TCP{ACK: true, PSH: n == len(data)}, data[:n])
		c.advance(fromClient, n)
		data = data[n:]
	}
}

// SendReordered sends data in segments, emitting the first two in reverse
// order.
func (c *Conn) SendReordered(fromClient bool, data []byte) {
	n := min(len(data), c.mss())
	first, rest := data[:n], data[n:]
	seq := c.seq(fromClient)
	c.advance(fromClient, n)
	if len(rest) > 0 {
		m := min(len(rest), c.mss())
		c.segment(fromClient, &layers.TCP{ACK: true}, rest[:m])
		c.advance(fromClient, m)
		rest = rest[m:]
	}
	c.segmentAt(fromClient, seq, &layers.TCP{ACK: true}, first)
	c.Send(fromClient, rest)
}

// Retransmit sends data again at the sequence number it was first sent at,
// which is len(data) bytes before the current one.
func (c *Conn) Retransmit(fromClient bool, data []byte) {
	c.segmentAt(fromClient, c.seq(fromClient)-uint32(len(data)), &layers.TCP{ACK: true}, data)
}

// Skip advances the sender's sequence number by n bytes without sending:
// the capture misses them.
func (c *Conn) Skip(fromClient bool, n int) { c.advance(fromClient, n) }

// Close sends FIN from both sides and the last ACK.
func (c *Conn) Close() {
	c.segment(true, &layers.TCP{FIN: true, ACK: true}, nil)
	c.cseq++
	c.segment(false, &layers.TCP{FIN: true, ACK: true}, nil)
	c.sseq++
	c.segment(true, &layers.TCP{ACK: true}, nil)
}

// Reset sends a RST from the client or the server.
func (c *Conn) Reset(fromClient bool) {
	c.segment(fromClient, &layers.TCP{RST: true, ACK: true}, nil)
}

func (c *Conn) mss() int {
	if c.MSS <= 0 {
		return 1448
	}
	return c.MSS
}

func (c *Conn) seq(fromClient bool) uint32 {
	if fromClient {
		return c.cseq
	}
	return c.sseq
}

func (c *Conn) advance(fromClient bool, n int) {
	if fromClient {
		c.cseq += uint32(n)
	} else {
		c.sseq += uint32(n)
	}
}

func (c *Conn) segment(fromClient bool, tcp *layers.TCP, payload []byte) {
	c.segmentAt(fromClient, c.seq(fromClient), tcp, payload)
}

func (c *Conn) segmentAt(fromClient bool, seq uint32, tcp *layers.TCP, payload []byte) {
	src, dst := c.Client, c.Server
	ack := c.sseq
	if !fromClient {
		src, dst = dst, src
		ack = c.cseq
	}
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(src.Port()), layers.TCPPort(dst.Port())
	tcp.Seq, tcp.Window = seq, 65535
	if tcp.ACK {
		tcp.Ack = ack
	}
	c.Emit(Frame(c.buf, c.T, src.Addr(), dst.Addr(), tcp, payload))
	c.T = c.T.Add(Step)
}

// Datagram returns a UDP datagram as an Ethernet frame.
func Datagram(t time.Time, src, dst string, payload []byte) capture.Packet {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	udp := &layers.UDP{SrcPort: layers.UDPPort(s.Port()), DstPort: layers.UDPPort(d.Port())}
	return Frame(gopacket.NewSerializeBuffer(), t, s.Addr(), d.Addr(), udp, payload)
}

// Frame serialises an Ethernet/IP frame carrying a TCP or UDP layer.
func Frame(buf gopacket.SerializeBuffer, t time.Time, src, dst netip.Addr, l4 gopacket.SerializableLayer, payload []byte) capture.Packet {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ip gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	proto := layers.IPProtocolTCP
	if _, ok := l4.(*layers.UDP); ok {
		proto = layers.IPProtocolUDP
	}
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, nl = v4, v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		ip, nl = v6, v6
	}
	switch l := l4.(type) {
	case *layers.TCP:
		l.SetNetworkLayerForChecksum(nl)
	case *layers.UDP:
		l.SetNetworkLayerForChecksum(nl)
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, l4, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	data := append([]byte(nil), buf.Bytes()...)
	return capture.Packet{Timestamp: t, Data: data, Length: len(data), LinkType: layers.LinkTypeEthernet}
}

// IPPacket returns an Ethernet/IP frame carrying payload as IP protocol p
// (ICMP, SCTP …), built by the caller.
func IPPacket(t time.Time, src, dst netip.Addr, p layers.IPProtocol, payload []byte) capture.Packet {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ip gopacket.SerializableLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip = &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip = &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	data := append([]byte(nil), buf.Bytes()...)
	return capture.Packet{Timestamp: t, Data: data, Length: len(data), LinkType: layers.LinkTypeEthernet}
}
