//go:build !lean

package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/wirescope/wirescope/dissect"
)

// kenv is one test's namespace on the real API server of ../shared/k8s.
type kenv struct {
	t     testing.TB
	ctx   context.Context
	cfg   *rest.Config
	cs    *kubernetes.Clientset
	ns    string
	nodes []string
}

// newKenv reads KUBECONFIG (exported by k8s-testenv.sh) and makes a
// namespace idt-NAME-XXXX, deleted with what the test created when it ends.
func newKenv(t testing.TB, name string) *kenv {
	t.Helper()
	kc := os.Getenv("KUBECONFIG")
	if kc == "" {
		t.Skip("no KUBECONFIG: start a kube-apiserver with eval \"$(bash ../shared/k8s/k8s-testenv.sh start)\" (make test does)")
	}
	cfg, err := RESTConfig(kc, false)
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &kenv{t: t, ctx: t.Context(), cfg: cfg, cs: cs, ns: "idt-" + name + "-" + randSuffix()}
	if _, err := cs.CoreV1().Namespaces().Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("KUBECONFIG=%s is set but the API server does not answer: %v", kc, err)
	}
	t.Cleanup(e.cleanup)
	return e
}

func randSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanup deletes what the test made: without a controller manager, a
// namespace's objects are not deleted with it.
func (e *kenv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zero := int64(0)
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg}
	all := metav1.ListOptions{}
	cs, ns := e.cs, e.ns
	for _, err := range []error{
		cs.CoreV1().Pods(ns).DeleteCollection(ctx, del, all),
		cs.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, del, all),
		cs.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, del, all),
		cs.AppsV1().Deployments(ns).DeleteCollection(ctx, del, all),
		cs.AppsV1().StatefulSets(ns).DeleteCollection(ctx, del, all),
		cs.AppsV1().DaemonSets(ns).DeleteCollection(ctx, del, all),
		cs.BatchV1().Jobs(ns).DeleteCollection(ctx, del, all),
		cs.BatchV1().CronJobs(ns).DeleteCollection(ctx, del, all),
	} {
		if err != nil {
			e.t.Logf("cleanup %s: %v", ns, err)
		}
	}
	svcs, err := cs.CoreV1().Services(ns).List(ctx, all)
	if err == nil {
		for _, s := range svcs.Items {
			cs.CoreV1().Services(ns).Delete(ctx, s.Name, del)
		}
	}
	for _, n := range e.nodes {
		cs.CoreV1().Nodes().Delete(ctx, n, del)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, del); err != nil {
		e.t.Logf("cleanup %s: %v", ns, err)
	}
}

func (e *kenv) check(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// node makes a node with an InternalIP (status set as a kubelet would).
func (e *kenv) node(ip string) string {
	name := e.ns + "-node-" + randSuffix()
	n, err := e.cs.CoreV1().Nodes().Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	e.check(err)
	e.nodes = append(e.nodes, name)
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	_, err = e.cs.CoreV1().Nodes().UpdateStatus(e.ctx, n, metav1.UpdateOptions{})
	e.check(err)
	return name
}

func ctrl(apiVersion, kind, name string, uid types.UID) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes}}
}

func template(lbl map[string]string) corev1.PodTemplateSpec {
	restart := corev1.RestartPolicyAlways
	if lbl == nil {
		restart = corev1.RestartPolicyOnFailure // a Job's
	}
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example/app:1"}}, RestartPolicy: restart}}
}

// podSpec is a pod to create and give a status, as a kubelet would.
type podSpec struct {
	name    string
	labels  map[string]string
	owners  []metav1.OwnerReference
	node    string
	hostNet bool
	ports   []int32
	images  []string
	ip      string
	start   time.Time
	phase   corev1.PodPhase
}

