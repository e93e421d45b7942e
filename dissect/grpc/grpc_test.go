package grpc_test

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/grpc"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// The registry is dissect's; Outcome reads gRPC's description from it.
func init() { proto.Register(grpc.Protocol{}) }

var req = proto.Headers{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/shop.Orders/Get"},
	{Name: "content-type", Value: "application/grpc"}, {Name: "grpc-encoding", Value: "gzip"}}

func frame(compressed bool, b []byte) []byte {
	out := []byte{0, 0, 0, 0, 0}
	if compressed {
		out[0] = 1
	}
	n := len(b)
	out[1], out[2], out[3], out[4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return append(out, b...)
}

func finish(cr proto.Carriage, status string) *proto.Call {
	c := &proto.Call{Proto: "http2", Method: "POST", Path: "/shop.Orders/Get", Status: status, TS: time.Unix(1e9, 0)}
	return cr.Finish(c)[0]
}

// TestCarriage: a compressed request and two responses split anywhere, a
// status from the trailers; Trailers-Only; HTTP without grpc-status; not
// gRPC at all.
func TestCarriage(t *testing.T) {
	lim := proto.DefaultLimits
	if (grpc.Protocol{}).Carry("http2", "POST", "/x", proto.Headers{{Name: "content-type", Value: "application/grpc-web"}}, &lim) != nil ||
		(grpc.Protocol{}).Carry("http", "POST", "/x", req, &lim) != nil {
		t.Fatal("gRPC-Web, or gRPC over HTTP/1, taken for gRPC over HTTP/2")
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte{0x08, 0x2a, 0x12, 0x03, 'a', 'b', 'c'}) // 1: 42, 2: "abc"
	zw.Close()
	body := append(frame(true, gz.Bytes()), frame(false, []byte{0x08, 0x01})...)
	for step := 1; step <= len(body); step++ {
		cr := (grpc.Protocol{}).Carry("http2", "POST", "/shop.Orders/Get", req, &lim)
		cr.Body(proto.Client, body[:len(gz.Bytes())+5])
		for b := body[len(gz.Bytes())+5:]; len(b) > 0; b = b[min(step, len(b)):] {
			cr.Body(proto.Server, b[:min(step, len(b))])
		}
		cr.Headers(proto.Server, proto.Headers{{Name: ":status", Value: "200"}})
		cr.Headers(proto.Server, proto.Headers{{Name: "grpc-status", Value: "5"}, {Name: "grpc-message", Value: "order%2042%20gone"}})
		c := finish(cr, "200")
		if c.Proto != "grpc" || c.Status != "NOT_FOUND" || c.Extra.Get("grpc_message") != "order 42 gone" ||
			c.Extra.Get("request_messages") != int64(1) || c.Extra.Get("response_messages") != int64(1) || c.Outcome() != proto.ClientError {
			t.Fatalf("step %d: %s %v outcome %v", step, c.Status, c.Extra, c.Outcome())
		}
		if !strings.Contains(c.Request.Body, "1: 42\n2: \"abc\"") {
			t.Fatalf("request shown as %q", c.Request.Body)
		}
	}
	cr := (grpc.Protocol{}).Carry("http2", "POST", "/p", req, &lim)
	cr.Headers(proto.Server, proto.Headers{{Name: ":status", Value: "200"}, {Name: "grpc-status", Value: "14"}})
	if c := finish(cr, "200"); c.Status != "UNAVAILABLE" || c.Outcome() != proto.ServerError {
		t.Errorf("Trailers-Only: %s", c.Status)
	}
	cr = (grpc.Protocol{}).Carry("http2", "POST", "/p", req, &lim)
	cr.Headers(proto.Server, proto.Headers{{Name: ":status", Value: "503"}})
	if c := finish(cr, "503"); c.Status != "UNAVAILABLE" || c.Extra.Get("status_from") == nil {
		t.Errorf("HTTP 503 without grpc-status: %s %v", c.Status, c.Extra)
	}
}

// FuzzCarriage feeds arbitrary message bytes and header values to a
// carriage: no panic, a bounded body shown, a call that reads back.
func FuzzCarriage(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 8, 1}, []byte{1, 0, 0, 0, 3, 1, 2, 3}, "0", byte(3))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, []byte{}, "x", byte(0x80))
	f.Fuzz(func(t *testing.T, client, server []byte, status string, split byte) {
		lim := proto.Limits{MaxBodyDisplay: 512}.WithDefaults()
		cr := (grpc.Protocol{}).Carry("http2", "POST", "/p", req, &lim)
		step := int(split&0x3f) + 1
		for _, s := range []struct {
			r proto.Role
			b []byte
		}{{proto.Client, client}, {proto.Server, server}} {
			for b := s.b; len(b) > 0; b = b[min(step, len(b)):] {
				cr.Body(s.r, b[:min(step, len(b))])
				if split&0x80 != 0 && len(b)%7 == 0 {
					cr.Gap(s.r)
				}
			}
		}
		cr.Headers(proto.Server, proto.Headers{{Name: "grpc-status", Value: status}, {Name: "grpc-message", Value: status}})
		c := finish(cr, "200")
		if len(c.Request.Body) > 4*lim.MaxBodyDisplay || len(c.Response.Body) > 4*lim.MaxBodyDisplay || c.Status == "" {
			t.Fatalf("status %q, bodies %d and %d bytes", c.Status, len(c.Request.Body), len(c.Response.Body))
		}
		prototest.CheckJSON(t, 0, c)
	})
}
