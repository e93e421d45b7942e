package agentapi

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/source"
)

// maxSelectHosts bounds the addresses a PCAP request names to narrow what
// an agent sends; a selection of more hosts is asked for whole and
// narrowed by the client.
const maxSelectHosts = 64

// maxAnswer bounds the JSON answers (stats, segments) read from an agent.
const maxAnswer = 64 << 20

// MaxFlows is ClientOptions.MaxFlows when it is not set.
const MaxFlows = 1 << 20

// ClientOptions configure a Client.
type ClientOptions struct {
	// URL is the agent's base URL (http://10.0.0.5:8899).
	URL string
	// Token is the agents' bearer token.
	Token string
	// HTTP is the client used; default one without a timeout (streams are
	// long; every call takes a context).
	HTTP *http.Client
	// StallTimeout ends a request whose answer has not begun, or whose
	// stream has brought nothing, for this long: an agent that hangs
	// cannot hold a question. Default 30s.
	StallTimeout time.Duration
	// MaxFlows bounds the flows read from one agent for one question (a
	// summary each, about 200 bytes): an agent that sends more is cut off
	// with an error rather than allowed to fill the hub's memory. Default
	// MaxFlows.
	MaxFlows int
}

// Client reads an agent's data over its API. It implements source.Source
// and source.Refresher: Refresh asks the agent for its statistics and
// segments, Flows and Packets stream what a question needs.
type Client struct {
	o        ClientOptions
	base     *url.URL
	snapshot string // read this snapshot rather than the store

	mu    sync.Mutex
	stats Stats
	segs  []segstore.Segment
}

// NewClient returns a client of the agent at o.URL. The URL must be http
// or https, without user information, query or fragment.
func NewClient(o ClientOptions) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("agent URL %q: %w", o.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("agent URL %q: want http(s)://host:port", o.URL)
	}
	if o.Token == "" {
		return nil, errors.New("agent client: no token")
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 30 * time.Second
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = MaxFlows
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &Client{o: o, base: u}, nil
}

// URL returns the agent's base URL.
func (c *Client) URL() string { return c.base.String() }

// get sends an authenticated GET and checks the status.
func (c *Client) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	u := *c.base
	u.Path += path
	if c.snapshot != "" && path != "/v1/stats" {
		if q == nil {
			q = url.Values{}
		}
		q.Set("snapshot", c.snapshot)
	}
	u.RawQuery = q.Encode()
	// The request lives until its body is closed; a watchdog cancels it
	// when nothing arrives for StallTimeout.
	rctx, cancel := context.WithCancelCause(ctx)
	w := &watchdog{cancel: cancel, every: c.o.StallTimeout}
	w.timer = time.AfterFunc(w.every, w.fire)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		w.stop()
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.o.Token)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		w.stop()
		if cause := context.Cause(rctx); errors.Is(cause, errStalled) {
			err = fmt.Errorf("%w (%s)", cause, c.base.Host)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer w.stop()
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	w.timer.Reset(w.every)
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, ctx: rctx}
	return resp, nil
}

// errStalled is the cause of a request the watchdog ended.
var errStalled = errors.New("the agent sent nothing for too long")

// watchdog cancels a request that makes no progress.
type watchdog struct {
	cancel context.CancelCauseFunc
	timer  *time.Timer
	every  time.Duration
}

func (w *watchdog) fire() { w.cancel(fmt.Errorf("%w (%s)", errStalled, w.every)) }

func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// watchedBody rearms the watchdog with every read that brings bytes, and
// says why a read failed when the watchdog ended it.
type watchedBody struct {
	io.ReadCloser
	w   *watchdog
	ctx context.Context
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.timer.Reset(b.w.every)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); errors.Is(cause, errStalled) {
			err = cause
		}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	b.w.stop()
	return err
}

// StatusError is an agent's answer other than success.
type StatusError struct {
	Code    int
	Status  string
	Message string // the agent's, when it gave one
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("agent answered %s: %s", e.Status, e.Message)
	}
	return "agent answered " + e.Status
}

