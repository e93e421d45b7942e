//go:build linux

package live

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/wirescope/wirescope/capture"
)

// seen is what a capture delivered: per packet its link type, IP
// protocol and ports.
type seen struct {
	mu   sync.Mutex
	pkts []pkt
}

type pkt struct {
	link             layers.LinkType
	proto            uint8
	srcPort, dstPort uint16
}

func (s *seen) add(p *capture.Packet) {
	d := p.Data
	if p.LinkType == layers.LinkTypeEthernet {
		if len(d) < 14 || binary.BigEndian.Uint16(d[12:]) != 0x800 {
			s.append(pkt{link: p.LinkType})
			return
		}
		d = d[14:]
	}
	out := pkt{link: p.LinkType}
	if len(d) >= 20 && d[0]>>4 == 4 {
		ihl := int(d[0]&0xf) * 4
		out.proto = d[9]
		if len(d) >= ihl+4 {
			out.srcPort, out.dstPort = binary.BigEndian.Uint16(d[ihl:]), binary.BigEndian.Uint16(d[ihl+2:])
		}
	}
	s.append(out)
}

func (s *seen) append(p pkt) {
	s.mu.Lock()
	s.pkts = append(s.pkts, p)
	s.mu.Unlock()
}

func (s *seen) snapshot() []pkt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pkt(nil), s.pkts...)
}

func (s *seen) count(f func(pkt) bool) int {
	n := 0
	for _, p := range s.snapshot() {
		if f(p) {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noTcpdump empties PATH for the test, after resolving the commands the
// setup needs, and checks that tcpdump cannot be found.
func noTcpdump(t *testing.T) {
	t.Helper()
	t.Setenv("PATH", t.TempDir())
	if p, err := exec.LookPath("tcpdump"); err == nil {
		t.Fatalf("tcpdump still found at %s", p)
	}
}

func root(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces, tun devices and AF_PACKET capture need root")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func capturing(t *testing.T, o Options) (*Source, *seen) {
	t.Helper()
	src, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	got := &seen{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(p *capture.Packet, _ string) error { got.add(p); return nil })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		src.Close()
	})
	return src, got
}

// TestFilterWithoutTcpdump: with tcpdump nowhere on PATH, a capture with
// "tcp port 80" on a veth whose peer is in a network namespace of its own
// gets the TCP segments to and from port 80 (SYNs and the peer's resets),
// and none of the TCP to port 81 nor the UDP to port 80 sent first.
func TestFilterWithoutTcpdump(t *testing.T) {
	root(t)
	id := os.Getpid()%200 + 20
	ns, hostIf, peer := fmt.Sprintf("wsflt%d", id), fmt.Sprintf("wsf%d", id), fmt.Sprintf("wsg%d", id)
	hostIP, nsIP := fmt.Sprintf("10.232.%d.1", id), fmt.Sprintf("10.232.%d.2", id)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("the ip command (iproute2) is not installed")
	}
	exec.Command(ip, "netns", "del", ns).Run() // a leftover of a killed run
	exec.Command(ip, "link", "del", hostIf).Run()
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command(ip, "netns", "del", ns).Run()
		exec.Command(ip, "link", "del", hostIf).Run()
	})
	run(t, ip, "link", "add", hostIf, "type", "veth", "peer", "name", peer)
	run(t, ip, "link", "set", peer, "netns", ns)
	run(t, ip, "addr", "add", hostIP+"/24", "dev", hostIf)
	run(t, ip, "link", "set", hostIf, "up")
	run(t, ip, "netns", "exec", ns, ip, "addr", "add", nsIP+"/24", "dev", peer)
	run(t, ip, "netns", "exec", ns, ip, "link", "set", peer, "up")
	noTcpdump(t)

	src, got := capturing(t, Options{Interfaces: []string{hostIf}, Filter: "tcp port 80"})
	if ifs := src.Interfaces(); len(ifs) != 1 || ifs[0] != hostIf {
		t.Fatalf("capturing on %v, want %s", ifs, hostIf)
	}
	// What the filter must drop goes first: once the later packets are
	// delivered, these have been through the kernel filter.
	for range 3 {
		if c, err := net.DialTimeout("tcp", nsIP+":81", 2*time.Second); err == nil {
			c.Close()
			t.Fatal("something listens on port 81 in the namespace")
		}
		c, err := net.Dial("udp", nsIP+":80")
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("hello"))
		c.Close()
	}
	const conns = 5
	for range conns {
		if c, err := net.DialTimeout("tcp", nsIP+":80", 2*time.Second); err == nil {
			c.Close()
			t.Fatal("something listens on port 80 in the namespace")
		}
	}
	port80 := func(p pkt) bool { return p.proto == 6 && (p.dstPort == 80 || p.srcPort == 80) }
	// Each refused connection is a SYN and the peer's reset.
	waitFor(t, "the SYNs and resets of port 80", func() bool { return got.count(port80) >= 2*conns })
	for _, p := range got.snapshot() {
		if !port80(p) {
			t.Errorf("a packet passed the filter: %+v", p)
		}
		if p.link != layers.LinkTypeEthernet {
			t.Errorf("a veth packet labelled %v", p.link)
		}
	}
}

