package http1_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
)

// TestBufferedBounded feeds a 60 KB header block in segments: the parser
// keeps at most the 64 KiB limit for it (append's doubling once gave it
// 128 KiB), reports what it keeps, and lets it all go once the request is
// answered.
func TestBufferedBounded(t *testing.T) {
	lim := proto.Limits{}.WithDefaults()
	out := &fuzzEmitter{}
	p := http1.Protocol{}.NewStream(out, &lim)
	b, ok := p.(proto.Buffering)
	if !ok {
		t.Fatal("the HTTP/1 parser does not report what it buffers (proto.Buffering)")
	}
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	req := append([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Pad: "), bytes.Repeat([]byte{'p'}, 60000)...)
	for rest := req; len(rest) > 0; {
		n := min(len(rest), 1460)
		p.Feed(proto.Client, rest[:n], at)
		rest = rest[n:]
	}
	if got := b.Buffered(); got < len(req) || got > lim.MaxHeaderBytes {
		t.Errorf("with %d bytes of a header block buffered, the parser reports %d, want between those and the limit %d", len(req), got, lim.MaxHeaderBytes)
	}
	p.Feed(proto.Client, []byte("\r\n\r\n"), at)
	if got := b.Buffered(); got < len(req) || got > len(req)+4096 {
		t.Errorf("with a %d-byte request waiting, the parser reports %d", len(req), got)
	}
	p.Feed(proto.Server, []byte("HTTP/1.1 204 No Content\r\n\r\n"), at)
	if got := b.Buffered(); got != 0 {
		t.Errorf("after the exchange the parser keeps %d bytes, want 0", got)
	}
	if len(out.calls) != 1 || out.calls[0].Error != "" || out.calls[0].Status != "204" {
		t.Fatalf("calls %+v, want one answered 204", out.calls)
	}
}

// TestEndMemory ends a connection early for memory bounds: the partial
// header block counts as skipped, and the calls cut say why.
func TestEndMemory(t *testing.T) {
	lim := proto.Limits{}.WithDefaults()
	out := &fuzzEmitter{}
	p := http1.Protocol{}.NewStream(out, &lim)
	at := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	p.Feed(proto.Client, []byte("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"), at)
	partial := "GET /b HTTP/1.1\r\nHost: x\r\nX-Pad: ppp"
	p.Feed(proto.Client, []byte(partial), at)
	p.End(proto.EndMemory, at)
	if out.skipped != len(partial) {
		t.Errorf("%d bytes skipped, want %d (the partial header block)", out.skipped, len(partial))
	}
	if len(out.calls) != 2 {
		t.Fatalf("%d calls, want 2", len(out.calls))
	}
	for i, want := range []string{
		"truncated: connection ended early for memory bounds before the response",
		"truncated: connection ended early for memory bounds during the request message",
	} {
		if c := out.calls[i]; c.Error != want || !strings.HasPrefix(c.Path, "/") {
			t.Errorf("call %d: %s error %q, want %q", i, c.Path, c.Error, want)
		}
	}
}
