//go:build !lean

package main

import (
	"log/slog"
	"net/netip"

	"github.com/gopacket/gopacket/layers"

	"github.com/wirescope/wirescope/bpf"
	"github.com/wirescope/wirescope/capture/segstore"
)

// attribution names the processes of flows with eBPF where it loads; where
// it does not, the agent captures all the same and says why.
type attribution struct {
	t      *bpf.Tracker
	status string
}

func openAttribution(logger *slog.Logger) *attribution {
	t, err := bpf.Open(logger)
	if err != nil {
		a := &attribution{status: "off: " + err.Error()}
		// err says which step failed and why (the verifier's complaint, the
		// missing capabilities); capture does not depend on it.
		logger.Warn("flows are not attributed to processes; capture goes on without it", "err", err)
		return a
	}
	return &attribution{t: t, status: "on: eBPF (cgroup sock_create, sock_ops, cgroup_skb)"}
}

// Attribute is the store's Attributor, or nil when eBPF is off.
func (a *attribution) Attribute() segstore.Attributor {
	if a.t == nil {
		return nil
	}
	return func(proto layers.IPProtocol, local, remote netip.AddrPort) (segstore.Proc, bool) {
		p, ok := a.t.Lookup(uint8(proto), local, remote)
		if !ok {
			return segstore.Proc{}, false
		}
		return segstore.Proc{PID: p.PID, Comm: p.Comm, CgroupID: p.CgroupID, Cgroup: p.Cgroup, ContainerID: p.ContainerID, PodUID: p.PodUID}, true
	}
}

func (a *attribution) On() bool       { return a.t != nil }
func (a *attribution) Status() string { return a.status }

func (a *attribution) Close() error {
	if a.t == nil {
		return nil
	}
	return a.t.Close()
}