func (e *kenv) pod(ps podSpec) *corev1.Pod {
	e.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: ps.name, Namespace: e.ns, Labels: ps.labels, OwnerReferences: ps.owners},
		Spec: corev1.PodSpec{NodeName: ps.node, HostNetwork: ps.hostNet}}
	images := ps.images
	if len(images) == 0 {
		images = []string{"registry.example/" + ps.name + ":1"}
	}
	for i, img := range images {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img}
		if i == 0 {
			for _, port := range ps.ports {
				cp := corev1.ContainerPort{ContainerPort: port, Protocol: corev1.ProtocolTCP}
				if ps.hostNet {
					cp.HostPort = port
				}
				c.Ports = append(c.Ports, cp)
			}
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	p, err := e.cs.CoreV1().Pods(e.ns).Create(e.ctx, p, metav1.CreateOptions{})
	e.check(err)
	if ps.ip == "" {
		return p
	}
	return e.setStatus(p, ps.ip, ps.start, cmpOr(ps.phase, corev1.PodRunning))
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func (e *kenv) setStatus(p *corev1.Pod, ip string, start time.Time, phase corev1.PodPhase) *corev1.Pod {
	e.t.Helper()
	if start.IsZero() {
		start = time.Now()
	}
	st := metav1.NewTime(start)
	p.Status = corev1.PodStatus{Phase: phase, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, StartTime: &st}
	if p.Spec.HostNetwork {
		p.Status.HostIP = ip
	}
	p, err := e.cs.CoreV1().Pods(e.ns).UpdateStatus(e.ctx, p, metav1.UpdateOptions{})
	e.check(err)
	return p
}

func (e *kenv) deletePod(name string) {
	e.t.Helper()
	zero := int64(0)
	e.check(e.cs.CoreV1().Pods(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}))
}

// slice makes an EndpointSlice of a service naming pods (targetRef) at
// their addresses, as the endpointslice controller would.
func (e *kenv) slice(name, service string, port int32, portName string, eps ...discoveryv1.Endpoint) {
	e.t.Helper()
	_, err := e.cs.DiscoveryV1().EndpointSlices(e.ns).Create(e.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}, metav1.CreateOptions{})
	e.check(err)
}

func endpoint(p *corev1.Pod, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{p.Status.PodIP}, NodeName: &p.Spec.NodeName,
		Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID}}
}

func (e *kenv) service(name string, selector map[string]string, headless bool) *corev1.Service {
	e.t.Helper()
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	s, err := e.cs.CoreV1().Services(e.ns).Create(e.ctx, s, metav1.CreateOptions{})
	e.check(err)
	return s
}

func (e *kenv) kube(o KubeOptions) *Kube {
	e.t.Helper()
	if o.SyncTimeout == 0 {
		o.SyncTimeout = 30 * time.Second
	}
	k, err := NewKube(e.ctx, e.cfg, o)
	e.check(err)
	e.t.Cleanup(k.Close)
	return k
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ap(s string, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(s), port)
}

func idString(id dissect.Identity, ok bool) string {
	if !ok {
		return "unknown"
	}
	return fmt.Sprintf("pod=%s ns=%s workload=%s service=%s node=%s version=%s", id.Pod, id.Namespace, id.Workload, id.Service, id.Node, id.Version)
}

