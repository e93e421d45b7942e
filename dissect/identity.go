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
}

// Identifier resolves an address to the Kubernetes identity it had at a
// given time. Implementations must be safe for concurrent use.
type Identifier interface {
	Identify(addr netip.Addr, at time.Time) (Identity, bool)
}
