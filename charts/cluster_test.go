package charts

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// cluster is the kube-apiserver of scripts/k8s-env.sh and the tools that
// talk to it.
type cluster struct {
	helm, kubectl string
}

// apiserver returns the cluster, or skips (fails where required) when
// there is none.
func apiserver(t *testing.T) *cluster {
	t.Helper()
	if os.Getenv("KUBECONFIG") == "" || os.Getenv("K8S_TEST_APISERVER") == "" {
		skipOrFail(t, "KUBECONFIG and K8S_TEST_APISERVER are not set: no kube-apiserver to test against")
	}
	c := &cluster{helm: binary(t, "helm"), kubectl: binary(t, "kubectl")}
	if out, err := c.k(nil, "get", "--raw", "/readyz"); err != nil || strings.TrimSpace(string(out)) != "ok" {
		skipOrFail(t, "the kube-apiserver at %s is not ready: %v %s", os.Getenv("K8S_TEST_APISERVER"), err, out)
	}
	return c
}

func (c *cluster) k(stdin []byte, args ...string) ([]byte, error) {
	return run(stdin, c.kubectl, args...)
}
func (c *cluster) h(args ...string) ([]byte, error) { return run(nil, c.helm, args...) }

// namespace creates a namespace named prefix-random for the test and
// deletes it when the test ends.
func (c *cluster) namespace(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	if _, err := c.k(nil, "create", "namespace", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.deleteNamespace(t, name) })
	return name
}

