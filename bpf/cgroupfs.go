package bpf

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// cgroup2Mount finds the first cgroup v2 mount in a mountinfo file
// (proc(5)): where it is mounted, and which directory of the hierarchy it
// shows ("/" unless a cgroup namespace or a bind mount shows a subtree).
func cgroup2Mount(mountinfo io.Reader) (mountPoint, root string, ok bool) {
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw
		pre, post, found := strings.Cut(sc.Text(), " - ")
		if !found {
			continue
		}
		fields, fsFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(fsFields) < 1 || fsFields[0] != "cgroup2" {
			continue
		}
		return unescapeMountinfo(fields[4]), unescapeMountinfo(fields[3]), true
	}
	return "", "", false
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of
// mountinfo's path fields.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
