package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/wirescope/wirescope/dissect"
	"github.com/wirescope/wirescope/dissect/proto"
	"github.com/wirescope/wirescope/internal/when"
)

// windowArgs select a time range.
type windowArgs struct {
	From string `json:"from,omitempty" jsonschema:"start of the window: RFC 3339 (2026-11-21T14:00:00Z) or relative to the newest packet (-15m, -2h); default: the start of the data"`
	To   string `json:"to,omitempty" jsonschema:"end of the window, exclusive: RFC 3339 or relative (-5m); default: the end of the data"`
}

// filterArgs are the filters every tool shares.
type filterArgs struct {
	Namespace string `json:"namespace,omitempty" jsonschema:"Kubernetes namespace of either peer"`
	Pod       string `json:"pod,omitempty" jsonschema:"pod name of either peer"`
	Workload  string `json:"workload,omitempty" jsonschema:"workload (Deployment, StatefulSet, …) of either peer"`
	Service   string `json:"service,omitempty" jsonschema:"Kubernetes service of either peer"`
	Node      string `json:"node,omitempty" jsonschema:"node of either peer"`
	IP        string `json:"ip,omitempty" jsonschema:"IP address of either peer"`
	Port      int    `json:"port,omitempty" jsonschema:"port of either peer"`
	Protocol  string `json:"protocol,omitempty" jsonschema:"application protocol"`
}

// budgetArgs bound the answer.
type budgetArgs struct {
	MaxTokens int `json:"max_tokens,omitempty" jsonschema:"most tokens (o200k_base) the answer may take; default 2000"`
}

// pageArgs page through long lists.
type pageArgs struct {
	Limit  int    `json:"limit,omitempty" jsonschema:"most rows to return"`
	Cursor string `json:"cursor,omitempty" jsonschema:"where to continue: the cursor a previous answer gave"`
}

// scoped arguments have filters and a window.
type scoped interface {
	filter() (Filter, error)
	window(Backend) (from, to time.Time, err error)
}

// scope reads a tool's filters, then its window (a bad filter is told
// before a bad time).
func scope(b Backend, a scoped) (f Filter, from, to time.Time, err error) {
	if f, err = a.filter(); err != nil {
		return f, from, to, err
	}
	from, to, err = a.window(b)
	return f, from, to, err
}

// protocols the filters accept: the dissectors' names.
var protocols = func() []string {
	var names []string
	for _, p := range dissect.All() {
		names = append(names, p.Name())
	}
	return names
}()

// protocolsText names the protocols for a schema: "http (HTTP/1.x
// requests), dns (DNS queries)".
func protocolsText() string {
	var parts []string
	for _, name := range protocols {
		if d := proto.Described(name); d.Summary != "" {
			name += " (" + d.Summary + ")"
		}
		parts = append(parts, name)
	}
	return strings.Join(parts, ", ")
}

// argError is a problem with a tool's arguments, told to the model.
type argError string

func (e argError) Error() string { return string(e) }

func argErrorf(format string, a ...any) error { return argError(fmt.Sprintf(format, a...)) }

// argField is one argument a tool takes: its JSON name and Go type.
type argField struct {
	name string
	typ  reflect.Type
}

// argFields lists T's arguments in declaration order, embedded argument
// structs in place: the properties of T's schema.
func argFields[T any]() []argField {
	var out []argField
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-":
			case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
				walk(f.Type)
			case f.IsExported():
				if name == "" {
					name = f.Name
				}
				out = append(out, argField{name, f.Type})
			}
		}
	}
	walk(reflect.TypeFor[T]())
	return out
}

