// Package analysis computes what the investigation tools answer from,
// below the tools: the statistics that tell a change from noise (z scores
// of two proportions and of counts, Wilson bounds), the search for the
// moment an error rate rose, the comparison of two windows of calls and
// flows into ranked evidence and a verdict, and the topology of a window
// (service map edges, workloads, who held an address).
//
// It reads the index of calls and the flows through Source and returns
// typed results; the tools render them as text within a token budget. It
// knows nothing of MCP, arguments or tokens, and its output is
// deterministic: the same data gives the same results, in the same order.
package analysis

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/index"
)

// Source is what the analyses read: the index of calls, the flows and the
// pods the server knows of (tools.Backend is one).
type Source interface {
	// Index holds the calls dissected so far.
	Index() *index.Index
	// Flows lists the L4 flows active in [from, to) matching f.
	Flows(ctx context.Context, from, to time.Time, f Filter) ([]Flow, error)
	// Pods lists the pods known, whether or not they were seen in
	// traffic; nil when none are known.
	Pods() []Pod
}

// Window is a time range [From, To); a zero end is unbounded.
type Window struct {
	From, To time.Time
}

// Filter narrows packets, flows and calls; empty fields match everything.
// An endpoint matches when the client or the server side matches every
// endpoint field set.
type Filter struct {
	Namespace, Pod, Workload, Service, Node string
	IP                                      netip.Addr
	Port                                    uint16
	Protocol                                string
	// Version is a pod revision (pod-template-hash,
	// controller-revision-hash); compare_windows sets it to compare a
	// rollout's versions.
	Version string
}

// IsZero reports whether the filter matches everything.
func (f Filter) IsZero() bool { return f == Filter{} }

// Index converts the filter for index queries.
func (f Filter) Index() index.Filter {
	x := index.Filter{Namespace: f.Namespace, Pod: f.Pod, Workload: f.Workload, Service: f.Service, Node: f.Node,
		Version: f.Version, Port: f.Port, Protocol: f.Protocol}
	if f.IP.IsValid() {
		x.IP = f.IP.String()
	}
	return x
}

// Peer is one side of a flow with its identity, when known.
type Peer struct {
	IP                                      netip.Addr
	Port                                    uint16
	Pod, Namespace, Workload, Service, Node string
	Version                                 string
}

// Flow is an L4 flow's activity in a window, client (Src) to server (Dst).
type Flow struct {
	Src, Dst  Peer
	Transport string // tcp, udp, icmp, …
	// Protocol is the application protocol: as dissected, else guessed
	// from the first payload bytes (Guessed set), else "".
	Protocol string
	Guessed  bool
	// Encrypted is set for TLS and other encrypted payloads; Decryption
	// says whether the payload was read ("decrypted" with a key log,
	// "decrypted: OpenSSL 3.0 uprobe" from the TLS library of a process:
	// Decrypted tells both) or why not, once dissected.
	Encrypted       bool
	Decryption      string
	First, Last     time.Time
	Began           time.Time // the flow's first packet, maybe before the window
	Packets, Bytes  [2]uint64 // client→server, server→client
	Retransmissions [2]uint64
	// State: "open", "closed" (FIN), "reset" (RST), "refused" (SYN answered
	// by RST, or any flow answered by an ICMP destination unreachable),
	// "unanswered" (SYN alone); "" for UDP and others otherwise.
	State string
	// ICMP is the ICMP error the flow's packets drew, once dissected:
	// "port unreachable from 10.0.0.1", "ttl exceeded from 192.0.2.1".
	ICMP string
}

// Pod is a Kubernetes pod as the server knows it.
type Pod struct {
	Name, Namespace, Workload, Service, Node string
	IPs                                      []netip.Addr
	Labels                                   map[string]string
	// Version is the pod's revision in its workload (pod-template-hash,
	// controller-revision-hash); Images its containers' images.
	Version string
	Images  []string
	// Start and End bound when the pod held its addresses; zero is
	// unbounded.
	Start, End time.Time
}

// Alive reports whether the pod existed at t.
func (p *Pod) Alive(t time.Time) bool {
	return (p.Start.IsZero() || !t.Before(p.Start)) && (p.End.IsZero() || t.Before(p.End))
}

// EndpointName names a call's endpoint as a model can use it:
// namespace/pod when known, else namespace/svc/service, else ip:port.
func EndpointName(e *proto.Endpoint) string {
	switch {
	case e.Pod != "":
		return e.Namespace + "/" + e.Pod
	case e.Service != "":
		return e.Namespace + "/svc/" + e.Service
	}
	return addrPort(e.IP, e.Port)
}

// peerName names a flow's peer: namespace/pod, else namespace/svc/name,
// else the address (the server's with its port).
func peerName(p *Peer, server bool) string {
	switch {
	case p.Pod != "":
		return p.Namespace + "/" + p.Pod
	case p.Service != "":
		return p.Namespace + "/svc/" + p.Service
	case server:
		return addrPort(p.IP, p.Port)
	case p.IP.IsValid():
		return p.IP.String()
	}
	return "?"
}

// workloadName names a flow's peer as the index names edge peers, so that
// flows and calls merge into the same edges.
func workloadName(p *Peer, server bool) string {
	return index.EdgePeer(p.Namespace, p.Workload, p.Service, p.Pod, p.IP, p.Port, server)
}

// podOrAddr names a peer by its pod, else its address (a server's with
// its port).
func podOrAddr(p *Peer, server bool) string {
	switch {
	case p.Pod != "":
		return p.Pod
	case server:
		return addrPort(p.IP, p.Port)
	}
	return p.IP.String()
}

func addrPort(ip netip.Addr, port uint16) string {
	if !ip.IsValid() {
		return "?"
	}
	return netip.AddrPortFrom(ip, port).String()
}

// isAddress reports whether a group key is an address (ip or ip:port)
// rather than a Kubernetes name.
func isAddress(k string) bool {
	if _, err := netip.ParseAddrPort(k); err == nil {
		return true
	}
	_, err := netip.ParseAddr(k)
	return err == nil
}

// stripPort names a server by its address without the port, as Workloads
// lists addresses.
func stripPort(s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().String()
	}
	return s
}

// Decrypted reports whether a flow's Decryption says its payload was read:
// with a key log ("decrypted") or from its process's TLS library by the
// node agent's uprobes ("decrypted: Go 1.26 crypto/tls uprobe").
func Decrypted(decryption string) bool {
	return decryption == "decrypted" || strings.HasPrefix(decryption, "decrypted: ")
}

// DecryptedBy names the TLS library whose plaintext a flow was read from
// ("OpenSSL 3.0", "Go 1.26 crypto/tls"), "" when it was not read so (a key
// log, or not decrypted).
func DecryptedBy(decryption string) string {
	lib, ok := strings.CutPrefix(decryption, "decrypted: ")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(lib, " uprobe")
}
