//go:build linux

package bpf

import (
	"io/fs"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

const (
	// maxCgroups bounds the id → path cache. Paths of cgroups that are
	// gone are kept (flows outlive their processes) until the cache
	// would grow past this; it then holds only what exists.
	maxCgroups = 1 << 16
	// maxMisses bounds the ids remembered as unknown.
	maxMisses = 4096
	// missTTL is how long an unknown id stays unknown before a lookup
	// walks the hierarchy again for it.
	missTTL = 5 * time.Second
)

// cgroupInfo is what a cgroup id resolves to.
type cgroupInfo struct {
	path, containerID, podUID string
}

// cgroupResolver maps cgroup v2 ids to paths. A cgroup's id is its kernfs
// node id, which on 64-bit machines is the inode number of its directory
// in the cgroup2 mount: a walk of the mount finds them all.
type cgroupResolver struct {
	mount string // where the cgroup2 hierarchy is mounted
	root  string // which of its directories the mount shows, "/" normally

	mu     sync.Mutex
	byID   map[uint64]cgroupInfo
	misses map[uint64]time.Time
	walks  int // how many walks were made, for tests
}

func newCgroupResolver(mount, root string) *cgroupResolver {
	return &cgroupResolver{mount: mount, root: root,
		byID: map[uint64]cgroupInfo{}, misses: map[uint64]time.Time{}}
}

// lookup resolves id, walking the hierarchy again when it is not cached
// and was not looked for in vain within missTTL.
func (r *cgroupResolver) lookup(id uint64) (cgroupInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if info, ok := r.byID[id]; ok {
		return info, true
	}
	if t, ok := r.misses[id]; ok && time.Since(t) < missTTL {
		return cgroupInfo{}, false
	}
	r.walk()
	if info, ok := r.byID[id]; ok {
		delete(r.misses, id)
		return info, true
	}
	if len(r.misses) >= maxMisses {
		clear(r.misses)
	}
	r.misses[id] = time.Now()
	return cgroupInfo{}, false
}

// walk adds every cgroup of the mount to the cache. Directories that
// vanish during the walk are skipped.
func (r *cgroupResolver) walk() {
	r.walks++
	found := map[uint64]string{}
	filepath.WalkDir(r.mount, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.mount, p)
		if err != nil {
			return nil
		}
		found[st.Ino] = path.Join(r.root, filepath.ToSlash(rel))
		return nil
	})
	grown := len(r.byID)
	for id := range found {
		if _, ok := r.byID[id]; !ok {
			grown++
		}
	}
	if grown > maxCgroups {
		clear(r.byID)
	}
	for id, p := range found {
		if old, ok := r.byID[id]; ok && old.path == p {
			continue
		}
		c, pod := ParseCgroupPath(p)
		r.byID[id] = cgroupInfo{path: p, containerID: c, podUID: pod}
	}
}
