// Package agentapi is the node agent's HTTP API, which the hub calls to
// pull what an agent captured: flows in a time range, the PCAP of the
// matching packets, statistics and snapshots, and Prometheus metrics.
//
// Every request but GET /healthz must carry the bearer token. Answers are
// streamed: flows as JSON lines and packets as a capture file, both with
// trailers saying how the stream ended (Wirescope-Count, Wirescope-Skipped,
// Wirescope-Error). Readers never hold up capture: they read segment files
// and indexes without the store's lock (taking it only to copy the open
// segment's flows), and a reader that takes nothing for StallTimeout is cut
// off, so that it cannot keep deleted segments' disk space for long.
//
// Endpoints:
//
//	GET    /healthz                 "ok" (no token)
//	GET    /metrics                 Prometheus metrics
//	GET    /v1/stats                capture and store statistics (JSON)
//	GET    /v1/segments             the segments (JSON)
//	GET    /v1/flows?FILTERS&limit=N   flows, one JSON object per line
//	GET    /v1/pcap?FILTERS&max_packets=N   the matching packets, time-ordered
//	GET    /v1/snapshots            the snapshots (JSON)
//	POST   /v1/snapshots            {"name","from","to"} freezes a time range
//	DELETE /v1/snapshots/NAME
//
// /v1/segments, /v1/flows and /v1/pcap read one snapshot's segments instead
// of the store's with snapshot=NAME (404 when there is none).
//
// FILTERS are from and to (RFC 3339, or a negative duration back from now),
// and any of ip, port, proto (tcp, udp, icmp or a number), iface, pid,
// comm, pod_uid, container_id; ip and port may repeat (any of them). A flow
// matches when either side matches each filter given. Kubernetes names are
// the hub's to resolve: it turns a namespace, workload or pod into the
// addresses and pod UIDs it asks agents about.
package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/capture"
	"github.com/wirescope/wirescope/capture/flowindex"
	"github.com/wirescope/wirescope/capture/segstore"
	"github.com/wirescope/wirescope/capture/tlsplain"
	"github.com/wirescope/wirescope/internal/bearer"
	"github.com/wirescope/wirescope/internal/when"
)

// Capture is what the capturing side reports.
type Capture struct {
	Interfaces []Interface `json:"interfaces"`
	// Duplicates counts packets seen again on another interface and
	// stored once.
	Duplicates uint64 `json:"duplicates"`
	// Attribution says whether flows are attributed to processes (eBPF),
	// and if not, why.
	Attribution   string `json:"attribution"`
	AttributionOn bool   `json:"attribution_on"`
	// TLSPlaintext says whether TLS plaintext is read ("on"), and if not,
	// why; TLS is what it covers.
	TLSPlaintext string             `json:"tls_plaintext,omitempty"`
	TLS          *tlsplain.Coverage `json:"tls,omitempty"`
}

// Interface is one interface's kernel counters (TPACKET statistics).
type Interface struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Drops   uint64 `json:"drops"`
}

// Options configure the API.
type Options struct {
	Store *segstore.Store
	// Node names the node the agent captures on (the hub names the
	// traffic's capture point by it); default the host name.
	Node string
	// Capture reports the capture side's state; nil reports nothing.
	Capture func() Capture
	// OpaqueTLS says why the TLS plaintext of a TCP connection between
	// these processes (the opener's first) cannot be read, "" if it can
	// or nothing is known; nil says nothing.
	OpaqueTLS func(procs [2]segstore.Proc) string
	// Token is the bearer token every request but /healthz must carry.
	Token  string
	Logger *slog.Logger
	// StallTimeout cuts off a reader that takes no bytes for this long.
	// Default 30s.
	StallTimeout time.Duration
	// MaxFlows bounds the flows a PCAP request may select (their keys are
	// held in memory). Default 1<<20.
	MaxFlows int
	// Now is the clock relative times count back from; default time.Now.
	Now func() time.Time
}

type api struct {
	o Options
}