// TestKubeIdentify: pods of a Deployment (through its ReplicaSet), a
// StatefulSet, a hostNetwork DaemonSet, a CronJob's Job and a bare pod,
// listed at sync or seen after, are named with their workload, service,
// node and version; node addresses and cluster IPs name their node and
// service.
func TestKubeIdentify(t *testing.T) {
	e := newKenv(t, "ident")
	cs, ns := e.cs, e.ns
	nodeA := e.node("10.231.0.11")
	nodeB := e.node("10.231.0.12")

	web := map[string]string{"app": "checkout"}
	dep, err := cs.AppsV1().Deployments(ns).Create(e.ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "checkout"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: web}, Template: template(web)}}, metav1.CreateOptions{})
	e.check(err)
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(e.ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout-7c4b8d9f6", OwnerReferences: ctrl("apps/v1", "Deployment", dep.Name, dep.UID)},
		Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: web}, Template: template(web)}}, metav1.CreateOptions{})
	e.check(err)
	checkout := e.pod(podSpec{name: "checkout-7c4b8d9f6-m8wzt", node: nodeA, ip: "10.244.7.10",
		labels: map[string]string{"app": "checkout", "tier": "web", "pod-template-hash": "7c4b8d9f6"},
		owners: ctrl("apps/v1", "ReplicaSet", rs.Name, rs.UID), images: []string{"registry.example/checkout:2.4.0", "registry.example/envoy:1.31"}})
	svc := e.service("checkout", web, false)
	// A service whose selector also matches, first by name: the
	// EndpointSlice names the pod's service, not the selector.
	e.service("aaa-web", map[string]string{"tier": "web"}, false)
	e.slice("checkout-x1", "checkout", 8080, "http", endpoint(checkout, true))

	dbl := map[string]string{"app": "db"}
	sts, err := cs.AppsV1().StatefulSets(ns).Create(e.ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: dbl}, Template: template(dbl)}}, metav1.CreateOptions{})
	e.check(err)
	e.pod(podSpec{name: "db-0", node: nodeB, ip: "10.244.8.20", labels: map[string]string{"app": "db", "controller-revision-hash": "db-5d8f7b6c4"},
		owners: ctrl("apps/v1", "StatefulSet", sts.Name, sts.UID)})
	e.service("db", dbl, true) // no slice: the selector names it

	bare := e.pod(podSpec{name: "debug-shell", node: nodeA, ip: "10.244.7.99"})

	// One namespace: other tests on the same API server may give their
	// pods these addresses.
	k := e.kube(KubeOptions{Namespace: ns})
	if k.Known().IsZero() || k.Known().After(time.Now()) {
		t.Errorf("Known %v", k.Known())
	}

	// Seen after the sync: a DaemonSet on the host network and a CronJob's
	// Job.
	agl := map[string]string{"app": "agent"}
	ds, err := cs.AppsV1().DaemonSets(ns).Create(e.ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: agl}, Template: template(agl)}}, metav1.CreateOptions{})
	e.check(err)
	agent := e.pod(podSpec{name: "agent-x7k2p", node: nodeA, hostNet: true, ports: []int32{9100}, ip: "10.231.0.11",
		labels: map[string]string{"app": "agent", "controller-revision-hash": "6b9f7c5d8"}, owners: ctrl("apps/v1", "DaemonSet", ds.Name, ds.UID)})
	e.service("agents", agl, true)
	cj, err := cs.BatchV1().CronJobs(ns).Create(e.ctx, &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(nil)}}}}, metav1.CreateOptions{})
	e.check(err)
	job, err := cs.BatchV1().Jobs(ns).Create(e.ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "nightly-29000000", OwnerReferences: ctrl("batch/v1", "CronJob", cj.Name, cj.UID)},
		Spec: batchv1.JobSpec{Template: template(nil)}}, metav1.CreateOptions{})
	e.check(err)
	e.pod(podSpec{name: "nightly-29000000-q8d7n", node: nodeB, ip: "10.244.8.31", owners: ctrl("batch/v1", "Job", job.Name, job.UID)})

	changed := make(chan struct{}, 100)
	k.OnChange(func() { changed <- struct{}{} })
	e.slice("agents-a", "agents", 9100, "api", endpoint(agent, true))
	select {
	case <-changed:
	case <-time.After(20 * time.Second):
		t.Fatal("OnChange not called within 20s of an EndpointSlice created")
	}

	now := func() time.Time { return time.Now() }
	// The Job reaches the cache on its own watch, possibly after its pod
	// (CI saw it): the pod's workload follows it to the CronJob once it
	// does (the Job's event changes the generation its identity was
	// resolved at).
	waitFor(t, "the pods created after sync, and the Job", func() bool {
		nightly, ok1 := k.Identify(ap("10.244.8.31", 80), now())
		id, ok2 := k.Identify(ap("10.231.0.11", 9100), now())
		return ok1 && ok2 && id.Pod != "" && nightly.Workload == "nightly"
	})
	for _, c := range []struct {
		ep   netip.AddrPort
		want string
	}{
		{ap("10.244.7.10", 8080), "pod=checkout-7c4b8d9f6-m8wzt ns=" + ns + " workload=checkout service=checkout node=" + nodeA + " version=7c4b8d9f6"},
		{ap("10.244.8.20", 5432), "pod=db-0 ns=" + ns + " workload=db service=db node=" + nodeB + " version=db-5d8f7b6c4"},
		{ap("10.244.7.99", 22), "pod=debug-shell ns=" + ns + " workload=debug-shell service= node=" + nodeA + " version="},
		{ap("10.231.0.11", 9100), "pod=agent-x7k2p ns=" + ns + " workload=agent service=agents node=" + nodeA + " version=6b9f7c5d8"},
		{ap("10.231.0.11", 41234), "pod= ns= workload= service= node=" + nodeA + " version="}, // not the agent's port: the node
		{ap("10.231.0.12", 10250), "pod= ns= workload= service= node=" + nodeB + " version="},
		{ap("10.244.8.31", 443), "pod=nightly-29000000-q8d7n ns=" + ns + " workload=nightly service= node=" + nodeB + " version="},
		{ap(svc.Spec.ClusterIP, 80), "pod= ns=" + ns + " workload= service=checkout node= version="},
		{ap("::ffff:10.244.7.10", 8080), "pod=checkout-7c4b8d9f6-m8wzt ns=" + ns + " workload=checkout service=checkout node=" + nodeA + " version=7c4b8d9f6"},
		{ap("10.244.99.99", 80), "unknown"},
	} {
		if got := idString(k.Identify(c.ep, now())); got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.ep, got, c.want)
		}
	}

	pods := map[string]Pod{}
	for _, p := range k.Pods() {
		pods[p.Name] = p
	}
	if p := pods["checkout-7c4b8d9f6-m8wzt"]; p.WorkloadKind != "Deployment" || p.Version != "7c4b8d9f6" || p.UID != string(checkout.UID) ||
		!slices.Equal(p.Images, []string{"registry.example/checkout:2.4.0", "registry.example/envoy:1.31"}) || p.IP != "10.244.7.10" ||
		p.StartTime == nil || p.DeletionTime != nil || p.Service != "checkout" || p.HostNetwork {
		t.Errorf("checkout: %+v", p)
	}
	if p := pods["agent-x7k2p"]; p.WorkloadKind != "DaemonSet" || !p.HostNetwork || !slices.Equal(p.Ports, []uint16{9100}) {
		t.Errorf("agent: %+v", p)
	}
	if p := pods["db-0"]; p.WorkloadKind != "StatefulSet" || p.Workload != "db" {
		t.Errorf("db-0: %+v", p)
	}
	if p := pods["nightly-29000000-q8d7n"]; p.WorkloadKind != "CronJob" || p.Workload != "nightly" {
		t.Errorf("nightly: %+v", p)
	}
	if p := pods["debug-shell"]; p.WorkloadKind != "" || p.Workload != "debug-shell" || p.UID != string(bare.UID) {
		t.Errorf("debug-shell: %+v", p)
	}
	if len(pods) != 5 {
		t.Errorf("%d pods listed, want 5: %v", len(pods), pods)
	}

	eps := k.ServiceEndpoints(ns, "agents")
	want := []Endpoint{{Addr: netip.MustParseAddr("10.231.0.11"), Port: 9100, PortName: "api", Node: nodeA, Ready: true}}
	if !slices.Equal(eps, want) {
		t.Errorf("ServiceEndpoints(agents) = %+v, want %+v", eps, want)
	}
	// A second node's agent joins, not ready yet.
	agentB := e.pod(podSpec{name: "agent-b2m4c", node: nodeB, hostNet: true, ports: []int32{9100}, ip: "10.231.0.12",
		labels: agl, owners: ctrl("apps/v1", "DaemonSet", ds.Name, ds.UID)})
	e.slice("agents-b", "agents", 9100, "api", endpoint(agentB, false))
	waitFor(t, "the second agent's endpoint", func() bool { return len(k.ServiceEndpoints(ns, "agents")) == 2 })
	want = append(want, Endpoint{Addr: netip.MustParseAddr("10.231.0.12"), Port: 9100, PortName: "api", Node: nodeB, Ready: false})
	if eps := k.ServiceEndpoints(ns, "agents"); !slices.Equal(eps, want) {
		t.Errorf("ServiceEndpoints(agents) = %+v, want %+v", eps, want)
	}
	if eps := k.ServiceEndpoints(ns, "nope"); len(eps) != 0 {
		t.Errorf("ServiceEndpoints(nope) = %+v", eps)
	}
	// Agents, which the hub sends its agent token to: ready endpoints
	// that are pods of the namespace; an EndpointSlice naming an address
	// no pod of it holds (anyone allowed to write slices could add one)
	// is rejected.
	ready := true
	api, port := "api", int32(9100)
	_, err = e.cs.DiscoveryV1().EndpointSlices(ns).Create(e.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "agents-evil", Labels: map[string]string{discoveryv1.LabelServiceName: "agents"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"203.0.113.7"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &api, Port: &port}},
	}, metav1.CreateOptions{})
	e.check(err)
	waitFor(t, "the hostile endpoint", func() bool { return len(k.ServiceEndpoints(ns, "agents")) == 3 })
	agents, rejected := k.Agents(ns, "agents", "api")
	if !slices.Equal(agents, []netip.AddrPort{ap("10.231.0.11", 9100)}) || !slices.Equal(rejected, []netip.AddrPort{ap("203.0.113.7", 9100)}) {
		t.Errorf("Agents = %v, rejected %v; want the ready agent, and the address no pod holds rejected", agents, rejected)
	}

	// The ReplicaSet's owner changes: the workload follows (through the
	// lister, at the next call).
	rs, err = cs.AppsV1().ReplicaSets(ns).Get(e.ctx, rs.Name, metav1.GetOptions{})
	e.check(err)
	rs.OwnerReferences = nil
	_, err = cs.AppsV1().ReplicaSets(ns).Update(e.ctx, rs, metav1.UpdateOptions{})
	e.check(err)
	waitFor(t, "the orphaned ReplicaSet", func() bool {
		id, _ := k.Identify(ap("10.244.7.10", 8080), now())
		return id.Workload == "checkout-7c4b8d9f6"
	})

	if st := k.Stats(); st.Pods < 6 || st.Nodes < 2 || st.Services < 1 || st.LastEvent.IsZero() || !st.Known.Equal(k.Known()) {
		t.Errorf("Stats %+v", st)
	}
	u, err := url.Parse(e.cfg.Host)
	e.check(err)
	if fp := k.Fingerprint(); fp != "kube "+u.Host {
		t.Errorf("Fingerprint %q, want %q", fp, "kube "+u.Host)
	}
}