// statusError reads an error answer: the agent's message when it gave one.
func statusError(resp *http.Response) error {
	var e struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
	if json.Unmarshal(b, &e) == nil {
		se.Message = e.Error
	}
	return se
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.get(ctx, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Refresh implements source.Refresher: it reads the agent's statistics and
// segments, and reports whether the segments changed.
func (c *Client) Refresh(ctx context.Context) (bool, error) {
	var st Stats
	if err := c.getJSON(ctx, "/v1/stats", &st); err != nil {
		return false, err
	}
	var segs []segstore.Segment
	if err := c.getJSON(ctx, "/v1/segments", &segs); err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := !slices.EqualFunc(segs, c.segs, sameSegment)
	c.stats, c.segs = st, segs
	return changed, nil
}

// sameSegment compares what the hub uses of a segment (not its path).
func sameSegment(a, b segstore.Segment) bool {
	return a.Seq == b.Seq && a.LinkType == b.LinkType && a.Packets == b.Packets && a.First.Equal(b.First) &&
		a.Last.Equal(b.Last) && a.Closed == b.Closed
}

func (c *Client) state() (Stats, []segstore.Segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats, c.segs
}

// Node returns the agent's node name, once it answered.
func (c *Client) Node() string {
	st, _ := c.state()
	return st.Node
}

// Name implements source.Source: the node, else the agent's address.
func (c *Client) Name() string {
	if n := c.Node(); n != "" {
		return n
	}
	return c.base.Host
}

// Bounds implements source.Source.
func (c *Client) Bounds() (first, last time.Time) {
	_, segs := c.state()
	return source.SegmentBounds(segs)
}

func window(from, to time.Time) url.Values {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	return q
}

// Flows implements source.Source: the agent's flows of [from, to), its
// per-segment pieces summed.
func (c *Client) Flows(ctx context.Context, from, to time.Time) ([]flowindex.Summary, error) {
	resp, err := c.get(ctx, "/v1/flows", window(from, to))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	set := source.NewFlowSet()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 0; sc.Scan(); n++ {
		if n == c.o.MaxFlows {
			return nil, fmt.Errorf("flows from %s: more than %d in the window: narrow the window", c.Name(), c.o.MaxFlows)
		}
		var fl Flow
		if err := json.Unmarshal(sc.Bytes(), &fl); err != nil {
			// A stream cut by the context or the watchdog hands its last,
			// partial line to Scan: say why it was cut, not that the
			// line was short.
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			} else if cause := context.Cause(resp.Request.Context()); errors.Is(cause, errStalled) {
				err = cause
			}
			return nil, fmt.Errorf("flows from %s: %w", c.Name(), err)
		}
		p, ok := parseProto(fl.Proto)
		src, err1 := netip.ParseAddrPort(fl.Src)
		dst, err2 := netip.ParseAddrPort(fl.Dst)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("flows from %s: a flow of %q %q→%q", c.Name(), fl.Proto, fl.Src, fl.Dst)
		}
		piece := segstore.Flow{Proto: p, Src: src, Dst: dst, First: fl.First, Last: fl.Last, Packets: fl.Packets, Bytes: fl.Bytes,
			Flags: [2]uint8{parseFlags(fl.Flags[0]), parseFlags(fl.Flags[1])}, PayloadUnknown: fl.Payload == nil}
		if fl.Payload != nil {
			piece.Payload = *fl.Payload
		}
		set.Add(&piece)
		set.SetOpaque(p, src, dst, fl.TLS)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("flows from %s: %w", c.Name(), err)
	}
	if e := resp.Trailer.Get("Wirescope-Error"); e != "" {
		return nil, fmt.Errorf("flows from %s: the agent stopped: %s", c.Name(), e)
	}
	return set.Summaries(), nil
}

