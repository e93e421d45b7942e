package agentapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/agentapi"
	"github.com/wirescope/wirescope/capture/capturetest"
	"github.com/wirescope/wirescope/capture/segstore"
)

const token = "test-token-0123456789"

var t0 = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

// fixture is a store holding generated HTTP traffic, served by the API.
type fixture struct {
	store *segstore.Store
	srv   *httptest.Server
	pkts  []capture.Packet
}

func newFixture(t *testing.T, o agentapi.Options) *fixture {
	t.Helper()
	s, err := segstore.Open(t.TempDir(), segstore.Options{SegmentBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{store: s}
	// Two servers, so that filters have something to tell apart.
	for i, server := range []string{"10.0.0.80:80", "10.0.0.90:6379"} {
		capturetest.Load{Conns: 30, Requests: 3, Server: server, Start: t0.Add(time.Duration(i) * time.Millisecond)}.Emit(func(p capture.Packet) {
			p.Data = slices.Clone(p.Data)
			f.pkts = append(f.pkts, p)
		})
	}
	slices.SortStableFunc(f.pkts, func(a, b capture.Packet) int { return a.Timestamp.Compare(b.Timestamp) })
	for i := range f.pkts {
		if err := s.Write(&f.pkts[i], "veth0"); err != nil {
			t.Fatal(err)
		}
	}
	o.Store, o.Token = s, token
	if o.Now == nil {
		o.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	h, err := agentapi.Handler(o)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestToken: every endpoint but /healthz refuses requests without the
// token, or with another one, with 401 and no body.
func TestToken(t *testing.T) {
	f := newFixture(t, agentapi.Options{})
	for _, path := range []string{"/v1/stats", "/v1/flows", "/v1/pcap", "/v1/segments", "/v1/snapshots", "/metrics"} {
		for _, tok := range []string{"", "wrong", token + "x"} {
			resp := f.get(t, path, tok)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || len(body) != 0 || resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s with token %q: %d %q", path, tok, resp.StatusCode, body)
			}
		}
		resp := f.get(t, path, token)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the token: %d", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/snapshots", strings.NewReader(`{"name":"x"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /v1/snapshots without the token: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("snapshot made without the token")
	}
	resp = f.get(t, "/healthz", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d", resp.StatusCode)
	}
	if _, err := agentapi.Handler(agentapi.Options{Store: f.store}); err == nil {
		t.Error("a handler without a token was made")
	}
}

func readFlows(t *testing.T, resp *http.Response) []agentapi.Flow {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var out []agentapi.Flow
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var fl agentapi.Flow
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, fl)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(resp.Trailer.Get("Wirescope-Count")); n != len(out) || resp.Trailer.Get("Wirescope-Error") != "" {
		t.Fatalf("trailers %v for %d flows", resp.Trailer, len(out))
	}
	return out
}

// TestFlows: flows stream as JSON lines; filters select by address, port
// and protocol, and limit stops the stream.
func TestFlows(t *testing.T) {
	f := newFixture(t, agentapi.Options{})
	all := readFlows(t, f.get(t, "/v1/flows", token))
	// A connection spanning segments has an entry per segment: sum them.
	type sums struct {
		packets [2]uint64
		flags   string
	}
	conns := map[string]*sums{}
	for _, fl := range all {
		if fl.Proto != "tcp" || fl.Interface != "veth0" {
			t.Errorf("flow %+v", fl)
		}
		c := conns[fl.Src+" "+fl.Dst]
		if c == nil {
			c = &sums{}
			conns[fl.Src+" "+fl.Dst] = c
		}
		c.packets[0] += fl.Packets[0]
		c.packets[1] += fl.Packets[1]
		c.flags += fl.Flags[0] + "," + fl.Flags[1] + ","
	}
	if len(conns) != 60 {
		t.Errorf("%d connections, want 60", len(conns))
	}
	for k, c := range conns {
		if c.packets[0] == 0 || c.packets[1] == 0 || !strings.Contains(c.flags, "SYN,") || !strings.Contains(c.flags, "SYN-ACK") || !strings.Contains(c.flags, "FIN") {
			t.Errorf("connection %s: %+v", k, c)
		}
	}
	// Every connection's payload each way is counted.
	payload := map[string][2]uint64{}
	for _, fl := range all {
		if fl.Payload == nil {
			t.Fatalf("flow %s → %s without its payload count", fl.Src, fl.Dst)
		}
		p := payload[fl.Src+" "+fl.Dst]
		payload[fl.Src+" "+fl.Dst] = [2]uint64{p[0] + fl.Payload[0], p[1] + fl.Payload[1]}
	}
	for k, p := range payload {
		if p[0] == 0 || p[1] == 0 {
			t.Errorf("connection %s: payload %v", k, p)
		}
	}
	redis := readFlows(t, f.get(t, "/v1/flows?port=6379", token))
	byIP := readFlows(t, f.get(t, "/v1/flows?ip=10.0.0.90&proto=tcp", token))
	if len(redis) == 0 || len(redis) != len(byIP) || len(redis) >= len(all) {
		t.Errorf("port=6379: %d flows, ip=10.0.0.90: %d, all: %d", len(redis), len(byIP), len(all))
	}
	for _, fl := range redis {
		if !strings.HasSuffix(fl.Dst, ":6379") {
			t.Errorf("port=6379 gave %s → %s", fl.Src, fl.Dst)
		}
	}
	if n := len(readFlows(t, f.get(t, "/v1/flows?proto=udp", token))); n != 0 {
		t.Errorf("proto=udp: %d flows", n)
	}
	if n := len(readFlows(t, f.get(t, "/v1/flows?limit=7", token))); n != 7 {
		t.Errorf("limit=7: %d flows", n)
	}
	// A window after the traffic holds nothing.
	if n := len(readFlows(t, f.get(t, "/v1/flows?from=-5m", token))); n != 0 {
		t.Errorf("from=-5m (after the traffic): %d flows", n)
	}
	for _, bad := range []string{"ip=10.0.0", "port=70000", "proto=tcpp", "from=yesterday", "from=5m", "limit=-1", "colour=red",
		"from=2026-11-21T15:00:00Z&to=2026-11-21T14:00:00Z"} {
		resp := f.get(t, "/v1/flows?"+bad, token)
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || e.Error == "" {
			t.Errorf("%s: %d %q", bad, resp.StatusCode, e.Error)
		}
	}
}

// TestFlowsAttributedWhenAsked: flows of the open segment that the
// store's housekeeping has not asked about yet are named when the API is
// asked, so a pid filter and the processes are right at once.
func TestFlowsAttributedWhenAsked(t *testing.T) {
	var asked atomic.Int64
	s, err := segstore.Open(t.TempDir(), segstore.Options{Attribute: func(_ layers.IPProtocol, local, _ netip.AddrPort) (segstore.Proc, bool) {
		asked.Add(1)
		if local.Port() == 80 {
			return segstore.Proc{PID: 4242, Comm: "nginx"}, true
		}
		return segstore.Proc{}, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	capturetest.Load{Conns: 5, Requests: 2, Server: "10.0.0.80:80", Start: t0}.Emit(func(p capture.Packet) {
		if err := s.Write(&p, "veth0"); err != nil {
			t.Fatal(err)
		}
	})
	h, err := agentapi.Handler(agentapi.Options{Store: s, Token: token, Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{store: s, srv: srv}
	if asked.Load() != 0 {
		t.Fatal("the store asked before anyone did")
	}
	flows := readFlows(t, f.get(t, "/v1/flows?pid=4242", token))
	if len(flows) != 5 {
		t.Fatalf("pid=4242: %d flows, want the 5 connections to nginx", len(flows))
	}
	for _, fl := range flows {
		if fl.DstProc.PID != 4242 || fl.DstProc.Comm != "nginx" {
			t.Errorf("flow %s → %s: server process %+v", fl.Src, fl.Dst, fl.DstProc)
		}
	}
}

// TestPCAP: the PCAP holds exactly the matching packets, in time order,
// as tshark reads them.
func TestPCAP(t *testing.T) {
	f := newFixture(t, agentapi.Options{})
	if len(f.store.Segments()) < 2 {
		t.Fatalf("vacuous: %d segments", len(f.store.Segments()))
	}
	dec := capture.NewDecoder()
	from, to := f.pkts[len(f.pkts)/3].Timestamp, f.pkts[2*len(f.pkts)/3].Timestamp
	for _, c := range []struct {
		query string
		keep  func(p *capture.Packet) bool
	}{
		{"", func(*capture.Packet) bool { return true }},
		{"port=6379", func(p *capture.Packet) bool {
			var d capture.Decoded
			return dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d) == nil && (d.SrcPort == 6379 || d.DstPort == 6379)
		}},
		{"from=" + url.QueryEscape(from.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339Nano)) + "&port=80",
			func(p *capture.Packet) bool {
				var d capture.Decoded
				return !p.Timestamp.Before(from) && p.Timestamp.Before(to) &&
					dec.Decode(p.LinkType, p.Data, p.Length, p.Timestamp, &d) == nil && (d.SrcPort == 80 || d.DstPort == 80)
			}},
	} {
		resp := f.get(t, "/v1/pcap?"+c.query, token)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %v", c.query, resp.StatusCode, err)
		}
		src, err := capture.NewReader("export", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var got []capture.Packet
		var p capture.Packet
		for src.Next(&p) == nil {
			p.Data = slices.Clone(p.Data)
			got = append(got, p)
		}
		want := 0
		for i := range f.pkts {
			if c.keep(&f.pkts[i]) {
				want++
			}
		}
		if len(got) != want || want == 0 || strconv.Itoa(len(got)) != resp.Trailer.Get("Wirescope-Count") {
			t.Errorf("%q: %d packets (trailer %q), want %d", c.query, len(got), resp.Trailer.Get("Wirescope-Count"), want)
		}
		if !slices.IsSortedFunc(got, func(a, b capture.Packet) int { return a.Timestamp.Compare(b.Timestamp) }) {
			t.Errorf("%q: not in time order", c.query)
		}
		if tshark, err := exec.LookPath("tshark"); err == nil {
			path := filepath.Join(t.TempDir(), "x.pcap")
			os.WriteFile(path, body, 0o644)
			out, err := exec.Command(tshark, "-r", path, "-T", "fields", "-e", "frame.number").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			if n := strings.Count(string(out), "\n"); n != want {
				t.Errorf("%q: tshark reads %d packets, want %d", c.query, n, want)
			}
		}
	}
}

// TestSnapshotsAndMetrics: snapshots are made, listed and deleted over
// the API; /metrics and /v1/stats report the store.
func TestSnapshotsAndMetrics(t *testing.T) {
	f := newFixture(t, agentapi.Options{Capture: func() agentapi.Capture {
		return agentapi.Capture{Interfaces: []agentapi.Interface{{Name: "veth0", Packets: 10, Drops: 2}}, Attribution: "off: test"}
	}})
	post := func(body string) *http.Response {
		req, _ := http.NewRequest("POST", f.srv.URL+"/v1/snapshots", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := post(`{"name":"incident-1","from":"2026-11-21T13:00:00Z","to":"2026-11-21T15:00:00Z"}`); r.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d", r.StatusCode)
	}
	for _, bad := range []string{`{"name":"../x"}`, `{"name":"incident-1"}`, `not json`, `{"name":"a","colour":1}`} {
		if r := post(bad); r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d", bad, r.StatusCode)
		}
	}
	resp := f.get(t, "/v1/snapshots", token)
	var snaps []segstore.Snapshot
	json.NewDecoder(resp.Body).Decode(&snaps)
	resp.Body.Close()
	if len(snaps) != 1 || snaps[0].Name != "incident-1" || len(snaps[0].Segments) != len(f.store.Segments()) {
		t.Errorf("snapshots %+v (store has %d segments)", snaps, len(f.store.Segments()))
	}
	req, _ := http.NewRequest("DELETE", f.srv.URL+"/v1/snapshots/incident-1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusNoContent {
		t.Errorf("delete: %v %v", r, err)
	}
	if r, _ := http.DefaultClient.Do(req); r.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d", r.StatusCode)
	}

	resp = f.get(t, "/metrics", token)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf("wirescope_agent_stored_packets_total %d", len(f.pkts)),
		`wirescope_agent_kernel_drops_total{iface="veth0"} 2`,
		fmt.Sprintf("wirescope_agent_segments %d", len(f.store.Segments())),
		`wirescope_agent_ebpf_attribution{status="off: test"} 0`,
		"wirescope_agent_disk_bytes ", "wirescope_agent_newest_packet_timestamp_seconds ", "go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp = f.get(t, "/v1/stats", token)
	var st agentapi.Stats
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Store.Packets != uint64(len(f.pkts)) || len(st.Interfaces) != 1 || !st.Store.Oldest.Equal(f.pkts[0].Timestamp) {
		t.Errorf("stats %+v", st)
	}
}

// TestStalledReader: a client that asks for a PCAP and reads nothing does
// not hold up writing, and is cut off after the stall timeout; one that
// goes away ends its stream.
func TestStalledReader(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, agentapi.Options{StallTimeout: 500 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// Make the export large enough to fill the socket buffers.
	big := capture.Packet{Timestamp: t0.Add(time.Second), Data: make([]byte, 60000), Length: 60000, LinkType: f.pkts[0].LinkType}
	copy(big.Data, f.pkts[0].Data[:54])
	for range 2000 {
		big.Timestamp = big.Timestamp.Add(time.Microsecond)
		if err := f.store.Write(&big, "veth0"); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/pcap HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", token)
	// Wait for the stream to start: the status line and the first bytes
	// arrive. The export (120 MB) then fills the socket buffers.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, 16)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("the export did not start: %q %v", line, err)
	}
	// Read nothing more, while a writer keeps writing packets: every write
	// must finish promptly.
	var writes atomic.Int64
	done := make(chan time.Duration)
	go func() {
		var worst time.Duration
		p := f.pkts[1]
		for i := range 3000 {
			p.Timestamp = t0.Add(2*time.Second + time.Duration(i)*time.Microsecond)
			start := time.Now()
			if err := f.store.Write(&p, "veth0"); err != nil {
				t.Error(err)
			}
			worst = max(worst, time.Since(start))
			writes.Add(1)
			if i%100 == 0 {
				f.store.Flush()
			}
		}
		done <- worst
	}()
	worst := <-done
	if worst > 250*time.Millisecond {
		t.Errorf("a write took %v while a reader stalled", worst)
	}
	// The server gives up on the stalled reader: it logs so, and the
	// connection ends after what fitted in the buffers.
	if !logs.waitFor("stream ended early", 30*time.Second) {
		t.Fatalf("the server did not give up on the stalled reader; its log:\n%s", logs.String())
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, br)
	if err != nil {
		t.Fatalf("the stalled connection was not closed by the server (read %d bytes): %v", n, err)
	}
	if n >= int64(2000*60000) {
		t.Errorf("the whole export (%d bytes) arrived: the reader never stalled", n)
	}
	t.Logf("%d writes during the stall, slowest %v; the stalled reader got %d bytes before being cut off", writes.Load(), worst, n)
}

// syncBuffer is a buffer safe for a logger and a reader at once; waitFor
// waits until it holds a string.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed by the next Write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor reports whether the buffer holds sub within timeout.
func (s *syncBuffer) waitFor(sub string, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), sub) {
			s.mu.Unlock()
			return true
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
