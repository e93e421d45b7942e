//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// netnsInode returns the inode number of the network namespace file at
// path (/proc/PID/ns/net, or one SIOCGSKNS gave).
func netnsInode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("network namespace of %s: %w", path, err)
	}
	return uint32(st.Ino), nil
}

// openNetns opens the network namespace with inode number inum, which the
// socket at descriptor ref.Fd of process ref.Tgid is in: the process's own
// namespace when that is the one, otherwise the socket's, through a copy
// of the descriptor (pidfd_getfd) and SIOCGSKNS. It checks that the
// namespace it opened is inum: the process may have closed the descriptor
// or exited since.
func openNetns(inum uint32, ref attribNetnsRef) (*os.File, error) {
	proc := "/proc/" + strconv.Itoa(int(ref.Tgid)) + "/ns/net"
	if f, err := os.Open(proc); err == nil {
		if ino, err := fileInode(f); err == nil && ino == inum {
			return f, nil
		}
		f.Close()
	}
	pidfd, err := unix.PidfdOpen(int(ref.Tgid), 0)
	if err != nil {
		return nil, fmt.Errorf("open process %d: %w", ref.Tgid, err)
	}
	defer unix.Close(pidfd)
	sock, err := unix.PidfdGetfd(pidfd, int(ref.Fd), 0)
	if err != nil {
		return nil, fmt.Errorf("copy descriptor %d of process %d: %w", ref.Fd, ref.Tgid, err)
	}
	defer unix.Close(sock)
	nsfd, err := unix.IoctlRetInt(sock, unix.SIOCGSKNS)
	if err != nil {
		return nil, fmt.Errorf("network namespace of descriptor %d of process %d: %w", ref.Fd, ref.Tgid, err)
	}
	f := os.NewFile(uintptr(nsfd), "netns")
	ino, err := fileInode(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if ino != inum {
		f.Close()
		return nil, fmt.Errorf("descriptor %d of process %d is now in network namespace %d: the socket is gone", ref.Fd, ref.Tgid, ino)
	}
	return f, nil
}

func fileInode(f *os.File) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("network namespace: %w", err)
	}
	return uint32(st.Ino), nil
}

// inNetns runs fn on an OS thread that has entered the network namespace
// ns, and returns its error. The thread goes back to its namespace after;
// where it cannot, it ends with the goroutine, so that no other goroutine
// runs in ns.
func inNetns(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		err = fn()
		if back := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); back != nil {
			errc <- errors.Join(err, fmt.Errorf("leave network namespace: %w", back))
			return // still locked: the thread exits with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}
