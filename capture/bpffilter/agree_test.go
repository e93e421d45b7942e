package bpffilter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/internal/corpus"
)

// exprs are the expressions an SRE scopes a capture with, with the
// addresses, ports and MACs of the test captures so that they match
// something. unsupported says the compiler refuses it (on purpose).
var exprs = []struct {
	expr        string
	unsupported bool
}{
	{expr: "host 127.0.0.1"}, {expr: "host 192.150.187.43"}, {expr: "src host 127.0.0.5"}, {expr: "dst host 10.0.2.15"},
	{expr: "ip host 127.0.0.1"}, {expr: "10.0.2.15", unsupported: true}, {expr: "src 127.0.0.1"}, {expr: "host 127.0.0.1 or 127.0.0.5"},
	{expr: "src and dst host 127.0.0.1"}, {expr: "src or dst host 10.0.2.15"},
	{expr: "net 127.0.0.0/8"}, {expr: "net 10.0.0.0/8"}, {expr: "src net 192.150.187.0/24"}, {expr: "dst net 173.194.0.0/16"},
	{expr: "net 10"}, {expr: "net 127.0.0.0 mask 255.255.255.0"}, {expr: "not net 127"},
	{expr: "port 80"}, {expr: "tcp port 8080"}, {expr: "udp port 53"}, {expr: "dst port 5432"}, {expr: "src port 6379"},
	{expr: "sctp port 5672"}, {expr: "tcp src port 80"}, {expr: "udp dst port 53"},
	{expr: "portrange 5000-6000"}, {expr: "tcp portrange 8000-8100"}, {expr: "src portrange 1-1024"}, {expr: "udp portrange 50-60"},
	{expr: "not port 8898"}, {expr: "not port 22 and not port 8898"}, {expr: "not port 22 and not 8898"},
	{expr: "tcp and not port 80"}, {expr: "port 80 or port 8080"}, {expr: "port 80 or 8080"},
	{expr: "host 127.0.0.1 and (port 8080 or port 5432)"}, {expr: "src host 127.0.0.1 and dst port 8080"},
	{expr: "not host 127.0.0.1"}, {expr: "udp and not port 53"}, {expr: "tcp dst port 80 or tcp dst port 8080"},
	{expr: "port 80 or port 8080 and tcp"}, {expr: "tcp or udp and port 53"}, {expr: "!(tcp port 80) && ip || ip6"},
	{expr: "tcp"}, {expr: "udp"}, {expr: "icmp"}, {expr: "icmp6"}, {expr: "sctp"}, {expr: "igmp"}, {expr: "ip"}, {expr: "ip6"},
	{expr: "arp"}, {expr: "rarp"}, {expr: "ip6 and tcp"}, {expr: "not ip"},
	{expr: "host ::1"}, {expr: "ip6 host ::1"}, {expr: "net 2606:4700::/32"}, {expr: "dst net 2620:0:e00::/48"},
	{expr: "ip6 and port 443"}, {expr: "ip6 and udp port 443"},
	{expr: "ip proto 17"}, {expr: "ip6 proto 6"}, {expr: "proto 132"}, {expr: "ip proto \\tcp"}, {expr: "ether proto 0x86dd"},
	{expr: "ether proto \\arp"},
	{expr: "tcp[tcpflags] & tcp-syn != 0"}, {expr: "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0"}, {expr: "tcp[13] & 2 != 0"},
	{expr: "tcp[tcpflags] == tcp-syn|tcp-ack"}, {expr: "tcp[tcpflags] & tcp-rst != 0 or tcp[tcpflags] & tcp-fin != 0"},
	{expr: "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420"}, {expr: "tcp[2:2] > 1024 and tcp[2:2] < 9000"},
	{expr: "(tcp[13] & 2) != 0"}, {expr: "udp[0:2] = 53 or udp[2:2] = 53"}, {expr: "icmp[icmptype] = icmp-echo"},
	{expr: "icmp[0] != 8 and icmp[0] != 0"}, {expr: "icmp6[icmp6type] = icmp6-echo"}, {expr: "ip[8] < 64"},
	{expr: "ip[2:2] > 1000"}, {expr: "ip6[6] = 17"}, {expr: "ip[9] = 6 and ip[6:2] & 0x1fff = 0"},
	{expr: "len > 1000"}, {expr: "len <= 60"}, {expr: "greater 500"}, {expr: "less 100"}, {expr: "len - 14 > 500"},
	{expr: "ip[2:2] * 2 > len"}, {expr: "tcp[12] / 16 > 5"}, {expr: "2 < ip[8]"},
	{expr: "ether host 20:65:8e:f2:54:12"}, {expr: "ether src 90:e2:ba:86:13:ec"}, {expr: "ether dst 00:00:00:00:00:00"},
	{expr: "ether broadcast"}, {expr: "ether multicast"}, {expr: "ether[12:2] = 0x800"},
	{expr: "host 127.0.0.1 and port 8080 and tcp"},
	{expr: "vlan", unsupported: true}, {expr: "vlan and tcp", unsupported: true}, {expr: "host localhost", unsupported: true},
	{expr: "port http", unsupported: true}, {expr: "inbound", unsupported: true}, {expr: "ip broadcast", unsupported: true},
}

