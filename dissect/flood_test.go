package dissect_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
)

// floodRSSBound is the peak resident set `wirescope dissect` may reach on
// an out-of-order flood, whatever its size.
const floodRSSBound = 256 << 20

// floodGap and floodSeg are the bytes each flood connection skips (the
// capture never holds them) and then sends after the gap.
const (
	floodGap = 3000
	floodSeg = 1000
)

// floodReq is the request each flood connection sends in order before its
// gap, so that every connection has an HTTP parser when its data stalls.
const floodReq = "GET /a HTTP/1.1\r\nHost: flood\r\n\r\n"

// writeFlood writes a capture of n connections to path: each opens, sends
// a request, then a second request after a gap that never fills, so that
// reassembly would buffer it until the capture ends. Timestamps advance
// 100 ns a packet, so that the whole capture lasts less than the reorder
// wait and the idle timeouts: only the memory bounds release anything. It
// returns the payload bytes the capture holds.
func writeFlood(t *testing.T, path string, n int) (payload uint64) {
	t.Helper()
	seg := []byte("GET /b HTTP/1.1\r\nHost: flood\r\nX-Pad: ")
	seg = append(seg, bytes.Repeat([]byte{'p'}, floodSeg-len(seg)-4)...)
	seg = append(seg, "\r\n\r\n"...)
	writeConns(t, path, n, "10.0.0.80:80", func(c *synth.Conn) {
		c.Send(true, []byte(floodReq))
		c.Skip(true, floodGap)
		c.Send(true, seg)
		payload += uint64(len(floodReq) + len(seg))
	})
	return payload
}

// writeConns writes a capture of n TCP connections to server from
// 10.16.0.0/12 clients, one after another, to path: each is opened, then
// send writes what it carries. Timestamps advance 100 ns a packet.
func writeConns(t *testing.T, path string, n int, server string, send func(c *synth.Conn)) {
	t.Helper()
	f, err := synth.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 21, 16, 0, 0, 0, time.UTC)
	emit := func(p capture.Packet) {
		p.Timestamp = at
		at = at.Add(100 * time.Nanosecond)
		f.Emit(p)
	}
	for i := range n {
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(16 + i>>16), byte(i >> 8), byte(i)}), 40000)
		c := synth.NewConn(client.String(), server, at, emit)
		c.Handshake()
		send(c)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOutOfOrderFlood runs the real `wirescope dissect --flows` on captures
// of 60,000 and 200,000 connections whose data stalls behind a gap, and
// checks its peak resident set and what the summary counts: every gap is
// missing from the capture, and no payload the capture holds is dropped
// (flows ended early to bound memory hand over what they buffered first,
// and no packet arrives for them afterwards).
func TestOutOfOrderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("writes captures of 60,000 and 200,000 connections")
	}
	dir := t.TempDir()
	bin := buildWirescope(t, dir)
	for _, n := range []int{60000, 200000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("flood-%d.pcap", n))
			began := time.Now()
			payload := writeFlood(t, path, n)
			t.Logf("wrote %d connections, %d payload bytes in %v", n, payload, time.Since(began).Round(time.Millisecond))
			defer os.Remove(path)

			summary := floodCheck(t, bin, path, "--flows")
			m := regexp.MustCompile(`tcp: \d+ retransmissions, (\d+) bytes missing from the capture, (\d+) bytes skipped for memory bounds`).FindStringSubmatch(summary)
			if m == nil {
				t.Fatalf("no tcp line in the summary")
			}
			missing, _ := strconv.ParseUint(m[1], 10, 64)
			skipped, _ := strconv.ParseUint(m[2], 10, 64)
			if want := uint64(n) * floodGap; missing != want {
				t.Errorf("%d bytes missing, want %d (%d gaps of %d)", missing, want, n, floodGap)
			}
			if skipped != 0 {
				t.Errorf("%d bytes skipped for memory bounds, want 0: every payload byte reaches a parser", skipped)
			}
			if want := fmt.Sprintf("calls: http %d\n", 2*n); !strings.Contains(summary, want) {
				t.Errorf("summary lacks %q: every request is reported", strings.TrimSpace(want))
			}
		})
	}
}

