//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Tracker attributes TCP and UDP flows to processes. Its programs stay
// attached until Close. It is safe for concurrent use.
type Tracker struct {
	log     *slog.Logger
	cgroups *cgroupResolver
	btf     *btf.Cache // kernel BTF, shared by the programs' loads in Open

	mu        sync.RWMutex // held for writing only by Close
	flows     *ebpf.Map    // flow_key → flow_val, LRU; nil once closed
	owners    *ebpf.Map    // sk_storage: socket → owner
	listeners *ebpf.Map    // listen_key → owner, LRU, filled by seeding
	pending   *ebpf.Map    // socket address → owner, the iterator's first pass; nil after seeding
	netns     *ebpf.Map    // netns inode → a socket's holder, from the first pass; nil after seeding
	progs     []*ebpf.Program
	links     []link.Link
	seededBy  string // how Open seeded the sockets that existed: "iterator" or "procfs"
	seeded    int    // how many sockets it seeded
}

// seedMode says how the sockets opened before Open get their owner.
type seedMode int

const (
	seedAuto     seedMode = iota // the iterator, /proc where it does not load
	seedIterator                 // the iterator only (tests)
	seedProcfs                   // /proc only (tests)
)

// Open loads the eBPF programs, attaches them to the root of the cgroup v2
// hierarchy and gives the sockets that already exist their owner. A nil
// logger logs nothing. The error says why when it cannot: no cgroup v2
// mount (ErrNoCgroup2), missing privileges, a kernel without a needed
// feature (ebpf.ErrNotSupported) or a program the verifier rejects.
func Open(logger *slog.Logger) (*Tracker, error) {
	return open(logger, seedAuto)
}

func open(logger *slog.Logger, seed seedMode) (_ *Tracker, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	mount, root, ok := cgroup2Mount(bytes.NewReader(mountinfo))
	if !ok {
		return nil, fmt.Errorf("%w (no cgroup2 filesystem in /proc/self/mountinfo)", ErrNoCgroup2)
	}
	if root != "/" {
		logger.Warn("bpf: the cgroup2 mount shows a subtree of the hierarchy (a cgroup namespace?): only its processes are attributed; give the agent the host's cgroup namespace",
			"mount", mount, "root", root)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain("lift the locked-memory limit for eBPF maps", err)
	}
	spec, err := loadAttrib()
	if err != nil {
		return nil, err
	}
	t := &Tracker{log: logger, cgroups: newCgroupResolver(mount, root), btf: btf.NewCache()}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	var maps attribMaps
	if err := spec.LoadAndAssign(&maps, nil); err != nil {
		return nil, explain("create the eBPF maps", err)
	}
	t.flows, t.owners, t.listeners = maps.Flows, maps.SkOwner, maps.Listeners
	t.pending, t.netns = maps.Pending, maps.SeedNetns

	// Owners first, so that every socket created from now on has one
	// before the programs that read them run. Where a program does not
	// load, its basic variant, which does without bpf_get_current_task and
	// bpf_probe_read_kernel (kernel lockdown), may.
	progs := []struct {
		name, basic string
		attach      ebpf.AttachType
		lost        string // what the basic variant loses
	}{
		{attribProgSockCreate, attribProgSockCreateBasic, ebpf.AttachCGroupInetSockCreate,
			"the comm of a new socket will be its creating thread's, not its process's"},
		{attribProgTcpEstablished, attribProgTcpEstablishedBasic, ebpf.AttachCGroupSockOps,
			"connections of MPTCP sockets created from now on will not be attributed"},
		{attribProgUdpEgress, "", ebpf.AttachCGroupInetEgress, ""},
		{attribProgUdpIngress, "", ebpf.AttachCGroupInetIngress, ""},
	}
	for _, p := range progs {
		prog, err := t.load(spec, p.name)
		if err != nil && p.basic != "" {
			logger.Warn("bpf: "+p.lost, "program", p.name, "err", err)
			prog, err = t.load(spec, p.basic)
		}
		if err != nil {
			return nil, err
		}
		t.progs = append(t.progs, prog)
		l, err := link.AttachCgroup(link.CgroupOptions{Path: mount, Attach: p.attach, Program: prog})
		if err != nil {
			return nil, explain(fmt.Sprintf("attach %s to cgroup %s", prog, mount), err)
		}
		t.links = append(t.links, l)
	}

	n, how, err := t.seed(spec, seed)
	t.seededBy, t.seeded = how, n
	// The first pass's maps are of no use once seeding is over.
	for _, m := range []*ebpf.Map{t.pending, t.netns} {
		m.Close()
	}
	t.pending, t.netns = nil, nil
	if err != nil {
		return nil, err
	}
	t.btf = nil // every program is loaded: free the kernel's BTF
	logger.Info("bpf: attributing flows to processes", "cgroup2", mount,
		"existing_sockets", n, "seeded_by", how)
	return t, nil
}