var linkTypes = []struct {
	lt  LinkType
	dlt uint32 // the pcap LINKTYPE_ value of its empty reference capture
}{{Ethernet, 1}, {Raw, 101}, {LinuxSLL, 113}}

// refProgram compiles an expression with tcpdump -ddd for a link type
// (reading an empty capture of that link type, as no interface of every
// type is at hand). It returns tcpdump's error text on failure.
func refProgram(t testing.TB, lt LinkType, expr string) ([]bpf.RawInstruction, string) {
	t.Helper()
	path := emptyCapture(t, lt)
	out, err := exec.Command("tcpdump", "-r", path, "-ddd", expr).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("tcpdump: %v", err)
	}
	prog, err := parseDDD(out)
	if err != nil {
		t.Fatalf("tcpdump -ddd %q: %v", expr, err)
	}
	return prog, ""
}

func parseDDD(out []byte) ([]bpf.RawInstruction, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	var prog []bpf.RawInstruction
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, errors.New("unexpected line " + sc.Text())
		}
		var v [4]uint64
		for i := range f {
			var err error
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, err
			}
		}
		prog = append(prog, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	return prog, nil
}

var (
	emptyOnce  sync.Once
	emptyDir   string
	emptyPaths = map[LinkType]string{}
)

func emptyCapture(t testing.TB, lt LinkType) string {
	emptyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bpffilter")
		if err != nil {
			t.Fatal(err)
		}
		emptyDir = dir
		for _, l := range linkTypes {
			h := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
			h = binary.LittleEndian.AppendUint16(h, 2)
			h = binary.LittleEndian.AppendUint16(h, 4)
			h = binary.LittleEndian.AppendUint32(h, 0)
			h = binary.LittleEndian.AppendUint32(h, 0)
			h = binary.LittleEndian.AppendUint32(h, 262144)
			h = binary.LittleEndian.AppendUint32(h, l.dlt)
			p := filepath.Join(dir, l.lt.String()+".pcap")
			if err := os.WriteFile(p, h, 0o600); err != nil {
				t.Fatal(err)
			}
			emptyPaths[l.lt] = p
		}
	})
	return emptyPaths[lt]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if emptyDir != "" {
		os.RemoveAll(emptyDir)
	}
	os.Exit(code)
}

var (
	packetsOnce sync.Once
	packets     map[LinkType]*packetSet
	packetsErr  error
)

// testPackets reads every packet of the corpus and of the repository's
// recorded captures, and gives each in the three link types: as captured,
// and with its network packet under an Ethernet header, none, or a Linux
// cooked header (the recorded captures are Ethernet, Linux cooked v1 and
// v2, BSD loopback and PPP).
func testPackets(t testing.TB) map[LinkType]*packetSet {
	t.Helper()
	packetsOnce.Do(func() {
		var files []string
		if dir, ok := corpus.Dir(); ok {
			files, packetsErr = corpus.Captures(dir)
		}
		for _, root := range []string{"../../dissect", "../../internal/demo", "../testdata"} {
			more, _ := corpus.Captures(root)
			files = append(files, more...)
		}
		packets = map[LinkType]*packetSet{Ethernet: {}, Raw: {}, LinuxSLL: {}}
		for _, f := range files {
			if err := readPackets(f, packets); err != nil {
				packetsErr = err
				return
			}
		}
	})
	if packetsErr != nil {
		t.Fatal(packetsErr)
	}
	if len(packets[Ethernet].data) < 1000 {
		t.Fatalf("only %d packets to test with: is ../shared/corpus there?", len(packets[Ethernet].data))
	}
	return packets
}

