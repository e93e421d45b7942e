//go:build !lean

package identity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/wirescope/wirescope/dissect"
)

var _ Source = (*Kube)(nil)

// RESTConfig returns the configuration to reach the API server: from the
// kubeconfig file when one is given, else from the pod's service account
// when inCluster is set. Neither is an error.
func RESTConfig(kubeconfig string, inCluster bool) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	case inCluster:
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (is this running in a pod with a service account?): %w", err)
		}
	default:
		return nil, errors.New("no Kubernetes configuration: give a kubeconfig file or run in the cluster")
	}
	cfg.UserAgent = "wirescope"
	return cfg, nil
}

// KubeOptions configure NewKube. Zero values take the defaults.
type KubeOptions struct {
	// Retention is how long pods (and addresses of nodes and services)
	// are kept after they are gone, to name the traffic they had. Default
	// 24h.
	Retention time.Duration
	// MaxDeleted bounds how many deleted pods are kept, and how many
	// addresses given up by nodes, services and living pods; past it the
	// oldest go first. Default 100,000.
	MaxDeleted int
	// SyncTimeout bounds the wait for the first list of every resource.
	// Default 2 minutes.
	SyncTimeout time.Duration
	// Namespace limits pods, services, EndpointSlices and workloads to one
	// namespace; empty follows all. Nodes and namespaces are followed
	// whole.
	Namespace string
	// Logger receives watch errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock of observed events (deletions seen, addresses first
	// seen) and of retention; default time.Now.
	Now func() time.Time
}

// Endpoint is one address and port of a Service, from its EndpointSlices.
type Endpoint struct {
	Addr     netip.Addr
	Port     uint16 // 0 when the slice names no port
	PortName string
	Node     string // the endpoint's node, when the slice says
	Ready    bool
}

// KubeStats count what a Kube holds.
type KubeStats struct {
	Pods      int       // pods that exist now
	Deleted   int       // deleted pods kept in history
	Evicted   uint64    // deleted pods dropped from history (retention or MaxDeleted)
	Nodes     int       // nodes that exist now
	Services  int       // services that exist now
	Addresses int       // addresses with an owner, past or present
	LastEvent time.Time // when the last pod, node or service event was handled
	Known     time.Time // when the informers first synced
}

// Kube is a Source that follows a cluster through one shared informer
// factory: one list and one watch per resource type (Pods, Services,
// EndpointSlices, Nodes, Namespaces, ReplicaSets, Deployments,
// StatefulSets, DaemonSets, Jobs, CronJobs), never a request per pod. The
// cached objects are stripped of what identities do not need
// (managedFields, annotations, pod templates, node images).
//
// An address belongs to a pod from its start until it is gone: its
// deletion, or the end of its containers for a pod that completed. When an
// address is reused, times before and after name the right pods.
//
// RBAC: get, list and watch on pods, services, nodes, namespaces (core),
// endpointslices (discovery.k8s.io), replicasets, deployments,
// statefulsets, daemonsets (apps), jobs and cronjobs (batch); nothing
// more.
type Kube struct {
	opts    KubeOptions
	log     *slog.Logger
	fp      string
	known   time.Time
	cancel  context.CancelFunc
	factory informers.SharedInformerFactory

	rsLister    appslisters.ReplicaSetLister
	jobLister   batchlisters.JobLister
	svcLister   corelisters.ServiceLister
	sliceLister discoverylisters.EndpointSliceLister

	// gen changes when what names a pod's workload or service changes
	// (ReplicaSets, Jobs, Services, EndpointSlices): resolved identities
	// of living pods are computed again.
	gen atomic.Uint64

	mu        sync.RWMutex
	pods      map[types.UID]*podRec
	byAddr    map[netip.Addr][]*claim
	nodes     map[string]*holder // by node name
	svcs      map[types.UID]*holder
	podSvc    map[string]map[string]int // "ns/pod" → service → slices naming the pod
	sliceRefs map[string]sliceRef       // "ns/slice" → what it named
	deleted   fifo[*podRec]
	closed    fifo[*claim]
	evicted   uint64
	lastEvent time.Time

	chMu     sync.Mutex
	onChange []func()
}

// claimKind orders the owners of one address: a hostNetwork pod at one of
// its ports, a pod, a service, a node.
type claimKind uint8

const (
	claimHostPod claimKind = iota
	claimPod
	claimService
	claimNode
)