// TestKubeIPReuse: pod A holds an address and is deleted, pod B gets the
// address; times before and after name A and B, the gap between neither.
func TestKubeIPReuse(t *testing.T) {
	e := newKenv(t, "reuse")
	node := e.node("10.231.1.11")
	k := e.kube(KubeOptions{})
	const ip = "10.244.1.5"
	e.pod(podSpec{name: "cart-5d8f7b6c4-aaaaa", node: node, ip: ip, labels: map[string]string{"pod-template-hash": "5d8f7b6c4"}})
	waitFor(t, "pod A", func() bool { id, _ := k.Identify(ap(ip, 80), time.Now()); return id.Pod == "cart-5d8f7b6c4-aaaaa" })
	before := time.Now()
	e.deletePod("cart-5d8f7b6c4-aaaaa")
	waitFor(t, "pod A deleted", func() bool { _, ok := k.Identify(ap(ip, 80), time.Now()); return !ok })
	// The API's times are whole seconds: B starts two seconds after the
	// deletion was seen, so the gap between them is at least a second.
	gap := time.Now().Add(time.Second)
	e.pod(podSpec{name: "cart-6f7d8c9b5-p4x2n", node: node, ip: ip, start: gap.Add(time.Second), labels: map[string]string{"pod-template-hash": "6f7d8c9b5"}})
	waitFor(t, "pod B", func() bool { id, _ := k.Identify(ap(ip, 80), time.Now()); return id.Pod == "cart-6f7d8c9b5-p4x2n" })
	after := time.Now()
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{before, "cart-5d8f7b6c4-aaaaa"},
		{gap, ""},
		{after, "cart-6f7d8c9b5-p4x2n"},
		{after.Add(time.Hour), "cart-6f7d8c9b5-p4x2n"},
	} {
		id, ok := k.Identify(ap(ip, 80), c.at)
		if id.Pod != c.want || ok != (c.want != "") {
			t.Errorf("at %v: %s, want pod %q", c.at.Format(time.RFC3339Nano), idString(id, ok), c.want)
		}
		if ok && (id.Workload != "cart" || id.Version == "" || !strings.Contains(c.want, id.Version)) {
			t.Errorf("at %v: %s, want workload cart and the pod's version", c.at, idString(id, ok))
		}
	}

	// B completes (a Job's pod): the object stays, the address is free.
	// C gets it with a start while B still held it: B keeps the times it
	// certainly held it.
	b, err := e.cs.CoreV1().Pods(e.ns).Get(e.ctx, "cart-6f7d8c9b5-p4x2n", metav1.GetOptions{})
	e.check(err)
	b.Status.Phase = corev1.PodSucceeded
	b.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c0", Image: "registry.example/x:1",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.Now()}}}}
	_, err = e.cs.CoreV1().Pods(e.ns).UpdateStatus(e.ctx, b, metav1.UpdateOptions{})
	e.check(err)
	waitFor(t, "pod B completed", func() bool { _, ok := k.Identify(ap(ip, 80), time.Now()); return !ok })
	e.pod(podSpec{name: "cart-6f7d8c9b5-zz9k2", node: node, ip: ip, start: after, labels: map[string]string{"pod-template-hash": "6f7d8c9b5"}})
	waitFor(t, "pod C", func() bool { id, _ := k.Identify(ap(ip, 80), time.Now()); return id.Pod == "cart-6f7d8c9b5-zz9k2" })
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{before, "cart-5d8f7b6c4-aaaaa"},
		{after, "cart-6f7d8c9b5-p4x2n"},
		{time.Now(), "cart-6f7d8c9b5-zz9k2"},
	} {
		if id, ok := k.Identify(ap(ip, 80), c.at); id.Pod != c.want {
			t.Errorf("at %v: %s, want pod %q", c.at.Format(time.RFC3339Nano), idString(id, ok), c.want)
		}
	}

	var mine []Pod
	for _, p := range k.Pods() {
		if p.Namespace == e.ns {
			mine = append(mine, p)
		}
	}
	if len(mine) != 3 || mine[0].DeletionTime == nil || mine[1].DeletionTime == nil || mine[2].DeletionTime != nil ||
		mine[0].IP != ip || mine[1].IP != ip || mine[2].IP != ip {
		t.Errorf("Pods: %+v", mine)
	}
	if st := k.Stats(); st.Deleted < 1 {
		t.Errorf("Stats %+v, want the deleted pod kept", st)
	}
}

