package dissect_test

import (
	"go/build"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportRules keeps dependencies flowing one way (DESIGN.md's package
// map): capture never reaches the index, the tools, the MCP SDK or Bleve;
// dissect never reaches the index, the tools or the server; the index
// never reaches the tools, the server or the MCP SDK; the analyses below
// the tools reach none of the tools, the server, the capture, the MCP SDK,
// the token counter or Kubernetes; the tools never reach the server that
// implements their Backend; the evals reach the server only over MCP.
func TestImportRules(t *testing.T) {
	rules := map[string][]string{
		"./capture/...":  {"/index", "/tools", "/server", "mark3labs/mcp-go", "blevesearch", "/dissect"},
		"./dissect/...":  {"/index", "/tools", "/server", "mark3labs/mcp-go", "blevesearch", "k8s.io/"},
		"./index/...":    {"/tools", "/server", "mark3labs/mcp-go"},
		"./analysis/...": {"/tools", "/server", "/capture", "mark3labs/mcp-go", "tiktoken", "k8s.io/"},
		"./tools/...":    {"/server"},
		"./eval/...":     {"/server"}, // it talks to the server over MCP, as any client
	}
	for pkgs, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", filepath.Join("..", pkgs)).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkgs, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if strings.Contains(dep, b) && (b[0] != '/' || strings.HasPrefix(dep, "github.com/wirescope/wirescope"+b)) {
					t.Errorf("%s depends on %s", pkgs, dep)
				}
			}
		}
	}
}

// TestPackageDocs checks every package of the module has a doc comment.
func TestPackageDocs(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		p, err := build.ImportDir(dir, build.ImportComment)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if p.Doc == "" {
			t.Errorf("package %s (%s) has no package doc comment", p.Name, dir)
		}
	}
}
