//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The values of attrib.bpf.c's enum origin and enum side that seeding
// writes.
const (
	originCreate = 1 // ORIGIN_CREATE
	originSeed   = 2 // ORIGIN_SEED
	sideSeed     = 5 // SIDE_SEED
)

// seedFromProcfs is the fallback for kernels where the task_file iterator
// does not load, and does what it does. For every process it reads
// /proc/PID/fd, copies each socket into this process with pidfd_getfd(2)
// (Linux 5.6) and, through that descriptor, gives the socket an owner in
// the sk_storage map (which takes a socket fd as key from user space),
// records its tuple when it is connected, and its port in listeners when
// it listens. As the iterator does, it keeps an owner set by sock_create
// and otherwise lets the last holder win. It returns how many sockets it
// seeded.
func seedFromProcfs(owners, flows, listeners *ebpf.Map, cgroupMount string, log *slog.Logger) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("seed sockets from /proc: %w", err)
	}
	seeded, denied := 0, 0
	cgroupIDs := map[string]uint64{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		n, err := seedProcess(owners, flows, listeners, pid, cgroupMount, cgroupIDs)
		seeded += n
		if errors.Is(err, os.ErrPermission) {
			denied++
		}
	}
	if seeded == 0 && denied > 0 {
		p := currentPrivileges()
		if missing := p.missing(procfsCaps); len(missing) > 0 {
			return 0, fmt.Errorf("seed sockets from /proc: %d processes denied access to their file descriptors: %w; %s", denied, os.ErrPermission, p.hint(missing))
		}
		return 0, fmt.Errorf("seed sockets from /proc: %d processes denied access to their file descriptors: %w, although this process has CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (Yama's ptrace_scope, or an LSM policy?)", denied, os.ErrPermission)
	}
	if denied > 0 {
		log.Warn("bpf: sockets of some processes could not be seeded", "processes", denied)
	}
	return seeded, nil
}

// seedProcess seeds the sockets of one process. Processes that exit
// meanwhile are skipped.
func seedProcess(owners, flows, listeners *ebpf.Map, pid int, cgroupMount string, cgroupIDs map[string]uint64) (int, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return 0, err
	}
	var sockets []int
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if errors.Is(err, os.ErrPermission) {
			return 0, err
		}
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if n, err := strconv.Atoi(fd.Name()); err == nil {
			sockets = append(sockets, n)
		}
	}
	if len(sockets) == 0 {
		return 0, nil
	}

	var owner attribOwner
	owner.Tgid = uint32(pid)
	owner.Origin = originSeed
	comm, err := os.ReadFile(filepath.Join(dir, "comm"))
	if err != nil {
		return 0, err
	}
	copy(owner.Comm[:len(owner.Comm)-1], strings.TrimSuffix(string(comm), "\n"))
	owner.CgroupId = procCgroupID(dir, cgroupMount, cgroupIDs)

	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(pidfd)
	seeded := 0
	for _, target := range sockets {
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			if errors.Is(err, unix.EPERM) {
				return seeded, os.ErrPermission
			}
			continue
		}
		if seedSocket(owners, flows, listeners, fd, &owner) {
			seeded++
		}
		unix.Close(fd)
	}
	return seeded, nil
}

// seedSocket gives the TCP, MPTCP or UDP socket fd an owner and records it
// when connected or listening.
func seedSocket(owners, flows, listeners *ebpf.Map, fd int, owner *attribOwner) bool {
	domain, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, err3 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	stream := typ == unix.SOCK_STREAM && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP)
	if err1 != nil || err2 != nil || err3 != nil || domain != unix.AF_INET && domain != unix.AF_INET6 ||
		!stream && !(typ == unix.SOCK_DGRAM && proto == unix.IPPROTO_UDP) {
		return false
	}
	l4 := uint8(unix.IPPROTO_UDP)
	if stream {
		l4 = unix.IPPROTO_TCP // MPTCP's subflows are TCP
	}
	key := int32(fd)
	var old attribOwner
	if owners.Lookup(&key, &old) == nil && (old.Origin == originCreate || old.Tgid == owner.Tgid) {
		owner = &old
	} else if owners.Update(&key, owner, ebpf.UpdateAny) != nil {
		return false
	}

	local, err := sockAddrPort(unix.Getsockname(fd))
	if err != nil {
		return true
	}
	if listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && listening == 1 {
		// An MPTCP listener's subflow listener is the kernel's, out of
		// reach: the sockets it accepts find their owner by port.
		if cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE); err == nil {
			lk := attribListenKey{Netns: cookie, Port: local.Port(), Proto: unix.IPPROTO_TCP}
			listeners.Update(&lk, owner, ebpf.UpdateAny)
		}
		return true
	}
	remote, err := sockAddrPort(unix.Getpeername(fd))
	if err != nil || remote.Port() == 0 {
		return true // not connected
	}
	fk := attribFlowKey{
		LocalAddr: local.Addr().As16(), RemoteAddr: remote.Addr().As16(),
		LocalPort: local.Port(), RemotePort: remote.Port(), Proto: l4,
	}
	v := attribFlowVal{CgroupId: owner.CgroupId, Tgid: owner.Tgid, Side: sideSeed, Comm: owner.Comm}
	flows.Update(&fk, &v, ebpf.UpdateNoExist) // an entry written since attaching is as good
	return true
}

func sockAddrPort(sa unix.Sockaddr, err error) (netip.AddrPort, error) {
	if err != nil {
		return netip.AddrPort{}, err
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, syscall.EAFNOSUPPORT
}

// procCgroupID returns the id of the cgroup v2 of the process at dir (its
// "0::" line in /proc/PID/cgroup): the inode number of its directory.
func procCgroupID(dir, cgroupMount string, cache map[string]uint64) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		p, ok := strings.CutPrefix(line, "0::")
		if !ok {
			continue
		}
		if id, ok := cache[p]; ok {
			return id
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(cgroupMount, p), &st) != nil {
			return 0
		}
		cache[p] = st.Ino
		return st.Ino
	}
	return 0
}
