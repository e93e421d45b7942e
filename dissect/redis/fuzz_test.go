package redis_test

import (
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/redis"
)

// FuzzStream feeds arbitrary client and server bytes in arbitrary pieces,
// with gaps: no panic, bounded memory, every call valid JSON with a status,
// an error, or marked one-way.
func FuzzStream(f *testing.F) {
	f.Add([]byte(cmd("SET", "a", "b")+cmd("GET", "a")+"PING\r\n"), []byte("+OK\r\n$1\r\nb\r\n+PONG\r\n"), byte(0))
	f.Add([]byte(cmd("MULTI")+cmd("INCR", "x")+cmd("EXEC")), []byte("+OK\r\n+QUEUED\r\n*1\r\n-ERR no\r\n"), byte(3))
	f.Add([]byte(cmd("SUBSCRIBE", "c")+cmd("PING")), []byte("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n"), byte(0x81))
	f.Add([]byte(cmd("HELLO", "3")+cmd("HGETALL", "h")), []byte("%1\r\n$5\r\nproto\r\n:3\r\n%1\r\n+a\r\n|1\r\n+x\r\n+y\r\n,1.5\r\n>2\r\n+invalidate\r\n*1\r\n+k\r\n"), byte(9))
	f.Add([]byte("*1\r\n$9223372036854775807\r\n"), []byte("*99999999999\r\n"), byte(0x80))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		lim := proto.Limits{MaxHeaderBytes: 4096, MaxBodyCapture: 1024, MaxBodyDisplay: 512, MaxPending: 16}
		rec := &prototest.Recorder{}
		p := redis.Protocol{}.NewStream(rec, &lim)
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
			if c.Status == "" && c.Error == "" && !c.OneWay {
				t.Errorf("call %d has neither status nor error: %+v", i, c)
			}
			prototest.CheckJSON(t, i, c)
		}
	})
}
