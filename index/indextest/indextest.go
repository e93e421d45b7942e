// Package indextest generates realistic synthetic calls for tests and
// benchmarks of the index and of what queries it.
//
// The traffic is that of a small cluster: about thirty services in five
// namespaces, each a Deployment with two to four pods spread over six nodes,
// calling each other over HTTP with IDs in their paths and resolving each
// other through CoreDNS. Most calls succeed; some get a 404, a 500 or a 503,
// a few get no response at all, and search-path DNS lookups end in
// NXDOMAIN. Latencies are log-normal around a median per endpoint. The same
// seed always gives the same calls.
package indextest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/wirescope/wirescope/dissect/proto"
)

// Pod is one replica of a workload.
type Pod struct {
	Name string
	IP   netip.Addr
	Node string
}

// Service is a Deployment and the Service in front of it.
type Service struct {
	Name      string
	Namespace string
	Pods      []Pod
	// Endpoints are the HTTP routes the service serves.
	Endpoints []Endpoint
	// Calls lists the services this one calls (indexes into Cluster.Services).
	Calls []int
}

// Endpoint is one HTTP route; Path may hold "{id}", "{uuid}" or "{hex}",
// replaced by a fresh value in every call.
type Endpoint struct {
	Method, Path string
	// Median is the median latency; Sigma the log-normal spread.
	Median time.Duration
	Sigma  float64
	// ReqBody and RespBody are typical body sizes.
	ReqBody, RespBody int
}

// Cluster is the synthetic cluster calls are generated for.
type Cluster struct {
	Services []Service
	// DNS is CoreDNS in kube-system.
	DNS Service
}

var namespaces = []string{"shop", "payments", "identity", "platform", "data"}

// services lists each namespace's services; the first of "shop" is the
// entry point clients outside the cluster call.
var services = map[string][]string{
	"shop":     {"frontend", "catalog", "cart", "checkout", "search", "recommendations", "reviews", "inventory"},
	"payments": {"payments", "billing", "fraud", "ledger", "refunds", "invoices"},
	"identity": {"auth", "users", "sessions", "tokens", "profiles"},
	"platform": {"gateway", "notifications", "email", "config", "feature-flags", "audit"},
	"data":     {"orders-db-proxy", "cache-proxy", "events", "analytics", "exports"},
}

// resources are the nouns endpoints are built from.
var resources = []string{"orders", "items", "products", "users", "sessions", "carts", "payments", "invoices",
	"accounts", "events", "reviews", "tokens", "flags", "reports", "shipments"}

var nodes = []string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-f"}

// NewCluster builds the cluster from seed.
func NewCluster(seed uint64) *Cluster {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cl := &Cluster{}
	ipn := 0
	nextIP := func() netip.Addr {
		ipn++
		return netip.AddrFrom4([4]byte{10, 0, byte(ipn / 250), byte(2 + ipn%250)})
	}
	newPods := func(workload string, n int) []Pod {
		hash := randToken(r, "bcdfghjklmnpqrstvwxz2456789", 9)
		pods := make([]Pod, n)
		for i := range pods {
			pods[i] = Pod{Name: workload + "-" + hash + "-" + randToken(r, "bcdfghjklmnpqrstvwxz2456789", 5),
				IP: nextIP(), Node: nodes[r.IntN(len(nodes))]}
		}
		return pods
	}
	for _, ns := range namespaces {
		for _, name := range services[ns] {
			s := Service{Name: name, Namespace: ns, Pods: newPods(name, 2+r.IntN(3))}
			for range 3 + r.IntN(4) {
				s.Endpoints = append(s.Endpoints, newEndpoint(r, name))
			}
			s.Endpoints = append(s.Endpoints, Endpoint{Method: "GET", Path: "/healthz",
				Median: 300 * time.Microsecond, Sigma: 0.4, RespBody: 2})
			cl.Services = append(cl.Services, s)
		}
	}
	for i := range cl.Services {
		for range 2 + r.IntN(3) {
			j := r.IntN(len(cl.Services))
			if j != i && j != 0 && !slices.Contains(cl.Services[i].Calls, j) {
				cl.Services[i].Calls = append(cl.Services[i].Calls, j)
			}
		}
	}
	cl.DNS = Service{Name: "kube-dns", Namespace: "kube-system", Pods: newPods("coredns", 2)}
	return cl
}