// load loads one program of spec, using the tracker's maps. The caller
// closes it.
func (t *Tracker) load(spec *ebpf.CollectionSpec, name string) (*ebpf.Program, error) {
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
		Cache: t.btf,
		MapReplacements: map[string]*ebpf.Map{
			attribMapFlows: t.flows, attribMapSkOwner: t.owners, attribMapListeners: t.listeners,
			attribMapPending: t.pending, attribMapSeedNetns: t.netns,
		},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.log.Debug("bpf: verifier log", "program", name, "log", fmt.Sprintf("%+v", ve))
		}
		what := "load eBPF program " + name
		if p := spec.Programs[name]; p != nil {
			what += " (" + p.SectionName + ")"
		}
		return nil, explain(what, err)
	}
	defer coll.Close()
	return coll.DetachProgram(name), nil
}

// seed gives the sockets that existed before the programs were attached
// an owner, and records the connected ones: with the task_file iterator,
// or from /proc where it does not load.
func (t *Tracker) seed(spec *ebpf.CollectionSpec, mode seedMode) (int, string, error) {
	if mode != seedProcfs {
		n, err := t.seedIterator(spec)
		if err == nil || mode == seedIterator {
			return n, "iterator", err
		}
		t.log.Warn("bpf: the socket iterator does not load; seeding existing sockets from /proc", "err", err)
	}
	n, err := seedFromProcfs(t.owners, t.flows, t.listeners, t.cgroups.mount, t.log)
	return n, "procfs", err
}

// seedIterator seeds with the iterators, in two passes (attrib.bpf.c
// says why): seed_files over every process's files notes which process
// holds each socket; seed_tcp and seed_udp, run in each network namespace
// that holds a noted socket, give those sockets their owner and record
// them. It returns how many sockets got an owner.
func (t *Tracker) seedIterator(spec *ebpf.CollectionSpec) (int, error) {
	var progs [3]*ebpf.Program
	for i, name := range []string{attribProgSeedFiles, attribProgSeedTcp, attribProgSeedUdp} {
		prog, err := t.load(spec, name)
		if err != nil {
			return 0, err
		}
		defer prog.Close()
		progs[i] = prog
	}
	var links [3]*link.Iter
	for i, prog := range progs {
		it, err := link.AttachIter(link.IterOptions{Program: prog})
		if err != nil {
			return 0, explain("attach the socket iterator "+prog.String(), err)
		}
		defer it.Close()
		links[i] = it
	}
	n, err := runIter(links[0], "in the fd tables")
	if err != nil {
		return 0, err
	}

	var (
		inum    uint32
		ref     attribNetnsRef
		skipped []error
	)
	entries := t.netns.Iterate()
	for entries.Next(&inum, &ref) {
		m, err := seedNetns(links[1:], inum, ref)
		t.log.Debug("bpf: seeded network namespace", "inum", inum, "sockets", m, "err", err)
		n += m
		if err != nil {
			skipped = append(skipped, err)
		}
	}
	if err := entries.Err(); err != nil {
		return n, fmt.Errorf("run the socket iterator: list network namespaces: %w", err)
	}
	if len(skipped) > 0 {
		err := errors.Join(skipped...)
		args := []any{"namespaces", len(skipped), "err", err}
		p := currentPrivileges()
		if missing := p.missing(netnsCaps); len(missing) > 0 && errors.Is(err, unix.EPERM) {
			args = append(args, "hint", p.hint(missing))
		}
		t.log.Warn("bpf: sockets of some network namespaces were not seeded", args...)
	}
	return n, nil
}

