package segstore

import (
	"net/netip"

	"github.com/gopacket/gopacket/layers"
)

// Proc is a process holding a socket, with its cgroup and, when the cgroup
// is a container's, the container and Kubernetes pod.
type Proc struct {
	PID         uint32 `json:"pid,omitempty"`
	Comm        string `json:"comm,omitempty"`
	CgroupID    uint64 `json:"cgroup_id,omitempty"`
	Cgroup      string `json:"cgroup,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	PodUID      string `json:"pod_uid,omitempty"`
}

// IsZero reports whether nothing is known of the process.
func (p Proc) IsZero() bool { return p == Proc{} }

// Attributor names the process holding the socket at local talking to
// remote, if it knows it.
type Attributor func(proto layers.IPProtocol, local, remote netip.AddrPort) (Proc, bool)

// askFlows asks attr about the sides of flows whose process is not known,
// returning what it says (zero where nothing).
func askFlows(attr Attributor, flows []*Flow) [][2]Proc {
	if attr == nil {
		return nil
	}
	out := make([][2]Proc, len(flows))
	for i, fl := range flows {
		if fl.Procs[0].IsZero() {
			out[i][0], _ = attr(fl.Proto, fl.Src, fl.Dst)
		}
		if fl.Procs[1].IsZero() {
			out[i][1], _ = attr(fl.Proto, fl.Dst, fl.Src)
		}
	}
	return out
}

// setProcs fills in the sides of flows that askFlows found.
func setProcs(flows []*Flow, procs [][2]Proc) {
	for i, p := range procs {
		for side := range 2 {
			if !p[side].IsZero() {
				flows[i].Procs[side] = p[side]
			}
		}
	}
}

// Attribute asks Options.Attribute about the processes of the flows that
// appeared in the open segments since the last call; the asking happens
// without holding up Write. The agent calls it every second or so.
func (s *Store) Attribute() {
	attr := s.opts.Attribute
	if attr == nil {
		return
	}
	type ask struct {
		g     *segment
		fl    *Flow
		key   [2]netip.AddrPort
		proto layers.IPProtocol
		got   [2]Proc
	}
	var asks []ask
	s.mu.Lock()
	for _, g := range s.open {
		for _, fl := range g.order[g.asked:] {
			asks = append(asks, ask{g: g, fl: fl, key: [2]netip.AddrPort{fl.Src, fl.Dst}, proto: fl.Proto})
		}
		g.asked = len(g.order)
	}
	s.mu.Unlock()
	if len(asks) == 0 {
		return
	}
	for i := range asks {
		a := &asks[i]
		a.got[0], _ = attr(a.proto, a.key[0], a.key[1])
		a.got[1], _ = attr(a.proto, a.key[1], a.key[0])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range asks {
		if s.open[a.g.LinkType] != a.g {
			continue // closed meanwhile: its flows are asked again as it closes
		}
		for i := range 2 {
			if a.fl.Procs[i].IsZero() {
				a.fl.Procs[i] = a.got[i]
			}
		}
	}
}
