// Package hooks counts what a program's franz-go clients wrote to the
// brokers: the manifests' truth the broker's log is checked against.
package hooks

import (
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Counts is a kgo hook counting requests written, by API name, and
// connections made.
type Counts struct {
	mu          sync.Mutex
	requests    map[string]int
	connections int
}

// New returns empty counts.
func New() *Counts { return &Counts{requests: map[string]int{}} }

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (h *Counts) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	h.mu.Lock()
	h.requests[kmsg.NameForKey(key)]++
	h.mu.Unlock()
}

// OnBrokerConnect implements kgo.HookBrokerConnect.
func (h *Counts) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, _ error) {
	if conn == nil {
		return
	}
	h.mu.Lock()
	h.connections++
	h.mu.Unlock()
}

// Snapshot returns the requests by API name and the connections so far.
func (h *Counts) Snapshot() (map[string]int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.requests))
	for k, v := range h.requests {
		out[k] = v
	}
	return out, h.connections
}

var (
	_ kgo.HookBrokerWrite   = (*Counts)(nil)
	_ kgo.HookBrokerConnect = (*Counts)(nil)
)