// bindArgs decodes a tool call's arguments into args, refusing what the
// schema (additionalProperties: false) does not allow with a sentence: an
// argument the tool does not have, named with the ones it has, or a value
// of the wrong JSON type.
func bindArgs(req mcp.CallToolRequest, fields []argField, args any) error {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(req.Params.Arguments); err != nil {
			return argErrorf("the arguments are not JSON: %v", err)
		}
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return argErrorf("the arguments must be an object, got %s", jsonKind(raw))
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	var unknown []string
	for k := range m {
		if !slices.Contains(names, k) {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		valid := "this tool takes no arguments"
		if len(names) > 0 {
			valid = "valid arguments are " + strings.Join(names, ", ")
		}
		return argErrorf("unknown %s %s; %s", noun(len(unknown), "argument"), strings.Join(unknown, ", "), valid)
	}
	for _, f := range fields {
		v, ok := m[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, reflect.New(f.typ).Interface()); err != nil {
			want, got := goKind(f.typ, v), jsonKind(v)
			if want == "a whole number" {
				// A number that does not fit: show it.
				got = clip(string(bytes.TrimSpace(v)), 40)
			}
			return argErrorf("%s must be %s, got %s", f.name, want, got)
		}
	}
	if err := json.Unmarshal(raw, args); err != nil {
		return argErrorf("the arguments do not fit the tool's schema: %v", err)
	}
	return nil
}

// goKind names the JSON a value of t is written as, for an argument error
// about v.
func goKind(t reflect.Type, v json.RawMessage) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if jsonKind(v) == "a number" {
			return "a whole number"
		}
		return "a number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// jsonKind names the kind of a JSON value in an argument error: a number
// is shown as it is, the rest by kind.
func jsonKind(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// maxTokens validates the budget.
func (a budgetArgs) maxTokens() (int, error) {
	switch {
	case a.MaxTokens == 0:
		return DefaultMaxTokens, nil
	case a.MaxTokens < MinMaxTokens || a.MaxTokens > MaxMaxTokens:
		return 0, argErrorf("max_tokens %d is out of range: use %d to %d", a.MaxTokens, MinMaxTokens, MaxMaxTokens)
	}
	return a.MaxTokens, nil
}

// limit validates a page size.
func (a pageArgs) limit(l limits) (int, error) {
	switch {
	case a.Limit == 0:
		return l.def, nil
	case a.Limit < 0 || a.Limit > l.most:
		return 0, argErrorf("limit %d is out of range: use 1 to %d", a.Limit, l.most)
	}
	return a.Limit, nil
}

// limits are a tool's default and largest "limit": its schema states them
// and its handler applies them, from one value.
type limits struct{ def, most int }

// offset reads the cursor of a list whose pages are positions in one
// ordering: the index of the next row, as the tool's closing line gave it.
func (a pageArgs) offset(tool string) (int, error) {
	if a.Cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(a.Cursor)
	if err != nil || n < 0 {
		return 0, argErrorf("cursor %q is not one %s gave", a.Cursor, tool)
	}
	return n, nil
}

// pageOf returns the rows of the page starting at offset.
func pageOf[T any](rows []T, offset, limit int) []T {
	return rows[min(offset, len(rows)):min(offset+limit, len(rows))]
}

// nextPage is the closing line of a list page that stopped before the end
// (shown rows from offset, of total): where to continue, and what
// narrows; "" when the list is complete.
func nextPage(offset, shown, total int, rows, narrow string) string {
	next := offset + shown
	if next >= total {
		return ""
	}
	return fmt.Sprintf("(showing %d–%d of %s%s: continue with cursor=%d, or narrow with %s)", offset+1, next, count(total), rows, next, narrow)
}

// filter validates the filters.
func (a filterArgs) filter() (Filter, error) {
	f := Filter{Namespace: a.Namespace, Pod: a.Pod, Workload: a.Workload, Service: a.Service, Node: a.Node,
		Protocol: strings.ToLower(a.Protocol)}
	if a.IP != "" {
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			return Filter{}, argErrorf("ip %q is not an IP address", a.IP)
		}
		f.IP = ip.Unmap()
	}
	if a.Port < 0 || a.Port > 65535 {
		return Filter{}, argErrorf("port %d is out of range: use 1 to 65535", a.Port)
	}
	f.Port = uint16(a.Port)
	if f.Protocol != "" && !slices.Contains(protocols, f.Protocol) {
		return Filter{}, argErrorf("protocol %q is not one wirescope dissects: use %s", a.Protocol, strings.Join(protocols, " or "))
	}
	return f, nil
}

// window resolves the window's times (zero means unbounded) and refuses,
// with a sentence saying what the capture covers, one that holds no
// captured traffic.
func (a windowArgs) window(b Backend) (from, to time.Time, err error) {
	_, last := b.Bounds()
	ref := last
	if b.Live() || ref.IsZero() {
		ref = time.Now()
	}
	if from, err = parseTime("from", a.From, ref); err != nil {
		return
	}
	if to, err = parseTime("to", a.To, ref); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return from, to, argErrorf("from (%s) must be before to (%s)", stamp(from), stamp(to))
	}
	if msg := emptyWindow(b, from, to); msg != "" {
		return from, to, argError(msg)
	}
	return from, to, nil
}

