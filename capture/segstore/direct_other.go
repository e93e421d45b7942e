//go:build !linux

package segstore

import "os"

// openDirect returns nil: direct writes are Linux's O_DIRECT here.
func openDirect(string) *os.File { return nil }
