//go:build linux

package bpf

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestAttribution runs real servers and clients in two network namespaces
// and in cgroups laid out as the kubelet's systemd driver lays out pods,
// and checks that both ends of their TCP and UDP flows are attributed to
// the right process, cgroup, pod and container. The nginx listener and an
// idle TCP connection exist before the tracker opens (the seeding path);
// a second nginx and dnsmasq start after it. Each way of seeding runs.
func TestAttribution(t *testing.T) {
	for _, c := range []struct {
		name string
		seed seedMode
	}{{"iterator", seedIterator}, {"procfs", seedProcfs}} {
		t.Run(c.name, func(t *testing.T) { testAttribution(t, c.seed) })
	}
}

func testAttribution(t *testing.T, seed seedMode) {
	mount := privileged(t)
	for _, cmd := range []string{"ip", "nginx", "curl", "dnsmasq", "dig", "nc"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("%s is not installed: run `make deps` (scripts/install-deps.sh)", cmd)
		}
	}
	n := newNetPair(t)
	top := newCgroup(t, mount, fmt.Sprintf("wirescope-bpftest-%d-%d", os.Getpid(), n.id), "")
	kube := top.rel + "/kubepods.slice/kubepods-besteffort.slice"
	serverPod, clientPod := newPodUID(), newPodUID()
	web := newContainer(t, mount, kube, serverPod)  // nginx started before the tracker
	web2 := newContainer(t, mount, kube, serverPod) // nginx started after it
	dns := newContainer(t, mount, kube, serverPod)  // dnsmasq, after it
	client := newContainer(t, mount, kube, clientPod)

	server := netip.AddrPortFrom(n.serverIP, 8080)
	nginx := startNginx(t, n, web, server)
	// An idle connection from before the tracker: nginx waits for its
	// request, nc for its stdin.
	idleClient := netip.AddrPortFrom(n.clientIP, uint16(30000+n.id))
	stdin, idle := startIdle(t, n, client, idleClient, server)

	tr := openTracker(t, seed)

	// The connection from before: seeded from the fd tables.
	expect(t, tr, 6, idleClient, server, "nc", pidIs(idle), client)
	expect(t, tr, 6, server, idleClient, "nginx", childOf(nginx), web)
	stdin.Close()

	// New connections to the listener from before: accepted sockets
	// inherit the listener's seeded owner.
	for range 3 {
		local, pid := curl(t, n, client, server)
		expect(t, tr, 6, local, server, "curl", pidIs(pid), client)
		expect(t, tr, 6, server, local, "nginx", childOf(nginx), web)
		if _, ok := tr.Lookup(6, local, netip.AddrPortFrom(n.serverIP, 8081)); ok {
			t.Errorf("Lookup of a flow that never was (%v → :8081) found something", local)
		}
	}

	// A listener opened after the tracker: its owner comes from
	// sock_create.
	server2 := netip.AddrPortFrom(n.serverIP, 8081)
	nginx2 := startNginx(t, n, web2, server2)
	for range 2 {
		local, pid := curl(t, n, client, server2)
		expect(t, tr, 6, local, server2, "curl", pidIs(pid), client)
		expect(t, tr, 6, server2, local, "nginx", childOf(nginx2), web2)
	}

	// UDP: the query is dig's egress, the answer dnsmasq's.
	dnsServer := netip.AddrPortFrom(n.serverIP, 5353)
	dnsmasq := startDnsmasq(t, n, dns, dnsServer)
	for i := range 3 {
		local := netip.AddrPortFrom(n.clientIP, uint16(40000+10*n.id+i))
		pid := dig(t, n, client, local, dnsServer)
		expect(t, tr, 17, local, dnsServer, "dig", pidIs(pid), client)
		expect(t, tr, 17, dnsServer, local, "dnsmasq", pidIs(dnsmasq), dns)
	}

	if err := tr.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, ok := tr.Lookup(6, server, idleClient); ok {
		t.Error("Lookup after Close found something")
	}
}

// TestOpenSeedsWithIterator checks that Open seeds with the iterator, not
// the /proc fallback, on a kernel that has what the iterator needs (5.11
// with BTF): a verifier that rejects it must fail a test, not be hidden by
// the fallback.
func TestOpenSeedsWithIterator(t *testing.T) {
	privileged(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var major, minor int
	fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &major, &minor)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil || major < 5 || major == 5 && minor < 11 {
		t.Skipf("kernel %d.%d (BTF: %v) has no socket iterator", major, minor, err)
	}
	tr := openTracker(t, seedAuto)
	if tr.seededBy != "iterator" {
		t.Errorf("Open seeded existing sockets with %q on kernel %d.%d, want the iterator", tr.seededBy, major, minor)
	}
}

