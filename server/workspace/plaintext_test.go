package workspace_test

import (
	"context"
	stdtls "crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/tls/tlstest"
	"github.com/wirescope/wirescope/server/workspace"
	"github.com/wirescope/wirescope/tools"
)

// TestPlaintextDecrypted: a TLS connection's packets and, in a file of
// their own (as the agent's segments hold them), its plaintext records.
// The connection is one flow with its packets' counts, read as decrypted
// by the library; capture_status counts it per library; the calls inside
// are indexed.
func TestPlaintextDecrypted(t *testing.T) {
	cert, pool := tlstest.Cert(t)
	session, _, err := tlstest.Exchange(t, &stdtls.Config{RootCAs: pool, ServerName: "tls.test"}, &stdtls.Config{Certificates: []stdtls.Certificate{cert}},
		[]string{"GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n"}, []string{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	var wire, plain []capture.Packet
	c := capturetest.NewConn("10.0.0.2:41000", "10.0.0.9:443", t0, func(p capture.Packet) {
		p.Data = append([]byte(nil), p.Data...)
		wire = append(wire, p)
	})
	c.Handshake()
	for _, ch := range session {
		c.Send(ch.Role == proto.Client, ch.B)
	}
	h := capture.PlaintextHeader{Library: capture.LibOpenSSL, Major: 3, Minor: 0, PID: 9}
	seq := [2]uint32{1, 1}
	for i, m := range []string{"GET /secret/items HTTP/1.1\r\nHost: shop\r\n\r\n", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"} {
		src, dst := c.Client, c.Server
		if i == 1 {
			src, dst = dst, src
		}
		rec := capture.AppendPlaintext(nil, h, src, dst, seq[i], seq[1-i], []byte(m))
		seq[i] += uint32(len(m))
		plain = append(plain, capture.Packet{Timestamp: c.T, Data: rec, Length: len(rec), LinkType: capture.LinkTypeTLSPlaintext})
		c.T = c.T.Add(time.Millisecond)
	}
	c.Close()
	dir := t.TempDir()
	var paths []string
	for _, f := range []struct {
		lt   layers.LinkType
		pkts []capture.Packet
	}{{layers.LinkTypeEthernet, wire}, {capture.LinkTypeTLSPlaintext, plain}} {
		path := filepath.Join(dir, f.lt.String()+".pcap")
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := pcapgo.NewWriterNanos(out)
		w.WriteFileHeader(65535, f.lt)
		for _, p := range f.pkts {
			w.WritePacket(gopacket.CaptureInfo{Timestamp: p.Timestamp, CaptureLength: len(p.Data), Length: p.Length}, p.Data)
		}
		out.Close()
		paths = append(paths, path)
	}
	ws := open(t, workspace.Options{Paths: paths})
	ctx := context.Background()
	if _, err := ws.Dissect(ctx, time.Time{}, time.Time{}, nil); err != nil {
		t.Fatal(err)
	}
	flows, err := ws.Flows(ctx, time.Time{}, time.Time{}, tools.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 {
		t.Fatalf("%d flows: %+v", len(flows), flows)
	}
	f := flows[0]
	if f.Protocol != "tls" || !f.Encrypted || f.Decryption != "decrypted: OpenSSL 3.0 uprobe" || f.Packets[0]+f.Packets[1] != uint64(len(wire)) {
		t.Errorf("flow %+v", f)
	}
	st, err := ws.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Encrypted != 1 || st.Decrypted != 0 || st.DecryptedBy["OpenSSL 3.0"] != 1 || len(st.DecryptedBy) != 1 || st.HandshakeOnly != 0 {
		t.Errorf("status: encrypted %d, key log %d, uprobes %v, handshake only %d", st.Encrypted, st.Decrypted, st.DecryptedBy, st.HandshakeOnly)
	}
	all := strings.Join(calls(t, ws), "\n")
	if !strings.Contains(all, " 503 GET /secret/items 10.0.0.2") || !strings.Contains(all, " TLS1.3 handshake tls.test 10.0.0.2") {
		t.Errorf("calls:\n%s", all)
	}
}
