// Package identity resolves endpoints to Kubernetes identities (pod,
// namespace, workload, service, node, version) for dissection, as of the
// packet's time.
//
// Two Sources answer: Static reads the cluster file wirescope takes with
// --cluster (the shape of DESIGN.md, also used by the evals), a fixed list
// of services and pods for runs without a live API server; Kube follows a
// live cluster through client-go informers (one watch per resource type)
// and keeps a bounded history of deleted pods, so that an address reused by
// a new pod names the right one before and after.
package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wirescope/wirescope/dissect"
)

// Source resolves endpoints to Kubernetes identities as of a time and lists
// pods. Implementations are safe for concurrent use.
type Source interface {
	dissect.Identifier
	// Pods lists the pods known, each with when it held its addresses
	// (StartTime, DeletionTime).
	Pods() []Pod
	// Known is the earliest time the source vouches for: zero for a
	// cluster file (always); for informers, when they first synced.
	// Identify may still answer for a time before Known when it is sure (a
	// pod alive now that started before then held its address then); for
	// such a time and no certainty it answers false. Callers use Known to
	// say that identities before it are unknown.
	Known() time.Time
	// Fingerprint identifies the identities given, so that an index built
	// with others is not reused.
	Fingerprint() string
}

var _ Source = (*Static)(nil)

// ClusterFile is the JSON document --cluster reads.
type ClusterFile struct {
	Services []Service `json:"services"`
	Pods     []Pod     `json:"pods"`
}

// Service is a Kubernetes Service.
type Service struct {
	Name       string            `json:"name"`
	Namespace  string            `json:"namespace"`
	ClusterIP  string            `json:"clusterIP"`
	ClusterIPs []string          `json:"clusterIPs,omitempty"`
	Selector   map[string]string `json:"selector"`
}

// Pod is a Kubernetes Pod.
type Pod struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Node      string            `json:"node"`
	IP        string            `json:"ip"`
	IPs       []string          `json:"ips,omitempty"`
	Labels    map[string]string `json:"labels"`
	// Workload names the pod's owner; empty means derived from its name
	// (WorkloadOf).
	Workload string `json:"workload,omitempty"`
	// WorkloadKind is the kind of the workload: Deployment, StatefulSet,
	// DaemonSet, Job, CronJob, ReplicaSet, or empty for a bare pod (or
	// when the file does not say).
	WorkloadKind string `json:"workloadKind,omitempty"`
	// Version names the pod's revision within its workload: its
	// pod-template-hash label, else its controller-revision-hash label.
	// Empty in a file means taken from those labels.
	Version string `json:"version,omitempty"`
	// Images are the pod's container images, in spec order (init
	// containers last).
	Images []string `json:"images,omitempty"`
	// HostNetwork is set for pods on their node's network: they share the
	// node's address and own it only at Ports.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Ports are the ports a hostNetwork pod declares (container ports and
	// host ports); empty for other pods.
	Ports []uint16 `json:"ports,omitempty"`
	// UID is the pod's Kubernetes UID, when known.
	UID string `json:"uid,omitempty"`
	// StartTime and DeletionTime bound when the pod held its addresses;
	// unset means always (before and after). A rollout's old and new pods
	// may then reuse an address.
	StartTime    *time.Time `json:"startTime,omitempty"`
	DeletionTime *time.Time `json:"deletionTime,omitempty"`
	// Service is the service selecting the pod; Static.Pods fills it in.
	Service string `json:"-"`
}

// VersionOf returns a pod's revision from its labels: pod-template-hash
// (a Deployment's ReplicaSet), else controller-revision-hash (a
// StatefulSet's or DaemonSet's revision).
func VersionOf(labels map[string]string) string {
	if v := labels["pod-template-hash"]; v != "" {
		return v
	}
	return labels["controller-revision-hash"]
}

// alive reports whether the pod existed at t.
func (p *Pod) alive(t time.Time) bool {
	return (p.StartTime == nil || !t.Before(*p.StartTime)) && (p.DeletionTime == nil || t.Before(*p.DeletionTime))
}

// Static answers from a cluster file. Pods with StartTime or DeletionTime
// own their addresses only while they exist; services always. A
// hostNetwork pod owns its address only at its Ports.
type Static struct {
	byIP map[netip.Addr][]owner
	pods []Pod
	fp   string
}

// owner is one holder of an address: a pod (index into pods) or, pod -1,
// a service.
type owner struct {
	id  dissect.Identity
	pod int
}

// Known implements Source: a cluster file vouches for all times.
func (s *Static) Known() time.Time { return time.Time{} }

// LoadFile reads and indexes a cluster file.
func LoadFile(path string) (*Static, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cf ClusterFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	s, err := New(cf)
	if err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	return s, nil
}

