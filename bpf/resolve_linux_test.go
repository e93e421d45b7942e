//go:build linux

package bpf

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestCgroupResolver resolves directory inode numbers to paths in a fake
// hierarchy: any directory tree works, cgroup ids being inode numbers.
func TestCgroupResolver(t *testing.T) {
	root := t.TempDir()
	const pod = "kubepods.slice/kubepods-pod1b6e1c8a_3f3d_4c1e_9a57_5d2f7f0c4e11.slice"
	const ctr = pod + "/cri-containerd-3f8c2e4b9a1d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e.scope"
	mkdir := func(rel string) uint64 {
		t.Helper()
		dir := filepath.Join(root, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	ctrID := mkdir(ctr)
	r := newCgroupResolver(root, "/")

	got, ok := r.lookup(ctrID)
	want := cgroupInfo{path: "/" + ctr, podUID: "1b6e1c8a-3f3d-4c1e-9a57-5d2f7f0c4e11",
		containerID: "3f8c2e4b9a1d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"}
	if !ok || got != want {
		t.Fatalf("lookup = %+v, %v; want %+v", got, ok, want)
	}
	if got, ok := r.lookup(mkdirIno(t, root)); !ok || got.path != "/" {
		t.Errorf("lookup(root) = %+v, %v; want /", got, ok)
	}
	walks := r.walks

	// An unknown id walks once, then is not looked for again within missTTL.
	if _, ok := r.lookup(1 << 60); ok {
		t.Error("lookup of an unknown id found something")
	}
	if _, ok := r.lookup(1 << 60); ok || r.walks != walks+1 {
		t.Errorf("second lookup of an unknown id: found %v, %d walks; want one walk", ok, r.walks-walks)
	}

	// A cgroup made after the first walk is found by walking again; one
	// removed stays known.
	newID := mkdir("system.slice/nginx.service")
	if got, ok := r.lookup(newID); !ok || got.path != "/system.slice/nginx.service" || got.containerID != "" {
		t.Errorf("lookup of a new cgroup = %+v, %v", got, ok)
	}
	if err := os.Remove(filepath.Join(root, ctr)); err != nil {
		t.Fatal(err)
	}
	r.walk() // (no directory made meanwhile: a file system other than cgroupfs may reuse the inode)
	if got, ok := r.lookup(ctrID); !ok || got != want {
		t.Errorf("lookup of a removed cgroup = %+v, %v; want it still known", got, ok)
	}
}

func mkdirIno(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}
