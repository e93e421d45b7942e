package radius_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/dissect/proto/prototest"
	"github.com/wirescope/wirescope/dissect/radius"
)

// fuzzSeeds are whole exchanges (request then response) and damaged
// packets, joined as the fuzz target splits them: each a two-byte length
// then the datagram.
func fuzzSeeds() [][]byte {
	req := packet(1, 7, authn(1), attr(1, "alice"), attr(2, "pw"), vsa(311, attr(1, "x"), attr(11, "c")), attr(80, make([]byte, 16)))
	resp := packet(2, 7, authn(2), attr(18, "hi"), attr(27, 60), attr(25, "class"))
	eapReq := packet(1, 8, authn(3), attr(79, eap(2, 0, 1, 'u')), attr(79, []byte{}))
	acct := packet(4, 9, authn(4), attr(40, 1), attr(44, "s"))
	lying := packet(1, 10, authn(5), attr(1, "x"))
	binary.BigEndian.PutUint16(lying[2:], 4000)
	zeroLen := packet(1, 11, authn(6), []byte{1, 0, 'a'})
	return [][]byte{
		frames(req, resp), frames(req, req, resp, resp), frames(eapReq, packet(11, 8, authn(7), attr(79, eap(1, 1, 13)))),
		frames(acct, packet(5, 9, authn(8))), frames(lying, zeroLen, packet(3, 11, authn(9))), frames([]byte{1, 2, 0, 3}),
		frames(packet(43, 1, authn(1), vsa(9)), packet(45, 1, authn(2), attr(101, 404))),
	}
}

// frames joins datagrams, each after its two-byte length.
func frames(ds ...[]byte) []byte {
	var b []byte
	for _, d := range ds {
		b = binary.BigEndian.AppendUint16(b, uint16(len(d)))
		b = append(b, d...)
	}
	return b
}

// FuzzDatagram sends arbitrary datagrams through a flow's parser: the
// input is cut into datagrams (a two-byte length each, shorter at the
// end), sent by the client or the server as split's bits say, each also
// sent by the other side with its code turned into a response (or a
// request), so that arbitrary packets pair up. The invariants: no panic,
// what the parser keeps bounded, and every call a RADIUS call with a
// status, an error or marked one-way, whose JSON is valid and reads back.
func FuzzDatagram(f *testing.F) {
	for i, s := range fuzzSeeds() {
		f.Add(s, byte(i*37))
	}
	f.Fuzz(func(t *testing.T, b []byte, split byte) {
		lim := proto.Limits{MaxPending: 16, MaxBodyDisplay: 512, RequestTimeout: time.Second}.WithDefaults()
		rec := &prototest.Recorder{}
		p := radius.Protocol{}.NewFlow(rec, &lim)
		tm := time.Unix(1e9, 0)
		bits := uint32(split)*2654435761 + 1
		for len(b) > 0 {
			n := len(b)
			if len(b) >= 2 {
				n = min(int(binary.BigEndian.Uint16(b)), len(b)-2)
				b = b[2:]
			}
			d := bytes.Clone(b[:n])
			b = b[n:]
			bits = bits*1103515245 + 12345
			side := proto.Client
			if bits&0x100 != 0 {
				side = proto.Server
			}
			p.Datagram(side, d, tm)
			if len(d) > 0 {
				d[0] = map[bool]byte{true: 2, false: 1}[d[0] == 1 || d[0] == 4 || d[0] == 12]
			}
			p.Datagram(side.Peer(), d, tm.Add(time.Millisecond))
			tm = tm.Add(time.Duration(bits>>20) * time.Millisecond)
			if bits&0x3000 == 0 {
				p.Expire(tm.Add(-lim.RequestTimeout))
			}
			if k := p.(proto.Buffering).Buffered(); k > lim.MaxPending*(1024+lim.MaxBodyDisplay) {
				t.Fatalf("keeps %d bytes", k)
			}
		}
		p.End(proto.EndCapture, tm)
		for i, c := range rec.Calls {
			if c.Proto != "radius" {
				t.Errorf("call %d: proto %q", i, c.Proto)
			}
			if c.Status == "" && c.Error == "" && !c.OneWay {
				t.Errorf("call %d has neither status nor error: %+v", i, c)
			}
			prototest.CheckJSON(t, i, c)
		}
	})
}
