package dissect_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	synth "github.com/wirescope/wirescope/capture/capturetest"
)

// headerFloodPad is how many bytes of one header field each connection of
// the header flood sends, never ending its header block: just under the
// 64 KiB a parser may buffer for one header block.
const headerFloodPad = 60000

// writeHeaderFlood writes a capture of n connections to path, each sending
// in order a request whose header block never ends. It returns the payload
// bytes each connection sends.
func writeHeaderFlood(t *testing.T, path string, n int) (perConn int) {
	t.Helper()
	req := append([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "), bytes.Repeat([]byte{'p'}, headerFloodPad)...)
	writeConns(t, path, n, "10.0.0.1:80", func(c *synth.Conn) { c.Send(true, req) })
	return len(req)
}

// TestHeaderFlood runs the real `wirescope dissect -q` on a capture of
// 10,000 connections that each send 60 KB of a header block and never end
// it, in order, so that every HTTP parser buffers its block until its
// connection ends. The bytes parsers buffer are bounded in total: the peak
// resident set stays under floodRSSBound, and the summary says exactly what
// was dropped: each connection ended early to bound memory skips the whole
// request it sent, and every connection still yields its call.
func TestHeaderFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a capture of 600 MB")
	}
	const n = 10000
	dir := t.TempDir()
	bin := buildWirescope(t, dir)
	path := filepath.Join(dir, "headers.pcap")
	began := time.Now()
	perConn := writeHeaderFlood(t, path, n)
	t.Logf("wrote %d connections of %d payload bytes in %v", n, perConn, time.Since(began).Round(time.Millisecond))
	defer os.Remove(path)

	summary := floodCheck(t, bin, path, "-q")
	if want := fmt.Sprintf("calls: http %d\n", n); !strings.Contains(summary, want) {
		t.Errorf("summary lacks %q: every request is reported", strings.TrimSpace(want))
	}
	m := regexp.MustCompile(`tcp: \d+ retransmissions, (\d+) bytes missing from the capture, (\d+) bytes skipped for memory bounds`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("no tcp line in the summary")
	}
	missing, _ := strconv.ParseUint(m[1], 10, 64)
	skipped, _ := strconv.ParseUint(m[2], 10, 64)
	if missing != 0 {
		t.Errorf("%d bytes missing, want 0: the capture holds every byte", missing)
	}
	sm := regexp.MustCompile(`flows ended early to bound what parsers buffer: (\d+)`).FindStringSubmatch(summary)
	if sm == nil {
		t.Fatalf("the summary does not count flows ended early to bound what parsers buffer")
	}
	shed, _ := strconv.ParseUint(sm[1], 10, 64)
	if shed == 0 || shed >= n {
		t.Errorf("%d flows ended early, want some but not all of %d", shed, n)
	}
	if want := shed * uint64(perConn); skipped != want {
		t.Errorf("%d bytes skipped for memory bounds, want %d (%d flows ended early, %d bytes each)", skipped, want, shed, perConn)
	}
	tr := regexp.MustCompile(`truncated: (\d+)`).FindStringSubmatch(summary)
	if tr == nil || tr[1] != strconv.Itoa(n) {
		t.Errorf("truncated calls %v, want %d: every header block is cut, by the capture's end, an eviction or the memory bound", tr, n)
	}
}

// pipelineReq is the request the pipeline flood repeats; pipelineBurst of
// them go in one segment, so that no segment ends inside a request.
const (
	pipelineReq   = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	pipelineBurst = 50
)

// writePipelineFlood writes a capture of n connections to path, each
// pipelining bursts×pipelineBurst requests that are never answered, so that
// every HTTP parser keeps them all waiting for their responses.
func writePipelineFlood(t *testing.T, path string, n, bursts int) {
	t.Helper()
	burst := []byte(strings.Repeat(pipelineReq, pipelineBurst))
	writeConns(t, path, n, "10.0.0.1:80", func(c *synth.Conn) {
		for range bursts {
			c.Send(true, burst)
		}
	})
}

// TestPipelineFlood runs the real `wirescope dissect -q` on a capture of
// 4,000 connections that each pipeline 1,000 small requests and get no
// response: each parser may keep up to Limits.MaxPending requests waiting,
// and what they keep is bounded in total. The summary says exactly what was
// dropped: every request is either reported or skipped whole, and those of
// connections ended early are reported truncated.
func TestPipelineFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a capture of 4,000,000 requests")
	}
	const n, bursts = 4000, 20
	dir := t.TempDir()
	bin := buildWirescope(t, dir)
	path := filepath.Join(dir, "pipeline.pcap")
	began := time.Now()
	writePipelineFlood(t, path, n, bursts)
	t.Logf("wrote %d connections of %d requests in %v", n, bursts*pipelineBurst, time.Since(began).Round(time.Millisecond))
	defer os.Remove(path)

	summary := floodCheck(t, bin, path, "-q")
	cm := regexp.MustCompile(`calls: http (\d+)\n`).FindStringSubmatch(summary)
	m := regexp.MustCompile(`tcp: \d+ retransmissions, (\d+) bytes missing from the capture, (\d+) bytes skipped for memory bounds`).FindStringSubmatch(summary)
	if cm == nil || m == nil {
		t.Fatalf("no calls or tcp line in the summary")
	}
	calls, _ := strconv.ParseUint(cm[1], 10, 64)
	skipped, _ := strconv.ParseUint(m[2], 10, 64)
	sent := uint64(n * bursts * pipelineBurst)
	if want := (sent - min(calls, sent)) * uint64(len(pipelineReq)); skipped != want {
		t.Errorf("%d bytes skipped for memory bounds, want %d: %d requests sent, %d reported, the others skipped whole", skipped, want, sent, calls)
	}
	um := regexp.MustCompile(`unanswered: (\d+), without request: 0, truncated: (\d+), malformed: 0`).FindStringSubmatch(summary)
	if um == nil {
		t.Fatalf("no line of unanswered and truncated calls in the summary")
	}
	un, _ := strconv.ParseUint(um[1], 10, 64)
	tr, _ := strconv.ParseUint(um[2], 10, 64)
	if un+tr != calls || tr == 0 {
		t.Errorf("%d unanswered and %d truncated calls of %d, want them all, some cut for memory bounds", un, tr, calls)
	}
	sm := regexp.MustCompile(`flows ended early to bound what parsers buffer: (\d+)`).FindStringSubmatch(summary)
	if sm == nil {
		t.Fatalf("the summary does not count flows ended early to bound what parsers buffer")
	}
	// The connections that keep the most are those whose requests are all
	// in: each one ended early reports its requests as truncated.
	shed, _ := strconv.ParseUint(sm[1], 10, 64)
	if shed == 0 || tr != shed*bursts*pipelineBurst {
		t.Errorf("%d truncated calls, want %d: %d flows ended early, each with %d requests waiting", tr, shed*bursts*pipelineBurst, shed, bursts*pipelineBurst)
	}
}
