package amqp_test

import (
	"testing"

	"github.com/wirescope/wirescope/dissect/amqp"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// FuzzStream feeds arbitrary client and server bytes in arbitrary pieces,
// with gaps: no panic, bounded memory, every call valid JSON with a status,
// an error, or marked one-way.
func FuzzStream(f *testing.F) {
	f.Add([]byte(header+startOK("guest", "pw")+tuneOK()+open("/")+chOpen(1)+queueDeclare(1, "q", 2)+publish(1, "ex", "rk")+contentHeader(1, 5, "text/plain")+body(1, "hello")),
		[]byte(start()+tune()+openOK()+chOpenOK(1)+queueDeclareOK(1, "q")+deliver(1, 1, "ex", "rk")+contentHeader(1, 2, "a")+body(1, "hi")), byte(0))
	f.Add([]byte(header+startOK("u", "p")), []byte(start()+closeM(0, 10, 403, "ACCESS_REFUSED", 0, 0)), byte(3))
	f.Add([]byte(queueDeclare(1, "q", 0)+closeOK(1, 20)), []byte(closeM(1, 20, 406, "PRECONDITION_FAILED", 50, 10)), byte(0x81))
	f.Add([]byte("AMQP\x00\x01\x00\x00\x00\x00\x00\x10"), []byte("AMQP\x00\x01\x00\x00"), byte(9))
	f.Add([]byte("\x01\x00\x01\xff\xff\xff\xff\x00\x3c\x00\x28"), []byte("\x08\x00\x00\x00\x00\x00\x00\xce"), byte(0x90))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, amqp.Protocol{}, client, server, split, 1<<20)
	})
}