// TestKubeKnown: before the informers synced, only a hold that is certain
// answers; a pod whose address appeared after the sync is not vouched for
// before then.
func TestKubeKnown(t *testing.T) {
	e := newKenv(t, "known")
	node := e.node("10.231.2.11")
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.pod(podSpec{name: "old-1", node: node, ip: "10.244.2.1", start: start})
	k := e.kube(KubeOptions{})
	// Started before Known and alive: its address was its own since start.
	if id, ok := k.Identify(ap("10.244.2.1", 80), start.Add(time.Minute)); !ok || id.Pod != "old-1" {
		t.Errorf("after start, before Known: %s", idString(id, ok))
	}
	// Before its start, someone unknown may have held it.
	if id, ok := k.Identify(ap("10.244.2.1", 80), start.Add(-time.Minute)); ok {
		t.Errorf("before start: %s, want unknown", idString(id, ok))
	}
	// Its address appears after the sync, with a start before it.
	e.pod(podSpec{name: "late-1", node: node, ip: "10.244.2.2", start: start})
	waitFor(t, "late-1", func() bool { _, ok := k.Identify(ap("10.244.2.2", 80), time.Now()); return ok })
	if id, ok := k.Identify(ap("10.244.2.2", 80), k.Known().Add(-time.Second)); ok {
		t.Errorf("late pod before Known: %s, want unknown", idString(id, ok))
	}
	// After Known, before it was seen: likely the pod's, and no one else
	// claims the address.
	if id, ok := k.Identify(ap("10.244.2.2", 80), k.Known().Add(time.Millisecond)); !ok || id.Pod != "late-1" {
		t.Errorf("late pod after Known: %s", idString(id, ok))
	}
}