// claim is one owner's hold on an address. It is certain from sure until
// until (zero: still held), and likely from from: a pod starts before its
// address is seen in its status, and packets of its first moments come
// before the event that tells us.
type claim struct {
	addr              netip.Addr
	kind              claimKind
	from, sure, until time.Time
	pod               *podRec          // pod claims
	id                dissect.Identity // node and service claims
}

// holder is a node or a service and its addresses.
type holder struct {
	id     dissect.Identity
	from   time.Time
	claims []*claim
}

// podRec is what is kept of a pod, after its deletion too.
type podRec struct {
	uid         types.UID
	name, ns    string
	node        string
	labels      map[string]string
	owner       metav1.OwnerReference // Kind empty: no controller
	from, until time.Time             // until zero: holds its addresses
	hostNetwork bool
	ports       []uint16
	images      []string
	version     string
	claims      []*claim
	deleted     bool
	frozen      bool // res no longer changes (deleted)
	res         atomic.Pointer[resolved]
	ipsRecorded bool // the pod's first addresses were seen
}

// resolved is a pod's identity as of generation gen.
type resolved struct {
	gen  uint64
	id   dissect.Identity
	kind string
}

// sliceRef is what an EndpointSlice named: its service and pods.
type sliceRef struct {
	service string
	pods    []string // "ns/pod"
}

// NewKube starts the informers and waits until they have listed every
// resource (within SyncTimeout). They run until ctx is done or Close. An
// error names the resources that did not sync and why (RBAC forbidden, an
// unreachable server).
func NewKube(ctx context.Context, cfg *rest.Config, o KubeOptions) (*Kube, error) {
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.MaxDeleted <= 0 {
		o.MaxDeleted = 100_000
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandlerWithContext = nil
	cfg.WarningHandler = warnLogger{log}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	host := cfg.Host
	if u, err := url.Parse(cfg.Host); err == nil && u.Host != "" {
		host = u.Host
	}
	k := &Kube{
		opts:      o,
		log:       log,
		fp:        "kube " + host,
		pods:      map[types.UID]*podRec{},
		byAddr:    map[netip.Addr][]*claim{},
		nodes:     map[string]*holder{},
		svcs:      map[types.UID]*holder{},
		podSvc:    map[string]map[string]int{},
		sliceRefs: map[string]sliceRef{},
	}
	k.factory = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(strip),
		informers.WithNamespace(o.Namespace))
	f := k.factory
	var errMu sync.Mutex
	lastErr := map[string]error{}
	type named struct {
		name string
		inf  cache.SharedIndexInformer
	}
	infs := []named{
		{"pods", f.Core().V1().Pods().Informer()},
		{"services", f.Core().V1().Services().Informer()},
		{"endpointslices", f.Discovery().V1().EndpointSlices().Informer()},
		{"nodes", f.Core().V1().Nodes().Informer()},
		{"namespaces", f.Core().V1().Namespaces().Informer()},
		{"replicasets", f.Apps().V1().ReplicaSets().Informer()},
		{"deployments", f.Apps().V1().Deployments().Informer()},
		{"statefulsets", f.Apps().V1().StatefulSets().Informer()},
		{"daemonsets", f.Apps().V1().DaemonSets().Informer()},
		{"jobs", f.Batch().V1().Jobs().Informer()},
		{"cronjobs", f.Batch().V1().CronJobs().Informer()},
	}
	for _, n := range infs {
		name := n.name
		if err := n.inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			errMu.Lock()
			lastErr[name] = err
			errMu.Unlock()
			log.Warn("kubernetes watch failed", "resource", name, "err", err)
		}); err != nil {
			return nil, fmt.Errorf("informer %s: %w", name, err)
		}
	}
	k.rsLister = f.Apps().V1().ReplicaSets().Lister()
	k.jobLister = f.Batch().V1().Jobs().Lister()
	k.svcLister = f.Core().V1().Services().Lister()
	k.sliceLister = f.Discovery().V1().EndpointSlices().Lister()

	bump := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.gen.Add(1) },
		UpdateFunc: func(any, any) { k.gen.Add(1) },
		DeleteFunc: func(any) { k.gen.Add(1) },
	}
	var regs []cache.InformerSynced
	add := func(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) error {
		r, err := inf.AddEventHandler(h)
		if err != nil {
			return err
		}
		regs = append(regs, r.HasSynced)
		return nil
	}
	for _, err := range []error{
		add(infs[0].inf, cache.ResourceEventHandlerDetailedFuncs{
			AddFunc:    func(obj any, initial bool) { k.podEvent(obj, initial, false) },
			UpdateFunc: func(_, obj any) { k.podEvent(obj, false, false) },
			DeleteFunc: func(obj any) { k.podEvent(obj, false, true) },
		}),
		add(infs[1].inf, cache.ResourceEventHandlerDetailedFuncs{
			AddFunc:    func(obj any, _ bool) { k.gen.Add(1); k.serviceEvent(obj, false) },
			UpdateFunc: func(_, obj any) { k.gen.Add(1); k.serviceEvent(obj, false) },
			DeleteFunc: func(obj any) { k.gen.Add(1); k.serviceEvent(obj, true) },
		}),
		add(infs[2].inf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { k.sliceEvent(obj, false) },
			UpdateFunc: func(_, obj any) { k.sliceEvent(obj, false) },
			DeleteFunc: func(obj any) { k.sliceEvent(obj, true) },
		}),
		add(infs[3].inf, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { k.nodeEvent(obj, false) },
			UpdateFunc: func(_, obj any) { k.nodeEvent(obj, false) },
			DeleteFunc: func(obj any) { k.nodeEvent(obj, true) },
		}),
		add(infs[5].inf, bump),
		add(infs[9].inf, bump),
	} {
		if err != nil {
			return nil, fmt.Errorf("informer handler: %w", err)
		}
	}

	ictx, cancel := context.WithCancel(ctx)
	k.cancel = cancel
	f.Start(ictx.Done())
	sctx, scancel := context.WithTimeout(ictx, o.SyncTimeout)
	defer scancel()
	res := f.WaitForCacheSyncWithContext(sctx)
	if res.Err == nil && !cache.WaitForCacheSync(sctx.Done(), regs...) {
		res.Err = context.Cause(sctx)
	}
	if res.Err != nil {
		var why []string
		for _, n := range infs {
			if n.inf.HasSynced() {
				continue
			}
			errMu.Lock()
			e := lastErr[n.name]
			errMu.Unlock()
			switch {
			case e == nil:
				why = append(why, n.name+": no answer")
			case apierrors.IsForbidden(e):
				why = append(why, n.name+": forbidden (RBAC must grant get, list and watch): "+e.Error())
			default:
				why = append(why, n.name+": "+e.Error())
			}
		}
		k.Close()
		if len(why) == 0 {
			why = append(why, "event handlers did not finish")
		}
		return nil, fmt.Errorf("kubernetes informers did not sync within %v (%v): %s", o.SyncTimeout, res.Err, strings.Join(why, "; "))
	}
	k.mu.Lock()
	k.known = o.Now()
	k.mu.Unlock()
	return k, nil
}