// New indexes a cluster file. A pod gets the service whose selector matches
// its labels (the first by name when several do); a service's cluster IP
// resolves to the service alone. An address given twice belongs to the
// first owner alive at the time asked.
func New(cf ClusterFile) (*Static, error) {
	s := &Static{byIP: map[netip.Addr][]owner{}}
	canon, err := json.Marshal(cf)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(canon)
	s.fp = hex.EncodeToString(sum[:])
	svcs := slices.Clone(cf.Services)
	slices.SortFunc(svcs, func(a, b Service) int {
		if a.Namespace != b.Namespace {
			return strings.Compare(a.Namespace, b.Namespace)
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i, p := range cf.Pods {
		if p.Name == "" {
			return nil, fmt.Errorf("pods[%d]: no name", i)
		}
		id := dissect.Identity{Pod: p.Name, Namespace: p.Namespace, Node: p.Node, Workload: p.Workload, Version: p.Version}
		if id.Workload == "" {
			id.Workload = WorkloadOf(p.Name)
		}
		if id.Version == "" {
			id.Version = VersionOf(p.Labels)
		}
		for _, svc := range svcs {
			if svc.Namespace == p.Namespace && selects(svc.Selector, p.Labels) {
				id.Service = svc.Name
				break
			}
		}
		if p.StartTime != nil && p.DeletionTime != nil && !p.StartTime.Before(*p.DeletionTime) {
			return nil, fmt.Errorf("pod %s/%s: deletionTime is not after startTime", p.Namespace, p.Name)
		}
		p.Workload, p.Service, p.Version = id.Workload, id.Service, id.Version
		s.pods = append(s.pods, p)
		for _, ip := range append([]string{p.IP}, p.IPs...) {
			if ip == "" {
				continue
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
			}
			s.byIP[a] = append(s.byIP[a], owner{id, len(s.pods) - 1})
		}
	}
	for _, svc := range cf.Services {
		for _, ip := range append([]string{svc.ClusterIP}, svc.ClusterIPs...) {
			if ip == "" || ip == "None" {
				continue
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
			s.byIP[a] = append(s.byIP[a], owner{dissect.Identity{Namespace: svc.Namespace, Service: svc.Name}, -1})
		}
	}
	return s, nil
}

// WorkloadOf derives a pod's workload from the names controllers give their
// pods: "checkout-7c4b8d9f6-m8wzt" (Deployment: ReplicaSet hash and pod
// suffix) → "checkout", "db-0" (StatefulSet) → "db", "node-exporter-x7k2p"
// (DaemonSet, Job) → "node-exporter". A name that fits none is its own
// workload. Hash-like parts must hold a digit, so "my-app-nginx" stays whole.
func WorkloadOf(pod string) string {
	parts := strings.Split(pod, "-")
	n := len(parts)
	switch {
	case n >= 3 && hashLike(parts[n-1], 5, 5, false) && hashLike(parts[n-2], 6, 10, true):
		return strings.Join(parts[:n-2], "-")
	case n >= 2 && parts[n-1] != "" && strings.Trim(parts[n-1], "0123456789") == "":
		return strings.Join(parts[:n-1], "-")
	case n >= 2 && hashLike(parts[n-1], 5, 5, true):
		return strings.Join(parts[:n-1], "-")
	}
	return pod
}

// hashLike reports whether s is lowercase alphanumeric of a length in
// [min, max], holding a digit when digit is set.
func hashLike(s string, min, max int, digit bool) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	hasDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			hasDigit = true
		case c < 'a' || c > 'z':
			return false
		}
	}
	return hasDigit || !digit
}

// selects reports whether a non-empty selector matches labels.
func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Identify implements dissect.Identifier: the first owner of the address
// in the file that existed at t. A hostNetwork pod owns its address only
// at the ports it declares, and comes first there; at other ports its
// address names its node alone (the file lists no nodes of its own).
func (s *Static) Identify(ap netip.AddrPort, at time.Time) (dissect.Identity, bool) {
	owners := s.byIP[ap.Addr().Unmap()]
	node := ""
	for _, o := range owners {
		if o.pod < 0 || !s.pods[o.pod].HostNetwork || !s.pods[o.pod].alive(at) {
			continue
		}
		if slices.Contains(s.pods[o.pod].Ports, ap.Port()) {
			return o.id, true
		}
		if node == "" {
			node = s.pods[o.pod].Node
		}
	}
	for _, o := range owners {
		if o.pod < 0 || !s.pods[o.pod].HostNetwork && s.pods[o.pod].alive(at) {
			return o.id, true
		}
	}
	if node != "" {
		return dissect.Identity{Node: node}, true
	}
	return dissect.Identity{}, false
}

// Len returns how many addresses the file maps.
func (s *Static) Len() int { return len(s.byIP) }

// Fingerprint identifies the identities the file gives: dissections made
// with another file are not reused.
func (s *Static) Fingerprint() string { return s.fp }

// Pods returns the file's pods, with Workload and Service filled in.
func (s *Static) Pods() []Pod { return slices.Clone(s.pods) }
