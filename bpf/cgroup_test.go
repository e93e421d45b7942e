package bpf

import (
	"strings"
	"testing"
)

func TestParseCgroupPath(t *testing.T) {
	const (
		cid  = "3f8c2e4b9a1d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"
		cid2 = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
		uid  = "1b6e1c8a-3f3d-4c1e-9a57-5d2f7f0c4e11"
		uidU = "1b6e1c8a_3f3d_4c1e_9a57_5d2f7f0c4e11" // as the systemd driver writes it
		hash = "6d4b5fb1c3f5e8a2d9e0b1c7a4f3e2d1"     // a static pod's UID
	)
	tests := []struct {
		name, path string
		container  string
		pod        string
	}{
		// The kubelet's systemd cgroup driver.
		{"systemd burstable containerd",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", cid, uid},
		{"systemd besteffort containerd",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", cid, uid},
		{"systemd guaranteed pod directly under kubepods.slice",
			"/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", cid, uid},
		{"systemd cri-o",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + cid + ".scope", cid, uid},
		{"systemd cri-o conmon is not the container",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope", "", uid},
		{"systemd cri-o container subgroup",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-" + cid + ".scope/container", cid, uid},
		{"systemd docker (cri-dockerd)",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/docker-" + cid + ".scope", cid, uid},
		{"systemd pod slice itself",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice", "", uid},
		{"systemd static pod (hash UID)",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + hash + ".slice/cri-containerd-" + cid + ".scope", cid, hash},
		{"kind: kubelet-kubepods slices",
			"/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", cid, uid},
		{"below a prefix (tests, nested hierarchies)",
			"/wirescope-bpftest-1-2/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", cid, uid},
		{"QoS slice only", "/kubepods.slice/kubepods-burstable.slice", "", ""},
		{"kubepods.slice only", "/kubepods.slice", "", ""},

		// The kubelet's cgroupfs cgroup driver.
		{"cgroupfs burstable", "/kubepods/burstable/pod" + uid + "/" + cid, cid, uid},
		{"cgroupfs besteffort", "/kubepods/besteffort/pod" + uid + "/" + cid, cid, uid},
		{"cgroupfs guaranteed", "/kubepods/pod" + uid + "/" + cid, cid, uid},
		{"cgroupfs short container id", "/kubepods/pod" + uid + "/" + cid[:12], cid[:12], uid},
		{"cgroupfs cri-o", "/kubepods/burstable/pod" + uid + "/crio-" + cid, cid, uid},
		{"cgroupfs pod only", "/kubepods/burstable/pod" + uid, "", uid},
		{"cgroupfs kind node inside docker", "/docker/" + cid2 + "/kubelet/kubepods/burstable/pod" + uid + "/" + cid, cid, uid},
		{"cgroupfs pod dir outside kubepods is not a pod", "/system/pod" + uid, "", ""},

		// Containers outside Kubernetes.
		{"docker systemd", "/system.slice/docker-" + cid + ".scope", cid, ""},
		{"docker cgroupfs", "/docker/" + cid, cid, ""},
		{"podman", "/machine.slice/libpod-" + cid + ".scope", cid, ""},
		{"rootless podman", "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + cid + ".scope/container", cid, ""},
		{"upper-case hex is lowered", "/system.slice/docker-" + strings.ToUpper(cid) + ".scope", cid, ""},

		// Nothing of it.
		{"root", "/", "", ""},
		{"empty", "", "", ""},
		{"session", "/user.slice/user-0.slice/session-3.scope", "", ""},
		{"service", "/system.slice/nginx.service", "", ""},
		{"docker service itself", "/system.slice/docker.service", "", ""},
		{"containerd service", "/system.slice/containerd.service", "", ""},
		{"docker-compose-like scope", "/system.slice/docker-compose-web.scope", "", ""},
		{"bad pod uid", "/kubepods.slice/kubepods-podnotauid.slice/cri-containerd-" + cid + ".scope", cid, ""},
		{"pod uid too short", "/kubepods/pod" + uid[:35] + "/" + cid, cid, ""},
		{"podman user slice is not a pod", "/user.slice/foo-podman.slice", "", ""},
		{"short hex outside a pod", "/deadbeefcafe", "", ""},
		{"scope with short id", "/system.slice/docker-abc.scope", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p := ParseCgroupPath(tt.path)
			if c != tt.container || p != tt.pod {
				t.Errorf("ParseCgroupPath(%q)\n = (%q, %q)\nwant (%q, %q)", tt.path, c, p, tt.container, tt.pod)
			}
		})
	}
}

func TestCgroup2Mount(t *testing.T) {
	tests := []struct {
		name, mountinfo string
		mount, root     string
		ok              bool
	}{
		{"hybrid", `25 30 0:23 / /sys ro,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
`, "/sys/fs/cgroup/unified", "/", true},
		{"unified", `22 25 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`, "/sys/fs/cgroup", "/", true},
		{"container's view, optional fields absent", `1500 1490 0:26 /kubepods.slice/x.scope /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw
`, "/sys/fs/cgroup", "/kubepods.slice/x.scope", true},
		{"escaped space", `40 24 0:26 / /mnt/my\040cgroup rw - cgroup2 none rw
`, "/mnt/my cgroup", "/", true},
		{"v1 only", `35 33 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`, "", "", false},
		{"empty", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, root, ok := cgroup2Mount(strings.NewReader(tt.mountinfo))
			if mount != tt.mount || root != tt.root || ok != tt.ok {
				t.Errorf("cgroup2Mount = (%q, %q, %v), want (%q, %q, %v)", mount, root, ok, tt.mount, tt.root, tt.ok)
			}
		})
	}
}