// Close stops the informers. Identify keeps answering from what was seen.
func (k *Kube) Close() {
	k.cancel()
	k.factory.Shutdown()
}

// Fingerprint implements Source: the API server's host, so that a hub
// restarted on the same cluster reuses its index.
func (k *Kube) Fingerprint() string { return k.fp }

// Known implements Source: when the informers first synced.
func (k *Kube) Known() time.Time {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.known
}

// OnChange registers fn to be called after any EndpointSlice changes (so
// that a caller following ServiceEndpoints learns of new and gone
// endpoints). fn runs on the informer's goroutine and must return quickly.
func (k *Kube) OnChange(fn func()) {
	k.chMu.Lock()
	k.onChange = append(k.onChange, fn)
	k.chMu.Unlock()
}

// Stats returns what the source holds, after evicting what retention
// no longer keeps.
func (k *Kube) Stats() KubeStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.evictLocked(k.opts.Now())
	return KubeStats{
		Pods:      len(k.pods) - k.deleted.len(),
		Deleted:   k.deleted.len(),
		Evicted:   k.evicted,
		Nodes:     len(k.nodes),
		Services:  len(k.svcs),
		Addresses: len(k.byAddr),
		LastEvent: k.lastEvent,
		Known:     k.known,
	}
}

// Identify implements dissect.Identifier. Among the owners of the address
// at t, a hostNetwork pod declaring the port comes first, then a pod, a
// service, the node. Within each, a certain hold beats a likely one, and
// the latest certain hold wins (an address seen given to a new pod is no
// longer the old one's, whatever its deletion time said). Before Known
// only certain holds answer.
func (k *Kube) Identify(ap netip.AddrPort, at time.Time) (dissect.Identity, bool) {
	addr := ap.Addr().Unmap()
	k.mu.RLock()
	defer k.mu.RUnlock()
	cs := k.byAddr[addr]
	if len(cs) == 0 {
		return dissect.Identity{}, false
	}
	early := at.Before(k.known)
	hostNode := ""
	for _, kind := range []claimKind{claimHostPod, claimPod, claimService, claimNode} {
		var best *claim
		for tier := 0; tier < 2 && best == nil; tier++ {
			if tier == 1 && early {
				break
			}
			for _, c := range cs {
				if c.kind != kind || !c.heldAt(at, tier == 0) {
					continue
				}
				if kind == claimHostPod && !slices.Contains(c.pod.ports, ap.Port()) {
					if hostNode == "" {
						hostNode = c.pod.node
					}
					continue
				}
				if best == nil || tier == 0 && c.sure.After(best.sure) || tier == 1 && c.from.After(best.from) {
					best = c
				}
			}
		}
		if best == nil {
			continue
		}
		if best.pod != nil {
			return k.resolve(best.pod).id, true
		}
		return best.id, true
	}
	if hostNode != "" {
		return dissect.Identity{Node: hostNode}, true
	}
	return dissect.Identity{}, false
}

