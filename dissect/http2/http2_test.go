package http2_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wirescope/wirescope/dissect/http2"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

var t0 = time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)

// wire writes a connection's frames with x/net's Framer and HPACK
// encoders, one per direction, as real peers do.
type wire struct {
	t      testing.TB
	buf    [2]bytes.Buffer // client, server
	fr     [2]*xhttp2.Framer
	hbuf   [2]bytes.Buffer
	enc    [2]*hpack.Encoder
	chunks []proto.Chunk
	now    time.Time
}

func newWire(t testing.TB, withPreface bool) *wire {
	w := &wire{t: t, now: t0}
	for i := range 2 {
		w.fr[i] = xhttp2.NewFramer(&w.buf[i], nil)
		w.enc[i] = hpack.NewEncoder(&w.hbuf[i])
	}
	if withPreface {
		w.buf[0].WriteString(xhttp2.ClientPreface)
	}
	return w
}

func idx(r proto.Role) int {
	if r == proto.Server {
		return 1
	}
	return 0
}

// block encodes header fields ("name", "value", …) with r's encoder.
func (w *wire) block(r proto.Role, kv ...string) []byte {
	i := idx(r)
	w.hbuf[i].Reset()
	for j := 0; j+1 < len(kv); j += 2 {
		if err := w.enc[i].WriteField(hpack.HeaderField{Name: kv[j], Value: kv[j+1]}); err != nil {
			w.t.Fatal(err)
		}
	}
	return bytes.Clone(w.hbuf[i].Bytes())
}

// flush turns what r wrote into a chunk, a millisecond after the last.
func (w *wire) flush(r proto.Role) {
	i := idx(r)
	if w.buf[i].Len() == 0 {
		return
	}
	w.now = w.now.Add(time.Millisecond)
	w.chunks = append(w.chunks, proto.Chunk{Role: r, Data: bytes.Clone(w.buf[i].Bytes()), T: w.now})
	w.buf[i].Reset()
}

func (w *wire) headers(r proto.Role, id uint32, end bool, kv ...string) {
	if err := w.fr[idx(r)].WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: w.block(r, kv...), EndStream: end, EndHeaders: true}); err != nil {
		w.t.Fatal(err)
	}
	w.flush(r)
}

func (w *wire) data(r proto.Role, id uint32, end bool, b []byte) {
	if err := w.fr[idx(r)].WriteData(id, end, b); err != nil {
		w.t.Fatal(err)
	}
	w.flush(r)
}

// feed gives the chunks to a new parser, each cut in pieces of at most
// step bytes (0: whole), and ends the connection.
func (w *wire) feed(step int, lim proto.Limits) *prototest.Recorder {
	rec := &prototest.Recorder{}
	p := http2.Protocol{}.NewStream(rec, &lim)
	for _, c := range w.chunks {
		d := c.Data
		for len(d) > 0 {
			n := len(d)
			if step > 0 {
				n = min(n, step)
			}
			p.Feed(c.Role, d[:n], c.T)
			d = d[n:]
		}
	}
	p.End(proto.EndFIN, w.now.Add(time.Second))
	return rec
}

func summary(calls []*proto.Call) []string {
	var out []string
	for _, c := range calls {
		s := fmt.Sprintf("%v %s %s %s", c.Extra.Get("stream_id"), c.Method, c.Path, c.Status)
		if c.Error != "" {
			s += " [" + c.Error + "]"
		}
		out = append(out, s)
	}
	return out
}

func get(path string) []string {
	return []string{":method", "GET", ":scheme", "http", ":authority", "shop", ":path", path, "user-agent", "test"}
}

