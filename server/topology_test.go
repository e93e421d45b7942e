package server_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture/capturetest"
)

// dnsMessage serialises a DNS query for name, or its answer with addr.
func dnsMessage(t *testing.T, id uint16, name string, addr net.IP) []byte {
	t.Helper()
	d := &layers.DNS{ID: id, RD: true, QDCount: 1,
		Questions: []layers.DNSQuestion{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	if addr != nil {
		d.QR, d.RA, d.ANCount = true, true, 1
		d.Answers = []layers.DNSResourceRecord{{Name: []byte(name), Type: layers.DNSTypeA, Class: layers.DNSClassIN, TTL: 30, IP: addr}}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestServiceMapNames: a peer outside the cluster is named by the DNS name
// the capture shows its address resolved from; an edge whose protocol is
// not dissected comes from its flows.
func TestServiceMapNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "external.pcap")
	f, err := capturetest.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	for i := range 5 {
		ts := at.Add(time.Duration(i) * time.Second)
		port := 40000 + i
		f.Emit(capturetest.Datagram(ts, fmt.Sprintf("10.0.0.2:%d", port), "10.0.0.53:53", dnsMessage(t, uint16(i+1), "api.partner.example", nil)))
		f.Emit(capturetest.Datagram(ts.Add(time.Millisecond), "10.0.0.53:53", fmt.Sprintf("10.0.0.2:%d", port),
			dnsMessage(t, uint16(i+1), "api.partner.example", net.IPv4(203, 0, 113, 7))))
		c := capturetest.NewConn(fmt.Sprintf("10.0.0.2:%d", 50000+i), "203.0.113.7:80", ts.Add(2*time.Millisecond), f.Emit)
		c.Handshake()
		c.Send(true, []byte("GET /v1/rates HTTP/1.1\r\nHost: api.partner.example\r\n\r\n"))
		c.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
		c.Close()
		// And a protocol wirescope does not dissect (TLS).
		tls := capturetest.NewConn(fmt.Sprintf("10.0.0.2:%d", 60000+i), "198.51.100.9:443", ts.Add(3*time.Millisecond), f.Emit)
		tls.Handshake()
		tls.Send(true, []byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
		tls.Close()
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c := connect(t, openWorkspace(t, path))
	text := mustCall(t, c, "service_map", nil)
	for _, want := range []string{
		"10.0.0.2 → 203.0.113.7:80 (api.partner.example) http: 5 calls, no failures",
		"10.0.0.2 → 10.0.0.53:53 dns: 5 calls, no failures",
		"10.0.0.2 → 198.51.100.9:443 (tls, encrypted; no dissected calls); 5 conns",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	text = mustCall(t, c, "list_workloads", nil)
	if !strings.Contains(text, "10.0.0.2 (no Kubernetes identity): 15 conns as client, 0 as server") {
		t.Errorf("list_workloads:\n%s", text)
	}
}