// heldAt reports whether the claim held its address at t: certainly, or
// likely.
func (c *claim) heldAt(t time.Time, certain bool) bool {
	start := c.from
	if certain {
		start = c.sure
	}
	return !t.Before(start) && (c.until.IsZero() || t.Before(c.until))
}

// Pods implements Source: every pod known, living or deleted and kept,
// ordered by namespace, name and start.
func (k *Kube) Pods() []Pod {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Pod, 0, len(k.pods))
	for _, r := range k.pods {
		res := k.resolve(r)
		p := Pod{
			Name: r.name, Namespace: r.ns, Node: r.node, Labels: r.labels,
			Workload: res.id.Workload, WorkloadKind: res.kind, Service: res.id.Service,
			Version: r.version, Images: r.images, HostNetwork: r.hostNetwork, Ports: r.ports, UID: string(r.uid),
		}
		if !r.from.IsZero() {
			t := r.from
			p.StartTime = &t
		}
		if !r.until.IsZero() {
			t := r.until
			p.DeletionTime = &t
		}
		var ips []string
		for _, c := range r.claims {
			if !slices.Contains(ips, c.addr.String()) {
				ips = append(ips, c.addr.String())
			}
		}
		if len(ips) > 0 {
			p.IP = ips[0]
		}
		if len(ips) > 1 {
			p.IPs = ips
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pod) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name),
			timeCmp(a.StartTime, b.StartTime), strings.Compare(a.UID, b.UID))
	})
	return out
}

func timeCmp(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

// ServiceEndpoints returns the endpoints of a service from its
// EndpointSlices (the kubernetes.io/service-name label), one per address
// and port, ordered by address and port. A hostNetwork pod's endpoint has
// its node's address.
func (k *Kube) ServiceEndpoints(namespace, name string) []Endpoint {
	slices_, err := k.sliceLister.EndpointSlices(namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name}))
	if err != nil {
		return nil
	}
	seen := map[Endpoint]bool{}
	var out []Endpoint
	for _, s := range slices_ {
		if s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		ports := s.Ports
		if len(ports) == 0 {
			ports = []discoveryv1.EndpointPort{{}}
		}
		for _, ep := range s.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			node := ""
			if ep.NodeName != nil {
				node = *ep.NodeName
			}
			for _, a := range ep.Addresses {
				addr, err := netip.ParseAddr(a)
				if err != nil {
					continue
				}
				for _, p := range ports {
					e := Endpoint{Addr: addr.Unmap(), Node: node, Ready: ready}
					if p.Port != nil && *p.Port > 0 && *p.Port < 65536 {
						e.Port = uint16(*p.Port)
					}
					if p.Name != nil {
						e.PortName = *p.Name
					}
					if !seen[e] {
						seen[e] = true
						out = append(out, e)
					}
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port), strings.Compare(a.PortName, b.PortName),
			strings.Compare(a.Node, b.Node), boolCmp(a.Ready, b.Ready))
	})
	return out
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// resolve returns a pod's identity: workload through its owners (the
// listers, never the API), service through the EndpointSlices naming it,
// else the first service by name whose selector matches. Callers hold mu.
func (k *Kube) resolve(r *podRec) *resolved {
	gen := k.gen.Load()
	if c := r.res.Load(); c != nil && (r.frozen || c.gen == gen) {
		return c
	}
	c := &resolved{gen: gen, id: dissect.Identity{Pod: r.name, Namespace: r.ns, Node: r.node, Version: r.version}}
	c.id.Workload, c.kind = k.workload(r)
	c.id.Service = k.service(r)
	r.res.Store(c)
	return c
}