// parseTime reads RFC 3339, a relative duration ("-15m": before ref) or
// "now" (ref).
func parseTime(name, s string, ref time.Time) (time.Time, error) {
	t, ok := when.Parse(s, ref)
	if ok {
		return t, nil
	}
	if strings.HasPrefix(strings.TrimSpace(s), "-") {
		return time.Time{}, argErrorf("%s %q is not a duration back from the newest packet, like -15m or -2h", name, s)
	}
	return time.Time{}, argErrorf("%s %q is not a time: use RFC 3339 (2026-11-21T14:00:00Z) or a duration back from the newest packet (-15m)", name, s)
}

// stamp formats a time for answers: UTC, to the millisecond.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// describeWindow names a window in a sentence.
func describeWindow(from, to time.Time) string {
	switch {
	case from.IsZero() && to.IsZero():
		return "all the data"
	case from.IsZero():
		return "before " + stamp(to)
	case to.IsZero():
		return "after " + stamp(from)
	}
	return stamp(from) + " to " + stamp(to)
}

// windowPhrase names a window whose ends may be open in a sentence (zero
// is open: the start of the data, the newest packet, or now when live).
func windowPhrase(from, to time.Time, live bool) string {
	newest := "the newest packet"
	if live {
		newest = "now"
	}
	switch {
	case from.IsZero() && to.IsZero():
		return "in all the data"
	case from.IsZero():
		return "before " + stamp(to)
	case to.IsZero():
		return "from " + stamp(from) + " to " + newest
	}
	return "between " + stamp(from) + " and " + stamp(to)
}

// emptyWindow says, when [from, to) holds no captured traffic, so and what
// the capture does cover; "" when the window overlaps the capture.
func emptyWindow(b Backend, from, to time.Time) string {
	first, last := b.Bounds()
	if first.IsZero() {
		return "no traffic has been captured yet"
	}
	if (!to.IsZero() && !to.After(first)) || (!from.IsZero() && from.After(last)) {
		return fmt.Sprintf("no traffic captured %s; the capture covers %s to %s",
			windowPhrase(from, to, b.Live()), stamp(first), stamp(last))
	}
	return ""
}

// schemaOpts are what struct tags cannot say about a tool's arguments.
type schemaOpts struct {
	limit limits              // for "limit"
	enums map[string][]string // allowed values by field
}