// TestMultiplexed interleaves three streams, their DATA frames split and
// padded, a header block split into CONTINUATION frames, trailers, a
// reset stream and an interim response; every cut of the bytes gives the
// same calls.
func TestMultiplexed(t *testing.T) {
	w := newWire(t, true)
	w.fr[0].WriteSettings(xhttp2.Setting{ID: xhttp2.SettingHeaderTableSize, Val: 4096})
	w.flush(proto.Client)
	w.fr[1].WriteSettings(xhttp2.Setting{ID: xhttp2.SettingMaxFrameSize, Val: 1 << 15})
	w.flush(proto.Server)
	w.headers(proto.Client, 1, true, get("/api/orders/1")...)
	// Stream 3: a POST whose header block is split over CONTINUATIONs.
	blk := w.block(proto.Client, ":method", "POST", ":scheme", "http", ":authority", "shop", ":path", "/api/orders",
		"content-type", "application/json", "x-long", strings.Repeat("v", 300))
	w.fr[0].WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:10], PadLength: 7})
	w.fr[0].WriteContinuation(3, false, blk[10:100])
	w.fr[0].WriteContinuation(3, true, blk[100:])
	w.flush(proto.Client)
	w.headers(proto.Client, 5, true, get("/slow")...)
	w.fr[0].WriteDataPadded(3, false, []byte(`{"item":`), []byte{0, 0, 0})
	w.flush(proto.Client)
	w.headers(proto.Server, 1, false, ":status", "200", "content-type", "text/plain")
	w.fr[0].WriteDataPadded(3, true, []byte(`42}`), make([]byte, 20))
	w.flush(proto.Client)
	w.headers(proto.Server, 3, false, ":status", "100")
	w.data(proto.Server, 1, false, []byte("order 1, "))
	w.headers(proto.Server, 3, false, ":status", "201")
	w.data(proto.Server, 1, false, []byte("paid"))
	w.headers(proto.Server, 1, true, "x-checksum", "abc") // trailers
	w.data(proto.Server, 3, true, []byte(`{"id":2}`))
	w.fr[0].WriteRSTStream(5, xhttp2.ErrCodeCancel)
	w.flush(proto.Client)

	want := []string{
		"1 GET /api/orders/1 200",
		"3 POST /api/orders 201",
		"5 GET /slow  [no response: stream reset CANCEL]",
	}
	for _, step := range []int{0, 1, 2, 7, 9, 10, 100} {
		rec := w.feed(step, proto.Limits{})
		got := summary(rec.Calls)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d:\n%s\nwant:\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for i, c := range rec.Calls {
			prototest.CheckJSON(t, i, c)
			switch c.Path {
			case "/api/orders/1":
				if c.Response.Body != "order 1, paid" || c.Response.BodySize != 13 || fmt.Sprint(c.Extra.Get("response_trailers")) != "map[x-checksum:abc]" {
					t.Errorf("step %d: stream 1 body %q size %d trailers %v", step, c.Response.Body, c.Response.BodySize, c.Extra.Get("response_trailers"))
				}
				if c.LatencyNS <= 0 || c.Request.Headers.Get("user-agent") != "test" || c.Request.Headers.Get(":authority") != "shop" {
					t.Errorf("step %d: stream 1 latency %d headers %v", step, c.LatencyNS, c.Request.Headers)
				}
			case "/api/orders":
				if c.Request.Body != `{"item":42}` || c.Request.BodySize != 11 || c.Request.Headers.Get("x-long") != strings.Repeat("v", 300) {
					t.Errorf("step %d: stream 3 request body %q (%d), x-long %d bytes", step, c.Request.Body, c.Request.BodySize, len(c.Request.Headers.Get("x-long")))
				}
				if fmt.Sprint(c.Extra.Get("interim")) != "[100]" || c.Response.Body != `{"id":2}` {
					t.Errorf("step %d: stream 3 interim %v body %q", step, c.Extra.Get("interim"), c.Response.Body)
				}
			case "/slow":
				if c.Extra.Get("reset") != "CANCEL" || c.Extra.Get("reset_by") != "client" || c.Outcome() != proto.NoResponse {
					t.Errorf("step %d: reset stream: %v by %v, outcome %v", step, c.Extra.Get("reset"), c.Extra.Get("reset_by"), c.Outcome())
				}
			}
		}
	}
}

