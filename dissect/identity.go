package dissect

import (
	"net/netip"
	"time"
)

// Identity is the Kubernetes identity of an address.
type Identity struct {
	Pod       string
	Namespace string
	// Workload names what owns the pod (a Deployment, StatefulSet,
	// DaemonSet, Job), as pods of one workload are one service's replicas.
	Workload string
	Service  string
	Node     string
	// Version names the pod's revision within its workload: the
	// pod-template-hash of a Deployment's pods, the
	// controller-revision-hash of a StatefulSet's or DaemonSet's, so that
	// a rollout's old and new pods can be told apart.
	Version string
}

// Identifier resolves an endpoint to the Kubernetes identity it had at a
// given time. The port matters for pods on the host network, which share
// their node's address: such a pod owns the address only at the ports it
// listens on. Implementations must be safe for concurrent use.
type Identifier interface {
	Identify(ep netip.AddrPort, at time.Time) (Identity, bool)
}
