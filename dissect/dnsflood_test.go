package dissect_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
)

// dnsQuery returns a DNS query for flood.example. of type A with the given
// ID, recursion desired.
func dnsQuery(id uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = append(b, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	b = append(b, "\x05flood\x07example\x00"...)
	return append(b, 0, 1, 0, 1)
}

// writeDNSFlood writes a capture of n UDP clients to path, one after
// another, each sending perFlow queries with distinct IDs to 10.0.0.53:53,
// none answered. Timestamps advance 100 ns a packet, so that no query
// waits for the request timeout and no flow idles out before the capture
// ends: only the memory bounds release anything.
func writeDNSFlood(t *testing.T, path string, n, perFlow int) {
	t.Helper()
	f, err := synth.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 16, 0, 0, 0, time.UTC)
	server := netip.MustParseAddr("10.0.0.53")
	buf := gopacket.NewSerializeBuffer()
	for i := range n {
		client := netip.AddrFrom4([4]byte{10, byte(16 + i>>16), byte(i >> 8), byte(i)})
		for j := range perFlow {
			udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
			p := synth.Frame(buf, at, client, server, udp, dnsQuery(uint16(j)))
			at = at.Add(100 * time.Nanosecond)
			f.Emit(capture.Packet{Timestamp: p.Timestamp, LinkType: p.LinkType, Data: p.Data, Length: p.Length})
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDNSFlood runs the real `wirescope dissect -q` on a capture of 8,000
// UDP clients that each send 1,000 DNS queries that are never answered:
// each flow's parser may keep up to Limits.MaxPending queries waiting, and
// what they keep is bounded in total with that of the TCP parsers. The
// summary says exactly what happened: every query is reported unanswered,
// and some flows, but not all, were ended early to bound memory.
func TestDNSFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a capture of 8,000,000 queries")
	}
	const n, perFlow = 8000, 1000
	dir := t.TempDir()
	bin := buildWirescope(t, dir)
	path := filepath.Join(dir, "dns.pcap")
	began := time.Now()
	writeDNSFlood(t, path, n, perFlow)
	t.Logf("wrote %d flows of %d queries in %v", n, perFlow, time.Since(began).Round(time.Millisecond))
	defer os.Remove(path)

	summary := floodCheck(t, bin, path, "-q")
	const sent = n * perFlow
	if want := fmt.Sprintf("calls: dns %d\n", sent); !strings.Contains(summary, want) {
		t.Errorf("summary lacks %q: every query is reported", strings.TrimSpace(want))
	}
	if want := fmt.Sprintf("unanswered: %d, without request: 0, truncated: 0, malformed: 0\n", sent); !strings.Contains(summary, want) {
		t.Errorf("summary lacks %q: every query is reported unanswered", strings.TrimSpace(want))
	}
	if want := fmt.Sprintf("flows: udp %d ", n); !strings.Contains(summary, want) {
		t.Errorf("summary lacks %q: a flow ended early is one whose queries are all in", strings.TrimSpace(want))
	}
	sm := regexp.MustCompile(`flows ended early to bound what parsers buffer: (\d+)`).FindStringSubmatch(summary)
	if sm == nil {
		t.Fatalf("the summary does not count flows ended early to bound what parsers buffer")
	}
	shed, _ := strconv.ParseUint(sm[1], 10, 64)
	if shed == 0 || shed >= n {
		t.Errorf("%d flows ended early, want some but not all of %d", shed, n)
	}
	if !strings.Contains(summary, "bytes skipped for memory bounds") || regexp.MustCompile(`, [1-9]\d* bytes skipped`).MatchString(summary) {
		t.Errorf("bytes were skipped: every query reaches a parser")
	}
}
