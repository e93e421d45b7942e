package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wirescope/wirescope/server/identity"
)

// TestCluster is wirescope as a cluster runs it, from real parts: two
// nodes (network namespaces joined by a veth pair, each forwarding for a
// pod namespace behind it), an agent on each capturing every interface,
// a Service whose cluster IP the client's node translates to the server
// pod (nftables DNAT, as kube-proxy does), real nginx and curl, the
// pods, workloads, Service, EndpointSlices and Nodes in a real
// kube-apiserver, and the hub discovering the agents from their Service
// and naming peers from the API server, asked through mcp-go's client.
//
// It checks: every call is counted once though three interfaces on two
// nodes saw it, with both nodes and the Service's address on it; the
// client and server pods and workloads are named; when the server pod is
// replaced by one of a new version holding the same IP, calls before and
// after name the right pod and version, and compare_windows compares the
// versions; an agent killed with SIGKILL is named as unreachable in every
// answer while the other node's calls are still served, and its calls
// come back when it restarts.
func TestCluster(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and AF_PACKET capture need root")
	}
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		if os.Getenv("K8S_ENV_REQUIRED") != "" {
			t.Fatal("K8S_ENV_REQUIRED is set but KUBECONFIG is not: scripts/k8s-env.sh start did not run")
		}
		t.Skip("no KUBECONFIG: make test starts a kube-apiserver (scripts/k8s-env.sh)")
	}
	for _, tool := range []string{"nft", "nginx", "curl", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: make deps installs it", tool)
		}
	}
	bin := wirescopeBinary(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	k := newKubeEnv(t, kc)
	net := newClusterNet(t)
	dir := t.TempDir()
	agentToken := filepath.Join(dir, "agent-token")
	if err := os.WriteFile(agentToken, []byte("cluster-test-agent-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The cluster as the API server knows it.
	nodeA, nodeB := k.node("a", net.a.ip), k.node("b", net.b.ip)
	ds := k.create(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "wirescope-agent"},
		Spec: appsv1.DaemonSetSpec{Selector: selector("wirescope-agent"), Template: podTemplate("wirescope-agent")}}).(*appsv1.DaemonSet)
	var agentEPs []discoveryv1.Endpoint
	for _, n := range []struct{ name, ip string }{{nodeA, net.a.ip}, {nodeB, net.b.ip}} {
		p := k.pod(kpod{name: "wirescope-agent-" + n.name[len(n.name)-1:], app: "wirescope-agent", node: n.name, ip: n.ip,
			hostNet: true, port: agentPort, owner: owner("apps/v1", "DaemonSet", ds.Name, ds.UID)})
		agentEPs = append(agentEPs, k.endpoint(p))
	}
	k.service("wirescope-agents", "wirescope-agent", "api", true, agentPort, agentPort)
	k.slice("wirescope-agents", "wirescope-agents", "api", agentPort, agentEPs...)

	clientRS := k.replicaSet("shop-client", "7c9d")
	clientPod := k.pod(kpod{name: "shop-client-7c9d-x2k4q", app: "shop-client", node: nodeA, ip: net.clientIP,
		owner: owner("apps/v1", "ReplicaSet", clientRS.Name, clientRS.UID), hash: "7c9d"})
	web1RS := k.replicaSet("web", "5f6b8")
	start := time.Now().Add(-time.Minute)
	web1 := k.pod(kpod{name: "web-5f6b8-aaaaa", app: "web", node: nodeB, ip: net.serverIP, start: start, port: 8080,
		owner: owner("apps/v1", "ReplicaSet", web1RS.Name, web1RS.UID), hash: "5f6b8"})
	svc := k.service("web", "web", "http", false, 80, 8080)
	k.slice("web-1", "web", "http", 8080, k.endpoint(web1))
	clusterIP := svc.Spec.ClusterIP
	net.dnat(t, clusterIP, 80, net.serverIP, 8080)

	// The agents, one per node, capturing every interface but the API's.
	agents := map[string]*clusterAgent{}
	for _, n := range []struct {
		name string
		node *clusterNode
	}{{nodeA, &net.a}, {nodeB, &net.b}} {
		a := &clusterAgent{bin: bin, netns: n.node.ns, node: n.name, addr: fmt.Sprintf("%s:%d", n.node.ip, agentPort),
			data: filepath.Join(dir, n.name), token: agentToken}
		a.start(t)
		agents[n.name] = a
	}
	// A request before the hub starts watching the API server.
	net.curl(t, clusterIP, "/early", 1)
	url, token := startClientHub(t, ctx, bin, "--kubeconfig", kc, "--kube-namespace", k.ns,
		"--agents-service", k.ns+"/wirescope-agents", "--agent-token-file", agentToken, "--agent-timeout", "3s")
	mc := clusterClient(ctx, t, url, token)
	ask := func(tool string, args map[string]any) string {
		t.Helper()
		return toolText(ctx, t, mc, tool, args)
	}
	// capture_status lists both agents, up.
	waitFor(t, "the hub to list both agents", func() bool {
		s := ask("capture_status", nil)
		return strings.Contains(s, nodeA) && strings.Contains(s, nodeB) && !strings.Contains(s, "incomplete")
	})
	net.curl(t, net.serverIP+":8080", "/warmup", 1)

	// Calls through the Service, before the server pod is replaced.
	const before, after = 6, 4
	net.curl(t, clusterIP, "/before", before)
	t1 := time.Now()

	// The server pod is replaced by one of the next ReplicaSet that holds
	// the same IP (as a CNI may reuse it at once).
	k.deletePod(web1.Name)
	web2RS := k.replicaSet("web", "9a1c2")
	web2 := k.pod(kpod{name: "web-9a1c2-bbbbb", app: "web", node: nodeB, ip: net.serverIP, port: 8080,
		owner: owner("apps/v1", "ReplicaSet", web2RS.Name, web2RS.UID), hash: "9a1c2"})
	k.deleteSlice("web-1")
	k.slice("web-2", "web", "http", 8080, k.endpoint(web2))
	waitFor(t, "the hub to see the new pod on "+net.serverIP, func() bool {
		held := ask("list_workloads", map[string]any{"ip": net.serverIP})
		return strings.Contains(held, web2.Name) && strings.Contains(held, web1.Name)
	})
	// The API server keeps a pod's start to the second: a hub that was
	// not watching then is certain the address is the new pod's only from
	// the end of that second.
	time.Sleep(time.Until(web2.Status.StartTime.Add(time.Second + 100*time.Millisecond)))
	net.curl(t, clusterIP, "/after", after)
	for _, a := range agents {
		a.flush(t)
	}

	// Each call once, with both nodes and the Service's address on it.
	out := ask("dissect", map[string]any{"from": t1.Add(-time.Minute).UTC().Format(time.RFC3339Nano)})
	t.Logf("dissect:\n%s", out)
	for path, n := range map[string]int{"/before": before, "/after": after} {
		got := ask("search_calls", map[string]any{"query": "+path:" + path, "limit": 50})
		if c := callLines(got); c != n {
			t.Errorf("search_calls %s: %d calls, want %d (each counted once):\n%s", path, c, n, got)
		}
	}
	want := map[string]struct{ pod, version string }{"/before": {web1.Name, "5f6b8"}, "/after": {web2.Name, "9a1c2"}}
	for path, w := range want {
		got := ask("search_calls", map[string]any{"query": "+path:" + path + " +dst.pod:" + w.pod + " +dst.version:" + w.version +
			" +src.pod:" + clientPod.Name + " +src.workload:shop-client +dst.workload:web", "limit": 50})
		if c := callLines(got); c != map[string]int{"/before": before, "/after": after}[path] {
			t.Errorf("%s: %d calls name %s (version %s) as the server and %s as the client:\n%s", path, c, w.pod, w.version, clientPod.Name, got)
		}
		id := callID(t, got)
		detail := ask("get_call", map[string]any{"id": id})
		for _, s := range []string{"via: " + clusterIP + ":80", "captured on: " + nodeA + ", " + nodeB, "pod=" + w.pod, "version=" + w.version,
			"workload=web", "pod=" + clientPod.Name, "service=web"} {
			if !strings.Contains(detail, s) {
				t.Errorf("get_call %s (%s) lacks %q:\n%s", id, path, s, detail)
			}
		}
	}
	// The rollout compared by version over the same time: the old pod
	// served the warm-up request and /before, the new one /after.
	cmp := ask("compare_windows", map[string]any{"baseline_version": "5f6b8", "candidate_version": "9a1c2"})
	for _, s := range []string{"comparing version 5f6b8 (baseline) with 9a1c2 (candidate)",
		fmt.Sprintf("%s (gone): %d calls", web1.Name, before+2), fmt.Sprintf("%s (new): %d calls", web2.Name, after)} {
		if !strings.Contains(cmp, s) {
			t.Errorf("compare_windows by version lacks %q:\n%s", s, cmp)
		}
	}
	// dissect says how many copies it left out: each request was captured
	// three times (node a before and after DNAT, node b), the warm-up
	// (pod to pod) twice.
	if want := fmt.Sprintf("%d copies of calls captured twice", 2*(before+after+1)+1); !strings.Contains(out, want) {
		t.Errorf("dissect does not say %q:\n%s", want, out)
	}

	// The early request: named (its pods were alive when the hub began
	// watching), and the answer says identities before then are unknown.
	early := ask("search_calls", map[string]any{"query": "+path:/early +dst.pod:" + web1.Name + " +src.pod:" + clientPod.Name})
	if callLines(early) != 1 || !strings.Contains(early, "Kubernetes identities are unknown before") {
		t.Errorf("search_calls /early, before the hub started: want the call named and a note that identities before the hub are unknown:\n%s", early)
	}

	// A hub given the agents' URLs (no discovery), started after the pod
	// was replaced: it names the new pod for calls after its start, and
	// for the calls before, whose pod was gone before it began watching,
	// it names none rather than guessing the new one, and says why.
	var urls []string
	for _, a := range agents {
		urls = append(urls, "http://"+a.addr)
	}
	url2, token2 := startClientHub(t, ctx, bin, "--kubeconfig", kc, "--kube-namespace", k.ns,
		"--agents", strings.Join(urls, ","), "--agent-token-file", agentToken)
	mc2 := clusterClient(ctx, t, url2, token2)
	ask2 := func(args map[string]any) string {
		t.Helper()
		args["limit"] = 50
		return toolText(ctx, t, mc2, "search_calls", args)
	}
	if got := ask2(map[string]any{"query": "+path:/after +dst.pod:" + web2.Name + " +dst.version:9a1c2"}); callLines(got) != after {
		t.Errorf("hub with --agents: search_calls /after naming %s: %d calls, want %d:\n%s", web2.Name, callLines(got), after, got)
	} else if d := toolText(ctx, t, mc2, "get_call", map[string]any{"id": callID(t, got)}); !strings.Contains(d, "captured on: "+nodeA+", "+nodeB) {
		t.Errorf("hub with --agents: get_call does not name both nodes:\n%s", d)
	}
	got2 := ask2(map[string]any{"query": "+path:/before"})
	if callLines(got2) != before || strings.Contains(got2, web2.Name) || strings.Contains(got2, web1.Name) ||
		!strings.Contains(got2, "Kubernetes identities are unknown before") {
		t.Errorf("hub with --agents: search_calls /before: want %d calls naming no server pod, with a note that identities then are unknown:\n%s", before, got2)
	}

	// Node b's agent dies: every answer says so, node a's calls remain.
	b := agents[nodeB]
	b.kill(t)
	st := ask("capture_status", nil)
	if !regexp.MustCompile(`(?m)^incomplete: ` + regexp.QuoteMeta(nodeB) + ` unreachable since `).MatchString(st) {
		t.Errorf("capture_status with %s's agent killed does not begin by naming it unreachable:\n%s", nodeB, st)
	}
	got := ask("search_calls", map[string]any{"query": "+path:/before", "limit": 50})
	if !strings.HasPrefix(got, "incomplete: "+nodeB+" unreachable") {
		t.Errorf("search_calls with %s's agent killed does not say the answer is incomplete:\n%s", nodeB, got)
	}
	if c := callLines(got); c != before {
		t.Errorf("search_calls /before from node a alone: %d calls, want %d:\n%s", c, before, got)
	}

	// It restarts on its store: the answers are whole again.
	b.start(t)
	waitFor(t, nodeB+"'s agent to be served again", func() bool {
		return !strings.Contains(ask("capture_status", nil), "incomplete")
	})
	got = ask("search_calls", map[string]any{"query": "+path:/after +dst.pod:" + web2.Name, "limit": 50})
	if c := callLines(got); c != after || strings.Contains(got, "incomplete") {
		t.Errorf("search_calls /after once %s is back: %d calls, want %d:\n%s", nodeB, c, after, got)
	}
	detail := ask("get_call", map[string]any{"id": callID(t, got)})
	if !strings.Contains(detail, "captured on: "+nodeA+", "+nodeB) {
		t.Errorf("get_call once %s is back does not name both nodes:\n%s", nodeB, detail)
	}
}

