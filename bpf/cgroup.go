package bpf

import "strings"

// ParseCgroupPath finds the container ID and the Kubernetes pod UID in a
// cgroup v2 path, as the container runtimes and the kubelet name their
// cgroups. Either is "" when the path has none. It understands:
//
//   - the kubelet's systemd driver: /kubepods.slice/kubepods-burstable.slice/
//     kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
//     (also kubepods-besteffort-…, guaranteed pods as kubepods-pod<uid>.slice,
//     kind's kubelet-kubepods-… slices, and docker-, crio- and libpod- scopes);
//   - the kubelet's cgroupfs driver: /kubepods/burstable/pod<uid>/<id>,
//     /kubepods/pod<uid>/<id> (also crio-<id> as CRI-O names it there);
//   - containers outside Kubernetes: /system.slice/docker-<id>.scope,
//     /docker/<id>, /machine.slice/libpod-<id>.scope.
//
// The pod UID comes back in its canonical dashed form
// (1b6e1c8a-3f3d-4c1e-9a57-5d2f7f0c4e11); a static pod's UID, which the
// kubelet makes from a 32-digit hash, comes back as those 32 digits. When a
// pod is found, the container is the first one below it (so a kind node's
// own container above the pods is not taken for a pod's); CRI-O's conmon
// scopes (crio-conmon-<id>.scope) are not containers.
func ParseCgroupPath(p string) (containerID, podUID string) {
	var before string // the first container above any pod segment
	kube := false     // a kubepods segment was seen
	for seg := range strings.SplitSeq(strings.Trim(p, "/"), "/") {
		if strings.Contains(seg, "kubepods") {
			kube = true
		}
		if podUID == "" {
			if uid, ok := podSegment(seg, kube); ok {
				podUID = uid
				continue
			}
		}
		if id, ok := containerSegment(seg, podUID != ""); ok {
			if podUID != "" {
				return id, podUID
			}
			if before == "" {
				before = id
			}
		}
	}
	if podUID != "" {
		return "", podUID
	}
	return before, ""
}

// podSegment reads a pod's cgroup name: kubepods[-<qos>]-pod<uid>.slice
// (systemd driver, dashes of the UID as underscores) or pod<uid> below a
// kubepods segment (cgroupfs driver).
func podSegment(seg string, kube bool) (string, bool) {
	if name, ok := strings.CutSuffix(seg, ".slice"); ok {
		i := strings.LastIndex(name, "-pod")
		if i < 0 || !strings.Contains(name[:i+1], "kubepods") {
			return "", false
		}
		return podUIDOf(strings.ReplaceAll(name[i+len("-pod"):], "_", "-"))
	}
	if rest, ok := strings.CutPrefix(seg, "pod"); ok && kube {
		return podUIDOf(rest)
	}
	return "", false
}

// podUIDOf validates a pod UID: a UUID (8-4-4-4-12 hex digits), returned in
// lower case, or the 32 hex digits of a static pod's config hash.
func podUIDOf(s string) (string, bool) {
	s = strings.ToLower(s)
	switch len(s) {
	case 36:
		for i := range len(s) {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return "", false
				}
			} else if !isHex(s[i]) {
				return "", false
			}
		}
		return s, true
	case 32:
		return s, allHex(s)
	}
	return "", false
}

// containerPrefixes are how runtimes prefix a container's cgroup: with
// systemd as <prefix><id>.scope, CRI-O with cgroupfs as crio-<id>.
var containerPrefixes = []string{"cri-containerd-", "docker-", "crio-", "libpod-"}

// containerSegment reads a container's cgroup name: <prefix><id>.scope,
// crio-<id>, or the bare ID (cgroupfs drivers). A bare ID must have 64 hex
// digits, unless it is directly in a pod, where 12 are enough.
func containerSegment(seg string, inPod bool) (string, bool) {
	name := strings.TrimSuffix(seg, ".scope")
	for _, prefix := range containerPrefixes {
		if id, ok := strings.CutPrefix(name, prefix); ok {
			if len(id) >= 12 && len(id) <= 64 && allHex(id) {
				return strings.ToLower(id), true
			}
			return "", false // crio-conmon-<id>, docker-compose-…
		}
	}
	if name != seg { // some other .scope: a session, a service
		return "", false
	}
	if (len(seg) == 64 || inPod && len(seg) >= 12 && len(seg) < 64) && allHex(seg) {
		return strings.ToLower(seg), true
	}
	return "", false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func allHex(s string) bool {
	for i := range len(s) {
		if !isHex(s[i]) {
			return false
		}
	}
	return s != ""
}