func newEndpoint(r *rand.Rand, service string) Endpoint {
	res := resources[r.IntN(len(resources))]
	e := Endpoint{Median: time.Duration(math.Exp(r.Float64()*4+0.5)) * time.Millisecond, Sigma: 0.3 + r.Float64()*0.7}
	switch r.IntN(6) {
	case 0:
		e.Method, e.Path = "GET", "/api/v1/"+res+"/{id}"
		e.RespBody = 200 + r.IntN(2000)
	case 1:
		e.Method, e.Path = "POST", "/api/v1/"+res
		e.ReqBody, e.RespBody = 100+r.IntN(900), 80+r.IntN(200)
	case 2:
		e.Method, e.Path = "GET", "/api/v1/"+res+"?page={n}&limit=50"
		e.RespBody = 2000 + r.IntN(20000)
	case 3:
		e.Method, e.Path = "PUT", "/api/v1/"+res+"/{uuid}"
		e.ReqBody, e.RespBody = 200+r.IntN(800), 100+r.IntN(300)
	case 4:
		e.Method, e.Path = "GET", "/api/v2/"+service+"/"+res+"/{hex}/status"
		e.RespBody = 50 + r.IntN(200)
	default:
		e.Method, e.Path = "DELETE", "/api/v1/"+res+"/{id}"
	}
	return e
}

func randToken(r *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// Options shape the calls Generate makes.
type Options struct {
	// Seed makes the calls reproducible; calls differ between seeds.
	Seed uint64
	// Start and Span bound the calls' times: [Start, Start+Span).
	Start time.Time
	Span  time.Duration
	// Bodies adds request and response bodies (JSON text) to HTTP calls,
	// as a dissection without summary mode records them.
	Bodies bool
}

// Generate returns n calls sorted by time.
func (cl *Cluster) Generate(n int, o Options) []*proto.Call {
	if o.Span <= 0 {
		o.Span = 24 * time.Hour
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x2545f4914f6cdd1d))
	times := make([]int64, n)
	for i := range times {
		times[i] = r.Int64N(int64(o.Span))
	}
	slices.Sort(times)
	calls := make([]*proto.Call, n)
	for i := range calls {
		calls[i] = cl.call(r, o, o.Start.Add(time.Duration(times[i])), uint64(i))
	}
	return calls
}

// Generate returns n calls of the default cluster (seed 1) sorted by time:
// over a day from 2026-11-20T00:00Z unless o says otherwise.
func Generate(n int, o Options) []*proto.Call { return NewCluster(1).Generate(n, o) }

