package http2_test

import (
	"testing"
	"time"

	xhttp2 "golang.org/x/net/http2"

	"github.com/wirescope/wirescope/dissect/grpc"
	"github.com/wirescope/wirescope/dissect/http2"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// The registry is dissect's; the fuzz target asks gRPC about requests as
// the engine's parsers do.
func init() { proto.Register(http2.Protocol{}, grpc.Protocol{}) }

// FuzzFrames feeds a client's and a server's bytes (after the preface) to
// one connection, in chunks whose sizes derive from split, with a gap now
// and then. The invariants: no panic; what the parser keeps stays within
// a bound; every call has a status or an error and reads back from its
// JSON.
func FuzzFrames(f *testing.F) {
	w := newWire(f, false)
	w.headers(proto.Client, 1, false, ":method", "POST", ":path", "/pkg.Svc/Do", "content-type", "application/grpc", "grpc-encoding", "gzip")
	w.data(proto.Client, 1, true, []byte{0, 0, 0, 0, 3, 0x08, 0x96, 0x01})
	w.headers(proto.Server, 1, false, ":status", "200", "content-type", "application/grpc")
	w.data(proto.Server, 1, false, []byte{0, 0, 0, 0, 2, 0x12, 0x00})
	w.headers(proto.Server, 1, true, "grpc-status", "5", "grpc-message", "no%20such")
	w.fr[0].WriteRSTStream(3, xhttp2.ErrCodeCancel)
	w.flush(proto.Client)
	w.fr[1].WriteGoAway(1, xhttp2.ErrCodeProtocol, []byte("bye"))
	w.flush(proto.Server)
	var client, server []byte
	for _, c := range w.chunks {
		if c.Role == proto.Client {
			client = append(client, c.Data...)
		} else {
			server = append(server, c.Data...)
		}
	}
	f.Add(client, server, byte(0))
	f.Add(client, server, byte(0x93))
	f.Add([]byte("\x00\x00\x05\x01\x05\x00\x00\x00\x01\x3f\xe1\xff\xff\x0f"), []byte{}, byte(7)) // a huge size update
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		lim := proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512, MaxPending: 16}
		rec := &prototest.Recorder{}
		p := http2.Protocol{}.NewStream(rec, &lim)
		p.Feed(proto.Client, []byte(xhttp2.ClientPreface), time.Unix(1e9, 0))
		rng := uint32(split)*2654435761 + 1
		at := time.Unix(1e9, 0)
		for len(client) > 0 || len(server) > 0 {
			rng = rng*1103515245 + 12345
			n := int(rng>>16)%64 + 1
			side, data := proto.Client, &client
			if rng&0x100 != 0 && len(server) > 0 || len(client) == 0 {
				side, data = proto.Server, &server
			}
			n = min(n, len(*data))
			if split&0x80 != 0 && rng&0x3000 == 0 {
				p.Gap(side, n)
			} else {
				p.Feed(side, (*data)[:n], at)
			}
			*data = (*data)[n:]
			at = at.Add(time.Millisecond)
			if b := p.(proto.Buffering).Buffered(); b > 1<<20 {
				t.Fatalf("keeps %d bytes", b)
			}
		}
		p.End(proto.EndFIN, at)
		for i, c := range rec.Calls {
			if c.Status == "" && c.Error == "" {
				t.Errorf("call %d has neither status nor error: %+v", i, c)
			}
			prototest.CheckJSON(t, i, c)
		}
	})
}