// workload follows a pod's controller: ReplicaSet → Deployment, Job →
// CronJob, StatefulSet and DaemonSet themselves; a pod without one (or
// owned by its node, a static pod) is its own workload (WorkloadOf).
func (k *Kube) workload(r *podRec) (name, kind string) {
	o := r.owner
	switch o.Kind {
	case "", "Node":
		return WorkloadOf(r.name), ""
	case "ReplicaSet":
		rs, err := k.rsLister.ReplicaSets(r.ns).Get(o.Name)
		if err != nil {
			// Not (yet, or no longer) in the cache: a Deployment's
			// ReplicaSet is named after it and the pods' template hash.
			if h := r.labels["pod-template-hash"]; h != "" && strings.HasSuffix(o.Name, "-"+h) {
				return strings.TrimSuffix(o.Name, "-"+h), "Deployment"
			}
			return o.Name, "ReplicaSet"
		}
		if c := metav1.GetControllerOf(rs); c != nil && c.Kind == "Deployment" {
			return c.Name, "Deployment"
		}
		return o.Name, "ReplicaSet"
	case "Job":
		job, err := k.jobLister.Jobs(r.ns).Get(o.Name)
		if err == nil {
			if c := metav1.GetControllerOf(job); c != nil && c.Kind == "CronJob" {
				return c.Name, "CronJob"
			}
		}
		return o.Name, "Job"
	}
	return o.Name, o.Kind
}

// service names the service of a pod. Callers hold mu.
func (k *Kube) service(r *podRec) string {
	if m := k.podSvc[r.ns+"/"+r.name]; len(m) > 0 {
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		return slices.Min(names)
	}
	svcs, err := k.svcLister.Services(r.ns).List(labels.Everything())
	if err != nil {
		return ""
	}
	best := ""
	for _, s := range svcs {
		if selects(s.Spec.Selector, r.labels) && (best == "" || s.Name < best) {
			best = s.Name
		}
	}
	return best
}

// podEvent records a pod added, changed or deleted.
func (k *Kube) podEvent(obj any, initial, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := k.opts.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastEvent = now
	r := k.pods[p.UID]
	if r != nil && r.deleted {
		return
	}
	if r == nil {
		if deleted {
			return
		}
		r = &podRec{uid: p.UID, from: p.CreationTimestamp.Time}
		k.pods[p.UID] = r
	}
	r.name, r.ns, r.node, r.labels = p.Name, p.Namespace, p.Spec.NodeName, p.Labels
	r.owner = metav1.OwnerReference{}
	if c := metav1.GetControllerOf(p); c != nil {
		r.owner = metav1.OwnerReference{Kind: c.Kind, Name: c.Name}
	}
	r.hostNetwork = p.Spec.HostNetwork
	r.version = VersionOf(p.Labels)
	// New slices: Pods hands the old ones out.
	r.images, r.ports = nil, nil
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Image != "" {
				r.images = append(r.images, c.Image)
			}
			if !p.Spec.HostNetwork {
				continue
			}
			for _, cp := range c.Ports {
				for _, n := range []int32{cp.ContainerPort, cp.HostPort} {
					if n > 0 && n < 65536 && !slices.Contains(r.ports, uint16(n)) {
						r.ports = append(r.ports, uint16(n))
					}
				}
			}
		}
	}
	slices.Sort(r.ports)
	r.res.Store(nil)
	if p.Status.StartTime != nil && len(r.claims) == 0 {
		r.from = p.Status.StartTime.Time
	}

	if deleted {
		until := now
		if d := p.DeletionTimestamp; d != nil && ceilSecond(d.Time).Before(until) {
			until = ceilSecond(d.Time)
		}
		k.endPod(r, until)
		r.deleted = true
		r.frozen = true
		r.res.Store(k.resolve(r))
		k.deleted.push(r)
		k.evictLocked(now)
		return
	}
	if !r.until.IsZero() {
		return // completed: its addresses are given up
	}
	kind := claimPod
	if r.hostNetwork {
		kind = claimHostPod
	}
	ips := podIPs(p)
	for _, c := range r.claims {
		if c.until.IsZero() && !slices.Contains(ips, c.addr) {
			c.until = maxTime(now, c.sure)
			k.closed.push(c)
		}
	}
	for _, a := range ips {
		if slices.ContainsFunc(r.claims, func(c *claim) bool { return c.addr == a && c.until.IsZero() }) {
			continue
		}
		// The API server keeps a pod's start to the second, rounded
		// down: it started within the second after r.from, and the
		// address is certainly its from the end of that second.
		c := &claim{addr: a, kind: kind, pod: r, from: r.from, sure: ceilSecond(r.from)}
		switch {
		case r.ipsRecorded:
			// A changed address is the pod's from now on.
			c.from, c.sure = now, now
		case !initial:
			// The address appeared while we watched: it is certainly
			// the pod's from when we saw it, likely from its start.
			c.sure = maxTime(now, r.from)
		}
		r.claims = append(r.claims, c)
		k.byAddr[a] = append(k.byAddr[a], c)
	}
	if len(ips) > 0 && !r.ipsRecorded {
		r.ipsRecorded = true
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		k.endPod(r, endOf(p, initial, now, r.from))
		for _, c := range r.claims {
			k.closed.push(c)
		}
	}
	k.evictLocked(now)
}

