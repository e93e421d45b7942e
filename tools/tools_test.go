package tools_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/tools"
)

// update rewrites the snapshots and the README's tool table.
var update = os.Getenv("UPDATE_TOOLSNAPS") == "true"

// TestToolSnaps compares every tool's definition (name, description,
// annotations, schemas) with its snapshot under __toolsnaps__, so that a
// change to what clients see is a reviewed diff. UPDATE_TOOLSNAPS=true
// rewrites them; a missing snapshot fails.
func TestToolSnaps(t *testing.T) {
	names := map[string]bool{}
	for _, tool := range tools.All(nil) {
		got, err := json.MarshalIndent(tool.Def, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("__toolsnaps__", tool.Def.Name+".snap")
		names[filepath.Base(path)] = true
		if update {
			os.MkdirAll("__toolsnaps__", 0o755)
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: no snapshot (%v): run UPDATE_TOOLSNAPS=true go test ./tools and review the new file", tool.Def.Name, err)
			continue
		}
		if string(got) != string(want) {
			t.Errorf("%s changed from its snapshot %s: if intended, run UPDATE_TOOLSNAPS=true go test ./tools and review the diff\ngot:\n%s",
				tool.Def.Name, path, got)
		}
	}
	entries, _ := os.ReadDir("__toolsnaps__")
	for _, e := range entries {
		if !names[e.Name()] {
			t.Errorf("snapshot %s belongs to no tool: remove it", e.Name())
		}
	}
}

// schema is the part of a JSON Schema the inventory checks.
type schema struct {
	Type       any                `json:"type"`
	Properties map[string]*schema `json:"properties"`
	Required   []string           `json:"required"`
	AnyOf      any                `json:"anyOf"`
	OneOf      any                `json:"oneOf"`
	AllOf      any                `json:"allOf"`
	Not        any                `json:"not"`
	Ref        string             `json:"$ref"`
	Desc       string             `json:"description"`
	Minimum    *float64           `json:"minimum"`
	Maximum    *float64           `json:"maximum"`
	Default    any                `json:"default"`
	Enum       []any              `json:"enum"`
}

// TestInventory checks what every client relies on: unique snake_case
// names, a title and a description, all four annotation hints set, an
// object input schema without top-level combinators (which several
// clients reject), a description for every argument, and the shared
// arguments DESIGN.md names with the same meaning everywhere.
func TestInventory(t *testing.T) {
	all := tools.All(nil)
	seen := map[string]bool{}
	for _, want := range []string{"capture_status", "list_flows", "get_pcap", "dissect", "search_calls", "get_call", "summarize_traffic",
		"compare_windows", "service_map", "list_workloads", "create_snapshot", "list_snapshots", "delete_snapshot"} {
		seen[want] = false
	}
	for _, tool := range all {
		d := tool.Def
		if done, ok := seen[d.Name]; !ok || done {
			t.Errorf("tool %q: unexpected or listed twice", d.Name)
		}
		seen[d.Name] = true
		if !regexp.MustCompile(`^[a-z][a-z_]*[a-z]$`).MatchString(d.Name) {
			t.Errorf("%s: not snake_case", d.Name)
		}
		if len(d.Description) < 80 || !strings.HasSuffix(d.Description, ".") {
			t.Errorf("%s: description %q is too short or not a sentence", d.Name, d.Description)
		}
		a := d.Annotations
		if a.Title == "" || a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: annotations not all set: %+v", d.Name, a)
		}
		// delete_snapshot alone removes data (the frozen copy of a window),
		// and says so.
		if a.DestructiveHint != nil && *a.DestructiveHint != (d.Name == "delete_snapshot") {
			t.Errorf("%s: destructive hint %v; only delete_snapshot destroys anything", d.Name, *a.DestructiveHint)
		}
		var s schema
		if err := json.Unmarshal(d.RawInputSchema, &s); err != nil {
			t.Fatalf("%s: input schema: %v", d.Name, err)
		}
		if s.Type != "object" || s.AnyOf != nil || s.OneOf != nil || s.AllOf != nil || s.Not != nil || s.Ref != "" {
			t.Errorf("%s: input schema must be a plain object: %s", d.Name, d.RawInputSchema)
		}
		for name, p := range s.Properties {
			if p.Desc == "" {
				t.Errorf("%s.%s: no description", d.Name, name)
			}
			if p.AnyOf != nil || p.OneOf != nil || p.Ref != "" {
				t.Errorf("%s.%s: combinators or references in an argument", d.Name, name)
			}
			if !regexp.MustCompile(`^[a-z][a-z_]*$`).MatchString(name) {
				t.Errorf("%s.%s: not snake_case", d.Name, name)
			}
		}
		mt := s.Properties["max_tokens"]
		if mt == nil || mt.Minimum == nil || *mt.Minimum != tools.MinMaxTokens || *mt.Maximum != tools.MaxMaxTokens ||
			mt.Default != float64(tools.DefaultMaxTokens) {
			t.Errorf("%s: max_tokens must be 256–32000, default 2000: %+v", d.Name, mt)
		}
		_, hasFrom := s.Properties["from"]
		_, hasTo := s.Properties["to"]
		if hasFrom != hasTo {
			t.Errorf("%s: from and to go together", d.Name)
		}
		// How windows default and what relative times count from, said
		// where the model reads it.
		if hasFrom && (!strings.Contains(d.Description, "all the data") || !strings.Contains(d.Description, "newest packet")) {
			t.Errorf("%s: the description must say a missing window means all the data and relative times count back from the newest packet", d.Name)
		}
		if _, ok := s.Properties["limit"]; ok {
			if _, ok := s.Properties["cursor"]; !ok && d.Name != "summarize_traffic" {
				t.Errorf("%s: a list tool takes limit and cursor", d.Name)
			}
		}
		if p := s.Properties["protocol"]; p != nil {
			for _, proto := range dissect.All() {
				if !strings.Contains(p.Desc, proto.Name()) {
					t.Errorf("%s.protocol: the description does not name %s", d.Name, proto.Name())
				}
			}
		}
		if _, ok := s.Properties["ip"]; ok {
			for _, f := range []string{"namespace", "pod", "service", "node", "port", "protocol"} {
				if s.Properties[f] == nil {
					t.Errorf("%s: takes some shared filters but not %s", d.Name, f)
				}
			}
		}
		if d.RawOutputSchema != nil {
			var out schema
			if err := json.Unmarshal(d.RawOutputSchema, &out); err != nil {
				t.Fatalf("%s: output schema: %v", d.Name, err)
			}
			if out.Type != "object" || out.AnyOf != nil || out.OneOf != nil {
				t.Errorf("%s: output schema must be a plain object: %s", d.Name, d.RawOutputSchema)
			}
			for name, p := range out.Properties {
				if _, ok := p.Type.(string); !ok {
					t.Errorf("%s: output %s has type %v: one type, not a list (several clients reject nullable types)", d.Name, name, p.Type)
				}
			}
		}
		for name, p := range s.Properties {
			if _, ok := p.Type.(string); !ok {
				t.Errorf("%s.%s has type %v: one type, not a list", d.Name, name, p.Type)
			}
		}
	}
	for name, done := range seen {
		if !done {
			t.Errorf("tool %s is missing", name)
		}
	}
}