// seedNetns runs the TCP and UDP iterators in the network namespace with
// inode number inum, which ref's socket is in, and returns how many
// sockets got an owner. An iterator sees the namespace of the thread that
// opens it: each is opened on a thread that has entered inum, the
// agent's own namespace included (its threads may not all be in it).
func seedNetns(iters []*link.Iter, inum uint32, ref attribNetnsRef) (int, error) {
	ns, err := openNetns(inum, ref)
	if err != nil {
		return 0, fmt.Errorf("network namespace %d: %w", inum, err)
	}
	defer ns.Close()
	n := 0
	for _, it := range iters {
		var rd io.ReadCloser
		err := inNetns(ns, func() (err error) {
			rd, err = it.Open()
			return err
		})
		if err != nil {
			return n, fmt.Errorf("network namespace %d: %w", inum, explain("run the socket iterator", err))
		}
		m, err := io.Copy(io.Discard, rd) // one byte per socket
		rd.Close()
		n += int(m)
		if err != nil {
			return n, fmt.Errorf("network namespace %d: run the socket iterator: %w", inum, err)
		}
	}
	return n, nil
}

// runIter runs an iterator that writes one byte per socket it seeds, and
// returns the count.
func runIter(it *link.Iter, where string) (int, error) {
	rd, err := it.Open()
	if err != nil {
		return 0, explain("run the socket iterator "+where, err)
	}
	defer rd.Close()
	n, err := io.Copy(io.Discard, rd)
	if err != nil {
		return 0, fmt.Errorf("run the socket iterator %s: %w", where, err)
	}
	return int(n), nil
}

// Lookup returns the process owning the socket at local that talks to
// remote, with proto 6 (TCP) or 17 (UDP). IPv4 addresses may be given
// plain or IPv4-mapped. It reports false when no such socket was seen,
// and after Close.
func (t *Tracker) Lookup(proto uint8, local, remote netip.AddrPort) (Proc, bool) {
	if proto != 6 && proto != 17 || !local.IsValid() || !remote.IsValid() {
		return Proc{}, false
	}
	key := attribFlowKey{
		LocalAddr:  local.Addr().As16(),
		RemoteAddr: remote.Addr().As16(),
		LocalPort:  local.Port(),
		RemotePort: remote.Port(),
		Proto:      proto,
	}
	var v attribFlowVal
	t.mu.RLock()
	err := ebpf.ErrKeyNotExist
	if t.flows != nil {
		err = t.flows.Lookup(&key, &v)
	}
	t.mu.RUnlock()
	if err != nil {
		return Proc{}, false
	}
	p := Proc{PID: v.Tgid, CgroupID: v.CgroupId}
	comm, _, _ := bytes.Cut(v.Comm[:], []byte{0})
	p.Comm = string(comm)
	if cg, ok := t.cgroups.lookup(v.CgroupId); ok {
		p.Cgroup, p.ContainerID, p.PodUID = cg.path, cg.containerID, cg.podUID
	}
	return p, true
}

// Close detaches the programs and frees the maps. Lookups after it find
// nothing.
func (t *Tracker) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	for _, p := range t.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range []*ebpf.Map{t.flows, t.owners, t.listeners, t.pending, t.netns} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	t.links, t.progs, t.flows, t.owners, t.listeners, t.pending, t.netns = nil, nil, nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