// endPod ends a pod's holds at until.
func (k *Kube) endPod(r *podRec, until time.Time) {
	if r.until.IsZero() {
		r.until = maxTime(until, r.from)
	}
	for _, c := range r.claims {
		if c.until.IsZero() {
			c.until = maxTime(r.until, c.from)
		}
	}
}

// endOf estimates when a completed pod's containers ended: the last
// finishedAt, else the last condition change; when seen completing, no
// later than then.
func endOf(p *corev1.Pod, initial bool, now, from time.Time) time.Time {
	var end time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.FinishedAt.After(end) {
			end = t.FinishedAt.Time
		}
	}
	if end.IsZero() {
		for _, c := range p.Status.Conditions {
			if c.LastTransitionTime.After(end) {
				end = c.LastTransitionTime.Time
			}
		}
	}
	switch {
	case !end.IsZero() && (initial || ceilSecond(end).Before(now)):
		return ceilSecond(end)
	case initial:
		return from
	}
	return now
}

// podIPs returns a pod's addresses from its status.
func podIPs(p *corev1.Pod) []netip.Addr {
	var out []netip.Addr
	for _, s := range append([]string{p.Status.PodIP}, ipStrings(p.Status.PodIPs)...) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func ipStrings(ips []corev1.PodIP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.IP
	}
	return out
}

// serviceEvent records a service's cluster IPs (never external IPs, which
// any user who may edit a Service can set to another's address).
func (k *Kube) serviceEvent(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	var ips []netip.Addr
	if !deleted {
		for _, ip := range append([]string{s.Spec.ClusterIP}, s.Spec.ClusterIPs...) {
			if a, err := netip.ParseAddr(ip); err == nil && !slices.Contains(ips, a.Unmap()) {
				ips = append(ips, a.Unmap())
			}
		}
	}
	now := k.opts.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastEvent = now
	h := k.svcs[s.UID]
	if h == nil {
		if deleted {
			return
		}
		h = &holder{from: s.CreationTimestamp.Time}
		k.svcs[s.UID] = h
	}
	h.id = dissect.Identity{Namespace: s.Namespace, Service: s.Name}
	k.setHolder(h, claimService, ips, now)
	if deleted {
		delete(k.svcs, s.UID)
	}
	k.evictLocked(now)
}

// nodeEvent records a node's addresses (InternalIP, ExternalIP).
func (k *Kube) nodeEvent(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	var ips []netip.Addr
	if !deleted {
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
				continue
			}
			if ip, err := netip.ParseAddr(a.Address); err == nil && !slices.Contains(ips, ip.Unmap()) {
				ips = append(ips, ip.Unmap())
			}
		}
	}
	now := k.opts.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastEvent = now
	h := k.nodes[n.Name]
	if h == nil {
		if deleted {
			return
		}
		h = &holder{from: n.CreationTimestamp.Time, id: dissect.Identity{Node: n.Name}}
		k.nodes[n.Name] = h
	}
	k.setHolder(h, claimNode, ips, now)
	if deleted {
		delete(k.nodes, n.Name)
	}
	k.evictLocked(now)
}