// TestReadmeToolTable: the README's tool table is generated from the
// definitions; UPDATE_TOOLSNAPS=true rewrites it.
func TestReadmeToolTable(t *testing.T) {
	const begin, end = "<!-- tools:begin (generated by tools.MarkdownTable; UPDATE_TOOLSNAPS=true go test ./tools) -->\n", "<!-- tools:end -->"
	path := filepath.Join("..", "README.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q section", strings.TrimSpace(begin), end)
	}
	want := tools.MarkdownTable()
	if got := readme[i+len(begin) : j]; got != want {
		if !update {
			t.Fatalf("README.md's tool table is stale: run UPDATE_TOOLSNAPS=true go test ./tools\nwant:\n%s", want)
		}
		readme = readme[:i+len(begin)] + want + readme[j:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range tools.All(nil) {
		if !strings.Contains(want, "`"+tool.Def.Name+"`") || !slices.ContainsFunc(strings.Split(want, "\n"), func(l string) bool {
			return strings.HasPrefix(l, "| `"+tool.Def.Name+"` |")
		}) {
			t.Errorf("the table has no row for %s", tool.Def.Name)
		}
	}
}

// TestPrompts: the prompts name only tools that exist, list their
// arguments, refuse a missing required one and fill in the others.
func TestPrompts(t *testing.T) {
	names := map[string]bool{}
	for _, tool := range tools.All(nil) {
		names[tool.Def.Name] = true
	}
	want := []string{"investigate_incident", "verify_rollout", "map_dependencies"}
	var got []string
	toolWord := regexp.MustCompile(`\b[a-z]+_[a-z_]+\b`)
	for _, p := range tools.Prompts() {
		got = append(got, p.Def.Name)
		if p.Def.Description == "" {
			t.Errorf("%s: no description", p.Def.Name)
		}
		args := map[string]string{}
		for _, a := range p.Def.Arguments {
			if a.Description == "" {
				t.Errorf("%s.%s: no description", p.Def.Name, a.Name)
			}
			if a.Required {
				var req mcp.GetPromptRequest
				req.Params.Name = p.Def.Name
				if _, err := p.Handler(context.Background(), req); err == nil || !strings.Contains(err.Error(), a.Name) {
					t.Errorf("%s: without %s: %v, want an error naming it", p.Def.Name, a.Name, err)
				}
				args[a.Name] = "2026-11-21T14:02:00Z"
			}
		}
		var req mcp.GetPromptRequest
		req.Params.Name, req.Params.Arguments = p.Def.Name, args
		res, err := p.Handler(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", p.Def.Name, err)
		}
		text := res.Messages[0].Content.(mcp.TextContent).Text
		if strings.Contains(text, "{") {
			t.Errorf("%s: an argument was not filled in:\n%s", p.Def.Name, text)
		}
		used := 0
		for _, w := range toolWord.FindAllString(text, -1) {
			if names[w] {
				used++
			} else if !slices.Contains([]string{"rollout_at", "group_by", "server_error", "client_error", "no_response"}, w) {
				t.Errorf("%s names %q, which is no tool or argument", p.Def.Name, w)
			}
		}
		if used < 3 {
			t.Errorf("%s names %d tools; a playbook names the tools in order:\n%s", p.Def.Name, used, text)
		}
		for _, v := range args {
			if !strings.Contains(text, v) {
				t.Errorf("%s: the argument %q is not in the text", p.Def.Name, v)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("prompts %v, want %v", got, want)
	}
}
