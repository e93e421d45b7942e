//go:build unix

package index

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// dirLock is an exclusive lock on an index directory, so that two
// processes never open the same index (Bleve would wait for the other's
// lock, and Open would take the wait for damage).
type dirLock struct{ f *os.File }

func lockDir(path string) (*dirLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock index: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock index: %s is in use by another process", path)
		}
		return nil, fmt.Errorf("lock index: %w", err)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