// packetSet is packets of one link type; cut tells which were cut short.
type packetSet struct {
	data [][]byte
	cut  []bool
}

func (s *packetSet) add(d []byte, cut bool) {
	s.data = append(s.data, d)
	s.cut = append(s.cut, cut)
}

func readPackets(path string, out map[LinkType]*packetSet) error {
	f, err := capture.OpenFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var p capture.Packet
	for {
		if err := f.Next(&p); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		d := slices.Clone(p.Data)
		var et uint16
		var l3 []byte
		src := []byte{2, 0, 0, 0, 0, 2}
		switch p.LinkType {
		case layers.LinkTypeEthernet:
			out[Ethernet].add(d, false)
			if len(d) < 14 {
				continue
			}
			src, et, l3 = d[6:12], binary.BigEndian.Uint16(d[12:]), d[14:]
			for (et == 0x8100 || et == 0x88a8) && len(l3) >= 4 {
				et, l3 = binary.BigEndian.Uint16(l3[2:]), l3[4:]
			}
		case layers.LinkTypeLinuxSLL:
			if len(d) >= 16 {
				et, l3 = binary.BigEndian.Uint16(d[14:]), d[16:]
			}
		case layers.LinkTypeLinuxSLL2:
			if len(d) >= 20 {
				et, l3 = binary.BigEndian.Uint16(d), d[20:]
			}
		case layers.LinkTypeNull, layers.LinkTypeLoop:
			if len(d) >= 4 {
				switch d[0] | d[3] {
				case 2:
					et = 0x800
				case 24, 28, 30:
					et = 0x86dd
				}
				l3 = d[4:]
			}
		case layers.LinkTypePPP:
			x := d
			if len(x) >= 2 && x[0] == 0xff && x[1] == 0x03 {
				x = x[2:]
			}
			if len(x) >= 2 {
				switch binary.BigEndian.Uint16(x) {
				case 0x21:
					et = 0x800
				case 0x57:
					et = 0x86dd
				}
				l3 = x[2:]
			}
		}
		if et == 0 {
			continue
		}
		// Besides each packet: the packet cut in half (what a snap length
		// does: loads past the end reject), and an IPv4 packet made a later
		// fragment (ports are not read from those).
		l3s := [][]byte{l3, l3[:len(l3)/2]}
		if et == 0x800 && len(l3) >= 20 {
			frag := slices.Clone(l3)
			frag[6], frag[7] = frag[6]|0x20, frag[7]|0x10
			l3s = append(l3s, frag)
		}
		for i, l3 := range l3s {
			if p.LinkType != layers.LinkTypeEthernet || i > 0 {
				e := append([]byte{2, 0, 0, 0, 0, 1}, src...)
				e = binary.BigEndian.AppendUint16(e, et)
				out[Ethernet].add(append(e, l3...), i == 1)
			}
			if et == 0x800 || et == 0x86dd {
				out[Raw].add(l3, i == 1)
			}
			s := append([]byte{0, 0, 0, 1, 0, 6}, src...)
			s = append(s, 0, 0)
			s = binary.BigEndian.AppendUint16(s, et)
			out[LinuxSLL].add(append(s, l3...), i == 1)
		}
	}
}

// verdicts runs a program over packets with golang.org/x/net/bpf's VM.
func verdicts(t testing.TB, prog []bpf.RawInstruction, pkts [][]byte) []bool {
	t.Helper()
	ins, _ := bpf.Disassemble(prog)
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("VM: %v", err)
	}
	out := make([]bool, len(pkts))
	for i, p := range pkts {
		n, err := vm.Run(p)
		if err != nil {
			t.Fatalf("VM run: %v", err)
		}
		out[i] = n > 0
	}
	return out
}