// inputSchema generates T's JSON schema and adds bounds, defaults and
// enums.
func inputSchema[T any](o schemaOpts) mcp.ToolOption {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("schema: %v", err)) // a programming error in an argument type
	}
	set := func(name string, min, max, def int) {
		if p := s.Properties[name]; p != nil {
			fmin, fmax := float64(min), float64(max)
			p.Minimum, p.Maximum = &fmin, &fmax
			if def != 0 {
				p.Default, _ = json.Marshal(def)
			}
		}
	}
	set("max_tokens", MinMaxTokens, MaxMaxTokens, DefaultMaxTokens)
	set("limit", 1, o.limit.most, o.limit.def)
	set("port", 1, 65535, 0)
	// The protocols come from dissect's registry: one the dissectors do
	// not know is refused by the schema, and the model sees the choices.
	if p := s.Properties["protocol"]; p != nil {
		p.Description = "application protocol: " + protocolsText()
		p.Enum = nil
		for _, name := range protocols {
			p.Enum = append(p.Enum, name)
		}
	}
	for name, values := range o.enums {
		p := s.Properties[name]
		if p == nil {
			panic("schema: no field " + name)
		}
		for _, v := range values {
			p.Enum = append(p.Enum, v)
		}
	}
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schema: %v", err))
	}
	return func(t *mcp.Tool) {
		t.RawInputSchema = raw
		t.InputSchema = mcp.ToolInputSchema{} // NewTool's default; both set would not encode
	}
}

// outputSchema sets the output schema of a tool whose structured result is
// a T. jsonschema-go makes slices and maps nullable; the handlers always
// send them (empty when there is nothing), and a type list with "null"
// trips some clients, so it is dropped.
func outputSchema[T any]() mcp.ToolOption {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(fmt.Sprintf("schema: %v", err))
	}
	for _, p := range s.Properties {
		if len(p.Types) == 2 && p.Types[0] == "null" {
			p.Type, p.Types = p.Types[1], nil
		}
	}
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schema: %v", err))
	}
	return mcp.WithRawOutputSchema(raw)
}

// annotations sets all four hints explicitly (mcp-go defaults an unset
// destructiveHint to true).
func annotations(title string, readOnly, destructive, idempotent, openWorld bool) []mcp.ToolOption {
	return []mcp.ToolOption{
		mcp.WithTitleAnnotation(title),
		mcp.WithReadOnlyHintAnnotation(readOnly),
		mcp.WithDestructiveHintAnnotation(destructive),
		mcp.WithIdempotentHintAnnotation(idempotent),
		mcp.WithOpenWorldHintAnnotation(openWorld),
	}
}

// withLabel narrows f to the workload whose pods carry every key=value of
// label.
func withLabel(b Backend, f Filter, label string) (Filter, error) {
	label = strings.TrimSpace(label)
	if label == "" {
		return f, nil
	}
	want := map[string]string{}
	for part := range strings.SplitSeq(label, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return f, argErrorf("label %q is not key=value (like app=cart or version=1.5.0)", label)
		}
		want[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	pods := b.Pods()
	if len(pods) == 0 {
		return f, argErrorf("label %q: no pods are known, so labels cannot be resolved (start the server with --cluster); filter by workload or service instead", label)
	}
	var workloads []string
	for _, p := range pods {
		match := true
		for k, v := range want {
			if p.Labels[k] != v {
				match = false
				break
			}
		}
		if match && (f.Namespace == "" || strings.EqualFold(f.Namespace, p.Namespace)) {
			w := p.Namespace + "/" + p.Workload
			if !slices.Contains(workloads, w) {
				workloads = append(workloads, w)
			}
		}
	}
	slices.Sort(workloads)
	switch len(workloads) {
	case 0:
		return f, argErrorf("no pod carries label %s; list_workloads shows the labels pods have", label)
	case 1:
	default:
		return f, argErrorf("label %s is on pods of %d workloads (%s): add another label or the workload filter", label,
			len(workloads), strings.Join(workloads, ", "))
	}
	ns, wl, _ := strings.Cut(workloads[0], "/")
	if f.Workload != "" && !strings.EqualFold(f.Workload, wl) {
		return f, argErrorf("label %s selects workload %s, but the workload filter asks for %s", label, workloads[0], f.Workload)
	}
	f.Workload = wl
	if f.Namespace == "" {
		f.Namespace = ns
	}
	return f, nil
}
