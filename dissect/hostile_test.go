package dissect_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
)

// Hostile inputs stream far more data than the engine may keep through
// dissect.New(dissect.Options{}) one packet at a time, holding nothing, and
// check that the engine reports the damage and stays within its bounds.

// hostileHeapBound bounds the live heap ("/gc/heap/live:bytes": what each
// garbage collection found reachable) while a hostile stream goes through
// the engine. The live heap, not the heap with garbage not yet swept, is
// what the engine keeps: the frames synth allocates per packet are garbage,
// and how far the collector lets it pile up depends on the machine's load
// (peaks above 100 MiB were seen on a loaded 2-core machine), not on the
// engine. What the engine may keep for one connection is fixed by its
// default limits: a 64 KiB header block (MaxHeaderBytes), 64 KiB of body
// (MaxBodyCapture), 16 KiB held before detection (MaxHeld), at most 8,192
// pages × 1,900 B ≈ 16 MiB of out-of-order data (MaxPagesTotal; these
// streams are in order, so none), and a fixed 16,384-entry context ring
// (about 1 MiB). That is under 20 MiB even with every buffer full; 32 MiB
// leaves room for the test binary, yet any state that grows with the stream
// crosses it: the streams are 64 MB to 1 GB.
const hostileHeapBound = 32 << 20

// hostileSampleEvery is how many packets go by between heap samples.
const hostileSampleEvery = 10000

// hostileRun streams synthetic packets into an engine with default options
// and samples the heap as they go.
type hostileRun struct {
	e       *dissect.Engine
	calls   []*dissect.Call
	packets int
	peak    uint64
	sample  []metrics.Sample
	began   time.Time
}

func newHostileRun(t *testing.T) *hostileRun {
	// The bound assumes the default collector pacing, whatever GOGC the
	// environment sets.
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	runtime.GC()
	r := &hostileRun{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}, began: time.Now()}
	r.e = dissect.New(dissect.Options{OnCall: func(c *dissect.Call) { r.calls = append(r.calls, c) }})
	r.measure()
	return r
}

// emit is the synth callback: it hands each packet to the engine at once.
func (r *hostileRun) emit(p capture.Packet) {
	r.e.Packet(&p)
	r.packets++
	if r.packets%hostileSampleEvery == 0 {
		r.measure()
	}
}

func (r *hostileRun) measure() {
	metrics.Read(r.sample)
	if v := r.sample[0].Value; v.Kind() == metrics.KindUint64 && v.Uint64() > r.peak {
		r.peak = v.Uint64()
	}
}

func (r *hostileRun) conn(client, server string) *synth.Conn {
	return synth.NewConn(client, server, time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC), r.emit)
}

// finish ends the capture, checks the heap bound and logs the cost.
func (r *hostileRun) finish(t *testing.T) dissect.Stats {
	t.Helper()
	r.measure()
	st := r.e.Finish()
	r.measure()
	t.Logf("%d packets, %d bytes in %v; peak live heap %.1f MiB", st.Packets, st.Bytes,
		time.Since(r.began).Round(time.Millisecond), float64(r.peak)/(1<<20))
	if r.peak > hostileHeapBound {
		t.Errorf("peak live heap %d bytes, bound %d", r.peak, hostileHeapBound)
	}
	return st
}

// only returns the single call the run produced.
func (r *hostileRun) only(t *testing.T) *dissect.Call {
	t.Helper()
	if len(r.calls) != 1 {
		for _, c := range r.calls {
			t.Logf("call: %s %.40q -> %q %q", c.Method, c.Path, c.Status, c.Error)
		}
		t.Fatalf("%d calls, want 1", len(r.calls))
	}
	return r.calls[0]
}

// hostileSend sends block from one side n times.
func hostileSend(c *synth.Conn, fromClient bool, block []byte, n int) {
	for range n {
		c.Send(fromClient, block)
	}
}