// TestFilterRawIP: on a tun interface (no link header: ARPHRD_NONE) the
// filter is compiled for raw IP and the packets are labelled so. Packets
// written to the tun device are received on it: a UDP datagram to port
// 80 and a TCP segment to port 81 first, then TCP segments to port 80;
// only those pass "tcp port 80". "ether host" cannot apply there: named,
// the interface is refused; matched by a glob, it is left out and said so.
func TestFilterRawIP(t *testing.T) {
	root(t)
	name := fmt.Sprintf("wstun%d", os.Getpid()%1000)
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("the ip command (iproute2) is not installed")
	}
	exec.Command(ip, "link", "del", name).Run()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no tun device here: %v", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		t.Fatalf("TUNSETIFF: %v", err)
	}
	t.Cleanup(func() { exec.Command(ip, "link", "del", name).Run() })
	run(t, ip, "addr", "add", "10.233.0.1/24", "dev", name)
	run(t, ip, "link", "set", name, "up")
	noTcpdump(t)

	if _, err := Open(Options{Interfaces: []string{name}, Filter: "ether host 00:11:22:33:44:55"}); err == nil ||
		!strings.Contains(err.Error(), "has no Ethernet header") {
		t.Errorf("ether host on a named tun interface: %v, want it refused", err)
	}
	if _, err := Open(Options{Interfaces: []string{"wstun*"}, Filter: "ether host 00:11:22:33:44:55"}); err == nil ||
		!strings.Contains(err.Error(), name+": ") {
		t.Errorf("ether host on tun interfaces only: %v, want no interface to capture, saying why", err)
	}

	// Named with loopback (Ethernet) and matched by a glob: the tun is
	// left out and said so, loopback captured.
	src, err := Open(Options{Interfaces: []string{"lo", "wstun*"}, Filter: "ether host 00:11:22:33:44:55"})
	if err != nil {
		t.Fatal(err)
	}
	if ifs, sk := src.Interfaces(), src.Skipped(); len(ifs) != 1 || ifs[0] != "lo" || len(sk) != 1 || sk[0].Name != name ||
		!strings.Contains(sk[0].Reason, "has no Ethernet header") {
		t.Errorf("capturing on %v, skipping %+v; want lo, and %s skipped for having no Ethernet header", ifs, sk, name)
	}
	src.Close()

	_, got := capturing(t, Options{Interfaces: []string{name}, Filter: "tcp port 80"})
	send := func(proto uint8, dport uint16) {
		t.Helper()
		b := ipv4Packet(proto, 40000, dport)
		if _, err := unix.Write(fd, b); err != nil {
			t.Fatalf("write to tun: %v", err)
		}
	}
	send(17, 80)
	send(6, 81)
	const n = 4
	for range n {
		send(6, 80)
	}
	port80 := func(p pkt) bool { return p.proto == 6 && p.dstPort == 80 }
	waitFor(t, "the TCP segments to port 80", func() bool { return got.count(port80) >= n })
	for _, p := range got.snapshot() {
		if !port80(p) {
			t.Errorf("a packet passed the filter: %+v", p)
		}
		if p.link != layers.LinkTypeRaw {
			t.Errorf("a tun packet labelled %v, want raw IP", p.link)
		}
	}
}

// ipv4Packet builds an IPv4 packet from 10.233.0.2 to 10.233.0.1 with a
// TCP SYN or a UDP header and a few bytes.
func ipv4Packet(proto uint8, sport, dport uint16) []byte {
	var l4 []byte
	if proto == 6 {
		l4 = make([]byte, 20)
		l4[12], l4[13] = 5<<4, 0x02
		binary.BigEndian.PutUint16(l4[14:], 65535)
	} else {
		l4 = make([]byte, 8+5)
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		copy(l4[8:], "hello")
	}
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	h := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0, 10, 233, 0, 2, 10, 233, 0, 1}
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)+len(l4)))
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(sum))
	return append(h, l4...)
}

// TestFilterRefused: an expression the compiler refuses fails Open with
// its error (before any interface is opened; no root needed).
func TestFilterRefused(t *testing.T) {
	_, err := Open(Options{Interfaces: []string{"lo"}, Filter: "vlan and tcp"})
	if err == nil || !strings.Contains(err.Error(), `filter "vlan and tcp"`) || !strings.Contains(err.Error(), "VLAN") {
		t.Fatalf("Open: %v, want the filter refused, naming vlan", err)
	}
	var ee *exec.Error
	if errors.As(err, &ee) {
		t.Fatalf("Open ran a command: %v", err)
	}
}
