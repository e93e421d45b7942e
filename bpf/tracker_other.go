//go:build !linux

package bpf

import (
	"log/slog"
	"net/netip"
)

// Tracker attributes flows to processes; it needs Linux.
type Tracker struct{}

// Open returns ErrUnsupported: eBPF attribution needs Linux.
func Open(logger *slog.Logger) (*Tracker, error) { return nil, ErrUnsupported }

// Lookup finds nothing.
func (t *Tracker) Lookup(proto uint8, local, remote netip.AddrPort) (Proc, bool) {
	return Proc{}, false
}

// Close does nothing.
func (t *Tracker) Close() error { return nil }
