package charts

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "wirescope"

// required says whether a missing helm, kubectl or apiserver fails the
// test rather than skipping it (make test and make chart set it).
func required() bool { return os.Getenv("K8S_ENV_REQUIRED") == "1" }

// skipOrFail skips the test with reason, or fails it where the pieces are
// required.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if required() {
		t.Fatalf("K8S_ENV_REQUIRED=1 but "+format, args...)
	}
	t.Skipf(format+" (make chart provides it)", args...)
}

// binary finds a tool in $K8S_BIN_DIR, then on PATH.
func binary(t *testing.T, name string) string {
	t.Helper()
	if d := os.Getenv("K8S_BIN_DIR"); d != "" {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	skipOrFail(t, "%s is neither in $K8S_BIN_DIR (%q) nor on PATH", name, os.Getenv("K8S_BIN_DIR"))
	return ""
}

// run runs a command with stdin and returns its stdout, and an error that
// carries its stderr.
func run(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// valueSet is a set of values to render the chart with, and what the
// rendering must then show.
type valueSet struct {
	name   string
	values string // YAML, given with -f
	check  func(t *testing.T, m *manifests)
}

// writeValues writes YAML values to a file and returns helm's arguments for it.
func writeValues(t *testing.T, values string) []string {
	t.Helper()
	if values == "" {
		return nil
	}
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"-f", f}
}

// render runs helm template for release rel in namespace ns.
func render(t *testing.T, helm, rel, ns, values string) ([]byte, error) {
	t.Helper()
	args := append([]string{"template", rel, chartDir, "--namespace", ns}, writeValues(t, values)...)
	return run(nil, helm, args...)
}

// manifests are the rendered objects by kind.
type manifests struct {
	all             []object
	daemonSets      []appsv1.DaemonSet
	deployments     []appsv1.Deployment
	services        []corev1.Service
	secrets         []corev1.Secret
	serviceAccounts []corev1.ServiceAccount
	pvcs            []corev1.PersistentVolumeClaim
	roles           []rbacv1.Role
	clusterRoles    []rbacv1.ClusterRole
	roleBindings    []rbacv1.RoleBinding
	clusterBindings []rbacv1.ClusterRoleBinding
	netpols         []networkingv1.NetworkPolicy
}

type object struct {
	Kind, Name string
}

// decode splits helm's output into documents and decodes each strictly
// into its type: a field the API does not have fails the test.
func decode(t *testing.T, out []byte) *manifests {
	t.Helper()
	m := &manifests{}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(out), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered document does not parse: %v\n%s", err, doc)
		}
		m.all = append(m.all, object{meta.Kind, meta.Metadata.Name})
		var dst any
		switch meta.Kind {
		case "DaemonSet":
			m.daemonSets = append(m.daemonSets, appsv1.DaemonSet{})
			dst = &m.daemonSets[len(m.daemonSets)-1]
		case "Deployment":
			m.deployments = append(m.deployments, appsv1.Deployment{})
			dst = &m.deployments[len(m.deployments)-1]
		case "Service":
			m.services = append(m.services, corev1.Service{})
			dst = &m.services[len(m.services)-1]
		case "Secret":
			m.secrets = append(m.secrets, corev1.Secret{})
			dst = &m.secrets[len(m.secrets)-1]
		case "ServiceAccount":
			m.serviceAccounts = append(m.serviceAccounts, corev1.ServiceAccount{})
			dst = &m.serviceAccounts[len(m.serviceAccounts)-1]
		case "PersistentVolumeClaim":
			m.pvcs = append(m.pvcs, corev1.PersistentVolumeClaim{})
			dst = &m.pvcs[len(m.pvcs)-1]
		case "Role":
			m.roles = append(m.roles, rbacv1.Role{})
			dst = &m.roles[len(m.roles)-1]
		case "ClusterRole":
			m.clusterRoles = append(m.clusterRoles, rbacv1.ClusterRole{})
			dst = &m.clusterRoles[len(m.clusterRoles)-1]
		case "RoleBinding":
			m.roleBindings = append(m.roleBindings, rbacv1.RoleBinding{})
			dst = &m.roleBindings[len(m.roleBindings)-1]
		case "ClusterRoleBinding":
			m.clusterBindings = append(m.clusterBindings, rbacv1.ClusterRoleBinding{})
			dst = &m.clusterBindings[len(m.clusterBindings)-1]
		case "NetworkPolicy":
			m.netpols = append(m.netpols, networkingv1.NetworkPolicy{})
			dst = &m.netpols[len(m.netpols)-1]
		default:
			t.Fatalf("the chart renders a %s (%s) this test does not check: add it to decode and to policyViolations", meta.Kind, meta.Metadata.Name)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), dst); err != nil {
			t.Fatalf("%s %s: %v", meta.Kind, meta.Metadata.Name, err)
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// agent and hub return the one DaemonSet and the one Deployment.
func (m *manifests) agent(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	if len(m.daemonSets) != 1 {
		t.Fatalf("%d DaemonSets rendered, want 1", len(m.daemonSets))
	}
	return &m.daemonSets[0]
}

func (m *manifests) hub(t *testing.T) *appsv1.Deployment {
	t.Helper()
	if len(m.deployments) != 1 {
		t.Fatalf("%d Deployments rendered, want 1", len(m.deployments))
	}
	return &m.deployments[0]
}

// arg returns the value of --name=value in args, and whether it is there.
func arg(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func addedCaps(c *corev1.Container) []string {
	var caps []string
	if c.SecurityContext != nil && c.SecurityContext.Capabilities != nil {
		for _, c := range c.SecurityContext.Capabilities.Add {
			caps = append(caps, string(c))
		}
	}
	slices.Sort(caps)
	return caps
}

// tokenChecksum is the chart's checksum/secret of a Secret's data: the
// sha256 of its YAML (keys sorted, values base64).
func tokenChecksum(data map[string][]byte) string {
	var keys []string
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var lines []string
	for _, k := range keys {
		lines = append(lines, k+": "+base64.StdEncoding.EncodeToString(data[k]))
	}
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:])
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9]{48}$`)

// checkTokens checks a Secret's data holds two different 48-character
// tokens under mcp-token and agent-token, and nothing else.
func checkTokens(t *testing.T, data map[string][]byte) {
	t.Helper()
	if len(data) != 2 {
		t.Errorf("the Secret has %d keys, want mcp-token and agent-token", len(data))
	}
	for _, k := range []string{"mcp-token", "agent-token"} {
		if !tokenRE.Match(data[k]) {
			t.Errorf("%s is %q, want 48 letters and digits", k, data[k])
		}
	}
	if bytes.Equal(data["mcp-token"], data["agent-token"]) {
		t.Error("mcp-token and agent-token are the same")
	}
}

const (
	rel = "ws"
	ns  = "wirescope"
)

// valueSets are the sets of values every test renders, with what each
// must show.
var valueSets = []valueSet{
	{name: "default", check: func(t *testing.T, m *manifests) {
		ds, hub := m.agent(t), m.hub(t)
		pod, c := &ds.Spec.Template.Spec, &ds.Spec.Template.Spec.Containers[0]
		if !pod.HostNetwork || !pod.HostPID {
			t.Errorf("agent: hostNetwork %v, hostPID %v; want both (capture on the node, eBPF seeding)", pod.HostNetwork, pod.HostPID)
		}
		if got, want := addedCaps(c), []string{"BPF", "NET_ADMIN", "NET_RAW", "PERFMON"}; !slices.Equal(got, want) {
			t.Errorf("agent capabilities %v, want %v", got, want)
		}
		if v := volume(pod, "segments"); v == nil || v.HostPath == nil || v.HostPath.Path != "/var/lib/wirescope" {
			t.Errorf("agent segments volume %+v, want hostPath /var/lib/wirescope", v)
		}
		if v := volume(pod, "cgroup"); v == nil || v.HostPath == nil || v.HostPath.Path != "/sys/fs/cgroup" {
			t.Errorf("agent cgroup volume %+v, want the node's /sys/fs/cgroup", v)
		}
		// 90% of 10 GiB.
		if v, _ := arg(c.Args, "max-bytes"); v != "9663676416" {
			t.Errorf("agent --max-bytes=%q, want 9663676416 (90%% of 10 GiB)", v)
		}
		for name, want := range map[string]string{"iface": "any", "max-age": "24h", "listen": "0.0.0.0:8899",
			"token-file": "/etc/wirescope/agent-token", "node-name": "$(NODE_NAME)", "data-dir": "/var/lib/wirescope/segments", "log-format": "json"} {
			if v, ok := arg(c.Args, name); !ok || v != want {
				t.Errorf("agent --%s=%q (set: %v), want %q", name, v, ok, want)
			}
		}
		if _, ok := arg(c.Args, "filter"); ok {
			t.Error("agent has --filter without agent.filter")
		}
		if len(c.Env) != 1 || c.Env[0].Name != "NODE_NAME" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
			t.Errorf("agent env %+v, want NODE_NAME from spec.nodeName", c.Env)
		}
		if len(pod.Tolerations) != 1 || pod.Tolerations[0].Operator != corev1.TolerationOpExists || pod.Tolerations[0].Key != "" {
			t.Errorf("agent tolerations %+v, want every taint tolerated (operator Exists)", pod.Tolerations)
		}
		hc := &hub.Spec.Template.Spec.Containers[0]
		for name, want := range map[string]string{"listen": "0.0.0.0:8898", "token-file": "/etc/wirescope/mcp-token",
			"data-dir": "/var/lib/wirescope/hub", "agents-service": ns + "/" + rel + "-wirescope-agent",
			"agent-token-file": "/etc/wirescope/agent-token", "metrics-listen": "0.0.0.0:9090", "log-format": "json"} {
			if v, ok := arg(hc.Args, name); !ok || v != want {
				t.Errorf("hub --%s=%q (set: %v), want %q", name, v, ok, want)
			}
		}
		if !slices.Contains(hc.Args, "--in-cluster") {
			t.Errorf("hub args %v lack --in-cluster", hc.Args)
		}
		if v := volume(&hub.Spec.Template.Spec, "data"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != rel+"-wirescope-hub" {
			t.Errorf("hub data volume %+v, want the chart's PVC", v)
		}
		if len(m.pvcs) != 1 || m.pvcs[0].Spec.Resources.Requests.Storage().String() != "20Gi" {
			t.Errorf("PVCs %+v, want one of 20Gi", m.pvcs)
		}
		if hub.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("hub strategy %q, want Recreate (one index, a ReadWriteOnce volume)", hub.Spec.Strategy.Type)
		}
		if len(m.secrets) != 1 {
			t.Fatalf("%d Secrets, want 1", len(m.secrets))
		}
		s := m.secrets[0]
		checkTokens(t, s.Data)
		// The Secret and both pods' checksum were computed from the same
		// tokens, although helm template generates new ones.
		sum := tokenChecksum(s.Data)
		for what, a := range map[string]map[string]string{"agent": ds.Spec.Template.Annotations, "hub": hub.Spec.Template.Annotations} {
			if a["checksum/secret"] != sum {
				t.Errorf("%s checksum/secret %q, want the sha256 of the Secret's data %q", what, a["checksum/secret"], sum)
			}
		}
		if len(m.netpols) != 1 {
			t.Fatalf("%d NetworkPolicies, want 1", len(m.netpols))
		}
		np := m.netpols[0]
		if !equalLabels(np.Spec.PodSelector.MatchLabels, ds.Spec.Selector.MatchLabels) {
			t.Errorf("NetworkPolicy selects %v, the agents are %v", np.Spec.PodSelector.MatchLabels, ds.Spec.Selector.MatchLabels)
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].PodSelector == nil ||
			!equalLabels(np.Spec.Ingress[0].From[0].PodSelector.MatchLabels, hub.Spec.Selector.MatchLabels) ||
			len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8899 {
			t.Errorf("NetworkPolicy ingress %+v, want port 8899 from the hub's pods only", np.Spec.Ingress)
		}
		var headless, hubSvc *corev1.Service
		for i := range m.services {
			switch m.services[i].Name {
			case rel + "-wirescope-agent":
				headless = &m.services[i]
			case rel + "-wirescope-hub":
				hubSvc = &m.services[i]
			}
		}
		if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || len(headless.Spec.Ports) != 1 ||
			headless.Spec.Ports[0].Name != "api" || headless.Spec.Ports[0].Port != 8899 || !equalLabels(headless.Spec.Selector, ds.Spec.Selector.MatchLabels) {
			t.Errorf("agents' Service %+v, want headless, port 8899 named api, selecting the agents", headless)
		}
		if hubSvc == nil || hubSvc.Spec.ClusterIP == corev1.ClusterIPNone || len(hubSvc.Spec.Ports) != 2 ||
			hubSvc.Spec.Ports[0].Name != "mcp" || hubSvc.Spec.Ports[0].Port != 8898 ||
			hubSvc.Spec.Ports[1].Name != "metrics" || hubSvc.Spec.Ports[1].Port != 9090 {
			t.Errorf("hub's Service %+v, want ports mcp 8898 and metrics 9090", hubSvc)
		}
		if got := c.Image; got != "ghcr.io/wirescope/wirescope:0.1.0" || hc.Image != got {
			t.Errorf("images %q and %q, want ghcr.io/wirescope/wirescope:0.1.0 (the chart's appVersion)", got, hc.Image)
		}
	}},
	{name: "emptyDir", values: "agent:\n  storage:\n    type: emptyDir\n    sizeGiB: 20\n    maxBytesPercent: 80\n", check: func(t *testing.T, m *manifests) {
		pod := &m.agent(t).Spec.Template.Spec
		v := volume(pod, "segments")
		if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.String() != "20Gi" || v.HostPath != nil {
			t.Errorf("segments volume %+v, want an emptyDir of 20Gi", v)
		}
		if got, _ := arg(pod.Containers[0].Args, "max-bytes"); got != "17179869184" {
			t.Errorf("--max-bytes=%q, want 17179869184 (80%% of 20 GiB)", got)
		}
	}},
	{name: "existingSecret", values: "secret:\n  existingSecret: my-tokens\n", check: func(t *testing.T, m *manifests) {
		if n := len(m.secrets); n != 0 {
			t.Errorf("%d Secrets rendered with existingSecret, want none", n)
		}
		for what, pod := range map[string]*corev1.PodSpec{"agent": &m.agent(t).Spec.Template.Spec, "hub": &m.hub(t).Spec.Template.Spec} {
			if v := volume(pod, "tokens"); v == nil || v.Secret == nil || v.Secret.SecretName != "my-tokens" {
				t.Errorf("%s tokens volume %+v, want Secret my-tokens", what, v)
			}
		}
	}},
	{name: "networkPolicyOff", values: "networkPolicy:\n  enabled: false\n", check: func(t *testing.T, m *manifests) {
		if n := len(m.netpols); n != 0 {
			t.Errorf("%d NetworkPolicies with networkPolicy.enabled=false, want none", n)
		}
	}},
	{name: "attributionOff", values: "agent:\n  attribution:\n    enabled: false\n", check: func(t *testing.T, m *manifests) {
		pod := &m.agent(t).Spec.Template.Spec
		if pod.HostPID {
			t.Error("hostPID without attribution")
		}
		if got := addedCaps(&pod.Containers[0]); !slices.Equal(got, []string{"NET_RAW"}) {
			t.Errorf("capabilities without attribution %v, want [NET_RAW]", got)
		}
		if volume(pod, "cgroup") != nil {
			t.Error("the node's cgroup fs is mounted without attribution")
		}
	}},
	{name: "seedOtherNetns", values: "agent:\n  attribution:\n    seedOtherNetworkNamespaces: true\n  extraCapabilities: [SYS_RESOURCE, NET_RAW]\n", check: func(t *testing.T, m *manifests) {
		c := &m.agent(t).Spec.Template.Spec.Containers[0]
		if got, want := addedCaps(c), []string{"BPF", "NET_ADMIN", "NET_RAW", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}; !slices.Equal(got, want) {
			t.Errorf("capabilities %v, want %v (each once)", got, want)
		}
	}},
	{name: "pvcOptions", values: "hub:\n  persistence:\n    storageClass: \"-\"\n    size: 50Gi\nagent:\n  maxUnavailable: 10%\n", check: func(t *testing.T, m *manifests) {
		if len(m.pvcs) != 1 || m.pvcs[0].Spec.StorageClassName == nil || *m.pvcs[0].Spec.StorageClassName != "" ||
			m.pvcs[0].Spec.Resources.Requests.Storage().String() != "50Gi" {
			t.Errorf("PVCs %+v, want one of 50Gi with storageClassName \"\" (storageClass: \"-\")", m.pvcs)
		}
		if u := m.agent(t).Spec.UpdateStrategy.RollingUpdate.MaxUnavailable; u == nil || u.String() != "10%" {
			t.Errorf("agent maxUnavailable %v, want 10%%", u)
		}
	}},
	{name: "existingClaim", values: "hub:\n  persistence:\n    existingClaim: hub-data\n", check: func(t *testing.T, m *manifests) {
		if n := len(m.pvcs); n != 0 {
			t.Errorf("%d PVCs with existingClaim, want none", n)
		}
		if v := volume(&m.hub(t).Spec.Template.Spec, "data"); v == nil || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != "hub-data" {
			t.Errorf("hub data volume %+v, want claim hub-data", v)
		}
	}},
	{name: "airgapped", values: `global:
  imageRegistry: registry.local:5000
  imagePullSecrets: [{name: mirror}]