// deleteNamespace deletes a namespace and waits until it is gone. Without
// kube-controller-manager (K8S_KCM=1) nothing removes the finalizers of
// a namespace or of a PersistentVolumeClaim: the test removes them, as
// their controllers would once the objects are unused.
func (c *cluster) deleteNamespace(t *testing.T, name string) {
	out, err := c.k(nil, "-n", name, "get", "pvc", "-o", "name")
	if err != nil {
		t.Errorf("list the PVCs left in %s: %v", name, err)
	}
	for _, pvc := range strings.Fields(string(out)) {
		if _, err := c.k(nil, "-n", name, "patch", pvc, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`); err != nil {
			t.Errorf("release %s: %v", pvc, err)
		}
	}
	if _, err := c.k(nil, "delete", "namespace", name, "--wait=false"); err != nil {
		t.Errorf("delete namespace %s: %v", name, err)
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.k(nil, "get", "namespace", name, "-o", "json", "--ignore-not-found")
		if err != nil {
			t.Errorf("namespace %s: %v", name, err)
			return
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		var ns corev1.Namespace
		if err := json.Unmarshal(out, &ns); err != nil {
			t.Errorf("namespace %s: %v", name, err)
			return
		}
		if len(ns.Spec.Finalizers) > 0 {
			ns.Spec.Finalizers = nil
			body, _ := json.Marshal(ns)
			if _, err := c.k(body, "replace", "--raw", "/api/v1/namespaces/"+name+"/finalize", "-f", "-"); err != nil && !strings.Contains(err.Error(), "NotFound") {
				t.Errorf("finalize namespace %s: %v", name, err)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("namespace %s is still there after 30 s: %s", name, out)
			return
		}
		time.Sleep(100 * time.Millisecond) // polling the condition, with a deadline
	}
}

// TestServerDryRun renders every value set and has the real apiserver
// validate it: kubectl apply --dry-run=server (schema, field validation,
// admission), in a namespace that exists.
func TestServerDryRun(t *testing.T) {
	c := apiserver(t)
	ns := c.namespace(t, "chart-dry")
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			out, err := render(t, c.helm, "dry", ns, vs.values)
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, out)
			res, err := c.k(out, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			if err != nil {
				t.Fatal(err)
			}
			// One line per object: "<kind>/<name> created (server dry run)".
			lines := strings.Split(strings.TrimSpace(string(res)), "\n")
			if len(lines) != len(m.all) {
				t.Errorf("the apiserver answered for %d objects, the chart renders %d:\n%s", len(lines), len(m.all), res)
			}
			for _, l := range lines {
				if !strings.HasSuffix(l, "(server dry run)") {
					t.Errorf("not a server dry run: %q", l)
				}
			}
		})
	}
	// Nothing was created.
	out, err := c.k(nil, "-n", ns, "get", "secrets,serviceaccounts,daemonsets,deployments,services,pvc,networkpolicies", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("a dry run created objects:\n%s", out)
	}
}

// TestInstallUpgrade installs the chart for real (the pods do not run: no
// kubelet), checks what the hub's and the agents' ServiceAccounts may do
// with the apiserver's RBAC, that NOTES' command gives the MCP token, that
// an upgrade keeps the tokens and the pods' checksum, and that uninstall
// removes the cluster-wide objects.
func TestInstallUpgrade(t *testing.T) {
	c := apiserver(t)
	ns := c.namespace(t, "chart-inst")
	// The release's ClusterRole is cluster-wide: a name of its own, so that
	// two runs against one apiserver do not clash.
	release := "inst-" + strings.TrimPrefix(ns, "chart-inst-")
	installed := true
	if _, err := c.h("install", release, chartDir, "--namespace", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if installed {
			if _, err := c.h("uninstall", release, "--namespace", ns); err != nil {
				t.Error(err)
			}
		}
	})
	full := release + "-wirescope"

	secret := func() map[string][]byte {
		t.Helper()
		out, err := c.k(nil, "-n", ns, "get", "secret", full, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var s corev1.Secret
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatal(err)
		}
		return s.Data
	}
	checksums := func() (agent, hub string) {
		t.Helper()
		var ds appsv1.DaemonSet
		var d appsv1.Deployment
		for _, o := range []struct {
			name string
			dst  any
		}{{"daemonset/" + full + "-agent", &ds}, {"deployment/" + full + "-hub", &d}} {
			out, err := c.k(nil, "-n", ns, "get", o.name, "-o", "json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, o.dst); err != nil {
				t.Fatal(err)
			}
		}
		return ds.Spec.Template.Annotations["checksum/secret"], d.Spec.Template.Annotations["checksum/secret"]
	}

	first := secret()
	checkTokens(t, first)
	agentSum, hubSum := checksums()
	if want := tokenChecksum(first); agentSum != want || hubSum != want {
		t.Errorf("checksum/secret: agent %q, hub %q; want the sha256 of the Secret's data %q", agentSum, hubSum, want)
	}

	// What the ServiceAccounts may do, asked of the apiserver's RBAC.
	hubSA := "system:serviceaccount:" + ns + ":" + full + "-hub"
	agentSA := "system:serviceaccount:" + ns + ":" + full + "-agent"
	for _, q := range []struct {
		as, verb, resource string
		want               bool
	}{
		{hubSA, "list", "pods", true},
		{hubSA, "watch", "endpointslices.discovery.k8s.io", true},
		{hubSA, "get", "replicasets.apps", true},
		{hubSA, "list", "cronjobs.batch", true},
		{hubSA, "watch", "nodes", true},
		{hubSA, "get", "secrets", false},
		{hubSA, "list", "configmaps", false},
		{hubSA, "create", "pods", false},
		{hubSA, "delete", "pods", false},
		{hubSA, "create", "pods/exec", false},
		{hubSA, "update", "deployments.apps", false},
		{hubSA, "patch", "nodes", false},
		{agentSA, "list", "pods", false},
		{agentSA, "get", "nodes", false},
		{agentSA, "get", "secrets", false},
	} {
		out, err := c.k(nil, "auth", "can-i", q.verb, q.resource, "--as", q.as, "--all-namespaces")
		got := strings.TrimSpace(string(out))
		if (got != "yes" && got != "no") || (err != nil && got != "no") {
			t.Errorf("can-i %s %s as %s: %q %v", q.verb, q.resource, q.as, got, err)
			continue
		}
		if (got == "yes") != q.want {
			t.Errorf("%s may %s %s: %s, want %v", q.as, q.verb, q.resource, got, q.want)
		}
	}

	// NOTES' claude line reads the token with a kubectl command: run it.
	notes, err := c.h("get", "notes", release, "--namespace", ns)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(notes, []byte("kubectl -n "+ns+" port-forward svc/"+full+"-hub 8898:8898")) {
		t.Errorf("NOTES has no port-forward line for svc/%s-hub:\n%s", full, notes)
	}
	sub := regexp.MustCompile(`claude mcp add --transport http wirescope http://127\.0\.0\.1:8898/mcp --header "Authorization: Bearer \$\((kubectl [^)]*)\)"`).FindSubmatch(notes)
	if sub == nil {
		t.Fatalf("NOTES has no claude mcp add line reading the token with kubectl:\n%s", notes)
	}
	cmd := exec.Command("bash", "-c", strings.Replace(string(sub[1]), "kubectl", c.kubectl, 1))
	token, err := cmd.Output()
	if err != nil {
		t.Fatalf("NOTES' %s: %v", sub[1], err)
	}
	if !bytes.Equal(token, first["mcp-token"]) {
		t.Errorf("NOTES' command gives %q, the mcp-token is %q", token, first["mcp-token"])
	}

	// An upgrade, with changed values, keeps the tokens: the pods' checksum
	// stays, so the tokens do not roll them.
	if _, err := c.h("upgrade", release, chartDir, "--namespace", ns, "--set", "agent.storage.sizeGiB=20", "--set", "hub.resources.limits.memory=3Gi"); err != nil {
		t.Fatal(err)
	}
	second := secret()
	for _, k := range []string{"mcp-token", "agent-token"} {
		if !bytes.Equal(first[k], second[k]) {
			t.Errorf("helm upgrade changed %s: %q, then %q", k, first[k], second[k])
		}
	}
	if a, h := checksums(); a != agentSum || h != hubSum {
		t.Errorf("checksum/secret after upgrade: agent %q, hub %q; before %q, %q", a, h, agentSum, hubSum)
	}
	out, err := c.k(nil, "-n", ns, "get", "daemonset", full+"-agent", "-o", "jsonpath={.spec.template.spec.containers[0].args}")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("--max-bytes=19327352832")) {
		t.Errorf("the upgrade did not apply: agent args %s", out)
	}
	rev, err := c.h("history", release, "--namespace", ns, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var history []struct {
		Revision int    `json:"revision"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal(rev, &history); err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 || history[1].Status != "deployed" {
		t.Errorf("release history %+v, want 2 revisions, the second deployed", history)
	}

	// A token deleted from the Secret is made anew on the next upgrade; the
	// other is kept.
	if _, err := c.k(nil, "-n", ns, "patch", "secret", full, "--type=json", "-p", `[{"op":"remove","path":"/data/agent-token"}]`); err != nil {
		t.Fatal(err)
	}
	if _, err := c.h("upgrade", release, chartDir, "--namespace", ns, "--reuse-values"); err != nil {
		t.Fatal(err)
	}
	third := secret()
	checkTokens(t, third)
	if !bytes.Equal(third["mcp-token"], first["mcp-token"]) || bytes.Equal(third["agent-token"], first["agent-token"]) {
		t.Errorf("after the agent-token was removed: mcp-token kept %v, agent-token new %v",
			bytes.Equal(third["mcp-token"], first["mcp-token"]), !bytes.Equal(third["agent-token"], first["agent-token"]))
	}
	if a, _ := checksums(); a == agentSum {
		t.Error("a new agent-token did not change the pods' checksum: the pods would keep the old token")
	}

	if _, err := c.h("uninstall", release, "--namespace", ns); err != nil {
		t.Fatal(err)
	}
	installed = false
	for _, o := range []string{"clusterrole/" + full + "-hub", "clusterrolebinding/" + full + "-hub"} {
		out, err := c.k(nil, "get", o, "--ignore-not-found", "-o", "name")
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("%s is left after helm uninstall", o)
		}
	}
	if out, err := c.k(nil, "-n", ns, "get", "secret", full, "--ignore-not-found", "-o", "name"); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("the Secret is left after helm uninstall: %s %v", out, err)
	}
}
