// Package bpf attributes TCP and UDP flows to the processes, cgroups,
// containers and Kubernetes pods that own their sockets, with eBPF programs
// attached to the root of the cgroup v2 hierarchy, so every process of the
// node is covered whatever its network namespace.
//
// A [Tracker] keeps, in a bounded LRU map in the kernel, one entry per
// socket end: (protocol, local address and port, remote address and port)
// → (pid, comm, cgroup id). [Tracker.Lookup] asks for one end; a flow seen
// on the wire is looked up in both orientations, since both of its ends
// may live on the node. README.md describes the hooks, why they were
// chosen over others and what is not seen.
//
// The C source is attrib.bpf.c; bpf2go compiles it into the committed
// attrib_bpfel.o and attrib_bpfeb.o (`make generate`).
package bpf

import "errors"

// Proc is the process that owns one end of a flow, as it was when the
// socket was created or the flow seen.
type Proc struct {
	// PID is the process (thread group) id.
	PID uint32
	// Comm is the process's command name (its main thread's, at most 15
	// bytes), as when the socket was created.
	Comm string
	// CgroupID is the id of the process's cgroup v2 (the kernfs inode
	// number of its directory).
	CgroupID uint64
	// Cgroup is the cgroup's path relative to the root of the cgroup v2
	// hierarchy, like /kubepods.slice/kubepods-besteffort.slice/…; "" when
	// no directory of the mount has CgroupID (it was removed before it
	// was first looked up, or it is outside the mount's view).
	Cgroup string
	// ContainerID is the container's ID when Cgroup is a container's
	// (ParseCgroupPath), "" otherwise.
	ContainerID string
	// PodUID is the Kubernetes pod's UID, dashed, when Cgroup is a pod's
	// (ParseCgroupPath), "" otherwise.
	PodUID string
}

var (
	// ErrNoCgroup2 is returned by Open when no cgroup v2 hierarchy is
	// mounted: the programs attach to its root.
	ErrNoCgroup2 = errors.New("no cgroup v2 hierarchy mounted")
	// ErrUnsupported is returned by Open where eBPF attribution cannot
	// work at all (not Linux).
	ErrUnsupported = errors.New("process attribution with eBPF needs Linux")
)