// aheadClock is the real clock moved ahead by a settable offset: the API
// server's timestamps stay comparable with it.
type aheadClock struct{ ns atomic.Int64 }

func (c *aheadClock) Now() time.Time      { return time.Now().Add(time.Duration(c.ns.Load())) }
func (c *aheadClock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// TestKubeRetention: deleted pods are dropped once retention has passed,
// and past MaxDeleted the oldest go first.
func TestKubeRetention(t *testing.T) {
	e := newKenv(t, "retain")
	node := e.node("10.231.3.11")
	clock := &aheadClock{}
	k := e.kube(KubeOptions{Retention: time.Hour, MaxDeleted: 3, Now: clock.Now, Namespace: e.ns})
	mine := func() int { return len(k.Pods()) }
	base := k.Stats()
	if base.Pods != 0 || base.Deleted != 0 || base.Evicted != 0 {
		t.Fatalf("a new namespace: Stats %+v", base)
	}
	var seen []time.Time
	for i := range 5 {
		name, ip := fmt.Sprintf("churn-%d", i), fmt.Sprintf("10.244.3.%d", i+1)
		e.pod(podSpec{name: name, node: node, ip: ip})
		waitFor(t, name, func() bool { _, ok := k.Identify(ap(ip, 80), clock.Now()); return ok })
		seen = append(seen, clock.Now())
		e.deletePod(name)
		waitFor(t, name+" deleted", func() bool { return k.Stats().Deleted == base.Deleted+min(i+1, 3) && mine() == min(i+1, 3) })
	}
	st := k.Stats()
	if st.Evicted != base.Evicted+2 {
		t.Errorf("Stats %+v, want 2 evicted for the bound of 3", st)
	}
	// The two oldest are forgotten, the three newest kept.
	for i, at := range seen {
		ip := fmt.Sprintf("10.244.3.%d", i+1)
		id, ok := k.Identify(ap(ip, 80), at)
		if want := i >= 2; ok != want || ok && id.Pod != fmt.Sprintf("churn-%d", i) {
			t.Errorf("churn-%d at %v: %s, want known %v", i, at, idString(id, ok), want)
		}
	}
	clock.Add(2 * time.Hour)
	st = k.Stats()
	if st.Deleted != 0 || st.Evicted != base.Evicted+5 || mine() != 0 {
		t.Errorf("after retention: Stats %+v, %d pods of ours listed", st, mine())
	}
	if _, ok := k.Identify(ap("10.244.3.5", 80), seen[4]); ok {
		t.Error("a pod past retention still named")
	}
}

// countWatches wraps a config's transport to count watch requests by
// resource, and requests naming one pod.
type countWatches struct {
	mu      sync.Mutex
	watches map[string]int
	perPod  int
}

func (c *countWatches) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		c.mu.Lock()
		if r.URL.Query().Get("watch") == "true" {
			c.watches[parts[len(parts)-1]]++
		}
		if i := slices.Index(parts, "pods"); i >= 0 && i < len(parts)-1 {
			c.perPod++
		}
		c.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// createPods makes n pods with addresses 10.245.x.y, in parallel.
func (e *kenv) createPods(n int, node string) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			p, err := e.cs.CoreV1().Pods(e.ns).Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("many-%d", i)},
				Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.example/many:1"}}}}, metav1.CreateOptions{})
			if err != nil {
				errs <- err
				return
			}
			st := metav1.Now()
			ip := manyAddr(i).Addr().String()
			p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, StartTime: &st}
			if _, err := e.cs.CoreV1().Pods(e.ns).UpdateStatus(e.ctx, p, metav1.UpdateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
}