// privileged skips the test unless it runs as root on a machine with a
// cgroup v2 mount, and returns the mount.
func privileged(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("eBPF programs, network namespaces and cgroups need root")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	mount, _, ok := cgroup2Mount(bytes.NewReader(mi))
	if !ok {
		t.Skip("no cgroup v2 hierarchy is mounted")
	}
	return mount
}

// openTracker opens a tracker seeding existing sockets the given way. It
// skips the test where the kernel lacks what the programs need, and fails
// it on any other error (a program the verifier rejects).
func openTracker(t *testing.T, seed seedMode) *Tracker {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr, err := open(log, seed)
	if errors.Is(err, ErrNoCgroup2) || errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("eBPF attribution is not available here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// cgroup is a cgroup directory made by a test.
type cgroup struct {
	dir, rel         string // absolute path; path from the cgroup2 root
	id               uint64
	pod, containerID string // what ParseCgroupPath must find in rel
}

// newCgroup creates the directories of rel that do not exist below the
// cgroup2 mount and removes them at cleanup, killing what is left in them.
func newCgroup(t *testing.T, mount, rel, container string) *cgroup {
	t.Helper()
	rel = path.Join("/", rel)
	var made []string
	dir := mount
	for seg := range strings.SplitSeq(strings.Trim(rel, "/"), "/") {
		dir = filepath.Join(dir, seg)
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, dir)
	}
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			removeCgroup(t, made[i])
		}
	})
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	c := &cgroup{dir: dir, rel: rel, id: st.Ino, containerID: container}
	_, c.pod = ParseCgroupPath(rel)
	return c
}

