package dissect_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	synth "github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/http1"
	"github.com/wirescope/wirescope/dissect/proto"
)

var start = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

// harness runs synthetic packets through an engine.
type harness struct {
	e     *dissect.Engine
	calls []*dissect.Call
	flows []dissect.Flow
}

func newHarness(opts dissect.Options) *harness {
	h := &harness{}
	opts.OnCall = func(c *dissect.Call) { h.calls = append(h.calls, c) }
	opts.OnFlow = func(f *dissect.Flow) { h.flows = append(h.flows, *f) }
	h.e = dissect.New(opts)
	return h
}

func (h *harness) emit(p capture.Packet) { h.e.Packet(&p) }

func (h *harness) conn(client, server string) *synth.Conn {
	return synth.NewConn(client, server, start, h.emit)
}

func (h *harness) finish() dissect.Stats { return h.e.Finish() }

const (
	req  = "GET /api/cart HTTP/1.1\r\nHost: cart\r\n\r\n"
	resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
)

func TestReorderAndRetransmission(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51000", "10.0.0.9:8080")
	c.MSS = 10
	c.Handshake()
	c.SendReordered(true, []byte(req))
	c.Retransmit(true, []byte(req[len(req)-4:]))
	body := "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n" + strings.Repeat("x", 30)
	c.SendReordered(false, []byte(body))
	c.Close()
	st := h.finish()
	if len(h.calls) != 1 || h.calls[0].Status != "200" || h.calls[0].Path != "/api/cart" || h.calls[0].Error != "" {
		t.Fatalf("calls %+v", h.calls)
	}
	if st.Retransmissions != 1 || len(h.flows) != 1 || h.flows[0].State != "closed" || h.flows[0].MidStream {
		t.Errorf("retransmissions %d flows %+v", st.Retransmissions, h.flows)
	}
	f := h.flows[0]
	if f.Src.Port != 51000 || f.Proto != "http" || f.Calls != 1 || f.PayloadBytes[0] != uint64(len(req)+4) || f.PayloadBytes[1] != uint64(len(body)) {
		t.Errorf("flow %+v", f)
	}
}

func TestMidStreamCapture(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51001", "10.0.0.9:80")
	// No handshake: the capture opens inside a response body.
	c.Send(false, []byte(strings.Repeat("tail of a body ", 10)))
	c.Send(true, []byte(req))
	c.Send(false, []byte(resp))
	st := h.finish()
	if len(h.calls) != 1 || h.calls[0].Status != "200" || h.calls[0].Src.Port != 51001 {
		t.Fatalf("calls %+v", h.calls)
	}
	if len(h.flows) != 1 || !h.flows[0].MidStream || h.flows[0].State != "open" || st.Flows["tcp"] != 1 {
		t.Errorf("flows %+v", h.flows)
	}
}

