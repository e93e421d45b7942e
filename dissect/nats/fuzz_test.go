package nats_test

import (
	"testing"

	"github.com/wirescope/wirescope/dissect/nats"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// FuzzStream feeds arbitrary client and server bytes in arbitrary pieces,
// with gaps: no panic, bounded memory, every call valid JSON with a status,
// an error, or marked one-way.
func FuzzStream(f *testing.F) {
	f.Add([]byte(connect(false)+"PING\r\nSUB a.* q 1\r\n"+pub("svc", "_INBOX.1", "req")+hpub("h", "", "NATS/1.0\r\nA: b\r\n\r\n", "x")+"UNSUB 1\r\n"),
		[]byte(info+"PONG\r\n"+msg("_INBOX.1", "1", "", "rep")+hmsg("a.b", "1", "r.1", "NATS/1.0 503\r\n\r\n", "")+"PING\r\n"), byte(0))
	f.Add([]byte(connect(true)+"PING\r\n"+pub("a", "", "1")+"SUB x 2\r\n"+pub("r.1", "", "ans")),
		[]byte(info+"+OK\r\nPONG\r\n-ERR 'Permissions Violation for Publish to \"a\"'\r\n+OK\r\n"+msg("s", "2", "r.1", "q")+"+OK\r\n"), byte(3))
	f.Add([]byte(connect(false)+"PUB huge 9223372036854775807\r\nxx\r\nHPUB h 9 3\r\n"), []byte(info+"-ERR 'Authorization Violation'\r\n"), byte(0x81))
	f.Add([]byte("CONNECT {\"pass\":\r\nPUB a 3\r\nabcdef\r\nPONG\r\n"), []byte("INFO {\"tls_required\":true}\r\nMSG a 1 99999999999\r\n-ERR 'Stale Connection'\r\n"), byte(0x90))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, nats.Protocol{}, client, server, split, 1<<20)
	})
}