// TestPushAndGoAway: a server push is a call of its own, for the promised
// stream; a GOAWAY refuses the streams above its last stream id; a gzip
// body is shown decoded.
func TestPushAndGoAway(t *testing.T) {
	w := newWire(t, true)
	w.headers(proto.Client, 1, true, get("/")...)
	w.headers(proto.Client, 3, true, get("/late")...)
	w.fr[1].WritePushPromise(xhttp2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: w.block(proto.Server, get("/style.css")...), EndHeaders: true})
	w.flush(proto.Server)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("<html>hello</html>"))
	zw.Close()
	w.headers(proto.Server, 1, false, ":status", "200", "content-encoding", "gzip")
	w.data(proto.Server, 1, true, gz.Bytes())
	w.headers(proto.Server, 2, false, ":status", "200", "content-type", "text/css")
	w.data(proto.Server, 2, true, []byte("body{}"))
	w.fr[1].WriteGoAway(1, xhttp2.ErrCodeNo, []byte("going away"))
	w.flush(proto.Server)
	rec := w.feed(0, proto.Limits{})
	got := summary(rec.Calls)
	want := []string{"1 GET / 200", "2 GET /style.css 200", "3 GET /late  [no response: refused by GOAWAY NO_ERROR (going away)]"}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range rec.Calls {
		switch c.Path {
		case "/":
			if c.Response.Body != "<html>hello</html>" || c.Response.BodySize != int64(gz.Len()) {
				t.Errorf("gzip body shown as %q (size %d of %d)", c.Response.Body, c.Response.BodySize, gz.Len())
			}
		case "/style.css":
			if c.Extra.Get("pushed") != true || c.Extra.Get("pushed_by") != int64(1) || c.Response.Body != "body{}" {
				t.Errorf("pushed stream: %v", c.Extra)
			}
		}
	}
}

// TestMidConnection starts after the preface and after requests that
// filled the client's dynamic table: a request that names those entries
// is decoded as far as it can be and says so; a later request that adds
// its own entries decodes whole again.
func TestMidConnection(t *testing.T) {
	w := newWire(t, true)
	w.headers(proto.Client, 1, true, append(get("/a"), "x-tenant", "blue")...)
	w.headers(proto.Server, 1, true, ":status", "204")
	skip := len(w.chunks)
	w.headers(proto.Client, 3, true, append(get("/b"), "x-tenant", "blue")...) // "x-tenant: blue" from the table
	w.headers(proto.Server, 3, true, ":status", "204")
	w.headers(proto.Client, 5, true, append(get("/c"), "x-new", "1")...)
	w.headers(proto.Server, 5, true, ":status", "404")
	late := &wire{t: t, chunks: w.chunks[skip:], now: w.now}
	rec := late.feed(0, proto.Limits{})
	got := summary(rec.Calls)
	want := []string{"3 GET /b 204", "5 GET /c 404"}
	if !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rec.Calls[0].Extra.Get("headers_incomplete") == nil || rec.Calls[0].Request.Headers.Get("x-tenant") != "" {
		t.Errorf("stream 3 names a table entry from before the capture: extra %v, headers %v", rec.Calls[0].Extra, rec.Calls[0].Request.Headers)
	}
	if v, ok := (http2.Protocol{}).DetectStream(late.chunks[0].Data, 40000, 8080); v != proto.Yes || ok != proto.Client {
		t.Errorf("frames without a preface: detected %v as %v, want yes as client", v, ok)
	}
	if v, r := (http2.Protocol{}).DetectStream(late.chunks[1].Data, 8080, 40000); v != proto.Yes || r != proto.Server {
		t.Errorf("the server's frames: detected %v as %v, want yes as server", v, r)
	}
}