// manyAddr is the address createPods gives pod i.
func manyAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 245, byte(i / 250), byte(i%250 + 1)}), 80)
}

// waitAllAddressed waits until the n pods of createPods are named.
func waitAllAddressed(t testing.TB, k *Kube, n int) {
	t.Helper()
	waitFor(t, "every pod's address", func() bool {
		for i := range n {
			if _, ok := k.Identify(manyAddr(i), time.Now()); !ok {
				return false
			}
		}
		return true
	})
}

func (e *kenv) deleteAllPods() {
	e.t.Helper()
	zero := int64(0)
	e.check(e.cs.CoreV1().Pods(e.ns).DeleteCollection(e.ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}))
}

// TestKubeOneWatchPerResource: however many pods come and go, the source
// holds one watch per resource type and never asks for a pod by name.
func TestKubeOneWatchPerResource(t *testing.T) {
	e := newKenv(t, "watch")
	node := e.node("10.231.4.11")
	cfg := rest.CopyConfig(e.cfg)
	cw := &countWatches{watches: map[string]int{}}
	cfg.WrapTransport = cw.wrap
	k, err := NewKube(e.ctx, cfg, KubeOptions{SyncTimeout: 30 * time.Second, Namespace: e.ns})
	e.check(err)
	defer k.Close()
	const n = 300
	e.createPods(n, node)
	waitAllAddressed(t, k, n)
	if st := k.Stats(); st.Pods != n {
		t.Errorf("Stats %+v, want %d pods", st, n)
	}
	e.deleteAllPods()
	waitFor(t, "every pod deleted", func() bool { return k.Stats().Deleted == n })
	cw.mu.Lock()
	defer cw.mu.Unlock()
	want := []string{"cronjobs", "daemonsets", "deployments", "endpointslices", "jobs", "namespaces", "nodes", "pods", "replicasets", "services", "statefulsets"}
	var got []string
	for r, c := range cw.watches {
		got = append(got, r)
		if c != 1 {
			t.Errorf("%d watches of %s, want 1", c, r)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("watched %v, want %v", got, want)
	}
	if cw.perPod != 0 {
		t.Errorf("%d requests for single pods", cw.perPod)
	}
	t.Logf("watches %v for %d pods created and deleted", cw.watches, n)
}

// TestKubeForbidden: a service account RBAC does not let list a resource
// gets an error naming it, within the sync timeout.
func TestKubeForbidden(t *testing.T) {
	e := newKenv(t, "rbac")
	sa, err := e.cs.CoreV1().ServiceAccounts(e.ns).Create(e.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "hub"}}, metav1.CreateOptions{})
	e.check(err)
	tok, err := e.cs.CoreV1().ServiceAccounts(e.ns).CreateToken(e.ctx, sa.Name, &authv1.TokenRequest{}, metav1.CreateOptions{})
	e.check(err)
	// Everything a hub needs but cronjobs.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-hub"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services", "nodes", "namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"replicasets", "deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get", "list", "watch"}},
	}}
	_, err = e.cs.RbacV1().ClusterRoles().Create(e.ctx, role, metav1.CreateOptions{})
	e.check(err)
	t.Cleanup(func() { e.cs.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{}) })
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: e.ns + "-hub"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: e.ns}}}
	_, err = e.cs.RbacV1().ClusterRoleBindings().Create(e.ctx, binding, metav1.CreateOptions{})
	e.check(err)
	t.Cleanup(func() {
		e.cs.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})

	cfg := rest.AnonymousClientConfig(e.cfg)
	cfg.BearerToken = tok.Status.Token
	_, err = NewKube(e.ctx, cfg, KubeOptions{SyncTimeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "cronjobs: forbidden") || strings.Contains(err.Error(), "pods:") {
		t.Fatalf("NewKube without cronjobs granted: %v", err)
	}
	t.Log(err)

	role.Rules[3].Resources = append(role.Rules[3].Resources, "cronjobs")
	_, err = e.cs.RbacV1().ClusterRoles().Update(e.ctx, role, metav1.UpdateOptions{})
	e.check(err)
	k, err := NewKube(e.ctx, cfg, KubeOptions{SyncTimeout: 20 * time.Second})
	if err != nil {
		t.Fatalf("NewKube with get, list and watch granted: %v", err)
	}
	k.Close()
}

