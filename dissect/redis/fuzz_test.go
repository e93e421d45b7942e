package redis_test

import (
	"testing"

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
		prototest.FuzzFeed(t, redis.Protocol{}, client, server, split, 1<<20)
	})
}