// buildWirescope builds the wirescope binary (without -race) into dir.
func buildWirescope(t *testing.T, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds wirescope for this test: %v", err)
	}
	bin := filepath.Join(dir, "wirescope")
	build := exec.Command(gobin, "build", "-o", bin, "github.com/wirescope/wirescope/cmd/wirescope")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build wirescope: %v\n%s", err, out)
	}
	return bin
}

// floodCheck runs `bin dissect flag path` (see floodRun), logs how long it
// took and its peak resident set, fails the test if that reached
// floodRSSBound, and returns the summary.
func floodCheck(t *testing.T, bin, path, flag string) (summary string) {
	t.Helper()
	began := time.Now()
	rss, summary := floodRun(t, bin, path, flag)
	t.Logf("dissect took %v, peak RSS %.1f MiB\n%s", time.Since(began).Round(time.Millisecond), float64(rss)/(1<<20), summary)
	if rss >= floodRSSBound {
		t.Errorf("peak RSS %d bytes, bound %d", rss, floodRSSBound)
	}
	return summary
}

// floodRun runs `bin dissect flag path`, its output discarded, and
// returns its peak resident set and its summary. It runs it through
// TestFloodLauncher in a fresh process of this test binary: the kernel
// starts a process's peak resident set from that of the process it was
// forked from (os/exec uses vfork), so the launcher, small, must be the
// parent rather than this test, which may have grown large.
func floodRun(t *testing.T, bin, path, flag string) (rss uint64, summary string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodLauncher$", "-test.v")
	cmd.Env = append(os.Environ(), "WIRESCOPE_FLOOD_LAUNCH="+bin, "WIRESCOPE_FLOOD_PCAP="+path, "WIRESCOPE_FLOOD_FLAG="+flag)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("launcher: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^maxrss_kib (\d+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("launcher gave no maxrss:\n%s", out)
	}
	kib, _ := strconv.ParseUint(string(m[1]), 10, 64)
	return kib << 10, string(out)
}

// TestFloodLauncher is not a test: when TestOutOfOrderFlood starts this
// binary with WIRESCOPE_FLOOD_LAUNCH set, it runs wirescope dissect and
// prints the child's peak resident set.
func TestFloodLauncher(t *testing.T) {
	bin, path := os.Getenv("WIRESCOPE_FLOOD_LAUNCH"), os.Getenv("WIRESCOPE_FLOOD_PCAP")
	if bin == "" {
		return
	}
	cmd := exec.Command(bin, "dissect", os.Getenv("WIRESCOPE_FLOOD_FLAG"), path)
	cmd.Stderr = os.Stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("wirescope dissect: %v", err)
	}
	fmt.Printf("maxrss_kib %d\n", cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss)
}

// TestParallelBoundsAreTotal opens 400 connections that never close with
// MaxFlows 40 over 4 shards: the bound holds for the whole, so at least 360
// are ended early (with 40 per shard, as it once was, about 240 were).
func TestParallelBoundsAreTotal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scan.pcap")
	f, err := synth.CreatePCAP(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 400 {
		c := synth.NewConn(fmt.Sprintf("10.5.%d.%d:%d", i/200, i%200, 30000+i), "10.0.0.9:8080", start.Add(time.Duration(i)*time.Millisecond), f.Emit)
		c.Handshake()
		c.Send(true, []byte(floodReq))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	opts := dissect.Options{MaxFlows: 40, OnCall: func(*dissect.Call) { calls++ }}
	st, _, err := dissect.NewParallel(opts, 4).Run(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Evicted < 360 || st.Flows["tcp"] != 400 || calls != 400 {
		t.Errorf("evicted %d of %d flows (%d calls), want at least 360 of 400 (400 calls)", st.Evicted, st.Flows["tcp"], calls)
	}
}