const agentPort = 8899

// clusterNet is two nodes and a pod behind each: the client's pod on node
// a, the server's on node b.
type clusterNet struct {
	a, b               clusterNode
	clientIP, serverIP string
	clientNS, serverNS string
}

// clusterNode is a node's namespace and its address on the management link
// to the root namespace, where the hub reaches its agent.
type clusterNode struct{ ns, ip string }

// run runs a command and fails the test when it fails.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newClusterNet builds, with id unique to this process:
//
//	root ──mgmt── node a (10.232.id.2) ──wire── node b (10.233.id.2) ──mgmt── root
//	                │ 10.235.id.1                   │ 10.236.id.1
//	           client pod 10.235.id.10         server pod 10.236.id.10
//
// The nodes route the pod networks over the wire between them and forward.
func newClusterNet(t *testing.T) *clusterNet {
	t.Helper()
	id := os.Getpid()%200 + 20
	name := func(s string) string { return fmt.Sprintf("wsc%d%s", id, s) }
	n := &clusterNet{a: clusterNode{name("na"), fmt.Sprintf("10.232.%d.2", id)}, b: clusterNode{name("nb"), fmt.Sprintf("10.233.%d.2", id)},
		clientNS: name("pa"), serverNS: name("pb"),
		clientIP: fmt.Sprintf("10.235.%d.10", id), serverIP: fmt.Sprintf("10.236.%d.10", id)}
	all := []string{n.a.ns, n.b.ns, n.clientNS, n.serverNS}
	gone := func() {
		for _, ns := range all {
			exec.Command("ip", "netns", "del", ns).Run()
		}
		exec.Command("ip", "link", "del", name("ma")).Run()
		exec.Command("ip", "link", "del", name("mb")).Run()
	}
	gone() // a killed run's leftovers
	t.Cleanup(gone)
	for _, ns := range all {
		run(t, "ip", "netns", "add", ns)
		// No IPv6 autoconfiguration noise; lo up for local replies.
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	up := func(ns, ifc, cidr string) {
		t.Helper()
		run(t, "ip", "-n", ns, "addr", "add", cidr, "dev", ifc)
		run(t, "ip", "-n", ns, "link", "set", ifc, "up")
	}
	// Management links: root ↔ each node.
	for i, nd := range []clusterNode{n.a, n.b} {
		root := name([]string{"ma", "mb"}[i])
		run(t, "ip", "link", "add", root, "type", "veth", "peer", "name", "mgmt", "netns", nd.ns)
		run(t, "sysctl", "-qw", "net.ipv6.conf."+root+".disable_ipv6=1")
		prefix := nd.ip[:strings.LastIndexByte(nd.ip, '.')]
		run(t, "ip", "addr", "add", prefix+".1/24", "dev", root)
		run(t, "ip", "link", "set", root, "up")
		up(nd.ns, "mgmt", nd.ip+"/24")
		run(t, "ip", "netns", "exec", nd.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	// The wire between the nodes.
	run(t, "ip", "-n", n.a.ns, "link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", n.b.ns)
	up(n.a.ns, "wire", fmt.Sprintf("10.234.%d.1/24", id))
	up(n.b.ns, "wire", fmt.Sprintf("10.234.%d.2/24", id))
	// A pod behind each node, and the routes to the other node's pods.
	for _, p := range []struct {
		node, pod, ip, other, via string
	}{{n.a.ns, n.clientNS, n.clientIP, n.serverIP, fmt.Sprintf("10.234.%d.2", id)},
		{n.b.ns, n.serverNS, n.serverIP, n.clientIP, fmt.Sprintf("10.234.%d.1", id)}} {
		prefix := p.ip[:strings.LastIndexByte(p.ip, '.')]
		run(t, "ip", "-n", p.node, "link", "add", "vpod", "type", "veth", "peer", "name", "eth0", "netns", p.pod)
		up(p.node, "vpod", prefix+".1/24")
		up(p.pod, "eth0", p.ip+"/24")
		run(t, "ip", "-n", p.pod, "route", "add", "default", "via", prefix+".1")
		other := p.other[:strings.LastIndexByte(p.other, '.')] + ".0/24"
		run(t, "ip", "-n", p.node, "route", "add", other, "via", p.via)
	}
	n.startServer(t)
	return n
}

// dnat makes node a translate the Service's address to the server pod's,
// in prerouting, as kube-proxy's rules do.
func (n *clusterNet) dnat(t *testing.T, vip string, vport int, ip string, port int) {
	t.Helper()
	rules := fmt.Sprintf(`table ip wirescope_test {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr %s tcp dport %d dnat to %s:%d
  }
}
`, vip, vport, ip, port)
	cmd := exec.Command("ip", "netns", "exec", n.a.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
}

// startServer runs nginx in the server pod on :8080, answering every path
// with its name.
func (n *clusterNet) startServer(t *testing.T) {
	t.Helper()
	nginxIn(t, n.serverNS, n.serverIP, `served $uri\n`)
}

// curl makes count requests from the client pod to vip:80/path, each on
// its own connection, and checks each was served.
func (n *clusterNet) curl(t *testing.T, vip, path string, count int) {
	t.Helper()
	for i := range count {
		out, err := exec.Command("ip", "netns", "exec", n.clientNS, "curl", "-sS", "--max-time", "5",
			"http://"+vip+path).CombinedOutput()
		if err != nil || string(out) != "served "+path+"\n" {
			t.Fatalf("request %d to %s%s from the client pod: %v %q", i, vip, path, err, out)
		}
	}
}

// clusterAgent is `wirescope agent` on a node, restartable on its store.
type clusterAgent struct {
	bin, netns, node, addr, data, token string
	cmd                                 *exec.Cmd
}

func (a *clusterAgent) start(t *testing.T) {
	t.Helper()
	a.cmd = exec.Command("ip", "netns", "exec", a.netns, a.bin, "agent", "--iface", "any",
		"--filter", fmt.Sprintf("not port %d", agentPort), "--listen", a.addr, "--token-file", a.token,
		"--data-dir", a.data, "--node-name", a.node, "--segment-age", "2s")
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd := a.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	startWaiting(t, a.cmd, "capturing")
}

// flush waits until the agent has stored what it captured: it flushes
// every second and rotates segments every 2 s.
func (a *clusterAgent) flush(t *testing.T) {
	t.Helper()
	time.Sleep(2500 * time.Millisecond)
}

func (a *clusterAgent) kill(t *testing.T) {
	t.Helper()
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	a.cmd.Wait()
}

// clusterClient is mcp-go's client on the hub's streamable HTTP endpoint.
func clusterClient(ctx context.Context, t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	initialize(ctx, t, c)
	return c
}

var callIDRe = regexp.MustCompile(`\bid=(\S+)`)

// callLines counts the calls a search_calls answer lists.
func callLines(answer string) int {
	return len(callIDRe.FindAllString(answer, -1))
}

func callID(t *testing.T, answer string) string {
	t.Helper()
	m := callIDRe.FindStringSubmatch(answer)
	if m == nil {
		t.Fatalf("no call id in:\n%s", answer)
	}
	return m[1]
}

// kubeEnv is the test's namespace in the real API server of make test.
type kubeEnv struct {
	t     *testing.T
	ctx   context.Context
	cs    *kubernetes.Clientset
	ns    string
	nodes []string
}

func newKubeEnv(t *testing.T, kubeconfig string) *kubeEnv {
	t.Helper()
	cfg, err := identity.RESTConfig(kubeconfig, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeEnv{t: t, ctx: t.Context(), cs: cs, ns: fmt.Sprintf("wsc-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	if _, err := cs.CoreV1().Namespaces().Create(k.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("KUBECONFIG=%s is set but the API server does not answer: %v", kubeconfig, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Without a controller manager nothing is garbage-collected:
		// delete what was made, then the namespace.
		all, del := metav1.ListOptions{}, metav1.DeleteOptions{}
		cs.CoreV1().Pods(k.ns).DeleteCollection(ctx, del, all)
		cs.DiscoveryV1().EndpointSlices(k.ns).DeleteCollection(ctx, del, all)
		cs.AppsV1().ReplicaSets(k.ns).DeleteCollection(ctx, del, all)
		cs.AppsV1().DaemonSets(k.ns).DeleteCollection(ctx, del, all)
		if svcs, err := cs.CoreV1().Services(k.ns).List(ctx, all); err == nil {
			for _, s := range svcs.Items {
				cs.CoreV1().Services(k.ns).Delete(ctx, s.Name, del)
			}
		}
		for _, n := range k.nodes {
			cs.CoreV1().Nodes().Delete(ctx, n, del)
		}
		if err := cs.CoreV1().Namespaces().Delete(ctx, k.ns, del); err != nil {
			t.Logf("deleting namespace %s: %v", k.ns, err)
		}
	})
	return k
}

func (k *kubeEnv) must(err error) {
	k.t.Helper()
	if err != nil {
		k.t.Fatal(err)
	}
}

// create makes a namespaced object of the kinds this test uses.
func (k *kubeEnv) create(o any) any {
	k.t.Helper()
	var err error
	switch o := o.(type) {
	case *appsv1.DaemonSet:
		o, err = k.cs.AppsV1().DaemonSets(k.ns).Create(k.ctx, o, metav1.CreateOptions{})
		k.must(err)
		return o
	case *appsv1.ReplicaSet:
		o, err = k.cs.AppsV1().ReplicaSets(k.ns).Create(k.ctx, o, metav1.CreateOptions{})
		k.must(err)
		return o
	}
	k.t.Fatalf("create %T", o)
	return nil
}

// node makes a Node with its InternalIP, status set as a kubelet would.
func (k *kubeEnv) node(suffix, ip string) string {
	k.t.Helper()
	n, err := k.cs.CoreV1().Nodes().Create(k.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: k.ns + "-node-" + suffix}}, metav1.CreateOptions{})
	k.must(err)
	k.nodes = append(k.nodes, n.Name)
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	_, err = k.cs.CoreV1().Nodes().UpdateStatus(k.ctx, n, metav1.UpdateOptions{})
	k.must(err)
	return n.Name
}

func selector(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: "registry.example/" + app + ":1"}}}}
}