// TestHostileContentLength: a request announces a 10 GB body, sends 64 MB
// of it and the connection closes. The call is cut short, not waited for.
func TestHostileContentLength(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MB")
	}
	r := newHostileRun(t)
	c := r.conn("10.1.0.2:40001", "10.1.0.9:8080")
	c.Handshake()
	c.Send(true, []byte("POST /upload HTTP/1.1\r\nHost: files\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000000\r\n\r\n"))
	const sent = 64 << 20
	hostileSend(c, true, bytes.Repeat([]byte{0xa5}, 1<<20), sent>>20)
	c.Close()
	st := r.finish(t)

	call := r.only(t)
	if call.Method != "POST" || call.Path != "/upload" || call.Status != "" {
		t.Errorf("call %s %s status %q, want POST /upload with no response", call.Method, call.Path, call.Status)
	}
	if want := "truncated: connection fin during the request message"; call.Error != want {
		t.Errorf("error %q, want %q", call.Error, want)
	}
	if call.Request.BodySize != sent || !call.Request.BodyTruncated || len(call.Request.Body) > hostileBase64Len(proto.DefaultLimits.MaxBodyDisplay) {
		t.Errorf("request body size %d (truncated %v, %d display bytes), want %d counted and the display cut",
			call.Request.BodySize, call.Request.BodyTruncated, len(call.Request.Body), sent)
	}
	if st.Truncated != 1 || st.Calls["http"] != 1 || st.Unanswered != 0 {
		t.Errorf("stats truncated %d calls %v unanswered %d, want one truncated http call", st.Truncated, st.Calls, st.Unanswered)
	}
}

// TestHostileEndlessChunks: a chunked response that never ends (200 MB of
// 4 KiB chunks, then the capture stops) is reported with its status and
// marked truncated.
func TestHostileEndlessChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 200 MB")
	}
	r := newHostileRun(t)
	c := r.conn("10.1.0.2:40002", "10.1.0.9:8080")
	c.Handshake()
	c.Send(true, []byte("GET /events HTTP/1.1\r\nHost: feed\r\nAccept: text/event-stream\r\n\r\n"))
	c.Send(false, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"))
	chunk := append([]byte("1000\r\n"), bytes.Repeat([]byte("data: tick\n"), 4096/11+1)[:4096]...)
	chunk = append(chunk, "\r\n"...)
	block := bytes.Repeat(chunk, 64) // 64 chunks, 256 KiB of data, cut across segments
	const chunks = 200 << 20 >> 12
	hostileSend(c, false, block, chunks/64)
	st := r.finish(t) // no FIN: the capture ends mid-stream

	call := r.only(t)
	if call.Method != "GET" || call.Path != "/events" || call.Status != "200" {
		t.Errorf("call %s %s status %q, want GET /events 200", call.Method, call.Path, call.Status)
	}
	if want := "truncated: connection capture-end during the response message"; call.Error != want {
		t.Errorf("error %q, want %q", call.Error, want)
	}
	if call.Response.BodySize != chunks<<12 {
		t.Errorf("response body size %d, want %d", call.Response.BodySize, chunks<<12)
	}
	if st.Truncated != 1 || st.Calls["http"] != 1 {
		t.Errorf("stats truncated %d calls %v, want one truncated http call", st.Truncated, st.Calls)
	}
}

// TestHostileDNSCompressionLoop: a response to a valid query whose answer
// name is a compression pointer to itself. gopacket's decoder stops at its
// recursion limit; the call keeps the query's name and type and says
// "malformed". Over UDP and over TCP.
func TestHostileDNSCompressionLoop(t *testing.T) {
	query, loop := hostileDNSLoop(t, 0x5eed)
	t.Run("udp", func(t *testing.T) {
		r := newHostileRun(t)
		t0 := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
		r.emit(synth.Datagram(t0, "10.1.0.2:40003", "10.1.0.53:53", query))
		r.emit(synth.Datagram(t0.Add(time.Millisecond), "10.1.0.53:53", "10.1.0.2:40003", loop))
		hostileCheckLoop(t, r, r.finish(t))
	})
	t.Run("tcp", func(t *testing.T) {
		r := newHostileRun(t)
		c := r.conn("10.1.0.2:40004", "10.1.0.53:53")
		c.Handshake()
		c.Send(true, binary.BigEndian.AppendUint16(nil, uint16(len(query))))
		c.Send(true, query)
		c.Send(false, append(binary.BigEndian.AppendUint16(nil, uint16(len(loop))), loop...))
		c.Close()
		hostileCheckLoop(t, r, r.finish(t))
	})
}

