package segstore_test

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
)

// plainExchange returns a TLS connection's packets (Ethernet; its bytes
// stand for TLS records) and the plaintext records of an HTTP/1.1
// exchange on it, as the agent writes them.
func plainExchange(client, server string) (wire, plain []capture.Packet) {
	c := capturetest.NewConn(client, server, t0, func(p capture.Packet) {
		p.Data = append([]byte(nil), p.Data...)
		wire = append(wire, p)
	})
	c.Handshake()
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3, Minor: 0, PID: 77}
	seq := [2]uint32{1, 1}
	rec := func(fromClient bool, b string) {
		i, src, dst := 0, c.Client, c.Server
		if !fromClient {
			i, src, dst = 1, c.Server, c.Client
		}
		h.Read = !fromClient
		data := capture.AppendPlaintext(nil, h, src, dst, seq[i], seq[1-i], []byte(b))
		plain = append(plain, capture.Packet{Timestamp: c.T, Data: data, Length: len(data), LinkType: capture.LinkTypeTLSPlaintext})
		seq[i] += uint32(len(b))
		c.T = c.T.Add(capturetest.Step)
		c.Send(fromClient, []byte("\x17\x03\x03\x00\x20"+strings.Repeat("e", 32))) // its TLS record
	}
	rec(true, "GET /plain/items HTTP/1.1\r\nHost: shop\r\n\r\n")
	rec(false, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
	c.Close()
	return wire, plain
}

// TestPlaintextSegments: plaintext records go to a segment of their own
// (link type 147) beside the packets'; its index lists no flow, so that the
// connection is one flow with the packets' counts, and an export by time
// holds both.
func TestPlaintextSegments(t *testing.T) {
	wire, plain := plainExchange("10.0.0.2:41000", "10.0.0.9:443")
	s := open(t, t.TempDir(), segstore.Options{})
	for i := range wire {
		if i == 4 {
			write(t, s, plain, "tls")
		}
		write(t, s, wire[i:i+1], "eth0")
	}
	segs := s.Segments()
	if len(segs) != 2 {
		t.Fatalf("%d segments", len(segs))
	}
	var pt segstore.Segment
	for _, g := range segs {
		if g.LinkType == capture.LinkTypeTLSPlaintext {
			pt = g
		}
	}
	if pt.Packets != uint64(len(plain)) || pt.Other != 0 || !strings.HasSuffix(pt.Path, "-lt147.pcap") {
		t.Fatalf("plaintext segment %+v", pt)
	}
	flows, err := s.Flows(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || flows[0].Packets[0]+flows[0].Packets[1] != uint64(len(wire)) || flows[0].Src != netip.MustParseAddrPort("10.0.0.2:41000") {
		t.Fatalf("flows %+v", flows)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Indexes written at close, read again: still one flow.
	s2 := open(t, strings.TrimSuffix(pt.Path, "/segments/"+pt.Path[strings.LastIndex(pt.Path, "/")+1:]), segstore.Options{})
	flows, err = s2.Flows(time.Time{}, time.Time{})
	if err != nil || len(flows) != 1 {
		t.Fatalf("after reopening: %+v, %v", flows, err)
	}
	got := readAll(t, []segstore.Segment{pt})
	if len(got) != len(plain) || string(got[0].Data) != string(plain[0].Data) {
		t.Fatalf("read %d records back", len(got))
	}
}

// TestPlaintextTshark: tshark reads a plaintext segment with a user DLT
// (the header skipped, IP after it) and sees the HTTP request and response
// on port 443, with the command FORMAT.md gives.
func TestPlaintextTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (make test installs it)")
	}
	for _, c := range []struct{ name, client, server string }{
		{"IPv4", "10.0.0.2:41000", "10.0.0.9:443"},
		{"IPv6", "[2001:db8::2]:41000", "[2001:db8::9]:443"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, plain := plainExchange(c.client, c.server)
			s := open(t, t.TempDir(), segstore.Options{})
			write(t, s, plain, "tls")
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			path := s.Segments()[0].Path
			cmd := exec.Command("tshark", "-n", "-o", `uat:user_dlts:"User 0 (DLT=147)","ip","16","","0",""`,
				"-r", path, "-Y", "http",
				"-T", "fields", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user's preferences
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark: %v\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			cl, sv := netip.MustParseAddrPort(c.client), netip.MustParseAddrPort(c.server)
			want := []string{
				cl.Addr().String() + "\t41000\tGET\t/plain/items\t",
				sv.Addr().String() + "\t443\t\t\t200",
			}
			if len(lines) != 2 {
				t.Fatalf("tshark printed:\n%s", out)
			}
			for i, l := range lines {
				// ip.src and ipv6.src: one of the two is empty.
				f := strings.Split(l, "\t")
				if len(f) != 6 || (f[0] == "") == (f[1] == "") {
					t.Fatalf("line %d: %q", i, l)
				}
				l = f[0] + f[1] + "\t" + strings.Join(f[2:], "\t")
				if l != want[i] {
					t.Errorf("line %d: %q, want %q", i, l, want[i])
				}
			}
		})
	}
}