// TestDetect: the preface and frames are HTTP/2; HTTP/1, TLS and text are
// not.
func TestDetect(t *testing.T) {
	for _, c := range []struct {
		in   string
		want proto.Verdict
	}{
		{xhttp2.ClientPreface, proto.Yes},
		{"PRI * HTTP/2", proto.Maybe},
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", proto.No},
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", proto.No},
		{"+OK\r\n", proto.No},
		{"\x00\x00\x00\x04\x00\x00\x00\x00\x00", proto.Yes},                                           // an empty SETTINGS
		{"\x00\x00\x05\x04\x00\x00\x00\x00\x00abcde", proto.No},                                       // SETTINGS not a multiple of 6
		{"\x00\x00\x08\x06\x00\x00\x00\x00\x01abcdefgh", proto.No},                                    // PING on a stream
		{"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00", proto.Yes},                                   // a frame, then 2 bytes of the next
		{"\x00\x00\x00\x04\x00\x00\x00\x00\x00\xff", proto.No},                                        // then a length no frame has yet
		{"\x00\x00\x00\x15\x00\x12\x00\x00\x00\x00\x00\x81\x00\x07rdkafka\x00\x00\x00\x00", proto.No}, // a Kafka ApiVersions request
		{"\x00\x00\x01\x5a\x00\x00\x00\x81\x00\x00\x00\x00\x00\x38", proto.No},                        // its response: DATA on stream 2^24
	} {
		if v, _ := (http2.Protocol{}).DetectStream([]byte(c.in), 40000, 80); v != c.want {
			t.Errorf("%q: %v, want %v", c.in, v, c.want)
		}
	}
}

// TestGaps: a gap inside a DATA frame keeps the frames in step (the body
// lost bytes: truncated); a gap of unknown size makes the parser look for
// frames again, and a later stream is read whole.
func TestGaps(t *testing.T) {
	w := newWire(t, true)
	w.headers(proto.Client, 1, true, get("/big")...)
	w.headers(proto.Server, 1, false, ":status", "200")
	w.data(proto.Server, 1, true, bytes.Repeat([]byte("x"), 1000))
	w.headers(proto.Client, 3, true, get("/next")...)
	w.headers(proto.Server, 3, true, ":status", "200")
	rec := &prototest.Recorder{}
	p := http2.Protocol{}.NewStream(rec, &proto.Limits{})
	for _, c := range w.chunks {
		if c.Role == proto.Server && len(c.Data) == 9+1000 {
			p.Feed(c.Role, c.Data[:100], c.T)
			p.Gap(c.Role, 500)
			p.Feed(c.Role, c.Data[600:], c.T)
			continue
		}
		p.Feed(c.Role, c.Data, c.T)
	}
	p.End(proto.EndFIN, w.now)
	got := summary(rec.Calls)
	want := []string{"1 GET /big 200 [truncated: bytes missing from the capture]", "3 GET /next 200"}
	if !slices.Equal(got, want) || rec.Calls[0].Response.BodySize != 1000 {
		t.Fatalf("known gap: %q (body %d)", got, rec.Calls[0].Response.BodySize)
	}

	rec = &prototest.Recorder{}
	p = http2.Protocol{}.NewStream(rec, &proto.Limits{})
	for i, c := range w.chunks {
		if c.Role == proto.Server && len(c.Data) == 9+1000 {
			p.Feed(c.Role, c.Data[:100], c.T)
			p.Gap(c.Role, -1)
			p.Feed(c.Role, c.Data[700:], c.T) // the rest of the frame: not a frame header
			continue
		}
		_ = i
		p.Feed(c.Role, c.Data, c.T)
	}
	p.End(proto.EndFIN, w.now)
	got = summary(rec.Calls)
	slices.Sort(got)
	if len(got) != 2 || got[1] != "3 GET /next 200" || !strings.HasPrefix(got[0], "1 GET /big 200 [truncated") || rec.SkippedBytes < 300 {
		t.Fatalf("unknown gap: %q, skipped %d", got, rec.SkippedBytes)
	}
}

