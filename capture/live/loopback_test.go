//go:build linux

package live

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/wirescope/wirescope/capture"
)

// segment is what tells one TCP segment of the test's traffic from
// another: the IP ID differs between a segment and its retransmission.
type segment struct {
	ipID             uint16
	srcPort, dstPort uint16
	seq, ack         uint32
	flags            uint8
	payload          int
	start            string // the payload's first bytes
}

func (s segment) String() string {
	return fmt.Sprintf("%d→%d id=%d seq=%d ack=%d flags=%#x len=%d %q", s.srcPort, s.dstPort, s.ipID, s.seq, s.ack, s.flags, s.payload, s.start)
}

// tcpSegment parses an Ethernet (loopback) frame carrying IPv4 TCP.
func tcpSegment(b []byte) (segment, bool) {
	if len(b) < 14+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return segment{}, false
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 6 || len(ip) < ihl+20 {
		return segment{}, false
	}
	total := min(int(binary.BigEndian.Uint16(ip[2:])), len(ip))
	tcp := ip[ihl:total]
	off := int(tcp[12]>>4) * 4
	if off < 20 || off > len(tcp) {
		return segment{}, false
	}
	payload := tcp[off:]
	return segment{
		ipID: binary.BigEndian.Uint16(ip[4:]), srcPort: binary.BigEndian.Uint16(tcp[0:]), dstPort: binary.BigEndian.Uint16(tcp[2:]),
		seq: binary.BigEndian.Uint32(tcp[4:]), ack: binary.BigEndian.Uint32(tcp[8:]), flags: tcp[13],
		payload: len(payload), start: string(payload[:min(len(payload), 12)]),
	}, true
}

// tcpdumpLo starts tcpdump (libpcap, the reference) on lo with filter
// into a file; stop ends it and returns the segments it wrote. Without
// tcpdump it returns nil.
func tcpdumpLo(t *testing.T, filter string) (stop func() []segment) {
	t.Helper()
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Logf("no tcpdump to compare with: %v", err)
		return nil
	}
	file := filepath.Join(t.TempDir(), "lo.pcap")
	var stderr syncBuffer
	// A snap length of 1 KiB (the segments are smaller): with immediate mode
	// libpcap takes a TPACKET_V2 frame of the snap length per packet, and at
	// -s 0 the ring holds 31 of them.
	cmd := exec.Command(bin, "-i", "lo", "-n", "-s", "1024", "-B", "8192", "--immediate-mode", "-U", "-Z", "root", "-w", file, filter)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitFor(t, "tcpdump listening", func() bool {
		select {
		case <-done:
			t.Fatalf("tcpdump exited: %s", stderr.String())
		default:
		}
		return strings.Contains(stderr.String(), "listening on")
	})
	return func() []segment {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("tcpdump did not stop")
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("tcpdump's file: %v (%s)", err, stderr.String())
		}
		var out []segment
		for {
			data, _, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("tcpdump's file: %v", err)
			}
			if s, ok := tcpSegment(data); ok {
				out = append(out, s)
			}
		}
		t.Logf("tcpdump: %s", strings.TrimSpace(stderr.String()))
		return out
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestLoopbackOnce: HTTP over keep-alive connections between a Go client
// and a Go server on 127.0.0.71, captured on lo with the kernel leaving
// the sent copies out (PACKET_IGNORE_OUTGOING), with its fallbacks forced
// (the packet type test before the filter; user-space dedup), with and
// without a kernel filter, and with a second ring open beside lo's: every
// segment is delivered exactly once, the requests and answers are all
// there, and the segments are those tcpdump (libpcap) wrote, no more, no
// fewer.
func TestLoopbackOnce(t *testing.T) {
	root(t)
	var other string // an interface beside lo, for a second ring
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0 {
				if _, _, err := linkType(i.Name); err == nil {
					other = i.Name
					break
				}
			}
		}
	}
	for _, mode := range []Outgoing{IgnoreOutgoing, FilterOutgoing, DedupOutgoing} {
		for _, filtered := range []bool{true, false} {
			name := fmt.Sprintf("%s/filter=%v", strings.ReplaceAll(mode.String(), " ", "-"), filtered)
			t.Run(name, func(t *testing.T) { loopbackOnce(t, mode, filtered, nil) })
		}
	}
	if other == "" {
		t.Log("no interface beside lo is up: the two-ring case is not tested")
		return
	}
	for _, mode := range []Outgoing{IgnoreOutgoing, DedupOutgoing} {
		t.Run(strings.ReplaceAll(mode.String(), " ", "-")+"/with-"+other, func(t *testing.T) {
			loopbackOnce(t, mode, true, []string{other})
		})
	}
}