// removeCgroup kills the processes left in dir and removes it.
func removeCgroup(t *testing.T, dir string) {
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove cgroup %s: %v", dir, err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newPodUID returns a random pod UID, dashed.
func newPodUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newContainer creates a containerd container's cgroup in a pod of the
// systemd driver's layout below kube:
// kube/kubepods-besteffort-pod<uid with _>.slice/cri-containerd-<id>.scope.
func newContainer(t *testing.T, mount, kube, podUID string) *cgroup {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	pod := "kubepods-besteffort-pod" + strings.ReplaceAll(podUID, "-", "_") + ".slice"
	c := newCgroup(t, mount, path.Join(kube, pod, "cri-containerd-"+id+".scope"), id)
	if c.pod != podUID {
		t.Fatalf("ParseCgroupPath(%s) gives pod %q, want %q", c.rel, c.pod, podUID)
	}
	return c
}

// command returns cmd run in the network namespace ns and in cgroup cg.
func command(cg *cgroup, ns string, name string, args ...string) (*exec.Cmd, func()) {
	f, err := os.Open(cg.dir)
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	return cmd, func() { f.Close() }
}

// netPair is two network namespaces joined by a veth pair.
type netPair struct {
	id                 int
	server, client     string // namespace names
	serverIP, clientIP netip.Addr
}

var pairs atomic.Int32

func newNetPair(t *testing.T) *netPair {
	t.Helper()
	id := (os.Getpid()+int(pairs.Add(1)))%200 + 20
	n := &netPair{id: id,
		server: fmt.Sprintf("wsbpf%ds", id), client: fmt.Sprintf("wsbpf%dc", id),
		serverIP: netip.MustParseAddr(fmt.Sprintf("10.199.%d.1", id)),
		clientIP: netip.MustParseAddr(fmt.Sprintf("10.199.%d.2", id)),
	}
	sIf, cIf := fmt.Sprintf("wbs%d", id), fmt.Sprintf("wbc%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{n.server, n.client} {
		exec.Command("ip", "netns", "del", ns).Run() // a leftover of a killed run
	}
	exec.Command("ip", "link", "del", sIf).Run()
	for _, ns := range []string{n.server, n.client} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("cannot create a network namespace here: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	run("ip", "link", "add", sIf, "type", "veth", "peer", "name", cIf)
	for _, x := range []struct {
		ns, ifname string
		ip         netip.Addr
	}{{n.server, sIf, n.serverIP}, {n.client, cIf, n.clientIP}} {
		run("ip", "link", "set", x.ifname, "netns", x.ns)
		run("ip", "netns", "exec", x.ns, "sysctl", "-qw", "net.ipv6.conf."+x.ifname+".disable_ipv6=1")
		run("ip", "-n", x.ns, "addr", "add", x.ip.String()+"/24", "dev", x.ifname)
		run("ip", "-n", x.ns, "link", "set", x.ifname, "up")
		run("ip", "-n", x.ns, "link", "set", "lo", "up")
	}
	return n
}

// startNginx runs nginx (master and one worker) in the server namespace
// and cgroup cg, listening on addr, and returns the master's pid.
func startNginx(t *testing.T, n *netPair, cg *cgroup, addr netip.AddrPort) int {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off; master_process on; worker_processes 1; user root;
pid %[1]s/nginx.pid; error_log %[1]s/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server { listen %[2]s; location / { return 200 "ok\n"; } } }
`, dir, addr)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, done := command(cg, n.server, "nginx", "-c", filepath.Join(dir, "nginx.conf"), "-p", dir, "-e", filepath.Join(dir, "error.log"))
	err := cmd.Start()
	done()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) // the master stops its workers
		waitOrKill(cmd)
	})
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "netns", "exec", n.client, "curl", "-s", "-o", "/dev/null", "http://"+addr.String()+"/").Run() != nil {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx on %v did not start:\n%s", addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd.Process.Pid
}

// startDnsmasq runs dnsmasq in the server namespace and cgroup cg,
// answering on addr, and returns its pid.
func startDnsmasq(t *testing.T, n *netPair, cg *cgroup, addr netip.AddrPort) int {
	t.Helper()
	cmd, done := command(cg, n.server, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+addr.Addr().String(),
		"--port="+strconv.Itoa(int(addr.Port())), "--address=/wirescope.test/192.0.2.7",
		"--pid-file="+filepath.Join(t.TempDir(), "dnsmasq.pid"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Start()
	done()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		waitOrKill(cmd)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("ip", "netns", "exec", n.client, "dig", "@"+addr.Addr().String(), "-p", strconv.Itoa(int(addr.Port())),
			"+tries=1", "+time=1", "+short", "wirescope.test").Output()
		if strings.TrimSpace(string(out)) == "192.0.2.7" {
			return cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq on %v did not answer: %s", addr, &stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startIdle opens a TCP connection from local to server with nc in the
// client namespace and cgroup cg, and returns nc's stdin (the connection
// lasts until it is closed) and nc's pid.
func startIdle(t *testing.T, n *netPair, cg *cgroup, local, server netip.AddrPort) (io.Closer, int) {
	t.Helper()
	cmd, done := command(cg, n.client, "nc", "-s", local.Addr().String(), "-p", strconv.Itoa(int(local.Port())),
		server.Addr().String(), strconv.Itoa(int(server.Port())))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Start()
	done()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait until the server has accepted the connection: one still in
	// its accept queue is in no process's fd table, and not seeded.
	deadline := time.Now().Add(10 * time.Second)
	filter := fmt.Sprintf("sport = :%d and dport = :%d", server.Port(), local.Port())
	for {
		out, _ := exec.Command("ip", "netns", "exec", n.server, "ss", "-Htnp", "state", "established", filter).Output()
		if bytes.Contains(out, []byte(`"nginx"`)) {
			return stdin, cmd.Process.Pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("nc %v → %v: nginx did not accept the connection", local, server)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// curl fetches / from server in the client namespace and cgroup cg, and
// returns the address it connected from and its pid.
func curl(t *testing.T, n *netPair, cg *cgroup, server netip.AddrPort) (netip.AddrPort, int) {
	t.Helper()
	cmd, done := command(cg, n.client, "curl", "-sS", "-o", "/dev/null", "-w", "%{local_ip} %{local_port}", "http://"+server.String()+"/")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	done()
	if err != nil {
		t.Fatalf("curl %v: %v %s", server, err, &stderr)
	}
	ip, port, _ := strings.Cut(stdout.String(), " ")
	local, err := netip.ParseAddrPort(ip + ":" + port)
	if err != nil {
		t.Fatalf("curl -w printed %q: %v", stdout.String(), err)
	}
	return local, cmd.Process.Pid
}

// dig asks server for wirescope.test from local in the client namespace
// and cgroup cg, and returns its pid.
func dig(t *testing.T, n *netPair, cg *cgroup, local, server netip.AddrPort) int {
	t.Helper()
	cmd, done := command(cg, n.client, "dig", "@"+server.Addr().String(), "-p", strconv.Itoa(int(server.Port())),
		"-b", local.Addr().String()+"#"+strconv.Itoa(int(local.Port())), "+tries=1", "+time=2", "+short", "wirescope.test")
	out, err := cmd.Output()
	done()
	if err != nil || strings.TrimSpace(string(out)) != "192.0.2.7" {
		t.Fatalf("dig %v from %v: %v %q", server, local, err, out)
	}
	return cmd.Process.Pid
}

func waitOrKill(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// pidIs accepts pid only.
func pidIs(pid int) func(uint32) bool {
	return func(p uint32) bool { return int(p) == pid }
}

// childOf accepts pid and its children (nginx's master and workers).
func childOf(pid int) func(uint32) bool {
	return func(p uint32) bool {
		if int(p) == pid {
			return true
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return false
		}
		// pid (comm) state ppid …
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		return len(f) > 1 && f[1] == strconv.Itoa(pid)
	}
}

// expect checks that the socket at local talking to remote belongs to a
// process named comm, accepted by pid, in cgroup cg.
func expect(t *testing.T, tr *Tracker, proto uint8, local, remote netip.AddrPort, comm string, pid func(uint32) bool, cg *cgroup) {
	t.Helper()
	p, ok := tr.Lookup(proto, local, remote)
	if !ok {
		t.Errorf("Lookup(%d, %v, %v): not found, want %s", proto, local, remote, comm)
		return
	}
	t.Logf("%s %v → %v: %+v", map[uint8]string{6: "tcp", 17: "udp"}[proto], local, remote, p)
	want := Proc{PID: p.PID, Comm: comm, CgroupID: cg.id, Cgroup: cg.rel, ContainerID: cg.containerID, PodUID: cg.pod}
	if p != want || !pid(p.PID) {
		t.Errorf("Lookup(%d, %v, %v) = %+v\nwant %+v (pid of the process started)", proto, local, remote, p, want)
	}
}

// TestGoServer checks the sockets of this (Go) process: a listener opened
// before the tracker and one after, and a connection to each dialed from
// a renamed thread. Go listens with MPTCP where the kernel has it (Go 1.24),
// so the accepted sockets come from a subflow listener the kernel made; the
// dialing socket must be attributed to the process's name, not its
// thread's (Java, BIND and others name their threads).
func TestGoServer(t *testing.T) {
	for _, c := range []struct {
		name string
		seed seedMode
	}{{"iterator", seedIterator}, {"procfs", seedProcfs}} {
		t.Run(c.name, func(t *testing.T) { testGoServer(t, c.seed) })
	}
}

func testGoServer(t *testing.T, seed seedMode) {
	mount := privileged(t)
	servers := []*server{listen(t, "tcp4", "127.0.0.1:0", "before")}
	v6 := hasLoopback6()
	if v6 {
		servers = append(servers, listen(t, "tcp6", "[::1]:0", "before"))
	}
	tr := openTracker(t, seed)
	servers = append(servers, listen(t, "tcp4", "127.0.0.1:0", "after"))
	if v6 {
		servers = append(servers, listen(t, "tcp6", "[::1]:0", "after"))
	}

	self := selfProc(t, mount)
	for _, ln := range servers {
		conn, thread := dialFromRenamedThread(t, ln.network, ln.addr)
		if thread != "renamed-thread" {
			t.Fatalf("the dialing thread is named %q, the test needs it renamed", thread)
		}
		<-ln.accepted // the accepted socket's sockops callback has run
		local := conn.LocalAddr().(*stdnet.TCPAddr).AddrPort()
		remote := conn.RemoteAddr().(*stdnet.TCPAddr).AddrPort()
		good := true
		for _, end := range [][2]netip.AddrPort{{local, remote}, {remote, local}} {
			if p, ok := tr.Lookup(6, end[0], end[1]); !ok || p != self {
				t.Errorf("%s listener (%s): Lookup(6, %v, %v) = %+v, %v\nwant %+v", ln.when, ln.proto, end[0], end[1], p, ok, self)
				good = false
			}
		}
		if good {
			t.Logf("%s listener (%s): both ends attributed", ln.when, ln.proto)
		}
		conn.Close()
	}
}

// TestGoUDP checks UDP sockets of this process, IPv4 and IPv6, one bound
// before the tracker opened (seeded) and one after: a datagram each way.
// Each way of seeding runs.
func TestGoUDP(t *testing.T) {
	for _, c := range []struct {
		name string
		seed seedMode
	}{{"iterator", seedIterator}, {"procfs", seedProcfs}} {
		t.Run(c.name, func(t *testing.T) { testGoUDP(t, c.seed) })
	}
}

func testGoUDP(t *testing.T, seed seedMode) {
	mount := privileged(t)
	networks := [][2]string{{"udp4", "127.0.0.1:0"}}
	if hasLoopback6() {
		networks = append(networks, [2]string{"udp6", "[::1]:0"})
	}
	var before []*stdnet.UDPConn
	for _, n := range networks {
		before = append(before, listenUDP(t, n[0], n[1]))
	}
	tr := openTracker(t, seed)
	self := selfProc(t, mount)
	for i, n := range networks {
		a, b := before[i], listenUDP(t, n[0], n[1])
		for _, pair := range [][2]*stdnet.UDPConn{{a, b}, {b, a}} {
			from, to := pair[0], pair[1]
			if _, err := from.WriteTo([]byte("ping"), to.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			to.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := to.ReadFrom(make([]byte, 16)); err != nil {
				t.Fatal(err)
			}
		}
		la, lb := a.LocalAddr().(*stdnet.UDPAddr).AddrPort(), b.LocalAddr().(*stdnet.UDPAddr).AddrPort()
		for _, end := range [][2]netip.AddrPort{{la, lb}, {lb, la}} {
			if p, ok := tr.Lookup(17, end[0], end[1]); !ok || p != self {
				t.Errorf("%s: Lookup(17, %v, %v) = %+v, %v\nwant %+v", n[0], end[0], end[1], p, ok, self)
			}
		}
	}
}

func listenUDP(t *testing.T, network, addr string) *stdnet.UDPConn {
	t.Helper()
	c, err := stdnet.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*stdnet.UDPConn)
}

// hasLoopback6 says whether ::1 can be bound here.
func hasLoopback6() bool {
	ln, err := stdnet.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// selfProc is what Lookup must say of this process's sockets.
func selfProc(t *testing.T, mount string) Proc {
	t.Helper()
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	p := Proc{PID: uint32(os.Getpid()), Comm: strings.TrimSpace(string(comm))}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(mount, rel), &st); err != nil {
				t.Fatal(err)
			}
			p.Cgroup, p.CgroupID = rel, st.Ino
			p.ContainerID, p.PodUID = ParseCgroupPath(rel)
		}
	}
	return p
}

// server is a listener of this process that accepts one connection.
type server struct {
	network  string
	addr     string
	when     string        // "before" or "after" the tracker opened
	proto    string        // network, or "mptcp over " network
	accepted chan struct{} // closed once a connection is accepted
}

func listen(t *testing.T, network, addr, when string) *server {
	t.Helper()
	ln, err := stdnet.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &server{network: network, addr: ln.Addr().String(), when: when, proto: network, accepted: make(chan struct{})}
	if sc, err := ln.(*stdnet.TCPListener).SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) {
			if p, _ := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); p == unix.IPPROTO_MPTCP {
				s.proto = "mptcp over " + network
			}
		})
	}
	go func() {
		c, err := ln.Accept()
		close(s.accepted)
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	return s
}

// dialFromRenamedThread connects to addr from a thread named
// "renamed-thread" (not the main one, whose name is the process's), and
// returns the connection and the name the thread had.
func dialFromRenamedThread(t *testing.T, network, addr string) (stdnet.Conn, string) {
	t.Helper()
	type dialed struct {
		conn   stdnet.Conn
		thread string
		err    error
	}
	ch := make(chan dialed, 1)
	var dial func()
	dial = func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if unix.Gettid() == os.Getpid() {
			// The main thread: keep it and dial from another.
			done := make(chan struct{})
			go func() { dial(); close(done) }()
			<-done
			return
		}
		name := []byte("renamed-thread\x00")
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
			ch <- dialed{err: err}
			return
		}
		thread, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", unix.Gettid()))
		c, err := stdnet.Dial(network, addr) // socket(2) runs on this thread
		ch <- dialed{c, strings.TrimSpace(string(thread)), err}
	}
	go dial()
	d := <-ch
	if d.err != nil {
		t.Fatal(d.err)
	}
	t.Cleanup(func() { d.conn.Close() })
	return d.conn, d.thread
}

// BenchmarkLookup measures a lookup that finds its flow (a map lookup and
// the cached cgroup path) and one that does not (the other orientation of
// a flow whose far end is not on the node).
func BenchmarkLookup(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("eBPF programs need root")
	}
	tr, err := Open(nil)
	if errors.Is(err, ErrNoCgroup2) || errors.Is(err, ebpf.ErrNotSupported) {
		b.Skipf("eBPF attribution is not available here: %v", err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	ln, err := stdnet.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := stdnet.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().(*stdnet.TCPAddr).AddrPort()
	remote := c.RemoteAddr().(*stdnet.TCPAddr).AddrPort()
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := tr.Lookup(6, local, remote); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		far := netip.MustParseAddrPort("192.0.2.1:443")
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := tr.Lookup(6, local, far); ok {
				b.Fatal("found")
			}
		}
	})
}

// TestSeedForeignNetns checks seeding a socket that lives in another
// network namespace than the process holding it: this process opens a
// listener in the server namespace of a veth pair and comes back to its
// own. The iterator pass over TCP sockets must run in the socket's
// namespace (reached through the socket itself, SIOCGSKNS), not the
// process's, for a connection accepted later to inherit the owner.
func TestSeedForeignNetns(t *testing.T) {
	for _, c := range []struct {
		name string
		seed seedMode
	}{{"iterator", seedIterator}, {"procfs", seedProcfs}} {
		t.Run(c.name, func(t *testing.T) { testSeedForeignNetns(t, c.seed) })
	}
}

func testSeedForeignNetns(t *testing.T, seed seedMode) {
	mount := privileged(t)
	n := newNetPair(t)
	server := netip.AddrPortFrom(n.serverIP, 8082)
	ln := -1
	t.Cleanup(func() {
		if ln >= 0 {
			unix.Close(ln)
		}
	})
	inNamespace(t, n.server, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return err
		}
		ln = fd
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()}); err != nil {
			return err
		}
		return unix.Listen(fd, 8)
	})
	if self, err := netnsInode("/proc/self/ns/net"); err != nil {
		t.Fatal(err)
	} else if sk, err := unix.IoctlRetInt(ln, unix.SIOCGSKNS); err != nil {
		t.Fatal(err)
	} else {
		f := os.NewFile(uintptr(sk), "netns")
		ino, err := fileInode(f)
		f.Close()
		if err != nil || ino == self {
			t.Fatalf("the listener is in this process's network namespace (%d, %v): the test needs it elsewhere", ino, err)
		}
	}

	tr := openTracker(t, seed)
	var conn stdnet.Conn
	inNamespace(t, n.client, func() (err error) {
		conn, err = stdnet.DialTimeout("tcp4", server.String(), 5*time.Second)
		return err
	})
	t.Cleanup(func() { conn.Close() })
	local := conn.LocalAddr().(*stdnet.TCPAddr).AddrPort()
	self := selfProc(t, mount)
	// The accepting side is recorded when the server's kernel handles the
	// handshake's last ACK, which may come after Dial returns.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, ok := tr.Lookup(6, server, local)
		if ok && p == self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup(6, %v, %v) = %+v, %v\nwant %+v (the listener's seeded owner)", server, local, p, ok, self)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, ok := tr.Lookup(6, local, server); !ok || p != self {
		t.Errorf("Lookup(6, %v, %v) = %+v, %v\nwant %+v", local, server, p, ok, self)
	}
}

// inNamespace runs fn on a thread in the named network namespace
// (/run/netns/name), which goes back to its own after, and waits for it.
func inNamespace(t *testing.T, name string, fn func() error) {
	t.Helper()
	ns, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := inNetns(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkOpen measures Open (load, attach, seed) and Close with 2,000
// TCP sockets (1,000 loopback connections, both ends) and 500 bound UDP
// sockets in this process, for each way of seeding.
func BenchmarkOpen(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("eBPF programs need root")
	}
	ln, err := stdnet.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan []stdnet.Conn)
	go func() {
		var conns []stdnet.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				accepted <- conns
				return
			}
			conns = append(conns, c)
		}
	}()
	defer func() {
		ln.Close()
		for _, c := range <-accepted {
			c.Close()
		}
	}()
	var dialed []stdnet.Conn
	for range 1000 {
		c, err := stdnet.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		dialed = append(dialed, c)
	}
	for range 500 {
		c, err := stdnet.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
	}
	defer func() {
		for _, c := range dialed {
			c.Close()
		}
	}()
	for _, c := range []struct {
		name string
		seed seedMode
	}{{"iterator", seedIterator}, {"procfs", seedProcfs}} {
		b.Run(c.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				tr, err := open(nil, c.seed)
				if err != nil {
					b.Fatal(err)
				}
				n = tr.seeded
				tr.Close()
			}
			b.ReportMetric(float64(n), "sockets")
		})
	}
}