// setHolder makes a node's or service's open claims those of ips: others
// end now, new ones start at the holder's creation if it is the first
// set, else now.
func (k *Kube) setHolder(h *holder, kind claimKind, ips []netip.Addr, now time.Time) {
	open := h.claims[:0]
	for _, c := range h.claims {
		if c.until.IsZero() && !slices.Contains(ips, c.addr) {
			c.until = maxTime(now, c.from)
			k.closed.push(c)
			continue
		}
		if c.until.IsZero() {
			c.id = h.id
			open = append(open, c)
		}
	}
	first := len(h.claims) == 0
	h.claims = open
	for _, a := range ips {
		if slices.ContainsFunc(h.claims, func(c *claim) bool { return c.addr == a }) {
			continue
		}
		start := now
		if first {
			start = h.from
		}
		c := &claim{addr: a, kind: kind, from: start, sure: start, id: h.id}
		h.claims = append(h.claims, c)
		k.byAddr[a] = append(k.byAddr[a], c)
	}
}

// sliceEvent indexes which pods an EndpointSlice names for its service.
func (k *Kube) sliceEvent(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	key := s.Namespace + "/" + s.Name
	var ref sliceRef
	if !deleted {
		ref.service = s.Labels[discoveryv1.LabelServiceName]
		if ref.service != "" {
			for _, ep := range s.Endpoints {
				if t := ep.TargetRef; t != nil && t.Kind == "Pod" && t.Name != "" {
					ns := cmp.Or(t.Namespace, s.Namespace)
					if ns == s.Namespace { // a slice names pods of its own namespace only
						ref.pods = append(ref.pods, ns+"/"+t.Name)
					}
				}
			}
		}
	}
	k.mu.Lock()
	old := k.sliceRefs[key]
	for _, p := range old.pods {
		if m := k.podSvc[p]; m != nil {
			if m[old.service]--; m[old.service] <= 0 {
				delete(m, old.service)
			}
			if len(m) == 0 {
				delete(k.podSvc, p)
			}
		}
	}
	delete(k.sliceRefs, key)
	if len(ref.pods) > 0 {
		k.sliceRefs[key] = ref
		for _, p := range ref.pods {
			m := k.podSvc[p]
			if m == nil {
				m = map[string]int{}
				k.podSvc[p] = m
			}
			m[ref.service]++
		}
	}
	k.mu.Unlock()
	k.gen.Add(1)
	k.chMu.Lock()
	fns := slices.Clone(k.onChange)
	k.chMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// evictLocked drops deleted pods and given-up addresses past retention or
// past MaxDeleted, oldest first. Callers hold mu.
func (k *Kube) evictLocked(now time.Time) {
	cutoff := now.Add(-k.opts.Retention)
	for k.deleted.len() > 0 {
		r := k.deleted.front()
		if k.deleted.len() <= k.opts.MaxDeleted && !r.until.Before(cutoff) {
			break
		}
		k.deleted.pop()
		delete(k.pods, r.uid)
		for _, c := range r.claims {
			k.unclaim(c)
		}
		k.evicted++
	}
	for k.closed.len() > 0 {
		c := k.closed.front()
		if k.closed.len() <= k.opts.MaxDeleted && !c.until.Before(cutoff) {
			break
		}
		k.closed.pop()
		k.unclaim(c)
	}
}

// unclaim removes a claim from its address, if it is still there.
func (k *Kube) unclaim(c *claim) {
	cs := k.byAddr[c.addr]
	i := slices.Index(cs, c)
	if i < 0 {
		return
	}
	cs = slices.Delete(cs, i, i+1)
	if len(cs) == 0 {
		delete(k.byAddr, c.addr)
	} else {
		k.byAddr[c.addr] = cs
	}
}

// warnLogger passes the API server's warnings to the logger (client-go
// would print them through klog).
type warnLogger struct{ log *slog.Logger }

func (w warnLogger) HandleWarningHeader(code int, agent, text string) {
	w.log.Warn("kubernetes API warning", "text", text)
}

// fifo is a queue on a slice.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) push(v T) { q.items = append(q.items, v) }
func (q *fifo[T]) len() int { return len(q.items) - q.head }
func (q *fifo[T]) front() T { return q.items[q.head] }
func (q *fifo[T]) pop() {
	var zero T
	q.items[q.head] = zero
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append([]T(nil), q.items[q.head:]...)
		q.head = 0
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ceilSecond rounds up to the second: the API's timestamps are cut to the
// second, and the event happened within it.
func ceilSecond(t time.Time) time.Time {
	return t.Truncate(time.Second).Add(time.Second)
}

// strip is the informers' transform: it keeps only what identities and
// owner lookups need, to bound the cache's memory (managedFields,
// annotations, pod templates, node images and most of pod specs dropped).
func strip(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		m.SetAnnotations(nil)
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		slim := func(cs []corev1.Container) []corev1.Container {
			out := make([]corev1.Container, len(cs))
			for i, c := range cs {
				out[i] = corev1.Container{Name: c.Name, Image: c.Image, Ports: c.Ports}
			}
			return out
		}
		o.Spec = corev1.PodSpec{NodeName: o.Spec.NodeName, HostNetwork: o.Spec.HostNetwork,
			Containers: slim(o.Spec.Containers), InitContainers: slim(o.Spec.InitContainers)}
		st := corev1.PodStatus{Phase: o.Status.Phase, PodIP: o.Status.PodIP, PodIPs: o.Status.PodIPs,
			StartTime: o.Status.StartTime, HostIP: o.Status.HostIP}
		for _, c := range o.Status.ContainerStatuses {
			if c.State.Terminated != nil {
				st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name,
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: c.State.Terminated.FinishedAt}}})
			}
		}
		for _, c := range o.Status.Conditions {
			st.Conditions = append(st.Conditions, corev1.PodCondition{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime})
		}
		o.Status = st
	case *corev1.Service:
		o.Spec = corev1.ServiceSpec{Type: o.Spec.Type, ClusterIP: o.Spec.ClusterIP, ClusterIPs: o.Spec.ClusterIPs, Selector: o.Spec.Selector}
		o.Status = corev1.ServiceStatus{}
	case *corev1.Node:
		o.Spec = corev1.NodeSpec{}
		o.Status = corev1.NodeStatus{Addresses: o.Status.Addresses}
	case *corev1.Namespace:
		o.Spec, o.Status = corev1.NamespaceSpec{}, corev1.NamespaceStatus{}
	case *discoveryv1.EndpointSlice:
		for i := range o.Endpoints {
			o.Endpoints[i].Hints, o.Endpoints[i].DeprecatedTopology, o.Endpoints[i].Zone = nil, nil, nil
		}
	case *appsv1.ReplicaSet:
		o.Spec, o.Status = appsv1.ReplicaSetSpec{}, appsv1.ReplicaSetStatus{}
	case *appsv1.Deployment:
		o.Spec, o.Status = appsv1.DeploymentSpec{}, appsv1.DeploymentStatus{}
	case *appsv1.StatefulSet:
		o.Spec, o.Status = appsv1.StatefulSetSpec{}, appsv1.StatefulSetStatus{}
	case *appsv1.DaemonSet:
		o.Spec, o.Status = appsv1.DaemonSetSpec{}, appsv1.DaemonSetStatus{}
	case *batchv1.Job:
		o.Spec, o.Status = batchv1.JobSpec{}, batchv1.JobStatus{}
	case *batchv1.CronJob:
		o.Spec, o.Status = batchv1.CronJobSpec{}, batchv1.CronJobStatus{}
	}
	return obj, nil
}

// Agents lists the addresses of a Service's ready endpoints (on the port
// named portName when there is one, else any) that may be sent the
// agents' token: those that belong now to a pod of the Service's
// namespace (a hostNetwork agent owns its node's address at its port).
// EndpointSlices can be written by whoever may write them in that
// namespace, even without running a pod there: an address that is not
// such a pod's is returned in rejected instead.
func (k *Kube) Agents(namespace, name, portName string) (agents, rejected []netip.AddrPort) {
	eps := k.ServiceEndpoints(namespace, name)
	named := slices.ContainsFunc(eps, func(e Endpoint) bool { return e.PortName == portName })
	now := k.opts.Now()
	for _, e := range eps {
		if !e.Ready || (named && e.PortName != portName) {
			continue
		}
		ap := netip.AddrPortFrom(e.Addr, e.Port)
		if id, ok := k.Identify(ap, now); !ok || id.Pod == "" || id.Namespace != namespace {
			rejected = append(rejected, ap)
			continue
		}
		agents = append(agents, ap)
	}
	return agents, rejected
}