func loopbackOnce(t *testing.T, mode Outgoing, filtered bool, more []string) {
	const (
		conns    = 4
		requests = 200
		body     = "small body from the Go server\n"
	)
	l, err := net.Listen("tcp4", "127.0.0.71:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(l)
	defer srv.Close()

	var logs syncBuffer
	o := Options{Interfaces: append([]string{"lo"}, more...), loopback: mode,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	filter := fmt.Sprintf("tcp port %d", port)
	if filtered {
		o.Filter = filter
	}
	src, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	h := src.handles["lo"]
	if socketFD(h.tp) < 0 {
		t.Error("gopacket's afpacket.TPacket has no int field fd: PACKET_IGNORE_OUTGOING cannot be set")
	}
	switch {
	case h.outgoing == mode:
	case mode == IgnoreOutgoing && h.outgoing > mode && strings.Contains(logs.String(), "refused"):
		// An old kernel: the fallback is tested by the other cases.
		t.Logf("the kernel refused PACKET_IGNORE_OUTGOING: %s", logs.String())
	default:
		t.Fatalf("loopback's sent copies: %v, want %v; log: %s", h.outgoing, mode, logs.String())
	}
	if mode != IgnoreOutgoing && !strings.Contains(logs.String(), "refused") {
		t.Errorf("the fallback to %v was not logged as a refusal: %q", mode, logs.String())
	}
	for _, st := range src.Stats() {
		if st.Name == "lo" && st.Outgoing != h.outgoing {
			t.Errorf("Stats: lo's Outgoing %v, want %v", st.Outgoing, h.outgoing)
		}
	}
	if want := int32(len(more)); src.shared.Load() != want {
		t.Errorf("rings that may share packets: %d, want %d (lo's packets are nobody else's)", src.shared.Load(), want)
	}

	stopTcpdump := tcpdumpLo(t, filter)

	var mu sync.Mutex
	var got []segment
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- src.Run(ctx, func(p *capture.Packet, iface string) error {
			s, ok := tcpSegment(p.Data)
			if !ok || s.srcPort != port && s.dstPort != port {
				return nil // lo's other traffic, unfiltered
			}
			if iface != "lo" {
				return fmt.Errorf("a segment of the test's traffic on %s: %v", iface, s)
			}
			mu.Lock()
			got = append(got, s)
			mu.Unlock()
			return nil
		})
	}()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}}
	url := fmt.Sprintf("http://127.0.0.71:%d/", port)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for range conns {
		wg.Go(func() {
			for range requests / conns {
				resp, err := client.Get(url)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != body {
					errs <- fmt.Errorf("answer %q, %v", b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	client.CloseIdleConnections()
	srv.Close()

	// Wait until the capture has been quiet for half a second (its
	// blocks retire after 10 ms).
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	last, quiet := -1, time.Now()
	waitFor(t, "the capture to settle", func() bool {
		if n := count(); n != last {
			last, quiet = n, time.Now()
		}
		return time.Since(quiet) > 500*time.Millisecond
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()

	// Each segment once; every request and answer.
	seen := map[segment]int{}
	var syn, synAck, fin, reqs, answers int
	for _, s := range got {
		seen[s]++
		switch {
		case s.flags&0x12 == 0x12:
			synAck++
		case s.flags&0x02 != 0:
			syn++
		}
		if s.flags&0x01 != 0 {
			fin++
		}
		if strings.HasPrefix(s.start, "GET / HTTP/1") {
			reqs++
		}
		if strings.HasPrefix(s.start, "HTTP/1.1 200") {
			answers++
		}
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("delivered %d times: %v", n, s)
		}
	}
	if syn != conns || synAck != conns || reqs != requests || answers != requests || fin < conns {
		t.Errorf("%d segments: %d SYN, %d SYN-ACK, %d requests, %d answers, %d FIN; want %d, %d, %d, %d, at least %d",
			len(got), syn, synAck, reqs, answers, fin, conns, conns, requests, requests, conns)
	}
	dups := src.Duplicates()
	switch {
	case h.outgoing == DedupOutgoing && filtered && dups != uint64(len(got)):
		t.Errorf("user-space dedup dropped %d packets, want one copy of each of the %d", dups, len(got))
	case h.outgoing == DedupOutgoing && dups < uint64(len(got)):
		t.Errorf("user-space dedup dropped %d packets, want at least one copy of each of the %d", dups, len(got))
	case h.outgoing != DedupOutgoing && dups != 0:
		t.Errorf("%d packets dropped as duplicates with the kernel leaving the sent copies out", dups)
	}
	for _, st := range src.Stats() {
		if st.Drops != 0 {
			t.Errorf("%s: the kernel dropped %d packets", st.Name, st.Drops)
		}
	}
	t.Logf("%d segments (%d SYN, %d requests, %d answers, %d FIN), %d duplicates dropped in user space; %v",
		len(got), syn, reqs, answers, fin, dups, src.Stats())

	if stopTcpdump == nil {
		return
	}
	want := stopTcpdump()
	key := func(a, b segment) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(want, key)
	slices.SortFunc(got, key)
	if !slices.Equal(got, want) {
		var missing, extra []segment
		for _, s := range want {
			if _, ok := slices.BinarySearchFunc(got, s, key); !ok {
				missing = append(missing, s)
			}
		}
		for _, s := range got {
			if _, ok := slices.BinarySearchFunc(want, s, key); !ok {
				extra = append(extra, s)
			}
		}
		t.Errorf("%d segments, tcpdump wrote %d: %d missing (first: %v), %d extra (first: %v)",
			len(got), len(want), len(missing), missing[:min(len(missing), 3)], len(extra), extra[:min(len(extra), 3)])
	}
}

// TestRingClosedWhenInterfaceGoes: a ring whose interface is deleted
// while its goroutine waits for packets (idle: parked in the network
// poller) is closed and left out, and the capture goes on on the others.
func TestRingClosedWhenInterfaceGoes(t *testing.T) {
	root(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command to make a veth pair")
	}
	name := fmt.Sprintf("wsl%da", os.Getpid()%100000)
	peer := name[:len(name)-1] + "b"
	exec.Command("ip", "link", "del", name).Run() // a killed run's leftover
	run(t, "ip", "link", "add", name, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	run(t, "ip", "link", "set", name, "up")
	run(t, "ip", "link", "set", peer, "up")

	src, _ := capturing(t, Options{Interfaces: []string{"lo", name}})
	src.mu.Lock()
	for n, h := range src.handles {
		if h.ready == nil {
			t.Errorf("%s: an idle ring is not waited for in the network poller", n)
		}
	}
	src.mu.Unlock()
	time.Sleep(300 * time.Millisecond) // both goroutines waiting (the veth's parked in the poller)
	run(t, "ip", "link", "del", name)
	waitFor(t, name+" left out", func() bool { return slices.Equal(src.Interfaces(), []string{"lo"}) })
}
