//go:build unix

package workspace

import (
	"os"
	"syscall"
)

// oNoFollow makes opening a symlink fail.
const oNoFollow = syscall.O_NOFOLLOW

// ownedByUs reports whether the file belongs to the user the server runs
// as.
func ownedByUs(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