func TestRESTConfigErrors(t *testing.T) {
	if _, err := RESTConfig("", false); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("neither: %v", err)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := RESTConfig("", true); err == nil || !strings.Contains(err.Error(), "in-cluster") {
		t.Errorf("in-cluster outside a pod: %v", err)
	}
	missing := t.TempDir() + "/missing"
	if _, err := RESTConfig(missing, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing kubeconfig: %v", err)
	}
}

// TestKubeChurnBound: pods created and deleted; the history keeps
// MaxDeleted of them (BenchmarkKubeChurn measures the heap with 5,000).
func TestKubeChurnBound(t *testing.T) {
	st, _ := churn(t, 1000, 250)
	t.Logf("Stats %+v", st)
}

// BenchmarkKubeChurn: 5,000 pods created and deleted through the API
// server, 1,000 kept; reports the heap with them all and after.
func BenchmarkKubeChurn(b *testing.B) {
	for range b.N {
		_, heap := churn(b, 5000, 1000)
		b.ReportMetric(heap[0], "MiB-before")
		b.ReportMetric(heap[1], "MiB-live")
		b.ReportMetric(heap[2], "MiB-after")
	}
}

// churn creates n pods, deletes them, checks what is kept, and returns the
// heap before, with the pods and after their deletion, in MiB.
func churn(t testing.TB, n, keep int) (KubeStats, [3]float64) {
	e := newKenv(t, "churn")
	node := e.node("10.231.5.11")
	var heap [3]float64
	measure := func(i int) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		heap[i] = mib(m.HeapAlloc)
	}
	measure(0)
	k := e.kube(KubeOptions{Namespace: e.ns, MaxDeleted: keep})
	e.createPods(n, node)
	waitAllAddressed(t, k, n)
	measure(1)
	e.deleteAllPods()
	waitFor(t, "every pod deleted", func() bool { st := k.Stats(); return st.Pods == 0 && st.Evicted == uint64(n-keep) })
	st := k.Stats()
	if st.Deleted != keep || len(k.Pods()) != keep || st.Addresses != keep+1 {
		t.Errorf("Stats %+v, want %d deleted pods kept and their addresses (and the node's)", st, keep)
	}
	measure(2)
	t.Logf("heap: %.1f MiB before, %.1f MiB with %d pods, %.1f MiB after their deletion with %d kept", heap[0], heap[1], n, heap[2], keep)
	return st, heap
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// BenchmarkKubeIdentify: Identify over 1,000 pods, from parallel callers
// (dissection shards), at times that mostly hit the cached identity.
func BenchmarkKubeIdentify(b *testing.B) {
	e := newKenv(b, "bench")
	node := e.node("10.231.6.11")
	const n = 1000
	k := e.kube(KubeOptions{Namespace: e.ns})
	e.createPods(n, node)
	waitAllAddressed(b, k, n)
	at := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, ok := k.Identify(manyAddr(i%n), at); !ok {
				b.Fatal("not identified")
			}
		}
	})
}
