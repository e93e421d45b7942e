package segstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path for writing with O_DIRECT, or returns nil where
// the file system refuses it.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