func (cl *Cluster) call(r *rand.Rand, o Options, ts time.Time, seq uint64) *proto.Call {
	// One call in eight is a DNS lookup, as clients resolve before
	// connecting and caches expire.
	var caller *Service
	var callerPod Pod
	var callee int
	external := false
	for {
		ci := r.IntN(len(cl.Services) + 3)
		if ci >= len(cl.Services) {
			external = true // outside clients call the frontend
			callee = 0
			break
		}
		caller = &cl.Services[ci]
		if len(caller.Calls) > 0 {
			callee = caller.Calls[r.IntN(len(caller.Calls))]
			break
		}
	}
	if !external {
		callerPod = caller.Pods[r.IntN(len(caller.Pods))]
	}
	if !external && r.IntN(8) == 0 {
		return cl.dnsCall(r, caller, callerPod, &cl.Services[callee], ts, seq)
	}
	svc := &cl.Services[callee]
	pod := svc.Pods[r.IntN(len(svc.Pods))]
	ep := svc.Endpoints[r.IntN(len(svc.Endpoints))]
	if r.IntN(10) == 0 {
		ep = svc.Endpoints[len(svc.Endpoints)-1] // health checks are frequent
	}
	c := &proto.Call{Proto: "http", TS: ts, Method: ep.Method, Path: fillPath(r, ep.Path)}
	if external {
		c.Src = proto.Endpoint{IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + r.IntN(250))}), Port: uint16(32768 + r.IntN(28000))}
	} else {
		c.Src = endpoint(caller, callerPod, uint16(32768+r.IntN(28000)))
	}
	c.Dst = endpoint(svc, pod, 8080)
	lat := time.Duration(float64(ep.Median) * math.Exp(r.NormFloat64()*ep.Sigma))
	c.LatencyNS = max(int64(lat), 1000)
	host := svc.Name + "." + svc.Namespace + ".svc.cluster.local:8080"
	reqID := randToken(r, "0123456789abcdef", 32)
	c.Request.Headers = proto.Headers{{Name: "host", Value: host}, {Name: "user-agent", Value: "Go-http-client/1.1"},
		{Name: "accept", Value: "application/json"}, {Name: "x-request-id", Value: reqID}}
	if ep.ReqBody > 0 {
		c.Request.Headers = append(c.Request.Headers, proto.Header{Name: "content-type", Value: "application/json"},
			proto.Header{Name: "content-length", Value: strconv.Itoa(ep.ReqBody)})
		c.Request.BodySize = int64(ep.ReqBody)
		if o.Bodies {
			c.Request.Body = jsonBody(r, ep.ReqBody)
		}
	}
	status, respBody := 200, ep.RespBody
	if ep.Method == "POST" {
		status = 201
	}
	// Some endpoints and some pods are worse than others, so that
	// summaries have something to find.
	failBias := 1.0
	if svc.Name == "checkout" || svc.Name == "fraud" {
		failBias = 4
	}
	if pod.Name[len(pod.Name)-1]%5 == 0 {
		failBias *= 2
	}
	switch x := r.Float64() * 100 / failBias; {
	case x < 0.3:
		c.Error = noResponse[r.IntN(len(noResponse))]
		c.LatencyNS = 0
		c.Response = proto.Message{}
		c.Extra = proto.Extra{{Key: "version", Value: "HTTP/1.1"}}
		return withID(c, seq)
	case x < 1.2:
		status, respBody = 500, 60+r.IntN(120)
	case x < 1.9:
		status, respBody = 503, 19
		c.LatencyNS /= 20
	case x < 2.1:
		status, respBody = 429, 40
	case x < 5:
		status, respBody = 404, 9
	case x < 5.3:
		status, respBody = 401, 24
	case x < 5.4:
		status, respBody = 200, 80
		c.Error = "truncated: response body cut by a capture gap"
	}
	c.Status = strconv.Itoa(status)
	ctype := "application/json"
	if status == 503 {
		ctype = "text/plain"
	}
	c.Response.Headers = proto.Headers{{Name: "content-type", Value: ctype}, {Name: "content-length", Value: strconv.Itoa(respBody)},
		{Name: "date", Value: ts.UTC().Format(time.RFC1123)}, {Name: "x-request-id", Value: reqID}}
	c.Response.BodySize = int64(respBody)
	if o.Bodies && respBody > 0 {
		switch status {
		case 503:
			c.Response.Body = "upstream overloaded"
		case 500:
			c.Response.Body = `{"error":"internal","message":"` + errMessages[r.IntN(len(errMessages))] + `"}`
		default:
			c.Response.Body = jsonBody(r, respBody)
		}
		if len(c.Response.Body) < respBody {
			c.Response.BodyTruncated = respBody > 256
		}
	}
	c.Extra = proto.Extra{{Key: "version", Value: "HTTP/1.1"}}
	return withID(c, seq)
}

var noResponse = []string{"no response", "no response: connection reset", "no response: connection closed", "no response: capture ended"}

var errMessages = []string{"database connection refused", "context deadline exceeded", "nil pointer dereference",
	"upstream returned 502", "lock wait timeout"}