// Packets implements source.Source: the agent streams the packets of
// [from, to) as a capture file, of the selected flows' hosts when they are
// few (the selection itself is applied here).
func (c *Client) Packets(ctx context.Context, from, to time.Time, sel *flowindex.Selector) (capture.Source, error) {
	q := window(from, to)
	if sel != nil {
		if sel.Len() == 0 {
			return source.Select(emptySource{}, nil), nil
		}
		if hosts := sel.Hosts(); len(hosts) <= maxSelectHosts {
			for _, h := range hosts {
				q.Add("ip", h.String())
			}
		}
	}
	resp, err := c.get(ctx, "/v1/pcap", q)
	if err != nil {
		return nil, err
	}
	r, err := capture.NewReader(c.Name(), resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("packets from %s: %w", c.Name(), err)
	}
	return source.Select(&stream{File: r, resp: resp, name: c.Name()}, sel), nil
}

// stream is a capture read from an HTTP answer: at its end, the trailers
// say whether the agent sent everything.
type stream struct {
	*capture.File
	resp *http.Response
	name string
}

func (s *stream) Next(p *capture.Packet) error {
	err := s.File.Next(p)
	if err == io.EOF {
		if e := s.resp.Trailer.Get("Wirescope-Error"); e != "" {
			return fmt.Errorf("packets from %s: the agent stopped: %s", s.name, e)
		}
	}
	return err
}

func (s *stream) Close() error {
	s.File.Close()
	return s.resp.Body.Close()
}

// emptySource is a source of no packets.
type emptySource struct{}

func (emptySource) Next(*capture.Packet) error  { return io.EOF }
func (emptySource) Warnings() []capture.Warning { return nil }
func (emptySource) Name() string                { return "no packets" }
func (emptySource) Close() error                { return nil }

// Count implements source.Source: the packets of the segments in the
// window, as the agent last reported them.
func (c *Client) Count(from, to time.Time) uint64 {
	_, segs := c.state()
	return source.SegmentCount(segs, from, to)
}

// LinkTypes implements source.Source.
func (c *Client) LinkTypes(from, to time.Time) []layers.LinkType {
	_, segs := c.state()
	return source.SegmentLinkTypes(segs, from, to)
}

// Status implements source.Source: the node, what it holds and what its
// capture lost.
func (c *Client) Status(context.Context) source.Status {
	st, _ := c.state()
	p := source.Part{Name: c.Name(), Kind: "agent", Node: st.Node, Packets: st.Store.Packets, Bytes: st.Store.Bytes,
		Drops: st.Store.Dropped, State: source.StateUp}
	p.First, p.Last = c.Bounds()
	for _, i := range st.Interfaces {
		p.Drops += i.Drops
	}
	if st.Store.LastError != "" {
		p.Warnings = append(p.Warnings, "store: "+st.Store.LastError)
	}
	if st.Store.Full {
		p.Warnings = append(p.Warnings, "the agent's disk is full: packets are being dropped")
	}
	p.TLS = tlsCoverage(st.Capture)
	return source.Status{Parts: []source.Part{p}}
}

// Fingerprint implements source.Source: the node and its segments.
func (c *Client) Fingerprint() string {
	st, segs := c.state()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", st.Node)
	for _, g := range segs {
		fmt.Fprintf(h, "%d %d %d %d %d\n", g.Seq, g.LinkType, g.Packets, g.First.UnixNano(), g.Last.UnixNano())
	}
	return "agent " + hex.EncodeToString(h.Sum(nil))
}

func parseProto(s string) (layers.IPProtocol, bool) {
	if p, ok := protoNames[s]; ok {
		return p, true
	}
	var n uint8
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil {
		return layers.IPProtocol(n), true
	}
	return 0, false
}

// parseFlags reads the flag names flagNames writes.
func parseFlags(s string) uint8 {
	var f uint8
	for name := range strings.SplitSeq(s, ",") {
		if name == "" {
			continue
		}
		for bit := uint8(1); bit != 0; bit <<= 1 {
			if flagNames(bit) == name {
				f |= bit
			}
		}
	}
	return f
}

