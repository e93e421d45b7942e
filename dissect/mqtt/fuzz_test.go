package mqtt_test

import (
	"testing"

	"github.com/wirescope/wirescope/dissect/mqtt"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
)

// FuzzStream feeds arbitrary client and server bytes in arbitrary pieces,
// with gaps: no panic, bounded memory, every call valid JSON with a status,
// an error, or marked one-way.
func FuzzStream(f *testing.F) {
	f.Add([]byte(connect(4, "c", "u", "p")+publish(1, false, "a/b", 1, nil, "x")+pkt(0xC0)),
		[]byte(pkt(0x20, b(0, 0))+pkt(0x40, u16(1))+pkt(0xD0)), byte(0))
	f.Add([]byte(connect(5, "c5", "", "")+publish(2, false, "t", 2, props(alias(1), userProp("k", "v")), "y")+pkt(0x62, u16(2))+
		publish(0, false, "", 0, props(alias(1)), "z")),
		[]byte(pkt(0x20, b(0, 0), props())+pkt(0x50, u16(2))+pkt(0x70, u16(2))+publish(1, false, "s", 9, props(), "d")), byte(3))
	f.Add([]byte(connect(5, "c", "", "")+pkt(0x82, u16(3), props(), str("a/#"), b(1))+pkt(0xA2, u16(4), props(), str("a/#"))),
		[]byte(pkt(0x20, b(0, 0x87), props(reasonStr("no")))+pkt(0x90, u16(3), props(), b(0x87))+pkt(0xB0, u16(4), props(), b(0x11))), byte(0x81))
	f.Add([]byte("\x30\xff\xff\xff\x7f\x00\x01a"), []byte("\x20\xff\xff\xff\xff\x01"), byte(0x80))
	f.Add([]byte(connect(3, "old", "", "")+pkt(0xE0)), []byte(pkt(0x20, b(0, 5))+pkt(0xF0, b(0x18), props())), byte(9))
	f.Fuzz(func(t *testing.T, client, server []byte, split byte) {
		prototest.FuzzFeed(t, mqtt.Protocol{}, client, server, split, 1<<20)
	})
}