func (cl *Cluster) dnsCall(r *rand.Rand, caller *Service, pod Pod, target *Service, ts time.Time, seq uint64) *proto.Call {
	dnsPod := cl.DNS.Pods[r.IntN(len(cl.DNS.Pods))]
	c := &proto.Call{Proto: "dns", TS: ts, Src: endpoint(caller, pod, uint16(32768+r.IntN(28000))),
		Dst: endpoint(&cl.DNS, dnsPod, 53)}
	c.Dst.Workload = "coredns"
	name := target.Name + "." + target.Namespace + ".svc.cluster.local"
	c.Method = "A"
	if r.IntN(2) == 0 {
		c.Method = "AAAA"
	}
	c.Status = "NOERROR"
	switch x := r.IntN(100); {
	case x < 25:
		// The resolver's search path tries the caller's namespace first.
		name = target.Name + "." + caller.Namespace + ".svc.cluster.local"
		if caller.Namespace != target.Namespace {
			c.Status = "NXDOMAIN"
		}
	case x < 30:
		name = []string{"api.stripe.com", "sqs.eu-west-1.amazonaws.com", "www.googleapis.com"}[r.IntN(3)]
	case x < 31:
		c.Status = "SERVFAIL"
	}
	if x := r.IntN(1000); x < 3 {
		c.Status = ""
		c.Error = "no response"
	}
	c.Path = name
	c.LatencyNS = int64(float64(400*time.Microsecond) * math.Exp(r.NormFloat64()*0.8))
	c.Request.BodySize = int64(len(name) + 17 + 11)
	c.Extra = proto.Extra{{Key: "id", Value: r.IntN(65536)}, {Key: "transport", Value: "udp"}, {Key: "rd", Value: true}}
	if c.Error != "" {
		c.LatencyNS = 0
		return withID(c, seq)
	}
	c.Response.BodySize = c.Request.BodySize
	c.Extra = append(c.Extra, proto.Field{Key: "aa", Value: true}, proto.Field{Key: "ra", Value: true})
	if c.Status == "NOERROR" {
		c.Response.BodySize += 16
		ans := name + " 5 " + c.Method + " "
		if c.Method == "A" {
			ans += target.Pods[0].IP.String()
		} else {
			ans += "fd00:96::" + strconv.Itoa(int(seq%4096))
		}
		c.Extra = append(c.Extra, proto.Field{Key: "answers", Value: []string{ans}})
	}
	return withID(c, seq)
}

func endpoint(s *Service, p Pod, port uint16) proto.Endpoint {
	return proto.Endpoint{IP: p.IP, Port: port, Pod: p.Name, Namespace: s.Namespace, Workload: s.Name,
		Service: s.Name, Node: p.Node}
}

func fillPath(r *rand.Rand, p string) string {
	for {
		i := indexOf(p, '{')
		if i < 0 {
			return p
		}
		j := i + indexOf(p[i:], '}')
		var v string
		switch p[i+1 : j] {
		case "id":
			v = strconv.Itoa(1000 + r.IntN(9_000_000))
		case "n":
			v = strconv.Itoa(1 + r.IntN(20))
		case "uuid":
			v = uuid(r)
		case "hex":
			v = randToken(r, "0123456789abcdef", 24)
		}
		p = p[:i] + v + p[j+1:]
	}
}

func indexOf(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], r.Uint64())
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var bodyWords = []string{`"id"`, `"name"`, `"status"`, `"created_at"`, `"amount"`, `"currency"`, `"items"`, `"total"`, `"ok"`}

func jsonBody(r *rand.Rand, n int) string {
	if n < 16 {
		return "{}"[:min(n, 2)]
	}
	n = min(n, 256)
	b := make([]byte, 0, n+32)
	b = append(b, '{')
	for len(b) < n {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, bodyWords[r.IntN(len(bodyWords))]...)
		b = append(b, ':')
		b = strconv.AppendInt(b, r.Int64N(1_000_000), 10)
	}
	return string(append(b, '}'))
}

// withID gives c an ID derived like the dissector's: from its peers, its
// time and its sequence number.
func withID(c *proto.Call, seq uint64) *proto.Call {
	h := uint64(14695981039346656037)
	mix := func(v uint64) {
		for range 8 {
			h ^= v & 0xff
			h *= 1099511628211
			v >>= 8
		}
	}
	mix(uint64(c.TS.UnixNano()))
	mix(seq)
	a := c.Src.IP.As16()
	mix(binary.LittleEndian.Uint64(a[8:]))
	mix(uint64(c.Src.Port))
	c.ID = fmt.Sprintf("%016x", h)
	return c
}
