package identity

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wirescope/wirescope/dissect"
)

func TestStatic(t *testing.T) {
	s, err := New(ClusterFile{
		Services: []Service{
			{Name: "checkout", Namespace: "shop", ClusterIP: "10.96.40.10", Selector: map[string]string{"app": "checkout"}},
			{Name: "all-shop", Namespace: "shop", Selector: map[string]string{"tier": "web"}},
			{Name: "other-ns", Namespace: "billing", Selector: map[string]string{"app": "checkout"}},
			{Name: "headless", Namespace: "shop", ClusterIP: "None", Selector: map[string]string{"app": "db"}},
			{Name: "empty-selector", Namespace: "shop"},
		},
		Pods: []Pod{
			{Name: "checkout-7c4b8d9f6-m8wzt", Namespace: "shop", Node: "node-b", IP: "10.0.0.21", IPs: []string{"fd00::21"},
				Labels: map[string]string{"app": "checkout", "tier": "web", "version": "2.4.0"}},
			{Name: "db-0", Namespace: "shop", Node: "node-c", IP: "10.0.0.30", Labels: map[string]string{"app": "db"}},
			{Name: "lonely", Namespace: "shop", Node: "node-a", IP: "10.0.0.40"},
			{Name: "second-owner", Namespace: "shop", IP: "10.0.0.40"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	for ip, want := range map[string]string{
		"10.0.0.21":        "checkout-7c4b8d9f6-m8wzt shop checkout all-shop node-b", // first matching service by name
		"fd00::21":         "checkout-7c4b8d9f6-m8wzt shop checkout all-shop node-b",
		"::ffff:10.0.0.21": "checkout-7c4b8d9f6-m8wzt shop checkout all-shop node-b",
		"10.0.0.30":        "db-0 shop db headless node-c",
		"10.0.0.40":        "lonely shop lonely  node-a", // the first owner of an address keeps it
		"10.96.40.10":      " shop  checkout ",           // a cluster IP names the service alone
	} {
		id, ok := s.Identify(netip.AddrPortFrom(netip.MustParseAddr(ip), 80), at)
		if got := id.Pod + " " + id.Namespace + " " + id.Workload + " " + id.Service + " " + id.Node; !ok || got != want {
			t.Errorf("%s: %q (found %v), want %q", ip, got, ok, want)
		}
	}
	if _, ok := s.Identify(netip.MustParseAddrPort("10.9.9.9:80"), at); ok {
		t.Error("unknown address identified")
	}
}

// TestRollout: pods with start and deletion times own an address only
// while they exist, so a rollout's old and new pods can share one.
func TestRollout(t *testing.T) {
	const file = `{"services":[{"name":"cart","namespace":"shop","selector":{"app":"cart"}}],
	 "pods":[
	  {"name":"cart-5d8f7b6c4-aaaaa","namespace":"shop","ip":"10.0.1.10","labels":{"app":"cart","version":"1.4.0"},
	   "deletionTime":"2026-03-02T14:02:00Z"},
	  {"name":"cart-6f7d8c9b5-p4x2n","namespace":"shop","ip":"10.0.1.10","labels":{"app":"cart","version":"1.5.0"},
	   "startTime":"2026-03-02T14:02:00Z","deletionTime":"2026-03-02T15:00:00Z"}]}`
	p := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(p, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("10.0.1.10")
	rollout := time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Time
		want string
	}{
		{rollout.Add(-time.Hour), "cart-5d8f7b6c4-aaaaa"},
		{rollout.Add(-time.Nanosecond), "cart-5d8f7b6c4-aaaaa"},
		{rollout, "cart-6f7d8c9b5-p4x2n"},
		{rollout.Add(57 * time.Minute), "cart-6f7d8c9b5-p4x2n"},
		{rollout.Add(58 * time.Minute), ""}, // both gone
	} {
		id, ok := s.Identify(netip.AddrPortFrom(ip, 80), c.at)
		if id.Pod != c.want || ok != (c.want != "") {
			t.Errorf("at %v: %q (%v), want %q", c.at, id.Pod, ok, c.want)
		}
		if ok && (id.Service != "cart" || id.Workload != "cart") {
			t.Errorf("at %v: %+v, want service and workload cart", c.at, id)
		}
	}
	pods := s.Pods()
	if len(pods) != 2 || pods[1].Labels["version"] != "1.5.0" || pods[1].Service != "cart" || pods[1].Workload != "cart" ||
		!pods[1].StartTime.Equal(rollout) {
		t.Errorf("Pods: %+v", pods)
	}
	bad := `{"pods":[{"name":"a","ip":"10.0.0.1","startTime":"2026-03-02T14:02:00Z","deletionTime":"2026-03-02T14:00:00Z"}]}`
	if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), "deletionTime") {
		t.Errorf("deletion before start: %v", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":     "{",
		"bad pod ip":   `{"pods":[{"name":"a","ip":"10.0.0.300"}]}`,
		"bad svc ip":   `{"services":[{"name":"s","clusterIP":"x"}]}`,
		"nameless pod": `{"pods":[{"ip":"10.0.0.1"}]}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.json")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWorkloadOf(t *testing.T) {
	for pod, want := range map[string]string{
		"frontend-5b7d9f8c4-abcde":    "frontend",
		"cart-6f7d8c9b5-p4x2n":        "cart",
		"payment-api-7c4b8d9f6-m8wzt": "payment-api",
		"db-0":                        "db",
		"kafka-broker-12":             "kafka-broker",
		"node-exporter-x7k2p":         "node-exporter",
		"my-app-nginx":                "my-app-nginx",
		"standalone":                  "standalone",
		"curl-0":                      "curl",
		"web-abcde":                   "web-abcde", // no digit: a name, not a hash
	} {
		if got := WorkloadOf(pod); got != want {
			t.Errorf("WorkloadOf(%q) = %q, want %q", pod, got, want)
		}
	}
}

// TestClusterFileFields: the fields the informers fill are optional in the
// cluster file too, under stable names; a hostNetwork pod owns its node's
// address at its ports only.
func TestClusterFileFields(t *testing.T) {
	const file = `{"services":[{"name":"agents","namespace":"ws","clusterIP":"None","selector":{"app":"agent"}}],
	 "pods":[
	  {"name":"agent-x7k2p","namespace":"ws","node":"node-a","ip":"10.0.0.11","labels":{"app":"agent","controller-revision-hash":"6b9f7c5d8"},
	   "hostNetwork":true,"ports":[9100,9101],"uid":"u-1","workloadKind":"DaemonSet","workload":"agent","images":["reg/agent:1.2"]},
	  {"name":"web-7c4b8d9f6-m8wzt","namespace":"ws","node":"node-a","ip":"10.1.0.5","labels":{"pod-template-hash":"7c4b8d9f6"}},
	  {"name":"pinned","namespace":"ws","node":"node-a","ip":"10.1.0.6","version":"v2","labels":{"pod-template-hash":"ignored"}}]}`
	var cf ClusterFile
	if err := json.Unmarshal([]byte(file), &cf); err != nil {
		t.Fatal(err)
	}
	s, err := New(cf)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Known().IsZero() {
		t.Errorf("Known %v, want zero", s.Known())
	}
	at := time.Now()
	for _, c := range []struct {
		ep   string
		want dissect.Identity
	}{
		{"10.0.0.11:9100", dissect.Identity{Pod: "agent-x7k2p", Namespace: "ws", Workload: "agent", Service: "agents", Node: "node-a", Version: "6b9f7c5d8"}},
		{"10.0.0.11:9101", dissect.Identity{Pod: "agent-x7k2p", Namespace: "ws", Workload: "agent", Service: "agents", Node: "node-a", Version: "6b9f7c5d8"}},
		{"10.0.0.11:51234", dissect.Identity{Node: "node-a"}}, // the node's, not the pod's
		{"10.1.0.5:80", dissect.Identity{Pod: "web-7c4b8d9f6-m8wzt", Namespace: "ws", Workload: "web", Node: "node-a", Version: "7c4b8d9f6"}},
		{"10.1.0.6:80", dissect.Identity{Pod: "pinned", Namespace: "ws", Workload: "pinned", Node: "node-a", Version: "v2"}},
	} {
		if id, ok := s.Identify(netip.MustParseAddrPort(c.ep), at); !ok || id != c.want {
			t.Errorf("%s: %+v (%v), want %+v", c.ep, id, ok, c.want)
		}
	}
	p := s.Pods()[0]
	if !p.HostNetwork || !slices.Equal(p.Ports, []uint16{9100, 9101}) || p.UID != "u-1" || p.WorkloadKind != "DaemonSet" ||
		!slices.Equal(p.Images, []string{"reg/agent:1.2"}) || p.Version != "6b9f7c5d8" {
		t.Errorf("Pods()[0] = %+v", p)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"name":`, `"namespace":`, `"node":`, `"ip":`, `"labels":`, `"workload":`, `"workloadKind":`, `"version":`,
		`"images":`, `"hostNetwork":`, `"ports":`, `"uid":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
	// Absent, the new fields are left out.
	b, _ = json.Marshal(Pod{Name: "a", IP: "10.0.0.1"})
	for _, key := range []string{"workloadKind", "version", "images", "hostNetwork", "ports", "uid"} {
		if strings.Contains(string(b), key) {
			t.Errorf("JSON %s holds %s", b, key)
		}
	}
}