func hostileCheckLoop(t *testing.T, r *hostileRun, st dissect.Stats) {
	t.Helper()
	call := r.only(t)
	if call.Proto != "dns" || call.Method != "A" || call.Path != "loop.example.com" || call.Status != "" {
		t.Errorf("call %s %s %s status %q, want dns A loop.example.com without a status", call.Proto, call.Method, call.Path, call.Status)
	}
	if !strings.HasPrefix(call.Error, "malformed") {
		t.Errorf("error %q, want malformed", call.Error)
	}
	if st.Malformed != 1 || st.Calls["dns"] != 1 {
		t.Errorf("stats malformed %d calls %v, want one malformed dns call", st.Malformed, st.Calls)
	}
}

// hostileDNSLoop returns a query for loop.example.com and a response with
// the same ID whose one answer is named by a pointer to itself.
func hostileDNSLoop(t *testing.T, id uint16) (query, response []byte) {
	q := &layers.DNS{ID: id, RD: true, Questions: []layers.DNSQuestion{{Name: []byte("loop.example.com"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := q.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	query = append([]byte(nil), buf.Bytes()...)
	response = append([]byte(nil), query...)
	binary.BigEndian.PutUint16(response[2:], 0x8180) // QR, RD, RA, NOERROR
	binary.BigEndian.PutUint16(response[6:], 1)      // one answer
	at := len(response)
	response = append(response, 0xc0|byte(at>>8), byte(at)) // the answer's name: a pointer to itself
	response = append(response, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1)
	return query, response
}

// TestHostileHeaderLine: "GET /" followed by 1 GB without a line end. The
// header block is cut at MaxHeaderBytes and the rest skipped, without
// buffering it; the request is reported as truncated.
func TestHostileHeaderLine(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GB")
	}
	r := newHostileRun(t)
	c := r.conn("10.1.0.2:40005", "10.1.0.9:80")
	c.Handshake()
	c.Send(true, []byte("GET /"))
	const line = 1 << 30
	hostileSend(c, true, bytes.Repeat([]byte{'A'}, 1<<20), line>>20)
	c.Send(true, []byte("\r\n\r\n"))
	c.Close()
	st := r.finish(t)

	call := r.only(t)
	if call.Method != "GET" || !strings.HasPrefix(call.Path, "/AAAA") || call.Status != "" {
		t.Errorf("call %s %.20q status %q, want GET /AAAA… with no response", call.Method, call.Path, call.Status)
	}
	limit := proto.DefaultLimits.MaxHeaderBytes
	if want := "truncated: header block larger than " + strconv.Itoa(limit) + " bytes"; call.Error != want {
		t.Errorf("error %q, want %q", call.Error, want)
	}
	if least := uint64(line - limit); st.SkippedBytes < least {
		t.Errorf("skipped %d bytes, want at least %d (the line past the header limit)", st.SkippedBytes, least)
	}
	if st.Truncated != 1 || st.Calls["http"] != 1 {
		t.Errorf("stats truncated %d calls %v, want one truncated http call", st.Truncated, st.Calls)
	}
}

// hostileBase64Len is the length of n bytes in standard base64, the most a
// display body of n bytes takes.
func hostileBase64Len(n int) int { return (n + 2) / 3 * 4 }

// TestHostileHeldFlood: 3,000 connections each send 15 KiB that no
// detector recognises and stay open. Each may hold up to MaxHeld (16 KiB)
// per side for detection, but not all of them at once: held bytes are
// bounded in total (MaxHeldTotal), so 45 MB of them never sit in memory.
func TestHostileHeldFlood(t *testing.T) {
	r := newHostileRun(t)
	junk := bytes.Repeat([]byte{'z'}, 15<<10)
	at := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC)
	for i := range 3000 {
		c := synth.NewConn(fmt.Sprintf("10.6.%d.%d:40000", i/250, i%250+1), "10.1.0.9:7000", at, r.emit)
		c.Handshake()
		c.Send(true, junk)
		at = c.T
	}
	st := r.finish(t)
	if st.Flows["tcp"] != 3000 || st.FlowsByProto[""] != 3000 || len(r.calls) != 0 {
		t.Errorf("flows %v by proto %v, %d calls; want 3000 undissected tcp flows and no call", st.Flows, st.FlowsByProto, len(r.calls))
	}
}