// TestUpgraded: after `Upgrade: h2c`, stream 1 is the upgrade's request,
// answered on HTTP/2.
func TestUpgraded(t *testing.T) {
	w := newWire(t, true)
	w.fr[1].WriteSettings()
	w.flush(proto.Server)
	w.headers(proto.Server, 1, false, ":status", "200")
	w.data(proto.Server, 1, true, []byte("hi"))
	rec := &prototest.Recorder{}
	start := t0.Add(-time.Second)
	p := http2.Protocol{}.NewUpgraded(rec, &proto.Limits{}, proto.Extra{{Key: "target", Value: "/up"}, {Key: "method", Value: "GET"},
		{Key: "request_start", Value: start}, {Key: "request_end", Value: start}})
	for _, c := range w.chunks {
		p.Feed(c.Role, c.Data, c.T)
	}
	p.End(proto.EndFIN, w.now)
	if got := summary(rec.Calls); !slices.Equal(got, []string{"1 GET /up 200"}) || !rec.Calls[0].TS.Equal(start) || rec.Calls[0].Response.Body != "hi" {
		t.Fatalf("upgraded: %q at %v", got, rec.Calls)
	}
}

// TestHostile: what a hostile or broken peer sends is bounded and ends
// in calls that say what happened, not in memory or a panic.
func TestHostile(t *testing.T) {
	lim := proto.Limits{MaxPending: 64}
	t.Run("table size bomb", func(t *testing.T) {
		w := newWire(t, true)
		w.enc[0].SetMaxDynamicTableSizeLimit(1 << 30)
		w.enc[0].SetMaxDynamicTableSize(1 << 30) // a size update asking for 1 GiB
		w.headers(proto.Client, 1, true, get("/bomb")...)
		w.headers(proto.Server, 1, true, ":status", "200")
		rec := w.feed(0, lim)
		if len(rec.Calls) != 1 || rec.Calls[0].Extra.Get("headers_incomplete") == nil {
			t.Fatalf("calls %q: want one with its headers incomplete", summary(rec.Calls))
		}
	})
	t.Run("huge header list", func(t *testing.T) {
		w := newWire(t, true)
		kv := get("/many")
		for i := range 5000 {
			kv = append(kv, fmt.Sprintf("x-h%d", i), strings.Repeat("y", 100))
		}
		blk := w.block(proto.Client, kv...)
		w.fr[0].WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:16000], EndStream: true})
		for rest := blk[16000:]; len(rest) > 0; {
			n := min(len(rest), 16000)
			w.fr[0].WriteContinuation(1, n == len(rest), rest[:n])
			rest = rest[n:]
		}
		w.flush(proto.Client)
		w.headers(proto.Server, 1, true, ":status", "431")
		rec := w.feed(0, lim)
		c := rec.Calls[0]
		if len(rec.Calls) != 1 || c.Path != "/many" || c.Status != "431" || c.Extra.Get("headers_incomplete") == nil {
			t.Fatalf("calls %q extra %v", summary(rec.Calls), c.Extra)
		}
		size := 0
		for _, h := range c.Request.Headers {
			size += len(h.Name) + len(h.Value) + 32
		}
		if size > proto.DefaultLimits.MaxHeaderBytes {
			t.Errorf("kept %d bytes of headers, over the bound %d", size, proto.DefaultLimits.MaxHeaderBytes)
		}
	})
	t.Run("continuation flood", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := http2.Protocol{}.NewStream(rec, &lim)
		var b bytes.Buffer
		fr := xhttp2.NewFramer(&b, nil)
		b.WriteString(xhttp2.ClientPreface)
		fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}})
		p.Feed(proto.Client, b.Bytes(), t0)
		frag := bytes.Repeat([]byte{0x40, 0x01, 'a', 0x01, 'b'}, 3000) // literal fields, each indexed
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range 20000 { // 300 MB of CONTINUATION
			b.Reset()
			fr.WriteContinuation(1, false, frag)
			p.Feed(proto.Client, b.Bytes(), t0.Add(time.Duration(i)))
			if n := p.(proto.Buffering).Buffered(); n > 1<<20 {
				t.Fatalf("after %d frames the parser keeps %d bytes", i, n)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 32<<20 {
			t.Errorf("heap grew %d MB over the flood", grown>>20)
		}
		p.End(proto.EndFIN, t0)
	})
	t.Run("a million streams", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := http2.Protocol{}.NewStream(rec, &lim)
		var b bytes.Buffer
		fr := xhttp2.NewFramer(&b, nil)
		b.WriteString(xhttp2.ClientPreface)
		blk := []byte{0x82, 0x84, 0x86} // :method GET, :path /, :scheme http: static entries
		peak := 0
		for i := range 1_000_000 {
			fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: blk, EndHeaders: true})
			if b.Len() > 32<<10 {
				p.Feed(proto.Client, b.Bytes(), t0.Add(time.Duration(i)*time.Microsecond))
				b.Reset()
				peak = max(peak, p.(proto.Buffering).Buffered())
			}
		}
		p.Feed(proto.Client, b.Bytes(), t0.Add(2*time.Second))
		p.End(proto.EndFIN, t0.Add(3*time.Second))
		if len(rec.Calls) != 1_000_000 {
			t.Fatalf("%d calls for a million streams", len(rec.Calls))
		}
		if peak > 4<<20 {
			t.Errorf("kept up to %d bytes", peak)
		}
		if !strings.Contains(rec.Calls[0].Error, "streams waited for a response") {
			t.Errorf("the first stream given up says %q", rec.Calls[0].Error)
		}
	})
	t.Run("frame claiming 16 MB", func(t *testing.T) {
		rec := &prototest.Recorder{}
		p := http2.Protocol{}.NewStream(rec, &lim)
		p.Feed(proto.Client, []byte(xhttp2.ClientPreface+"\xff\xff\xff\x00\x00\x00\x00\x00\x01"), t0)
		p.Feed(proto.Client, bytes.Repeat([]byte{0}, 1<<16), t0)
		if n := p.(proto.Buffering).Buffered(); n > 1<<16 {
			t.Errorf("keeps %d bytes", n)
		}
		p.End(proto.EndFIN, t0)
		if rec.SkippedBytes == 0 {
			t.Error("the oversized frame's bytes are not counted as skipped")
		}
	})
}