func owner(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}
}

// replicaSet makes the ReplicaSet of Deployment name at a template hash,
// owned by the Deployment as the deployment controller makes it.
func (k *kubeEnv) replicaSet(name, hash string) *appsv1.ReplicaSet {
	k.t.Helper()
	d, err := k.cs.AppsV1().Deployments(k.ns).Get(k.ctx, name, metav1.GetOptions{})
	if err != nil {
		d, err = k.cs.AppsV1().Deployments(k.ns).Create(k.ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1.DeploymentSpec{Selector: selector(name), Template: podTemplate(name)}}, metav1.CreateOptions{})
		k.must(err)
		k.t.Cleanup(func() {
			k.cs.AppsV1().Deployments(k.ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	tmpl := podTemplate(name)
	tmpl.Labels["pod-template-hash"] = hash
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-" + hash, Labels: tmpl.Labels,
		OwnerReferences: []metav1.OwnerReference{owner("apps/v1", "Deployment", d.Name, d.UID)}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels}, Template: tmpl}}
	return k.create(rs).(*appsv1.ReplicaSet)
}

// kpod is a pod to create and give the status a kubelet would.
type kpod struct {
	name, app, node, ip, hash string
	hostNet                   bool
	port                      int32
	start                     time.Time
	owner                     metav1.OwnerReference
}

