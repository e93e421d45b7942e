package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// MarkdownTable renders the tools as the README's table: each tool, the
// first sentence of its description and its arguments (required first).
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| tool | what it answers | arguments |\n|---|---|---|\n")
	for _, t := range All(nil) {
		desc := t.Def.Description
		if i := strings.Index(desc, ". "); i > 0 {
			desc = desc[:i+1]
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", t.Def.Name, strings.ReplaceAll(desc, "|", `\|`), argList(t))
	}
	return b.String()
}

// argList names a tool's arguments in the order of their fields, required
// ones first.
func argList(t Tool) string {
	var s struct {
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	if err := json.Unmarshal(t.Def.RawInputSchema, &s); err != nil {
		panic(fmt.Sprintf("%s: schema: %v", t.Def.Name, err)) // inputSchema wrote it
	}
	var req, opt []string
	for _, name := range objectKeys(s.Properties) {
		if slices.Contains(s.Required, name) {
			req = append(req, "`"+name+"`")
		} else {
			opt = append(opt, "`"+name+"`")
		}
	}
	return strings.Join(append(req, opt...), ", ")
}

// objectKeys returns the keys of a JSON object in the order written.
func objectKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 { // a key: its value is read whole
				keys = append(keys, v)
				var skip json.RawMessage
				if dec.Decode(&skip) != nil {
					return keys
				}
			}
		}
	}
}