// TestAgreesWithTcpdump: for every expression and link type, the
// compiled program accepts exactly the whole packets tcpdump's (-ddd, the
// same libpcap as gopacket's pcap package) accepts; what tcpdump refuses,
// the compiler refuses too; what the compiler refuses on purpose is said
// in the table. On packets cut inside a header the filter reads, ours may
// reject where libpcap's optimized program, having ordered its loads
// otherwise, accepts (never the reverse). The kernel runs a socket filter
// on the whole packet (the snap length cuts after it), so that is a
// packet malformed on the wire.
func TestAgreesWithTcpdump(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is the reference and is not installed (scripts/install-deps.sh installs it)")
	}
	pkts := testPackets(t)
	agreed, cutRejected := 0, 0
	for _, e := range append(exprs, struct {
		expr        string
		unsupported bool
	}{expr: longExpr()}) {
		for _, l := range linkTypes {
			ref, refErr := refProgram(t, l.lt, e.expr)
			prog, err := Compile(e.expr, l.lt)
			switch {
			case e.unsupported:
				var fe *Error
				if !errors.As(err, &fe) {
					t.Errorf("%q on %v: compiled, want it refused (%v)", e.expr, l.lt, err)
				}
				continue
			case refErr != "":
				if err == nil && strings.Contains(refErr, "rejects all packets") {
					// libpcap refuses a filter that can match nothing (arp on
					// raw IP); this compiler gives one that rejects all.
					for i, ok := range verdicts(t, prog, pkts[l.lt].data) {
						if ok {
							t.Errorf("%q on %v: accepts packet %d, tcpdump says it rejects all", e.expr, l.lt, i)
							break
						}
					}
					agreed++
					continue
				}
				if !errors.Is(err, ErrLinkType) {
					t.Errorf("%q on %v: tcpdump refuses it (%s), compiler: %v", e.expr, l.lt, refErr, err)
				}
				continue
			case err != nil:
				t.Errorf("%q on %v: %v", e.expr, l.lt, err)
				continue
			}
			set := pkts[l.lt]
			want, got := verdicts(t, ref, set.data), verdicts(t, prog, set.data)
			diff, cutOnly, matched := 0, 0, 0
			first := -1
			for i := range want {
				if want[i] {
					matched++
				}
				switch {
				case want[i] == got[i]:
				case set.cut[i] && want[i]:
					// Cut inside a header the filter reads: ours read past
					// the end and rejected; libpcap's optimizer ordered its
					// loads otherwise. Never the other way round.
					cutOnly++
				default:
					if first < 0 {
						first = i
					}
					diff++
				}
			}
			if diff > 0 {
				t.Errorf("%q on %v: %d of %d packets judged otherwise than tcpdump's program (first: packet %d, tcpdump %v, cut %v)",
					e.expr, l.lt, diff, len(want), first, want[first], set.cut[first])
				continue
			}
			agreed++
			cutRejected += cutOnly
			t.Logf("%-60q %-12v %5d of %d accepted by both; %d cut packets rejected by this compiler only", e.expr, l.lt, matched, len(want), cutOnly)
		}
	}
	t.Logf("%d expression × link type pairs agree with tcpdump over %d/%d/%d packets; %d verdicts on cut packets differ, all rejections of ours",
		agreed, len(pkts[Ethernet].data), len(pkts[Raw].data), len(pkts[LinuxSLL].data), cutRejected)
}

// TestOfflineReferenceIsLive: the reference programs above come from an
// empty Ethernet capture; tcpdump -i lo (loopback is Ethernet to
// AF_PACKET), what capture/live used to run, gives the same program for
// every expression of the table, so agreeing with one is agreeing with
// the other. Opening an interface needs root.
func TestOfflineReferenceIsLive(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump is the reference and is not installed (scripts/install-deps.sh installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("tcpdump -i lo needs root")
	}
	for _, e := range exprs {
		if e.unsupported {
			continue
		}
		offline, msg := refProgram(t, Ethernet, e.expr)
		if msg != "" {
			t.Fatalf("%q: %s", e.expr, msg)
		}
		out, err := exec.Command("tcpdump", "-i", "lo", "-ddd", e.expr).Output()
		if err != nil {
			t.Fatalf("tcpdump -i lo -ddd %q: %v", e.expr, err)
		}
		live, err := parseDDD(out)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(live, offline) {
			t.Errorf("%q: tcpdump -i lo gives another program than for an Ethernet capture", e.expr)
		}
	}
}