func TestConnectionFailures(t *testing.T) {
	h := newHarness(dissect.Options{})
	// Reset while a request waits.
	c := h.conn("10.0.0.2:51002", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	c.Reset(false)
	// Refused: SYN answered by RST.
	r := h.conn("10.0.0.2:51003", "10.0.0.9:8081")
	r.T = start.Add(time.Second)
	h.emit(synth.Frame(gopacketBuf(), r.T, r.Client.Addr(), r.Server.Addr(), &layers.TCP{SrcPort: 51003, DstPort: 8081, SYN: true, Seq: 1}, nil))
	h.emit(synth.Frame(gopacketBuf(), r.T.Add(time.Millisecond), r.Server.Addr(), r.Client.Addr(), &layers.TCP{SrcPort: 8081, DstPort: 51003, RST: true, ACK: true, Ack: 2}, nil))
	// Unanswered SYN.
	h.emit(synth.Frame(gopacketBuf(), start.Add(2*time.Second), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.99"), &layers.TCP{SrcPort: 51004, DstPort: 443, SYN: true, Seq: 1}, nil))
	h.finish()
	if len(h.calls) != 1 || h.calls[0].Error != "no response: connection reset" {
		t.Fatalf("calls %+v", h.calls)
	}
	states := map[uint16]string{}
	for _, f := range h.flows {
		states[f.Src.Port] = f.State
	}
	if states[51002] != "reset" || states[51003] != "refused" || states[51004] != "unanswered" {
		t.Errorf("states %v", states)
	}
}

func TestMemoryBounds(t *testing.T) {
	// A hole early in a response with a lot of data queued behind it: with
	// a 4-page budget per connection the engine gives up the hole rather
	// than buffer, and the call is reported, truncated, while the capture
	// goes on. The hole counts as missing from the capture: no byte the
	// capture holds was dropped.
	h := newHarness(dissect.Options{MaxPagesPerConn: 4})
	c := h.conn("10.0.0.2:51005", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	hdr := "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
	c.Send(false, []byte(hdr))
	c.Skip(false, 1448)
	c.Send(false, make([]byte, 100000-1448))
	if len(h.calls) != 1 {
		t.Errorf("%d calls before the capture ended, want the truncated one", len(h.calls))
	}
	c.Close()
	st := h.finish()
	if st.MissingBytes != 1448 || st.SkippedBytes != 0 {
		t.Errorf("missing %d skipped %d, want 1448 missing and none skipped", st.MissingBytes, st.SkippedBytes)
	}
	if len(h.calls) != 1 || h.calls[0].Status != "200" || !strings.HasPrefix(h.calls[0].Error, "truncated: 1448 body bytes") {
		t.Fatalf("calls %+v", h.calls)
	}
	// The same hole with the default budget waits for the segment until the
	// capture ends.
	h = newHarness(dissect.Options{})
	c = h.conn("10.0.0.2:51005", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	c.Send(false, []byte(hdr))
	c.Skip(false, 1448)
	c.Send(false, make([]byte, 100000-1448))
	if len(h.calls) != 0 {
		t.Errorf("%d calls before the capture ended, want none: the response waits for its hole", len(h.calls))
	}
	st = h.finish()
	if st.MissingBytes != 1448 || st.SkippedBytes != 0 || len(h.calls) != 1 || !strings.HasPrefix(h.calls[0].Error, "truncated") {
		t.Errorf("missing %d skipped %d calls %+v", st.MissingBytes, st.SkippedBytes, h.calls)
	}
}

// TestDroppedPayload checks what counts as skipped for memory bounds: a
// segment that arrives after its gap was given up (it was counted missing;
// the capture holds it, reassembly drops it) and payload for a connection
// ended early because more than MaxFlows were open.
func TestDroppedPayload(t *testing.T) {
	h := newHarness(dissect.Options{MaxPagesPerConn: 2})
	c := h.conn("10.0.0.2:51020", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	hdr := "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"
	c.Send(false, []byte(hdr))
	c.Skip(false, 1000)
	c.Send(false, make([]byte, 20000-1000))  // the page bound gives up the hole
	c.Retransmit(false, make([]byte, 20000)) // the hole's 1,000 bytes and 19,000 already delivered
	c.Close()
	st := h.finish()
	if st.MissingBytes != 0 || st.SkippedBytes != 1000 || st.Retransmissions != 0 {
		t.Errorf("missing %d skipped %d retransmissions %d, want 1000 skipped, none missing, not a retransmission",
			st.MissingBytes, st.SkippedBytes, st.Retransmissions)
	}

	// Three connections with MaxFlows 2: the first is ended early, then
	// sends 700 bytes more.
	h = newHarness(dissect.Options{MaxFlows: 2})
	var conns []*synth.Conn
	for i := range 3 {
		c := h.conn(fmt.Sprintf("10.0.0.2:%d", 51030+i), "10.0.0.9:8080")
		c.T = start.Add(time.Duration(i) * time.Millisecond)
		c.Handshake()
		c.Send(true, []byte(req))
		conns = append(conns, c)
	}
	first := conns[0]
	first.T = start.Add(10 * time.Millisecond)
	first.Send(true, make([]byte, 700))
	st = h.finish()
	if st.Evicted != 1 || st.SkippedBytes != 700 || st.MissingBytes != 0 {
		t.Errorf("evicted %d skipped %d missing %d, want one evicted and its 700 later bytes skipped", st.Evicted, st.SkippedBytes, st.MissingBytes)
	}
}

type staticIdentity map[netip.Addr]dissect.Identity

func (s staticIdentity) Identify(ap netip.AddrPort, _ time.Time) (dissect.Identity, bool) {
	a := ap.Addr()
	id, ok := s[a]
	return id, ok
}

func TestIdentityAndFlows(t *testing.T) {
	ids := staticIdentity{
		netip.MustParseAddr("10.0.0.2"): {Pod: "frontend-5b7d9f8c4-abcde", Namespace: "shop", Service: "frontend", Node: "node-a"},
		netip.MustParseAddr("10.0.0.9"): {Pod: "cart-6f7d8c9b5-p4x2n", Namespace: "shop", Service: "cart", Node: "node-b"},
	}
	h := newHarness(dissect.Options{Identity: ids})
	c := h.conn("10.0.0.2:51006", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	c.Send(false, []byte(resp))
	c.Close()
	// Trailing packets of a closed connection must not open a new flow.
	c.Send(true, nil)
	c.Reset(true)
	// A UDP flow nobody understands stays visible.
	h.emit(synth.Datagram(start.Add(time.Second), "10.0.0.2:4000", "10.0.0.50:9999", []byte("opaque bytes")))
	h.emit(synth.Datagram(start.Add(time.Second+time.Millisecond), "10.0.0.50:9999", "10.0.0.2:4000", []byte("reply")))
	st := h.finish()
	if len(h.calls) != 1 {
		t.Fatalf("%d calls", len(h.calls))
	}
	call := h.calls[0]
	if call.Src.Pod != "frontend-5b7d9f8c4-abcde" || call.Dst.Service != "cart" || call.Dst.Node != "node-b" || call.Src.Namespace != "shop" {
		t.Errorf("identities %+v / %+v", call.Src, call.Dst)
	}
	if len(h.flows) != 2 || st.Flows["tcp"] != 1 || st.Flows["udp"] != 1 || st.FlowsByProto[""] != 1 {
		t.Fatalf("flows %+v stats %+v", h.flows, st.Flows)
	}
	for _, f := range h.flows {
		switch f.Transport {
		case "tcp":
			if f.Src.Pod != "frontend-5b7d9f8c4-abcde" || f.Calls != 1 || f.Packets != [2]uint64{6, 3} {
				t.Errorf("tcp flow %+v", f)
			}
		case "udp":
			if f.Proto != "" || f.Packets != [2]uint64{1, 1} || f.Calls != 0 || f.ID == "" {
				t.Errorf("udp flow %+v", f)
			}
		}
	}
}

func TestUpgradeLabelsFlow(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51007", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	c.Send(false, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
	c.Send(false, []byte("\x81\x05hello"))
	c.Close()
	h.finish()
	if len(h.calls) != 2 || h.calls[0].Status != "101" || len(h.flows) != 1 || h.flows[0].Upgraded != "websocket" {
		t.Fatalf("calls %+v flows %+v", h.calls, h.flows)
	}
	// The frame after the switch is a WebSocket message.
	if m := h.calls[1]; m.Proto != "websocket" || m.Method != "text" || m.Response.Body != "hello" || m.Path != "/ws" || !m.OneWay {
		t.Errorf("message %+v", m)
	}
}

// echoProto is reached only through an upgrade to "test-echo": each chunk
// it is fed becomes a one-way message, method the role and path the bytes.
type echoProto struct{}

func (echoProto) Name() string { return "echo" }
func (echoProto) Describe() proto.Description {
	return proto.Description{Upgrades: []string{"test-echo"}}
}
func (echoProto) DetectStream([]byte, uint16, uint16) (proto.Verdict, proto.Role) {
	return proto.No, proto.RoleUnknown
}
func (echoProto) NewStream(out proto.Emitter, _ *proto.Limits) proto.StreamParser {
	return &echoParser{out: out}
}

type echoParser struct{ out proto.Emitter }

func (p *echoParser) Feed(r proto.Role, data []byte, t time.Time) {
	p.out.Emit(&proto.Call{Proto: "echo", TS: t, Method: r.String(), Path: string(data), OneWay: true})
}
func (p *echoParser) Gap(proto.Role, int)            {}
func (p *echoParser) End(proto.EndReason, time.Time) {}

// TestUpgradeHandsOver: after an HTTP 101, every byte goes to the protocol
// that takes the upgrade's token: the rest of the segment that carried the
// 101, what the client sent while it waited for it, and all that follows,
// in capture order.
func TestUpgradeHandsOver(t *testing.T) {
	h := newHarness(dissect.Options{Protocols: []proto.Protocol{http1.Protocol{}, echoProto{}}})
	c := h.conn("10.0.0.2:51010", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte("GET /chat HTTP/1.1\r\nHost: chat\r\nUpgrade: test-echo\r\nConnection: Upgrade\r\n\r\n"))
	c.Send(true, []byte("early"))
	c.Send(false, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test-echo\r\nConnection: Upgrade\r\n\r\nfirst"))
	c.Send(true, []byte("after"))
	c.Send(false, []byte("reply"))
	c.Close()
	st := h.finish()
	var got []string
	for _, call := range h.calls {
		got = append(got, call.Proto+" "+call.Method+" "+call.Path+" "+call.Outcome().String())
	}
	want := []string{"http GET /chat ok", "echo client early one_way", "echo server first one_way", "echo client after one_way", "echo server reply one_way"}
	// One-way messages are counted as such, not as orphans or unanswered.
	if st.OneWay != 4 || st.Orphans != 0 || st.Unanswered != 0 || st.Calls["echo"] != 4 {
		t.Errorf("stats: %d one-way, %d orphans, %d unanswered, calls %v", st.OneWay, st.Orphans, st.Unanswered, st.Calls)
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(h.flows) != 1 || h.flows[0].Upgraded != "test-echo" {
		t.Errorf("flows %+v", h.flows)
	}
}

// TestTunnelDetectedAgain: after CONNECT's 200, the tunnel's protocol is
// detected from its bytes: an HTTP request inside is a call too.
func TestTunnelDetectedAgain(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51011", "10.0.0.9:3128")
	c.Handshake()
	c.Send(true, []byte("CONNECT api.example:80 HTTP/1.1\r\nHost: api.example:80\r\n\r\n"))
	c.Send(false, []byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
	c.Send(true, []byte("GET /inner HTTP/1.1\r\nHost: api.example\r\n\r\n"))
	c.Send(false, []byte("HTTP/1.1 204 No Content\r\n\r\n"))
	c.Close()
	h.finish()
	var got []string
	for _, call := range h.calls {
		got = append(got, call.Method+" "+call.Path+" "+call.Status)
	}
	if want := []string{"CONNECT api.example:80 200", "GET /inner 204"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// dnsTCP is a DNS message over TCP: its length, then the message.
func dnsTCP(t *testing.T, id uint16, response bool) []byte {
	t.Helper()
	d := &layers.DNS{ID: id, QR: response, RD: true, Questions: []layers.DNSQuestion{{Name: []byte("db.shop.svc"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
	buf := gopacket.NewSerializeBuffer()
	if err := d.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		t.Fatal(err)
	}
	return append([]byte{byte(len(buf.Bytes()) >> 8), byte(len(buf.Bytes()))}, buf.Bytes()...)
}

// TestStreamExpiry: on a connection that stays open, a query unanswered for
// StreamRequestTimeout is emitted as unanswered while the capture goes on
// (the engine's clock, not the connection's end); a response that comes
// after that is one without its query, not a 3-minute answer. A query
// answered in time is matched.
func TestStreamExpiry(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51012", "10.0.0.9:53")
	c.Handshake()
	c.Send(true, dnsTCP(t, 1, false))
	c.Send(false, dnsTCP(t, 1, true))
	c.Send(true, dnsTCP(t, 2, false))
	// Other traffic moves the capture's clock on for 3 minutes.
	other := h.conn("10.0.0.3:51013", "10.0.0.9:8080")
	other.T = c.T
	other.Handshake()
	for range 18 {
		other.T = other.T.Add(10 * time.Second)
		other.Send(true, []byte(req))
		other.Send(false, []byte(resp))
	}
	c.T = other.T
	c.Send(false, dnsTCP(t, 2, true))
	c.Close()
	other.Close()
	st := h.finish()
	var dns []string
	for _, call := range h.calls {
		if call.Proto == "dns" {
			dns = append(dns, fmt.Sprintf("%v %s %q", call.Extra.Get("id"), call.Status, call.Error))
		}
	}
	want := []string{`1 NOERROR ""`, `2  "no response"`, `2 NOERROR "no request"`}
	if !slices.Equal(dns, want) || st.Unanswered != 1 || st.Orphans != 1 {
		t.Errorf("dns calls %q (unanswered %d, orphans %d), want %q", dns, st.Unanswered, st.Orphans, want)
	}
}

// lineProto is a line protocol that turns to TLS after "STARTTLS" is
// answered: a stand-in for SMTP's or LDAP's STARTTLS.
type lineProto struct{}

func (lineProto) Name() string { return "line" }
func (lineProto) DetectStream(b []byte, _, _ uint16) (proto.Verdict, proto.Role) {
	if strings.HasPrefix(string(b), "HELLO") {
		return proto.Yes, proto.Client
	}
	return proto.No, proto.RoleUnknown
}
func (lineProto) NewStream(out proto.Emitter, _ *proto.Limits) proto.StreamParser {
	return &lineParser{out: out}
}

type lineParser struct {
	out      proto.Emitter
	starting bool
}

func (p *lineParser) Feed(r proto.Role, data []byte, t time.Time) {
	if r == proto.Client {
		p.starting = string(data) == "STARTTLS\r\n"
		p.out.Emit(&proto.Call{Proto: "line", TS: t, Method: strings.TrimSpace(string(data)), Status: "OK"})
		return
	}
	if p.starting {
		p.out.Upgrade(proto.SwitchTLS)
	}
}
func (p *lineParser) Gap(proto.Role, int)            {}
func (p *lineParser) End(proto.EndReason, time.Time) {}

// TestStartTLS: a protocol's switch to TLS marks the flow encrypted (and
// its JSON says so); the TLS bytes after it make no calls.
func TestStartTLS(t *testing.T) {
	h := newHarness(dissect.Options{Protocols: []proto.Protocol{lineProto{}, http1.Protocol{}}})
	c := h.conn("10.0.0.2:51014", "10.0.0.9:25")
	c.Handshake()
	c.Send(true, []byte("HELLO\r\n"))
	c.Send(false, []byte("250 hi\r\n"))
	c.Send(true, []byte("STARTTLS\r\n"))
	c.Send(false, []byte("220 go ahead\r\n"))
	c.Send(true, []byte("\x16\x03\x01\x00\x05hello"))
	c.Send(false, []byte("\x16\x03\x03\x00\x05world"))
	c.Close()
	h.finish()
	if len(h.calls) != 2 || len(h.flows) != 1 {
		t.Fatalf("calls %+v flows %+v", h.calls, h.flows)
	}
	f := h.flows[0]
	if !f.Encrypted || f.Upgraded != proto.SwitchTLS || f.Proto != "line" || !strings.Contains(string(f.AppendJSON(nil)), `"encrypted":true`) {
		t.Errorf("flow %+v: want line, encrypted after STARTTLS", f)
	}
}

// TestEstablishedPacketAllocs proves that a packet of an established
// connection that carries no new data (an ACK) goes through the engine
// without allocating.
func TestEstablishedPacketAllocs(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51008", "10.0.0.9:8080")
	c.Handshake()
	c.Send(true, []byte(req))
	c.Send(false, []byte(resp))
	ack := synth.Frame(gopacketBuf(), c.T, c.Client.Addr(), c.Server.Addr(),
		&layers.TCP{SrcPort: 51008, DstPort: 8080, ACK: true, Seq: 1001 + uint32(len(req)), Ack: 5001 + uint32(len(resp)), Window: 512}, nil)
	allocs := testing.AllocsPerRun(1000, func() { h.e.Packet(&ack) })
	if allocs != 0 {
		t.Errorf("%v allocations per ACK of an established connection, want 0", allocs)
	}
	h.finish()
}

func gopacketBuf() gopacket.SerializeBuffer { return gopacket.NewSerializeBuffer() }

// TestMaxFlows opens far more connections and UDP flows than MaxFlows, none
// ever closing, as a scan would: the engine ends the least recently active
// early, counts them, and still reports every request.
func TestMaxFlows(t *testing.T) {
	h := newHarness(dissect.Options{MaxFlows: 50})
	for i := range 500 {
		c := h.conn(fmt.Sprintf("10.2.%d.%d:%d", i/200, i%200, 30000+i), "10.0.0.9:8080")
		c.T = start.Add(time.Duration(i) * time.Millisecond)
		c.Handshake()
		c.Send(true, []byte("GET /scan HTTP/1.1\r\n\r\n"))
		h.emit(synth.Datagram(start.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("10.3.0.1:%d", 20000+i), "10.0.0.53:53",
			[]byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01")))
	}
	st := h.finish()
	if st.Evicted < 2*(500-50) || st.Evicted > 2*500 {
		t.Errorf("evicted %d flows, want about %d", st.Evicted, 2*450)
	}
	byErr := map[string]int{}
	for _, c := range h.calls {
		byErr[c.Proto+" "+c.Error]++
	}
	if byErr["http no response: connection idle"] < 450 || byErr["http no response: connection idle"]+byErr["http no response: capture ended"] != 500 ||
		byErr["dns no response"] != 500 {
		t.Errorf("calls by error: %v", byErr)
	}
	if len(h.flows) != 1000 {
		t.Errorf("%d flows reported, want 1000", len(h.flows))
	}
}

// TestPortsAreHints runs protocols on each other's ports: HTTP to port 53
// and DNS over TCP to port 8080. Detection goes by payload.
func TestPortsAreHints(t *testing.T) {
	h := newHarness(dissect.Options{})
	c := h.conn("10.0.0.2:51010", "10.0.0.9:53")
	c.Handshake()
	c.Send(true, []byte(req))
	c.Send(false, []byte(resp))
	c.Close()
	q := []byte("\x00\x21\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01")
	a := []byte("\x00\x31\xab\xcd\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22")
	d := h.conn("10.0.0.2:51011", "10.0.0.9:8080")
	d.Handshake()
	d.Send(true, q)
	d.Send(false, a)
	d.Close()
	h.finish()
	got := map[string]string{}
	for _, call := range h.calls {
		got[call.Proto] = fmt.Sprintf("%d %s %s %s", call.Dst.Port, call.Method, call.Path, call.Status)
	}
	if got["http"] != "53 GET /api/cart 200" || got["dns"] != "8080 A www.example.com NOERROR" {
		t.Errorf("calls %v", got)
	}
}

// TestRecentBound closes connections faster than they linger for their
// trailing packets: the ended ones are reported early, each exactly once.
func TestRecentBound(t *testing.T) {
	h := newHarness(dissect.Options{MaxFlows: 20})
	for i := range 300 {
		c := h.conn(fmt.Sprintf("10.4.0.1:%d", 10000+i), "10.0.0.9:8080")
		c.T = start.Add(time.Duration(i) * time.Millisecond)
		c.Handshake()
		c.Send(true, []byte(req))
		c.Send(false, []byte(resp))
		c.Close()
	}
	st := h.finish()
	ports := map[uint16]int{}
	for _, f := range h.flows {
		ports[f.Src.Port]++
	}
	if len(h.calls) != 300 || len(h.flows) != 300 || len(ports) != 300 || st.Flows["tcp"] != 300 || st.Evicted != 0 {
		t.Errorf("%d calls, %d flows for %d ports, stats %v evicted %d", len(h.calls), len(h.flows), len(ports), st.Flows, st.Evicted)
	}
}

// TestRegistry: every protocol dissect dissects is registered with proto,
// in All's order, and describes itself.
func TestRegistry(t *testing.T) {
	var names []string
	for _, p := range dissect.All() {
		names = append(names, p.Name())
		if _, ok := p.(proto.Describer); !ok {
			t.Errorf("%s does not describe its calls (proto.Describer)", p.Name())
		}
		if proto.Described(p.Name()).Summary == "" {
			t.Errorf("%s: no summary registered", p.Name())
		}
	}
	if got := proto.Registered(); !slices.Equal(got[:min(len(got), len(names))], names) {
		t.Errorf("registered %v, want %v first", got, names)
	}
}
