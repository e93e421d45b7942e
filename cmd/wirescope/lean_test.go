package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leanHeavy are the packages a lean build must not link: their package
// initialisation is what the lean build exists to avoid (the Kubernetes
// client and API types, Prometheus, Bleve, the MCP server, eBPF, pprof's
// handlers).
var leanHeavy = []string{
	"k8s.io/", "github.com/prometheus/", "github.com/blevesearch/", "github.com/mark3labs/mcp-go",
	"github.com/cilium/ebpf", "net/http/pprof", "github.com/santhosh-tekuri/", "github.com/google/gnostic-models",
}

// TestLeanBuild builds wirescope with -tags lean, as make build installs it,
// and checks what it is for: it links none of the heavy packages, it
// dissects exactly as the full binary does, it hands every other command
// to the full binary beside it (which answers as itself), and without one
// it says why instead of failing obscurely or executing itself.
func TestLeanBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary twice")
	}
	deps, err := exec.Command("go", "list", "-deps", "-tags", "lean", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags lean: %v", err)
	}
	for _, p := range strings.Fields(string(deps)) {
		for _, h := range leanHeavy {
			if strings.HasPrefix(p, h) {
				t.Errorf("the lean build links %s: find the import that brings it into dissect's path", p)
			}
		}
	}
	full := wirescopeBinary(t)
	dir := t.TempDir()
	lean := filepath.Join(dir, "wirescope")
	if out, err := exec.Command("go", "build", "-tags", "lean", "-o", lean, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags lean: %v\n%s", err, out)
	}
	run := func(bin string, env []string, args ...string) (string, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	// Dissection: the same records, byte for byte.
	for _, pcap := range []string{nginxPcap, dnsmasqPcap} {
		want, _, err := run(full, nil, "dissect", "--flows", pcap)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := run(lean, nil, "dissect", "--flows", pcap)
		if err != nil {
			t.Fatalf("lean dissect %s: %v", pcap, err)
		}
		if got != want || !strings.Contains(got, `"proto":`) {
			t.Errorf("lean dissect %s printed\n%.600s\nthe full binary\n%.600s", pcap, got, want)
		}
	}

	// Without the full binary beside it or on PATH: a clear error.
	noPath := []string{"PATH=" + t.TempDir()}
	_, stderr, err := run(lean, noPath, "hub", "--help")
	if err == nil || !strings.Contains(stderr, "lean build") || !strings.Contains(stderr, "wirescope-full") {
		t.Errorf("lean hub without the full binary: err %v, stderr %q; want an error naming wirescope-full", err, stderr)
	}

	// With it beside: the full binary answers, with the arguments given.
	if err := os.Symlink(full, filepath.Join(dir, "wirescope-full")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"hub", "--help"}, {"agent", "--help"}, {"--help"}} {
		want, _, err := run(full, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		got, stderr, err := run(lean, noPath, args...)
		if err != nil || got != want {
			t.Errorf("lean %v: err %v, stderr %q, printed\n%.400s\nwant the full binary's\n%.400s", args, err, stderr, got, want)
		}
	}

	// A lean binary under the full one's name must not execute itself.
	// (Copies: the lean binary resolves its own symlinks to find its
	// directory.)
	loop := t.TempDir()
	b, err := os.ReadFile(lean)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"wirescope", "wirescope-full"} {
		if err := os.WriteFile(filepath.Join(loop, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr, err = run(filepath.Join(loop, "wirescope"), noPath, "hub", "--help")
	if err == nil || !strings.Contains(stderr, "lean build too") {
		t.Errorf("lean under the full name: err %v, stderr %q; want it to refuse", err, stderr)
	}
}