image:
  digest: sha256:` + strings.Repeat("ab", 32) + `
  pullPolicy: Never
  pullSecrets: [{name: regcred}]
agent:
  filter: not port 8899 and not port 8898
  interfaces: [eth0, "veth*"]
hub:
  persistence:
    enabled: false
`, check: func(t *testing.T, m *manifests) {
		want := "registry.local:5000/wirescope/wirescope@sha256:" + strings.Repeat("ab", 32)
		for what, pod := range map[string]*corev1.PodSpec{"agent": &m.agent(t).Spec.Template.Spec, "hub": &m.hub(t).Spec.Template.Spec} {
			c := pod.Containers[0]
			if c.Image != want || c.ImagePullPolicy != corev1.PullNever {
				t.Errorf("%s image %q (%s), want %q (Never)", what, c.Image, c.ImagePullPolicy, want)
			}
			var secrets []string
			for _, s := range pod.ImagePullSecrets {
				secrets = append(secrets, s.Name)
			}
			if !slices.Equal(secrets, []string{"mirror", "regcred"}) {
				t.Errorf("%s imagePullSecrets %v, want [mirror regcred]", what, secrets)
			}
		}
		args := m.agent(t).Spec.Template.Spec.Containers[0].Args
		if f, _ := arg(args, "filter"); f != "not port 8899 and not port 8898" {
			t.Errorf("--filter=%q", f)
		}
		if !slices.Contains(args, "--iface=eth0") || !slices.Contains(args, "--iface=veth*") {
			t.Errorf("agent args %v, want --iface=eth0 and --iface=veth*", args)
		}
		if n := len(m.pvcs); n != 0 {
			t.Errorf("%d PVCs with persistence off, want none", n)
		}
		if v := volume(&m.hub(t).Spec.Template.Spec, "data"); v == nil || v.EmptyDir == nil {
			t.Errorf("hub data volume %+v with persistence off, want an emptyDir", v)
		}
	}},
}

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestLint runs helm lint, plain and --strict (warnings fail), with the
// default values and every value set.
func TestLint(t *testing.T) {
	helm := binary(t, "helm")
	for _, vs := range valueSets {
		for _, strict := range []bool{false, true} {
			args := []string{"lint", chartDir}
			if strict {
				args = append(args, "--strict")
			}
			args = append(args, writeValues(t, vs.values)...)
			out, err := run(nil, helm, args...)
			if err != nil {
				t.Errorf("%s: %v\n%s", vs.name, err, out)
			} else if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
				t.Errorf("%s: helm lint says\n%s", vs.name, out)
			}
		}
	}
}

// TestTemplate renders every value set, checks what each must show and
// runs the policy check over it.
func TestTemplate(t *testing.T) {
	helm := binary(t, "helm")
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, helm, rel, ns, vs.values)
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, out)
			for _, v := range policyViolations(m) {
				t.Error(v)
			}
			vs.check(t, m)
		})
	}
}

// TestSchemaRefuses checks values.schema.json refuses bad values with an
// error that names the value.
func TestSchemaRefuses(t *testing.T) {
	helm := binary(t, "helm")
	for _, c := range []struct {
		name, values string
		want         []string // in the error
	}{
		{"negative size", "agent:\n  storage:\n    sizeGiB: -1\n", []string{"at '/agent/storage/sizeGiB'", "minimum"}},
		{"fractional size", "agent:\n  storage:\n    sizeGiB: 1.5\n", []string{"at '/agent/storage/sizeGiB'", "integer"}},
		{"unknown storage type", "agent:\n  storage:\n    type: nfs\n", []string{"at '/agent/storage/type'", "hostPath", "emptyDir"}},
		{"relative host path", "agent:\n  storage:\n    hostPath: var/lib\n", []string{"at '/agent/storage/hostPath'"}},
		{"percent over 100", "agent:\n  storage:\n    maxBytesPercent: 150\n", []string{"at '/agent/storage/maxBytesPercent'", "maximum"}},
		{"bad duration", "agent:\n  maxAge: a day\n", []string{"at '/agent/maxAge'"}},
		{"unknown key", "agent:\n  privileged: true\n", []string{"at '/agent'", "additional properties 'privileged' not allowed"}},
		{"ALL capabilities", "agent:\n  extraCapabilities: [ALL]\n", []string{"at '/agent/extraCapabilities/0'"}},
		{"bad pull policy", "image:\n  pullPolicy: Sometimes\n", []string{"at '/image/pullPolicy'", "Always"}},
		{"two hubs", "hub:\n  replicas: 2\n", []string{"at '/hub/replicas'", "maximum"}},
		{"port out of range", "agent:\n  port: 70000\n", []string{"at '/agent/port'", "maximum"}},
		{"no memory limit", "hub:\n  resources:\n    limits: null\n", []string{"at '/hub/resources'"}},
		{"bad log format", "logFormat: xml\n", []string{"at '/logFormat'", "json"}},
		{"no interfaces", "agent:\n  interfaces: []\n", []string{"at '/agent/interfaces'"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := render(t, helm, rel, ns, c.values)
			if err == nil {
				t.Fatalf("rendered with %q:\n%.300s", c.values, out)
			}
			msg := err.Error()
			if !strings.Contains(msg, "values don't meet the specifications of the schema") {
				t.Errorf("not refused by the schema: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q: %v", w, err)
				}
			}
		})
	}
}

// TestPolicyViolations feeds the policy check objects that break each of
// its rules: each must be reported.
func TestPolicyViolations(t *testing.T) {
	helm := binary(t, "helm")
	out, err := render(t, helm, rel, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		break_ func(m *manifests)
		want   string
	}{
		{"create verb", func(m *manifests) {
			m.clusterRoles[0].Rules[0].Verbs = append(m.clusterRoles[0].Rules[0].Verbs, "create")
		}, `verb "create"`},
		{"wildcard verb", func(m *manifests) { m.clusterRoles[0].Rules[1].Verbs = []string{"*"} }, `verb "*"`},
		{"wildcard resource", func(m *manifests) { m.clusterRoles[0].Rules[0].Resources = []string{"*"} }, `resource "*"`},
		{"wildcard group", func(m *manifests) { m.clusterRoles[0].Rules[2].APIGroups = []string{"*"} }, `API group "*"`},
		{"secrets", func(m *manifests) {
			m.clusterRoles[0].Rules[0].Resources = append(m.clusterRoles[0].Rules[0].Resources, "secrets")
		}, `resource "secrets"`},
		{"subresource", func(m *manifests) {
			m.clusterRoles[0].Rules[0].Resources = append(m.clusterRoles[0].Rules[0].Resources, "pods/exec")
		}, `resource "pods/exec"`},
		{"non-resource URL", func(m *manifests) {
			m.clusterRoles[0].Rules = append(m.clusterRoles[0].Rules, rbacv1.PolicyRule{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}})
		}, "non-resource URLs"},
		{"namespaced role", func(m *manifests) {
			m.roles = append(m.roles, rbacv1.Role{Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"update"}}}})
		}, `verb "update"`},
		{"binding to cluster-admin", func(m *manifests) { m.clusterBindings[0].RoleRef.Name = "cluster-admin" }, "cluster-admin"},
		{"binding the agent", func(m *manifests) {
			m.clusterBindings[0].Subjects = append(m.clusterBindings[0].Subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: rel + "-wirescope-agent", Namespace: ns})
		}, "binds"},
		{"privileged agent", func(m *manifests) {
			m.daemonSets[0].Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr(true)
		}, "privileged"},
		{"agent token", func(m *manifests) { m.daemonSets[0].Spec.Template.Spec.AutomountServiceAccountToken = ptr(true) }, "token"},
		{"agent token by default", func(m *manifests) { m.daemonSets[0].Spec.Template.Spec.AutomountServiceAccountToken = nil }, "token"},
		{"agent caps kept", func(m *manifests) {
			m.daemonSets[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Drop = nil
		}, "drop ALL"},
		{"agent SYS_MODULE", func(m *manifests) {
			c := m.daemonSets[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities
			c.Add = append(c.Add, "SYS_MODULE")
		}, "SYS_MODULE"},
		{"agent MCP token", func(m *manifests) {
			volume(&m.daemonSets[0].Spec.Template.Spec, "tokens").Secret.Items = nil
		}, "mcp-token"},
		{"no resources", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{}
		}, "resources"},
		{"no memory limit", func(m *manifests) {
			delete(m.daemonSets[0].Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "memory limit"},
		{"hub as root", func(m *manifests) { m.deployments[0].Spec.Template.Spec.SecurityContext.RunAsUser = ptr(int64(0)) }, "root"},
		{"hub may be root", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot"},
		{"hub writable root", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "readOnlyRootFilesystem"},
		{"hub capability", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_RAW"}
		}, "capabilities"},
		{"hub escalation", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}, "allowPrivilegeEscalation"},
		{"hub host network", func(m *manifests) { m.deployments[0].Spec.Template.Spec.HostNetwork = true }, "host"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := decode(t, out)
			if v := policyViolations(m); len(v) != 0 {
				t.Fatalf("the chart as rendered already breaks the policy: %v", v)
			}
			c.break_(m)
			v := policyViolations(m)
			if len(v) == 0 {
				t.Fatal("not reported")
			}
			if !strings.Contains(strings.Join(v, "\n"), c.want) {
				t.Errorf("reported %q, want a violation that says %q", v, c.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// readResources is what the hub may read: API group → resources. Nothing
// else, and never secrets.
var readResources = map[string][]string{
	"":                 {"pods", "services", "nodes", "namespaces"},
	"discovery.k8s.io": {"endpointslices"},
	"apps":             {"replicasets", "deployments", "statefulsets", "daemonsets"},
	"batch":            {"jobs", "cronjobs"},
}

// agentCapabilities are the most an agent may be given (values.yaml says
// why each); anything else is a violation.
var agentCapabilities = []string{"NET_RAW", "BPF", "PERFMON", "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE", "DAC_READ_SEARCH"}

// policyViolations checks the rendered chart: every Role and ClusterRole
// only gets, lists and watches the resources of readResources; bindings
// bind only the chart's roles to the hub; the agents are not privileged,
// have no API token and only the capabilities they need; every container
// has requests and a memory limit; the hub runs as non-root, read-only,
// without capabilities or host namespaces.
func policyViolations(m *manifests) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	checkRules := func(kind, name string, rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			if len(r.NonResourceURLs) > 0 {
				bad("%s %s grants non-resource URLs %v", kind, name, r.NonResourceURLs)
			}
			for _, verb := range r.Verbs {
				if verb != "get" && verb != "list" && verb != "watch" {
					bad("%s %s grants verb %q: only get, list and watch are allowed", kind, name, verb)
				}
			}
			if len(r.ResourceNames) > 0 {
				bad("%s %s names resources %v", kind, name, r.ResourceNames)
			}
			for _, g := range r.APIGroups {
				allowed, ok := readResources[g]
				if !ok {
					bad("%s %s grants API group %q", kind, name, g)
					continue
				}
				for _, res := range r.Resources {
					if !slices.Contains(allowed, res) {
						bad("%s %s grants resource %q of API group %q", kind, name, res, g)
					}
				}
			}
		}
	}
	roles := map[string]bool{}
	for _, r := range m.roles {
		checkRules("Role", r.Name, r.Rules)
		roles["Role/"+r.Name] = true
	}
	for _, r := range m.clusterRoles {
		checkRules("ClusterRole", r.Name, r.Rules)
		if r.AggregationRule != nil {
			bad("ClusterRole %s aggregates other roles", r.Name)
		}
		roles["ClusterRole/"+r.Name] = true
	}
	hubSA := ""
	for _, d := range m.deployments {
		hubSA = d.Spec.Template.Spec.ServiceAccountName
	}
	checkBinding := func(kind, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		if !roles[ref.Kind+"/"+ref.Name] {
			bad("%s %s binds %s %s, which the chart does not define", kind, name, ref.Kind, ref.Name)
		}
		for _, s := range subjects {
			if s.Kind != "ServiceAccount" || s.Name != hubSA {
				bad("%s %s binds %s %s: only the hub's ServiceAccount %s may be bound", kind, name, s.Kind, s.Name, hubSA)
			}
		}
	}
	for _, b := range m.roleBindings {
		checkBinding("RoleBinding", b.Name, b.RoleRef, b.Subjects)
	}
	for _, b := range m.clusterBindings {
		checkBinding("ClusterRoleBinding", b.Name, b.RoleRef, b.Subjects)
	}
	for _, s := range m.secrets {
		if s.Type != corev1.SecretTypeOpaque {
			bad("Secret %s of type %s", s.Name, s.Type)
		}
	}

	checkResources := func(what string, cs []corev1.Container) {
		for _, c := range cs {
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() {
				bad("%s container %s has no cpu and memory requests (resources %+v)", what, c.Name, r)
			}
			if r.Limits.Memory().IsZero() {
				bad("%s container %s has no memory limit", what, c.Name)
			}
		}
	}
	for _, ds := range m.daemonSets {
		pod := &ds.Spec.Template.Spec
		what := "agent DaemonSet " + ds.Name
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			bad("%s mounts a Kubernetes API token (automountServiceAccountToken must be false)", what)
		}
		if pod.ServiceAccountName == hubSA {
			bad("%s runs as the hub's ServiceAccount", what)
		}
		if pod.HostIPC {
			bad("%s shares the host's IPC namespace", what)
		}
		checkResources(what, append(pod.InitContainers, pod.Containers...))
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			sc := c.SecurityContext
			if sc == nil {
				bad("%s container %s has no securityContext", what, c.Name)
				continue
			}
			if sc.Privileged == nil || *sc.Privileged {
				bad("%s container %s is privileged (or may be: privileged must be false)", what, c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("%s container %s allows privilege escalation", what, c.Name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("%s container %s has a writable root filesystem", what, c.Name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				bad("%s container %s does not drop ALL capabilities", what, c.Name)
			} else {
				for _, cp := range sc.Capabilities.Add {
					if !slices.Contains(agentCapabilities, string(cp)) {
						bad("%s container %s adds capability %s", what, c.Name, cp)
					}
				}
			}
		}
		for _, vol := range pod.Volumes {
			if vol.Secret != nil {
				if len(vol.Secret.Items) == 0 {
					bad("%s mounts all of Secret %s: the agents must not see the mcp-token", what, vol.Secret.SecretName)
				}
				for _, it := range vol.Secret.Items {
					if it.Key != "agent-token" {
						bad("%s mounts %s of Secret %s: the agents need only the agent-token", what, it.Key, vol.Secret.SecretName)
					}
				}
			}
			if vol.HostPath != nil && vol.HostPath.Path == "/" {
				bad("%s mounts the node's root filesystem", what)
			}
		}
	}
	for _, d := range m.deployments {
		pod := &d.Spec.Template.Spec
		what := "hub Deployment " + d.Name
		if pod.HostNetwork || pod.HostPID || pod.HostIPC {
			bad("%s uses a host namespace", what)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			bad("%s runs as root (pod runAsUser unset or 0)", what)
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("%s has no RuntimeDefault seccomp profile", what)
		}
		podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
		checkResources(what, append(pod.InitContainers, pod.Containers...))
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			sc := c.SecurityContext
			if sc == nil {
				bad("%s container %s has no securityContext", what, c.Name)
				continue
			}
			if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				bad("%s container %s: runAsNonRoot is not set", what, c.Name)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				bad("%s container %s runs as root", what, c.Name)
			}
			if sc.Privileged != nil && *sc.Privileged {
				bad("%s container %s is privileged", what, c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad("%s container %s: allowPrivilegeEscalation is not false", what, c.Name)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				bad("%s container %s: readOnlyRootFilesystem is not true", what, c.Name)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				bad("%s container %s: capabilities must drop ALL and add none", what, c.Name)
			}
		}
	}
	return v
}