// TestExpire: a stream unanswered for longer than the bound is emitted as
// such while the connection stays open; one answered and still streaming
// is not.
func TestExpire(t *testing.T) {
	w := newWire(t, true)
	w.headers(proto.Client, 1, true, get("/stuck")...)
	w.headers(proto.Client, 3, true, get("/watch")...)
	w.headers(proto.Server, 3, false, ":status", "200")
	rec := &prototest.Recorder{}
	p := http2.Protocol{}.NewStream(rec, &proto.Limits{})
	for _, c := range w.chunks {
		p.Feed(c.Role, c.Data, c.T)
	}
	p.(proto.Expiring).Expire(w.now.Add(3 * time.Minute))
	if got := summary(rec.Calls); !slices.Equal(got, []string{"1 GET /stuck  [no response]"}) {
		t.Fatalf("expired: %q", got)
	}
	p.End(proto.EndCapture, w.now.Add(4*time.Minute))
	if got := summary(rec.Calls); len(got) != 2 || got[1] != "3 GET /watch 200 [truncated: response not finished: capture ended]" {
		t.Fatalf("at the end: %q", got)
	}
}

// TestSummaryMode: no headers and no bodies kept, the same calls.
func TestSummaryMode(t *testing.T) {
	w := newWire(t, true)
	w.headers(proto.Client, 1, false, append(get("/s"), "content-type", "text/plain")...)
	w.data(proto.Client, 1, true, []byte("abc"))
	w.headers(proto.Server, 1, false, ":status", "200")
	w.data(proto.Server, 1, true, []byte("defg"))
	full := w.feed(0, proto.Limits{})
	sum := w.feed(0, proto.Limits{Summary: true})
	f, s := full.Calls[0], sum.Calls[0]
	if len(s.Request.Headers) != 0 || s.Response.Body != "" || s.Request.BodySize != 3 || s.Response.BodySize != 4 ||
		f.Method != s.Method || f.Path != s.Path || f.Status != s.Status || f.Response.Body != "defg" {
		t.Fatalf("full %+v\nsummary %+v", f, s)
	}
}
