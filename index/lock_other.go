//go:build !unix

package index

// dirLock does nothing where flock(2) is missing.
type dirLock struct{}

func lockDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release() {}
