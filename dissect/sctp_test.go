package dissect_test

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
)

// sctpPacket is an SCTP packet from sport to dport holding chunks.
func sctpPacket(sport, dport uint16, chunks ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, 0, 0, 0, 1, 0, 0, 0, 0) // verification tag, checksum (not verified)
	for _, c := range chunks {
		b = append(b, c...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func chunk(typ, flags byte, body []byte) []byte {
	c := []byte{typ, flags, 0, 0}
	binary.BigEndian.PutUint16(c[2:], uint16(4+len(body)))
	return append(c, body...)
}

func dataChunk(tsn uint32, stream uint16, flags byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, tsn)
	b = binary.BigEndian.AppendUint16(b, stream)
	b = append(b, 0, 0, 0, 0, 0, 0) // stream sequence, PPID
	return chunk(0, flags, append(b, data...))
}

func initChunk(typ byte) []byte {
	return chunk(typ, 0, []byte{0, 0, 0, 9, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1})
}

// TestSCTP: an association is a flow with its state and streams; HTTP in
// its DATA chunks — one message fragmented over three chunks, one chunk
// retransmitted — is dissected as HTTP; an INIT answered by ABORT is
// refused; an ABORT ends what waits for an answer.
func TestSCTP(t *testing.T) {
	h := newHarness(dissect.Options{})
	c, s := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")
	at := start
	send := func(from, to netip.Addr, sport, dport uint16, chunks ...[]byte) {
		h.emit(synth.IPPacket(at, from, to, layers.IPProtocolSCTP, sctpPacket(sport, dport, chunks...)))
		at = at.Add(time.Millisecond)
	}
	send(c, s, 40000, 80, initChunk(1))
	send(s, c, 80, 40000, initChunk(2))
	send(c, s, 40000, 80, chunk(10, 0, []byte{1, 2, 3, 4}))
	send(s, c, 80, 40000, chunk(11, 0, nil))
	send(c, s, 40000, 80, dataChunk(1, 0, 3, req))
	send(s, c, 80, 40000, dataChunk(1, 0, 2, resp[:10]))
	send(s, c, 80, 40000, dataChunk(2, 0, 0, resp[10:20]))
	send(s, c, 80, 40000, dataChunk(2, 0, 0, resp[10:20])) // retransmitted
	send(s, c, 80, 40000, dataChunk(3, 0, 1, resp[20:]))
	send(c, s, 40000, 80, dataChunk(2, 1, 3, req))
	send(c, s, 40000, 80, chunk(6, 0, nil)) // ABORT
	send(c, s, 40001, 80, initChunk(1))
	send(s, c, 80, 40001, chunk(6, 0, nil))
	h.finish()
	if len(h.calls) != 2 || h.calls[0].Proto != "http" || h.calls[0].Status != "200" || h.calls[0].Error != "" ||
		h.calls[1].Status != "" || h.calls[1].Error != "no response: connection reset" {
		for _, c := range h.calls {
			t.Logf("%s %s %s %q %q", c.Proto, c.Method, c.Path, c.Status, c.Error)
		}
		t.Fatal("want the request answered, then one cut by the ABORT")
	}
	states := map[uint16]dissect.Flow{}
	for _, f := range h.flows {
		states[f.Src.Port] = f
	}
	if f := states[40000]; f.Transport != "sctp" || f.Proto != "http" || f.State != "aborted" || f.Streams != 2 || f.Retransmissions != 1 {
		t.Errorf("the association: %+v", f)
	}
	if f := states[40001]; f.State != "refused" || f.Dst.Port != 80 {
		t.Errorf("the refused association: %+v", f)
	}
}

// TestSCTPFragmentFlood: a message fragmented past the bound is dropped
// and counted, not kept; what follows is read.
func TestSCTPFragmentFlood(t *testing.T) {
	h := newHarness(dissect.Options{})
	c, s := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")
	at := start
	send := func(from, to netip.Addr, sport, dport uint16, chunks ...[]byte) {
		h.emit(synth.IPPacket(at, from, to, layers.IPProtocolSCTP, sctpPacket(sport, dport, chunks...)))
		at = at.Add(time.Microsecond)
	}
	send(c, s, 40000, 80, initChunk(1))
	send(s, c, 80, 40000, initChunk(2))
	send(c, s, 40000, 80, dataChunk(1, 0, 3, req))
	piece := string(make([]byte, 1000))
	send(s, c, 80, 40000, dataChunk(1, 0, 2, resp[:20]+piece))
	tsn := uint32(2)
	for range 8 << 10 { // 8 MiB in 1,000-byte fragments
		send(s, c, 80, 40000, dataChunk(tsn, 0, 0, piece))
		tsn++
	}
	send(s, c, 80, 40000, dataChunk(tsn, 0, 1, piece))
	send(c, s, 40000, 80, dataChunk(2, 0, 3, req))
	send(s, c, 80, 40000, dataChunk(tsn+1, 0, 3, resp))
	st := h.finish()
	if st.SkippedBytes < 4<<20 {
		t.Errorf("skipped %d bytes, want the message past the bound", st.SkippedBytes)
	}
	if len(h.calls) != 2 || h.calls[1].Status != "200" {
		for _, c := range h.calls {
			t.Logf("%s %s %q %q", c.Method, c.Path, c.Status, c.Error)
		}
		t.Fatal("want the second request answered")
	}
}

// diameterMessage is a Diameter message (RFC 6733) of command code cmd
// with the given AVPs (code, data), a request when request is set.
func diameterMessage(request bool, cmd uint32, hbh uint32, avps ...[]byte) []byte {
	var body []byte
	for _, a := range avps {
		body = append(body, a...)
	}
	b := make([]byte, 20, 20+len(body))
	b[0] = 1
	binary.BigEndian.PutUint32(b[0:4], uint32(20+len(body))|1<<24)
	flags := uint32(0)
	if request {
		flags = 0x80
	}
	binary.BigEndian.PutUint32(b[4:8], flags<<24|cmd)
	binary.BigEndian.PutUint32(b[12:16], hbh)
	binary.BigEndian.PutUint32(b[16:20], hbh)
	return append(b, body...)
}

func avp(code uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, code)
	b = binary.BigEndian.AppendUint32(b, 0x40<<24|uint32(8+len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// TestDiameterOverSCTP: Diameter messages in an association's DATA
// chunks (the kernel here has no SCTP to record it from) are dissected as
// over TCP: the capabilities exchange and a watchdog, each matched.
func TestDiameterOverSCTP(t *testing.T) {
	h := newHarness(dissect.Options{})
	c, s := netip.MustParseAddr("10.2.0.1"), netip.MustParseAddr("10.2.0.2")
	at := start
	send := func(from, to netip.Addr, sport, dport uint16, chunks ...[]byte) {
		h.emit(synth.IPPacket(at, from, to, layers.IPProtocolSCTP, sctpPacket(sport, dport, chunks...)))
		at = at.Add(time.Millisecond)
	}
	host := avp(264, []byte("peer1.localdomain"))
	realm := avp(296, []byte("localdomain"))
	ok := avp(268, []byte{0, 0, 0x07, 0xd1}) // 2001
	send(c, s, 40000, 3868, initChunk(1))
	send(s, c, 3868, 40000, initChunk(2))
	send(c, s, 40000, 3868, dataChunk(1, 0, 3, string(diameterMessage(true, 257, 7, host, realm))))
	send(s, c, 3868, 40000, dataChunk(1, 0, 3, string(diameterMessage(false, 257, 7, ok, host, realm))))
	send(s, c, 3868, 40000, dataChunk(2, 1, 3, string(diameterMessage(true, 280, 9, host, realm))))
	send(c, s, 40000, 3868, dataChunk(2, 1, 3, string(diameterMessage(false, 280, 9, ok, host, realm))))
	send(c, s, 40000, 3868, chunk(7, 0, []byte{0, 0, 0, 2}))
	send(s, c, 3868, 40000, chunk(8, 0, nil))
	send(c, s, 40000, 3868, chunk(14, 0, nil))
	h.finish()
	var got []string
	for _, c := range h.calls {
		got = append(got, c.Proto+" "+c.Method+" "+c.Status+" "+c.Error)
	}
	want := []string{"diameter CER DIAMETER_SUCCESS ", "diameter DWR DIAMETER_SUCCESS "}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", got, want)
	}
	if len(h.flows) != 1 || h.flows[0].State != "closed" || h.flows[0].Proto != "diameter" || h.flows[0].Streams != 2 {
		t.Errorf("flows %+v", h.flows)
	}
}