func (k *kubeEnv) pod(s kpod) *corev1.Pod {
	k.t.Helper()
	labels := map[string]string{"app": s.app}
	if s.hash != "" {
		labels["pod-template-hash"] = s.hash
	}
	c := corev1.Container{Name: s.app, Image: "registry.example/" + s.app + ":" + cmpOrString(s.hash, "1")}
	if s.port != 0 {
		p := corev1.ContainerPort{ContainerPort: s.port, Protocol: corev1.ProtocolTCP}
		if s.hostNet {
			p.HostPort = s.port
		}
		c.Ports = []corev1.ContainerPort{p}
	}
	p, err := k.cs.CoreV1().Pods(k.ns).Create(k.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: labels, OwnerReferences: []metav1.OwnerReference{s.owner}},
		Spec:       corev1.PodSpec{NodeName: s.node, HostNetwork: s.hostNet, Containers: []corev1.Container{c}},
	}, metav1.CreateOptions{})
	k.must(err)
	start := s.start
	if start.IsZero() {
		start = time.Now()
	}
	st := metav1.NewTime(start)
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: s.ip, PodIPs: []corev1.PodIP{{IP: s.ip}}, StartTime: &st}
	if s.hostNet {
		p.Status.HostIP = s.ip
	}
	p, err = k.cs.CoreV1().Pods(k.ns).UpdateStatus(k.ctx, p, metav1.UpdateOptions{})
	k.must(err)
	return p
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (k *kubeEnv) deletePod(name string) {
	k.t.Helper()
	zero := int64(0)
	k.must(k.cs.CoreV1().Pods(k.ns).Delete(k.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
}

// service makes a Service selecting app; headless without a cluster IP.
func (k *kubeEnv) service(name, app, portName string, headless bool, port, target int32) *corev1.Service {
	k.t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
		Ports: []corev1.ServicePort{{Name: portName, Port: port, TargetPort: intstr.FromInt32(target)}}}}
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	s, err := k.cs.CoreV1().Services(k.ns).Create(k.ctx, s, metav1.CreateOptions{})
	k.must(err)
	return s
}

// endpoint is a ready endpoint naming pod p, as the endpointslice
// controller writes it.
func (k *kubeEnv) endpoint(p *corev1.Pod) discoveryv1.Endpoint {
	ready := true
	return discoveryv1.Endpoint{Addresses: []string{p.Status.PodIP}, NodeName: &p.Spec.NodeName,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
}

func (k *kubeEnv) slice(name, service, portName string, port int32, eps ...discoveryv1.Endpoint) {
	k.t.Helper()
	_, err := k.cs.DiscoveryV1().EndpointSlices(k.ns).Create(k.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps,
		Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}, metav1.CreateOptions{})
	k.must(err)
}

func (k *kubeEnv) deleteSlice(name string) {
	k.t.Helper()
	k.must(k.cs.DiscoveryV1().EndpointSlices(k.ns).Delete(k.ctx, name, metav1.DeleteOptions{}))
}