// Handler returns the API's handler. It refuses an empty token.
func Handler(o Options) (http.Handler, error) {
	if o.Token == "" {
		return nil, errors.New("agent API: a bearer token is required")
	}
	if o.Store == nil {
		return nil, errors.New("agent API: no store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 30 * time.Second
	}
	if o.MaxFlows <= 0 {
		o.MaxFlows = 1 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Capture == nil {
		o.Capture = func() Capture { return Capture{} }
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	a := &api{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("GET /metrics", metricsHandler(o))
	mux.HandleFunc("GET /v1/stats", a.stats)
	mux.HandleFunc("GET /v1/segments", a.segments)
	mux.HandleFunc("GET /v1/flows", a.flows)
	mux.HandleFunc("GET /v1/pcap", a.pcap)
	mux.HandleFunc("GET /v1/snapshots", a.snapshots)
	mux.HandleFunc("POST /v1/snapshots", a.snapshot)
	mux.HandleFunc("DELETE /v1/snapshots/{name}", a.deleteSnapshot)
	return bearer.Require(o.Token, o.Logger, mux, "/healthz"), nil
}

// Stats is the answer of /v1/stats.
type Stats struct {
	Node string `json:"node"`
	Capture
	Store segstore.Stats `json:"store"`
}

func (a *api) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Stats{Node: a.o.Node, Capture: a.o.Capture(), Store: a.o.Store.Stats()})
}

func (a *api) segments(w http.ResponseWriter, r *http.Request) {
	if name := r.URL.Query().Get("snapshot"); name != "" {
		_, segs, err := a.o.Store.SnapshotSegments(name)
		if err != nil {
			failSnapshot(w, err)
			return
		}
		if segs == nil {
			segs = []segstore.Segment{}
		}
		writeJSON(w, http.StatusOK, segs)
		return
	}
	writeJSON(w, http.StatusOK, a.o.Store.Segments())
}

// failSnapshot answers a snapshot that cannot be read: 404 when there is
// none of that name.
func failSnapshot(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, segstore.ErrNoSnapshot) {
		status = http.StatusNotFound
	}
	fail(w, status, "%v", err)
}

// view is what a request reads: the store, or one of its snapshots
// (?snapshot=NAME).
type view struct {
	snap []segstore.Segment // nil: the store
}

func (a *api) view(w http.ResponseWriter, r *http.Request) (view, bool) {
	name := r.URL.Query().Get("snapshot")
	if name == "" {
		return view{}, true
	}
	_, segs, err := a.o.Store.SnapshotSegments(name)
	if err != nil {
		failSnapshot(w, err)
		return view{}, false
	}
	if segs == nil {
		segs = []segstore.Segment{}
	}
	return view{snap: segs}, true
}

func (a *api) eachFlow(v view, from, to time.Time, fn func(segstore.Segment, *segstore.Flow) bool) error {
	if v.snap != nil {
		return segstore.EachSnapshotFlow(v.snap, from, to, fn)
	}
	// The flows that appeared since the agent's housekeeping last asked
	// (it does every second) are named now: a flow's processes, and what
	// they say (why its TLS is opaque, the pid and comm filters), are
	// known as soon as the flow is.
	a.o.Store.Attribute()
	return a.o.Store.EachFlow(from, to, fn)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// Filter selects flows. A zero field matches everything; a flow matches
// when, for each field given, one of its sides matches.
type Filter struct {
	From, To    time.Time
	IPs         []netip.Addr
	Ports       []uint16
	Proto       layers.IPProtocol
	HasProto    bool
	Iface       string
	PID         uint32
	Comm        string
	PodUID      string
	ContainerID string
}

// IsZero reports whether the filter selects by nothing but time.
func (f Filter) IsZero() bool {
	return len(f.IPs) == 0 && len(f.Ports) == 0 && !f.HasProto && f.Iface == "" && f.PID == 0 && f.Comm == "" &&
		f.PodUID == "" && f.ContainerID == ""
}

// Match reports whether a flow matches the filter (time aside).
func (f Filter) Match(fl *segstore.Flow) bool {
	if len(f.IPs) > 0 && !slices.Contains(f.IPs, fl.Src.Addr().Unmap()) && !slices.Contains(f.IPs, fl.Dst.Addr().Unmap()) {
		return false
	}
	if len(f.Ports) > 0 && !slices.Contains(f.Ports, fl.Src.Port()) && !slices.Contains(f.Ports, fl.Dst.Port()) {
		return false
	}
	if f.HasProto && fl.Proto != f.Proto {
		return false
	}
	if f.Iface != "" && fl.Interface != f.Iface {
		return false
	}
	either := func(ok func(p segstore.Proc) bool) bool { return ok(fl.Procs[0]) || ok(fl.Procs[1]) }
	if f.PID != 0 && !either(func(p segstore.Proc) bool { return p.PID == f.PID }) {
		return false
	}
	if f.Comm != "" && !either(func(p segstore.Proc) bool { return p.Comm == f.Comm }) {
		return false
	}
	if f.PodUID != "" && !either(func(p segstore.Proc) bool { return p.PodUID == f.PodUID }) {
		return false
	}
	if f.ContainerID != "" && !either(func(p segstore.Proc) bool { return p.ContainerID == f.ContainerID }) {
		return false
	}
	return true
}

var protoNames = map[string]layers.IPProtocol{"tcp": layers.IPProtocolTCP, "udp": layers.IPProtocolUDP,
	"icmp": layers.IPProtocolICMPv4, "icmpv6": layers.IPProtocolICMPv6, "sctp": layers.IPProtocolSCTP}

// ParseFilter reads a filter from query parameters; now is what relative
// times count back from. Its errors are sentences for the caller.
func ParseFilter(q map[string][]string, now time.Time) (Filter, error) {
	var f Filter
	known := map[string]bool{"from": true, "to": true, "ip": true, "port": true, "proto": true, "iface": true, "pid": true,
		"comm": true, "pod_uid": true, "container_id": true, "limit": true, "max_packets": true, "snapshot": true}
	for k := range q {
		if !known[k] {
			return f, fmt.Errorf("unknown parameter %q (filters: from, to, ip, port, proto, iface, pid, comm, pod_uid, container_id)", k)
		}
	}
	one := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	var err error
	if f.From, err = ParseTime(one("from"), now); err != nil {
		return f, fmt.Errorf("from: %w", err)
	}
	if f.To, err = ParseTime(one("to"), now); err != nil {
		return f, fmt.Errorf("to: %w", err)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, fmt.Errorf("from (%s) must be before to (%s)", f.From.Format(time.RFC3339Nano), f.To.Format(time.RFC3339Nano))
	}
	for _, s := range q["ip"] {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return f, fmt.Errorf("ip %q is not an IP address", s)
		}
		f.IPs = append(f.IPs, ip.Unmap())
	}
	for _, s := range q["port"] {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			return f, fmt.Errorf("port %q is not a port number (1-65535)", s)
		}
		f.Ports = append(f.Ports, uint16(p))
	}
	if s := strings.ToLower(one("proto")); s != "" {
		p, ok := protoNames[s]
		if n, err := strconv.ParseUint(s, 10, 8); err == nil {
			p, ok = layers.IPProtocol(n), true
		}
		if !ok {
			return f, fmt.Errorf("proto %q: want tcp, udp, icmp, icmpv6, sctp or an IP protocol number", s)
		}
		f.Proto, f.HasProto = p, true
	}
	if s := one("pid"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return f, fmt.Errorf("pid %q is not a process ID", s)
		}
		f.PID = uint32(n)
	}
	f.Iface, f.Comm, f.PodUID, f.ContainerID = one("iface"), one("comm"), one("pod_uid"), one("container_id")
	return f, nil
}

