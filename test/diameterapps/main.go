// Command diameterapps is a minimal Diameter peer for
// scripts/record-diameter.sh: it connects to a Diameter node over TCP as
// client.localdomain, exchanges capabilities, sends the application
// requests given on its command line (Credit-Control and NASREQ requests
// to the hosts named), a DWR, and a DPR, answering the node's DWRs
// meanwhile, and prints every message it sends and receives, one a line:
//
//	SND|RCV <command code> <R|A> <hop-by-hop, hex> <Result-Code, or ->
//
// It needs nothing but the standard library: the messages are built by
// hand (RFC 6733 section 3 and 4).
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"
)

const (
	host  = "client.localdomain"
	realm = "localdomain"
)

func avp(code uint32, data []byte) []byte {
	n := 8 + len(data)
	b := binary.BigEndian.AppendUint32(nil, code)
	b = append(b, 0x40, byte(n>>16), byte(n>>8), byte(n))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func str(code uint32, s string) []byte { return avp(code, []byte(s)) }
func u32(code, v uint32) []byte        { return avp(code, binary.BigEndian.AppendUint32(nil, v)) }

func message(flags byte, cmd, app, hbh uint32, avps ...[]byte) []byte {
	b := []byte{1, 0, 0, 0, flags, byte(cmd >> 16), byte(cmd >> 8), byte(cmd)}
	b = binary.BigEndian.AppendUint32(b, app)
	b = binary.BigEndian.AppendUint32(b, hbh)
	b = binary.BigEndian.AppendUint32(b, hbh^0x0e2e0000)
	for _, a := range avps {
		b = append(b, a...)
	}
	n := len(b)
	b[1], b[2], b[3] = byte(n>>16), byte(n>>8), byte(n)
	return b
}

type peer struct {
	c   net.Conn
	r   *bufio.Reader
	hbh uint32
	out io.Writer
}

func (p *peer) send(m []byte) {
	p.log("SND", m)
	if _, err := p.c.Write(m); err != nil {
		log.Fatalf("write: %v", err)
	}
}

func (p *peer) log(dir string, m []byte) {
	kind := "A"
	if m[4]&0x80 != 0 {
		kind = "R"
	}
	rc := "-"
	for b := m[20:]; len(b) >= 8; {
		code := binary.BigEndian.Uint32(b)
		n := int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		if n < 8 || n > len(b) {
			break
		}
		if code == 268 && n == 12 {
			rc = fmt.Sprint(binary.BigEndian.Uint32(b[8:]))
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	fmt.Fprintf(p.out, "%s %d %s 0x%08x %s\n", dir, int(m[5])<<16|int(m[6])<<8|int(m[7]), kind, binary.BigEndian.Uint32(m[12:]), rc)
}

func (p *peer) read() []byte {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(p.r, hdr); err != nil {
		log.Fatalf("read: %v", err)
	}
	n := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	m := make([]byte, n)
	copy(m, hdr)
	if _, err := io.ReadFull(p.r, m[4:]); err != nil {
		log.Fatalf("read: %v", err)
	}
	p.log("RCV", m)
	return m
}

// ask sends a request and reads until its answer, answering the node's
// DWRs meanwhile.
func (p *peer) ask(flags byte, cmd, app uint32, avps ...[]byte) {
	p.hbh++
	h := p.hbh
	p.send(message(0x80|flags, cmd, app, h, avps...))
	for {
		m := p.read()
		if m[4]&0x80 != 0 {
			p.answer(m)
			continue
		}
		if binary.BigEndian.Uint32(m[12:]) == h {
			return
		}
	}
}

// answer answers a request of the node: DWR with success.
func (p *peer) answer(m []byte) {
	cmd := uint32(m[5])<<16 | uint32(m[6])<<8 | uint32(m[7])
	rc := uint32(2001)
	if cmd != 280 {
		rc = 3001 // DIAMETER_COMMAND_UNSUPPORTED
	}
	a := message(0, cmd, binary.BigEndian.Uint32(m[8:]), binary.BigEndian.Uint32(m[12:]), u32(268, rc), str(264, host), str(296, realm))
	if rc != 2001 {
		a[4] |= 0x20
	}
	copy(a[16:20], m[16:20])
	p.send(a)
}

func main() {
	to := flag.String("connect", "127.0.0.52:13869", "the node")
	from := flag.String("from", "127.0.0.53", "the local address")
	reqs := flag.String("requests", "", "comma-separated requests: ccr:HOST (a CCR-I to Destination-Host HOST), aar:REALM (an AAR to Destination-Realm REALM)")
	flag.Parse()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(*from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", *to)
	if err != nil {
		log.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	p := &peer{c: c, r: bufio.NewReader(c), hbh: 0x7e570000, out: os.Stdout}
	origin := [][]byte{str(264, host), str(296, realm)}
	p.ask(0, 257, 0, append(origin, avp(257, []byte{0, 1, 127, 0, 0, 53}), u32(266, 0),
		str(269, "wirescope-diameter-client"), u32(258, 4), u32(258, 1))...)
	for i, r := range strings.Split(*reqs, ",") {
		kind, dest, _ := strings.Cut(r, ":")
		sid := fmt.Sprintf("%s;%d;%d", host, time.Now().Unix(), i+1)
		switch kind {
		case "ccr":
			p.ask(0x40, 272, 4, str(263, sid), str(264, host), str(296, realm), str(283, realm), str(293, dest),
				u32(258, 4), str(461, "32251@3gpp.org"), u32(416, 1), u32(415, 0), str(1, "alice@"+realm))
		case "aar":
			p.ask(0x40, 265, 1, str(263, sid), u32(258, 1), str(264, host), str(296, realm), str(283, dest),
				u32(274, 3), str(1, "bob@"+realm))
		case "":
		default:
			log.Fatalf("request %q", r)
		}
	}
	p.ask(0, 280, 0, origin...)
	p.ask(0, 282, 0, append(origin, u32(273, 0))...)
	c.Close()
}