// ForSnapshot returns a client reading the agent's snapshot name instead
// of its store (not refreshed yet).
func (c *Client) ForSnapshot(name string) *Client {
	return &Client{o: c.o, base: c.base, snapshot: name}
}

// CreateSnapshot implements source.Snapshotter: it freezes [from, to) on
// the agent under name.
func (c *Client) CreateSnapshot(ctx context.Context, name string, from, to time.Time) ([]source.SnapshotInfo, error) {
	snap, err := c.createSnapshot(ctx, name, from, to)
	if err != nil {
		return nil, err
	}
	return []source.SnapshotInfo{c.info(snap)}, nil
}

func (c *Client) info(s segstore.Snapshot) source.SnapshotInfo {
	return source.SnapshotInfo{Name: s.Name, Part: c.Name(), From: s.From, To: s.To, Created: s.Created, Segments: len(s.Segments)}
}

func (c *Client) createSnapshot(ctx context.Context, name string, from, to time.Time) (segstore.Snapshot, error) {
	body, _ := json.Marshal(SnapshotRequest{Name: name, From: stamp(from), To: stamp(to)})
	u := *c.base
	u.Path += "/v1/snapshots"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(string(body)))
	if err != nil {
		return segstore.Snapshot{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.o.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return segstore.Snapshot{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return segstore.Snapshot{}, statusError(resp)
	}
	var snap segstore.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(&snap); err != nil {
		return snap, err
	}
	return snap, nil
}

// stamp writes a time for the agent; zero is unbounded ("").
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Snapshots implements source.Snapshotter.
func (c *Client) Snapshots(ctx context.Context) ([]source.SnapshotInfo, error) {
	var snaps []segstore.Snapshot
	if err := c.getJSON(ctx, "/v1/snapshots", &snaps); err != nil {
		return nil, err
	}
	out := make([]source.SnapshotInfo, len(snaps))
	for i, s := range snaps {
		out[i] = c.info(s)
	}
	return out, nil
}

// OpenSnapshot implements source.Snapshotter: a client of the agent's
// snapshot, refreshed; source.ErrNoSnapshot when the agent has none of
// that name.
func (c *Client) OpenSnapshot(ctx context.Context, name string) (source.Source, error) {
	s := c.ForSnapshot(name)
	if _, err := s.Refresh(ctx); err != nil {
		if se := (*StatusError)(nil); errors.As(err, &se) && se.Code == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %q on %s", source.ErrNoSnapshot, name, c.Name())
		}
		return nil, err
	}
	return s, nil
}

// DeleteSnapshot implements source.Snapshotter: it deletes the agent's
// snapshot name; one it does not hold is not an error.
func (c *Client) DeleteSnapshot(ctx context.Context, name string) error {
	u := *c.base
	u.Path += "/v1/snapshots/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.o.Token)
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotFound {
		return statusError(resp)
	}
	return nil
}

// tlsCoverage is what the agent says of its TLS probes, for the hub; nil
// from an agent that says nothing of them.
func tlsCoverage(c Capture) *source.TLSCoverage {
	if c.TLSPlaintext == "" {
		return nil
	}
	cov := &source.TLSCoverage{State: c.TLSPlaintext}
	t := c.TLS
	if t == nil {
		return cov
	}
	cov.Dropped = t.Counters.RingFull + t.Counters.OverRate + t.Counters.ReadFaults + t.WriteErrors
	cov.LostBytes = t.Counters.LostBytes
	for _, p := range t.Processes {
		for _, l := range p.Libraries {
			cov.Processes = append(cov.Processes, source.TLSProcess{PID: p.PID, Comm: p.Comm, Exited: !p.Exited.IsZero(),
				Library: l.Name, Probed: l.Probed, Reason: l.Reason})
		}
	}
	return cov
}