// ParseTime reads a time given as RFC 3339, as a duration back from now
// (-15m) or as "now"; "" is unbounded (zero).
func ParseTime(s string, now time.Time) (time.Time, error) { return when.Arg(s, now) }

// Flow is a flow as /v1/flows streams it.
type Flow struct {
	Segment uint64    `json:"segment"`
	Proto   string    `json:"proto"`
	Src     string    `json:"src"`
	Dst     string    `json:"dst"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Packets [2]uint64 `json:"packets"`
	Bytes   [2]uint64 `json:"bytes"`
	// Payload is the transport payload each way; absent where the
	// agent's index did not count it (segstore.Flow.PayloadUnknown).
	Payload   *[2]uint64    `json:"payload,omitempty"`
	Flags     [2]string     `json:"tcp_flags,omitzero"`
	Interface string        `json:"iface,omitempty"`
	SrcProc   segstore.Proc `json:"src_proc,omitzero"`
	DstProc   segstore.Proc `json:"dst_proc,omitzero"`
	// TLS says why the connection's TLS plaintext cannot be read here
	// (Options.OpaqueTLS), if the agent knows.
	TLS string `json:"tls,omitempty"`
}

// flagNames spells flowindex flags.
func flagNames(f uint8) string {
	var out []string
	for _, n := range []struct {
		bit  uint8
		name string
	}{{flowindex.FlagSYN, "SYN"}, {flowindex.FlagSYNACK, "SYN-ACK"}, {flowindex.FlagFIN, "FIN"}, {flowindex.FlagRST, "RST"}} {
		if f&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

func protoName(p layers.IPProtocol) string {
	for name, n := range protoNames {
		if n == p {
			return name
		}
	}
	return strconv.Itoa(int(p))
}

// stallWriter sets a write deadline before each write, so a reader that
// stops reading is cut off after the stall timeout.
type stallWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	n     int64
	err   error // the first write error
}

func (s *stallWriter) Write(b []byte) (int, error) {
	s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	n, err := s.w.Write(b)
	s.n += int64(n)
	if err != nil && s.err == nil {
		s.err = err
	}
	return n, err
}

func (s *stallWriter) Flush() error {
	s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	err := s.rc.Flush()
	if err != nil && s.err == nil {
		s.err = err
	}
	return err
}

func (a *api) stream(w http.ResponseWriter, contentType string) *stallWriter {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Trailer", "Wirescope-Count, Wirescope-Skipped, Wirescope-Error")
	w.WriteHeader(http.StatusOK)
	return &stallWriter{w: w, rc: http.NewResponseController(w), stall: a.o.StallTimeout}
}

func (a *api) flows(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query(), a.o.Now())
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	limit := 0
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 {
			fail(w, http.StatusBadRequest, "limit %q: want a positive number", s)
			return
		}
	}
	v, ok := a.view(w, r)
	if !ok {
		return
	}
	out := a.stream(w, "application/x-ndjson")
	enc := json.NewEncoder(out)
	n := 0
	var werr error
	err = a.eachFlow(v, f.From, f.To, func(seg segstore.Segment, fl *segstore.Flow) bool {
		if r.Context().Err() != nil || !f.Match(fl) {
			return r.Context().Err() == nil
		}
		v := Flow{Segment: seg.Seq, Proto: protoName(fl.Proto), Src: fl.Src.String(), Dst: fl.Dst.String(), First: fl.First,
			Last: fl.Last, Packets: fl.Packets, Bytes: fl.Bytes, Interface: fl.Interface, SrcProc: fl.Procs[0], DstProc: fl.Procs[1]}
		if !fl.PayloadUnknown {
			v.Payload = &fl.Payload
		}
		if fl.Proto == layers.IPProtocolTCP {
			v.Flags = [2]string{flagNames(fl.Flags[0]), flagNames(fl.Flags[1])}
			if a.o.OpaqueTLS != nil {
				v.TLS = a.o.OpaqueTLS(fl.Procs)
			}
		}
		if werr = enc.Encode(v); werr != nil {
			return false
		}
		n++
		if n%256 == 0 {
			if werr = out.Flush(); werr != nil {
				return false
			}
		}
		return limit == 0 || n < limit
	})
	w.Header().Set("Wirescope-Count", strconv.Itoa(n))
	if err = errors.Join(err, werr, r.Context().Err()); err != nil {
		w.Header().Set("Wirescope-Error", err.Error())
		a.o.Logger.Info("flows: stream ended early", "remote", r.RemoteAddr, "flows", n, "err", err)
	}
	abortOnWriteError(out)
}

// abortOnWriteError drops the connection when writing the answer failed
// (the reader stalled past the timeout, or went away), rather than leave
// it to linger with unsent data.
func abortOnWriteError(out *stallWriter) {
	if out.err != nil {
		panic(http.ErrAbortHandler)
	}
}

func (a *api) pcap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := ParseFilter(q, a.o.Now())
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	maxPackets := 0
	if s := q.Get("max_packets"); s != "" {
		if maxPackets, err = strconv.Atoi(s); err != nil || maxPackets < 1 {
			fail(w, http.StatusBadRequest, "max_packets %q: want a positive number", s)
			return
		}
	}
	v, ok := a.view(w, r)
	if !ok {
		return
	}
	var sel *flowindex.Selector
	if !f.IsZero() {
		sel = flowindex.NewSelector()
		tooMany := false
		err := a.eachFlow(v, f.From, f.To, func(_ segstore.Segment, fl *segstore.Flow) bool {
			if f.Match(fl) {
				sel.Add(fl.Src, fl.Dst, fl.Proto)
				tooMany = sel.Len() > a.o.MaxFlows
			}
			return !tooMany && r.Context().Err() == nil
		})
		if err != nil {
			fail(w, http.StatusInternalServerError, "reading the flow indexes: %v", err)
			return
		}
		if tooMany {
			fail(w, http.StatusUnprocessableEntity, "more than %d flows match: narrow the filter or the time range", a.o.MaxFlows)
			return
		}
	}
	segs := v.snap
	if segs == nil {
		// What was written so far is to be read: flush it.
		if err := a.o.Store.Flush(); err != nil {
			a.o.Logger.Warn("pcap: flushing the store", "err", err)
		}
		segs = a.o.Store.Segments()
	}
	var links []layers.LinkType
	for _, g := range segs {
		if g.Overlaps(f.From, f.To) && !slices.Contains(links, g.LinkType) {
			links = append(links, g.LinkType)
		}
	}
	if len(links) == 0 {
		links = []layers.LinkType{layers.LinkTypeEthernet} // an empty, valid file
	}
	slices.Sort(links)
	src := segstore.Packets(segs, f.From, f.To)
	defer src.Close()
	ctype := "application/vnd.tcpdump.pcap"
	if len(links) > 1 {
		ctype = "application/x-pcapng"
	}
	out := a.stream(w, ctype)
	n, err := writePackets(r.Context(), out, src, links, sel, maxPackets)
	w.Header().Set("Wirescope-Count", strconv.Itoa(n))
	if skipped := src.Warnings(); len(skipped) > 0 {
		var msgs []string
		for _, s := range skipped {
			msgs = append(msgs, s.String())
		}
		w.Header().Set("Wirescope-Skipped", strings.Join(msgs, "; "))
	}
	if err != nil {
		w.Header().Set("Wirescope-Error", err.Error())
		a.o.Logger.Info("pcap: stream ended early", "remote", r.RemoteAddr, "packets", n, "err", err)
	}
	abortOnWriteError(out)
}

func writePackets(ctx context.Context, out *stallWriter, src capture.Source, links []layers.LinkType, sel *flowindex.Selector, maxPackets int) (int, error) {
	pw, err := capture.NewWriter(out, links, segstore.DefaultSnapLen)
	if err != nil {
		return 0, err
	}
	n := 0
	var p capture.Packet
	for {
		if n%1024 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		if err := src.Next(&p); err == io.EOF {
			break
		} else if err != nil {
			return n, err
		}
		if !slices.Contains(links, p.LinkType) || (sel != nil && !sel.Keep(&p)) {
			continue
		}
		if maxPackets > 0 && n == maxPackets {
			break
		}
		if err := pw.Write(&p); err != nil {
			return n, err
		}
		n++
	}
	if err := pw.Flush(); err != nil {
		return n, err
	}
	return n, out.Flush()
}

func (a *api) snapshots(w http.ResponseWriter, r *http.Request) {
	snaps, err := a.o.Store.Snapshots()
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if snaps == nil {
		snaps = []segstore.Snapshot{}
	}
	writeJSON(w, http.StatusOK, snaps)
}

// SnapshotRequest is the body of POST /v1/snapshots.
type SnapshotRequest struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

func (a *api) snapshot(w http.ResponseWriter, r *http.Request) {
	var req SnapshotRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "the body must be {\"name\",\"from\",\"to\"}: %v", err)
		return
	}
	now := a.o.Now()
	from, err := ParseTime(req.From, now)
	if err != nil {
		fail(w, http.StatusBadRequest, "from: %v", err)
		return
	}
	to, err := ParseTime(req.To, now)
	if err != nil {
		fail(w, http.StatusBadRequest, "to: %v", err)
		return
	}
	snap, err := a.o.Store.Snapshot(req.Name, from, to)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, segstore.ErrFull) {
			status = http.StatusInsufficientStorage
		}
		fail(w, status, "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, snap)
}

func (a *api) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := a.o.Store.DeleteSnapshot(r.PathValue("name")); err != nil {
		fail(w, http.StatusNotFound, "%v", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
